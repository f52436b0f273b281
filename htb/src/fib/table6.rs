/*! The compiled IPv6 lookup table: a multibit trie with compressed nodes
(after Asai and Ohara's Poptrie), kept in sync with the LC-trie.

* `root`: one entry per /18 (2^18 × 4 bytes = 1 MiB, allocated with the
  first prefix). An entry is a tag (0 = nothing), or `CHILD | i`: node `i`
  holds the /18 because a prefix longer than /18 lies inside it. 18 bits
  rather than 16 so that the dominant /48 ends exactly on a stride edge
  (18 + 5 × 6), which saves a node per /48 path.
* Below the root every node consumes the next 6 bits of the address (the key
  is read with 4 zero bits appended, so that 19 strides end exactly at
  /128). Of its 64 slots each is a child node or a leaf:
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
backtracking. A node is 32 bytes, and a sparse node (one /48 in a /42, say)
stores 3 leaves instead of 64 entries.

Tags are the caller's prefix id + 1, as in the IPv4
[`Dir248`](super::table) table, and updates are incremental in the same way
(controlled prefix expansion, but only within one node): adding a prefix of
length `L` ending in the stride of node `n` writes its tag over the leaves
of its range whose prefix is shorter (or 0) and, for each child in its
range, replaces the child's `def` if shorter — and the `def` of the nodes
below that inherited it unchanged. Removing it does the reverse with the
longest shorter covering prefix: `n.def` or, for the at most 5 lengths
inside `n`'s own stride, whatever the caller's trie says. Nodes are created
along the prefix's path when added; a node left with nothing of its own (no
children, one run of 0) is folded back into its parent's slot. No update
re-encodes more than one node per level of its path. Node and leaf blocks
come from pools with one free list per power-of-two size, so freed blocks
are reused.
*/

/// A root entry that points to a node.
const CHILD: u32 = 1 << 31;
/// Address bits resolved by the root array.
const ROOT_BITS: u32 = 18;
/// Address bits resolved by each node.
const STRIDE: u32 = 6;
/// Slots per node.
const SLOTS: usize = 1 << STRIDE;
/// Lookups interleaved by [`Table6::get_lanes`] callers.
pub(crate) const LANES: usize = 8;

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
fn slot_of(key: u128, d: u32) -> u32 {
    ((key << d) >> (128 - STRIDE)) as u32
}

