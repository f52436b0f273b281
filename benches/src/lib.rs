//! Shared workloads for the `htb` benchmarks (`benches/shaper.rs`).
//!
//! Everything that builds a class tree or pre-fills queues lives here, so the
//! criterion benches time only the packet path, and so the unit tests below
//! can check that each workload really is what its name says (nothing ever
//! throttled in [`Unthrottled`]; every colour, borrowing and wait-queue
//! traffic in [`Throttled`]).
//!
//! Both workloads use a three-level tree:
//!
//! ```text
//! 1:1                    top-level class (the only root)
//! ├── 1:2 … 1:(1+inner)  inner classes
//! │   └── leaves         `per_inner` leaves under each inner class
//! ```
//!
//! Minors are handed out in that order (root, inner classes, then the leaves
//! of inner class 0, of inner class 1, …). A class minor is 16 bits and 0
//! names the qdisc, so a tree holds at most 65 535 classes: the largest
//! square layout that fits is 255 inner classes × 255 leaves = 65 025 leaves
//! (65 281 classes), which is what [`Layout::LARGE`] is.
//!
//! Time is virtual: each workload keeps its own `now` in nanoseconds and
//! advances it by [`NS_PER_STEP`] per packet (and, when throttled, jumps to
//! [`Htb::next_wakeup`] whenever `dequeue` has nothing to give).

#![deny(missing_docs)]

use htb::{ClassConfig, ClassId, Htb, Packet, QdiscConfig};

/// Packet length used by every workload (a minimum Ethernet frame without FCS).
pub const PKT_LEN: u32 = 64;

/// The qdisc handle major (`1:`).
pub const HANDLE: u16 = 1;

/// Virtual time that passes per packet handled (10 ns: 100 Mpps offered).
pub const NS_PER_STEP: u64 = 10;

/// 100 Gbit/s in bytes per second.
pub const RATE_100GBIT: u64 = 100_000_000_000 / 8;

/// 1 Gbit/s in bytes per second.
pub const RATE_1GBIT: u64 = 1_000_000_000 / 8;

/// Shape of the three-level tree: one top-level class, `inner` inner classes
/// under it, `per_inner` leaves under each inner class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Inner classes under the top-level class.
    pub inner: u16,
    /// Leaves under each inner class.
    pub per_inner: u16,
}

impl Layout {
    /// 16 leaves: 4 inner × 4 leaves.
    pub const SMALL: Layout = Layout {
        inner: 4,
        per_inner: 4,
    };
    /// 1024 leaves: 32 inner × 32 leaves.
    pub const MEDIUM: Layout = Layout {
        inner: 32,
        per_inner: 32,
    };
    /// 65 025 leaves: 255 inner × 255 leaves, 65 281 classes in all — the
    /// largest square tree whose minors fit in 1..=0xffff (65 536 leaves
    /// cannot: they alone would use every minor).
    pub const LARGE: Layout = Layout {
        inner: 255,
        per_inner: 255,
    };

    /// Number of leaves.
    pub fn leaves(self) -> u32 {
        self.inner as u32 * self.per_inner as u32
    }

    /// Number of classes (root + inner + leaves).
    pub fn classes(self) -> u32 {
        1 + self.inner as u32 + self.leaves()
    }

    /// Minor of the top-level class.
    pub fn root_minor(self) -> u16 {
        1
    }

    /// Minor of inner class `i` (`0..inner`).
    pub fn inner_minor(self, i: u16) -> u16 {
        2 + i
    }

    /// Minor of leaf `j` of inner class `i`.
    pub fn leaf_minor(self, i: u16, j: u16) -> u16 {
        let m = 2 + self.inner as u32 + i as u32 * self.per_inner as u32 + j as u32;
        u16::try_from(m).expect("layout exceeds 65535 classes")
    }
}

/// Class configurations for the three levels of a tree.
pub struct TreeConfig {
    /// The top-level class.
    pub root: ClassConfig,
    /// Every inner class.
    pub inner: ClassConfig,
    /// Leaf `n` (numbered `0..leaves` in minor order) gets `leaf(n)`.
    pub leaf: Box<dyn Fn(u32) -> ClassConfig>,
}

