/*! The compiled lookup table, one implementation for IPv4 (`Table<u32>`) and
IPv6 (`Table<u128>`): a multibit trie with compressed nodes (after Asai and
Ohara's Poptrie), kept in sync with the LC-trie.

* `root`: one entry per /18 (2^18 × 4 bytes = 1 MiB, allocated with the
  first prefix). An entry is a tag (0 = nothing), or `CHILD | w`: a node
  holds the /18 because a prefix longer than /18 lies inside it; its header
  is at word `w` of the leaf pool, right in front of its leaves, so that a
  lookup ending there (most IPv4 lookups) reads one place after the root.
  An IPv4 node without children (most of them: nothing longer than /24
  below) has a 3-word header (`leafvec`, `def`; `KIDS` clear in its entry)
  instead of 6: at 1M IPv4 prefixes that is 3.5 MiB less for random
  lookups to miss in (cache and TLB). IPv6 keeps the 6-word header
  everywhere: most of its root-level nodes have children, and its lookups
  skip the test.
  18 bits rather than 16 so that the dominant lengths end exactly on a
  stride edge: /24 for IPv4 (18 + 6) and /48 for IPv6 (18 + 5 × 6), which
  saves a node per path. (A 24-bit direct table, DIR-24-8, is 64 MiB on its
  own; this one is about 16 MiB in all at 1M IPv4 prefixes.)
* Below the root every node consumes the next 6 bits of the address (the key
  is read with 4 zero bits appended, so that 3 strides end exactly at /32
  and 19 at /128). Of its 64 slots each is a child node or a leaf:
  - `vector` has bit `i` set when slot `i` is a child; the children are
    stored next to each other from `base1`, so child `i` is number
    `popcount(vector & bits 0..=i) - 1`;
  - the leaves are stored run-length compressed: `leafvec` has bit `i` set
    when leaf slot `i` starts a run (its tag differs from the previous leaf
    slot's, or it is the first leaf slot); runs are stored from `base0`;
  - `def` is the tag of the longest prefix of length ≤ the node's depth
    covering the node (what the parent's slot would say). A leaf holds the
    tag of the longest prefix ending inside this node's stride that covers
    the slot, or 0 for "the node's `def`".

A lookup is one node read per 6 bits plus one leaf read, with no
backtracking. A node is 32 bytes (a root-level one a 24- or 12-byte
header), and a sparse node (one /48 in a /42, say) stores 3 leaves
instead of 64 entries.

Tags are the caller's prefix id + 1. Updates are incremental (controlled
prefix expansion, but only within one node): adding a prefix of
length `L` ending in the stride of node `n` writes its tag over the leaves
of its range whose prefix is shorter (or 0) and, for each child in its
range, replaces the child's `def` if shorter — and the `def` of the nodes
below that inherited it unchanged. Removing it does the reverse with the
longest shorter covering prefix: `n.def` or, for the at most 5 lengths
inside `n`'s own stride, whatever the caller's trie says. Nodes are created
along the prefix's path when added; a node left with nothing of its own (no
children, one run of 0) is folded back into its parent's slot. No update
re-encodes more than one node per level of its path. Node and leaf blocks
come from pools with one free list per block size (`SIZES`), so freed
blocks are reused.
*/

use super::KeyBits;

/// A root entry that points to a node.
const CHILD: u32 = 1 << 31;
/// In a root entry with [`CHILD`]: the node has children (a long header).
const KIDS: u32 = 1 << 30;
/// Largest tag (prefix id + 1) the table can hold.
pub(crate) const MAX_TAG: u32 = CHILD - 1;
/// Address bits resolved by the root array.
const ROOT_BITS: u32 = 18;
/// Address bits resolved by each node.
const STRIDE: u32 = 6;
/// Slots per node.
const SLOTS: usize = 1 << STRIDE;
/// Words of a root-level node's header, stored in front of its leaves:
/// `leafvec` (two words) and `def`, then for a node with children (most
/// IPv4 ones have none) `vector` (two words) and `base1`. `base0` is the
/// word after the header.
const HDR: u32 = 6;
/// Words of the header of a root-level node without children.
const SHORT: u32 = 3;

/// Header words in front of the leaves of a node at depth `d` with child
/// vector `vector`. Only IPv4 uses short headers: most IPv6 root-level
/// nodes have children, and a lookup there is cheaper without the test.
fn hdr_of<K: KeyBits>(d: u32, vector: u64) -> u32 {
    if d != ROOT_BITS {
        0
    } else if vector != 0 || K::BITS > 32 {
        HDR
    } else {
        SHORT
    }
}

/// One node: which slots are children, where leaf runs start, where the
/// two blocks live, and the default for leaves holding 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Node {
    vector: u64,
    leafvec: u64,
    base0: u32,
    base1: u32,
    def: u32,
}

/// The 6-bit slot index of `key` in a node at depth `d` (bits `d..d+6`).
#[inline(always)]
fn slot_of<K: KeyBits>(key: K, d: u32) -> u32 {
    key.stride(d, STRIDE)
}

/// Makes room for `extra` more elements in `v`, growing it by a sixteenth at
/// a time rather than doubling: a table of a million prefixes would
/// otherwise carry up to half of its arrays as unused capacity. (Large
/// reallocations move pages rather than copy them, so the smaller steps cost
/// little: building a 1M-prefix table reallocates each array about 150
/// times.)
pub(crate) fn grow<T>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() < extra {
        v.reserve_exact(extra.max(v.len() / 16).max(64));
    }
}

/// The tag a short root-level node (header and leaves from `h[0]`) gives
/// the slots `m` ends at: the leaf, or the node's default where it holds 0.
#[inline(always)]
fn short_leaf(h: &[u32], m: u64) -> u32 {
    let leafvec = u64::from(h[0]) | u64::from(h[1]) << 32;
    let t = h[SHORT as usize + (leafvec & m).count_ones() as usize - 1];
    // Without a branch: whether the leaf holds 0 is close to random for
    // random addresses, and a mispredicted branch also throws away the
    // lookups the processor had started after this one. (A mask from
    // arithmetic, not a comparison, which the compiler would turn back
    // into a branch.)
    t | (h[2] & (u64::from(t).wrapping_sub(1) >> 32) as u32)
}

