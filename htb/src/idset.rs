//! An ordered set of small integer keys: the storage behind HTB's rows and
//! inner feeds.
//!
//! The kernel keeps rows and feeds as red-black trees ordered by class id and
//! walks them with "leftmost", "next" and "smallest id ≥ x". All keys here are
//! dense and bounded (a class id's 16-bit minor, or a child's rank among its
//! siblings), so a hierarchical bitmap answers each of those questions with a
//! handful of word operations and no pointer chasing: level 0 has one bit per
//! key, and each higher level has one bit per non-zero word below it.
//! Insert and remove never allocate; only [`IdSet::grow`] does, at
//! configuration time.

/// Most levels a set can have: 64^6 > 2^32 keys.
const MAX_LEVELS: usize = 6;

/// A set of `u32` keys in `0..capacity`, ordered, with O(levels) operations.
///
/// All levels live in one vector (level 0 first), so an operation reads no
/// per-level vector headers.
#[derive(Clone, Default)]
pub struct IdSet {
    /// The words of every level: level `i` is `words[offs[i]..offs[i + 1]]`;
    /// level 0 has one bit per key, level `i+1` one bit per word of level `i`.
    words: Vec<u64>,
    offs: [u32; MAX_LEVELS + 1],
    levels: u8,
    capacity: u32,
    len: u32,
}

impl core::fmt::Debug for IdSet {
    // As when the levels were a `Vec<Vec<u64>>`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let levels: Vec<&[u64]> = (0..self.levels as usize).map(|i| self.level(i)).collect();
        f.debug_struct("IdSet")
            .field("levels", &levels)
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .finish()
    }
}

impl IdSet {
    /// An empty set that can hold keys `0..capacity`.
    pub fn with_capacity(capacity: u32) -> Self {
        let mut s = IdSet::default();
        s.grow(capacity);
        s
    }

    #[inline]
    fn level(&self, i: usize) -> &[u64] {
        &self.words[self.offs[i] as usize..self.offs[i + 1] as usize]
    }

    /// Makes room for keys `0..capacity`, keeping the members.
    pub fn grow(&mut self, capacity: u32) {
        if capacity <= self.capacity && self.levels != 0 {
            return;
        }
        let members: Vec<u32> = self.iter().collect();
        let capacity = capacity.max(self.capacity).max(1);
        let mut offs = [0u32; MAX_LEVELS + 1];
        let mut levels = 0;
        let mut total = 0usize;
        let mut n = capacity as usize;
        loop {
            let words = n.div_ceil(64);
            total += words;
            levels += 1;
            offs[levels] = total as u32;
            if words == 1 {
                break;
            }
            n = words;
        }
        self.words = vec![0u64; total];
        self.offs = offs;
        self.levels = levels as u8;
        self.capacity = capacity;
        self.len = 0;
        for m in members {
            self.insert(m);
        }
    }

    /// The number of keys this set can hold.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Number of members.
    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when there are no members.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when `key` is a member.
    #[inline]
    pub fn contains(&self, key: u32) -> bool {
        key < self.capacity && self.words[(key >> 6) as usize] & (1 << (key & 63)) != 0
    }

    /// Adds `key` (must be below the capacity). Returns false if it was present.
    #[inline]
    pub fn insert(&mut self, key: u32) -> bool {
        debug_assert!(key < self.capacity);
        let mut k = key as usize;
        let level0 = self.offs[1] as usize;
        let w = &mut self.words[..level0][k >> 6];
        let was = *w;
        if was & (1 << (k & 63)) != 0 {
            return false;
        }
        *w = was | (1 << (k & 63));
        self.len += 1;
        if was == 0 {
            // The word was empty: mark it in the levels above.
            for i in 1..self.levels as usize {
                k >>= 6;
                let w = &mut self.words[self.offs[i] as usize + (k >> 6)];
                let was = *w;
                *w = was | (1 << (k & 63));
                if was != 0 {
                    break;
                }
            }
        }
        true
    }

    /// Removes `key`. Returns false if it was absent.
    #[inline]
    pub fn remove(&mut self, key: u32) -> bool {
        if key >= self.capacity {
            return false;
        }
        let mut k = key as usize;
        let w = &mut self.words[k >> 6];
        if *w & (1 << (k & 63)) == 0 {
            return false;
        }
        *w &= !(1 << (k & 63));
        self.len -= 1;
        if *w == 0 {
            // The word became empty: unmark it in the levels above.
            for i in 1..self.levels as usize {
                k >>= 6;
                let w = &mut self.words[self.offs[i] as usize + (k >> 6)];
                *w &= !(1 << (k & 63));
                if *w != 0 {
                    break;
                }
            }
        }
        true
    }

