//! `htb::idset::IdSet` against the red-black tree the kernel uses for HTB's
//! rows and feeds (`intrusive_collections::RBTree`) and against
//! `std::collections::BTreeSet`, on the row pattern.
//!
//! A row (and an inner class's feed) is an ordered set of class minors with a
//! round-robin cursor: a class is inserted when it becomes active, removed
//! when it goes idle or throttled, and every DRR turn moves the cursor to the
//! next member after it, wrapping to the first.
//!
//! * `row_round_robin/{1024,65535}/{idset,rbtree,btreeset}`: keys `0..N`
//!   (dense, like 16-bit class minors), a pseudo-random half of them present
//!   and a cursor on a member. One iteration removes a random present key
//!   (moving the cursor on first if it is the one removed), inserts a random
//!   absent key, then advances the cursor to the next member (wrapping).
//!
//! Every implementation draws the same keys: the present and absent keys are
//! kept in side vectors (random pick + swap-remove, O(1)), so only the set
//! operations differ. Before timing, the three must visit the same cursor
//! positions for 10 000 iterations. The tree's nodes are boxed once and
//! re-linked, as the kernel's nodes are embedded in the classes: the timed
//! loop of `idset` and `rbtree` does not allocate (`btreeset` may). The tree
//! finds the cursor's successor by a search (`lower_bound`), which is what
//! the kernel does when its saved pointer was invalidated; safe code cannot
//! keep a node pointer across the removals.
//!
//! Throughput = 1 element per iteration, so criterion reports ns per
//! iteration (one remove, one insert, one next-after).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::ops::Bound;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use htb::idset::IdSet;
use htb_benches::Rng;
use intrusive_collections::{KeyAdapter, RBTree, RBTreeLink, intrusive_adapter};

/// Key-space sizes: a mid-size tree, and every 16-bit class minor but 0.
const SIZES: [u32; 2] = [1024, 65_535];

/// Iterations compared across implementations before timing.
const CHECK_STEPS: usize = 10_000;

/// The operations a row needs.
trait Row {
    /// An empty set of keys in `0..n`.
    fn with_keys(n: u32) -> Self;
    fn insert(&mut self, k: u32);
    fn remove(&mut self, k: u32);
    fn first(&self) -> Option<u32>;
    /// The smallest member `> k`.
    fn next_after(&self, k: u32) -> Option<u32>;
}

impl Row for IdSet {
    fn with_keys(n: u32) -> Self {
        IdSet::with_capacity(n)
    }
    #[inline]
    fn insert(&mut self, k: u32) {
        let new = IdSet::insert(self, k);
        debug_assert!(new);
    }
    #[inline]
    fn remove(&mut self, k: u32) {
        let was = IdSet::remove(self, k);
        debug_assert!(was);
    }
    #[inline]
    fn first(&self) -> Option<u32> {
        IdSet::first(self)
    }
    #[inline]
    fn next_after(&self, k: u32) -> Option<u32> {
        IdSet::next_after(self, k)
    }
}

/// A tree node: in the kernel, the `rb_node` embedded in `struct htb_class`.
struct Node {
    link: RBTreeLink,
    key: u32,
}

intrusive_adapter!(NodeAdapter = Box<Node>: Node { link: RBTreeLink });

impl<'a> KeyAdapter<'a> for NodeAdapter {
    type Key = u32;
    fn get_key(&self, node: &'a Node) -> u32 {
        node.key
    }
}

/// An intrusive red-black tree, with the unlinked nodes parked by key.
struct Tree {
    tree: RBTree<NodeAdapter>,
    spare: Vec<Option<Box<Node>>>,
}

impl Row for Tree {
    fn with_keys(n: u32) -> Self {
        let spare = (0..n)
            .map(|key| {
                Some(Box::new(Node {
                    link: RBTreeLink::new(),
                    key,
                }))
            })
            .collect();
        Tree {
            tree: RBTree::new(NodeAdapter::new()),
            spare,
        }
    }
    #[inline]
    fn insert(&mut self, k: u32) {
        let node = self.spare[k as usize].take().expect("key absent");
        self.tree.insert(node);
    }
    #[inline]
    fn remove(&mut self, k: u32) {
        let node = self.tree.find_mut(&k).remove();
        debug_assert!(node.is_some());
        self.spare[k as usize] = node;
    }
    #[inline]
    fn first(&self) -> Option<u32> {
        self.tree.front().get().map(|n| n.key)
    }
    #[inline]
    fn next_after(&self, k: u32) -> Option<u32> {
        self.tree
            .lower_bound(intrusive_collections::Bound::Excluded(&k))
            .get()
            .map(|n| n.key)
    }
}

