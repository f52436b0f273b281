//! One test per Linux reassembly rule (spec `reassembly-anchors.md` §1.2–1.5
//! and §2), through the public API only. Packets are built by hand here; the
//! expected results are the kernel's (many are `[oracle]` facts in the spec).

use htb::reasm::{
    EventKind, Family, FragDrop, FragKey, Policy, Pushed, ReasmConfig, ReasmError, Reassembler,
};
use htb::wire::{Ipv4Packet, Ipv6Packet, WireError, checksum};

const S: u64 = 1_000_000_000;

/// An IPv4 fragment under construction.
#[derive(Clone)]
struct F4 {
    id: u16,
    off: usize,
    data: Vec<u8>,
    mf: bool,
    df: bool,
    tos: u8,
    ttl: u8,
    proto: u8,
    src: [u8; 4],
    options: Vec<u8>,
}

fn f4(id: u16, off: usize, data: &[u8], mf: bool) -> F4 {
    F4 {
        id,
        off,
        data: data.to_vec(),
        mf,
        df: false,
        tos: 0,
        ttl: 64,
        proto: 253,
        src: [198, 18, 0, 1],
        options: Vec::new(),
    }
}

impl F4 {
    fn bytes(&self) -> Vec<u8> {
        let hl = 20 + self.options.len();
        assert_eq!(hl % 4, 0);
        let mut b = vec![0u8; hl + self.data.len()];
        b[20..hl].copy_from_slice(&self.options);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_version_ihl(4, (hl / 4) as u8);
        p.set_tos(self.tos);
        p.set_total_len((hl + self.data.len()) as u16);
        p.set_ident(self.id);
        p.set_dont_frag(self.df);
        p.set_more_frags(self.mf);
        p.set_frag_offset(self.off as u16);
        p.set_ttl(self.ttl);
        p.set_protocol(self.proto);
        p.set_src_addr(self.src);
        p.set_dst_addr([198, 18, 0, 2]);
        p.fill_checksum();
        b[hl..].copy_from_slice(&self.data);
        b
    }
}

fn push(r: &mut Reassembler, f: &F4) -> Pushed {
    r.push(&f.bytes(), 0, 0).unwrap()
}

fn complete(p: Pushed) -> Vec<u8> {
    match p {
        Pushed::Complete(b) => b,
        other => panic!("expected a datagram, got {other:?}"),
    }
}

fn linux() -> Reassembler {
    Reassembler::new(ReasmConfig::default())
}

#[test]
fn in_order_datagram_header_rewritten() {
    let mut r = linux();
    let payload: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    let mut a = f4(1, 0, &payload[..1480], true);
    a.ttl = 33;
    assert_eq!(push(&mut r, &a), Pushed::Queued);
    assert_eq!(
        push(&mut r, &f4(1, 1480, &payload[1480..2960], true)),
        Pushed::Queued
    );
    let d = complete(push(&mut r, &f4(1, 2960, &payload[2960..], false)));
    let p = Ipv4Packet::new_checked(&d[..]).unwrap();
    assert_eq!(p.total_len(), 4020);
    assert_eq!(p.flags_offset(), 0);
    assert_eq!(p.ttl(), 33);
    assert!(p.verify_checksum());
    assert_eq!(&d[20..], &payload[..]);
    let s = r.stats_for(Family::V4);
    assert_eq!((s.reasm_reqds, s.reasm_oks, s.reasm_fails), (3, 1, 0));
    assert_eq!(r.queues(), 0);
    assert_eq!(r.mem_used(), 0);
    assert_eq!(r.stats_for(Family::V6), Default::default());
}

#[test]
fn header_comes_from_the_offset_0_fragment_not_the_completing_one() {
    let mut r = linux();
    let mut last = f4(2, 8, b"BBBBBBBB", false);
    last.ttl = 1;
    last.tos = 0x10;
    push(&mut r, &last);
    let mut first = f4(2, 0, b"AAAAAAAA", true);
    first.ttl = 99;
    let mut mid_done = f4(2, 0, b"AAAAAAAA", true);
    mid_done.ttl = 5;
    // The first fragment completes the datagram here; TTL 99 is kept.
    let d = complete(push(&mut r, &first));
    assert_eq!(Ipv4Packet::new_checked(&d[..]).unwrap().ttl(), 99);
    assert_eq!(Ipv4Packet::new_checked(&d[..]).unwrap().tos(), 0);
    // Now the last fragment completes it: the header is still the first's.
    let mut r = linux();
    push(&mut r, &first);
    let d = complete(push(&mut r, &last));
    let p = Ipv4Packet::new_checked(&d[..]).unwrap();
    assert_eq!((p.ttl(), p.tos()), (99, 0));
    let _ = mid_done;
}

#[test]
fn options_of_the_first_fragment_are_kept_even_when_it_arrives_last() {
    let mut r = linux();
    // The last fragment (no options) creates the queue, then the first with
    // 4 bytes of options (Router Alert) completes it.
    push(&mut r, &f4(3, 16, &[2; 8], false));
    let mut a = f4(3, 0, &[1; 16], true);
    a.options = vec![0x94, 0x04, 0, 0];
    let d = complete(push(&mut r, &a));
    let p = Ipv4Packet::new_checked(&d[..]).unwrap();
    assert_eq!((p.header_len(), p.total_len()), (24, 48));
    assert!(p.verify_checksum());
    assert_eq!(&d[20..24], &[0x94, 4, 0, 0]);
    assert_eq!(&d[24..], &[[1u8; 16].as_slice(), &[2; 8]].concat()[..]);
}

