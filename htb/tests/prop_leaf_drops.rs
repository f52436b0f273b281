//! Leaf queues that drop packets by themselves (`LeafQueue::take_dropped`):
//! over random traffic, configuration changes and clocks, every packet
//! handed in comes out exactly once — sent, refused at enqueue, dropped by
//! its leaf queue (`Htb::take_dropped`), purged by a configuration change,
//! or still queued at the end — and the qdisc's queue length, backlog and
//! drop count agree with those outcomes after every step.

use std::collections::HashMap;

use htb::{ClassConfig, ClassId, DropReason, Htb, Packet, QdiscConfig};
use quickcheck::{Arbitrary, Gen, QuickCheck};

/// A packet: a unique id, a length, and whether its leaf queue will find
/// it stale at dequeue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pkt {
    id: u32,
    len: u32,
    stale: bool,
}

impl Packet for Pkt {
    fn len(&self) -> u32 {
        self.len
    }
}

#[path = "support/dropping_queue.rs"]
mod dropping_queue;
use dropping_queue::DroppingQueue;

#[derive(Clone, Debug)]
enum Op {
    /// A packet of this length to leaf `1:(10 + n % 4)` (or, for n % 8 == 7,
    /// to the unknown `1:99`: the direct queue).
    Enqueue(u8, u16),
    /// Dequeue after advancing the clock by this many microseconds.
    Dequeue(u16),
    /// Deletes leaf `1:(10 + n % 4)` if it exists, re-adds it if not.
    Toggle(u8),
    /// Adds a child `1:(20 + n % 4)` under leaf `1:(10 + n % 4)` (turning it
    /// into an inner class), or deletes that child.
    Nest(u8),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        match u8::arbitrary(g) % 20 {
            0..=9 => Op::Enqueue(u8::arbitrary(g), 40 + u16::arbitrary(g) % 1500),
            10..=17 => Op::Dequeue(u16::arbitrary(g) % 2000),
            18 => Op::Toggle(u8::arbitrary(g)),
            _ => Op::Nest(u8::arbitrary(g)),
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    cap: u8,
    max_len: u16,
    stale_every: u8,
    ops: Vec<Op>,
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Case {
        Case {
            cap: 1 + u8::arbitrary(g) % 8,
            max_len: 200 + u16::arbitrary(g) % 1400,
            stale_every: 2 + u8::arbitrary(g) % 9,
            ops: Vec::arbitrary(g),
        }
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Case>> {
        let c = self.clone();
        Box::new(self.ops.shrink().map(move |ops| Case { ops, ..c.clone() }))
    }
}

/// Where each packet ended up.
#[derive(Debug, Default)]
struct Ledger {
    outcome: HashMap<u32, &'static str>,
    queued: HashMap<u32, u32>,
}

impl Ledger {
    fn settle(&mut self, p: Pkt, how: &'static str) -> Result<(), String> {
        if self.queued.remove(&p.id).is_none() {
            return Err(format!("packet {} {how} but not queued", p.id));
        }
        if let Some(was) = self.outcome.insert(p.id, how) {
            return Err(format!("packet {} {how} after {was}", p.id));
        }
        Ok(())
    }
}

fn leaf(n: u8) -> ClassId {
    ClassId::new(1, 0x10 + u16::from(n % 4))
}

fn child(n: u8) -> ClassId {
    ClassId::new(1, 0x20 + u16::from(n % 4))
}

fn run(case: &Case) -> Result<(), String> {
    let template = DroppingQueue::new(usize::from(case.cap), u32::from(case.max_len), |p: &Pkt| {
        p.stale
    });
    let mut q: Htb<Pkt, DroppingQueue<Pkt>> =
        Htb::with_queue(QdiscConfig::new(1).direct_qlen(4), template);
    let root = ClassId::new(1, 1);
    let cfg = ClassConfig::new(2_000_000).ceil(10_000_000);
    q.add_class(root, ClassId::new(1, 0), &ClassConfig::new(10_000_000), 0)
        .map_err(|e| e.to_string())?;
    for n in 0..4 {
        q.add_class(leaf(n), root, &cfg, 0)
            .map_err(|e| e.to_string())?;
    }
    let mut led = Ledger::default();
    let (mut now, mut next_id, mut refused) = (0u64, 1u32, 0u64);
    for op in &case.ops {
        let mut purged = Vec::new();
        match *op {
            Op::Enqueue(n, len) => {
                let p = Pkt {
                    id: next_id,
                    len: u32::from(len),
                    stale: next_id % u32::from(case.stale_every) == 0,
                };
                next_id += 1;
                led.queued.insert(p.id, p.len);
                let to = if n % 8 == 7 {
                    ClassId::new(1, 0x99)
                } else {
                    leaf(n)
                };
                if let Err(d) = q.enqueue(p, to) {
                    led.settle(d.packet, "refused")?;
                    refused += 1;
                }
            }
            Op::Dequeue(us) => {
                now += u64::from(us) * 1000;
                if let Some(p) = q.dequeue(now) {
                    led.settle(p, "sent")?;
                }
            }
            Op::Toggle(n) => match q.delete_class(leaf(n), now) {
                Ok(a) => purged = a.dropped,
                Err(_) => {
                    // Not there (or has a child): add it back if missing.
                    if q.class_info(leaf(n)).is_none() {
                        q.add_class(leaf(n), root, &cfg, now)
                            .map_err(|e| e.to_string())?;
                    }
                }
            },
            Op::Nest(n) => {
                if q.class_info(child(n)).is_some() {
                    purged = q
                        .delete_class(child(n), now)
                        .map_err(|e| e.to_string())?
                        .dropped;
                } else if q.class_info(leaf(n)).is_some() {
                    purged = q
                        .add_class(child(n), leaf(n), &cfg, now)
                        .map_err(|e| e.to_string())?
                        .dropped;
                }
            }
        }
        for p in purged {
            led.settle(p, "purged")?;
        }
        for d in q.take_dropped() {
            if d.reason != DropReason::LeafQueue {
                return Err(format!("take_dropped gave reason {:?}", d.reason));
            }
            led.settle(d.packet, "dropped by its queue")?;
        }
        let (qlen, backlog) = (
            led.queued.len() as u64,
            led.queued.values().map(|&l| u64::from(l)).sum::<u64>(),
        );
        let s = q.stats();
        if (q.len() as u64, s.backlog) != (qlen, backlog) {
            return Err(format!(
                "after {op:?}: qdisc holds {} packets / {} bytes, the ledger {qlen} / {backlog}",
                q.len(),
                s.backlog
            ));
        }
        let own = led
            .outcome
            .values()
            .filter(|&&h| h == "dropped by its queue")
            .count() as u64;
        let purged = led.outcome.values().filter(|&&h| h == "purged").count() as u64;
        if s.drops != refused + own + purged {
            return Err(format!(
                "after {op:?}: {} qdisc drops, expected {refused} refused + {own} by queues + {purged} purged",
                s.drops
            ));
        }
        q.check_invariants();
    }
    // What is left comes out of a reset.
    for p in q.reset() {
        led.settle(p, "reset")?;
    }
    if !led.queued.is_empty() {
        return Err(format!("{} packets unaccounted for", led.queued.len()));
    }
    Ok(())
}

#[test]
fn every_packet_comes_out_once_with_dropping_leaf_queues() {
    fn prop(case: Case) -> bool {
        match run(&case) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("{e}");
                false
            }
        }
    }
    QuickCheck::new()
        .tests(400)
        .quickcheck(prop as fn(Case) -> bool);
}
