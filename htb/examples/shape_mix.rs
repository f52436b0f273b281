//! Shapes a synthetic traffic mix through a small HTB tree in virtual time
//! and prints per-class rates, like `tc -s class show` plus the achieved rate.
//!
//! The tree (as tc would write it):
//!
//! ```text
//! tc qdisc add dev eth0 root handle 1: htb default 30
//! tc class add dev eth0 parent 1:  classid 1:1  htb rate 30mbit
//! tc class add dev eth0 parent 1:1 classid 1:10 htb rate 5mbit  ceil 30mbit prio 0   # voice/interactive
//! tc class add dev eth0 parent 1:1 classid 1:2  htb rate 15mbit ceil 30mbit          # bulk group
//! tc class add dev eth0 parent 1:2 classid 1:21 htb rate 5mbit  ceil 30mbit prio 1
//! tc class add dev eth0 parent 1:2 classid 1:22 htb rate 5mbit  ceil 30mbit prio 1
//! tc class add dev eth0 parent 1:1 classid 1:30 htb rate 1mbit  ceil 10mbit prio 2   # default
//! ```
//!
//! Run: `cargo run --release -p htb --example shape_mix`

use htb::rate::{format_rate, parse_rate};
use htb::sim::{Flow, SimConfig, SimPacket, simulate};
use htb::{ClassConfig, ClassId, Htb, QdiscConfig};

fn main() {
    let r = |s: &str| parse_rate(s).expect("valid rate");
    let id = |s: &str| s.parse::<ClassId>().expect("valid class id");
    let mut q: Htb<SimPacket> = Htb::new(QdiscConfig::new(1).default_class(0x30));
    let tree = [
        ("1:1", "1:", ClassConfig::new(r("30mbit"))),
        (
            "1:10",
            "1:1",
            ClassConfig::new(r("5mbit")).ceil(r("30mbit")).prio(0),
        ),
        (
            "1:2",
            "1:1",
            ClassConfig::new(r("15mbit")).ceil(r("30mbit")),
        ),
        (
            "1:21",
            "1:2",
            ClassConfig::new(r("5mbit")).ceil(r("30mbit")).prio(1),
        ),
        (
            "1:22",
            "1:2",
            ClassConfig::new(r("5mbit")).ceil(r("30mbit")).prio(1),
        ),
        (
            "1:30",
            "1:1",
            ClassConfig::new(r("1mbit")).ceil(r("10mbit")).prio(2),
        ),
    ];
    for (cid, parent, cfg) in &tree {
        let applied = q
            .add_class(id(cid), id(parent), cfg, 0)
            .expect("valid class");
        if let Some(w) = applied.warning {
            eprintln!("Warning: {w}");
        }
    }

    let sec = 1_000_000_000;
    let flows = [
        // Interactive: a paced 3 Mbit stream of small packets.
        Flow::paced(id("1:10"), r("3mbit"), 200),
        // Two bulk transfers, always backlogged.
        Flow::backlogged(id("1:21"), 1514),
        Flow::backlogged(id("1:22"), 1514),
        // Unclassified traffic lands in the default class 1:30, from 2 s to 8 s.
        Flow::backlogged(id("1:1"), 1042)
            .unclassified()
            .between(2 * sec, Some(8 * sec)),
    ];
    let cfg = SimConfig {
        duration_ns: 10 * sec,
        warmup_ns: sec,
        ..SimConfig::default()
    };
    let report = simulate(&mut q, &flows, &cfg, |_| {});

    println!(
        "{:<6} {:>12} {:>10} {:>8} {:>8} {:>8}   (window {} s)",
        "class",
        "rate",
        "packets",
        "drops",
        "lends",
        "borrows",
        report.window_ns as f64 / 1e9
    );
    for c in &report.classes {
        println!(
            "{:<6} {:>12} {:>10} {:>8} {:>8} {:>8}",
            c.id.to_string(),
            format_rate((c.rate_bps / 8.0) as u64),
            c.packets,
            c.drops,
            c.lends,
            c.borrows
        );
    }
    println!(
        "direct {:>12} {:>10}",
        format_rate((report.direct_rate_bps / 8.0) as u64),
        report.direct_packets
    );
    println!();
    for info in q.classes() {
        println!("{info}");
    }
}
