//! The burst calls are the single calls, batched: `enqueue_burst` must do
//! exactly what `enqueue` does for each pair in order, and `dequeue_burst`
//! what `max` calls of `dequeue` at the same time do. Two qdiscs built alike
//! are driven with the same random traffic, one through each API, and must
//! agree on every packet, every refusal, every statistic and the wake-up.

use htb::{ClassConfig, ClassId, DropReason, Fifo, Htb, Packet, QdiscConfig};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

/// A packet that knows who it is, so the two runs can be compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct P {
    id: u32,
    len: u32,
}

impl Packet for P {
    fn len(&self) -> u32 {
        self.len
    }
}

fn below(g: &mut Gen, n: u32) -> u32 {
    u32::arbitrary(g) % n.max(1)
}

/// A random 1:- tree: a few top-level classes, inner classes under some,
/// leaves under those; rates from 1 Mbit/s to 1 Gbit/s so that some
/// traffic throttles and some does not; small leaf queues so that some
/// enqueues are refused.
#[derive(Clone, Debug)]
struct Tree {
    /// (minor, parent minor (0 = root), rate B/s, ceil B/s, prio).
    classes: Vec<(u16, u16, u64, u64, u32)>,
    default: u16,
    limit: usize,
}

/// What happens, in order.
#[derive(Clone, Debug)]
enum Step {
    /// A burst of (minor, length): minors that are leaves, inner classes,
    /// unknown, or 0 (the handle: the direct queue).
    Enqueue(Vec<(u16, u32)>),
    /// Dequeue at most `max` at the current time.
    Dequeue(u8),
    /// Time passes.
    Advance(u64),
}

#[derive(Clone, Debug)]
struct Case {
    tree: Tree,
    steps: Vec<Step>,
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut classes = Vec::new();
        let mut minor = 1u16;
        let tops = 1 + below(g, 3);
        for _ in 0..tops {
            let top = minor;
            minor += 1;
            let rate = 125_000 * u64::from(1 + below(g, 800));
            classes.push((top, 0, rate, rate, 0));
            for _ in 0..1 + below(g, 3) {
                let inner = minor;
                minor += 1;
                let r = rate / u64::from(2 + below(g, 4));
                classes.push((inner, top, r.max(1000), rate, below(g, 3)));
                for _ in 0..below(g, 5) {
                    let r2 = r / u64::from(2 + below(g, 4));
                    classes.push((minor, inner, r2.max(1000), rate, below(g, 3)));
                    minor += 1;
                }
            }
        }
        let default = below(g, u32::from(minor) + 2) as u16;
        let tree = Tree {
            classes,
            default,
            limit: 1 + below(g, 20) as usize,
        };
        let n = 1 + below(g, 60);
        let steps = (0..n)
            .map(|_| match below(g, 10) {
                0..=3 => Step::Enqueue(
                    (0..below(g, 40))
                        .map(|_| {
                            let m = match below(g, 10) {
                                0 => 0,
                                1 => minor + below(g, 5) as u16,
                                _ => 1 + below(g, u32::from(minor)) as u16,
                            };
                            (m, 64 + below(g, 1450))
                        })
                        .collect(),
                ),
                4..=6 => Step::Dequeue(below(g, 48) as u8),
                _ => Step::Advance(u64::from(below(g, 4)) * u64::from(below(g, 3_000_000))),
            })
            .collect();
        Case { tree, steps }
    }
}

fn build(t: &Tree) -> Htb<P> {
    let mut q = Htb::with_queue(
        QdiscConfig::new(1).default_class(t.default),
        Fifo::new(t.limit),
    );
    for &(minor, parent, rate, ceil, prio) in &t.classes {
        let cfg = ClassConfig::new(rate).ceil(ceil).prio(prio);
        q.add_class(ClassId::new(1, minor), ClassId::new(1, parent), &cfg, 0)
            .expect("valid class");
    }
    q
}

fn stats_of(q: &Htb<P>, t: &Tree) -> String {
    let mut s = format!("{:?} {} {:?}\n", q.stats(), q.len(), q.next_wakeup());
    for &(minor, ..) in &t.classes {
        s += &format!("{:?}\n", q.class_stats(ClassId::new(1, minor)));
    }
    s
}

fn prop(case: Case) -> TestResult {
    let t = &case.tree;
    let (mut single, mut burst) = (build(t), build(t));
    let mut now = 0u64;
    let mut next_id = 0u32;
    let mut batch = Vec::new();
    let mut out = Vec::new();
    for (k, step) in case.steps.iter().enumerate() {
        match step {
            Step::Enqueue(pkts) => {
                let pkts: Vec<(P, ClassId)> = pkts
                    .iter()
                    .map(|&(m, len)| {
                        next_id += 1;
                        (P { id: next_id, len }, ClassId::new(1, m))
                    })
                    .collect();
                let mut refused_single: Vec<(P, DropReason)> = Vec::new();
                for &(p, c) in &pkts {
                    if let Err(d) = single.enqueue(p, c) {
                        refused_single.push((d.packet, d.reason));
                    }
                }
                batch.extend(pkts.iter().copied());
                let refused_burst: Vec<(P, DropReason)> = burst
                    .enqueue_burst(&mut batch)
                    .into_iter()
                    .map(|d| (d.packet, d.reason))
                    .collect();
                if !batch.is_empty() || refused_single != refused_burst {
                    return TestResult::error(format!(
                        "step {k}: refused {refused_single:?} vs {refused_burst:?}"
                    ));
                }
            }
            Step::Dequeue(max) => {
                let max = usize::from(*max);
                let mut got_single = Vec::new();
                while got_single.len() < max {
                    match single.dequeue(now) {
                        Some(p) => got_single.push(p),
                        None => break,
                    }
                }
                out.clear();
                let n = burst.dequeue_burst(now, max, &mut out);
                if n != out.len() || got_single != out {
                    return TestResult::error(format!(
                        "step {k} at {now}: dequeued {got_single:?} vs {out:?} (n = {n})"
                    ));
                }
            }
            Step::Advance(ns) => now += ns,
        }
        let (a, b) = (stats_of(&single, t), stats_of(&burst, t));
        if a != b {
            return TestResult::error(format!("step {k}: statistics differ\n{a}\nvs\n{b}"));
        }
        burst.check_invariants();
    }
    TestResult::passed()
}

#[test]
fn burst_calls_equal_single_calls() {
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Case) -> TestResult);
}
