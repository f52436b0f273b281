//! One test (or a few) per kernel rule, driven through the public API with a
//! virtual clock. Figures come from htb-semantics.md.

use htb::leaf::LeafQueue;
use htb::rate::parse_rate;
use htb::{
    ClassConfig, ClassId, DropReason, Fifo, Htb, HtbError, Mode, QdiscConfig, QuantumWarning,
    Verdict,
};

fn id(s: &str) -> ClassId {
    s.parse().unwrap()
}

fn rate(s: &str) -> u64 {
    parse_rate(s).unwrap()
}

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// 1:1 (30mbit) with leaves 1:10 (5/30) and 1:20 (10/30).
fn two_leaves() -> Htb<u32> {
    let mut q = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("30mbit")), 0)
        .unwrap();
    q.add_class(
        id("1:10"),
        id("1:1"),
        &ClassConfig::new(rate("5mbit")).ceil(rate("30mbit")),
        0,
    )
    .unwrap();
    q.add_class(
        id("1:20"),
        id("1:1"),
        &ClassConfig::new(rate("10mbit")).ceil(rate("30mbit")),
        0,
    )
    .unwrap();
    q
}

#[test]
fn tokens_are_charged_in_kernel_nanoseconds() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("5mbit")), 0)
        .unwrap();
    // Default burst 1600 B at 625000 B/s: 2560 us = 40000 ticks.
    let info = q.class_info(id("1:1")).unwrap();
    assert_eq!(info.buffer_ticks, 40_000);
    assert_eq!(info.stats.tokens, 40_000);
    q.enqueue(1042, id("1:1")).unwrap();
    assert_eq!(q.dequeue(0), Some(1042));
    // 2 560 000 ns - 1 667 200 ns = 892 800 ns = 13 950 ticks.
    let s = q.class_stats(id("1:1")).unwrap();
    assert_eq!(s.tokens, 13_950);
    assert_eq!(s.ctokens, 13_950);
    assert_eq!(s.lends, 1);
}

#[test]
fn bucket_is_clamped_before_the_charge() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("5mbit")), 0)
        .unwrap();
    q.enqueue(1042, id("1:1")).unwrap();
    q.dequeue(0).unwrap();
    // Ten idle seconds refill far past the buffer; the clamp keeps one buffer,
    // and the next packet is charged from there.
    q.enqueue(1042, id("1:1")).unwrap();
    q.dequeue(10 * SEC).unwrap();
    assert_eq!(q.class_stats(id("1:1")).unwrap().tokens, 13_950);
}

#[test]
fn debt_is_capped_at_sixty_seconds() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    // 8 kbit = 1000 B/s: a 65535-byte packet costs 65.5 s.
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(1000).burst(1000), 0)
        .unwrap();
    q.enqueue(65_535, id("1:1")).unwrap();
    q.dequeue(0).unwrap();
    let s = q.class_stats(id("1:1")).unwrap();
    let floor = (1 - 60 * SEC as i64) >> 6;
    assert_eq!(s.tokens as i64, floor);
    assert_eq!(s.ctokens as i64, floor);
    assert_eq!(s.overlimits, 1);
    // The class is red until its ceil bucket is back at zero: 60 s. The
    // watchdog may fire earlier (the near-event cache of an idle level is
    // "now + 1 s"), but nothing is sent before the bucket is back.
    q.enqueue(100, id("1:1")).unwrap();
    let mut now = 1;
    let mut wakeups = 0;
    while q.dequeue(now).is_none() {
        let next = q.next_wakeup().unwrap();
        assert!(next > now);
        now = next;
        wakeups += 1;
    }
    assert_eq!(now, 60 * SEC - 1);
    assert!(wakeups <= 61, "{wakeups}");
}

#[test]
fn watchdog_is_the_time_tokens_reach_zero() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("5mbit")), 0)
        .unwrap();
    for _ in 0..3 {
        q.enqueue(1042, id("1:1")).unwrap();
    }
    // Bucket 2 560 000 ns, packets of 1 667 200 ns: two go at t=0, then -774 400.
    assert!(q.dequeue(0).is_some());
    assert!(q.dequeue(0).is_some());
    assert_eq!(q.dequeue(0), None);
    assert_eq!(q.next_wakeup(), Some(774_400));
    assert_eq!(q.class_info(id("1:1")).unwrap().mode, Mode::CantSend);
    assert_eq!(q.dequeue(774_399), None);
    assert_eq!(q.dequeue(774_400), Some(1042));
    assert_eq!(q.dequeue(774_400), None);
    assert_eq!(q.next_wakeup(), None);
}