#[test]
fn duplicate_inside_a_run_is_ignored_whatever_its_bytes() {
    // edge/duplicate-different-bytes, edge/rfc1858-offset-1-overwrite.
    let mut r = linux();
    push(&mut r, &f4(4, 0, b"AAAAAAAA", true));
    push(&mut r, &f4(4, 8, b"BBBBBBBB", true));
    assert_eq!(
        push(&mut r, &f4(4, 0, b"XXXXXXXX", true)),
        Pushed::Dropped(FragDrop::Duplicate)
    );
    assert_eq!(
        push(&mut r, &f4(4, 8, b"YYYYYYYY", true)),
        Pushed::Dropped(FragDrop::Duplicate)
    );
    let d = complete(push(&mut r, &f4(4, 16, b"CCCC", false)));
    assert_eq!(&d[20..], b"AAAAAAAABBBBBBBBCCCC");
    let s = r.stats();
    assert_eq!(
        (s.reasm_reqds, s.reasm_oks, s.reasm_fails, s.reasm_overlaps),
        (5, 1, 0, 0)
    );
}

#[test]
fn contained_spanning_one_run_is_a_duplicate() {
    // edge/contained-spanning-one-run: A, B in order form one run.
    let mut r = linux();
    push(&mut r, &f4(5, 0, b"AAAAAAAA", true));
    push(&mut r, &f4(5, 8, b"BBBBBBBB", true));
    assert_eq!(
        push(&mut r, &f4(5, 0, &[b'X'; 16], true)),
        Pushed::Dropped(FragDrop::Duplicate)
    );
    let d = complete(push(&mut r, &f4(5, 16, b"CCCCCCCC", false)));
    assert_eq!(&d[20..], b"AAAAAAAABBBBBBBBCCCCCCCC");
}

#[test]
fn contained_spanning_two_runs_is_an_overlap() {
    // edge/contained-spanning-two-runs-incomplete: A, D (last), then B is
    // tree-inserted as its own run; X over A and B spans two runs.
    let mut r = linux();
    push(&mut r, &f4(6, 0, b"AAAAAAAA", true));
    push(&mut r, &f4(6, 24, b"DDDDDDDD", false));
    push(&mut r, &f4(6, 8, b"BBBBBBBB", true));
    assert_eq!(
        push(&mut r, &f4(6, 0, &[b'X'; 16], true)),
        Pushed::Dropped(FragDrop::Overlap)
    );
    assert_eq!(r.queues(), 0);
    // The missing C starts a new queue that never completes.
    assert_eq!(push(&mut r, &f4(6, 16, b"CCCCCCCC", true)), Pushed::Queued);
    let s = r.stats();
    assert_eq!((s.reasm_overlaps, s.reasm_fails, s.reasm_oks), (1, 1, 0));
}

#[test]
fn overlap_kills_and_a_clean_retransmission_is_reassembled() {
    // edge/overlap-then-clean-retransmit.
    let mut r = linux();
    push(&mut r, &f4(7, 0, &[b'A'; 16], true));
    assert_eq!(
        push(&mut r, &f4(7, 8, &[b'B'; 16], false)),
        Pushed::Dropped(FragDrop::Overlap)
    );
    assert_eq!((r.queues(), r.mem_used()), (0, 0));
    push(&mut r, &f4(7, 0, &[b'A'; 16], true));
    let d = complete(push(&mut r, &f4(7, 16, &[b'B'; 8], false)));
    assert_eq!(&d[20..], b"AAAAAAAAAAAAAAAABBBBBBBB");
    let s = r.stats();
    assert_eq!(
        (s.reasm_reqds, s.reasm_oks, s.reasm_fails, s.reasm_overlaps),
        (4, 1, 1, 1)
    );
}

#[test]
fn end_beyond_tail_but_starting_before_it_overlaps() {
    let mut r = linux();
    push(&mut r, &f4(8, 0, &[1; 16], true));
    assert_eq!(
        push(&mut r, &f4(8, 8, &[2; 16], true)),
        Pushed::Dropped(FragDrop::Overlap)
    );
}

#[test]
fn two_last_fragments_with_different_ends_kill() {
    let mut r = linux();
    push(&mut r, &f4(9, 8, &[1; 8], false));
    assert_eq!(
        push(&mut r, &f4(9, 16, &[1; 8], false)),
        Pushed::Dropped(FragDrop::Inconsistent)
    );
    assert_eq!(r.queues(), 0);
    assert_eq!(r.stats().reasm_fails, 1);
    // A last fragment ending before data already held kills too.
    push(&mut r, &f4(10, 16, &[1; 16], true));
    assert_eq!(
        push(&mut r, &f4(10, 8, &[1; 8], false)),
        Pushed::Dropped(FragDrop::Inconsistent)
    );
}

#[test]
fn mf_fragment_beyond_the_last_end_kills() {
    let mut r = linux();
    push(&mut r, &f4(11, 8, &[1; 8], false));
    assert_eq!(
        push(&mut r, &f4(11, 16, &[1; 8], true)),
        Pushed::Dropped(FragDrop::Inconsistent)
    );
    assert_eq!(r.queues(), 0);
}

#[test]
fn zero_length_fragments_kill_the_queue() {
    for mf in [true, false] {
        let mut r = linux();
        push(&mut r, &f4(12, 0, &[1; 8], true));
        assert_eq!(
            push(&mut r, &f4(12, 8, &[], mf)),
            Pushed::Dropped(FragDrop::Inconsistent),
            "mf={mf}"
        );
        assert_eq!(r.queues(), 0);
        assert_eq!(r.stats().reasm_fails, 1);
    }
}

