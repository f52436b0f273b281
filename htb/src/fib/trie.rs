/*! The LC-trie (level- and path-compressed trie) that holds the prefixes.

The shape follows Linux's `fib_trie` as described in
`shared/docs/fib-anchors.md` §1 (implemented from that description, not from
kernel code):

* Key bits are numbered from the least significant bit. An internal node
  (`Inner`) at `pos` with `bits` consumes key bits `[pos, pos + bits)` and
  has `1 << bits` child slots; the bits above `pos + bits` are fixed for its
  whole subtree (path compression), and are kept in its `key` (bits below
  `pos + bits` zero).
* A leaf holds one key (a network address) and every prefix length stored
  with that address, as suffix lengths (`slen = BITS - len`), shortest
  suffix (longest prefix) first.
* Every node keeps `slen`: the largest suffix length stored below it (at
  least its own `pos`), which lets a lookup skip subtrees that cannot hold a
  shorter covering prefix.
* After every change the nodes on the path to the root are resized: a node
  is doubled (inflate) while the doubled node would be at least 50 % used
  (30 % at the root), otherwise halved while under 25 % used (15 % at the
  root), at most [`MAX_WORK`] steps per node; a node with fewer than two
  children is collapsed into its child.

Leaves and internal nodes live in two arenas (`Vec`s) and refer to each
other by `u32` number (the top bit tells a leaf); a leaf's prefixes are
identified by the `u32` id the owning `Fib` gives them. The layout is sized
for a full IPv4 table (about 40 bytes per prefix in all, where the kernel
needs about 120): a leaf is 16 bytes with its one prefix inline (a leaf with
several points to a list), an internal node 24 bytes with its child slots in
a shared block array.
*/

use core::fmt;
use core::hash::Hash;

/// No node (an empty child slot, or the root's parent).
pub(crate) const NIL: u32 = u32::MAX;

/// Most resize steps per node per rebalance (the kernel's `MAX_WORK`).
pub const MAX_WORK: u32 = 10;

/// Nodes of up to this many bits keep their children in the shared block
/// array.
const SMALL_BITS: u8 = 10;

/// An internal node never gets more than `1 << MAX_BITS` children.
const MAX_BITS: u8 = 24;

/// The unsigned integer behind an address: `u32` for IPv4, `u128` for IPv6.
///
/// Bits are numbered from the least significant one (bit 0 is the last bit of
/// the address). This trait is implemented for `u32` and `u128` only.
///
/// ```
/// use htb::fib::KeyBits;
/// assert_eq!(<u32 as KeyBits>::BITS, 32);
/// assert_eq!(0xff00_0000u32.slice(24, 8), 0xff);
/// ```
pub trait KeyBits:
    Copy
    + Eq
    + Ord
    + Hash
    + fmt::Debug
    + Default
    + Send
    + Sync
    + 'static
    + core::ops::Not<Output = Self>
{
    /// Width of the key in bits (32 or 128).
    const BITS: u8;
    /// The all-zero key.
    const ZERO: Self;
    /// `self ^ other`.
    fn xor(self, other: Self) -> Self;
    /// `self | other`.
    fn or(self, other: Self) -> Self;
    /// `self & other`.
    fn and(self, other: Self) -> Self;
    /// Whether the key is zero.
    fn is_zero(self) -> bool;
    /// `self >> n`, zero when `n >= BITS`.
    fn shr(self, n: u8) -> Self;
    /// A key with only bit `n` set (`n < BITS`).
    fn bit(n: u8) -> Self;
    /// Bits `[pos, pos + bits)` of the key as an index (`bits <= 32`).
    fn slice(self, pos: u8, bits: u8) -> usize;
    /// Index of the highest set bit, `None` for zero.
    fn highest_bit(self) -> Option<u8>;
    /// Mask of the bits at `n` and above (all ones for 0, zero for `BITS`).
    fn high_mask(n: u8) -> Self;
    /// The key as a `u128` (for formatting and conversions).
    fn to_u128(self) -> u128;
    /// The low `BITS` bits of `x` as a key.
    fn from_u128(x: u128) -> Self;
    /// `w` bits (`1 ≤ w ≤ 31`) starting `d` bits below the top (`d < BITS`),
    /// as an index; bits past the end of the key read as 0. (The compiled
    /// table's stride index: most significant bit first.)
    #[doc(hidden)]
    fn stride(self, d: u32, w: u32) -> u32;
}