#[test]
fn lends_and_borrows_are_counted_where_the_kernel_counts_them() {
    let mut q = two_leaves();
    // Only 1:10 is backlogged: 5 Mbit on its own rate, the rest borrowed.
    let mut now = 0;
    while now < 2 * SEC {
        while q.len() < 100 {
            q.enqueue(1042, id("1:10")).unwrap();
        }
        match q.dequeue(now) {
            Some(_) => {}
            None => now = q.next_wakeup().unwrap(),
        }
    }
    let leaf = q.class_stats(id("1:10")).unwrap();
    let top = q.class_stats(id("1:1")).unwrap();
    // Every packet is either lent by the leaf itself or borrowed from 1:1.
    assert_eq!(leaf.lends + leaf.borrows, leaf.packets);
    assert_eq!(top.lends, leaf.borrows);
    assert_eq!(top.borrows, 0);
    // 5 of 30 Mbit on its own rate.
    let own = leaf.lends as f64 / leaf.packets as f64;
    assert!((own - 1.0 / 6.0).abs() < 0.01, "{own}");
    assert_eq!(top.packets, leaf.packets);
}

#[test]
fn overlimits_count_transitions_into_cant_send() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("5mbit")), 0)
        .unwrap();
    for _ in 0..10 {
        q.enqueue(1042, id("1:1")).unwrap();
    }
    let mut now = 0;
    let mut n = 0;
    while n < 10 {
        match q.dequeue(now) {
            Some(_) => n += 1,
            None => now = q.next_wakeup().unwrap(),
        }
    }
    let s = q.class_stats(id("1:1")).unwrap();
    assert!(s.overlimits >= 8 && s.overlimits <= 9, "{}", s.overlimits);
    assert_eq!(q.stats().overlimits, s.overlimits);
}

#[test]
fn hysteresis_is_off_by_default_and_can_be_turned_on() {
    let run = |hyst: bool| {
        let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1).hysteresis(hyst));
        q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("10mbit")), 0)
            .unwrap();
        q.add_class(
            id("1:10"),
            id("1:1"),
            &ClassConfig::new(rate("1mbit")).ceil(rate("10mbit")),
            0,
        )
        .unwrap();
        let mut now = 0;
        for _ in 0..500 {
            q.enqueue(300, id("1:10")).unwrap();
        }
        while !q.is_empty() {
            if q.dequeue(now).is_none() {
                now = q.next_wakeup().unwrap();
            }
        }
        (q.class_stats(id("1:10")).unwrap(), now)
    };
    let (off, t_off) = run(false);
    let (on, t_on) = run(true);
    // Both send everything at the ceil; hysteresis changes how the leaf
    // borrows (it stays yellow down to -buffer) but not the ceil.
    assert_eq!(off.packets, 500);
    assert_eq!(on.packets, 500);
    assert!(on.lends != off.lends, "{} vs {}", on.lends, off.lends);
    let ratio = t_on as f64 / t_off as f64;
    assert!((ratio - 1.0).abs() < 0.01, "{ratio}");
}

#[test]
fn classification_follows_the_kernel_order() {
    let mut q = two_leaves();
    // A leaf id goes to the leaf.
    q.enqueue(100, id("1:10")).unwrap();
    assert_eq!(q.class_stats(id("1:10")).unwrap().qlen, 1);
    // The qdisc handle goes to the direct queue.
    q.enqueue(100, id("1:")).unwrap();
    // Inner, unknown and zero ids with no default: direct queue.
    q.enqueue(100, id("1:1")).unwrap();
    q.enqueue(100, id("1:99")).unwrap();
    q.enqueue(100, 0).unwrap();
    q.enqueue(100, id("2:10")).unwrap();
    assert_eq!(q.stats().direct_packets, 5);
    // With a default leaf, they go there instead.
    q.set_default_class(0x20);
    q.enqueue(100, id("1:1")).unwrap();
    q.enqueue(100, 0).unwrap();
    assert_eq!(q.class_stats(id("1:20")).unwrap().qlen, 2);
    // A default that names an inner class means the direct queue.
    q.set_default_class(0x1);
    q.enqueue(100, 0).unwrap();
    assert_eq!(q.stats().direct_packets, 6);
    // Direct packets are served first, before any class.
    for _ in 0..6 {
        assert_eq!(q.dequeue(0), Some(100));
    }
    let s = q.class_stats(id("1:10")).unwrap();
    assert_eq!(s.packets, 0);
}