/// Builds a tree of `layout` with `cfg` into `htb`; returns the leaf ids in
/// minor order.
pub fn build_tree<P: Packet>(htb: &mut Htb<P>, layout: Layout, cfg: &TreeConfig) -> Vec<ClassId> {
    let qdisc = ClassId::new(HANDLE, 0);
    let root = ClassId::new(HANDLE, layout.root_minor());
    htb.add_class(root, qdisc, &cfg.root, 0)
        .expect("add root class");
    let mut leaves = Vec::with_capacity(layout.leaves() as usize);
    for i in 0..layout.inner {
        let inner = ClassId::new(HANDLE, layout.inner_minor(i));
        htb.add_class(inner, root, &cfg.inner, 0)
            .expect("add inner class");
    }
    for i in 0..layout.inner {
        let inner = ClassId::new(HANDLE, layout.inner_minor(i));
        for j in 0..layout.per_inner {
            let leaf = ClassId::new(HANDLE, layout.leaf_minor(i, j));
            let n = leaves.len() as u32;
            htb.add_class(leaf, inner, &(cfg.leaf)(n), 0)
                .expect("add leaf class");
            leaves.push(leaf);
        }
    }
    leaves
}

/// A small, fast pseudo-random generator (xorshift64*), so the destination
/// of each packet costs a couple of cycles and is the same on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (multiply-high, no division).
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * n as u64) >> 32) as u32
    }
}

// ----------------------------------------------------------------------
// Unthrottled
// ----------------------------------------------------------------------

/// The unthrottled configuration: rate = ceil = 100 Gbit/s and 1 MB bursts
/// on every class, so at 64 B per 10 ns (51.2 Gbit/s offered) no class ever
/// leaves green and the wait queues stay empty. Leaf quantum 1514 B (an MTU
/// frame, what one would configure; the derived `rate / r2q` would be
/// clamped to 200 000 with a warning).
pub fn unthrottled_config() -> TreeConfig {
    fn class() -> ClassConfig {
        ClassConfig::new(RATE_100GBIT)
            .ceil(RATE_100GBIT)
            .burst(1_000_000)
            .cburst(1_000_000)
    }
    TreeConfig {
        root: class(),
        inner: class(),
        leaf: Box::new(|_| class().quantum(1514)),
    }
}

/// The pure scheduler cost: a standing backlog spread over every leaf, and
/// per step one 64-byte packet enqueued to a pseudo-randomly chosen leaf and
/// one packet dequeued. Packets are bare `u32` lengths.
pub struct Unthrottled {
    /// The qdisc.
    pub htb: Htb<u32>,
    /// Leaf ids in minor order.
    pub leaves: Vec<ClassId>,
    /// Minor of the first leaf: leaves have consecutive minors, so the hot
    /// loop computes a leaf's id instead of reading it from a table (as the
    /// rte_sched peer does).
    first_leaf: u16,
    rng: Rng,
    /// Virtual time, ns.
    pub now: u64,
    /// `dequeue` calls that returned `None` (must stay 0).
    pub empty_dequeues: u64,
    /// Enqueues refused (must stay 0).
    pub drops: u64,
}

impl Unthrottled {
    /// Builds the tree and queues `backlog_per_leaf` packets in every leaf.
    pub fn new(layout: Layout, backlog_per_leaf: u32) -> Self {
        let mut htb: Htb<u32> = Htb::new(QdiscConfig::new(HANDLE));
        let leaves = build_tree(&mut htb, layout, &unthrottled_config());
        for _ in 0..backlog_per_leaf {
            for &leaf in &leaves {
                htb.enqueue(PKT_LEN, leaf).expect("prefill");
            }
        }
        let first_leaf = leaves[0].minor();
        Unthrottled {
            htb,
            leaves,
            first_leaf,
            rng: Rng::new(0x9e37_79b9_7f4a_7c15),
            now: 0,
            empty_dequeues: 0,
            drops: 0,
        }
    }

    /// One packet in, one packet out; returns the length dequeued (0 if none).
    #[inline]
    pub fn step(&mut self) -> u32 {
        let n = self.rng.below(self.leaves.len() as u32);
        let leaf = ClassId::new(HANDLE, self.first_leaf + n as u16);
        if self.htb.enqueue(PKT_LEN, leaf).is_err() {
            self.drops += 1;
        }
        self.now += NS_PER_STEP;
        match self.htb.dequeue(self.now) {
            Some(p) => p,
            None => {
                self.empty_dequeues += 1;
                0
            }
        }
    }

    /// One burst: `n` packets enqueued to pseudo-random leaves with
    /// [`Htb::enqueue_burst`], then `n` dequeued, the clock advancing 10 ns
    /// per packet (the per-packet API's workload, in bursts as rte_sched is
    /// driven). `batch` is the caller's reusable buffer. Returns the bytes
    /// dequeued.
    pub fn step_burst(
        &mut self,
        n: usize,
        batch: &mut Vec<(u32, ClassId)>,
        out: &mut Vec<u32>,
    ) -> u64 {
        for _ in 0..n {
            let k = self.rng.below(self.leaves.len() as u32);
            batch.push((PKT_LEN, ClassId::new(HANDLE, self.first_leaf + k as u16)));
        }
        self.drops += self.htb.enqueue_burst(batch).len() as u64;
        self.now += NS_PER_STEP * n as u64;
        let got = self.htb.dequeue_burst(self.now, n, out);
        self.empty_dequeues += (n - got) as u64;
        out.drain(..).map(u64::from).sum()
    }