#[test]
fn nonlast_fragment_trimmed_to_a_multiple_of_8() {
    // edge/nonlast-len-not-multiple-of-8: 13 bytes of A → 8.
    let mut r = linux();
    push(&mut r, &f4(13, 0, &[b'A'; 13], true));
    let d = complete(push(&mut r, &f4(13, 8, &[b'B'; 8], false)));
    assert_eq!(&d[20..], b"AAAAAAAABBBBBBBB");
    // edge/nonlast-shorter-than-8: trimmed to nothing → kill.
    let mut r = linux();
    push(&mut r, &f4(14, 8, &[b'B'; 8], false));
    assert_eq!(
        push(&mut r, &f4(14, 0, &[b'A'; 5], true)),
        Pushed::Dropped(FragDrop::Inconsistent)
    );
}

#[test]
fn ecn_combinations() {
    fn run(tos: [u8; 2]) -> Pushed {
        let mut r = linux();
        let mut a = f4(15, 0, &[1; 8], true);
        a.tos = 0xb8 | tos[0];
        let mut b = f4(15, 8, &[2; 8], false);
        b.tos = 0xb8 | tos[1];
        push(&mut r, &a);
        push(&mut r, &b)
    }
    // Not-ECT with CE (and with ECT) → dropped.
    for t in [[0, 3], [3, 0], [0, 2], [1, 0]] {
        assert_eq!(run(t), Pushed::Dropped(FragDrop::EcnMismatch), "{t:?}");
    }
    // ECT(0) + CE → CE (TOS ECN 3); ECT(0) + ECT(1) → the first's ECN.
    for (t, ecn) in [
        ([2, 3], 3),
        ([3, 2], 3),
        ([2, 1], 2),
        ([1, 1], 1),
        ([0, 0], 0),
    ] {
        let d = complete(run(t));
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert_eq!(p.tos(), 0xb8 | ecn, "{t:?}");
        assert!(p.verify_checksum());
    }
    let mut r = linux();
    let mut a = f4(15, 0, &[1; 8], true);
    a.tos = 3;
    push(&mut r, &a);
    push(&mut r, &f4(15, 8, &[2; 8], false));
    assert_eq!(r.stats().reasm_fails, 1);
    assert_eq!(r.queues(), 0);
}

#[test]
fn df_set_iff_the_largest_fragment_had_df() {
    fn run(df: [bool; 2], lens: [usize; 2]) -> bool {
        let mut r = linux();
        let mut a = f4(16, 0, &vec![1; lens[0]], true);
        a.df = df[0];
        let mut b = f4(16, lens[0], &vec![2; lens[1]], false);
        b.df = df[1];
        push(&mut r, &a);
        let d = complete(push(&mut r, &b));
        Ipv4Packet::new_checked(&d[..]).unwrap().dont_frag()
    }
    assert!(run([true, true], [1480, 100]));
    assert!(run([true, false], [1480, 100]));
    assert!(!run([false, true], [1480, 100]));
    assert!(!run([false, false], [1480, 100]));
    // Equal sizes: the DF one counts as largest.
    assert!(run([false, true], [64, 64]));
}

fn big_datagram(r: &mut Reassembler, id: u16, data_len: usize) -> Pushed {
    let half = 32768;
    push(r, &f4(id, 0, &vec![7; half], true));
    push(r, &f4(id, half, &vec![8; data_len - half], false))
}

#[test]
fn reassembled_65535_passes_65536_is_dropped() {
    let mut r = linux();
    let d = complete(big_datagram(&mut r, 17, 65515));
    assert_eq!(d.len(), 65535);
    assert_eq!(Ipv4Packet::new_checked(&d[..]).unwrap().total_len(), 65535);
    assert_eq!(
        big_datagram(&mut r, 18, 65516),
        Pushed::Dropped(FragDrop::Oversize)
    );
    let s = r.stats();
    assert_eq!((s.reasm_oks, s.reasm_fails, s.reasm_reqds), (1, 1, 4));
    assert_eq!(r.queues(), 0);
}

#[test]
fn fragment_ending_beyond_65535_is_queued() {
    // edge/fragment-end-beyond-65535: only the completed size is checked.
    let mut r = linux();
    assert_eq!(
        push(&mut r, &f4(19, 65528, &[1; 16], false)),
        Pushed::Queued
    );
    assert_eq!(r.queues(), 1);
}

#[test]
fn many_8_byte_fragments() {
    // edge/many-8-byte-fragments: no limit on the fragment count.
    let mut r = linux();
    let mut order: Vec<usize> = (0..128).collect();
    order.reverse();
    order.swap(3, 90);
    let mut out = None;
    for &i in &order {
        match push(&mut r, &f4(20, i * 8, &[i as u8; 8], i != 127)) {
            Pushed::Queued => {}
            Pushed::Complete(d) => out = Some(d),
            other => panic!("{other:?}"),
        }
    }
    let d = out.expect("reassembled");
    assert_eq!(d.len(), 20 + 1024);
    for i in 0..128 {
        assert_eq!(d[20 + i * 8..28 + i * 8], [i as u8; 8]);
    }
}

fn max_dist_run(max_dist: u32) -> (usize, bool) {
    let mut r = Reassembler::new(ReasmConfig {
        max_dist,
        ..ReasmConfig::default()
    });
    push(&mut r, &f4(1000, 0, &[1; 8], true));
    let mut done = 0;
    for id in 0..70u16 {
        push(&mut r, &f4(id, 0, &[2; 8], true));
        if let Pushed::Complete(_) = push(&mut r, &f4(id, 8, &[3; 8], false)) {
            done += 1;
        }
    }
    let x = matches!(
        push(&mut r, &f4(1000, 8, &[4; 8], false)),
        Pushed::Complete(_)
    );
    (done, x)
}