#[test]
fn classifier_walks_attach_points() {
    let mut q = two_leaves();
    q.set_default_class(0x20);
    q.set_classifier(|p: &u32, at: ClassId| match (at.minor(), *p) {
        // Root filters: big packets to inner 1:1, tiny ones dropped.
        (0, len) if len >= 1000 => Verdict::Class("1:1".parse().unwrap()),
        (0, len) if len < 64 => Verdict::Drop,
        (0, 500) => Verdict::Class("1:".parse().unwrap()),
        (0, 600) => Verdict::Class("1:77".parse().unwrap()),
        // Filters on 1:1 pick the leaf.
        (1, _) => Verdict::Class("1:10".parse().unwrap()),
        _ => Verdict::NoMatch,
    });
    q.enqueue(1500, 0).unwrap();
    assert_eq!(q.class_stats(id("1:10")).unwrap().qlen, 1);
    // A leaf id bypasses the filters.
    q.enqueue(1500, id("1:20")).unwrap();
    assert_eq!(q.class_stats(id("1:20")).unwrap().qlen, 1);
    // An inner id starts the walk at that class's filters.
    q.enqueue(200, id("1:1")).unwrap();
    assert_eq!(q.class_stats(id("1:10")).unwrap().qlen, 2);
    // Verdicts: drop, direct, unknown id (default), no match (default).
    let d = q.enqueue(10, 0).unwrap_err();
    assert_eq!((d.packet, d.reason), (10, DropReason::Classifier));
    q.enqueue(500, 0).unwrap();
    assert_eq!(q.stats().direct_packets, 1);
    q.enqueue(600, 0).unwrap();
    q.enqueue(300, 0).unwrap();
    assert_eq!(q.class_stats(id("1:20")).unwrap().qlen, 3);
    assert_eq!(q.stats().drops, 1);
}

#[test]
fn classifier_loops_are_dropped() {
    let mut q = two_leaves();
    q.set_classifier(|_: &u32, _: ClassId| Verdict::Class("1:1".parse().unwrap()));
    let d = q.enqueue(100, 0).unwrap_err();
    assert_eq!(d.reason, DropReason::ClassifyLoop);
}

#[test]
fn queue_limits_hand_packets_back() {
    let mut q: Htb<u32> = Htb::with_queue(QdiscConfig::new(1).direct_qlen(2), Fifo::new(3));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("1mbit")), 0)
        .unwrap();
    for _ in 0..3 {
        q.enqueue(100, id("1:1")).unwrap();
    }
    let d = q.enqueue(101, id("1:1")).unwrap_err();
    assert_eq!((d.packet, d.reason), (101, DropReason::QueueFull));
    q.enqueue(1, 0).unwrap();
    q.enqueue(2, 0).unwrap();
    let d = q.enqueue(3, 0).unwrap_err();
    assert_eq!((d.packet, d.reason), (3, DropReason::DirectQueueFull));
    assert_eq!(q.class_stats(id("1:1")).unwrap().drops, 1);
    assert_eq!(q.stats().drops, 2);
    assert_eq!(q.len(), 5);
    assert_eq!(q.stats().backlog, 303);
}

#[test]
fn default_leaf_queue_is_pfifo_1000() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("1mbit")), 0)
        .unwrap();
    for _ in 0..1000 {
        q.enqueue(64, id("1:1")).unwrap();
    }
    assert!(q.enqueue(64, id("1:1")).is_err());
}

