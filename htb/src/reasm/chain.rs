//! A reassembled datagram that may still live in the buffers that carried
//! its fragments: what [`Reassembler::push_owned`](super::Reassembler::push_owned)
//! hands out, as the kernel hands out an skb with a `frag_list` and DPDK a
//! chain of mbufs, instead of copying every byte into one buffer.

/// One piece of a [`Chain`]: `buf[start..end]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub buf: Vec<u8>,
    pub start: u32,
    pub end: u32,
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        self.buf
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// A complete datagram, header rewritten as the kernel delivers it, as a
/// sequence of byte slices ([`Chain::segments`]) whose concatenation is the
/// datagram.
///
/// The first segment is the IP header (IPv6: the unfragmentable part,
/// fragment header removed), the others the kept fragments' data, in
/// order. A datagram whose bytes were copied as they came (an IDS policy,
/// which decides byte by byte) is one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    repr: Repr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Repr {
    /// One buffer, the whole datagram.
    Contiguous(Vec<u8>),
    /// The header's buffer, then the fragments as they were pushed.
    Pieces(Vec<Piece>),
}

impl Chain {
    pub(crate) fn contiguous(buf: Vec<u8>) -> Self {
        Chain {
            repr: Repr::Contiguous(buf),
        }
    }

    pub(crate) fn pieces(pieces: Vec<Piece>) -> Self {
        Chain {
            repr: Repr::Pieces(pieces),
        }
    }

    /// Puts `buf` in piece `i` (a fragment still being pushed when the
    /// chain was built).
    pub(crate) fn fill(&mut self, i: usize, buf: Vec<u8>) {
        if let Repr::Pieces(p) = &mut self.repr {
            if let Some(p) = p.get_mut(i) {
                p.buf = buf;
            }
        }
    }

    /// Length of the datagram in bytes.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Contiguous(b) => b.len(),
            Repr::Pieces(p) => p.iter().map(|p| (p.end - p.start) as usize).sum(),
        }
    }

    /// Never true for a datagram handed out (it has at least a header).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The datagram's bytes, in order.
    pub fn segments(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let (one, many) = match &self.repr {
            Repr::Contiguous(b) => (Some(&b[..]), None),
            Repr::Pieces(p) => (None, Some(p)),
        };
        one.into_iter()
            .chain(many.into_iter().flat_map(|p| p.iter().map(Piece::bytes)))
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        match &self.repr {
            Repr::Contiguous(_) => 1,
            Repr::Pieces(p) => p.len(),
        }
    }

    /// Byte `i` of the datagram, if it is that long.
    pub fn byte(&self, mut i: usize) -> Option<u8> {
        for s in self.segments() {
            if i < s.len() {
                return Some(s[i]);
            }
            i -= s.len();
        }
        None
    }

    /// [`byte`](Self::byte), reading piece `pending` (not filled in yet)
    /// from `pkt`.
    pub(crate) fn byte_with(&self, mut i: usize, pending: Option<usize>, pkt: &[u8]) -> Option<u8> {
        let Repr::Pieces(pieces) = &self.repr else {
            return self.byte(i);
        };
        for (k, p) in pieces.iter().enumerate() {
            let n = (p.end - p.start) as usize;
            if i < n {
                let b = if Some(k) == pending { pkt } else { &p.buf[..] };
                return b.get(p.start as usize + i).copied();
            }
            i -= n;
        }
        None
    }

    /// The datagram in one buffer: the buffer itself when it already is one
    /// (no copy), else the segments copied one after the other.
    pub fn into_vec(self) -> Vec<u8> {
        match self.repr {
            Repr::Contiguous(b) => b,
            Repr::Pieces(_) => self.to_vec(),
        }
    }

    /// The datagram copied into a new buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for s in self.segments() {
            out.extend_from_slice(s);
        }
        out
    }

    /// The buffers the chain holds (the header's, then the pushed
    /// fragments' in offset order), for reuse: e.g. to receive the next
    /// packets into.
    pub fn into_buffers(self) -> Vec<Vec<u8>> {
        let mut v = Vec::with_capacity(self.segment_count());
        self.for_each_buffer(|b| v.push(b));
        v
    }

    /// Like [`into_buffers`](Self::into_buffers), without allocating: each
    /// buffer goes to `f`, in the same order.
    pub fn for_each_buffer(self, mut f: impl FnMut(Vec<u8>)) {
        match self.repr {
            Repr::Contiguous(b) => f(b),
            Repr::Pieces(p) => p.into_iter().for_each(|p| f(p.buf)),
        }
    }
}