#[test]
fn max_dist_flushes_a_queue_left_behind() {
    // edge/max-dist-exceeded: 70 datagrams delivered, X not; with
    // ipfrag_max_dist=0 all 71.
    assert_eq!(max_dist_run(64), (70, false));
    assert_eq!(max_dist_run(0), (70, true));
    // Within the distance nothing is flushed.
    assert_eq!(max_dist_run(141), (70, true));
    assert_eq!(max_dist_run(140), (70, false));
}

#[test]
fn max_dist_restart_keeps_the_new_fragment_and_rearms_the_timer() {
    let mut r = Reassembler::new(ReasmConfig {
        max_dist: 2,
        ..ReasmConfig::default()
    });
    r.push(&f4(1, 0, &[1; 8], true).bytes(), 0, 0).unwrap();
    for id in 2..5u16 {
        r.push(&f4(id, 0, &[1; 8], true).bytes(), 0, 0).unwrap();
    }
    // Distance 4 > 2: queue 1 is flushed, restarted with this fragment at 5 s.
    assert_eq!(
        r.push(&f4(1, 8, &[2; 8], false).bytes(), 0, 5 * S).unwrap(),
        Pushed::Queued
    );
    assert_eq!(r.stats().reasm_fails, 1);
    // Its old first fragment is gone: the retransmitted one completes it.
    let d = complete(r.push(&f4(1, 0, &[3; 8], true).bytes(), 0, 6 * S).unwrap());
    assert_eq!(&d[20..], &[3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2]);
    // The other three queues were created at 0 and expire at 30 s.
    assert_eq!(r.next_expiry(), Some(30 * S));
    // Another source (or context) has its own counter.
    let mut r = Reassembler::new(ReasmConfig {
        max_dist: 2,
        ..ReasmConfig::default()
    });
    r.push(&f4(1, 0, &[1; 8], true).bytes(), 0, 0).unwrap();
    for id in 2..6u16 {
        let mut g = f4(id, 0, &[1; 8], true);
        g.src = [10, 0, 0, 9];
        r.push(&g.bytes(), 0, 0).unwrap();
        r.push(&f4(id, 0, &[1; 8], true).bytes(), 7, 0).unwrap();
    }
    assert!(matches!(
        r.push(&f4(1, 8, &[2; 8], false).bytes(), 0, 0).unwrap(),
        Pushed::Complete(_)
    ));
}

#[test]
fn memory_threshold_refuses_fragments_until_memory_frees() {
    let thresh = 20_000;
    let mut r = Reassembler::new(ReasmConfig {
        high_thresh: thresh,
        ..ReasmConfig::default()
    });
    let mut refused = 0;
    let mut max_seen = 0;
    for id in 0..100u16 {
        match push(&mut r, &f4(id, 0, &[1; 1000], true)) {
            Pushed::Queued => {}
            Pushed::Dropped(FragDrop::MemoryLimit) => refused += 1,
            other => panic!("{other:?}"),
        }
        max_seen = max_seen.max(r.mem_used());
    }
    assert!(refused > 0);
    // Never above the threshold by more than one fragment's charge
    // (its buffer + the queue's and the fragment's bookkeeping).
    assert!(max_seen <= thresh + 1020 + 3000 + 256 + 32, "{max_seen}");
    assert_eq!(r.stats().reasm_fails, refused);
    assert_eq!(r.stats().reasm_reqds, 100);
    // Even a fragment of an existing queue is refused now.
    let held = r.queues() as u16;
    assert_eq!(
        push(&mut r, &f4(0, 1000, &[1; 8], false)),
        Pushed::Dropped(FragDrop::MemoryLimit)
    );
    // Once the queues expire, memory is free again.
    let ev = r.expire(30 * S);
    assert_eq!(ev.len(), held as usize);
    assert_eq!(r.mem_used(), 0);
    assert_eq!(push(&mut r, &f4(0, 0, &[1; 1000], true)), Pushed::Queued);
    // high_thresh 0 refuses everything.
    let mut r = Reassembler::new(ReasmConfig {
        high_thresh: 0,
        ..ReasmConfig::default()
    });
    assert_eq!(
        push(&mut r, &f4(1, 0, &[1; 8], true)),
        Pushed::Dropped(FragDrop::MemoryLimit)
    );
}

#[test]
fn timeout_with_quote_only_when_the_first_fragment_arrived() {
    let mut r = linux();
    let first = f4(21, 0, &(0..16).collect::<Vec<u8>>(), true);
    r.push(&first.bytes(), 0, 0).unwrap();
    // Missing first fragment.
    r.push(&f4(22, 8, &[9; 8], false).bytes(), 0, 5 * S)
        .unwrap();
    r.push(&f4(21, 32, &[9; 8], false).bytes(), 0, 10 * S)
        .unwrap();
    assert_eq!(r.next_expiry(), Some(30 * S));
    // Not refreshed by later fragments: nothing before 30 s.
    assert!(r.expire(30 * S - 1).is_empty());
    let ev = r.expire(30 * S);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventKind::Timeout);
    // The whole first fragment (header + its own 16 bytes), as Linux quotes.
    assert_eq!(ev[0].icmp_quote.as_deref(), Some(&first.bytes()[..]));
    assert_eq!(
        ev[0].key,
        FragKey::V4 {
            src: [198, 18, 0, 1],
            dst: [198, 18, 0, 2],
            id: 21,
            proto: 253,
            context: 0
        }
    );
    assert_eq!(r.next_expiry(), Some(35 * S));
    let ev = r.expire(100 * S);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].icmp_quote, None);
    let s = r.stats();
    assert_eq!((s.reasm_timeout, s.reasm_fails), (2, 2));
    assert_eq!((r.queues(), r.mem_used(), r.next_expiry()), (0, 0, None));
}