#[test]
fn levels_are_numbered_from_the_top() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    let cfg = ClassConfig::new(rate("1mbit"));
    q.add_class(id("1:1"), id("1:"), &cfg, 0).unwrap();
    assert_eq!(q.class_info(id("1:1")).unwrap().level, 0);
    q.add_class(id("1:2"), id("1:1"), &cfg, 0).unwrap();
    assert_eq!(q.class_info(id("1:1")).unwrap().level, 7);
    assert_eq!(q.class_info(id("1:2")).unwrap().level, 0);
    // Chain down to 8 levels: 1:1 (7), 1:2 (6), ..., 1:8 (0).
    for m in 3..=8u16 {
        q.add_class(ClassId::new(1, m), ClassId::new(1, m - 1), &cfg, 0)
            .unwrap();
    }
    for m in 1..=7u16 {
        assert_eq!(q.class_info(ClassId::new(1, m)).unwrap().level, 8 - m as u8);
    }
    assert_eq!(q.class_info(id("1:8")).unwrap().level, 0);
    assert_eq!(
        q.add_class(id("1:9"), id("1:8"), &cfg, 0).unwrap_err(),
        HtbError::TooDeep(id("1:9"))
    );
    // The leaf at depth 8 still shapes packets.
    q.enqueue(100, id("1:8")).unwrap();
    assert_eq!(q.dequeue(0), Some(100));
    assert_eq!(q.class_stats(id("1:1")).unwrap().bytes, 100);
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    let mut q = two_leaves();
    let cfg = ClassConfig::new(rate("1mbit"));
    let e = q.add_class(id("2:5"), id("1:"), &cfg, 0).unwrap_err();
    assert!(matches!(e, HtbError::WrongMajor { handle: 1, .. }));
    assert_eq!(
        q.add_class(id("1:10"), id("1:1"), &cfg, 0).unwrap_err(),
        HtbError::DuplicateClass(id("1:10"))
    );
    assert_eq!(
        q.add_class(id("1:30"), id("1:5"), &cfg, 0).unwrap_err(),
        HtbError::UnknownParent(id("1:5"))
    );
    assert_eq!(
        q.add_class(id("1:0"), id("1:"), &cfg, 0).unwrap_err(),
        HtbError::ClassIdIsQdisc(id("1:0"))
    );
    assert_eq!(
        q.add_class(id("1:30"), id("1:"), &ClassConfig::new(0), 0)
            .unwrap_err(),
        HtbError::ZeroRate(id("1:30"))
    );
    assert_eq!(
        q.change_class(id("1:31"), &cfg).unwrap_err(),
        HtbError::UnknownClass(id("1:31"))
    );
    assert_eq!(
        q.delete_class(id("1:1"), 0).unwrap_err(),
        HtbError::ClassHasChildren(id("1:1"))
    );
    assert_eq!(
        q.graft(id("1:1"), Fifo::new(5)).unwrap_err(),
        HtbError::NotALeaf(id("1:1"))
    );
    // Messages say what is wrong.
    assert_eq!(
        HtbError::UnknownParent(id("1:5")).to_string(),
        "parent class 1:5 does not exist"
    );
    assert_eq!(q.class_count(), 3);
}

#[test]
fn quantum_warnings_are_returned_not_printed() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    let a = q
        .add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("100mbit")), 0)
        .unwrap();
    assert_eq!(a.warning, Some(QuantumWarning::Big(id("1:1"))));
    assert_eq!(q.class_info(id("1:1")).unwrap().quantum, 200_000);
    let a = q
        .add_class(id("1:2"), id("1:"), &ClassConfig::new(rate("64kbit")), 0)
        .unwrap();
    assert_eq!(a.warning, Some(QuantumWarning::Small(id("1:2"))));
    let a = q
        .add_class(
            id("1:3"),
            id("1:"),
            &ClassConfig::new(rate("100mbit")).quantum(3000),
            0,
        )
        .unwrap();
    assert_eq!(a.warning, None);
    // r2q changes the derivation.
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1).r2q(100));
    let a = q
        .add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("100mbit")), 0)
        .unwrap();
    assert_eq!(a.warning, None);
    assert_eq!(q.class_info(id("1:1")).unwrap().quantum, 125_000);
}

