//! Fragment-then-reassemble is the identity (issue 5, "Proof"): random IPv4
//! datagrams (random valid options, DF) and IPv6 datagrams (random extension
//! header chains), random MTUs, fragments pushed in a random order into a
//! fresh `Reassembler` under every policy: the last fragment completes the
//! datagram, every earlier one is queued, and the datagram delivered is the
//! original — except where the kernel rewrites it: IPv4 comes back with the
//! first fragment's header (so all the options), fragment field zero (DF
//! is not restored: the fragmenter clears it, as Linux does without
//! IPSKB_FRAG_PMTU, and no fragment carries it) and a fresh checksum; IPv6
//! comes back byte for byte (fragment header removed, next header and
//! payload length restored).
//!
//! Seeds: `HTB_PROP_SEED` (printed), case count `QUICKCHECK_TESTS`.

#[path = "support/frag_gen.rs"]
mod frag_gen;

use frag_gen::{V4Datagram, V6Datagram, permutation};
use htb::frag::{FragOptions, Fragmenter};
use htb::reasm::{Policy, Pushed, ReasmConfig, Reassembler};
use htb::wire::checksum;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

fn qc(prop: u64) -> QuickCheck {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let base: u64 = std::env::var("HTB_PROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4ea5);
    println!("HTB_PROP_SEED={base} (frag+reasm property {prop})");
    let seed = base.wrapping_add(prop.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    QuickCheck::new()
        .tests(tests)
        .max_tests(tests * 10)
        .rng(Gen::from_size_and_seed(100, seed))
}

/// A case plus the order in which its fragments arrive.
#[derive(Clone, Debug)]
struct Case<D> {
    d: D,
    order_seed: u64,
}

impl<D: Arbitrary> Arbitrary for Case<D> {
    fn arbitrary(g: &mut Gen) -> Self {
        Case {
            d: D::arbitrary(g),
            order_seed: u64::arbitrary(g),
        }
    }
}

/// Pushes `frags` (in the order given) under `policy`; the datagram the
/// last one completes.
fn reassemble(frags: &[&Vec<u8>], policy: Policy) -> Result<Vec<u8>, String> {
    let mut r = Reassembler::new(ReasmConfig {
        policy,
        ..ReasmConfig::default()
    });
    let n = frags.len();
    for (i, f) in frags.iter().enumerate() {
        let got = r
            .push(f, 7, 1_000 * i as u64)
            .map_err(|e| format!("{policy}: fragment {i}/{n} refused: {e}"))?;
        match got {
            Pushed::Queued if i + 1 < n => {}
            Pushed::Complete(d) if i + 1 == n => {
                if r.queues() != 0 {
                    return Err(format!("{policy}: {} queues left", r.queues()));
                }
                let s = r.stats();
                if (s.reasm_reqds, s.reasm_oks, s.reasm_fails) != (n as u64, 1, 0) {
                    return Err(format!("{policy}: counters {s:?}"));
                }
                return Ok(d);
            }
            other => return Err(format!("{policy}: fragment {i}/{n}: {other:?}")),
        }
    }
    Err(format!("{policy}: no fragments"))
}

/// Runs every policy over a random arrival order of `frags`.
fn check_all(frags: &[Vec<u8>], order_seed: u64, want: &[u8]) -> TestResult {
    let mut g = Gen::from_size_and_seed(10, order_seed);
    let order = permutation(&mut g, frags.len());
    let shuffled: Vec<&Vec<u8>> = order.iter().map(|&i| &frags[i]).collect();
    let in_order: Vec<&Vec<u8>> = frags.iter().collect();
    for policy in Policy::ALL {
        for (name, seq) in [("in order", &in_order), ("shuffled", &shuffled)] {
            match reassemble(seq, policy) {
                Ok(d) if d == want => {}
                Ok(d) => {
                    let first = d.iter().zip(want).position(|(a, b)| a != b);
                    return TestResult::error(format!(
                        "{policy} {name}: {} bytes back, {} expected, first difference at {first:?}",
                        d.len(),
                        want.len()
                    ));
                }
                Err(e) => return TestResult::error(format!("{name}: {e}")),
            }
        }
    }
    TestResult::passed()
}

fn v4_identity(c: Case<V4Datagram>) -> TestResult {
    let d = &c.d.0;
    let p = &d.packet;
    let opts = FragOptions {
        ignore_df: true,
        ..FragOptions::new(d.mtu)
    };
    let frags: Vec<Vec<u8>> = match Fragmenter::new(p, opts) {
        Ok(f) => f.collect(),
        Err(e) => return TestResult::error(format!("fragmenting: {e}")),
    };
    if frags.len() == 1 {
        // Fits: passed on unchanged, and not a fragment for the reassembler.
        let mut r = Reassembler::new(ReasmConfig::default());
        return TestResult::from_bool(
            frags[0] == *p && r.push(&frags[0], 0, 0) == Ok(Pushed::NotFragment),
        );
    }
    let hlen = d.hlen();
    let mut want = p.clone();
    want[6] = 0;
    want[7] = 0;
    want[10] = 0;
    want[11] = 0;
    let c16 = checksum(&want[..hlen]);
    want[10..12].copy_from_slice(&c16.to_be_bytes());
    check_all(&frags, c.order_seed, &want)
}

fn v6_identity(c: Case<V6Datagram>) -> TestResult {
    let d = &c.d.0;
    let p = &d.packet;
    let opts = FragOptions {
        ipv6_id: d.id,
        ..FragOptions::new(d.mtu)
    };
    let frags: Vec<Vec<u8>> = match Fragmenter::new(p, opts) {
        Ok(f) => f.collect(),
        Err(e) => return TestResult::error(format!("fragmenting: {e}")),
    };
    if frags.len() == 1 {
        let mut r = Reassembler::new(ReasmConfig::default());
        return TestResult::from_bool(
            frags[0] == *p && r.push(&frags[0], 0, 0) == Ok(Pushed::NotFragment),
        );
    }
    check_all(&frags, c.order_seed, p)
}

#[test]
fn ipv4_fragment_then_reassemble_is_identity() {
    qc(1).quickcheck(v4_identity as fn(Case<V4Datagram>) -> TestResult);
}

#[test]
fn ipv6_fragment_then_reassemble_is_identity() {
    qc(2).quickcheck(v6_identity as fn(Case<V6Datagram>) -> TestResult);
}

/// The oracle's options datagram, the kernel's way: the reassembled header
/// is the first fragment's, so Record Route (dropped from later fragments)
/// comes back.
#[test]
fn ipv4_options_come_back_from_the_first_fragment() {
    let opts = [
        0x94, 0x04, 0x00, 0x00, 0x07, 0x0f, 0x08, 0xc6, 0x12, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
        0x01,
    ];
    let data: Vec<u8> = (0..4008).map(|i| (i * 13) as u8).collect();
    let p = frag_gen::ipv4_packet(0, 0x4242, 0, 17, &opts, &data);
    let frags: Vec<Vec<u8>> = Fragmenter::new(&p, FragOptions::new(1500))
        .unwrap()
        .collect();
    assert_eq!(frags.len(), 3);
    // Last fragment first: the header still comes from the offset-0 one.
    let order: Vec<&Vec<u8>> = vec![&frags[2], &frags[1], &frags[0]];
    for policy in Policy::ALL {
        assert_eq!(reassemble(&order, policy), Ok(p.clone()), "{policy}");
    }
}
