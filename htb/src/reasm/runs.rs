//! The Linux fragment store: runs of in-order fragments (`inet_frag_queue_insert`).
//!
//! A *run* is a set of fragments that arrived in order and abut exactly; the
//! kernel keeps the run heads in an rbtree keyed by offset, and remembers the
//! fragment with the highest end (`fragments_tail`) and the run it belongs to
//! (`last_run_head`). We keep the same shape with bounds only (the bytes live
//! in the queue's buffer): the tail run apart, so appending in order touches
//! no tree, and every other run head in a `BTreeMap` (O(log k)).
//!
//! Which run a fragment joins depends on arrival order, not only on byte
//! ranges: only the "end beyond the tail" fast path appends to a run; a
//! fragment placed through the tree search is always a run of its own. That
//! is what decides whether a later fragment is a duplicate (inside one run)
//! or an overlap (anything else that touches held data).

use std::collections::BTreeMap;

/// What inserting `[offset, end)` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Stored (new run or appended to the last run).
    Stored,
    /// Lies entirely inside one run: ignored.
    Dup,
    /// Touches held data otherwise: the kernel kills the queue.
    Overlap,
}

/// Run bounds of one queue. (`repr(C)`: the tail first, so that it can sit
/// in a hot cache line of the queue and the map in a cold one.)
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub(crate) struct Runs {
    /// The last run `[start, end)`; its end is the highest end held.
    tail: Option<(u32, u32)>,
    /// Every other run head: start → end (all before the tail run).
    heads: BTreeMap<u32, u32>,
}

impl Runs {
    /// True when no fragment is held (`fragments_tail == NULL`).
    pub(crate) fn is_empty(&self) -> bool {
        self.tail.is_none()
    }

    /// Number of runs.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heads.len() + usize::from(self.tail.is_some())
    }

    /// Forgets every run.
    pub(crate) fn clear(&mut self) {
        self.tail = None;
        // (Clearing an empty map still costs a call: the usual queue never
        // had a second run.)
        if !self.heads.is_empty() {
            self.heads.clear();
        }
    }

    /// The kernel's insert rules, in its order (spec §1.2).
    #[inline]
    pub(crate) fn insert(&mut self, offset: u32, end: u32) -> Insert {
        // The in-order case first, inlined: the fragment starts exactly at
        // the tail run's end (what rule 2 does with it).
        if let Some((ts, te)) = self.tail {
            if offset == te && end > te {
                self.tail = Some((ts, end));
                return Insert::Stored;
            }
        }
        self.insert_rules(offset, end)
    }

    #[inline(never)]
    fn insert_rules(&mut self, offset: u32, end: u32) -> Insert {
        let Some((ts, te)) = self.tail else {
            // 1. Empty queue: a new run.
            self.tail = Some((offset, end));
            return Insert::Stored;
        };
        if end > te {
            // 2. The common case, past the tail's end.
            if offset < te {
                return Insert::Overlap;
            }
            if offset == te {
                self.tail = Some((ts, end));
            } else {
                self.heads.insert(ts, te);
                self.tail = Some((offset, end));
            }
            return Insert::Stored;
        }
        // 3. Search the run heads. The tail run is the highest one, so test
        // it first, then the nearest head starting before `end`: if that one
        // does not reach `offset`, no run does (runs are disjoint). This
        // finds the same run the kernel's tree descent stops at whenever the
        // fragment touches exactly one run, and Overlap whenever it touches
        // several (it cannot lie inside one then).
        let hit = if end > ts {
            Some((ts, te))
        } else {
            self.heads
                .range(..end)
                .next_back()
                .map(|(&s, &e)| (s, e))
                .filter(|&(_, e)| e > offset)
        };
        match hit {
            Some((s, e)) if offset >= s && end <= e => Insert::Dup,
            Some(_) => Insert::Overlap,
            None => {
                self.heads.insert(offset, end);
                Insert::Stored
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn in_order_is_one_run() {
        let mut r = Runs::default();
        for i in 0..100 {
            assert_eq!(r.insert(i * 8, i * 8 + 8), Insert::Stored);
        }
        assert_eq!(r.len(), 1);
        assert_eq!(r.insert(0, 800), Insert::Dup);
        assert_eq!(r.insert(792, 808), Insert::Overlap);
    }

    #[test]
    fn tree_inserted_fragments_are_runs_of_their_own() {
        // A, D (last, leaves a hole), B tree-inserted: A and B are separate
        // runs, so X spanning both is an overlap.
        let mut r = Runs::default();
        assert_eq!(r.insert(0, 8), Insert::Stored);
        assert_eq!(r.insert(16, 24), Insert::Stored);
        assert_eq!(r.insert(8, 16), Insert::Stored);
        assert_eq!(r.len(), 3);
        assert_eq!(r.insert(0, 16), Insert::Overlap);
        assert_eq!(r.insert(8, 16), Insert::Dup);
        assert_eq!(r.insert(4, 8), Insert::Dup);
        // In order, the same bytes are one run: X is a duplicate.
        let mut r = Runs::default();
        r.insert(0, 8);
        r.insert(8, 16);
        assert_eq!(r.insert(0, 16), Insert::Dup);
    }

    #[test]
    fn hole_then_fill_and_overlaps() {
        let mut r = Runs::default();
        r.insert(100, 200);
        assert_eq!(r.insert(0, 50), Insert::Stored);
        assert_eq!(r.insert(60, 100), Insert::Stored);
        assert_eq!(r.insert(50, 60), Insert::Stored);
        assert_eq!(r.insert(40, 70), Insert::Overlap);
        assert_eq!(r.insert(90, 110), Insert::Overlap);
        assert_eq!(r.insert(150, 250), Insert::Overlap);
        assert_eq!(r.insert(200, 250), Insert::Stored);
        assert_eq!(r.insert(120, 250), Insert::Dup);
    }
}