#[test]
fn adding_under_a_leaf_purges_it() {
    let mut q = two_leaves();
    for _ in 0..5 {
        q.enqueue(100, id("1:10")).unwrap();
    }
    let a = q
        .add_class(id("1:11"), id("1:10"), &ClassConfig::new(rate("1mbit")), 0)
        .unwrap();
    assert_eq!(a.dropped, vec![100; 5]);
    assert_eq!(q.len(), 0);
    assert_eq!(q.stats().drops, 5);
    let info = q.class_info(id("1:10")).unwrap();
    assert!(!info.is_leaf);
    assert_eq!(info.level, 6);
    q.check_invariants();
    // Packets for the former leaf now follow classification of an inner id.
    q.enqueue(100, id("1:10")).unwrap();
    assert_eq!(q.stats().direct_packets, 1);
}

#[test]
fn change_keeps_tokens_and_applies_new_rates() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("5mbit")), 0)
        .unwrap();
    q.enqueue(1042, id("1:1")).unwrap();
    q.dequeue(0).unwrap();
    let before = q.class_stats(id("1:1")).unwrap();
    let a = q
        .change_class(id("1:1"), &ClassConfig::new(rate("10mbit")).prio(3))
        .unwrap();
    assert_eq!(a.warning, None);
    let after = q.class_info(id("1:1")).unwrap();
    assert_eq!(after.stats.tokens, before.tokens);
    assert_eq!(after.stats.ctokens, before.ctokens);
    assert_eq!(after.rate, 1_250_000);
    assert_eq!(after.prio, 3);
    assert_eq!(after.quantum, 125_000);
    // The next packet is charged at the new rate: 1042 B at 10 Mbit = 833 600 ns.
    q.enqueue(1042, id("1:1")).unwrap();
    q.dequeue(0).unwrap();
    let s = q.class_stats(id("1:1")).unwrap();
    let buffer_ns = (after.buffer_ticks as i64) << 6;
    let expect = (892_800i64.min(buffer_ns) - 833_600) >> 6;
    assert_eq!(s.tokens as i64, expect);
}

#[test]
fn delete_hands_back_packets_and_restores_the_parent_leaf() {
    let mut q = two_leaves();
    for _ in 0..3 {
        q.enqueue(200, id("1:20")).unwrap();
    }
    let a = q.delete_class(id("1:20"), 5 * MS).unwrap();
    assert_eq!(a.dropped, vec![200; 3]);
    assert!(q.class_info(id("1:20")).is_none());
    q.check_invariants();
    // Deleting the last child makes 1:1 a leaf again, with full buckets.
    q.delete_class(id("1:10"), 6 * MS).unwrap();
    let info = q.class_info(id("1:1")).unwrap();
    assert!(info.is_leaf);
    assert_eq!(info.level, 0);
    assert_eq!(info.mode, Mode::CanSend);
    assert_eq!(info.stats.tokens as u32, info.buffer_ticks);
    q.enqueue(500, id("1:1")).unwrap();
    assert_eq!(q.dequeue(7 * MS), Some(500));
    q.check_invariants();
    // Ids can be reused after deletion.
    q.add_class(
        id("1:20"),
        id("1:1"),
        &ClassConfig::new(rate("1mbit")),
        8 * MS,
    )
    .unwrap();
    q.check_invariants();
}

#[test]
fn delete_while_active_keeps_round_robin_consistent() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("10mbit")), 0)
        .unwrap();
    for m in 0x10..0x18u16 {
        q.add_class(
            ClassId::new(1, m),
            id("1:1"),
            &ClassConfig::new(rate("100kbit")).ceil(rate("10mbit")),
            0,
        )
        .unwrap();
    }
    let mut now = 0;
    let mut dropped = 0;
    for round in 0..2000u64 {
        for m in 0x10..0x18u16 {
            if q.class_info(ClassId::new(1, m)).is_some() {
                let _ = q.enqueue(1000, ClassId::new(1, m));
            }
        }
        for _ in 0..4 {
            if q.dequeue(now).is_none() {
                now = q.next_wakeup().unwrap_or(now + MS);
            }
        }
        if round % 250 == 100 {
            let m = 0x10 + (round / 250) as u16;
            dropped += q
                .delete_class(ClassId::new(1, m), now)
                .unwrap()
                .dropped
                .len();
        }
        q.check_invariants();
    }
    assert!(dropped > 0);
}