    /// The smallest member.
    #[inline]
    pub fn first(&self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.next_from(0)
    }

    /// The smallest member `>= key`.
    #[inline]
    pub fn next_from(&self, key: u32) -> Option<u32> {
        if key >= self.capacity || self.len == 0 {
            return None;
        }
        // Climb while the rest of the current word is empty.
        let mut k = key as usize;
        let mut depth = 0;
        loop {
            let level = self.level(depth);
            let w = level[k >> 6] & (!0u64 << (k & 63));
            if w != 0 {
                k = (k & !63) | w.trailing_zeros() as usize;
                break;
            }
            depth += 1;
            if depth == self.levels as usize {
                return None;
            }
            k = (k >> 6) + 1;
            if (k >> 6) >= self.level(depth).len() {
                return None;
            }
        }
        // Descend to the first set bit under the found word.
        while depth > 0 {
            depth -= 1;
            let w = self.level(depth)[k];
            k = (k << 6) | w.trailing_zeros() as usize;
        }
        Some(k as u32)
    }

    /// The smallest member `> key`.
    #[inline]
    pub fn next_after(&self, key: u32) -> Option<u32> {
        key.checked_add(1).and_then(|k| self.next_from(k))
    }

    /// The smallest member `> key` if it is among the 63 keys that share
    /// `key`'s word of bits, else `None` even if there is one: a few
    /// instructions, for hints that may miss.
    #[inline]
    pub(crate) fn next_after_near(&self, key: u32) -> Option<u32> {
        let k = key as usize;
        let level0 = &self.words[..self.offs[1] as usize];
        let w = *level0.get(k >> 6)? & (!1u64 << (k & 63));
        (w != 0).then(|| ((k & !63) | w.trailing_zeros() as usize) as u32)
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
        self.len = 0;
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let mut next = self.first();
        core::iter::from_fn(move || {
            let cur = next?;
            next = self.next_after(cur);
            Some(cur)
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn empty_and_single() {
        let mut s = IdSet::with_capacity(1);
        assert_eq!(s.first(), None);
        assert!(s.insert(0));
        assert!(!s.insert(0));
        assert_eq!(s.first(), Some(0));
        assert_eq!(s.next_after(0), None);
        assert!(s.remove(0));
        assert!(!s.remove(0));
        assert!(s.is_empty());
    }

    #[test]
    fn matches_btreeset_at_full_width() {
        let mut s = IdSet::with_capacity(65536);
        let mut model = BTreeSet::new();
        let mut x: u32 = 12345;
        for i in 0..20000 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let key = (x >> 8) % 65536;
            if i % 3 == 0 {
                assert_eq!(s.remove(key), model.remove(&key));
            } else {
                assert_eq!(s.insert(key), model.insert(key));
            }
            let probe = (x >> 3) % 65536;
            assert_eq!(s.next_from(probe), model.range(probe..).next().copied());
        }
        assert_eq!(s.len() as usize, model.len());
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            model.iter().copied().collect::<Vec<_>>()
        );
    }

    #[test]
    fn next_after_near_sees_only_its_own_word() {
        let mut s = IdSet::with_capacity(1000);
        let mut model = BTreeSet::new();
        let mut x: u32 = 777;
        for i in 0..20000 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let key = (x >> 8) % 1000;
            if i % 3 == 0 {
                s.remove(key);
                model.remove(&key);
            } else {
                s.insert(key);
                model.insert(key);
            }
            let probe = (x >> 3) % 1100;
            let near = model
                .range(probe.saturating_add(1)..)
                .next()
                .copied()
                .filter(|&k| k >> 6 == probe >> 6);
            assert_eq!(s.next_after_near(probe), near, "after {probe}");
        }
        // The last key of a word looks no further.
        let mut s = IdSet::with_capacity(200);
        s.insert(64);
        assert_eq!(s.next_after_near(63), None);
        assert_eq!(s.next_after_near(10), None);
        s.insert(20);
        assert_eq!(s.next_after_near(10), Some(20));
        assert_eq!(s.next_after_near(199), None);
    }

    #[test]
    fn grow_keeps_members() {
        let mut s = IdSet::with_capacity(10);
        s.insert(3);
        s.insert(9);
        s.grow(5000);
        s.insert(4999);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![3, 9, 4999]);
        assert_eq!(s.next_from(10), Some(4999));
        assert_eq!(s.next_from(5000), None);
    }
}
