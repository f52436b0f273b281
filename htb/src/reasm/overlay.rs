//! The target-based (IDS) overlap policies: who owns each byte.
//!
//! Fragments are applied in arrival order. A byte nobody holds yet goes to
//! the new fragment N. A byte held by an earlier fragment E goes to N iff the
//! policy's pairwise rule holds, evaluated on the *original* extents of N and
//! E (as they arrived, before any trimming) — the model of
//! `novak-vectors.json`, which reproduces every upstream expectation.
//!
//! The store is a map of owned segments `start → (end, fragment)`; a new
//! fragment visits only the segments it touches, so the cost per fragment
//! is O((m + 1) log k) for m segments touched.

use std::collections::BTreeMap;

use super::Policy;

/// Does new fragment `n` win the bytes it shares with existing `e`?
/// (Extents are `[offset, end)`.)
pub(crate) fn new_wins(policy: Policy, n: (u32, u32), e: (u32, u32)) -> bool {
    let ((no, ne), (eo, ee)) = (n, e);
    match policy {
        Policy::First => false,
        Policy::Last => true,
        Policy::Bsd => no < eo,
        Policy::BsdRight => ne > ee || (ne == ee && no <= eo),
        Policy::LinuxLegacy => no <= eo,
        Policy::Windows => no < eo && ne > ee,
        Policy::Solaris => no < eo && ne >= ee,
        // The Linux policy never gets here (it uses the run store).
        Policy::Linux => false,
    }
}

/// Byte ownership of one queue under an IDS policy.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overlay {
    /// Owned segments: start → (end, index into `frags`).
    segs: BTreeMap<u32, (u32, u32)>,
    /// Original extents of every fragment kept, in arrival order.
    frags: Vec<(u32, u32)>,
    /// Scratch: the rebuilt segments of the last insert.
    out: Vec<(u32, u32, u32)>,
    /// Scratch (kept to save allocations): segments an insert touched, and
    /// the merged result.
    hits: Vec<(u32, u32, u32)>,
    merged: Vec<(u32, u32, u32)>,
}

/// What an insert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Bytes nobody held before (added to the queue's `meat`).
    pub gained: u32,
    /// Whether the fragment touched held data.
    pub overlapped: bool,
    /// Whether the fragment now owns any byte.
    pub owns_any: bool,
}

impl Overlay {
    pub(crate) fn is_empty(&self) -> bool {
        self.frags.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.segs.clear();
        self.frags.clear();
        self.out.clear();
        self.hits.clear();
        self.merged.clear();
    }

    /// Fragments kept so far.
    #[cfg(test)]
    pub(crate) fn fragments(&self) -> usize {
        self.frags.len()
    }

    /// Places `[off, end)` under `policy`; then `won()` lists the byte
    /// ranges the new fragment owns (to copy its data there).
    pub(crate) fn insert(&mut self, policy: Policy, off: u32, end: u32) -> Placed {
        let id = self.frags.len() as u32;
        self.frags.push((off, end));
        self.out.clear();
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        if let Some((&s, &(e, f))) = self.segs.range(..off).next_back() {
            if e > off {
                hits.push((s, e, f));
            }
        }
        hits.extend(self.segs.range(off..end).map(|(&s, &(e, f))| (s, e, f)));
        let mut cursor = off;
        let mut gained = 0;
        for &(s, e, f) in &hits {
            self.segs.remove(&s);
            if s < off {
                self.out.push((s, off, f));
            }
            let (os, oe) = (s.max(off), e.min(end));
            if cursor < os {
                self.out.push((cursor, os, id));
                gained += os - cursor;
            }
            let owner = if new_wins(policy, (off, end), self.frags[f as usize]) {
                id
            } else {
                f
            };
            self.out.push((os, oe, owner));
            if e > end {
                self.out.push((end, e, f));
            }
            cursor = oe;
        }
        if cursor < end {
            self.out.push((cursor, end, id));
            gained += end - cursor;
        }
        // Merge neighbours with the same owner, then store.
        let mut merged = std::mem::take(&mut self.merged);
        merged.clear();
        for &(s, e, f) in &self.out {
            match merged.last_mut() {
                Some(last) if last.1 == s && last.2 == f => last.1 = e,
                _ => merged.push((s, e, f)),
            }
        }
        let mut owns_any = false;
        for &(s, e, f) in &merged {
            owns_any |= f == id;
            self.segs.insert(s, (e, f));
        }
        self.merged = std::mem::replace(&mut self.out, merged);
        let overlapped = !hits.is_empty();
        self.hits = hits;
        Placed {
            gained,
            overlapped,
            owns_any,
        }
    }

    /// The ranges the last inserted fragment owns.
    pub(crate) fn won(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let id = self.frags.len() as u32 - 1;
        self.out
            .iter()
            .filter(move |&&(_, _, f)| f == id)
            .map(|&(s, e, _)| (s, e))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn pairwise_rules() {
        let n = (8, 40);
        let e = (0, 24);
        assert!(!new_wins(Policy::First, n, e));
        assert!(new_wins(Policy::Last, n, e));
        assert!(!new_wins(Policy::Bsd, n, e));
        assert!(new_wins(Policy::BsdRight, n, e));
        assert!(!new_wins(Policy::LinuxLegacy, n, e));
        assert!(new_wins(Policy::LinuxLegacy, (0, 8), e));
        assert!(!new_wins(Policy::Bsd, (0, 8), e));
        assert!(new_wins(Policy::Windows, (0, 32), (8, 24)));
        assert!(!new_wins(Policy::Windows, (0, 24), (8, 24)));
        assert!(new_wins(Policy::Solaris, (0, 24), (8, 24)));
    }

    #[test]
    fn segments_split_and_gain() {
        let mut o = Overlay::default();
        let p = o.insert(Policy::First, 0, 24);
        assert_eq!((p.gained, p.overlapped, p.owns_any), (24, false, true));
        let p = o.insert(Policy::First, 8, 40);
        assert_eq!((p.gained, p.overlapped, p.owns_any), (16, true, true));
        assert_eq!(o.won().collect::<Vec<_>>(), vec![(24, 40)]);
        let p = o.insert(Policy::First, 0, 40);
        assert_eq!((p.gained, p.owns_any), (0, false));
        let p = o.insert(Policy::Last, 4, 12);
        assert_eq!((p.gained, p.owns_any), (0, true));
        assert_eq!(o.won().collect::<Vec<_>>(), vec![(4, 12)]);
        assert_eq!(o.fragments(), 4);
    }
}