/// Bits `0..=v`.
#[inline(always)]
fn upto(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

/// Block sizes of a [`Pool`]: up to 64 children or leaves, or a root-level
/// node's header and 64 leaves. Every size up to 32 (where most blocks are),
/// then steps of about an eighth: powers of two would waste about a quarter
/// of the pool.
const SIZES: [u32; 43] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 36, 40, 44, 48, 52, 56, 60, 64, 70, 76, 82,
];

/// Blocks of the [`SIZES`], each size with its own free list.
#[derive(Clone, Debug)]
struct Pool<T> {
    data: Vec<T>,
    free: [Vec<u32>; SIZES.len()],
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            data: Vec::new(),
            free: core::array::from_fn(|_| Vec::new()),
        }
    }
}

impl<T: Copy + Default> Pool<T> {
    /// The size class of a block for `n` (1..=82) elements: the first of
    /// the [`SIZES`] that holds `n`, by arithmetic on their three steps
    /// (1, 4 and 6) rather than a search.
    #[inline]
    fn class(n: u32) -> usize {
        let c = match n {
            0..=32 => n.saturating_sub(1),
            33..=64 => 32 + (n - 33) / 4,
            _ => 40 + (n - 65) / 6,
        };
        debug_assert_eq!(c as usize, SIZES.partition_point(|&s| s < n));
        c as usize
    }

    /// Elements a block for `n` elements takes (0 for none).
    #[cfg(test)]
    fn block(n: u32) -> usize {
        if n == 0 {
            0
        } else {
            SIZES[Self::class(n)] as usize
        }
    }

    fn alloc(&mut self, n: u32) -> u32 {
        let c = Self::class(n);
        if let Some(b) = self.free[c].pop() {
            return b;
        }
        let b = self.data.len();
        grow(&mut self.data, SIZES[c] as usize);
        self.data.resize(b + SIZES[c] as usize, T::default());
        b as u32
    }

    fn release(&mut self, base: u32, n: u32) {
        if n > 0 {
            self.free[Self::class(n)].push(base);
        }
    }

    /// A block for `new` elements in place of the block at `base` holding
    /// `old` (kept when the size class is the same).
    fn resize(&mut self, base: u32, old: u32, new: u32) -> u32 {
        if old > 0 && new > 0 && Self::class(old) == Self::class(new) {
            return base;
        }
        self.release(base, old);
        if new > 0 { self.alloc(new) } else { 0 }
    }

    /// Elements in blocks that are not free.
    fn in_use(&self) -> usize {
        let free: usize = (0..self.free.len())
            .map(|c| self.free[c].len() * SIZES[c] as usize)
            .sum();
        self.data.len() - free
    }

    fn bytes(&self) -> usize {
        self.data.capacity() * core::mem::size_of::<T>()
            + self.free.iter().map(|f| f.capacity() * 4).sum::<usize>()
    }
}

/// Remembers the last `len_of` answer: runs of equal tags are the norm.
struct LenCache<'a> {
    f: &'a dyn Fn(u32) -> u8,
    tag: u32,
    len: u8,
}

/// What an update does.
enum Kind<'a> {
    /// Adding: the lengths of the tags met.
    Add(LenCache<'a>),
    /// Removing: `find(l)` is the tag of the prefix's /l supernet if that
    /// prefix is in the table; `rep` the tag that takes over (found on the
    /// way down).
    Del {
        find: &'a dyn Fn(u8) -> Option<u32>,
        rep: u32,
    },
}

/// One update in progress.
struct Edit<'a, K> {
    key: K,
    len: u32,
    tag: u32,
    kind: Kind<'a>,
}

impl<K> Edit<'_, K> {
    /// What tag `e` (of a prefix covering a whole slot or node of the
    /// updated prefix's range) becomes.
    #[inline]
    fn over(&mut self, e: u32) -> u32 {
        match &mut self.kind {
            Kind::Add(lc) => {
                if e == 0 {
                    return self.tag;
                }
                if e != lc.tag {
                    lc.tag = e;
                    lc.len = (lc.f)(e);
                }
                if u32::from(lc.len) < self.len {
                    self.tag
                } else {
                    e
                }
            }
            Kind::Del { rep, .. } => {
                if e == self.tag {
                    *rep
                } else {
                    e
                }
            }
        }
    }

    fn removing(&self) -> bool {
        matches!(self.kind, Kind::Del { .. })
    }

    /// Removing: the longest prefix strictly shorter than the removed one
    /// and at least `from` long covering it, else `below` (the longest
    /// shorter than `from`, which the caller knows).
    fn find_rep(&mut self, from: u32, below: u32) {
        let len = self.len;
        if let Kind::Del { find, rep } = &mut self.kind {
            *rep = (from..len)
                .rev()
                .find_map(|l| find(l as u8))
                .unwrap_or(below);
        }
    }
}

/// The compiled table for keys `K` (`u32` or `u128`; see the module
/// documentation).
#[derive(Clone, Debug)]
pub(crate) struct Table<K> {
    root: Vec<u32>,
    nodes: Pool<Node>,
    leaves: Pool<u32>,
    key: core::marker::PhantomData<K>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            root: Vec::new(),
            nodes: Pool::default(),
            leaves: Pool::default(),
            key: core::marker::PhantomData,
        }
    }
}

impl<K: KeyBits> Table<K> {
    /// The root-level node of root entry `e` (which has [`CHILD`]): its
    /// header is at word `e & !(CHILD | KIDS)` of the leaf pool, right in
    /// front of its leaves, so that a lookup ending there reads one place.
    #[inline(always)]
    fn head(&self, e: u32) -> Node {
        let w = (e & !(CHILD | KIDS)) as usize;
        let d = &self.leaves.data;
        let leafvec = u64::from(d[w]) | u64::from(d[w + 1]) << 32;
        let def = d[w + 2];
        if K::BITS == 32 && e & KIDS == 0 {
            return Node {
                vector: 0,
                leafvec,
                base0: w as u32 + SHORT,
                base1: 0,
                def,
            };
        }
        Node {
            vector: u64::from(d[w + 3]) | u64::from(d[w + 4]) << 32,
            leafvec,
            base0: w as u32 + HDR,
            base1: d[w + 5],
            def,
        }
    }

