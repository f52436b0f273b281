//! One reassembly queue: the kernel's `struct ipq` / `struct frag_queue`
//! state, with the datagram's bytes in a single buffer.
//!
//! The buffer holds `headroom` bytes for the IP header, then the data at its
//! offset: each kept fragment is copied once, straight to its place, and an
//! in-order fragment is a plain append. On completion the header is
//! rewritten in front and the buffer itself is handed out: no second copy.

use super::overlay::Overlay;
use super::runs::Runs;
use super::{FRAGMENT_OVERHEAD, FragKey, QUEUE_OVERHEAD};

#[derive(Debug)]
pub(crate) struct Queue {
    pub key: FragKey,
    /// The key's hash in the table (found again without rehashing).
    pub hash: u64,
    pub v6: bool,
    /// Lifetime end (ns), armed once at creation (and by max_dist reinit).
    pub deadline: u64,
    /// Timer list links (slot indices, `u32::MAX` = none).
    pub prev: u32,
    pub next: u32,
    /// `headroom` header bytes, then data bytes at their offsets.
    pub buf: Vec<u8>,
    /// Header room: the offset-0 fragment's header length once it arrived
    /// (IPv4 header with options; IPv6 unfragmentable part, fragment header
    /// excluded), before that the creating fragment's.
    pub headroom: usize,
    /// `q.len`: the datagram's data length as far as known (highest end).
    pub len: u32,
    /// `q.meat`: data bytes held.
    pub meat: u32,
    /// `INET_FRAG_FIRST_IN` / `INET_FRAG_LAST_IN`.
    pub first_in: bool,
    pub last_in: bool,
    /// Linux policy: run bounds.
    pub runs: Runs,
    /// IDS policies: byte ownership.
    pub overlay: Option<Box<Overlay>>,
    /// OR of `1 << ecn` over kept fragments.
    pub ecn: u8,
    /// Largest kept fragment (IPv4 header + data), and largest with DF.
    pub max_size: u32,
    pub max_df_size: u32,
    /// `qp->rid`: the source's fragment counter at this queue's last one.
    pub rid: u32,
    /// Slot of the source's counter (`u32::MAX`: none, IPv6 or max_dist 0).
    pub peer: u32,
    /// IPv6: offset of the next-header byte naming the fragment header, and
    /// the offset-0 fragment's fragment header.
    pub nhoff: usize,
    pub frag_hdr: [u8; 8],
    /// Data bytes of the offset-0 fragment (for the ICMP quote).
    pub first_len: u32,
    /// Fragments kept.
    pub fragments: u32,
    /// What this queue adds to the table's memory now.
    pub charged: usize,
}

impl Queue {
    pub(crate) fn new(
        key: FragKey,
        v6: bool,
        deadline: u64,
        buf: Vec<u8>,
        headroom: usize,
        overlay: Option<Box<Overlay>>,
    ) -> Self {
        Queue {
            key,
            hash: 0,
            v6,
            deadline,
            prev: u32::MAX,
            next: u32::MAX,
            buf,
            headroom,
            len: 0,
            meat: 0,
            first_in: false,
            last_in: false,
            runs: Runs::default(),
            overlay,
            ecn: 0,
            max_size: 0,
            max_df_size: 0,
            rid: 0,
            peer: u32::MAX,
            nhoff: 6,
            frag_hdr: [0; 8],
            first_len: 0,
            fragments: 0,
            charged: 0,
        }
    }

    /// Makes a freed slot a new queue in place (keeps the run tree's and
    /// overlay's allocations).
    pub(crate) fn reuse(
        &mut self,
        key: FragKey,
        v6: bool,
        deadline: u64,
        buf: Vec<u8>,
        headroom: usize,
        ids: bool,
    ) {
        self.key = key;
        self.v6 = v6;
        self.deadline = deadline;
        self.prev = u32::MAX;
        self.next = u32::MAX;
        self.buf = buf;
        self.headroom = headroom;
        self.len = 0;
        self.meat = 0;
        self.first_in = false;
        self.last_in = false;
        self.runs.clear();
        match (&mut self.overlay, ids) {
            (Some(o), true) => o.clear(),
            (o, true) => *o = Some(Box::default()),
            (o, false) => *o = None,
        }
        self.ecn = 0;
        self.max_size = 0;
        self.max_df_size = 0;
        self.rid = 0;
        self.peer = u32::MAX;
        self.nhoff = 6;
        self.first_len = 0;
        self.fragments = 0;
        self.charged = 0;
    }

    /// Bytes this queue holds, as the memory limit counts them.
    pub(crate) fn charge(&self) -> usize {
        QUEUE_OVERHEAD + self.buf.len() + self.fragments as usize * FRAGMENT_OVERHEAD
    }

    /// No fragment held (`fragments_tail == NULL`).
    pub(crate) fn is_empty(&self) -> bool {
        match &self.overlay {
            Some(o) => o.is_empty(),
            None => self.runs.is_empty(),
        }
    }

    /// Records the offset-0 fragment: its header goes into the header room
    /// (resized in the rare case its length differs from the guess).
    pub(crate) fn set_first(&mut self, header: &[u8], data: &[u8], v6: Option<(usize, [u8; 8])>) {
        let hl = header.len();
        if hl > self.headroom {
            let d = hl - self.headroom;
            self.buf.splice(0..0, std::iter::repeat_n(0u8, d));
        } else if hl < self.headroom {
            self.buf.drain(0..self.headroom - hl);
        }
        self.headroom = hl;
        self.buf[..hl].copy_from_slice(header);
        self.first_len = data.len() as u32;
        if let Some((nhoff, fh)) = v6 {
            self.nhoff = nhoff;
            self.frag_hdr = fh;
        }
        self.first_in = true;
    }

    /// Copies `data` to data offset `off`.
    pub(crate) fn write(&mut self, off: u32, data: &[u8]) {
        let at = self.headroom + off as usize;
        let end = at + data.len();
        if self.buf.len() == at {
            self.buf.extend_from_slice(data);
        } else {
            if self.buf.len() < end {
                self.buf.resize(end, 0);
            }
            self.buf[at..end].copy_from_slice(data);
        }
    }

    /// The ICMP time-exceeded quote, as the kernel builds it from the
    /// offset-0 fragment (`icmp_send` / `icmp6_send`): its header (IPv6:
    /// through the fragment header) and its data, cut so the ICMP error
    /// fits the minimum MTU: 548 bytes for IPv4 (576 − 20 − 8), 1232 for
    /// IPv6 (1280 − 40 − 8). With an IDS policy a later fragment may have
    /// overwritten some of that data; the quote shows the bytes held.
    pub(crate) fn quote(&self) -> Vec<u8> {
        let cap = if self.v6 { 1232 } else { 548 };
        let mut q = Vec::with_capacity(cap);
        q.extend_from_slice(&self.buf[..self.headroom]);
        if self.v6 {
            q.extend_from_slice(&self.frag_hdr);
        }
        let data = &self.buf[self.headroom..self.headroom + self.first_len as usize];
        q.extend_from_slice(data);
        q.truncate(cap);
        q
    }

    /// Forgets every fragment (max_dist reinit); keeps the allocation.
    pub(crate) fn reset_data(&mut self) {
        self.runs.clear();
        if let Some(o) = self.overlay.as_mut() {
            o.clear();
        }
        self.buf.truncate(self.headroom);
        self.first_in = false;
        self.last_in = false;
        self.len = 0;
        self.meat = 0;
        self.ecn = 0;
        self.fragments = 0;
    }
}
