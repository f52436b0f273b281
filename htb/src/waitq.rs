//! HTB's per-level wait queues: classes that are not CAN_SEND, keyed by the
//! time at which their mode should be looked at again (`pq_key`).
//!
//! The kernel uses an rbtree where equal keys go right, so classes with the
//! same wake time come out in insertion order. We use one indexed binary heap
//! per level keyed by `(wake time, insertion sequence)`, which gives the same
//! order (4-ary, moving a hole rather than swapping), and a shared position table so that a class can be taken out of the
//! middle in O(log n) when charging changes its mode.

const NONE: u32 = u32::MAX;
/// Children per heap node: a 4-ary heap is half as deep as a binary one.
const ARITY: usize = 4;

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    seq: u64,
    class: u32,
}

impl Entry {
    /// `(key, seq)` as one number: compares in two instructions, no branch.
    #[inline]
    fn rank(&self) -> u128 {
        ((self.key as u128) << 64) | self.seq as u128
    }
    #[inline]
    fn before(&self, other: &Entry) -> bool {
        self.rank() < other.rank()
    }
}

/// The wait queues of all levels.
#[derive(Debug)]
pub(crate) struct WaitQueues {
    heaps: [Vec<Entry>; crate::MAX_DEPTH],
    /// Heap position of each class (by class index), or `NONE`.
    pos: Vec<u32>,
    /// Level of the heap each class is in.
    level_of: Vec<u8>,
    seq: u64,
}

impl WaitQueues {
    pub(crate) fn new() -> Self {
        WaitQueues {
            heaps: Default::default(),
            pos: Vec::new(),
            level_of: Vec::new(),
            seq: 0,
        }
    }

    /// Makes room for class indices below `n` (configuration time only).
    pub(crate) fn reserve_classes(&mut self, n: usize) {
        if self.pos.len() < n {
            self.pos.resize(n, NONE);
            self.level_of.resize(n, 0);
        }
    }

    /// True when `class` is waiting on some level.
    pub(crate) fn contains(&self, class: u32) -> bool {
        self.pos.get(class as usize).is_some_and(|&p| p != NONE)
    }

    /// Adds `class` to `level` with wake time `key`.
    pub(crate) fn push(&mut self, level: usize, class: u32, key: u64) {
        debug_assert!(!self.contains(class));
        self.seq += 1;
        let e = Entry {
            key,
            seq: self.seq,
            class,
        };
        self.level_of[class as usize] = level as u8;
        self.heaps[level].push(e);
        let i = self.heaps[level].len() - 1;
        self.sift_up(level, i, e);
    }

    /// Moves `class` (waiting or not) to `level` with wake time `key`: the
    /// same as [`remove`](Self::remove) then [`push`](Self::push), in one
    /// sift when it already waits on that level.
    pub(crate) fn requeue(&mut self, level: usize, class: u32, key: u64) {
        let p = self.pos[class as usize];
        if p == NONE || self.level_of[class as usize] as usize != level {
            self.remove(class);
            self.push(level, class, key);
            return;
        }
        self.seq += 1;
        let e = Entry {
            key,
            seq: self.seq,
            class,
        };
        let i = p as usize;
        if i > 0 && e.before(&self.heaps[level][(i - 1) / ARITY]) {
            self.sift_up(level, i, e);
        } else {
            self.sift_down(level, i, e);
        }
    }

    /// The earliest entry of `level`: `(wake time, class)`.
    #[inline]
    pub(crate) fn peek(&self, level: usize) -> Option<(u64, u32)> {
        self.heaps[level].first().map(|e| (e.key, e.class))
    }