    /// Writes the header of root-level node `n` and returns its root entry.
    fn put_head(&mut self, n: &Node) -> u32 {
        let hdr = hdr_of::<K>(ROOT_BITS, n.vector);
        let w = n.base0 - hdr;
        debug_assert!(w < KIDS, "leaf pool beyond 2^30 words");
        let h = &mut self.leaves.data[w as usize..(w + hdr) as usize];
        h[..3].copy_from_slice(&[n.leafvec as u32, (n.leafvec >> 32) as u32, n.def]);
        if hdr == HDR {
            h[3..].copy_from_slice(&[n.vector as u32, (n.vector >> 32) as u32, n.base1]);
            CHILD | KIDS | w
        } else {
            CHILD | w
        }
    }

    /// The tag of the longest prefix covering `key`, 0 if none.
    #[inline(always)]
    pub fn get(&self, key: K) -> u32 {
        let r = self.root.get(key.stride(0, ROOT_BITS) as usize);
        self.get_below(&self.leaves.data, key, r.copied().unwrap_or(0))
    }

    /// [`get`](Self::get) of the key `bits(a)` of every `a` of `keys`
    /// into `out` (through `conv`; `out` as long as `keys`).
    ///
    /// Each lookup waits for two reads, the root entry and then the node,
    /// which mostly miss the cache in a large table; a waiting lookup holds
    /// the processor's reorder window, so that few others can start behind
    /// it. Here the root entry of the key `AHEAD` places on is read early
    /// and its node prefetched (`ring` keeps the entries read ahead), and
    /// the root entry `2 × AHEAD` places on is prefetched: by the time a
    /// lookup runs, both of its reads are usually in cache.
    #[inline(always)]
    pub fn get_each<A: Copy, O>(
        &self,
        keys: &[A],
        bits: impl Fn(A) -> K,
        out: &mut [O],
        conv: impl Fn(u32) -> O,
    ) {
        const AHEAD: usize = 8;
        // Slices held in locals: the loop's stores to `out` would otherwise
        // make the compiler reload them from `self` on every lookup. The
        // root as an array: a stride index is always inside it.
        let data = &self.leaves.data[..];
        let Ok(root) = <&[u32; 1 << ROOT_BITS]>::try_from(&self.root[..]) else {
            // No prefix yet (the root is allocated with the first).
            out.iter_mut().zip(keys).for_each(|(o, _)| *o = conv(0));
            return;
        };
        let at = |a: A| bits(a).stride(0, ROOT_BITS) as usize;
        if K::BITS > 32 {
            // IPv6 walks several nodes below the root entry, so prefetching
            // the first one measured slower than a plain loop.
            for (&k, o) in keys.iter().zip(out.iter_mut()) {
                *o = conv(self.get_below(data, bits(k), root[at(k)]));
            }
            return;
        }
        let fetch = |r: u32| {
            if r & CHILD != 0
                && let Some(h) = data.get((r & !(CHILD | KIDS)) as usize)
            {
                crate::hint::prefetch(h);
            }
        };
        let mut ring = [0u32; AHEAD];
        for (r, &k) in ring.iter_mut().zip(keys) {
            *r = root[at(k)];
            fetch(*r);
        }
        // Lookup `i` of key `k`, reading ahead the root entry of `ahead`
        // (key `i + AHEAD`). A macro, not a closure, so that it is inlined
        // into both loops.
        macro_rules! step {
            ($i:expr, $k:expr, $o:expr, $ahead:expr) => {{
                let slot = &mut ring[$i % AHEAD];
                let r = *slot;
                if let Some(b) = $ahead {
                    *slot = root[at(b)];
                    fetch(*slot);
                }
                *$o = conv(self.get_below(data, bits($k), r));
            }};
        }
        // Zipped slices rather than `keys.get(i + AHEAD)`: no bounds check
        // per lookup; the last `2 × AHEAD` keys go through the second loop.
        let near = keys.get(AHEAD..).unwrap_or(&[]);
        let far = keys.get(2 * AHEAD..).unwrap_or(&[]);
        let mut i = 0;
        for ((&c, &b), (&k, o)) in far.iter().zip(near).zip(keys.iter().zip(out.iter_mut())) {
            crate::hint::prefetch(&root[at(c)]);
            step!(i, k, o, Some(b));
            i += 1;
        }
        for (j, (&k, o)) in keys.iter().zip(out.iter_mut()).enumerate().skip(i) {
            step!(j, k, o, near.get(j).copied());
        }
    }

    /// [`get`](Self::get) of `key` given its root entry `r`; `data` is the
    /// leaf pool.
    #[inline(always)]
    fn get_below(&self, data: &[u32], key: K, r: u32) -> u32 {
        if r & CHILD == 0 {
            return r;
        }
        if K::BITS == 32 && r & KIDS == 0 {
            // A node without children (most IPv4 ones): one leaf read, next
            // to the short header. The header and the longest leaf block
            // fit in one window, so that one bounds check covers the reads
            // (a node in the pool's last words takes the checked reads).
            let w = (r & !CHILD) as usize;
            let m = upto(slot_of(key, ROOT_BITS));
            return match data.get(w..w + SHORT as usize + SLOTS) {
                Some(h) => short_leaf(h, m),
                None => short_leaf(&data[w..], m),
            };
        }
        let mut n = self.head(r);
        let mut d = ROOT_BITS;
        loop {
            let v = slot_of(key, d);
            let m = upto(v);
            if (n.vector >> v) & 1 != 0 {
                n = self.nodes.data[(n.base1 + (n.vector & m).count_ones() - 1) as usize];
                d += STRIDE;
            } else {
                let t = self.leaves.data[(n.base0 + (n.leafvec & m).count_ones() - 1) as usize];
                // A branch here (unlike `short_leaf`): measured faster for
                // IPv6 single lookups, same for batches.
                return if t != 0 { t } else { n.def };
            }
        }
    }