macro_rules! key_bits {
    ($t:ty) => {
        impl KeyBits for $t {
            const BITS: u8 = <$t>::BITS as u8;
            const ZERO: Self = 0;
            #[inline(always)]
            fn xor(self, other: Self) -> Self {
                self ^ other
            }
            #[inline(always)]
            fn or(self, other: Self) -> Self {
                self | other
            }
            #[inline(always)]
            fn and(self, other: Self) -> Self {
                self & other
            }
            #[inline(always)]
            fn is_zero(self) -> bool {
                self == 0
            }
            #[inline(always)]
            fn shr(self, n: u8) -> Self {
                self.checked_shr(u32::from(n)).unwrap_or(0)
            }
            #[inline(always)]
            fn bit(n: u8) -> Self {
                (1 as $t).checked_shl(u32::from(n)).unwrap_or(0)
            }
            #[inline(always)]
            fn slice(self, pos: u8, bits: u8) -> usize {
                let v = self.shr(pos);
                let m: u64 = (1u64 << bits) - 1;
                (v as u64 & m) as usize
            }
            #[inline(always)]
            fn highest_bit(self) -> Option<u8> {
                if self == 0 {
                    None
                } else {
                    Some((<$t>::BITS - 1 - self.leading_zeros()) as u8)
                }
            }
            #[inline(always)]
            fn high_mask(n: u8) -> Self {
                (!0 as $t).checked_shl(u32::from(n)).unwrap_or(0)
            }
            #[inline(always)]
            fn to_u128(self) -> u128 {
                self as u128
            }
            #[inline(always)]
            fn from_u128(x: u128) -> Self {
                x as $t
            }
            #[inline(always)]
            fn stride(self, d: u32, w: u32) -> u32 {
                ((self << d) >> (<$t>::BITS - w)) as u32
            }
        }
    };
}
key_bits!(u32);
key_bits!(u128);

/// Resize thresholds, in percent (the kernel's defaults by [`Default`]).
///
/// ```
/// let t = htb::fib::Thresholds::default();
/// assert_eq!((t.halve, t.inflate, t.halve_root, t.inflate_root), (25, 50, 15, 30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Halve a non-root node while fewer than this % of its slots are used.
    pub halve: u32,
    /// Inflate a non-root node while the doubled node would be ≥ this % used.
    pub inflate: u32,
    /// `halve` for the root node.
    pub halve_root: u32,
    /// `inflate` for the root node.
    pub inflate_root: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            halve: 25,
            inflate: 50,
            halve_root: 15,
            inflate_root: 30,
        }
    }
}

/// Marks a node number as a leaf (an index into the leaf arena); other
/// numbers index the internal-node arena.
const LEAF: u32 = 1 << 31;

/// `Leaf::one.0` when the leaf holds several prefixes: `one.1` is then their
/// list's index in `Trie::spill`.
const SPILL: u8 = u8::MAX;

/// 16 bytes for IPv4: nearly every address holds one prefix, stored inline.
#[derive(Clone, Debug)]
pub(crate) struct Leaf<B> {
    pub key: B,
    pub parent: u32,
    /// `(slen, id)` of the only prefix, or `(SPILL, i)`: the prefixes are
    /// `spill[i]`, `(slen, id)` slen ascending (longest prefix first).
    one: (u8, u32),
}

#[derive(Clone, Debug)]
pub(crate) struct Inner<B> {
    pub key: B,
    pub parent: u32,
    pub pos: u8,
    pub bits: u8,
    pub slen: u8,
    pub empty: u32,
    pub full: u32,
    /// Where the `1 << bits` child slots are: an offset in `Trie::kids`
    /// for a small node, an index in `Trie::big` for a large one.
    pub kids: u32,
}

/// A node seen through its number.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Node<'a, B> {
    Leaf(&'a Leaf<B>),
    Inner(&'a Inner<B>),
}

/// The LC-trie. Holds `(key, suffix length) -> id`; ids are the caller's.
#[derive(Clone, Debug)]
pub(crate) struct Trie<B> {
    /// Leaves and internal nodes live in two arenas (numbered with and
    /// without [`LEAF`]) so that each takes only its own size.
    leaves: Vec<Leaf<B>>,
    inners: Vec<Inner<B>>,
    free_leaves: Vec<u32>,
    free_inners: Vec<u32>,
    /// Child slots of the internal nodes of up to [`SMALL_BITS`] bits, in
    /// blocks of `1 << bits` with a free list per size (an index costs 4
    /// bytes in the node where a boxed slice costs 16).
    kids: Vec<u32>,
    free_kids: [Vec<u32>; SMALL_BITS as usize + 1],
    /// Child slots of larger nodes (the root, a few others): their own
    /// allocations, so that a root that doubles does not leave its old
    /// arrays in a free list.
    big: Vec<Box<[u32]>>,
    free_big: Vec<u32>,
    /// Prefix lists of the leaves that hold several.
    spill: Vec<Box<[(u8, u32)]>>,
    free_spill: Vec<u32>,
    root: u32,
    prefixes: usize,
    pub thresholds: Thresholds,
}

/// Shape statistics of a trie, as `/proc/net/fib_triestat` reports them.
///
/// ```
/// use std::net::Ipv4Addr;
/// use htb::fib::{Fib, Prefix, RouteKind};
/// let mut fib: Fib<Ipv4Addr, u32> = Fib::new();
/// for i in 0..4u8 {
///     let p = Prefix::new(Ipv4Addr::new(10, i, 0, 0), 16).unwrap();
///     fib.insert(p, 1, RouteKind::Unicast(7)).unwrap();
/// }
/// let s = fib.stats();
/// assert_eq!((s.leaves, s.prefixes, s.tnodes), (4, 4, 1));
/// // The root inflates while the doubled node would be ≥ 30 % used: 4 of 8.
/// assert_eq!((s.root_bits, s.tnodes_by_bits[3]), (3, 1));
/// assert!(s.to_string().contains("Leaves:         4"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrieStats {
    /// Mean depth of the leaves (root = depth 1 when the root is a node).
    pub avg_depth: f64,
    /// Deepest leaf.
    pub max_depth: u32,
    /// Leaves (distinct network addresses).
    pub leaves: usize,
    /// Prefixes (address + length pairs).
    pub prefixes: usize,
    /// Internal nodes.
    pub tnodes: usize,
    /// Internal nodes by their `bits` (index = bits).
    pub tnodes_by_bits: Vec<usize>,
    /// Child slots of all internal nodes.
    pub pointers: usize,
    /// Empty child slots.
    pub null_pointers: usize,
    /// Bytes in the kernel's accounting: 48 per leaf, 40 + 8 per child slot
    /// per internal node, and 48 per prefix (`fib_alias`).
    pub kernel_bytes: usize,
    /// Bytes this trie really allocates (arena, child arrays, alias lists).
    pub bytes: usize,
    /// Bits of the root node (0 when the root is a leaf or the trie empty).
    pub root_bits: u8,
}