#[test]
fn reset_hands_back_everything_and_keeps_tokens() {
    let mut q = two_leaves();
    for _ in 0..10 {
        q.enqueue(1042, id("1:10")).unwrap();
        q.enqueue(1042, id("1:20")).unwrap();
        q.enqueue(64, 0).unwrap();
    }
    for _ in 0..15 {
        q.dequeue(0);
    }
    let sent = q.stats().packets;
    assert!(sent >= 10, "direct packets go first");
    let tokens = q.class_stats(id("1:10")).unwrap().tokens;
    let out = q.reset();
    assert_eq!(out.len() as u64, 30 - sent);
    assert_eq!(q.stats().drops, 30 - sent);
    assert!(q.is_empty());
    assert_eq!(q.next_wakeup(), None);
    assert_eq!(q.class_stats(id("1:10")).unwrap().tokens, tokens);
    for c in q.classes() {
        assert_eq!(c.mode, Mode::CanSend);
    }
    q.check_invariants();
    q.enqueue(64, id("1:10")).unwrap();
    assert!(q.dequeue(SEC).is_some());
}

#[test]
fn drr_sends_a_packet_per_turn_then_about_a_quantum() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    let big = |c: ClassConfig| c.burst(1 << 20).cburst(1 << 20);
    q.add_class(
        id("1:1"),
        id("1:"),
        &big(ClassConfig::new(rate("100mbit"))),
        0,
    )
    .unwrap();
    // Both leaves green (plenty of burst): served from row 0 by DRR.
    for m in [0xa, 0xb] {
        q.add_class(
            ClassId::new(1, m),
            id("1:1"),
            &big(ClassConfig::new(rate("40mbit")).ceil(rate("100mbit"))).quantum(1500),
            0,
        )
        .unwrap();
    }
    // Packets carry their class in the low bits of the length.
    for i in 0..20u32 {
        q.enqueue(1000 + 0xa, id("1:a")).unwrap();
        q.enqueue(1000 + 0xb, id("1:b")).unwrap();
        let _ = i;
    }
    let order: String = (0..12)
        .map(|_| {
            if q.dequeue(0).unwrap() % 2 == 0 {
                'A'
            } else {
                'B'
            }
        })
        .collect();
    // A sends 1010-byte packets, B 1011. Deficits start at 0, so the first
    // turn is one packet: A 0-1010 < 0 -> +1500 = 490, next; B -> 489.
    // A 490 -> -520 -> 980; B -> 978. A 980 -> -30 -> 1470; B -> 1467.
    // A 1470 -> 460 (turn goes on), 460 -> -550 -> 950; B 456, then -555 -> 945.
    assert_eq!(order, "ABABABAABBAB");
}

#[test]
fn prio_orders_service_within_a_level() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    let big = |c: ClassConfig| c.burst(1 << 20).cburst(1 << 20);
    q.add_class(
        id("1:1"),
        id("1:"),
        &big(ClassConfig::new(rate("100mbit"))),
        0,
    )
    .unwrap();
    for (m, prio) in [(0xa, 3), (0xb, 1)] {
        q.add_class(
            ClassId::new(1, m),
            id("1:1"),
            &big(ClassConfig::new(rate("40mbit"))).prio(prio),
            0,
        )
        .unwrap();
    }
    for _ in 0..3 {
        q.enqueue(1000 + 0xa, id("1:a")).unwrap();
        q.enqueue(1000 + 0xb, id("1:b")).unwrap();
    }
    let order: Vec<u32> = (0..6).map(|_| q.dequeue(0).unwrap() - 1000).collect();
    assert_eq!(order, vec![0xb, 0xb, 0xb, 0xa, 0xa, 0xa]);
}

/// A queue that releases its packets only after `release_at` packets were
/// offered: non-work-conserving, like a child netem or tbf.
struct Gate {
    inner: Fifo<u32>,
    open: bool,
}