    /// `n` packets in bursts of `burst`; returns the bytes dequeued.
    pub fn run_burst(&mut self, n: u64, burst: usize) -> u64 {
        let mut batch = Vec::with_capacity(burst);
        let mut out = Vec::with_capacity(burst);
        let mut bytes = 0;
        for _ in 0..n / burst as u64 {
            bytes += self.step_burst(burst, &mut batch, &mut out);
        }
        bytes
    }

    /// `n` steps; returns the bytes dequeued.
    pub fn run(&mut self, n: u64) -> u64 {
        let mut bytes = 0;
        for _ in 0..n {
            bytes += self.step() as u64;
        }
        bytes
    }
}

// ----------------------------------------------------------------------
// Throttled
// ----------------------------------------------------------------------

/// A packet that remembers which leaf it was queued to, so the closed-loop
/// throttled workload can put a new packet back where one left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tagged {
    /// Length in bytes.
    pub len: u32,
    /// Index of the leaf in [`Throttled::leaves`].
    pub leaf: u32,
}

impl Packet for Tagged {
    #[inline]
    fn len(&self) -> u32 {
        self.len
    }
}

/// The throttled configuration for `layout`, with the top-level class at
/// `link` bytes per second (rate = ceil):
///
/// * leaves: rate = 0.8 × their fair share (`link / leaves`), ceil = `link`,
///   except every 8th leaf whose ceil is 0.5 × its fair share, so it keeps
///   going red; default bursts (1600 B = 25 packets);
/// * inner classes: rate = 0.8 × their fair share (`link / inner`),
///   ceil = `link`;
///
/// so that with every leaf backlogged, leaves flip between green (own rate)
/// and yellow (borrowing from their inner class), inner classes between
/// green and yellow (borrowing from the top), the capped leaves go red, and
/// the top-level class itself runs out (red) every few packets.
pub fn throttled_config(layout: Layout, link: u64) -> TreeConfig {
    let leaf_share = link / layout.leaves() as u64;
    let inner_share = link / layout.inner as u64;
    TreeConfig {
        root: ClassConfig::new(link).ceil(link),
        inner: ClassConfig::new(inner_share * 19 / 20).ceil(link),
        leaf: Box::new(move |n| {
            let ceil = if n % 8 == 7 { leaf_share / 2 } else { link };
            ClassConfig::new(leaf_share * 4 / 5)
                .ceil(ceil)
                .quantum(1514)
        }),
    }
}

/// Shaping at work: a closed loop that keeps `backlog_per_leaf` 64-byte
/// packets in every leaf (each packet dequeued is replaced by one to the same
/// leaf), under [`throttled_config`] with a 1 Gbit/s top-level class. When
/// `dequeue` returns `None`, `now` jumps to [`Htb::next_wakeup`].
pub struct Throttled {
    /// The qdisc.
    pub htb: Htb<Tagged>,
    /// Leaf ids in minor order.
    pub leaves: Vec<ClassId>,
    /// Virtual time, ns.
    pub now: u64,
    /// `dequeue` calls that returned `None`.
    pub empty_dequeues: u64,
    /// Packets dequeued.
    pub sent: u64,
}

impl Throttled {
    /// Builds the tree, fills every leaf, and runs `warmup` packets so the
    /// colours are in their steady state (bursts spent).
    pub fn new(layout: Layout, backlog_per_leaf: u32, warmup: u64) -> Self {
        let mut htb: Htb<Tagged> = Htb::new(QdiscConfig::new(HANDLE));
        let leaves = build_tree(&mut htb, layout, &throttled_config(layout, RATE_1GBIT));
        for _ in 0..backlog_per_leaf {
            for (n, &leaf) in leaves.iter().enumerate() {
                let pkt = Tagged {
                    len: PKT_LEN,
                    leaf: n as u32,
                };
                htb.enqueue(pkt, leaf).expect("prefill");
            }
        }
        let mut t = Throttled {
            htb,
            leaves,
            now: 0,
            empty_dequeues: 0,
            sent: 0,
        };
        t.run(warmup);
        t.empty_dequeues = 0;
        t.sent = 0;
        t
    }