#[test]
fn push_after_the_lifetime_starts_a_new_queue_and_keeps_the_event() {
    let mut r = linux();
    r.push(&f4(23, 0, &[1; 8], true).bytes(), 0, 0).unwrap();
    // At 30 s the old queue is gone: the last fragment alone is queued.
    assert_eq!(
        r.push(&f4(23, 8, &[2; 8], false).bytes(), 0, 30 * S)
            .unwrap(),
        Pushed::Queued
    );
    let ev = r.expire(30 * S);
    assert_eq!(ev.len(), 1);
    assert!(ev[0].icmp_quote.is_some());
    assert_eq!(r.queues(), 1);
    assert_eq!(r.next_expiry(), Some(60 * S));
}

#[test]
fn timeouts_follow_the_config() {
    let mut r = Reassembler::new(ReasmConfig {
        timeout_v4: S,
        ..ReasmConfig::default()
    });
    r.push(&f4(24, 0, &[1; 8], true).bytes(), 0, 7).unwrap();
    assert_eq!(r.next_expiry(), Some(S + 7));
    assert_eq!(r.expire(S + 7).len(), 1);
}

#[test]
fn drop_reasons_are_listed_once_in_index_order() {
    for (i, d) in FragDrop::ALL.iter().enumerate() {
        assert_eq!(d.index(), i);
        assert!(!d.name().is_empty() && !d.as_str().is_empty());
    }
    let mut names: Vec<_> = FragDrop::ALL.iter().map(|d| d.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FragDrop::ALL.len());
}

#[test]
fn time_never_runs_backwards() {
    // A `now` earlier than one seen counts as that one: the queue created
    // "at 1 s" after a push at 10 s lives from 10 s, and expiring "at 0"
    // after 40 s have been seen expires what was due by then.
    let mut r = Reassembler::new(ReasmConfig {
        timeout_v4: 30 * S,
        ..ReasmConfig::default()
    });
    r.push(&f4(40, 0, &[1; 8], true).bytes(), 0, 10 * S)
        .unwrap();
    r.push(&f4(41, 0, &[1; 8], true).bytes(), 0, S).unwrap();
    assert_eq!(r.next_expiry(), Some(40 * S));
    assert_eq!(r.expire(39 * S).len(), 0);
    assert_eq!(r.expire(40 * S).len(), 2, "both queues date from 10 s");
    r.push(&f4(42, 0, &[1; 8], true).bytes(), 0, 0).unwrap();
    assert_eq!(r.next_expiry(), Some(70 * S));
    assert!(r.expire(0).is_empty());
}

#[test]
fn v6_nested_fragment_header_is_a_parameter_problem() {
    // The payload after the (outer) fragment header starts with another
    // Fragment header: reassembly completes (ReasmOKs), then the kernel
    // refuses the nested header, pointer at it (right after the IPv6
    // header, where the outer one was).
    let mut inner = vec![59u8, 0, 0, 1, 0, 0, 0, 9];
    inner.extend_from_slice(&[7; 24]);
    let mut a = f6(77, 0, &inner[..16], true);
    a.nh = 44;
    let mut b = f6(77, 16, &inner[16..], false);
    b.nh = 44;
    let mut r = linux();
    assert_eq!(push6(&mut r, &a).unwrap(), Pushed::Queued);
    assert_eq!(
        push6(&mut r, &b),
        Err(ReasmError::ParamProblem {
            code: 0,
            pointer: 40
        })
    );
    assert_eq!((r.stats().reasm_oks, r.queues()), (1, 0));
    // Behind a Hop-by-Hop header the pointer moves with it; an atomic
    // fragment is checked the same way.
    let mut c = f6(78, 0, &inner, false);
    c.nh = 44;
    c.hbh = true;
    assert_eq!(
        push6(&mut r, &c),
        Err(ReasmError::ParamProblem {
            code: 0,
            pointer: 48
        })
    );
    // Without the nested header the same datagram completes.
    let mut d = f6(79, 0, &[7; 16], true);
    d.nh = 59;
    let mut e = f6(79, 16, &[7; 16], false);
    e.nh = 59;
    assert_eq!(push6(&mut r, &d).unwrap(), Pushed::Queued);
    assert!(matches!(push6(&mut r, &e), Ok(Pushed::Complete(_))));
}

#[test]
fn key_includes_protocol_and_context() {
    // edge/same-id-different-protocol.
    let mut r = linux();
    let mut a = f4(25, 0, &[1; 8], true);
    a.proto = 253;
    let mut b = f4(25, 8, &[1; 8], false);
    b.proto = 254;
    assert_eq!(push(&mut r, &a), Pushed::Queued);
    assert_eq!(push(&mut r, &b), Pushed::Queued);
    assert_eq!(r.queues(), 2);
    // Different contexts (kernel `user`/vif) are independent queues.
    let mut r = linux();
    r.push(&f4(26, 0, &[1; 8], true).bytes(), 1, 0).unwrap();
    assert_eq!(
        r.push(&f4(26, 8, &[1; 8], false).bytes(), 2, 0).unwrap(),
        Pushed::Queued
    );
    assert!(matches!(
        r.push(&f4(26, 8, &[1; 8], false).bytes(), 1, 0).unwrap(),
        Pushed::Complete(_)
    ));
}

#[test]
fn non_fragments_pass_and_count_nothing() {
    let mut r = linux();
    let mut p = f4(27, 0, &[1; 30], false);
    p.df = true;
    assert_eq!(push(&mut r, &p), Pushed::NotFragment);
    assert_eq!(r.stats(), Default::default());
}

