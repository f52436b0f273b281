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
//!
//! And the class storage (`htb::Htb` stores each class at its minor) against
//! a `slab::Slab` reached through a minor → key table (what `htb` did before)
//! and through a hash map (the kernel's class hash):
//!
//! * `class_lookup/{1024,65025}/{by_minor,slab_table,slab_hash}`: N classes
//!   of 384 bytes (the size of `htb`'s class) with minors `1..=N`, each
//!   naming the next minor of one random cycle through all of them. One
//!   iteration finds the class of the current minor, counts a packet in it
//!   and moves to the minor it names: each lookup waits for the one before,
//!   as a single-call enqueue waits for its class, so the time is the
//!   latency of the lookup and the class line. The three must follow the
//!   same cycle before timing. No storage here asks for huge pages.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::ops::Bound;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use htb::idset::IdSet;
use htb_benches::Rng;
use intrusive_collections::{KeyAdapter, RBTree, RBTreeLink, intrusive_adapter};
use slab::Slab;

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

/// A stand-in for `htb`'s class: 384 bytes, cache-line aligned, with the
/// fields a lookup touches on its first line.
#[repr(C, align(64))]
struct Class {
    next: u32,
    packets: u64,
    _rest: [u64; 46],
}

const _: () = assert!(size_of::<Class>() == 384);

impl Class {
    fn new(next: u32) -> Self {
        Class {
            next,
            packets: 0,
            _rest: [0; 46],
        }
    }
}

/// Class counts: a mid-size tree, and the leaves of the largest 3-level one.
const CLASS_COUNTS: [u32; 2] = [1024, 65_025];

/// The next minor of each minor `1..=n` (index 0 unused): one random cycle
/// through all of them.
fn cycle(n: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (1..=n).collect();
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let mut next = vec![0; n as usize + 1];
    for w in 0..order.len() {
        next[order[w] as usize] = order[(w + 1) % order.len()];
    }
    next
}

/// A class storage that finds a class by minor.
trait Storage {
    fn build(next: &[u32]) -> Self;
    fn class_mut(&mut self, minor: u32) -> &mut Class;
    /// One iteration: counts a packet in class `minor`, returns the next.
    #[inline]
    fn step(&mut self, minor: u32) -> u32 {
        let c = self.class_mut(minor);
        c.packets += 1;
        c.next
    }
}

/// `htb`'s layout: a vector indexed by minor (slot 0 vacant).
struct ByMinor(Vec<Class>);

impl Storage for ByMinor {
    fn build(next: &[u32]) -> Self {
        ByMinor(next.iter().map(|&m| Class::new(m)).collect())
    }
    #[inline]
    fn class_mut(&mut self, minor: u32) -> &mut Class {
        &mut self.0[minor as usize]
    }
}

/// A slab, and a table from minor to slab key.
struct SlabTable {
    slab: Slab<Class>,
    key: Vec<u32>,
}

impl Storage for SlabTable {
    fn build(next: &[u32]) -> Self {
        let mut slab = Slab::with_capacity(next.len());
        let mut key = vec![u32::MAX; next.len()];
        for (m, &nx) in next.iter().enumerate().skip(1) {
            key[m] = slab.insert(Class::new(nx)) as u32;
        }
        SlabTable { slab, key }
    }
    #[inline]
    fn class_mut(&mut self, minor: u32) -> &mut Class {
        let k = self.key[minor as usize];
        self.slab.get_mut(k as usize).expect("a class")
    }
}

/// A slab, and a hash map from minor to slab key, as the kernel finds a
/// class by id (with a multiplicative hash, not std's SipHash).
struct SlabHash {
    slab: Slab<Class>,
    key: HashMap<u32, u32, BuildHasherDefault<MulHash>>,
}

#[derive(Default)]
struct MulHash(u64);

impl Hasher for MulHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Storage for SlabHash {
    fn build(next: &[u32]) -> Self {
        let mut slab = Slab::with_capacity(next.len());
        let mut key = HashMap::with_capacity_and_hasher(next.len(), Default::default());
        for (m, &nx) in next.iter().enumerate().skip(1) {
            key.insert(m as u32, slab.insert(Class::new(nx)) as u32);
        }
        SlabHash { slab, key }
    }
    #[inline]
    fn class_mut(&mut self, minor: u32) -> &mut Class {
        let k = self.key[&minor];
        self.slab.get_mut(k as usize).expect("a class")
    }
}

/// The minors visited by the first `steps` iterations from minor 1.
fn chase<S: Storage>(next: &[u32], steps: usize) -> Vec<u32> {
    let mut s = S::build(next);
    let mut m = 1;
    (0..steps)
        .map(|_| {
            m = s.step(m);
            m
        })
        .collect()
}

fn class_lookup(c: &mut Criterion) {
    for n in CLASS_COUNTS {
        let next = cycle(n);
        let path = chase::<ByMinor>(&next, CHECK_STEPS);
        assert!(
            path == chase::<SlabTable>(&next, CHECK_STEPS),
            "slab_table (n = {n})"
        );
        assert!(
            path == chase::<SlabHash>(&next, CHECK_STEPS),
            "slab_hash (n = {n})"
        );
        let mut g = c.benchmark_group(format!("class_lookup/{n}"));
        g.throughput(Throughput::Elements(1));
        bench_lookup::<ByMinor>(&mut g, "by_minor", &next);
        bench_lookup::<SlabTable>(&mut g, "slab_table", &next);
        bench_lookup::<SlabHash>(&mut g, "slab_hash", &next);
        g.finish();
    }
}

fn bench_lookup<S: Storage>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, next: &[u32]) {
    let mut state: Option<(S, u32)> = None;
    g.bench_function(name, |b| {
        let (s, m) = state.get_or_insert_with(|| (S::build(next), 1));
        b.iter(|| {
            *m = s.step(*m);
            black_box(*m)
        });
    });
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = row_round_robin, class_lookup
}
criterion_main!(benches);