impl LeafQueue<u32> for Gate {
    fn enqueue(&mut self, p: u32) -> Result<(), (u32, DropReason)> {
        self.inner.enqueue(p)
    }
    fn dequeue(&mut self) -> Option<u32> {
        if self.open {
            self.inner.dequeue()
        } else {
            None
        }
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn backlog(&self) -> u64 {
        self.inner.backlog()
    }
    fn drain_into(&mut self, out: &mut Vec<u32>) {
        self.inner.drain_into(out)
    }
    fn fresh(&self) -> Self {
        Gate {
            inner: self.inner.fresh(),
            open: self.open,
        }
    }
}

#[test]
fn non_work_conserving_leaves_are_skipped() {
    let mut q: Htb<u32, Gate> = Htb::with_queue(
        QdiscConfig::new(1),
        Gate {
            inner: Fifo::default(),
            open: true,
        },
    );
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("10mbit")), 0)
        .unwrap();
    for m in [0xa, 0xb] {
        q.add_class(
            ClassId::new(1, m),
            id("1:1"),
            &ClassConfig::new(rate("5mbit")),
            0,
        )
        .unwrap();
    }
    let closed = Gate {
        inner: Fifo::default(),
        open: false,
    };
    assert!(q.graft(id("1:a"), closed).unwrap().dropped.is_empty());
    q.enqueue(100, id("1:a")).unwrap();
    q.enqueue(200, id("1:b")).unwrap();
    assert_eq!(q.dequeue(0), Some(200));
    assert_eq!(q.dequeue(0), None);
    assert!(q.stats().nonwc_skips >= 1);
    assert_eq!(q.len(), 1);
    q.check_invariants();
    // A queue grafted with packets in it is served like any other.
    let mut full = Gate {
        inner: Fifo::default(),
        open: true,
    };
    full.enqueue(300).unwrap();
    let a = q.graft(id("1:a"), full).unwrap();
    assert_eq!(a.dropped, vec![100]);
    q.check_invariants();
    assert_eq!(q.dequeue(SEC), Some(300));
    q.check_invariants();
}

#[test]
fn events_budget_defers_work_to_an_immediate_wakeup() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1).events_budget(2));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("100mbit")), 0)
        .unwrap();
    for m in 0x10..0x20u16 {
        q.add_class(
            ClassId::new(1, m),
            id("1:1"),
            &ClassConfig::new(rate("1mbit")),
            0,
        )
        .unwrap();
    }
    // Every leaf sends a burst and turns red.
    for m in 0x10..0x20u16 {
        for _ in 0..3 {
            q.enqueue(1500, ClassId::new(1, m)).unwrap();
        }
    }
    while q.dequeue(0).is_some() {}
    // Much later every leaf is due, but only two events run per dequeue.
    let t = SEC;
    let mut sent = 0;
    let first = q.dequeue(t);
    assert!(first.is_some());
    sent += 1;
    let mut immediate = 0;
    while sent < 16 {
        match q.dequeue(t) {
            Some(_) => sent += 1,
            None => {
                assert_eq!(q.next_wakeup(), Some(t));
                immediate += 1;
                assert!(immediate < 100);
            }
        }
    }
    assert!(q.stats().too_many_events > 0);
}

#[test]
fn rate_estimator_tracks_the_sending_rate() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1).rate_estimator(htb::EstimatorConfig {
        interval_ns: 250 * MS,
        ewma_log: 1,
    }));
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("8mbit")), 0)
        .unwrap();
    let mut now = 0;
    while now < 10 * SEC {
        while q.len() < 10 {
            q.enqueue(1000, id("1:1")).unwrap();
        }
        if q.dequeue(now).is_none() {
            now = q.next_wakeup().unwrap();
        }
    }
    let est = q.class_stats(id("1:1")).unwrap().rate_est.unwrap();
    assert!((est.bps as f64 - 8e6).abs() < 8e6 * 0.02, "{est:?}");
    assert!((est.pps as f64 - 1000.0).abs() < 20.0, "{est:?}");
    // Without the option there is no estimate (tc shows no "rate" line).
    assert_eq!(two_leaves().class_stats(id("1:10")).unwrap().rate_est, None);
}

#[test]
fn class_display_looks_like_tc() {
    let mut q = two_leaves();
    q.enqueue(1042, id("1:10")).unwrap();
    q.dequeue(0).unwrap();
    let text = q.class_info(id("1:10")).unwrap().to_string();
    let expect = "class htb 1:10 parent 1:1 prio 0 quantum 62500 rate 5Mbit ceil 30Mbit linklayer ethernet burst 1600b/1 mpu 0b cburst 1593b/1 mpu 0b level 0 \n Sent 1042 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) \n backlog 0b 0p requeues 0\n lended: 1 borrowed: 0 giants: 0\n tokens: 13950 ctokens: 2314";
    assert_eq!(text, expect);
}