    /// Adds prefix `key/len` with `tag`; `len_of(tag)` gives the length of
    /// the prefix behind any tag already in the table.
    pub fn add(&mut self, key: K, len: u8, tag: u32, len_of: &dyn Fn(u32) -> u8) {
        if self.root.is_empty() {
            self.root = vec![0; 1 << ROOT_BITS];
        }
        self.apply(&mut Edit {
            key,
            len: u32::from(len),
            tag,
            kind: Kind::Add(LenCache {
                f: len_of,
                tag: 0,
                len: 0,
            }),
        });
    }

    /// Removes prefix `key/len` (tag `tag`); `find(l)` is the tag of the
    /// prefix `key/l` for `l < len` if it is in the table (the caller's trie
    /// answers it; the table asks for at most 5 lengths, or 18 for a prefix
    /// of /18 or shorter).
    pub fn del(&mut self, key: K, len: u8, tag: u32, find: &dyn Fn(u8) -> Option<u32>) {
        if self.root.is_empty() {
            return;
        }
        self.apply(&mut Edit {
            key,
            len: u32::from(len),
            tag,
            kind: Kind::Del { find, rep: 0 },
        });
    }

    fn apply(&mut self, ed: &mut Edit<'_, K>) {
        let lo = ed.key.stride(0, ROOT_BITS) as usize;
        if ed.len <= ROOT_BITS {
            // The root is a node of depth 0 with no default.
            ed.find_rep(0, 0);
            for i in lo..lo + (1 << (ROOT_BITS - ed.len)) {
                let e = self.root[i];
                if e & CHILD == 0 {
                    self.root[i] = ed.over(e);
                } else {
                    let mut n = self.head(e);
                    let old = n.def;
                    let new = ed.over(old);
                    if new != old {
                        n.def = new;
                        self.put_head(&n);
                        self.propagate_children(&n, old, new);
                    }
                }
            }
            return;
        }
        let e = self.root[lo];
        let mut n = if e & CHILD != 0 {
            self.head(e)
        } else if !ed.removing() {
            self.new_node(e, hdr_of::<K>(ROOT_BITS, 0))
        } else {
            return; // nothing longer than the root here: not in the table
        };
        self.descend(&mut n, ROOT_BITS, ed);
        self.root[lo] = self.store_root(n);
    }

    /// Node at `at` and the nodes below it that inherit its default `old`
    /// (no prefix of their own covers them whole) get default `new`.
    fn propagate(&mut self, at: usize, old: u32, new: u32) {
        self.nodes.data[at].def = new;
        let n = self.nodes.data[at];
        self.propagate_children(&n, old, new);
    }

    /// The children of `n` that inherit default `old` get `new` (and so on
    /// down).
    fn propagate_children(&mut self, n: &Node, old: u32, new: u32) {
        let (b, k) = (n.base1 as usize, n.vector.count_ones() as usize);
        for j in b..b + k {
            if self.nodes.data[j].def == old {
                self.propagate(j, old, new);
            }
        }
    }

    /// Whether node `n` says nothing its parent's slot could not say alone.
    fn uniform(&self, n: &Node) -> bool {
        n.vector == 0 && n.leafvec == 1 && self.leaves.data[n.base0 as usize] == 0
    }

    /// The root entry for root-level node `n` (its header goes in front of
    /// its leaves).
    fn store_root(&mut self, n: Node) -> u32 {
        if self.uniform(&n) {
            let hdr = hdr_of::<K>(ROOT_BITS, 0);
            self.leaves.release(n.base0 - hdr, 1 + hdr);
            return n.def;
        }
        self.put_head(&n)
    }

    /// A node with default `def` and nothing of its own; `hdr` words are
    /// reserved in front of its leaves (for a root-level node's header).
    fn new_node(&mut self, def: u32, hdr: u32) -> Node {
        let base0 = self.leaves.alloc(1 + hdr) + hdr;
        self.leaves.data[base0 as usize] = 0;
        Node {
            vector: 0,
            leafvec: 1,
            base0,
            base1: 0,
            def,
        }
    }

    /// Child `c` of a node with default `pdef` after an update: `Some`
    /// (the parent's leaf for that slot) if `c` no longer holds anything of
    /// its own, in which case its block is freed.
    fn fold(&mut self, c: &Node, pdef: u32) -> Option<u32> {
        if !self.uniform(c) {
            return None;
        }
        self.leaves.release(c.base0, 1);
        Some(if c.def == pdef { 0 } else { c.def })
    }

    /// Node `n` at depth `d`, which the prefix of `ed` (longer than `d`)
    /// reaches into.
    fn descend(&mut self, n: &mut Node, d: u32, ed: &mut Edit<'_, K>) {
        let lo = slot_of(ed.key, d);
        // Header words in front of the leaves now (the caller rewrites the
        // header wherever the block ends up).
        let hdr = hdr_of::<K>(d, n.vector);
        if ed.len <= d + STRIDE {
            // The prefix ends in this node: its slots lo..hi. Children
            // there change defaults (in place); leaves are re-encoded.
            ed.find_rep(d + 1, n.def);
            let hi = lo + (1 << (d + STRIDE - ed.len));
            for i in lo..hi {
                if (n.vector >> i) & 1 != 0 {
                    let at = (n.base1 + (n.vector & upto(i)).count_ones() - 1) as usize;
                    let old = self.nodes.data[at].def;
                    let new = ed.over(old);
                    if new != old {
                        self.propagate(at, old, new);
                    }
                }
            }
            let mut leaf = self.leaves_of(n);
            let mut changed = false;
            for i in lo..hi {
                if (n.vector >> i) & 1 == 0 {
                    // A leaf holds only prefixes longer than `d`; the
                    // node's default stands for the shorter ones.
                    let e = leaf[i as usize];
                    let v = ed.over(e);
                    let v = if v == n.def { 0 } else { v };
                    if v != e {
                        leaf[i as usize] = v;
                        changed = true;
                    }
                }
            }
            if changed {
                self.set_leaves(n, &leaf, d, hdr);
            }
            return;
        }
        if (n.vector >> lo) & 1 != 0 {
            // Down an existing child: only that child changes, in place,
            // unless it folds into a leaf.
            let at = (n.base1 + (n.vector & upto(lo)).count_ones() - 1) as usize;
            let mut c = self.nodes.data[at];
            self.descend(&mut c, d + STRIDE, ed);
            match self.fold(&c, n.def) {
                None => self.nodes.data[at] = c,
                Some(v) => {
                    let mut leaf = self.leaves_of(n);
                    self.remove_child(n, lo);
                    leaf[lo as usize] = v;
                    self.set_leaves(n, &leaf, d, hdr);
                }
            }
            return;
        }
        if ed.removing() {
            return; // a leaf where the prefix would be: not in the table
        }
        let mut leaf = self.leaves_of(n);
        let e = leaf[lo as usize];
        let mut c = self.new_node(if e != 0 { e } else { n.def }, 0);
        self.descend(&mut c, d + STRIDE, ed);
        match self.fold(&c, n.def) {
            None => self.insert_child(n, lo, c),
            Some(v) => leaf[lo as usize] = v,
        }
        self.set_leaves(n, &leaf, d, hdr);
    }

