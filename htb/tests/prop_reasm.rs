//! Property tests of `htb::reasm` (quickcheck, public API only):
//! * any permutation of a datagram's fragments, with exact duplicates,
//!   reassembles to the original under every policy (IPv4 and IPv6);
//! * fragmenting with `htb::frag` then reassembling is the identity;
//! * arbitrary bytes (and mutated fragments) never make `push` panic;
//! * memory never exceeds the threshold by more than one fragment's charge;
//! * every pushed fragment is accounted in the counters;
//! * `push_owned` (fragments kept, datagrams as chains) answers exactly as
//!   `push` does, alone or mixed with it, and gives back every packet it
//!   does not keep.
//!
//! `QUICKCHECK_TESTS` sets the number of cases (default 100 here).

use htb::reasm::{
    FRAGMENT_OVERHEAD, FragDrop, Policy, Pushed, PushedOwned, QUEUE_OVERHEAD, ReasmConfig,
    ReasmError, Reassembler,
};
use htb::wire::{Ipv4Packet, Ipv6Packet};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

fn qc() -> QuickCheck {
    let n = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    QuickCheck::new().tests(n).max_tests(n * 10)
}

fn v4(id: u16, src: u8, off: usize, data: &[u8], mf: bool, proto: u8) -> Vec<u8> {
    let mut b = vec![0u8; 20 + data.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    p.set_version_ihl(4, 5);
    p.set_total_len((20 + data.len()) as u16);
    p.set_ident(id);
    p.set_more_frags(mf);
    p.set_frag_offset(off as u16);
    p.set_ttl(64);
    p.set_protocol(proto);
    p.set_src_addr([10, 0, 0, src]);
    p.set_dst_addr([10, 0, 0, 200]);
    p.fill_checksum();
    b[20..].copy_from_slice(data);
    b
}

fn v6(id: u32, off: usize, data: &[u8], mf: bool) -> Vec<u8> {
    let mut b = vec![0u8; 48 + data.len()];
    let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
    p.set_version_tc_flow(0, 0);
    p.set_payload_len((8 + data.len()) as u16);
    p.set_next_header(44);
    p.set_hop_limit(64);
    p.set_src_addr([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.set_dst_addr([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    b[40] = 253;
    let om = (off as u16 & !7) | u16::from(mf);
    b[42..44].copy_from_slice(&om.to_be_bytes());
    b[44..48].copy_from_slice(&id.to_be_bytes());
    b[48..].copy_from_slice(data);
    b
}

/// A datagram cut into fragments, sent in some order with duplicates.
#[derive(Clone, Debug)]
struct Scenario {
    payload: Vec<u8>,
    /// Fragment boundaries (multiples of 8, increasing, last < len).
    cuts: Vec<usize>,
    /// Indices into the fragment list, in send order (each at least once).
    order: Vec<usize>,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = 9 + usize::arbitrary(g) % 3000;
        let payload: Vec<u8> = (0..len).map(|_| u8::arbitrary(g)).collect();
        let mut cuts: Vec<usize> = (0..usize::arbitrary(g) % 12)
            .map(|_| (1 + usize::arbitrary(g) % ((len - 1) / 8).max(1)) * 8)
            .filter(|&c| c < len)
            .collect();
        if cuts.is_empty() {
            // One piece at offset 0 without MF is not a fragment at all.
            cuts.push(8);
        }
        cuts.sort_unstable();
        cuts.dedup();
        let n = cuts.len() + 1;
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..usize::arbitrary(g) % 4 {
            order.push(usize::arbitrary(g) % n);
        }
        // Fisher-Yates with the generator.
        for i in (1..order.len()).rev() {
            let j = usize::arbitrary(g) % (i + 1);
            order.swap(i, j);
        }
        Scenario {
            payload,
            cuts,
            order,
        }
    }
}

impl Scenario {
    fn pieces(&self) -> Vec<(usize, usize)> {
        let mut b = vec![0];
        b.extend(&self.cuts);
        b.push(self.payload.len());
        b.windows(2).map(|w| (w[0], w[1])).collect()
    }
}

fn reassembles_to_original(s: &Scenario, policy: Policy, six: bool) -> bool {
    let mut r = Reassembler::new(ReasmConfig {
        policy,
        ..ReasmConfig::default()
    });
    let pieces = s.pieces();
    let last = pieces.len() - 1;
    let mut completes = 0;
    for &i in &s.order {
        let (a, b) = pieces[i];
        let pkt = if six {
            v6(77, a, &s.payload[a..b], i != last)
        } else {
            v4(77, 1, a, &s.payload[a..b], i != last, 253)
        };
        match r.push(&pkt, 0, 0) {
            Ok(Pushed::Complete(d)) => {
                let h = if six { 40 } else { 20 };
                if d[h..] != s.payload[..] {
                    return false;
                }
                completes += 1;
            }
            Ok(Pushed::Queued) | Ok(Pushed::Dropped(FragDrop::Duplicate)) => {}
            _ => return false,
        }
    }
    // Duplicates arriving after completion may start (and even complete)
    // a fresh queue, but the datagram came out at least once.
    completes >= 1
}

#[test]
fn permutations_with_duplicates_reassemble_under_every_policy() {
    fn prop(s: Scenario) -> bool {
        Policy::ALL
            .into_iter()
            .all(|p| reassembles_to_original(&s, p, false) && reassembles_to_original(&s, p, true))
    }
    qc().quickcheck(prop as fn(Scenario) -> bool);
}

#[test]
fn fragment_then_reassemble_is_the_identity() {
    fn prop(len: u16, mtu: u16, six: bool, reverse: bool) -> TestResult {
        let len = usize::from(len) % 9000;
        let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let pkt = if six {
            let mut p = v6(0, 0, &payload, false);
            // A plain IPv6 packet: no fragment header.
            p.drain(40..48);
            p[6] = 253;
            let pl = (p.len() - 40) as u16;
            p[4..6].copy_from_slice(&pl.to_be_bytes());
            p
        } else {
            v4(9, 3, 0, &payload, false, 17)
        };
        let mtu = if six {
            1280 + usize::from(mtu) % 8000
        } else {
            68 + usize::from(mtu) % 8000
        };
        let Ok(mut frags) = htb::frag::fragment(&pkt, mtu) else {
            return TestResult::discard();
        };
        if frags.len() < 2 {
            return TestResult::discard();
        }
        if reverse {
            frags.reverse();
        }
        let mut r = Reassembler::new(ReasmConfig::default());
        let mut out = None;
        for f in &frags {
            match r.push(f, 0, 0) {
                Ok(Pushed::Complete(d)) => out = Some(d),
                Ok(Pushed::Queued) => {}
                other => return TestResult::error(format!("{other:?}")),
            }
        }
        TestResult::from_bool(out.as_deref() == Some(&pkt[..]))
    }
    qc().quickcheck(prop as fn(u16, u16, bool, bool) -> TestResult);
}

#[test]
fn arbitrary_bytes_never_panic() {
    fn prop(bytes: Vec<u8>, v: u8) -> bool {
        let mut b = bytes;
        // Steer half the inputs past the version check.
        if let Some(x) = b.first_mut() {
            match v % 3 {
                0 => *x = 0x45,
                1 => *x = 0x60 | (*x & 0x0f),
                _ => {}
            }
        }
        for policy in Policy::ALL {
            let mut r = Reassembler::new(ReasmConfig {
                policy,
                ..ReasmConfig::default()
            });
            let _ = r.push(&b, 0, 0);
            let _ = r.expire(u64::MAX);
        }
        true
    }
    qc().quickcheck(prop as fn(Vec<u8>, u8) -> bool);
}

/// One step of a random fragment stream.
#[derive(Clone, Debug)]
struct Step {
    six: bool,
    id: u8,
    src: u8,
    off8: u16,
    len: u16,
    mf: bool,
    /// Byte flips applied after building (index, xor), to reach odd paths.
    flip: Option<(u16, u8)>,
    fix_checksum: bool,
    dt: u64,
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        Step {
            six: bool::arbitrary(g),
            id: u8::arbitrary(g) % 6,
            src: u8::arbitrary(g) % 3,
            off8: *g.choose(&[0u16, 1, 2, 3, 5, 8, 100, 8190, 8191]).unwrap()
                + u16::arbitrary(g) % 4,
            len: *g.choose(&[0u16, 1, 5, 8, 13, 16, 24, 1480, 9000]).unwrap(),
            mf: bool::arbitrary(g),
            flip: if u8::arbitrary(g) % 4 == 0 {
                Some((u16::arbitrary(g) % 64, u8::arbitrary(g)))
            } else {
                None
            },
            fix_checksum: bool::arbitrary(g),
            dt: *g
                .choose(&[0u64, 1_000, 1_000_000_000, 20_000_000_000])
                .unwrap(),
        }
    }
}

impl Step {
    fn packet(&self) -> Vec<u8> {
        let data: Vec<u8> = (0..self.len).map(|i| i as u8 ^ self.id).collect();
        let off = usize::from(self.off8.min(8191)) * 8;
        let mut p = if self.six {
            v6(u32::from(self.id), off, &data, self.mf)
        } else {
            v4(u16::from(self.id), self.src, off, &data, self.mf, 253)
        };
        if let Some((i, x)) = self.flip {
            let i = usize::from(i) % p.len();
            p[i] ^= x;
            if self.fix_checksum && !self.six && p.len() >= 20 && p[0] == 0x45 {
                p[10..12].fill(0);
                let c = htb::wire::checksum(&p[..20]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
        }
        p
    }
}

#[test]
fn memory_bound_and_every_fragment_accounted() {
    qc().quickcheck(mem_prop as fn(Vec<Step>, u8, u16, bool) -> bool);
}

/// `push`, or `push_owned` with its answer seen as `push`'s.
fn push_either(
    r: &mut Reassembler,
    pkt: &[u8],
    now: u64,
    owned: bool,
) -> Result<Pushed, ReasmError> {
    if !owned {
        return r.push(pkt, 0, now);
    }
    match r.push_owned(pkt.to_vec(), 0, now) {
        Ok(PushedOwned::NotFragment(_)) => Ok(Pushed::NotFragment),
        Ok(PushedOwned::Queued) => Ok(Pushed::Queued),
        Ok(PushedOwned::Complete(c)) => Ok(Pushed::Complete(c.to_vec())),
        Ok(PushedOwned::Dropped(d, _)) => Ok(Pushed::Dropped(d)),
        Err(e) => Err(e.error),
    }
}

fn mem_prop(steps: Vec<Step>, policy_ix: u8, thresh: u16, owned: bool) -> bool {
    let policy = Policy::ALL[usize::from(policy_ix) % 8];
    let high_thresh = 2000 + usize::from(thresh) * 4;
    let mut r = Reassembler::new(ReasmConfig {
        policy,
        high_thresh,
        max_dist: 0,
        ..ReasmConfig::default()
    });
    let mut now = 0u64;
    let (mut frags, mut oks, mut fails, mut timeouts) = (0u64, 0u64, 0u64, 0u64);
    let mut max_charge = 0;
    for s in &steps {
        now += s.dt;
        // Timers first, so the push below fires none of its own.
        timeouts += r.expire(now).len() as u64;
        let pkt = s.packet();
        let before = r.mem_used();
        let res = push_either(&mut r, &pkt, now, owned);
        let is_frag = match &res {
            Ok(Pushed::NotFragment) | Err(ReasmError::Malformed(_)) => false,
            Ok(Pushed::Complete(d)) if d.len() + 8 == pkt.len() && d[0] >> 4 == 6 => {
                // An IPv6 atomic fragment: counted, never queued.
                true
            }
            _ => true,
        };
        if is_frag {
            frags += 1;
        }
        match &res {
            Ok(Pushed::Complete(_)) => oks += 1,
            Ok(Pushed::Dropped(FragDrop::Duplicate)) => {}
            Ok(Pushed::Dropped(_)) => fails += 1,
            _ => {}
        }
        // Bound: a refused push adds nothing; an accepted one at most a
        // queue, a fragment's bookkeeping and its bytes up to its end.
        // (A flipped byte may have moved the offset anywhere.)
        let off = if s.flip.is_some() {
            65528
        } else {
            usize::from(s.off8.min(8191)) * 8
        };
        // (A fragment kept by `push_owned` is charged whole, beside the
        // queue's header room.)
        let kept = if owned { pkt.len() } else { 0 };
        let charge = QUEUE_OVERHEAD + FRAGMENT_OVERHEAD + pkt.len() + off + kept;
        max_charge = max_charge.max(charge);
        let after = r.mem_used();
        if after > before + charge || (before > high_thresh && after > before) {
            return false;
        }
        // Hence never above the threshold by more than one push's charge.
        if after > high_thresh + max_charge {
            return false;
        }
        if r.queues() == 0 && r.mem_used() != 0 {
            return false;
        }
    }
    timeouts += r.expire(u64::MAX).len() as u64;
    let st = r.stats();
    st.reasm_reqds == frags
        && st.reasm_oks == oks
        && st.reasm_timeout == timeouts
        && st.reasm_fails == fails + timeouts
        && r.queues() == 0
        && r.mem_used() == 0
}

/// `push_owned` against `push`: the same stream into two tables, the second
/// taking each packet by `push_owned` or by `push` as `mix` says. Every
/// answer, every expiry event (with its ICMP quote) and every counter must
/// match; a complete chain must hold the same bytes; a packet not kept must
/// come back unchanged. (Memory is left out of the comparison: kept
/// fragments are charged whole, copied ones up to their end; the default
/// threshold is never reached here.)
#[test]
fn owned_pushes_answer_as_copied_ones() {
    fn prop(
        datagrams: Vec<(Scenario, u8, bool)>,
        junk: Vec<Step>,
        policy_ix: u8,
        mix: u64,
    ) -> TestResult {
        let policy = Policy::ALL[usize::from(policy_ix) % 8];
        let cfg = ReasmConfig {
            policy,
            ..ReasmConfig::default()
        };
        // The stream: up to four datagrams' fragments (ids that random
        // steps also use, so some collide and overlap), interleaved
        // round-robin, with the random steps spread between them.
        let mut lanes: Vec<Vec<(u64, Vec<u8>)>> = datagrams
            .iter()
            .take(4)
            .map(|(s, id, six)| {
                let pieces = s.pieces();
                let last = pieces.len() - 1;
                s.order
                    .iter()
                    .map(|&i| {
                        let (x, y) = pieces[i];
                        let pkt = if *six {
                            v6(u32::from(id % 6), x, &s.payload[x..y], i != last)
                        } else {
                            v4(u16::from(id % 6), 1, x, &s.payload[x..y], i != last, 253)
                        };
                        (0, pkt)
                    })
                    .collect()
            })
            .collect();
        lanes.push(junk.iter().map(|s| (s.dt, s.packet())).collect());
        let mut stream = Vec::new();
        let mut k = 0;
        while lanes.iter().any(|l| k < l.len()) {
            for l in &lanes {
                if let Some(p) = l.get(k) {
                    stream.push(p.clone());
                }
            }
            k += 1;
        }
        let (mut a, mut b) = (Reassembler::new(cfg.clone()), Reassembler::new(cfg));
        let mut now = 0u64;
        for (i, (dt, pkt)) in stream.into_iter().enumerate() {
            now += dt;
            let (ea, eb) = (a.expire(now), b.expire(now));
            if ea != eb {
                return TestResult::error(format!("step {i}: events {ea:?} vs {eb:?}"));
            }
            let want = a.push(&pkt, 0, now);
            let owned = mix == 0 || mix >> (i % 64) & 1 == 1;
            let got = if owned {
                match b.push_owned(pkt.clone(), 0, now) {
                    Ok(PushedOwned::NotFragment(p)) if p == pkt => Ok(Pushed::NotFragment),
                    Ok(PushedOwned::Queued) => Ok(Pushed::Queued),
                    Ok(PushedOwned::Complete(c)) => {
                        let bytes = c.to_vec();
                        let sum: usize = c.segments().map(<[u8]>::len).sum();
                        if bytes.len() != c.len() || sum != c.len() {
                            return TestResult::error(format!("step {i}: chain lengths"));
                        }
                        Ok(Pushed::Complete(bytes))
                    }
                    Ok(PushedOwned::Dropped(d, p)) if p == pkt => Ok(Pushed::Dropped(d)),
                    Err(r) if r.packet == pkt => Err(r.error),
                    other => {
                        return TestResult::error(format!(
                            "step {i}: packet not given back: {other:?}"
                        ));
                    }
                }
            } else {
                b.push(&pkt, 0, now)
            };
            if want != got {
                return TestResult::error(format!("step {i}: {want:?} vs {got:?}"));
            }
            if a.queues() != b.queues() {
                return TestResult::error(format!("step {i}: queues"));
            }
        }
        let (ea, eb) = (a.expire(u64::MAX), b.expire(u64::MAX));
        if ea != eb {
            return TestResult::error(format!("final events {ea:?} vs {eb:?}"));
        }
        if a.stats() != b.stats() || b.mem_used() != 0 {
            return TestResult::error(format!(
                "stats {:?} vs {:?}, mem {}",
                a.stats(),
                b.stats(),
                b.mem_used()
            ));
        }
        TestResult::passed()
    }
    qc().quickcheck(prop as fn(Vec<(Scenario, u8, bool)>, Vec<Step>, u8, u64) -> TestResult);
}

/// Every permutation with duplicates, all by `push_owned`: the chain is
/// the original datagram; under `Linux` it is made of the kept fragments'
/// buffers (no byte copied), one segment per fragment after the header.
#[test]
fn owned_permutations_reassemble_as_chains() {
    fn prop(s: Scenario, six: bool) -> TestResult {
        let mut r = Reassembler::new(ReasmConfig::default());
        let pieces = s.pieces();
        let last = pieces.len() - 1;
        let h = if six { 40 } else { 20 };
        let mut done = None;
        for &i in &s.order {
            let (x, y) = pieces[i];
            let pkt = if six {
                v6(78, x, &s.payload[x..y], i != last)
            } else {
                v4(78, 2, x, &s.payload[x..y], i != last, 253)
            };
            match r.push_owned(pkt.clone(), 0, 0) {
                Ok(PushedOwned::Complete(c)) => {
                    if done.is_none() {
                        done = Some(c);
                    }
                }
                Ok(PushedOwned::Queued) => {}
                Ok(PushedOwned::Dropped(FragDrop::Duplicate, p)) if p == pkt => {}
                other => return TestResult::error(format!("{other:?}")),
            }
        }
        let Some(c) = done else {
            return TestResult::error("never completed");
        };
        let bytes = c.to_vec();
        TestResult::from_bool(bytes[h..] == s.payload[..] && c.segment_count() == pieces.len() + 1)
    }
    qc().quickcheck(prop as fn(Scenario, bool) -> TestResult);
}

/// Datagram after datagram by `push_owned`, in order and interleaved: each
/// completes, and the memory the table counts goes back to 0 each time (a
/// table that forgot to uncharge kept fragments would hit its threshold).
#[test]
fn owned_memory_is_given_back() {
    let mut r = Reassembler::new(ReasmConfig::default());
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    for n in 0..4000u16 {
        let six = n % 2 == 1;
        let frags: Vec<Vec<u8>> = [(0, 1480, true), (1480, 2960, true), (2960, 3000, false)]
            .iter()
            .map(|&(a, b, mf)| {
                if six {
                    v6(u32::from(n), a, &payload[a..b], mf)
                } else {
                    v4(n, 3, a, &payload[a..b], mf, 17)
                }
            })
            .collect();
        let order: &[usize] = if n % 3 == 0 { &[2, 0, 1] } else { &[0, 1, 2] };
        for (j, &i) in order.iter().enumerate() {
            let res = r.push_owned(frags[i].clone(), 0, u64::from(n)).unwrap();
            match (j, res) {
                (2, PushedOwned::Complete(c)) => {
                    assert_eq!(c.to_vec()[if six { 40 } else { 20 }..], payload[..]);
                    c.for_each_buffer(|b| r.recycle(b));
                }
                (0 | 1, PushedOwned::Queued) => {}
                (_, other) => panic!("datagram {n}, push {j}: {other:?}"),
            }
        }
        assert_eq!((r.queues(), r.mem_used()), (0, 0), "datagram {n}");
    }
}