    /// Removes `class` from whatever level it waits on; no-op if absent.
    pub(crate) fn remove(&mut self, class: u32) {
        let Some(&p) = self.pos.get(class as usize) else {
            return;
        };
        if p == NONE {
            return;
        }
        let level = self.level_of[class as usize] as usize;
        let i = p as usize;
        self.pos[class as usize] = NONE;
        let last = self.heaps[level].pop().expect("class is in this heap");
        if i < self.heaps[level].len() {
            // Refill the hole with the former last entry, moving it whichever
            // way restores the order (at most one of the two moves).
            if i > 0 && last.before(&self.heaps[level][(i - 1) / ARITY]) {
                self.sift_up(level, i, last);
            } else {
                self.sift_down(level, i, last);
            }
        }
    }

    /// Empties every level.
    pub(crate) fn clear(&mut self) {
        for h in &mut self.heaps {
            for e in h.drain(..) {
                self.pos[e.class as usize] = NONE;
            }
        }
    }

    /// Places `e` at hole `i`, moving the hole towards the root while `e`
    /// comes first.
    fn sift_up(&mut self, level: usize, mut i: usize, e: Entry) {
        let heap = &mut self.heaps[level][..];
        let pos = &mut self.pos[..];
        let r = e.rank();
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let up = heap[parent];
            if r >= up.rank() {
                break;
            }
            heap[i] = up;
            pos[up.class as usize] = i as u32;
            i = parent;
        }
        heap[i] = e;
        pos[e.class as usize] = i as u32;
    }

    /// Places `e` at hole `i`, moving the hole towards the leaves while a
    /// child comes first.
    fn sift_down(&mut self, level: usize, mut i: usize, e: Entry) {
        let heap = &mut self.heaps[level][..];
        let pos = &mut self.pos[..];
        let n = heap.len();
        let r = e.rank();
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            // The smallest child (ranks are unique, so there is one).
            let (c, cr) = if let Some(kids) = heap.get(first..first + ARITY) {
                // All four children: a branch-free tournament.
                let (r0, r1, r2, r3) = (
                    kids[0].rank(),
                    kids[1].rank(),
                    kids[2].rank(),
                    kids[3].rank(),
                );
                let (a, ar) = if r1 < r0 { (1, r1) } else { (0, r0) };
                let (b, br) = if r3 < r2 { (3, r3) } else { (2, r2) };
                if br < ar { (b, br) } else { (a, ar) }
            } else {
                let mut c = 0;
                let mut cr = heap[first].rank();
                for (k, kid) in heap[first + 1..].iter().enumerate() {
                    let kr = kid.rank();
                    if kr < cr {
                        c = k + 1;
                        cr = kr;
                    }
                }
                (c, cr)
            };
            if cr >= r {
                break;
            }
            let c = first + c;
            let down = heap[c];
            heap[i] = down;
            pos[down.class as usize] = i as u32;
            i = c;
        }
        heap[i] = e;
        pos[e.class as usize] = i as u32;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn pops_in_key_then_insertion_order() {
        let mut w = WaitQueues::new();
        w.reserve_classes(10);
        w.push(0, 1, 50);
        w.push(0, 2, 10);
        w.push(0, 3, 50);
        w.push(0, 4, 10);
        w.push(1, 5, 1);
        let mut out = vec![];
        while let Some((k, c)) = w.peek(0) {
            out.push((k, c));
            w.remove(c);
        }
        assert_eq!(out, vec![(10, 2), (10, 4), (50, 1), (50, 3)]);
        assert_eq!(w.peek(1), Some((1, 5)));
    }

    #[test]
    fn remove_from_middle_keeps_heap_order() {
        let mut w = WaitQueues::new();
        w.reserve_classes(100);
        for c in 0..100u32 {
            w.push(2, c, ((c * 37) % 101) as u64);
        }
        for c in (0..100u32).step_by(3) {
            w.remove(c);
            assert!(!w.contains(c));
        }
        let mut last = 0;
        let mut n = 0;
        while let Some((k, c)) = w.peek(2) {
            assert!(k >= last);
            assert!(c % 3 != 0);
            last = k;
            w.remove(c);
            n += 1;
        }
        assert_eq!(n, 66);
    }
}