    /// The leaf of every slot of `n` (meaningless where a child is).
    fn leaves_of(&self, n: &Node) -> [u32; SLOTS] {
        let mut out = [0u32; SLOTS];
        // Each run fills from its start to the next start (child slots in
        // between get a value too, which nobody reads).
        let (mut lv, mut l) = (n.leafvec, n.base0 as usize);
        while lv != 0 {
            let i = lv.trailing_zeros() as usize;
            lv &= lv - 1;
            let j = if lv == 0 {
                SLOTS
            } else {
                lv.trailing_zeros() as usize
            };
            out[i..j].fill(self.leaves.data[l]);
            l += 1;
        }
        out
    }

    /// Stores `leaf` (for the slots that are not children) as the runs of
    /// `n` (at depth `d`, `hdr` header words in front of its leaves so far),
    /// moving its leaf block if the size class changes.
    fn set_leaves(&mut self, n: &mut Node, leaf: &[u32; SLOTS], d: u32, hdr: u32) {
        // A child slot takes the value of the slot before it (a value no
        // tag has before the first leaf), so that a leaf starts a run
        // exactly when it differs from its left neighbour; that comparison
        // is one pass the compiler can vectorize.
        let patched;
        let v = if n.vector == 0 {
            leaf
        } else {
            let mut v = *leaf;
            let mut cv = n.vector;
            while cv != 0 {
                let c = cv.trailing_zeros() as usize;
                v[c] = if c == 0 { u32::MAX } else { v[c - 1] };
                cv &= cv - 1;
            }
            patched = v;
            &patched
        };
        // One byte per slot first (a loop the compiler vectorizes well),
        // then each 8 bytes of 0 or 1 packed into 8 bits with a multiply:
        // the byte at bit 8j lands at bit 56 + j.
        let mut starts = [0u8; SLOTS];
        starts[0] = 1;
        for i in 1..SLOTS {
            starts[i] = u8::from(v[i] != v[i - 1]);
        }
        let mut leafvec = 0u64;
        for (c, b) in starts.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(b.try_into().expect("chunks of 8"));
            leafvec |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * c);
        }
        leafvec &= !n.vector;
        // A root-level node's block starts with its header, which the
        // caller rewrites wherever the block ends up; the header grows or
        // shrinks when the node gains its first child or loses its last.
        let (old, new) = (n.leafvec.count_ones(), leafvec.count_ones());
        let nhdr = hdr_of::<K>(d, n.vector);
        let b = self.leaves.resize(n.base0 - hdr, old + hdr, new + nhdr) + nhdr;
        let (mut lv, mut at) = (leafvec, b as usize);
        while lv != 0 {
            self.leaves.data[at] = leaf[lv.trailing_zeros() as usize];
            lv &= lv - 1;
            at += 1;
        }
        n.base0 = b;
        n.leafvec = leafvec;
    }

    /// Makes slot `lo` of `n` (a leaf) child `c`. The caller re-encodes
    /// the leaves.
    fn insert_child(&mut self, n: &mut Node, lo: u32, c: Node) {
        let cnt = n.vector.count_ones();
        let before = (n.vector & ((1u64 << lo) - 1)).count_ones() as usize;
        let (ob, cnt_u) = (n.base1 as usize, cnt as usize);
        let nb = self.nodes.resize(n.base1, cnt, cnt + 1) as usize;
        let d = &mut self.nodes.data;
        if nb == ob && cnt > 0 {
            d.copy_within(ob + before..ob + cnt_u, ob + before + 1);
        } else {
            // A block of another size class never overlaps the old one.
            d.copy_within(ob..ob + before, nb);
            d.copy_within(ob + before..ob + cnt_u, nb + before + 1);
        }
        d[nb + before] = c;
        n.base1 = nb as u32;
        n.vector |= 1 << lo;
    }

    /// Makes slot `lo` of `n` (a child) a leaf. The caller re-encodes the
    /// leaves.
    fn remove_child(&mut self, n: &mut Node, lo: u32) {
        let cnt = n.vector.count_ones();
        let before = (n.vector & ((1u64 << lo) - 1)).count_ones() as usize;
        let (ob, cnt_u) = (n.base1 as usize, cnt as usize);
        let nb = self.nodes.resize(n.base1, cnt, cnt - 1) as usize;
        if cnt > 1 {
            let d = &mut self.nodes.data;
            if nb == ob {
                d.copy_within(ob + before + 1..ob + cnt_u, ob + before);
            } else {
                d.copy_within(ob..ob + before, nb);
                d.copy_within(ob + before + 1..ob + cnt_u, nb + before);
            }
        }
        n.base1 = nb as u32;
        n.vector &= !(1 << lo);
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + self.root.capacity() * 4
            + self.nodes.bytes()
            + self.leaves.bytes()
    }

    /// Nodes in use (root-level ones included).
    pub fn nodes(&self) -> usize {
        self.nodes.in_use() + self.root.iter().filter(|&&e| e & CHILD != 0).count()
    }

    /// Checks the encoding: no node is uniform, leaf runs are maximal, no
    /// node sits below /128, and the pools hold exactly the blocks that
    /// the nodes reach (nothing leaked, nothing shared).
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        let mut used = (0usize, 0usize);
        for (i, &e) in self.root.iter().enumerate() {
            if e & CHILD != 0 {
                let n = self.head(e);
                if (e & KIDS != 0) != (hdr_of::<K>(ROOT_BITS, n.vector) == HDR) {
                    return Err(format!("root {i:#06x}: children flag wrong"));
                }
                self.check_node(&n, ROOT_BITS, &mut used)
                    .map_err(|m| format!("root {i:#06x}: {m}"))?;
            }
        }
        if used != (self.nodes.in_use(), self.leaves.in_use()) {
            return Err(format!(
                "blocks reached {used:?}, pools in use {:?}",
                (self.nodes.in_use(), self.leaves.in_use())
            ));
        }
        Ok(())
    }

    #[cfg(test)]
    fn check_node(&self, n: &Node, d: u32, used: &mut (usize, usize)) -> Result<(), String> {
        if d >= u32::from(K::BITS) {
            return Err(format!("node below /{} (depth {d})", K::BITS));
        }
        if n.vector == 0 && n.leafvec == 1 {
            return Err(format!("node at depth {d} holds one leaf: not folded"));
        }
        if n.vector & n.leafvec != 0 {
            return Err(format!("slot both child and run start at depth {d}"));
        }
        let hdr = hdr_of::<K>(d, n.vector);
        used.0 += Pool::<Node>::block(n.vector.count_ones());
        used.1 += Pool::<u32>::block(n.leafvec.count_ones() + hdr);
        let leaf = self.leaves_of(n);
        let mut prev: Option<u32> = None;
        let mut child = n.base1 as usize;
        for (i, &e) in leaf.iter().enumerate() {
            if (n.vector >> i) & 1 != 0 {
                let c = self.nodes.data[child];
                child += 1;
                if c.def == 0 && n.def != 0 {
                    return Err(format!("child {i} at depth {d} lost the default"));
                }
                self.check_node(&c, d + STRIDE, used)?;
            } else {
                let starts = (n.leafvec >> i) & 1 != 0;
                if starts != (prev != Some(e)) {
                    return Err(format!("leaf run at slot {i}, depth {d} not maximal"));
                }
                if e != 0 && e == n.def {
                    return Err(format!("leaf {i} at depth {d} repeats the default"));
                }
                prev = Some(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The table under test with a naive model: tag → (key, len).
    #[derive(Default)]
    struct Model<K> {
        t: Table<K>,
        p: BTreeMap<u32, (K, u8)>,
    }

    fn mask<K: KeyBits>(len: u8) -> K {
        K::high_mask(K::BITS - len)
    }

    fn find_in<K: KeyBits>(p: &BTreeMap<u32, (K, u8)>, key: K, len: u8) -> Option<u32> {
        p.iter()
            .find(|&(_, &(k, l))| (k, l) == (key, len))
            .map(|(t, _)| *t)
    }

    impl<K: KeyBits> Model<K> {
        fn find(&self, key: K, len: u8) -> Option<u32> {
            find_in(&self.p, key, len)
        }
        fn naive(&self, a: K) -> u32 {
            self.p
                .iter()
                .filter(|&(_, &(k, l))| a.and(mask(l)) == k)
                .max_by_key(|&(_, &(_, l))| l)
                .map_or(0, |(t, _)| *t)
        }
        fn add(&mut self, key: K, len: u8) {
            let key = key.and(mask(len));
            if self.find(key, len).is_some() {
                return;
            }
            let tag = (1..).find(|t| !self.p.contains_key(t)).unwrap();
            self.p.insert(tag, (key, len));
            let p = &self.p;
            self.t.add(key, len, tag, &|t| p[&t].1);
        }
        fn del(&mut self, key: K, len: u8) {
            let key = key.and(mask(len));
            let Some(tag) = self.find(key, len) else {
                return;
            };
            self.p.remove(&tag);
            let asked = core::cell::Cell::new(0);
            let p = &self.p;
            let find = |l: u8| {
                assert!(l < len, "asked for /{l} removing /{len}");
                asked.set(asked.get() + 1);
                find_in(p, key.and(mask(l)), l)
            };
            self.t.del(key, len, tag, &find);
            let most = if u32::from(len) <= ROOT_BITS {
                ROOT_BITS
            } else {
                5
            };
            assert!(
                asked.get() <= most as usize,
                "{} supernets asked for",
                asked.get()
            );
        }
        fn verify(&self, probes: &[K]) {
            self.t.check().unwrap();
            let want: Vec<u32> = probes.iter().map(|&a| self.naive(a)).collect();
            for (&a, &w) in probes.iter().zip(&want) {
                assert_eq!(self.t.get(a), w, "{a:x?}");
            }
            // Batches of every length around the read-ahead distances (the
            // ring, the zipped loop and its tail), and all of them.
            for n in (0..=40)
                .chain([probes.len()])
                .filter(|&n| n <= probes.len())
            {
                let mut out = vec![u32::MAX; n];
                self.t.get_each(&probes[..n], |k| k, &mut out, |t| t);
                assert_eq!(out, want[..n], "batch of {n}");
            }
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn wide(&mut self) -> u128 {
            u128::from(self.next()) << 64 | u128::from(self.next())
        }
    }

    /// Probes at the edges of every prefix and at random.
    fn probes<K: KeyBits>(m: &Model<K>, r: &mut Rng) -> Vec<K> {
        let mut v: Vec<K> = (0..64).map(|_| K::from_u128(r.wide())).collect();
        for &(k, l) in m.p.values() {
            let last = k.or(!mask::<K>(l));
            let (k, last) = (k.to_u128(), last.to_u128());
            v.extend([k, last, k.wrapping_sub(1), last.wrapping_add(1)].map(K::from_u128));
            v.push(K::from_u128(k | (r.wide() & !mask::<K>(l).to_u128())));
        }
        v
    }

    #[test]
    fn size_classes() {
        for n in 1..=*SIZES.last().unwrap() {
            let c = Pool::<u32>::class(n);
            assert_eq!(c, SIZES.partition_point(|&s| s < n), "{n}");
            assert!(SIZES[c] >= n && (c == 0 || SIZES[c - 1] < n), "{n}");
        }
    }

    #[test]
    fn nested_prefixes_and_fallbacks() {
        let mut m = Model::<u128>::default();
        let a = 0x2001_0db8u128 << 96;
        m.add(a, 32);
        m.add(a, 48);
        m.add(a | 1 << 70, 57);
        m.add(a | 0x1234, 128);
        m.add(0, 0);
        m.add(a, 16);
        m.verify(&[
            a,
            a | 1,
            a | 0x1234,
            a | 1 << 70,
            a | 1 << 79,
            a | 1 << 90,
            1,
            u128::MAX,
        ]);
        assert_eq!(m.t.get(a | 0x1234), m.find(a | 0x1234, 128).unwrap());
        m.del(a, 48);
        m.verify(&[a, a | 1, a | 0x1234, a | 1 << 70, a | 1 << 79, 1]);
        m.del(a | 0x1234, 128);
        m.del(a | 1 << 70, 57);
        m.verify(&[a, a | 1, a | 0x1234, a | 1 << 70, 1]);
        // Only /32 and shorter remain: one path of three nodes (depths 18,
        // 24 and 30) down to the /32's stride.
        assert_eq!(m.t.nodes(), 3);
        m.del(a, 32);
        assert_eq!(m.t.nodes(), 0);
        m.del(0, 0);
        m.del(a, 16);
        assert!(m.t.root.iter().all(|&e| e == 0));
        assert_eq!((m.t.nodes.in_use(), m.t.leaves.in_use()), (0, 0));
    }

    #[test]
    fn host_routes_at_the_last_stride() {
        let mut m = Model::<u128>::default();
        for low in [0u128, 1, 2, 3, 4, 0x3f, 0x40, 0xff] {
            m.add(0x2001 << 112 | low, 128);
        }
        m.add(0x2001 << 112, 126);
        let ps: Vec<u128> = (0..0x110).map(|x| 0x2001 << 112 | x).collect();
        m.verify(&ps);
        for low in [0u128, 1, 2, 3, 4, 0x3f, 0x40, 0xff] {
            m.del(0x2001 << 112 | low, 128);
            m.verify(&ps);
        }
    }

    /// Random interleaved inserts and removes (a third of the steps remove
    /// a live prefix), checked against the naive model every `check_every`
    /// steps and at the end of each round; removing everything must leave
    /// no block in use. `pick` draws a (key, length) from the generator.
    fn random_updates<K: KeyBits + core::ops::BitAnd<Output = K>>(
        seed: u64,
        rounds: u32,
        steps: u32,
        check_every: u32,
        pick: impl Fn(&mut Rng) -> (K, u8),
    ) {
        let mut r = Rng(seed);
        for round in 0..rounds {
            let mut m = Model::<K>::default();
            let mut live: Vec<(K, u8)> = Vec::new();
            for step in 0..steps {
                let (key, len) = pick(&mut r);
                if !live.is_empty() && r.next() % 3 == 0 {
                    let (k, l) = live.swap_remove((r.next() % live.len() as u64) as usize);
                    m.del(k, l);
                } else {
                    m.add(key, len);
                    live.push((key & mask::<K>(len), len));
                }
                if step % check_every == check_every - 1 {
                    let ps = probes(&m, &mut r);
                    m.verify(&ps);
                }
            }
            let ps = probes(&m, &mut r);
            m.verify(&ps);
            for (k, l) in live.drain(..) {
                m.del(k, l);
            }
            m.t.check().unwrap();
            assert_eq!(
                (m.t.nodes.in_use(), m.t.leaves.in_use()),
                (0, 0),
                "round {round}: blocks left after removing everything"
            );
        }
    }

    #[test]
    fn random_interleaved_updates_match_naive() {
        random_updates::<u128>(0x2545_f491_4f6c_dd1d, 40, 150, 25, |r| {
            // A few crowded regions so that prefixes nest and collide.
            let top = [
                0x2001_0db8u128,
                0x2001_0db8,
                0x2a00_0000,
                0,
                r.next() as u128 >> 32,
            ][(r.next() % 5) as usize];
            let key = top << 96 | (u128::from(r.next() % 4)) << 80 | r.wide() >> 60;
            let len = [
                0u8, 3, 16, 17, 18, 19, 22, 24, 28, 32, 40, 47, 48, 48, 52, 64, 100, 126, 127, 128,
            ][(r.next() % 20) as usize];
            (key, len)
        });
    }

    /// The IPv4 instance: the same geometry (18 + 3 × 6 = 32 + 4 padding
    /// bits), so /24 ends on a stride edge and /32 in the third node.
    #[test]
    fn ipv4_random_interleaved_updates_match_naive() {
        random_updates::<u32>(0x9e37_79b9_7f4a_7c15, 60, 200, 40, |r| {
            let top = [0x0a00_0000u32, 0x0a00_0000, 0xc0a8_0000, 0, r.next() as u32]
                [(r.next() % 5) as usize];
            let key = top | (r.next() as u32 & 0x0003_ffff);
            let len = [
                0u8, 1, 8, 12, 16, 17, 18, 19, 20, 22, 23, 24, 24, 24, 25, 26, 28, 30, 31, 32,
            ][(r.next() % 20) as usize];
            (key, len)
        });
    }

    #[test]
    fn empty_table_answers_nothing() {
        let mut r = Rng(7);
        let ps: Vec<u32> = (0..50).map(|_| r.next() as u32).collect();
        Model::<u32>::default().verify(&ps);
        let ps: Vec<u128> = (0..50).map(|_| r.wide()).collect();
        Model::<u128>::default().verify(&ps);
    }

    #[test]
    fn ipv4_host_routes_and_default() {
        let mut m = Model::<u32>::default();
        let base = 0xc000_0200u32; // 192.0.2.0
        for low in [0u32, 1, 2, 3, 0x0f, 0x10, 0x3f, 0x40, 0xff] {
            m.add(base | low, 32);
        }
        m.add(base, 30);
        m.add(base, 24);
        m.add(0, 0);
        let ps: Vec<u32> = (0..0x110).map(|x| base.wrapping_sub(8) + x).collect();
        m.verify(&ps);
        m.verify(&[0, u32::MAX, 0xffff_fffe]);
        for low in [0u32, 1, 2, 3, 0x0f, 0x10, 0x3f, 0x40, 0xff] {
            m.del(base | low, 32);
            m.verify(&ps);
        }
        m.del(base, 24);
        m.del(base, 30);
        // Only the default route is left: no node at all.
        assert_eq!(m.t.nodes(), 0);
        m.verify(&ps);
    }
}

/// Sizes and update cost at the benchmark's scale; run with
/// `cargo test --release -p htb --lib fib::table::scale -- --ignored --nocapture`.
#[cfg(test)]
mod scale {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Instant;

    use crate::fib::{Fib, FibKey, KeyBits, Prefix, RouteKind, synth};

    fn measure<K: FibKey>(name: &str, t: &[Prefix<K>]) {
        let start = Instant::now();
        let mut fib: Fib<K, u32> = Fib::new();
        for (i, p) in t.iter().enumerate() {
            fib.insert(*p, 0, RouteKind::Unicast(i as u32)).unwrap();
        }
        let build = start.elapsed();
        fib.check().unwrap();
        let total = fib.memory_bytes();
        let table = fib.dir.bytes();
        let trie = fib.stats().bytes;
        println!(
            "{name}: build {:.0} ns/prefix; memory {:.1} MiB ({:.1} B/prefix): compiled table \
             {:.1} MiB ({} nodes, {} leaf words), trie {:.1} MiB, slots {:.1} MiB",
            build.as_nanos() as f64 / t.len() as f64,
            total as f64 / 1048576.0,
            total as f64 / t.len() as f64,
            table as f64 / 1048576.0,
            fib.dir.nodes.data.len(),
            fib.dir.leaves.data.len(),
            trie as f64 / 1048576.0,
            (total - table - trie) as f64 / 1048576.0,
        );
        let mut r = synth::Rng::new(5);
        let addrs: Vec<K> = (0..1 << 20)
            .map(|_| {
                K::from_bits(K::Bits::from_u128(
                    u128::from(r.next_u64()) << 64 | u128::from(r.next_u64()),
                ))
            })
            .collect();
        let mut out = vec![None; 4096];
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for c in addrs.chunks(4096) {
                fib.lookup_batch(c, &mut out).unwrap();
                std::hint::black_box(&out);
            }
            best = best.min(start.elapsed().as_nanos() as f64 / addrs.len() as f64);
        }
        let mut single = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for &a in &addrs {
                std::hint::black_box(fib.lookup(std::hint::black_box(a)).map(|m| m.route.metric));
            }
            single = single.min(start.elapsed().as_nanos() as f64 / addrs.len() as f64);
        }
        println!("  lookup: batch {best:.2} ns, single {single:.2} ns (best of 5)");
        let mut r = synth::Rng::new(9);
        let n = 100_000;
        let picks: Vec<usize> = (0..n).map(|_| r.below(t.len() as u64) as usize).collect();
        let start = Instant::now();
        for &i in &picks {
            let k = fib.remove(&t[i], 0).unwrap();
            fib.insert(t[i], 0, k).unwrap();
        }
        let el = start.elapsed();
        println!(
            "  remove+insert: {:.0} ns per update",
            el.as_nanos() as f64 / (2 * n) as f64
        );
        let trie_only = {
            let mut tr = fib.trie.clone();
            let start = Instant::now();
            for &i in &picks {
                let p = t[i];
                let key = p.addr().to_bits();
                let id = tr.remove(key, K::Bits::BITS - p.len()).unwrap();
                tr.insert(key, K::Bits::BITS - p.len(), id).unwrap();
            }
            start.elapsed()
        };
        println!(
            "  of which trie alone: {:.0} ns per update",
            trie_only.as_nanos() as f64 / (2 * n) as f64
        );
        // The compiled table alone, with the trie's answers for the
        // supernets (the same closures `Fib` passes).
        let mut tab = fib.dir.clone();
        let slots = &fib.slots;
        let trie = &fib.trie;
        let len_of = |tag: u32| slots[(tag - 1) as usize].prefix.len;
        let start = Instant::now();
        for &i in &picks {
            let p = t[i];
            let key = p.addr().to_bits();
            let tag = fib.lookup_id(p.addr()).unwrap().index() + 1;
            let find = |l: u8| {
                trie.get(
                    key.and(K::Bits::high_mask(K::Bits::BITS - l)),
                    K::Bits::BITS - l,
                )
                .map(|id| id + 1)
            };
            tab.del(key, p.len(), tag, &find);
            tab.add(key, p.len(), tag, &len_of);
        }
        let el = start.elapsed();
        println!(
            "  compiled table alone: {:.0} ns per update",
            el.as_nanos() as f64 / (2 * n) as f64
        );
        fib.check().unwrap();
    }

    #[test]
    #[ignore = "a measurement: run in release"]
    fn synthetic_ipv4_1m() {
        measure::<Ipv4Addr>("1M v4", &synth::ipv4_prefixes(1_000_000, 4));
    }

    #[test]
    #[ignore = "a measurement: run in release"]
    fn synthetic_ipv4_100k() {
        measure::<Ipv4Addr>("100k v4", &synth::ipv4_prefixes(100_000, 4));
    }

    #[test]
    #[ignore = "a measurement: run in release"]
    fn synthetic_ipv6_200k() {
        measure::<Ipv6Addr>("200k v6", &synth::ipv6_prefixes(200_000, 6));
    }
}