    /// Dequeues one packet (jumping the clock to the next wake-up as often
    /// as needed) and queues its replacement; returns its length.
    #[inline]
    pub fn step(&mut self) -> u32 {
        loop {
            self.now += NS_PER_STEP;
            match self.htb.dequeue(self.now) {
                Some(p) => {
                    self.sent += 1;
                    let leaf = self.leaves[p.leaf as usize];
                    // Cannot be refused: the leaf just lost a packet.
                    let _ = self.htb.enqueue(p, leaf);
                    return p.len;
                }
                None => {
                    self.empty_dequeues += 1;
                    let wake = self.htb.next_wakeup().unwrap_or(self.now);
                    self.now = self.now.max(wake);
                }
            }
        }
    }

    /// `n` packets; returns the bytes dequeued.
    pub fn run(&mut self, n: u64) -> u64 {
        let mut bytes = 0;
        for _ in 0..n {
            bytes += self.step() as u64;
        }
        bytes
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use htb::Mode;

    #[test]
    fn layouts_fit_and_are_named_honestly() {
        assert_eq!(Layout::SMALL.leaves(), 16);
        assert_eq!(Layout::MEDIUM.leaves(), 1024);
        assert_eq!(Layout::LARGE.leaves(), 65_025);
        assert_eq!(Layout::LARGE.classes(), 65_281);
        let l = Layout::LARGE;
        assert_eq!(
            l.leaf_minor(l.inner - 1, l.per_inner - 1) as u32,
            l.classes()
        );
        let w = Unthrottled::new(Layout::SMALL, 1);
        let first = w.leaves[0].minor();
        for (n, id) in w.leaves.iter().enumerate() {
            assert_eq!(id.minor(), first + n as u16, "leaf minors are consecutive");
        }
    }

    #[test]
    fn unthrottled_never_throttles() {
        for layout in [Layout::SMALL, Layout::MEDIUM] {
            let mut w = Unthrottled::new(layout, 4);
            let n = 200_000;
            assert_eq!(w.run(n), n * PKT_LEN as u64);
            assert_eq!((w.empty_dequeues, w.drops), (0, 0));
            let s = w.htb.stats();
            assert_eq!(s.overlimits, 0);
            assert_eq!(s.qlen, layout.leaves() as u64 * 4);
            for info in w.htb.classes() {
                assert_eq!(info.mode, Mode::CanSend, "{}", info.id);
                assert_eq!(info.stats.borrows, 0, "{}", info.id);
            }
            w.htb.check_invariants();
        }
    }

    #[test]
    fn large_layout_builds() {
        let w = Unthrottled::new(Layout::LARGE, 1);
        assert_eq!(w.htb.class_count(), 65_281);
        assert_eq!(w.htb.len(), 65_025);
    }

    #[test]
    fn throttled_exercises_every_colour() {
        let layout = Layout::MEDIUM;
        let mut w = Throttled::new(layout, 4, 100_000);
        let start = w.now;
        let n = 200_000u64;
        let before: Vec<_> = w.htb.classes();
        w.run(n);
        w.htb.check_invariants();
        assert!(w.empty_dequeues > 0, "the clock must have had to jump");
        // The top-level class shapes: 64 B at 1 Gbit/s = 512 ns per packet.
        let elapsed = w.now - start;
        let per_pkt = elapsed as f64 / n as f64;
        assert!((480.0..560.0).contains(&per_pkt), "{per_pkt} ns/packet");
        let after = w.htb.classes();
        let delta = |f: fn(&htb::ClassStats) -> u64| -> Vec<u64> {
            after
                .iter()
                .zip(&before)
                .map(|(a, b)| f(&a.stats) - f(&b.stats))
                .collect()
        };
        let lends = delta(|s| s.lends);
        let borrows = delta(|s| s.borrows);
        let overl = delta(|s| s.overlimits);
        let leaf = |i: usize| after[i].is_leaf;
        // Leaves both send on their own rate (green) and borrow (yellow);
        // capped leaves go red; inner classes lend and borrow too.
        let n_leaves_both = (0..after.len())
            .filter(|&i| leaf(i) && lends[i] > 0 && borrows[i] > 0)
            .count();
        assert!(
            n_leaves_both > layout.leaves() as usize / 2,
            "{n_leaves_both}"
        );
        let leaf_overl: u64 = (0..after.len())
            .filter(|&i| leaf(i))
            .map(|i| overl[i])
            .sum();
        assert!(leaf_overl > 0);
        let inner_both = (0..after.len())
            .filter(|&i| after[i].level == 6 && lends[i] > 0 && borrows[i] > 0)
            .count();
        assert!(inner_both > 0, "inner classes lend and borrow");
        let root = &after[0];
        assert_eq!(root.level, 7);
        assert!(overl[0] > 0, "the top-level class goes red");
    }
}