/// Bits `0..=v`.
#[inline(always)]
fn upto(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

/// Blocks of 1, 2, 4, … 64 elements, each size with its own free list.
#[derive(Clone, Debug, Default)]
struct Pool<T> {
    data: Vec<T>,
    free: [Vec<u32>; STRIDE as usize + 1],
}

impl<T: Copy + Default> Pool<T> {
    fn class(n: u32) -> usize {
        n.next_power_of_two().trailing_zeros() as usize
    }

    fn alloc(&mut self, n: u32) -> u32 {
        let c = Self::class(n);
        if let Some(b) = self.free[c].pop() {
            return b;
        }
        let b = self.data.len();
        self.data.resize(b + (1 << c), T::default());
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
    #[cfg(test)]
    fn in_use(&self) -> usize {
        let free: usize = (0..self.free.len()).map(|c| self.free[c].len() << c).sum();
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
struct Edit<'a> {
    key: u128,
    len: u32,
    tag: u32,
    kind: Kind<'a>,
}

impl Edit<'_> {
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

/// The compiled IPv6 table (see the module documentation).
#[derive(Clone, Debug, Default)]
pub(crate) struct Table6 {
    root: Vec<u32>,
    nodes: Pool<Node>,
    leaves: Pool<u32>,
}

impl Table6 {
    /// The tag of the longest prefix covering `key`, 0 if none.
    #[inline(always)]
    pub fn get(&self, key: u128) -> u32 {
        let Some(&r) = self.root.get((key >> (128 - ROOT_BITS)) as usize) else {
            return 0;
        };
        if r & CHILD == 0 {
            return r;
        }
        let mut n = self.nodes.data[(r & !CHILD) as usize];
        let mut d = ROOT_BITS;
        loop {
            let v = slot_of(key, d);
            let m = upto(v);
            if (n.vector >> v) & 1 != 0 {
                n = self.nodes.data[(n.base1 + (n.vector & m).count_ones() - 1) as usize];
                d += STRIDE;
            } else {
                let t = self.leaves.data[(n.base0 + (n.leafvec & m).count_ones() - 1) as usize];
                return if t != 0 { t } else { n.def };
            }
        }
    }

    /// [`get`](Self::get) for [`LANES`] keys at once, walked level by level
    /// in lockstep so that their memory reads overlap instead of waiting
    /// for each other.
    #[inline]
    pub fn get_lanes(&self, keys: &[u128; LANES]) -> [u32; LANES] {
        let mut out = [0u32; LANES];
        if self.root.is_empty() {
            return out;
        }
        let mut node = [Node::default(); LANES];
        let mut live = 0u32;
        for (i, &k) in keys.iter().enumerate() {
            let r = self.root[(k >> (128 - ROOT_BITS)) as usize];
            if r & CHILD == 0 {
                out[i] = r;
            } else {
                node[i] = self.nodes.data[(r & !CHILD) as usize];
                live |= 1 << i;
            }
        }
        let mut d = ROOT_BITS;
        while live != 0 {
            for i in 0..LANES {
                if (live >> i) & 1 == 0 {
                    continue;
                }
                let n = node[i];
                let v = slot_of(keys[i], d);
                let m = upto(v);
                if (n.vector >> v) & 1 != 0 {
                    node[i] = self.nodes.data[(n.base1 + (n.vector & m).count_ones() - 1) as usize];
                } else {
                    let t = self.leaves.data[(n.base0 + (n.leafvec & m).count_ones() - 1) as usize];
                    out[i] = if t != 0 { t } else { n.def };
                    live &= !(1 << i);
                }
            }
            d += STRIDE;
        }
        out
    }

    /// Adds prefix `key/len` with `tag`; `len_of(tag)` gives the length of
    /// the prefix behind any tag already in the table.
    pub fn add(&mut self, key: u128, len: u8, tag: u32, len_of: &dyn Fn(u32) -> u8) {
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
    pub fn del(&mut self, key: u128, len: u8, tag: u32, find: &dyn Fn(u8) -> Option<u32>) {
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

    fn apply(&mut self, ed: &mut Edit<'_>) {
        let lo = (ed.key >> (128 - ROOT_BITS)) as usize;
        if ed.len <= ROOT_BITS {
            // The root is a node of depth 0 with no default.
            ed.find_rep(0, 0);
            for i in lo..lo + (1 << (ROOT_BITS - ed.len)) {
                let e = self.root[i];
                if e & CHILD == 0 {
                    self.root[i] = ed.over(e);
                } else {
                    let at = (e & !CHILD) as usize;
                    let old = self.nodes.data[at].def;
                    let new = ed.over(old);
                    if new != old {
                        self.propagate(at, old, new);
                    }
                }
            }
            return;
        }
        let e = self.root[lo];
        let mut n = if e & CHILD != 0 {
            self.nodes.data[(e & !CHILD) as usize]
        } else if !ed.removing() {
            self.new_node(e)
        } else {
            return; // nothing longer than the root here: not in the table
        };
        self.descend(&mut n, ROOT_BITS, ed);
        self.root[lo] = self.store_root(e, n);
    }

    /// Node at `at` and the nodes below it that inherit its default `old`
    /// (no prefix of their own covers them whole) get default `new`.
    fn propagate(&mut self, at: usize, old: u32, new: u32) {
        let n = &mut self.nodes.data[at];
        n.def = new;
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

    /// The root entry for node `n`, which replaces root entry `old`.
    fn store_root(&mut self, old: u32, n: Node) -> u32 {
        let at = (old & CHILD != 0).then_some(old & !CHILD);
        if self.uniform(&n) {
            if let Some(i) = at {
                self.nodes.release(i, 1);
            }
            self.leaves.release(n.base0, 1);
            return n.def;
        }
        let i = at.unwrap_or_else(|| self.nodes.alloc(1));
        self.nodes.data[i as usize] = n;
        CHILD | i
    }

    /// A node with default `def` and nothing of its own.
    fn new_node(&mut self, def: u32) -> Node {
        let base0 = self.leaves.alloc(1);
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
    fn descend(&mut self, n: &mut Node, d: u32, ed: &mut Edit<'_>) {
        let lo = slot_of(ed.key, d);
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
                self.set_leaves(n, &leaf);
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
                    self.set_leaves(n, &leaf);
                }
            }
            return;
        }
        if ed.removing() {
            return; // a leaf where the prefix would be: not in the table
        }
        let mut leaf = self.leaves_of(n);
        let e = leaf[lo as usize];
        let mut c = self.new_node(if e != 0 { e } else { n.def });
        self.descend(&mut c, d + STRIDE, ed);
        match self.fold(&c, n.def) {
            None => self.insert_child(n, lo, c),
            Some(v) => leaf[lo as usize] = v,
        }
        self.set_leaves(n, &leaf);
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
    /// `n`, moving its leaf block if the size class changes.
    fn set_leaves(&mut self, n: &mut Node, leaf: &[u32; SLOTS]) {
        // A child slot takes the value of the slot before it (a value no
        // tag has before the first leaf), so that a leaf starts a run
        // exactly when it differs from its left neighbour; that comparison
        // is one pass the compiler can vectorize.
        let mut v = *leaf;
        let mut cv = n.vector;
        while cv != 0 {
            let c = cv.trailing_zeros() as usize;
            v[c] = if c == 0 { u32::MAX } else { v[c - 1] };
            cv &= cv - 1;
        }
        let mut leafvec = 1u64;
        for i in 1..SLOTS {
            leafvec |= u64::from(v[i] != v[i - 1]) << i;
        }
        leafvec &= !n.vector;
        let b = self
            .leaves
            .resize(n.base0, n.leafvec.count_ones(), leafvec.count_ones());
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

    /// Nodes in use.
    #[cfg(test)]
    pub fn nodes(&self) -> usize {
        self.nodes.in_use()
    }

    /// Checks the encoding: no node is uniform, leaf runs are maximal, no
    /// node sits below /128, and the pools hold exactly the blocks that
    /// the nodes reach (nothing leaked, nothing shared).
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        let mut used = (0usize, 0usize);
        for (i, &e) in self.root.iter().enumerate() {
            if e & CHILD != 0 {
                used.0 += 1;
                let n = self.nodes.data[(e & !CHILD) as usize];
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
        if d >= 128 {
            return Err(format!("node below /128 (depth {d})"));
        }
        if n.vector == 0 && n.leafvec == 1 {
            return Err(format!("node at depth {d} holds one leaf: not folded"));
        }
        if n.vector & n.leafvec != 0 {
            return Err(format!("slot both child and run start at depth {d}"));
        }
        let block = |k: u32| {
            if k == 0 {
                0
            } else {
                k.next_power_of_two() as usize
            }
        };
        used.0 += block(n.vector.count_ones());
        used.1 += block(n.leafvec.count_ones());
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
    struct Model {
        t: Table6,
        p: BTreeMap<u32, (u128, u8)>,
    }

    fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        }
    }

    fn find_in(p: &BTreeMap<u32, (u128, u8)>, key: u128, len: u8) -> Option<u32> {
        p.iter()
            .find(|&(_, &(k, l))| (k, l) == (key, len))
            .map(|(t, _)| *t)
    }

    impl Model {
        fn find(&self, key: u128, len: u8) -> Option<u32> {
            find_in(&self.p, key, len)
        }
        fn naive(&self, a: u128) -> u32 {
            self.p
                .iter()
                .filter(|&(_, &(k, l))| a & mask(l) == k)
                .max_by_key(|&(_, &(_, l))| l)
                .map_or(0, |(t, _)| *t)
        }
        fn add(&mut self, key: u128, len: u8) {
            let key = key & mask(len);
            if self.find(key, len).is_some() {
                return;
            }
            let tag = (1..).find(|t| !self.p.contains_key(t)).unwrap();
            self.p.insert(tag, (key, len));
            let p = &self.p;
            self.t.add(key, len, tag, &|t| p[&t].1);
        }
        fn del(&mut self, key: u128, len: u8) {
            let key = key & mask(len);
            let Some(tag) = self.find(key, len) else {
                return;
            };
            self.p.remove(&tag);
            let asked = core::cell::Cell::new(0);
            let p = &self.p;
            let find = |l: u8| {
                assert!(l < len, "asked for /{l} removing /{len}");
                asked.set(asked.get() + 1);
                find_in(p, key & mask(l), l)
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
        fn verify(&self, probes: &[u128]) {
            self.t.check().unwrap();
            for chunk in probes.chunks(LANES) {
                let mut keys = [0u128; LANES];
                keys[..chunk.len()].copy_from_slice(chunk);
                let lanes = self.t.get_lanes(&keys);
                for (i, &a) in keys.iter().enumerate() {
                    let want = self.naive(a);
                    assert_eq!(self.t.get(a), want, "{a:#034x}");
                    assert_eq!(lanes[i], want, "lanes {a:#034x}");
                }
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
    fn probes(m: &Model, r: &mut Rng) -> Vec<u128> {
        let mut v: Vec<u128> = (0..64).map(|_| r.wide()).collect();
        for &(k, l) in m.p.values() {
            let last = k | !mask(l);
            v.extend([k, last, k.wrapping_sub(1), last.wrapping_add(1)]);
            v.push(k | (r.wide() & !mask(l)));
        }
        v
    }

    #[test]
    fn nested_prefixes_and_fallbacks() {
        let mut m = Model::default();
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
        let mut m = Model::default();
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

    #[test]
    fn random_interleaved_updates_match_naive() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..40 {
            let mut m = Model::default();
            let mut live: Vec<(u128, u8)> = Vec::new();
            for step in 0..150 {
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
                    0u8, 3, 16, 17, 18, 19, 22, 24, 28, 32, 40, 47, 48, 48, 52, 64, 100, 126, 127,
                    128,
                ][(r.next() % 20) as usize];
                if !live.is_empty() && r.next() % 3 == 0 {
                    let (k, l) = live.swap_remove((r.next() % live.len() as u64) as usize);
                    m.del(k, l);
                } else {
                    m.add(key, len);
                    live.push((key & mask(len), len));
                }
                if step % 25 == 24 {
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
}

/// Sizes and update cost at the benchmark's scale; run with
/// `cargo test --release -p htb --lib table6::scale -- --ignored --nocapture`.
#[cfg(test)]
mod scale {
    use std::net::Ipv6Addr;
    use std::time::Instant;

    use crate::fib::{Fib, RouteKind, synth};

    #[test]
    #[ignore = "a measurement: run in release"]
    fn synthetic_200k() {
        let t = synth::ipv6_prefixes(200_000, 6);
        let start = Instant::now();
        let mut fib: Fib<Ipv6Addr, u32> = Fib::new();
        for (i, p) in t.iter().enumerate() {
            fib.insert(*p, 0, RouteKind::Unicast(i as u32)).unwrap();
        }
        let build = start.elapsed();
        fib.check().unwrap();
        let total = fib.memory_bytes();
        let table = fib.dir6.bytes();
        println!(
            "200k v6: build {:.0} ns/prefix; memory {} B ({:.1} B/prefix), compiled table {} B \
             ({:.1} B/prefix, {} nodes, {} leaf words), trie {} B",
            build.as_nanos() as f64 / t.len() as f64,
            total,
            total as f64 / t.len() as f64,
            table,
            table as f64 / t.len() as f64,
            fib.dir6.nodes.data.len(),
            fib.dir6.leaves.data.len(),
            fib.stats().bytes,
        );
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
            "remove+insert: {:.0} ns per update",
            el.as_nanos() as f64 / (2 * n) as f64
        );
        let trie_only = {
            let mut tr = fib.trie.clone();
            let start = Instant::now();
            for &i in &picks {
                let p = t[i];
                let key = p.addr().to_bits();
                let id = tr.remove(key, 128 - p.len()).unwrap();
                tr.insert(key, 128 - p.len(), id);
            }
            start.elapsed()
        };
        println!(
            "of which trie alone: {:.0} ns per update",
            trie_only.as_nanos() as f64 / (2 * n) as f64
        );
        // The compiled table alone, with the trie's answers for the
        // supernets (the same closures `Fib` passes).
        let mut tab = fib.dir6.clone();
        let slots = &fib.slots;
        let trie = &fib.trie;
        let len_of = |tag: u32| slots[(tag - 1) as usize].prefix.len;
        let start = Instant::now();
        for &i in &picks {
            let p = t[i];
            let key = u128::from(p.addr());
            let tag = fib.lookup_id(p.addr()).unwrap().index() + 1;
            let find = |l: u8| {
                let m = if l == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(l))
                };
                trie.get(key & m, 128 - l).map(|id| id + 1)
            };
            tab.del(key, p.len(), tag, &find);
            tab.add(key, p.len(), tag, &len_of);
        }
        let el = start.elapsed();
        println!(
            "compiled table alone: {:.0} ns per update",
            el.as_nanos() as f64 / (2 * n) as f64
        );
        fib.check().unwrap();
    }
}
