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

Nodes live in an arena (`Vec`) and refer to each other by `u32` index; a
leaf's prefixes are identified by the `u32` id the owning `Fib` gives them.
*/

use core::fmt;
use core::hash::Hash;

/// No node (an empty child slot, or the root's parent).
pub(crate) const NIL: u32 = u32::MAX;

/// Most resize steps per node per rebalance (the kernel's `MAX_WORK`).
pub const MAX_WORK: u32 = 10;

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

#[derive(Clone, Debug)]
pub(crate) struct Leaf<B> {
    pub key: B,
    pub parent: u32,
    /// `(slen, id)`, slen ascending (longest prefix first).
    pub aliases: Vec<(u8, u32)>,
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
    pub children: Box<[u32]>,
}

#[derive(Clone, Debug)]
pub(crate) enum Node<B> {
    Leaf(Leaf<B>),
    Inner(Inner<B>),
    Free,
}

/// The LC-trie. Holds `(key, suffix length) -> id`; ids are the caller's.
#[derive(Clone, Debug)]
pub(crate) struct Trie<B> {
    nodes: Vec<Node<B>>,
    free: Vec<u32>,
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
            nodes: Vec::new(),
            free: Vec::new(),
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

    fn alloc(&mut self, n: Node<B>) -> u32 {
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = n;
            i
        } else {
            self.nodes.push(n);
            (self.nodes.len() - 1) as u32
        }
    }

    fn release(&mut self, i: u32) {
        self.nodes[i as usize] = Node::Free;
        self.free.push(i);
    }

    fn inner(&self, i: u32) -> &Inner<B> {
        match &self.nodes[i as usize] {
            Node::Inner(n) => n,
            _ => unreachable!("not an internal node"),
        }
    }

    fn inner_mut(&mut self, i: u32) -> &mut Inner<B> {
        match &mut self.nodes[i as usize] {
            Node::Inner(n) => n,
            _ => unreachable!("not an internal node"),
        }
    }

    fn key(&self, i: u32) -> B {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l.key,
            Node::Inner(n) => n.key,
            Node::Free => unreachable!("free node"),
        }
    }

    fn parent(&self, i: u32) -> u32 {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l.parent,
            Node::Inner(n) => n.parent,
            Node::Free => NIL,
        }
    }

    fn set_parent(&mut self, i: u32, p: u32) {
        match &mut self.nodes[i as usize] {
            Node::Leaf(l) => l.parent = p,
            Node::Inner(n) => n.parent = p,
            Node::Free => {}
        }
    }

    /// The node's suffix length: the largest suffix stored below it.
    fn slen(&self, i: u32) -> u8 {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l.aliases.last().map_or(0, |a| a.0),
            Node::Inner(n) => n.slen,
            Node::Free => 0,
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
        match &self.nodes[c as usize] {
            Node::Inner(n) => n.pos + n.bits == parent_pos,
            _ => false,
        }
    }

    /// Puts `c` in slot `i` of `tn`, keeping the empty/full counts.
    fn put_child(&mut self, tn: u32, i: usize, c: u32) {
        let (pos, old) = {
            let n = self.inner(tn);
            (n.pos, n.children[i])
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
        n.children[i] = c;
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
        self.alloc(Node::Inner(Inner {
            key,
            parent: NIL,
            pos,
            bits,
            slen: pos,
            empty: len as u32,
            full: 0,
            children: vec![NIL; len].into_boxed_slice(),
        }))
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
            let c = self.inner(tn).children[i];
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
            if !matches!(self.nodes[n as usize], Node::Inner(_)) {
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
            match &self.nodes[n as usize] {
                Node::Leaf(l) => return (l.key == key).then_some(n),
                Node::Inner(t) => n = t.children[Self::index_in(t, key)?],
                Node::Free => return None,
            }
        }
        None
    }

    /// The id stored for `(key, slen)`.
    pub fn get(&self, key: B, slen: u8) -> Option<u32> {
        let l = self.find_leaf(key)?;
        match &self.nodes[l as usize] {
            Node::Leaf(l) => l.aliases.iter().find(|a| a.0 == slen).map(|a| a.1),
            _ => None,
        }
    }

    /// Stores `(key, slen) -> id`; `key` must have its low `slen` bits clear
    /// and the pair must not be present.
    pub fn insert(&mut self, key: B, slen: u8, id: u32) {
        self.prefixes += 1;
        if let Some(l) = self.find_leaf(key) {
            let Node::Leaf(leaf) = &mut self.nodes[l as usize] else {
                unreachable!()
            };
            let at = leaf.aliases.partition_point(|a| a.0 < slen);
            leaf.aliases.insert(at, (slen, id));
            let s = leaf.aliases.last().map_or(0, |a| a.0);
            self.push_suffix(l, s);
            return;
        }
        let leaf = self.alloc(Node::Leaf(Leaf {
            key,
            parent: NIL,
            aliases: vec![(slen, id)],
        }));
        // Descend to the slot where the key belongs.
        let mut tp = NIL;
        let mut n = self.root;
        let mut slot = 0;
        while n != NIL {
            let Node::Inner(t) = &self.nodes[n as usize] else {
                break;
            };
            match Self::index_in(t, key) {
                None => break,
                Some(i) => {
                    tp = n;
                    slot = i;
                    n = t.children[i];
                }
            }
        }
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
    }

    /// Removes `(key, slen)`; returns its id.
    pub fn remove(&mut self, key: B, slen: u8) -> Option<u32> {
        let l = self.find_leaf(key)?;
        let Node::Leaf(leaf) = &mut self.nodes[l as usize] else {
            unreachable!()
        };
        let at = leaf.aliases.iter().position(|a| a.0 == slen)?;
        let old_max = leaf.aliases.last().map_or(0, |a| a.0);
        let (_, id) = leaf.aliases.remove(at);
        self.prefixes -= 1;
        let parent = leaf.parent;
        if !leaf.aliases.is_empty() {
            let new_max = leaf.aliases.last().map_or(0, |a| a.0);
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
            let only = n
                .children
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
        let len = self.inner(new).children.len();
        for i in (0..len).rev() {
            let c = self.inner(new).children[i];
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
            let c = self.inner(old).children[i];
            if c == NIL {
                continue;
            }
            if !self.is_full(pos, c) {
                let j = Self::index_in(self.inner(new), self.key(c)).expect("same prefix");
                self.put_child(new, j, c);
                continue;
            }
            let (ckey, cpos, cbits) = {
                let n = self.inner(c);
                (n.key, n.pos, n.bits)
            };
            let kids: Vec<u32> = self.inner(c).children.to_vec();
            if cbits == 1 {
                self.put_child(new, 2 * i, kids[0]);
                self.put_child(new, 2 * i + 1, kids[1]);
            } else {
                // Split the full child on its top bit.
                let half = kids.len() / 2;
                let top = B::bit(cpos + cbits - 1);
                let n0 = self.new_inner(ckey, cpos, cbits - 1);
                let n1 = self.new_inner(ckey.or(top), cpos, cbits - 1);
                for (k, &g) in kids.iter().enumerate() {
                    if g != NIL {
                        let (t, j) = if k < half { (n0, k) } else { (n1, k - half) };
                        self.put_child(t, j, g);
                    }
                }
                self.recompute_slen(n0);
                self.recompute_slen(n1);
                self.put_child(new, 2 * i, n0);
                self.put_child(new, 2 * i + 1, n1);
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
                (n.children[i], n.children[i + 1])
            };
            let c = match (c0 != NIL, c1 != NIL) {
                (false, false) => continue,
                (true, false) => c0,
                (false, true) => c1,
                (true, true) => {
                    let b = self.new_inner(self.key(c0), pos, 1);
                    self.put_child(b, 0, c0);
                    self.put_child(b, 1, c1);
                    self.recompute_slen(b);
                    b
                }
            };
            self.put_child(new, i / 2, c);
        }
        self.replace(old, new)
    }

    /// The id of the longest prefix covering `key`.
    #[inline]
    pub fn lookup(&self, key: B) -> Option<u32> {
        self.best(self.root, key)
    }

    /// Longest prefix covering `key` stored below node `n`. Children are
    /// tried most specific first: the slot the key selects, then that slot
    /// with its lowest set bits cleared one by one (a covering prefix in
    /// another slot has zeros where the slot index was cleared).
    fn best(&self, n: u32, key: B) -> Option<u32> {
        if n == NIL {
            return None;
        }
        match &self.nodes[n as usize] {
            Node::Leaf(l) => {
                let x = key.xor(l.key);
                l.aliases.iter().find(|a| x.shr(a.0).is_zero()).map(|a| a.1)
            }
            Node::Inner(t) => {
                let x = key.xor(t.key);
                let hi = x.shr(t.pos + t.bits);
                if let Some(d) = hi.highest_bit() {
                    // The key leaves this subtree's fixed bits at bit
                    // `pos + bits + d`; only a prefix whose suffix covers
                    // that bit can match, and it sits in slot 0.
                    if t.slen > t.pos + t.bits + d {
                        return self.best(t.children[0], key);
                    }
                    return None;
                }
                let mut i = x.slice(t.pos, t.bits);
                if let Some(r) = self.best(t.children[i], key) {
                    return Some(r);
                }
                if t.slen <= t.pos {
                    return None;
                }
                while i != 0 {
                    i &= i - 1;
                    let c = t.children[i];
                    if c != NIL && self.slen(c) > t.pos {
                        if let Some(r) = self.best(c, key) {
                            return Some(r);
                        }
                    }
                }
                None
            }
            Node::Free => None,
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
            match &self.nodes[n as usize] {
                Node::Leaf(l) => {
                    if l.key >= lo && l.key <= hi {
                        for a in l.aliases.iter().rev() {
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
                    while i < t.children.len() && t.children[i] == NIL {
                        i += 1;
                    }
                    if i >= t.children.len() {
                        stack.pop();
                    } else {
                        *next = i + 1;
                        stack.push((t.children[i], 0));
                    }
                }
                Node::Free => {
                    stack.pop();
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
                match &self.nodes[n as usize] {
                    Node::Leaf(l) => {
                        s.leaves += 1;
                        depth_sum += u64::from(d);
                        s.max_depth = s.max_depth.max(d);
                        s.bytes += l.aliases.capacity() * 8;
                    }
                    Node::Inner(t) => {
                        s.tnodes += 1;
                        s.tnodes_by_bits[usize::from(t.bits)] += 1;
                        s.pointers += t.children.len();
                        s.null_pointers += t.empty as usize;
                        s.bytes += t.children.len() * 4;
                        for &c in t.children.iter() {
                            if c != NIL {
                                stack.push((c, d + 1));
                            }
                        }
                    }
                    Node::Free => {}
                }
            }
            if let Node::Inner(t) = &self.nodes[self.root as usize] {
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
        s.bytes +=
            self.nodes.capacity() * core::mem::size_of::<Node<B>>() + self.free.capacity() * 4;
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
            match &self.nodes[n as usize] {
                Node::Leaf(l) => {
                    count += l.aliases.len();
                    if l.aliases.is_empty() {
                        return Err("empty leaf".into());
                    }
                    for w in l.aliases.windows(2) {
                        if w[0].0 >= w[1].0 {
                            return Err("aliases out of order".into());
                        }
                    }
                }
                Node::Inner(t) => {
                    let mut empty = 0;
                    let mut full = 0;
                    let mut slen = t.pos;
                    for (i, &c) in t.children.iter().enumerate() {
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
                        if let Node::Inner(ct) = &self.nodes[c as usize] {
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
                    if t.children.len() - (t.empty as usize) < 2 {
                        return Err("node with fewer than two children".into());
                    }
                }
                Node::Free => return Err("free node reachable".into()),
            }
        }
        if count != self.prefixes {
            return Err(format!("{count} prefixes found, {} counted", self.prefixes));
        }
        Ok(())
    }
}