impl Row for BTreeSet<u32> {
    fn with_keys(_: u32) -> Self {
        BTreeSet::new()
    }
    #[inline]
    fn insert(&mut self, k: u32) {
        let new = BTreeSet::insert(self, k);
        debug_assert!(new);
    }
    #[inline]
    fn remove(&mut self, k: u32) {
        let was = BTreeSet::remove(self, &k);
        debug_assert!(was);
    }
    #[inline]
    fn first(&self) -> Option<u32> {
        BTreeSet::first(self).copied()
    }
    #[inline]
    fn next_after(&self, k: u32) -> Option<u32> {
        self.range((Bound::Excluded(k), Bound::Unbounded))
            .next()
            .copied()
    }
}

/// The row workload over one implementation.
struct RoundRobin<R> {
    set: R,
    present: Vec<u32>,
    absent: Vec<u32>,
    cursor: u32,
    rng: Rng,
}

impl<R: Row> RoundRobin<R> {
    /// Keys `0..n`, a pseudo-random half present (the same half for every
    /// implementation), the cursor on the first member.
    fn new(n: u32) -> Self {
        assert!(n >= 4, "the set must never run empty");
        let mut rng = Rng::new(0x5eed_0000 ^ n as u64);
        let mut keys: Vec<u32> = (0..n).collect();
        for i in (1..keys.len()).rev() {
            let j = rng.below(i as u32 + 1) as usize;
            keys.swap(i, j);
        }
        let absent = keys.split_off(keys.len() / 2);
        let present = keys;
        let mut set = R::with_keys(n);
        for &k in &present {
            set.insert(k);
        }
        let cursor = set.first().expect("non-empty");
        RoundRobin {
            set,
            present,
            absent,
            cursor,
            rng,
        }
    }

    /// The next member after `k`, wrapping to the first.
    #[inline]
    fn next_wrapping(&self, k: u32) -> u32 {
        match self.set.next_after(k) {
            Some(next) => next,
            None => self.set.first().expect("non-empty"),
        }
    }

    /// One iteration; returns the new cursor.
    #[inline]
    fn step(&mut self) -> u32 {
        let i = self.rng.below(self.present.len() as u32) as usize;
        let gone = self.present.swap_remove(i);
        let j = self.rng.below(self.absent.len() as u32) as usize;
        let new = self.absent.swap_remove(j);
        self.present.push(new);
        self.absent.push(gone);

        if gone == self.cursor {
            self.cursor = self.next_wrapping(gone);
        }
        self.set.remove(gone);
        self.set.insert(new);
        self.cursor = self.next_wrapping(self.cursor);
        self.cursor
    }

    /// The cursor positions of the next `steps` iterations, and the members
    /// at the end.
    fn trace(mut self, steps: usize) -> (Vec<u32>, Vec<u32>) {
        let cursors = (0..steps).map(|_| self.step()).collect();
        let mut members = Vec::with_capacity(self.present.len());
        let mut k = self.set.first();
        while let Some(m) = k {
            members.push(m);
            k = self.set.next_after(m);
        }
        let mut expected = self.present.clone();
        expected.sort_unstable();
        assert_eq!(members, expected, "members differ from the side vector");
        (cursors, members)
    }
}

fn row_round_robin(c: &mut Criterion) {
    for n in SIZES {
        let idset = RoundRobin::<IdSet>::new(n).trace(CHECK_STEPS);
        let tree = RoundRobin::<Tree>::new(n).trace(CHECK_STEPS);
        let btree = RoundRobin::<BTreeSet<u32>>::new(n).trace(CHECK_STEPS);
        assert!(idset == tree, "IdSet and RBTree disagree (n = {n})");
        assert!(idset == btree, "IdSet and BTreeSet disagree (n = {n})");

        let mut g = c.benchmark_group(format!("row_round_robin/{n}"));
        g.throughput(Throughput::Elements(1));
        bench_row::<IdSet>(&mut g, "idset", n);
        bench_row::<Tree>(&mut g, "rbtree", n);
        bench_row::<BTreeSet<u32>>(&mut g, "btreeset", n);
        g.finish();
    }
}

fn bench_row<R: Row>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: u32) {
    let mut state: Option<RoundRobin<R>> = None;
    g.bench_function(name, |b| {
        // Built on first use only, and kept from sample to sample.
        let w = state.get_or_insert_with(|| RoundRobin::new(n));
        b.iter(|| black_box(w.step()));
    });
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = row_round_robin
}
criterion_main!(benches);
