//! The kernel's measured results (Linux 6.18, 1042-byte frames, all listed
//! leaves backlogged; htb-semantics.md §12), reproduced with a virtual clock
//! within 0.5 %.

use htb::sim::{Flow, SimConfig, SimPacket, simulate};
use htb::{ClassConfig, ClassId, Htb, QdiscConfig, rate::parse_rate};

fn id(s: &str) -> ClassId {
    s.parse().unwrap()
}

fn mbit(s: &str) -> u64 {
    parse_rate(s).unwrap()
}

fn add(q: &mut Htb<SimPacket>, cid: &str, parent: &str, cfg: ClassConfig) {
    q.add_class(id(cid), id(parent), &cfg, 0).unwrap();
}

fn run(q: &mut Htb<SimPacket>, leaves: &[&str]) -> htb::sim::SimReport {
    let flows: Vec<Flow> = leaves
        .iter()
        .map(|l| Flow::backlogged(id(l), 1042))
        .collect();
    let r = simulate(q, &flows, &SimConfig::default(), |_| {});
    q.check_invariants();
    r
}

fn assert_rate(r: &htb::sim::SimReport, class: &str, expect_mbit: f64) {
    let got = r.class(id(class)).unwrap().rate_bps / 1e6;
    println!("{class}: {got:.4} Mbit/s (kernel {expect_mbit})");
    let err = (got - expect_mbit).abs() / expect_mbit;
    assert!(
        err <= 0.005,
        "class {class}: {got:.4} Mbit/s, kernel {expect_mbit} Mbit/s ({:.3} % off)",
        err * 100.0
    );
}

#[test]
fn excess_is_split_by_default_quantum() {
    let mut q = Htb::new(QdiscConfig::new(1));
    add(&mut q, "1:1", "1:", ClassConfig::new(mbit("30mbit")));
    add(
        &mut q,
        "1:10",
        "1:1",
        ClassConfig::new(mbit("5mbit")).ceil(mbit("30mbit")),
    );
    add(
        &mut q,
        "1:20",
        "1:1",
        ClassConfig::new(mbit("10mbit")).ceil(mbit("30mbit")),
    );
    let r = run(&mut q, &["1:10", "1:20"]);
    assert_rate(&r, "1:10", 10.0);
    assert_rate(&r, "1:20", 20.0);
    assert_rate(&r, "1:1", 30.0);
}

#[test]
fn excess_is_split_by_explicit_quantum() {
    let mut q = Htb::new(QdiscConfig::new(1));
    add(&mut q, "1:1", "1:", ClassConfig::new(mbit("30mbit")));
    add(
        &mut q,
        "1:10",
        "1:1",
        ClassConfig::new(mbit("5mbit"))
            .ceil(mbit("30mbit"))
            .quantum(1500),
    );
    add(
        &mut q,
        "1:20",
        "1:1",
        ClassConfig::new(mbit("10mbit"))
            .ceil(mbit("30mbit"))
            .quantum(1500),
    );
    let r = run(&mut q, &["1:10", "1:20"]);
    assert_rate(&r, "1:10", 12.5);
    assert_rate(&r, "1:20", 17.5);
}

#[test]
fn strict_prio_takes_all_excess() {
    let mut q = Htb::new(QdiscConfig::new(1));
    add(&mut q, "1:1", "1:", ClassConfig::new(mbit("20mbit")));
    add(
        &mut q,
        "1:10",
        "1:1",
        ClassConfig::new(mbit("5mbit")).ceil(mbit("20mbit")).prio(0),
    );
    add(
        &mut q,
        "1:20",
        "1:1",
        ClassConfig::new(mbit("5mbit")).ceil(mbit("20mbit")).prio(1),
    );
    let r = run(&mut q, &["1:10", "1:20"]);
    assert_rate(&r, "1:10", 15.0);
    assert_rate(&r, "1:20", 5.0);
    // The kernel shows borrowed = 0 for the prio-1 leaf.
    assert_eq!(r.class(id("1:20")).unwrap().borrows, 0);
    assert!(r.class(id("1:10")).unwrap().borrows > 0);
}