impl fmt::Display for TrieStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\tAver depth:     {:.2}", self.avg_depth)?;
        writeln!(f, "\tMax depth:      {}", self.max_depth)?;
        writeln!(f, "\tLeaves:         {}", self.leaves)?;
        writeln!(f, "\tPrefixes:       {}", self.prefixes)?;
        writeln!(f, "\tInternal nodes: {}", self.tnodes)?;
        write!(f, "\t")?;
        for (bits, n) in self.tnodes_by_bits.iter().enumerate() {
            if *n > 0 {
                write!(f, "  {bits}: {n}")?;
            }
        }
        writeln!(f)?;
        writeln!(f, "\tPointers: {}", self.pointers)?;
        writeln!(f, "Null ptrs: {}", self.null_pointers)?;
        write!(f, "Total size: {}  kB", self.kernel_bytes.div_ceil(1024))
    }
}

impl<B: KeyBits> Default for Trie<B> {
    fn default() -> Self {
        Trie {
            leaves: Vec::new(),
            inners: Vec::new(),
            free_leaves: Vec::new(),
            free_inners: Vec::new(),
            kids: Vec::new(),
            free_kids: Default::default(),
            big: Vec::new(),
            free_big: Vec::new(),
            spill: Vec::new(),
            free_spill: Vec::new(),
            root: NIL,
            prefixes: 0,
            thresholds: Thresholds::default(),
        }
    }
}