#[test]
fn times_near_the_end_of_u64_do_not_overflow() {
    let mut q: Htb<u32> = Htb::new(QdiscConfig::new(1));
    q.add_class(
        ClassId::new(1, 1),
        ClassId::new(1, 0),
        &ClassConfig::new(12_500),
        0,
    )
    .unwrap();
    for _ in 0..3 {
        q.enqueue(1500, ClassId::new(1, 1)).unwrap();
    }
    assert!(q.dequeue(u64::MAX - 1_000).is_some());
    assert!(q.dequeue(u64::MAX - 1_000).is_some());
    // The third packet waits for tokens; time is capped, nothing panics.
    assert_eq!(q.dequeue(u64::MAX), None);
    assert!(q.next_wakeup().unwrap() >= htb::sched::MAX_NOW);
}

#[path = "support/dropping_queue.rs"]
mod dropping_queue;
use dropping_queue::DroppingQueue;

/// Packets a leaf queue drops by itself, at enqueue or at dequeue, come back
/// through `take_dropped` with their reason, leave the queue length and
/// backlog, and count as qdisc drops — and as class drops when they made
/// room at enqueue (the kernel's HTB counts a child's NET_XMIT_CN there), not
/// when an AQM dropped them at dequeue (`qdisc_tree_reduce_backlog` counts
/// them on the qdisc only); a leaf whose queue dropped everything it held is
/// unlinked, not skipped as non-work-conserving.
#[test]
fn packets_a_leaf_queue_drops_by_itself_are_handed_back() {
    // Full at 3 packets; a packet ending in 7 is stale.
    let mut q: Htb<u32, DroppingQueue<u32>> = Htb::with_queue(
        QdiscConfig::new(1),
        DroppingQueue::new(3, u32::MAX, |p| p % 10 == 7),
    );
    q.add_class(id("1:1"), id("1:"), &ClassConfig::new(rate("100mbit")), 0)
        .unwrap();
    for m in [0xa, 0xb] {
        let cfg = ClassConfig::new(rate("50mbit")).ceil(rate("100mbit"));
        q.add_class(ClassId::new(1, m), id("1:1"), &cfg, 0).unwrap();
    }
    // Head drops at enqueue: 101 and 102 make room for 104 and 105.
    for p in 101..=105 {
        q.enqueue(p, id("1:a")).unwrap();
    }
    assert_eq!((q.len(), q.stats().backlog), (3, 103 + 104 + 105));
    assert_eq!(q.stats().drops, 2);
    assert_eq!(q.class_stats(id("1:a")).unwrap().drops, 2);
    let d = q.take_dropped();
    let got: Vec<(u32, DropReason)> = d.into_iter().map(|d| (d.packet, d.reason)).collect();
    assert_eq!(
        got,
        [(101, DropReason::LeafQueue), (102, DropReason::LeafQueue)]
    );
    assert!(q.take_dropped().is_empty());
    q.check_invariants();

    // Drops at dequeue: 1:b holds only stale packets, 1:a one among others.
    for p in [207, 217, 227] {
        q.enqueue(p, id("1:b")).unwrap();
    }
    q.enqueue(107, id("1:a")).unwrap(); // pushes 103 out
    let mut out = Vec::new();
    while let Some(p) = q.dequeue(0) {
        out.push(p);
    }
    out.sort_unstable();
    assert_eq!(out, [104, 105]);
    let mut dropped: Vec<u32> = q.take_dropped().into_iter().map(|d| d.packet).collect();
    dropped.sort_unstable();
    assert_eq!(dropped, [103, 107, 207, 217, 227]);
    assert_eq!((q.len(), q.stats().backlog, q.next_wakeup()), (0, 0, None));
    assert_eq!(q.stats().drops, 7);
    // 1:a: 101, 102 and 103 made room (107 went stale); 1:b: all stale.
    assert_eq!(q.class_stats(id("1:a")).unwrap().drops, 3);
    assert_eq!(q.class_stats(id("1:b")).unwrap().drops, 0);
    assert_eq!(q.stats().nonwc_skips, 0);
    assert_eq!(q.stats().packets, 2);
    q.check_invariants();
    // The leaves went idle: new packets are served as usual.
    q.enqueue(300, id("1:b")).unwrap();
    assert_eq!(q.dequeue(SEC), Some(300));
    q.check_invariants();
}