#[test]
fn header_validation_errors() {
    let mut r = linux();
    let good = f4(28, 0, &[1; 16], true).bytes();
    let err = |r: &mut Reassembler, b: &[u8]| match r.push(b, 0, 0) {
        Err(ReasmError::Malformed(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(err(&mut r, &[]), WireError::Truncated);
    assert_eq!(err(&mut r, &good[..10]), WireError::Truncated);
    let mut b = good.clone();
    b[0] = 0x55;
    assert_eq!(err(&mut r, &b), WireError::BadVersion(5));
    let mut b = good.clone();
    b[0] = 0x43;
    assert_eq!(err(&mut r, &b), WireError::BadHeaderLength(3));
    let mut b = good.clone();
    b[22] ^= 0xff; // data: no effect
    b[8] ^= 0xff; // TTL: checksum breaks
    assert_eq!(err(&mut r, &b), WireError::BadChecksum);
    let mut b = good.clone();
    b[2..4].copy_from_slice(&100u16.to_be_bytes());
    b[10..12].fill(0);
    let c = checksum(&b[..20]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(err(&mut r, &b), WireError::BadTotalLength(100));
    assert_eq!(r.stats(), Default::default());
    // Trailing link padding: total length decides what the fragment holds.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0xee; 20]);
    assert_eq!(r.push(&padded, 0, 0).unwrap(), Pushed::Queued);
    let d = complete(push(&mut r, &f4(28, 16, &[2; 4], false)));
    assert_eq!(d.len(), 40);
    assert_eq!(
        &d[20..],
        &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    );
}

// ---- IPv6 ----

#[derive(Clone)]
struct F6 {
    id: u32,
    off: usize,
    data: Vec<u8>,
    mf: bool,
    tc: u8,
    /// Extension headers before the fragment header (e.g. hop-by-hop).
    hbh: bool,
    nh: u8,
}

fn f6(id: u32, off: usize, data: &[u8], mf: bool) -> F6 {
    F6 {
        id,
        off,
        data: data.to_vec(),
        mf,
        tc: 0,
        hbh: false,
        nh: 253,
    }
}

impl F6 {
    fn bytes(&self) -> Vec<u8> {
        let ext = if self.hbh { 8 } else { 0 };
        let mut b = vec![0u8; 40 + ext + 8 + self.data.len()];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(self.tc, 0x12345);
        p.set_payload_len((ext + 8 + self.data.len()) as u16);
        p.set_next_header(if self.hbh { 0 } else { 44 });
        p.set_hop_limit(64);
        let mut src = [0u8; 16];
        src[..2].copy_from_slice(&[0x20, 0x01]);
        src[15] = 1;
        let mut dst = src;
        dst[15] = 2;
        p.set_src_addr(src);
        p.set_dst_addr(dst);
        if self.hbh {
            b[40..48].copy_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
        }
        let fh = 40 + ext;
        b[fh] = self.nh;
        let om = (self.off as u16 & !7) | u16::from(self.mf);
        b[fh + 2..fh + 4].copy_from_slice(&om.to_be_bytes());
        b[fh + 4..fh + 8].copy_from_slice(&self.id.to_be_bytes());
        b[fh + 8..].copy_from_slice(&self.data);
        b
    }
}

fn push6(r: &mut Reassembler, f: &F6) -> Result<Pushed, ReasmError> {
    r.push(&f.bytes(), 0, 0)
}

#[test]
fn v6_reassembly_removes_the_fragment_header() {
    for hbh in [false, true] {
        let mut r = linux();
        let mut a = f6(0xdead_beef, 0, &[1; 16], true);
        a.hbh = hbh;
        let mut b = f6(0xdead_beef, 16, &[2; 5], false);
        b.hbh = hbh;
        assert_eq!(push6(&mut r, &b).unwrap(), Pushed::Queued);
        let d = complete(push6(&mut r, &a).unwrap());
        let ext = if hbh { 8 } else { 0 };
        assert_eq!(d.len(), 40 + ext + 21);
        let p = Ipv6Packet::new_checked(&d[..]).unwrap();
        assert_eq!(usize::from(p.payload_len()), ext + 21);
        assert_eq!(p.flow_label(), 0x12345);
        if hbh {
            assert_eq!(p.next_header(), 0);
            assert_eq!(d[40], 253);
        } else {
            assert_eq!(p.next_header(), 253);
        }
        assert_eq!(
            &d[40 + ext..],
            &[[1u8; 16].as_slice(), &[2; 5]].concat()[..]
        );
        let s = r.stats_for(Family::V6);
        assert_eq!((s.reasm_reqds, s.reasm_oks), (2, 1));
        assert_eq!(r.stats_for(Family::V4), Default::default());
    }
}

#[test]
fn v6_nonlast_not_multiple_of_8_is_a_parameter_problem() {
    // edge6/nonlast-len-not-multiple-of-8: ICMPv6 4/0 pointer 4.
    let mut r = linux();
    assert_eq!(
        push6(&mut r, &f6(1, 0, &[1; 13], true)),
        Err(ReasmError::ParamProblem {
            code: 0,
            pointer: 4
        })
    );
    assert_eq!(r.stats().reasm_reqds, 1);
}

#[test]
fn v6_beyond_65535_points_at_the_offset_field() {
    let mut r = linux();
    assert_eq!(
        push6(&mut r, &f6(2, 65528, &[1; 16], false)),
        Err(ReasmError::ParamProblem {
            code: 0,
            pointer: 42
        })
    );
    let mut f = f6(2, 65528, &[1; 16], false);
    f.hbh = true;
    assert_eq!(
        push6(&mut r, &f),
        Err(ReasmError::ParamProblem {
            code: 0,
            pointer: 50
        })
    );
    // 65535 itself is fine.
    assert_eq!(
        push6(&mut r, &f6(3, 65528, &[1; 7], false)).unwrap(),
        Pushed::Queued
    );
}

#[test]
fn v6_first_fragment_without_the_upper_layer_header() {
    // TCP with a 16-byte first fragment → ICMPv6 4/3 pointer 0.
    let mut r = linux();
    let mut a = f6(4, 0, &[1; 16], true);
    a.nh = 6;
    assert_eq!(
        push6(&mut r, &a),
        Err(ReasmError::ParamProblem {
            code: 3,
            pointer: 0
        })
    );
    let mut a = f6(4, 0, &[1; 24], true);
    a.nh = 6;
    assert_eq!(push6(&mut r, &a).unwrap(), Pushed::Queued);
    // Later fragments are not checked.
    let mut b = f6(5, 8, &[1; 8], true);
    b.nh = 6;
    assert_eq!(push6(&mut r, &b).unwrap(), Pushed::Queued);
}

#[test]
fn v6_atomic_fragment_is_delivered_at_once() {
    let mut r = linux();
    let d = complete(push6(&mut r, &f6(6, 0, b"hello", false)).unwrap());
    assert_eq!(d.len(), 45);
    let p = Ipv6Packet::new_checked(&d[..]).unwrap();
    assert_eq!((p.payload_len(), p.next_header()), (5, 253));
    assert_eq!(&d[40..], b"hello");
    let s = r.stats_for(Family::V6);
    assert_eq!((s.reasm_reqds, s.reasm_oks), (1, 1));
    assert_eq!(r.queues(), 0);
}

#[test]
fn v6_jumbogram_with_fragment_header_is_refused() {
    let mut r = linux();
    let mut b = f6(7, 0, &[1; 8], true).bytes();
    b[4..6].fill(0);
    assert_eq!(
        r.push(&b, 0, 0),
        Err(ReasmError::ParamProblem {
            code: 0,
            pointer: 40
        })
    );
    // Only the fixed header in the buffer: still the same answer.
    assert_eq!(
        r.push(&b[..40], 0, 0),
        Err(ReasmError::ParamProblem {
            code: 0,
            pointer: 40
        })
    );
    assert_eq!(r.stats().reasm_reqds, 2);
}

#[test]
fn v6_overlap_drops_and_exact_duplicate_is_ignored() {
    // edge6/partial-overlap, edge6/exact-duplicate.
    let mut r = linux();
    push6(&mut r, &f6(8, 0, &[1; 16], true)).unwrap();
    assert_eq!(
        push6(&mut r, &f6(8, 8, &[2; 16], false)).unwrap(),
        Pushed::Dropped(FragDrop::Overlap)
    );
    let s = r.stats_for(Family::V6);
    assert_eq!((s.reasm_overlaps, s.reasm_fails), (1, 1));
    let mut r = linux();
    push6(&mut r, &f6(9, 0, &[1; 16], true)).unwrap();
    assert_eq!(
        push6(&mut r, &f6(9, 0, &[1; 16], true)).unwrap(),
        Pushed::Dropped(FragDrop::Duplicate)
    );
    assert!(matches!(
        push6(&mut r, &f6(9, 16, &[2; 8], false)).unwrap(),
        Pushed::Complete(_)
    ));
}

#[test]
fn v6_timeout_quote_runs_through_the_fragment_header() {
    let mut r = linux();
    let a = f6(10, 0, &(0..16).collect::<Vec<u8>>(), true);
    r.push(&a.bytes(), 0, 0).unwrap();
    assert_eq!(r.next_expiry(), Some(60 * S));
    let ev = r.expire(60 * S);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].icmp_quote.as_deref(), Some(&a.bytes()[..]));
    let s = r.stats_for(Family::V6);
    assert_eq!((s.reasm_timeout, s.reasm_fails), (1, 1));
}

#[test]
fn v6_ecn_and_traffic_class() {
    let mut r = linux();
    let mut a = f6(11, 0, &[1; 8], true);
    a.tc = 0xb8 | 2;
    let mut b = f6(11, 8, &[1; 8], false);
    b.tc = 0xb8 | 3;
    push6(&mut r, &a).unwrap();
    let d = complete(push6(&mut r, &b).unwrap());
    assert_eq!(
        Ipv6Packet::new_checked(&d[..]).unwrap().traffic_class(),
        0xbb
    );
    let mut r = linux();
    a.tc = 0;
    push6(&mut r, &a).unwrap();
    assert_eq!(
        push6(&mut r, &b).unwrap(),
        Pushed::Dropped(FragDrop::EcnMismatch)
    );
}

#[test]
fn v6_has_no_max_dist() {
    let mut r = Reassembler::new(ReasmConfig {
        max_dist: 1,
        ..ReasmConfig::default()
    });
    push6(&mut r, &f6(100, 0, &[1; 8], true)).unwrap();
    for id in 0..10 {
        push6(&mut r, &f6(id, 0, &[1; 8], true)).unwrap();
    }
    assert!(matches!(
        push6(&mut r, &f6(100, 8, &[1; 8], false)).unwrap(),
        Pushed::Complete(_)
    ));
}

#[test]
fn v6_payload_65535_passes_65536_is_dropped() {
    for (extra, ok) in [(0usize, true), (1, false)] {
        let mut r = linux();
        let total = 65535 - 8 + extra; // data bytes after the fragment header
        // Payload = 8 (hop-by-hop) + data; with hbh: 65535 at most.
        let mut a = f6(12, 0, &vec![1; 32768], true);
        a.hbh = true;
        let mut b = f6(12, 32768, &vec![2; total - 32768], false);
        b.hbh = true;
        push6(&mut r, &a).unwrap();
        let res = push6(&mut r, &b).unwrap();
        if ok {
            assert_eq!(complete(res).len(), 40 + 65535);
        } else {
            assert_eq!(res, Pushed::Dropped(FragDrop::Oversize));
        }
    }
}

#[test]
fn policies_parse_by_name() {
    for p in Policy::ALL {
        assert_eq!(p.name().parse::<Policy>().unwrap(), p);
    }
    assert!("bsd_right".parse::<Policy>().is_ok());
    assert!("nope".parse::<Policy>().is_err());
}

/// This thread's time on a CPU (ns), from the scheduler: the machine is
/// shared, so wall time overstates the cost when other jobs run.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Release timing loop (not a benchmark: criterion's is in `benches/`):
/// `cargo test --release -p htb --test reasm_rules perf -- --ignored --nocapture`
#[test]
#[ignore]
fn perf_timing() {
    use std::time::Instant;
    let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    // One source per datagram: 256 interleaved datagrams from one source
    // would exceed ipfrag_max_dist (64), as in the kernel.
    let frags = |id: u16| -> [Vec<u8>; 3] {
        let mk = |off: usize, end: usize, mf: bool| {
            let mut f = f4(id, off, &payload[off..end], mf);
            f.src = [10, 1, (id >> 8) as u8, id as u8];
            f.bytes()
        };
        [
            mk(0, 1480, true),
            mk(1480, 2960, true),
            mk(2960, 4000, false),
        ]
    };
    for interleave in [1usize, 256] {
        // Inputs stay cache-warm as a NIC's recent buffers would: 64
        // datagrams cycled in order, 256 distinct ones interleaved.
        let ids = if interleave == 1 { 64 } else { 256 };
        let all: Vec<[Vec<u8>; 3]> = (0..ids).map(frags).collect();
        let mut r = linux();
        let rounds = 3_000_000 / (3 * ids as usize);
        let mut n = 0u64;
        let mut done = 0u64;
        let t = Instant::now();
        let cpu0 = cpu_ns();
        for _ in 0..rounds {
            for group in all.chunks(interleave) {
                for k in 0..3 {
                    for d in group {
                        n += 1;
                        if let Ok(Pushed::Complete(b)) = r.push(&d[k], 0, 0) {
                            done += 1;
                            r.recycle(b);
                        }
                    }
                }
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        let cpu = (cpu_ns() - cpu0) as f64 / n as f64;
        assert_eq!(done * 3, n);
        println!(
            "interleave {interleave}: {n} fragments, {ns:.1} ns/fragment wall, {cpu:.1} ns/fragment on CPU"
        );
    }
}

#[test]
fn max_dist_still_holds_after_many_sources_came_and_went() {
    // Thousands of sources leave idle counters behind (bounded); the rule
    // still works for a source seen again.
    let mut r = linux();
    for i in 0..3000u16 {
        let mut a = f4(i, 0, &[1; 8], true);
        a.src = [10, 2, (i >> 8) as u8, i as u8];
        let mut b = f4(i, 8, &[1; 8], false);
        b.src = a.src;
        push(&mut r, &a);
        assert!(matches!(push(&mut r, &b), Pushed::Complete(_)));
    }
    assert_eq!(r.queues(), 0);
    assert_eq!(max_dist_run(64), (70, false));
    let mut x = f4(9, 0, &[1; 8], true);
    x.src = [10, 2, 0, 5];
    push(&mut r, &x);
    for id in 0..65u16 {
        let mut g = f4(1000 + id, 0, &[1; 8], true);
        g.src = x.src;
        push(&mut r, &g);
    }
    let mut last = f4(9, 8, &[1; 8], false);
    last.src = x.src;
    assert_eq!(push(&mut r, &last), Pushed::Queued);
    assert_eq!(r.stats().reasm_fails, 1);
}

#[test]
fn max_datagram_is_configurable_and_capped_at_65535() {
    let mut r = Reassembler::new(ReasmConfig {
        max_datagram: 1000,
        ..ReasmConfig::default()
    });
    push(&mut r, &f4(30, 0, &[1; 976], true));
    let d = complete(push(&mut r, &f4(30, 976, &[2; 4], false)));
    assert_eq!(d.len(), 1000);
    push(&mut r, &f4(31, 0, &[1; 976], true));
    assert_eq!(
        push(&mut r, &f4(31, 976, &[2; 5], false)),
        Pushed::Dropped(FragDrop::Oversize)
    );
    let mut r = Reassembler::new(ReasmConfig {
        max_datagram: 1 << 20,
        ..ReasmConfig::default()
    });
    assert_eq!(
        big_datagram(&mut r, 32, 65516),
        Pushed::Dropped(FragDrop::Oversize)
    );
}

#[test]
fn timeout_quote_is_cut_to_fit_the_minimum_mtu() {
    // v4/timeout-big-first-fragment: 548 bytes; IPv6: 1232 bytes. Only the
    // first fragment's own data, not the run appended to it.
    let mut r = linux();
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
    let a = f4(33, 0, &payload[..1480], true);
    r.push(&a.bytes(), 0, 0).unwrap();
    r.push(&f4(33, 1480, &payload[1480..2960], true).bytes(), 0, 0)
        .unwrap();
    let ev = r.expire(30 * S);
    assert_eq!(ev[0].icmp_quote.as_deref(), Some(&a.bytes()[..548]));
    let mut r = linux();
    let a = f6(34, 0, &payload[..32], true);
    r.push(&a.bytes(), 0, 0).unwrap();
    r.push(&f6(34, 32, &payload[32..64], true).bytes(), 0, 0)
        .unwrap();
    let ev = r.expire(60 * S);
    assert_eq!(ev[0].icmp_quote.as_deref(), Some(&a.bytes()[..]));
    let mut r = linux();
    let a = f6(35, 0, &payload[..1448], true);
    r.push(&a.bytes(), 0, 0).unwrap();
    let ev = r.expire(60 * S);
    assert_eq!(ev[0].icmp_quote.as_deref(), Some(&a.bytes()[..1232]));
}