impl<B: KeyBits> Trie<B> {
    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.prefixes
    }

    fn alloc_leaf(&mut self, l: Leaf<B>) -> u32 {
        if let Some(i) = self.free_leaves.pop() {
            self.leaves[i as usize] = l;
            i | LEAF
        } else {
            super::table::grow(&mut self.leaves, 1);
            self.leaves.push(l);
            (self.leaves.len() - 1) as u32 | LEAF
        }
    }

    fn alloc_inner(&mut self, n: Inner<B>) -> u32 {
        if let Some(i) = self.free_inners.pop() {
            self.inners[i as usize] = n;
            i
        } else {
            super::table::grow(&mut self.inners, 1);
            self.inners.push(n);
            (self.inners.len() - 1) as u32
        }
    }

    fn release(&mut self, i: u32) {
        if i & LEAF != 0 {
            let l = &mut self.leaves[(i & !LEAF) as usize];
            if l.one.0 == SPILL {
                let s = l.one.1;
                self.spill[s as usize] = Box::default();
                self.free_spill.push(s);
            }
            l.one = (0, NIL);
            self.free_leaves.push(i & !LEAF);
        } else {
            let n = &self.inners[i as usize];
            let (bits, at) = (n.bits, n.kids);
            if bits <= SMALL_BITS {
                self.free_kids[bits as usize].push(at);
            } else {
                self.big[at as usize] = Box::default();
                self.free_big.push(at);
            }
            self.free_inners.push(i);
        }
    }

    #[inline(always)]
    fn node(&self, i: u32) -> Node<'_, B> {
        if i & LEAF != 0 {
            Node::Leaf(&self.leaves[(i & !LEAF) as usize])
        } else {
            Node::Inner(&self.inners[i as usize])
        }
    }

    fn leaf_mut(&mut self, i: u32) -> &mut Leaf<B> {
        debug_assert!(i & LEAF != 0, "not a leaf");
        &mut self.leaves[(i & !LEAF) as usize]
    }

    /// The `(slen, id)` pairs of leaf `l`, slen ascending.
    #[inline(always)]
    fn aliases<'a>(&'a self, l: &'a Leaf<B>) -> &'a [(u8, u32)] {
        if l.one.0 == SPILL {
            &self.spill[l.one.1 as usize]
        } else {
            core::slice::from_ref(&l.one)
        }
    }

    /// Stores `v` (non-empty, slen ascending) as the pairs of leaf `i`.
    fn set_aliases(&mut self, i: u32, v: Vec<(u8, u32)>) {
        let one = self.leaf_mut(i).one;
        if v.len() == 1 {
            if one.0 == SPILL {
                self.spill[one.1 as usize] = Box::default();
                self.free_spill.push(one.1);
            }
            self.leaf_mut(i).one = v[0];
            return;
        }
        let v = v.into_boxed_slice();
        if one.0 == SPILL {
            self.spill[one.1 as usize] = v;
            return;
        }
        let s = match self.free_spill.pop() {
            Some(s) => {
                self.spill[s as usize] = v;
                s
            }
            None => {
                super::table::grow(&mut self.spill, 1);
                self.spill.push(v);
                (self.spill.len() - 1) as u32
            }
        };
        self.leaf_mut(i).one = (SPILL, s);
    }

    /// The child slots of `n`.
    #[inline(always)]
    fn kids(&self, n: &Inner<B>) -> &[u32] {
        if n.bits <= SMALL_BITS {
            &self.kids[n.kids as usize..][..1 << n.bits]
        } else {
            &self.big[n.kids as usize]
        }
    }

    /// Slot `i` of internal node `tn` becomes `c` (nothing else changes).
    fn set_kid(&mut self, tn: u32, i: usize, c: u32) {
        let n = &self.inners[tn as usize];
        if n.bits <= SMALL_BITS {
            self.kids[n.kids as usize + i] = c;
        } else {
            self.big[n.kids as usize][i] = c;
        }
    }

    /// `1 << bits` empty child slots.
    fn alloc_kids(&mut self, bits: u8) -> u32 {
        let len = 1usize << bits;
        if bits > SMALL_BITS {
            let b = vec![NIL; len].into_boxed_slice();
            return match self.free_big.pop() {
                Some(at) => {
                    self.big[at as usize] = b;
                    at
                }
                None => {
                    self.big.push(b);
                    (self.big.len() - 1) as u32
                }
            };
        }
        // A free block of this size, or else the smallest larger one split
        // in halves (nodes mostly grow while a table fills, so the freed
        // blocks are larger than the 2-slot ones new nodes ask for).
        let b = usize::from(bits);
        if let Some(c) = (b..self.free_kids.len()).find(|&c| !self.free_kids[c].is_empty()) {
            let at = self.free_kids[c].pop().expect("not empty");
            for k in b..c {
                self.free_kids[k].push(at + (1 << k));
            }
            self.kids[at as usize..][..len].fill(NIL);
            return at;
        }
        let at = self.kids.len();
        super::table::grow(&mut self.kids, len);
        self.kids.resize(at + len, NIL);
        at as u32
    }

    fn inner(&self, i: u32) -> &Inner<B> {
        debug_assert!(i & LEAF == 0, "not an internal node");
        &self.inners[i as usize]
    }

    fn inner_mut(&mut self, i: u32) -> &mut Inner<B> {
        debug_assert!(i & LEAF == 0, "not an internal node");
        &mut self.inners[i as usize]
    }

    fn key(&self, i: u32) -> B {
        match self.node(i) {
            Node::Leaf(l) => l.key,
            Node::Inner(n) => n.key,
        }
    }

    fn parent(&self, i: u32) -> u32 {
        match self.node(i) {
            Node::Leaf(l) => l.parent,
            Node::Inner(n) => n.parent,
        }
    }

    fn set_parent(&mut self, i: u32, p: u32) {
        if i & LEAF != 0 {
            self.leaves[(i & !LEAF) as usize].parent = p;
        } else {
            self.inners[i as usize].parent = p;
        }
    }

    /// The node's suffix length: the largest suffix stored below it.
    fn slen(&self, i: u32) -> u8 {
        match self.node(i) {
            Node::Leaf(l) => self.aliases(l).last().map_or(0, |a| a.0),
            Node::Inner(n) => n.slen,
        }
    }

    /// Child slot of `key` in internal node `n`, `None` if the key leaves the
    /// node's fixed (path-compressed) bits.
    #[inline(always)]
    fn index_in(n: &Inner<B>, key: B) -> Option<usize> {
        let x = key.xor(n.key);
        if x.shr(n.pos + n.bits).is_zero() {
            Some(x.slice(n.pos, n.bits))
        } else {
            None
        }
    }

    /// Whether child `c` of internal node at `pos` is "full": an internal
    /// node with no skipped bits between it and its parent.
    fn is_full(&self, parent_pos: u8, c: u32) -> bool {
        if c == NIL {
            return false;
        }
        match self.node(c) {
            Node::Inner(n) => n.pos + n.bits == parent_pos,
            Node::Leaf(_) => false,
        }
    }

    /// [`put_child`](Self::put_child) for a node being built by inflate or
    /// halve, whose slot `i` is still empty: only `c` needs a look (these
    /// slot moves are most of an insert's trie work).
    fn put_fresh(&mut self, tn: u32, i: usize, c: u32) {
        if c == NIL {
            return;
        }
        let pos = self.inner(tn).pos;
        debug_assert_eq!(self.kids(self.inner(tn))[i], NIL, "slot not fresh");
        let full = self.is_full(pos, c);
        let n = self.inner_mut(tn);
        n.empty -= 1;
        n.full += u32::from(full);
        self.set_kid(tn, i, c);
        self.set_parent(c, tn);
    }

    /// Puts `c` in slot `i` of `tn`, keeping the empty/full counts.
    fn put_child(&mut self, tn: u32, i: usize, c: u32) {
        let (pos, old) = {
            let n = self.inner(tn);
            (n.pos, self.kids(n)[i])
        };
        let was_full = self.is_full(pos, old);
        let now_full = self.is_full(pos, c);
        let n = self.inner_mut(tn);
        if old == NIL && c != NIL {
            n.empty -= 1;
        } else if old != NIL && c == NIL {
            n.empty += 1;
        }
        if was_full && !now_full {
            n.full -= 1;
        } else if !was_full && now_full {
            n.full += 1;
        }
        self.set_kid(tn, i, c);
        if c != NIL {
            self.set_parent(c, tn);
        }
    }

    /// Replaces `old` by `new` in `old`'s parent (or as the root).
    fn replace_in_parent(&mut self, old: u32, new: u32) {
        let p = self.parent(old);
        if p == NIL {
            self.root = new;
            if new != NIL {
                self.set_parent(new, NIL);
            }
        } else {
            let i = Self::index_in(self.inner(p), self.key(old)).expect("child key in parent");
            self.put_child(p, i, new);
        }
    }

    fn new_inner(&mut self, key: B, pos: u8, bits: u8) -> u32 {
        let key = key.and(B::high_mask(pos + bits));
        let len = 1usize << bits;
        let kids = self.alloc_kids(bits);
        self.alloc_inner(Inner {
            key,
            parent: NIL,
            pos,
            bits,
            slen: pos,
            empty: len as u32,
            full: 0,
            kids,
        })
    }

    /// Recomputes an internal node's `slen` from its children. Only children
    /// whose index has enough trailing zeros can raise it, so the scan skips
    /// ahead as the best value grows.
    fn recompute_slen(&mut self, tn: u32) {
        let (pos, bits) = {
            let n = self.inner(tn);
            (n.pos, n.bits)
        };
        let len = 1usize << bits;
        let mut best = pos;
        let mut i = 0usize;
        while i < len {
            let c = self.kids(self.inner(tn))[i];
            if c != NIL {
                best = best.max(self.slen(c));
            }
            let need = (best + 1).saturating_sub(pos);
            if need >= bits {
                break;
            }
            let step = 1usize << need;
            i = (i / step + 1) * step;
        }
        self.inner_mut(tn).slen = best;
    }

    /// Raises `slen` on the path up from `n` (exclusive) to at least `s`.
    fn push_suffix(&mut self, mut n: u32, s: u8) {
        n = self.parent(n);
        while n != NIL {
            let inner = self.inner_mut(n);
            if inner.slen >= s {
                break;
            }
            inner.slen = s;
            n = inner.parent;
        }
    }

    /// Recomputes `slen` upwards from `n` (inclusive) after a suffix `old`
    /// went away below it.
    fn pull_suffix(&mut self, mut n: u32, old: u8) {
        while n != NIL {
            if n & LEAF != 0 {
                n = self.parent(n);
                continue;
            }
            if self.inner(n).slen != old {
                break;
            }
            self.recompute_slen(n);
            if self.inner(n).slen == old {
                break;
            }
            n = self.parent(n);
        }
    }

    /// The leaf holding exactly `key`, if any.
    pub fn find_leaf(&self, key: B) -> Option<u32> {
        let mut n = self.root;
        while n != NIL {
            match self.node(n) {
                Node::Leaf(l) => return (l.key == key).then_some(n),
                Node::Inner(t) => n = self.kids(t)[Self::index_in(t, key)?],
            }
        }
        None
    }

    /// The id stored for `(key, slen)`.
    pub fn get(&self, key: B, slen: u8) -> Option<u32> {
        let l = self.find_leaf(key)?;
        match self.node(l) {
            Node::Leaf(l) => self.aliases(l).iter().find(|a| a.0 == slen).map(|a| a.1),
            Node::Inner(_) => None,
        }
    }

    /// Stores `(key, slen) -> id`; `key` must have its low `slen` bits
    /// clear. If the pair is present already nothing changes and its id is
    /// the error. One descent finds both the leaf of `key` (if any) and the
    /// slot a new leaf would take.
    pub fn insert(&mut self, key: B, slen: u8, id: u32) -> Result<(), u32> {
        // Descend to the slot where the key belongs.
        let mut tp = NIL;
        let mut n = self.root;
        let mut slot = 0;
        while n != NIL {
            let Node::Inner(t) = self.node(n) else {
                break;
            };
            match Self::index_in(t, key) {
                None => break,
                Some(i) => {
                    tp = n;
                    slot = i;
                    n = self.kids(t)[i];
                }
            }
        }
        if n != NIL && n & LEAF != 0 {
            let Node::Leaf(leaf) = self.node(n) else {
                unreachable!("a leaf number")
            };
            if leaf.key == key {
                let mut v = self.aliases(leaf).to_vec();
                let at = v.partition_point(|a| a.0 < slen);
                if let Some(a) = v.get(at).filter(|a| a.0 == slen) {
                    return Err(a.1);
                }
                v.insert(at, (slen, id));
                let s = v.last().map_or(0, |a| a.0);
                self.set_aliases(n, v);
                self.push_suffix(n, s);
                self.prefixes += 1;
                return Ok(());
            }
        }
        self.prefixes += 1;
        let leaf = self.alloc_leaf(Leaf {
            key,
            parent: NIL,
            one: (slen, id),
        });
        let placed = if n == NIL {
            leaf
        } else {
            // `n` (a leaf with another key, or a node whose fixed bits differ)
            // and the new leaf get a fresh 1-bit node at their highest
            // differing bit.
            let diff = key.xor(self.key(n)).highest_bit().expect("keys differ");
            let tn = self.new_inner(key, diff, 1);
            let (lpos, npos) = if key.slice(diff, 1) == 1 {
                (1, 0)
            } else {
                (0, 1)
            };
            self.put_child(tn, npos, n);
            self.put_child(tn, lpos, leaf);
            let s = self.slen(n).max(slen).max(diff);
            self.inner_mut(tn).slen = s;
            tn
        };
        if tp == NIL {
            self.root = placed;
            self.set_parent(placed, NIL);
        } else {
            self.put_child(tp, slot, placed);
        }
        let s = self.slen(placed);
        self.push_suffix(placed, s);
        // Rebalance from the new 1-bit node when there is one (it may
        // inflate at once), else from the node that took the leaf.
        self.rebalance(if placed == leaf { tp } else { placed });
        Ok(())
    }

    /// Removes `(key, slen)`; returns its id.
    pub fn remove(&mut self, key: B, slen: u8) -> Option<u32> {
        let l = self.find_leaf(key)?;
        let Node::Leaf(leaf) = self.node(l) else {
            unreachable!()
        };
        let parent = leaf.parent;
        let aliases = self.aliases(leaf);
        let at = aliases.iter().position(|a| a.0 == slen)?;
        let old_max = aliases.last().map_or(0, |a| a.0);
        let id = aliases[at].1;
        let several = (aliases.len() > 1).then(|| aliases.to_vec());
        self.prefixes -= 1;
        if let Some(mut v) = several {
            v.remove(at);
            let new_max = v.last().map_or(0, |a| a.0);
            self.set_aliases(l, v);
            if new_max != old_max {
                self.pull_suffix(parent, old_max);
            }
            return Some(id);
        }
        self.replace_in_parent(l, NIL);
        self.release(l);
        self.pull_suffix(parent, old_max);
        self.rebalance(parent);
        Some(id)
    }

    /// Resizes every node from `tn` up to the root.
    fn rebalance(&mut self, mut tn: u32) {
        while tn != NIL {
            tn = self.resize(tn);
        }
    }

    fn should_inflate(&self, tn: u32) -> bool {
        let n = self.inner(tn);
        let len = 1u64 << n.bits;
        let used = len - u64::from(n.empty) + u64::from(n.full);
        let th = if n.parent == NIL {
            self.thresholds.inflate_root
        } else {
            self.thresholds.inflate
        };
        used > 1 && n.pos != 0 && n.bits < MAX_BITS && 50 * used >= u64::from(th) * len
    }

    fn should_halve(&self, tn: u32) -> bool {
        let n = self.inner(tn);
        let len = 1u64 << n.bits;
        let used = len - u64::from(n.empty);
        let th = if n.parent == NIL {
            self.thresholds.halve_root
        } else {
            self.thresholds.halve
        };
        used > 1 && n.bits > 1 && 100 * used < u64::from(th) * len
    }

    /// One rebalance step for `tn`; returns its parent (where to continue).
    fn resize(&mut self, mut tn: u32) -> u32 {
        let tp = self.parent(tn);
        let mut work = MAX_WORK;
        while work > 0 && self.should_inflate(tn) {
            tn = self.inflate(tn);
            work -= 1;
        }
        if work != MAX_WORK {
            return tp;
        }
        while work > 0 && self.should_halve(tn) {
            tn = self.halve(tn);
            work -= 1;
        }
        let n = self.inner(tn);
        let len = 1u32 << n.bits;
        if len - n.empty < 2 {
            // Collapse: the node's only child (or nothing) takes its place.
            let only = self
                .kids(n)
                .iter()
                .copied()
                .find(|&c| c != NIL)
                .unwrap_or(NIL);
            self.replace_in_parent(tn, only);
            self.release(tn);
        }
        tp
    }

    /// Finishes an inflate or halve: `new` replaces `old`, whose children
    /// have been moved; full children of `new` are resized in turn.
    fn replace(&mut self, old: u32, new: u32) -> u32 {
        self.replace_in_parent(old, new);
        self.release(old);
        self.recompute_slen(new);
        // Most new nodes have no full child: then the scan finds nothing.
        let len = if self.inner(new).full == 0 {
            0
        } else {
            self.kids(self.inner(new)).len()
        };
        for i in (0..len).rev() {
            let c = self.kids(self.inner(new))[i];
            let pos = self.inner(new).pos;
            if self.is_full(pos, c) {
                self.resize(c);
            }
        }
        new
    }

    /// Doubles `old` (one more bit, one position lower).
    fn inflate(&mut self, old: u32) -> u32 {
        let (key, pos, bits) = {
            let n = self.inner(old);
            (n.key, n.pos, n.bits)
        };
        let new = self.new_inner(key, pos - 1, bits + 1);
        for i in 0..(1usize << bits) {
            let c = self.kids(self.inner(old))[i];
            if c == NIL {
                continue;
            }
            if !self.is_full(pos, c) {
                let j = Self::index_in(self.inner(new), self.key(c)).expect("same prefix");
                self.put_fresh(new, j, c);
                continue;
            }
            let (ckey, cpos, cbits) = {
                let n = self.inner(c);
                (n.key, n.pos, n.bits)
            };
            let kids: Vec<u32> = self.kids(self.inner(c)).to_vec();
            if cbits == 1 {
                self.put_fresh(new, 2 * i, kids[0]);
                self.put_fresh(new, 2 * i + 1, kids[1]);
            } else {
                // Split the full child on its top bit.
                let half = kids.len() / 2;
                let top = B::bit(cpos + cbits - 1);
                let n0 = self.new_inner(ckey, cpos, cbits - 1);
                let n1 = self.new_inner(ckey.or(top), cpos, cbits - 1);
                for (k, &g) in kids.iter().enumerate() {
                    if g != NIL {
                        let (t, j) = if k < half { (n0, k) } else { (n1, k - half) };
                        self.put_fresh(t, j, g);
                    }
                }
                self.recompute_slen(n0);
                self.recompute_slen(n1);
                self.put_fresh(new, 2 * i, n0);
                self.put_fresh(new, 2 * i + 1, n1);
            }
            self.release(c);
        }
        self.replace(old, new)
    }

    /// Halves `old` (one bit less, one position higher).
    fn halve(&mut self, old: u32) -> u32 {
        let (key, pos, bits) = {
            let n = self.inner(old);
            (n.key, n.pos, n.bits)
        };
        let new = self.new_inner(key, pos + 1, bits - 1);
        for i in (0..(1usize << bits)).step_by(2) {
            let (c0, c1) = {
                let n = self.inner(old);
                (self.kids(n)[i], self.kids(n)[i + 1])
            };
            let c = match (c0 != NIL, c1 != NIL) {
                (false, false) => continue,
                (true, false) => c0,
                (false, true) => c1,
                (true, true) => {
                    let b = self.new_inner(self.key(c0), pos, 1);
                    self.put_fresh(b, 0, c0);
                    self.put_fresh(b, 1, c1);
                    self.recompute_slen(b);
                    b
                }
            };
            self.put_fresh(new, i / 2, c);
        }
        self.replace(old, new)
    }

    /// The id of the longest prefix covering `key`.
    #[inline]
    pub fn lookup(&self, key: B) -> Option<u32> {
        self.best(self.root, key, 0).map(|b| b.0)
    }

    /// `(id, slen)` of the longest prefix covering `key` whose suffix is
    /// longer than `slen` (a prefix strictly shorter than `BITS - slen`):
    /// the prefix that takes over the addresses of a removed one.
    pub fn lookup_shorter(&self, key: B, slen: u8) -> Option<(u32, u8)> {
        self.best(self.root, key, slen.checked_add(1)?)
    }

    /// Longest prefix covering `key` stored below node `n`, as `(id, slen)`,
    /// among those with a suffix of at least `min`. Children are
    /// tried most specific first: the slot the key selects, then that slot
    /// with its lowest set bits cleared one by one (a covering prefix in
    /// another slot has zeros where the slot index was cleared).
    fn best(&self, n: u32, key: B, min: u8) -> Option<(u32, u8)> {
        if n == NIL {
            return None;
        }
        match self.node(n) {
            Node::Leaf(l) => {
                let x = key.xor(l.key);
                self.aliases(l)
                    .iter()
                    .find(|a| a.0 >= min && x.shr(a.0).is_zero())
                    .map(|a| (a.1, a.0))
            }
            Node::Inner(t) => {
                let x = key.xor(t.key);
                let hi = x.shr(t.pos + t.bits);
                if let Some(d) = hi.highest_bit() {
                    // The key leaves this subtree's fixed bits at bit
                    // `pos + bits + d`; only a prefix whose suffix covers
                    // that bit can match, and it sits in slot 0.
                    if t.slen > t.pos + t.bits + d {
                        return self.best(self.kids(t)[0], key, min);
                    }
                    return None;
                }
                let mut i = x.slice(t.pos, t.bits);
                if let Some(r) = self.best(self.kids(t)[i], key, min) {
                    return Some(r);
                }
                if t.slen <= t.pos {
                    return None;
                }
                while i != 0 {
                    i &= i - 1;
                    let c = self.kids(t)[i];
                    if c != NIL && self.slen(c) > t.pos {
                        if let Some(r) = self.best(c, key, min) {
                            return Some(r);
                        }
                    }
                }
                None
            }
        }
    }

    /// Visits every `(key, slen, id)` whose key lies in `[lo, hi]`, in key
    /// order, longer suffixes (shorter prefixes) first within a key.
    pub fn walk_range(&self, lo: B, hi: B, f: &mut dyn FnMut(B, u8, u32)) {
        if self.root == NIL {
            return;
        }
        let mut stack: Vec<(u32, usize)> = vec![(self.root, 0)];
        while let Some(&mut (n, ref mut next)) = stack.last_mut() {
            match self.node(n) {
                Node::Leaf(l) => {
                    if l.key >= lo && l.key <= hi {
                        for a in self.aliases(l).iter().rev() {
                            f(l.key, a.0, a.1);
                        }
                    }
                    stack.pop();
                }
                Node::Inner(t) => {
                    if *next == 0 {
                        let nlo = t.key;
                        let nhi = t.key.or(!B::high_mask(t.pos + t.bits));
                        if nhi < lo || nlo > hi {
                            stack.pop();
                            continue;
                        }
                    }
                    let mut i = *next;
                    while i < self.kids(t).len() && self.kids(t)[i] == NIL {
                        i += 1;
                    }
                    if i >= self.kids(t).len() {
                        stack.pop();
                    } else {
                        *next = i + 1;
                        stack.push((self.kids(t)[i], 0));
                    }
                }
            }
        }
    }

    /// Shape statistics.
    pub fn stats(&self) -> TrieStats {
        let mut s = TrieStats {
            prefixes: self.prefixes,
            tnodes_by_bits: vec![0; usize::from(MAX_BITS) + 1],
            ..TrieStats::default()
        };
        let mut depth_sum = 0u64;
        if self.root != NIL {
            let mut stack = vec![(self.root, 0u32)];
            while let Some((n, d)) = stack.pop() {
                match self.node(n) {
                    Node::Leaf(l) => {
                        s.leaves += 1;
                        depth_sum += u64::from(d);
                        s.max_depth = s.max_depth.max(d);
                        if l.one.0 == SPILL {
                            s.bytes += self.spill[l.one.1 as usize].len() * 8;
                        }
                    }
                    Node::Inner(t) => {
                        s.tnodes += 1;
                        s.tnodes_by_bits[usize::from(t.bits)] += 1;
                        s.pointers += self.kids(t).len();
                        s.null_pointers += t.empty as usize;
                        if t.bits > SMALL_BITS {
                            s.bytes += self.kids(t).len() * 4;
                        }
                        for &c in self.kids(t).iter() {
                            if c != NIL {
                                stack.push((c, d + 1));
                            }
                        }
                    }
                }
            }
            if let Node::Inner(t) = self.node(self.root) {
                s.root_bits = t.bits;
            }
        }
        while s.tnodes_by_bits.len() > 1 && s.tnodes_by_bits.last() == Some(&0) {
            s.tnodes_by_bits.pop();
        }
        s.avg_depth = if s.leaves > 0 {
            depth_sum as f64 / s.leaves as f64
        } else {
            0.0
        };
        s.kernel_bytes = s.leaves * 48 + s.tnodes * 40 + s.pointers * 8 + s.prefixes * 48;
        s.bytes += self.leaves.capacity() * core::mem::size_of::<Leaf<B>>()
            + self.inners.capacity() * core::mem::size_of::<Inner<B>>()
            + self.spill.capacity() * core::mem::size_of::<Box<[(u8, u32)]>>()
            + self.kids.capacity() * 4
            + self.big.capacity() * core::mem::size_of::<Box<[u32]>>()
            + (self.free_leaves.capacity()
                + self.free_inners.capacity()
                + self.free_spill.capacity()
                + self.free_big.capacity()
                + self.free_kids.iter().map(Vec::capacity).sum::<usize>())
                * 4;
        s
    }

    /// Checks every structural invariant (tests only); returns a message on
    /// the first violation.
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        if self.root == NIL {
            return if self.prefixes == 0 {
                Ok(())
            } else {
                Err("empty root with prefixes".into())
            };
        }
        if self.parent(self.root) != NIL {
            return Err("root has a parent".into());
        }
        let mut count = 0;
        let mut stack = vec![self.root];
        while let Some(n) = stack.pop() {
            match self.node(n) {
                Node::Leaf(l) => {
                    let aliases = self.aliases(l);
                    count += aliases.len();
                    if aliases.is_empty() {
                        return Err("empty leaf".into());
                    }
                    if l.one.0 == SPILL && aliases.len() < 2 {
                        return Err("spilled leaf with one prefix".into());
                    }
                    for w in aliases.windows(2) {
                        if w[0].0 >= w[1].0 {
                            return Err("aliases out of order".into());
                        }
                    }
                }
                Node::Inner(t) => {
                    let mut empty = 0;
                    let mut full = 0;
                    let mut slen = t.pos;
                    for (i, &c) in self.kids(t).iter().enumerate() {
                        if c == NIL {
                            empty += 1;
                            continue;
                        }
                        if self.parent(c) != n {
                            return Err(format!("bad parent of {c}"));
                        }
                        if Self::index_in(t, self.key(c)) != Some(i) {
                            return Err(format!("child {c} in wrong slot {i}"));
                        }
                        if self.is_full(t.pos, c) {
                            full += 1;
                        }
                        if let Node::Inner(ct) = self.node(c) {
                            if ct.pos + ct.bits > t.pos {
                                return Err("child overlaps parent bits".into());
                            }
                        }
                        slen = slen.max(self.slen(c));
                        stack.push(c);
                    }
                    if empty != t.empty || full != t.full {
                        return Err(format!(
                            "counts: empty {} vs {empty}, full {} vs {full}",
                            t.empty, t.full
                        ));
                    }
                    if slen != t.slen {
                        return Err(format!("slen {} vs {slen}", t.slen));
                    }
                    if self.kids(t).len() - (t.empty as usize) < 2 {
                        return Err("node with fewer than two children".into());
                    }
                }
            }
        }
        if count != self.prefixes {
            return Err(format!("{count} prefixes found, {} counted", self.prefixes));
        }
        Ok(())
    }
}
