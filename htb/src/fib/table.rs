/*! The compiled IPv4 lookup table: DIR-24-8, kept in sync with the trie.

* `tbl24`: one entry per /24 (2^24 × 4 bytes, allocated when the first
  prefix of length 9 or more arrives). An entry is 0 (no prefix of length ≥ 9
  covers the /24), `tag` (the longest such prefix covers the whole /24), or
  `GROUP | g`: the /24 holds a prefix longer than /24, and group `g` of
  `tbl8` has one entry per address of the /24.
* `top`: 256 entries, one per /8, for the prefixes of length 0 to 8. Keeping
  short prefixes out of `tbl24` makes inserting `/0` or `/8` cost 256
  writes instead of 16 M; a lookup consults `top` only when `tbl24` has
  nothing (in a full table, rarely).

A tag is the caller's prefix id + 1. Updates are incremental: adding a prefix
of length `L` writes its tag over the entries of its range held by shorter
prefixes (or empty); removing it writes back the longest shorter covering
prefix (found by the caller in the trie) over the entries it held.
*/

/// Marks a `tbl24` entry that points to a `tbl8` group.
const GROUP: u32 = 1 << 31;
/// Largest tag (prefix id + 1) the table can hold.
pub(crate) const MAX_TAG: u32 = GROUP - 1;

#[derive(Clone, Debug)]
pub(crate) struct Dir248 {
    top: [u32; 256],
    tbl24: Vec<u32>,
    tbl8: Vec<u32>,
    free_groups: Vec<u32>,
}

impl Default for Dir248 {
    fn default() -> Self {
        Dir248 {
            top: [0; 256],
            tbl24: Vec::new(),
            tbl8: Vec::new(),
            free_groups: Vec::new(),
        }
    }
}

/// Remembers the last `len_of` answer: runs of equal entries are the norm.
struct LenCache<'a> {
    f: &'a dyn Fn(u32) -> u8,
    tag: u32,
    len: u8,
}

impl LenCache<'_> {
    /// Whether entry `e` may be overwritten by a prefix of length `len`.
    #[inline]
    fn yields(&mut self, e: u32, len: u8) -> bool {
        if e == 0 {
            return true;
        }
        if e != self.tag {
            self.tag = e;
            self.len = (self.f)(e);
        }
        self.len < len
    }
}

impl Dir248 {
    /// The tag of the longest prefix covering `a`, 0 if none.
    #[inline(always)]
    pub fn get(&self, a: u32) -> u32 {
        let mut e = 0;
        if let Some(&t) = self.tbl24.get((a >> 8) as usize) {
            e = t;
            if e & GROUP != 0 {
                e = self.tbl8[(((e & !GROUP) as usize) << 8) | (a & 0xff) as usize];
            }
        }
        if e != 0 {
            e
        } else {
            self.top[(a >> 24) as usize]
        }
    }

    fn alloc_group(&mut self, fill: u32) -> u32 {
        if let Some(g) = self.free_groups.pop() {
            let s = (g as usize) << 8;
            self.tbl8[s..s + 256].fill(fill);
            g
        } else {
            let g = (self.tbl8.len() >> 8) as u32;
            self.tbl8.resize(self.tbl8.len() + 256, fill);
            g
        }
    }

    /// Adds prefix `key/len` with `tag`; `len_of(tag)` gives the length of
    /// the prefix behind any tag already in the table.
    pub fn add(&mut self, key: u32, len: u8, tag: u32, len_of: &dyn Fn(u32) -> u8) {
        let mut lc = LenCache {
            f: len_of,
            tag: 0,
            len: 0,
        };
        if len <= 8 {
            let start = (key >> 24) as usize;
            for e in &mut self.top[start..start + (1usize << (8 - len))] {
                if lc.yields(*e, len) {
                    *e = tag;
                }
            }
            return;
        }
        if self.tbl24.is_empty() {
            self.tbl24 = vec![0; 1 << 24];
        }
        if len <= 24 {
            let start = (key >> 8) as usize;
            for i in start..start + (1usize << (24 - len)) {
                let e = self.tbl24[i];
                if e & GROUP != 0 {
                    let s = ((e & !GROUP) as usize) << 8;
                    for x in &mut self.tbl8[s..s + 256] {
                        if lc.yields(*x, len) {
                            *x = tag;
                        }
                    }
                } else if lc.yields(e, len) {
                    self.tbl24[i] = tag;
                }
            }
        } else {
            let i = (key >> 8) as usize;
            let e = self.tbl24[i];
            let g = if e & GROUP != 0 {
                e & !GROUP
            } else {
                let g = self.alloc_group(e);
                self.tbl24[i] = GROUP | g;
                g
            };
            let s = ((g as usize) << 8) | (key & 0xff) as usize;
            for x in &mut self.tbl8[s..s + (1usize << (32 - len))] {
                if lc.yields(*x, len) {
                    *x = tag;
                }
            }
        }
    }

    /// Removes prefix `key/len` (tag `tag`); `parent` is the longest shorter
    /// prefix covering it, as `(tag, len)`.
    pub fn del(&mut self, key: u32, len: u8, tag: u32, parent: Option<(u32, u8)>) {
        if len <= 8 {
            let rep = parent.map_or(0, |p| p.0);
            let start = (key >> 24) as usize;
            for e in &mut self.top[start..start + (1usize << (8 - len))] {
                if *e == tag {
                    *e = rep;
                }
            }
            return;
        }
        if self.tbl24.is_empty() {
            return;
        }
        let rep = match parent {
            Some((t, l)) if l > 8 => t,
            _ => 0,
        };
        if len <= 24 {
            let start = (key >> 8) as usize;
            for i in start..start + (1usize << (24 - len)) {
                let e = self.tbl24[i];
                if e & GROUP != 0 {
                    let s = ((e & !GROUP) as usize) << 8;
                    for x in &mut self.tbl8[s..s + 256] {
                        if *x == tag {
                            *x = rep;
                        }
                    }
                } else if e == tag {
                    self.tbl24[i] = rep;
                }
            }
        } else {
            let i = (key >> 8) as usize;
            let e = self.tbl24[i];
            if e & GROUP == 0 {
                return;
            }
            let g = e & !GROUP;
            let s = (g as usize) << 8;
            let r = s | (key & 0xff) as usize;
            for x in &mut self.tbl8[r..r + (1usize << (32 - len))] {
                if *x == tag {
                    *x = rep;
                }
            }
            let grp = &self.tbl8[s..s + 256];
            if grp.iter().all(|&x| x == grp[0]) {
                self.tbl24[i] = grp[0];
                self.free_groups.push(g);
            }
        }
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + (self.tbl24.capacity() + self.tbl8.capacity() + self.free_groups.capacity()) * 4
    }

    /// `tbl8` groups in use.
    pub fn groups(&self) -> usize {
        (self.tbl8.len() >> 8) - self.free_groups.len()
    }
}