#[test]
fn three_levels_lend_nearest_first() {
    let mut q = Htb::new(QdiscConfig::new(1));
    add(&mut q, "1:1", "1:", ClassConfig::new(mbit("30mbit")));
    add(
        &mut q,
        "1:2",
        "1:1",
        ClassConfig::new(mbit("15mbit")).ceil(mbit("30mbit")),
    );
    add(
        &mut q,
        "1:21",
        "1:2",
        ClassConfig::new(mbit("5mbit")).ceil(mbit("30mbit")).prio(1),
    );
    add(
        &mut q,
        "1:22",
        "1:2",
        ClassConfig::new(mbit("5mbit")).ceil(mbit("30mbit")).prio(1),
    );
    add(
        &mut q,
        "1:10",
        "1:1",
        ClassConfig::new(mbit("10mbit"))
            .ceil(mbit("30mbit"))
            .prio(0),
    );
    let r = run(&mut q, &["1:21", "1:22", "1:10"]);
    assert_rate(&r, "1:21", 7.5);
    assert_rate(&r, "1:22", 7.5);
    assert_rate(&r, "1:10", 15.0);
    // 1:2 lends its spare 5 Mbit at level 6; 1:1 lends at level 7.
    assert!(r.class(id("1:2")).unwrap().lends > 0);
    assert!(r.class(id("1:1")).unwrap().lends > 0);
}

#[test]
fn oversubscribed_parent_carries_children_rates() {
    let mut q = Htb::new(QdiscConfig::new(1));
    add(
        &mut q,
        "1:1",
        "1:",
        ClassConfig::new(mbit("10mbit")).ceil(mbit("10mbit")),
    );
    add(&mut q, "1:10", "1:1", ClassConfig::new(mbit("8mbit")));
    add(&mut q, "1:20", "1:1", ClassConfig::new(mbit("8mbit")));
    let r = run(&mut q, &["1:10", "1:20"]);
    assert_rate(&r, "1:1", 16.0);
    assert_rate(&r, "1:10", 8.0);
    assert_rate(&r, "1:20", 8.0);
}

#[test]
fn top_level_class_never_borrows() {
    let mut q = Htb::new(QdiscConfig::new(1));
    add(
        &mut q,
        "1:1",
        "1:",
        ClassConfig::new(mbit("5mbit")).ceil(mbit("10mbit")),
    );
    let r = run(&mut q, &["1:1"]);
    assert_rate(&r, "1:1", 5.0);
}

#[test]
fn unclassified_without_default_bypasses_shaping() {
    // Scenario (f) of the oracle: no default class, so unclassified traffic
    // goes through the direct queue, unshaped, beside a shaped class.
    let mut q = Htb::new(QdiscConfig::new(1));
    add(&mut q, "1:1", "1:", ClassConfig::new(mbit("10mbit")));
    let flows = [
        Flow::paced(id("1:1"), mbit("15mbit"), 1042),
        Flow::paced(id("1:1"), mbit("15mbit"), 1042).unclassified(),
    ];
    let r = simulate(&mut q, &flows, &SimConfig::default(), |_| {});
    assert_rate(&r, "1:1", 10.0);
    let d = r.direct_rate_bps / 1e6;
    assert!((d - 15.0).abs() < 0.1, "direct {d}");
}

#[test]
fn unclassified_goes_to_default_class() {
    let mut q = Htb::new(QdiscConfig::new(1).default_class(0x30));
    add(&mut q, "1:1", "1:", ClassConfig::new(mbit("20mbit")));
    add(
        &mut q,
        "1:10",
        "1:1",
        ClassConfig::new(mbit("10mbit")).ceil(mbit("20mbit")),
    );
    add(
        &mut q,
        "1:30",
        "1:1",
        ClassConfig::new(mbit("10mbit")).ceil(mbit("20mbit")),
    );
    let flows = [Flow::backlogged(id("1:1"), 1042).unclassified()];
    let r = simulate(&mut q, &flows, &SimConfig::default(), |_| {});
    // The idle 1:10 guarantee is redistributed to the default class.
    assert_rate(&r, "1:30", 20.0);
    assert_eq!(r.direct_bytes, 0);
}
