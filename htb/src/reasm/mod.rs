//! IP reassembly, Linux-exact (and the IDS target-based policies).
//!
//! A [`Reassembler`] is the kernel's fragment table (`fqdir`) as a library:
//! [`Reassembler::push`] takes raw IPv4/IPv6 packets, time is an input, and
//! what the kernel would do on its own (timers) comes back from
//! [`Reassembler::expire`] as [`Event`]s.
//!
//! ```
//! use htb::reasm::{Pushed, ReasmConfig, Reassembler};
//! use htb::wire::Ipv4Packet;
//!
//! // Two fragments of a 24-byte UDP datagram, id 7, 10.0.0.1 -> 10.0.0.2.
//! fn frag(offset: u16, data: &[u8], more: bool) -> Vec<u8> {
//!     let mut b = vec![0u8; 20 + data.len()];
//!     let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
//!     p.set_version_ihl(4, 5);
//!     p.set_total_len((20 + data.len()) as u16);
//!     p.set_ident(7);
//!     p.set_more_frags(more);
//!     p.set_frag_offset(offset);
//!     p.set_ttl(64);
//!     p.set_protocol(17);
//!     p.set_src_addr([10, 0, 0, 1]);
//!     p.set_dst_addr([10, 0, 0, 2]);
//!     p.fill_checksum();
//!     b[20..].copy_from_slice(data);
//!     b
//! }
//! let mut r = Reassembler::new(ReasmConfig::default());
//! // The last fragment first, then the first: order does not matter.
//! assert_eq!(r.push(&frag(16, &[2; 8], false), 0, 0).unwrap(), Pushed::Queued);
//! let Pushed::Complete(dgram) = r.push(&frag(0, &[1; 16], true), 0, 1_000).unwrap() else {
//!     panic!("not reassembled");
//! };
//! let p = Ipv4Packet::new_checked(&dgram[..]).unwrap();
//! assert_eq!((p.total_len(), p.more_frags(), p.frag_offset()), (44, false, 0));
//! assert!(p.verify_checksum());
//! assert_eq!(&dgram[20..], &[[1u8; 16].as_slice(), &[2; 8]].concat()[..]);
//! assert_eq!(r.stats().reasm_oks, 1);
//! r.recycle(dgram); // the next datagram reuses the allocation
//! ```
//!
//! ## The Linux policy: runs
//!
//! Since 4.19 (FragmentSmack) the kernel keeps a queue's fragments in an
//! rbtree of *runs*: fragments that arrived in order and abut exactly form
//! one run; the last run is extended in O(1) when the next fragment starts
//! exactly at its end. A fragment that ends beyond the highest end held but
//! starts before it overlaps; one that ends no later is looked up among the
//! run heads: if it lies entirely inside *one* run it is a duplicate and
//! ignored (whatever its bytes); if it touches held data in any other way
//! it overlaps. An overlap discards the whole datagram (`ReasmOverlaps`,
//! `ReasmFails`) and unhashes the queue, so a clean retransmission starts a
//! new one. Because runs depend on arrival order, the same bytes can be a
//! duplicate or an overlap: A(0..8), B(8..16) in order are one run and
//! X(0..16) is ignored; A, the last fragment, then B make B a run of its own
//! and X kills the datagram. See `runs.rs`.
//!
//! Then, in the kernel's order: a last fragment ending before the known end
//! or at another end than an earlier last fragment kills the queue; a
//! non-last fragment is cut to a multiple of 8 (IPv4) or refused with an
//! ICMPv6 parameter problem (IPv6), and kills the queue if it ends past a
//! known last end; an empty fragment kills the queue. The datagram completes
//! when the first and last fragments are in and every byte is held; then
//! the ECN combination (RFC 3168) and the size limit are checked.
//!
//! Completed datagrams are built as the kernel delivers them. The header is
//! the one of the **offset-0 fragment** that was kept (the first to arrive:
//! later offset-0 copies are duplicates or overlaps), even when another
//! fragment completed the datagram: the kernel makes the completing skb the
//! head but morphs it into the offset-0 fragment (`skb_morph` in
//! `inet_frag_reasm_prepare`). IPv4: total length set, MF and offset
//! cleared, DF set iff the largest fragment had DF, ECN OR-ed in, checksum
//! recomputed. IPv6: fragment header removed, the preceding next-header byte
//! set to the fragment header's, payload length rewritten.
//!
//! ## IDS policies
//!
//! `First`, `Last`, `Bsd`, `BsdRight`, `LinuxLegacy`, `Windows`, `Solaris`
//! never discard a datagram for an overlap: each byte goes to whichever
//! fragment the policy's pairwise rule picks, decided on the fragments'
//! original extents in arrival order (see `overlay.rs` and
//! `novak-vectors.json`). The length checks above apply to them too.
//! Overlapping fragments are counted in `reasm_overlaps` (without a
//! failure), so an analyser can flag them.
//!
//! ## Copying or keeping the fragments
//!
//! [`Reassembler::push`] borrows the packet and copies the bytes it keeps,
//! once, to their place in the datagram's buffer; the completed datagram is
//! that buffer. [`Reassembler::push_owned`] takes the packet (a `Vec<u8>`)
//! and, under the `Linux` policy, keeps it as it is: the completed datagram
//! is a [`Chain`] of the header and the fragments' data, as the kernel
//! chains the skbs of a reassembled datagram (`frag_list`) and DPDK its
//! mbufs. With hundreds of datagrams in flight their buffers no longer fit
//! in L2, and copying moves every byte through the caches twice (read the
//! fragment, fetch the destination line): keeping them is the faster way
//! there. Both may be used on one table, even within one datagram; the
//! answers are the same either way (a property test checks it).
//!
//! ## Limits and cost
//!
//! Memory is charged for what is really held: per queue
//! [`QUEUE_OVERHEAD`], plus its buffer (header room and every byte up to the
//! highest end received, holes included), plus [`FRAGMENT_OVERHEAD`] per
//! kept fragment, plus the whole length of each packet kept by
//! `push_owned`. While the total is above `high_thresh` every fragment is
//! refused (`Dropped(MemoryLimit)`, `ReasmFails`), so it never exceeds the
//! threshold by more than what one accepted fragment adds (at most a queue,
//! its bookkeeping and its bytes up to its end: a fragment at a large offset
//! is charged for the hole before it, since the buffer holds it).
//!
//! The queue table is a hash table of 4-byte slot numbers (keys live in the
//! queues) with a random per-table seed (foldhash), and a one-entry cache of
//! the last queue used, so in-order fragments skip the lookup. Timers are
//! two FIFO lists (lifetimes are fixed per family), so expiry is O(1) per
//! queue, and a push compares `now` with one cached deadline. Queue slots,
//! their run trees and datagram buffers are reused (see
//! [`Reassembler::recycle`]); a queue's hot fields share two cache lines,
//! and with many datagrams in flight the lines a fragment will be copied to
//! are loaded before the copy (see `queue.rs`). Linux policy: O(1) per
//! in-order fragment, O(log k) otherwise;
//! overlaps kill the queue, so floods of overlapping fragments cannot
//! accumulate. IDS policies: O((m + 1) log k) for a fragment that touches
//! m held segments.
//!
//! Time never runs backwards, as the kernel's jiffies do not: a `now`
//! earlier than one already seen counts as that one (a queue's lifetime is
//! measured from the `now` of the push that created it).

use core::fmt;
use core::str::FromStr;
use std::collections::hash_map::Entry;

use core::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;
use std::collections::{HashMap, VecDeque};

use foldhash::fast::RandomState;

use crate::wire::{
    self, IPV6_FRAG_HEADER, IPV6_HEADER, Ipv4Packet, Ipv6FragHeader, Ipv6Packet, Parsed, V4Info,
    V6Info, WireError,
};

mod chain;
mod overlay;
mod queue;
mod runs;

pub use chain::Chain;
use chain::Piece;

use overlay::Overlay;
use queue::Queue;
use runs::Insert;

/// How overlapping fragments are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Today's Linux kernel exactly (runs; contained duplicates ignored; any
    /// other overlap discards the datagram).
    #[default]
    Linux,
    /// Existing data always wins.
    First,
    /// New data always wins.
    Last,
    /// New wins iff it starts strictly before the existing fragment.
    Bsd,
    /// New wins iff it ends after (or at the same end and starts no later).
    BsdRight,
    /// Pre-4.19 Linux trimming (the IDS literature's "linux").
    LinuxLegacy,
    /// New wins iff it strictly encloses the existing fragment.
    Windows,
    /// New wins iff it starts before and ends no earlier.
    Solaris,
}

impl Policy {
    /// Every policy, the default first.
    pub const ALL: [Policy; 8] = [
        Policy::Linux,
        Policy::First,
        Policy::Last,
        Policy::Bsd,
        Policy::BsdRight,
        Policy::LinuxLegacy,
        Policy::Windows,
        Policy::Solaris,
    ];

    /// The command-line name: `linux`, `first`, `last`, `bsd`, `bsd-right`,
    /// `linux-legacy`, `windows`, `solaris`.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Linux => "linux",
            Policy::First => "first",
            Policy::Last => "last",
            Policy::Bsd => "bsd",
            Policy::BsdRight => "bsd-right",
            Policy::LinuxLegacy => "linux-legacy",
            Policy::Windows => "windows",
            Policy::Solaris => "solaris",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = ReasmError;
    /// Accepts [`Policy::name`], case-insensitively, with `_` for `-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == norm)
            .ok_or_else(|| ReasmError::UnknownPolicy(s.to_string()))
    }
}

/// Limits and policy, named after the kernel's sysctls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasmConfig {
    /// Overlap policy (default [`Policy::Linux`]).
    pub policy: Policy,
    /// `ipfrag_high_thresh`: bytes held in reassembly above which new
    /// fragments are refused (default 4 MiB).
    pub high_thresh: usize,
    /// `ipfrag_time`: IPv4 queue lifetime from creation, ns (default 30 s).
    pub timeout_v4: u64,
    /// `ip6frag_time`: IPv6 queue lifetime from creation, ns (default 60 s).
    pub timeout_v6: u64,
    /// `ipfrag_max_dist` (IPv4 only; 0 disables; default 64).
    pub max_dist: u32,
    /// Largest reassembled datagram (default 65535, checked at completion):
    /// IPv4 total length, IPv6 payload length (as `IPV6_MAXPLEN`). Values
    /// above 65535 act as 65535.
    pub max_datagram: usize,
}

impl Default for ReasmConfig {
    fn default() -> Self {
        ReasmConfig {
            policy: Policy::Linux,
            high_thresh: 4 * 1024 * 1024,
            timeout_v4: 30_000_000_000,
            timeout_v6: 60_000_000_000,
            max_dist: 64,
            max_datagram: 65535,
        }
    }
}

/// IP version of a queue or event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// A reassembly queue's key, as the kernel keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragKey {
    /// IPv4: source, destination, id, protocol, caller context (`user`/vif).
    V4 {
        /// Source address.
        src: [u8; 4],
        /// Destination address.
        dst: [u8; 4],
        /// Identification.
        id: u16,
        /// Protocol.
        proto: u8,
        /// Caller context.
        context: u32,
    },
    /// IPv6: source, destination, 32-bit id, caller context.
    V6 {
        /// Source address.
        src: [u8; 16],
        /// Destination address.
        dst: [u8; 16],
        /// Identification.
        id: u32,
        /// Caller context.
        context: u32,
    },
}

// Hashed as a few packed words (the derived impl feeds the hasher field by
// field, which costs more than the lookup itself on the fast path). Equal
// keys pack equally, so this agrees with `Eq`.
impl core::hash::Hash for FragKey {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        match *self {
            FragKey::V4 {
                src,
                dst,
                id,
                proto,
                context,
            } => {
                h.write_u64(
                    u64::from(u32::from_ne_bytes(src)) << 32 | u64::from(u32::from_ne_bytes(dst)),
                );
                h.write_u64(u64::from(id) << 40 | u64::from(proto) << 32 | u64::from(context));
            }
            FragKey::V6 {
                src,
                dst,
                id,
                context,
            } => {
                h.write_u128(u128::from_ne_bytes(src));
                h.write_u128(u128::from_ne_bytes(dst));
                // Bit 63 set: never equal to a V4 second word's layout.
                h.write_u64(1 << 63 | u64::from(id) << 32 | u64::from(context));
            }
        }
    }
}

/// Why a fragment was not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FragDrop {
    /// Lies inside data already held: ignored, the queue is kept.
    Duplicate,
    /// Overlaps held data (Linux policy): the whole datagram is discarded.
    Overlap,
    /// Zero length, a second last fragment with another end, or data past a
    /// known end: the queue is discarded.
    Inconsistent,
    /// Reassembly memory is above `high_thresh`: refused.
    MemoryLimit,
    /// The reassembled datagram would exceed `max_datagram`: discarded.
    Oversize,
    /// Not-ECT mixed with ECT/CE fragments (RFC 3168): discarded.
    EcnMismatch,
}

impl FragDrop {
    /// Every reason, in declaration order: [`FragDrop::index`] is the
    /// position here, for counters kept per reason.
    pub const ALL: [FragDrop; 6] = [
        FragDrop::Duplicate,
        FragDrop::Overlap,
        FragDrop::Inconsistent,
        FragDrop::MemoryLimit,
        FragDrop::Oversize,
        FragDrop::EcnMismatch,
    ];

    /// Position in [`FragDrop::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The counter name: `duplicate`, `overlap`, `inconsistent`,
    /// `memory_limit`, `oversize`, `ecn_mismatch`.
    pub fn name(self) -> &'static str {
        match self {
            FragDrop::Duplicate => "duplicate",
            FragDrop::Overlap => "overlap",
            FragDrop::Inconsistent => "inconsistent",
            FragDrop::MemoryLimit => "memory_limit",
            FragDrop::Oversize => "oversize",
            FragDrop::EcnMismatch => "ecn_mismatch",
        }
    }

    /// A short description.
    pub fn as_str(self) -> &'static str {
        match self {
            FragDrop::Duplicate => "duplicate fragment",
            FragDrop::Overlap => "overlapping fragment",
            FragDrop::Inconsistent => "inconsistent fragment",
            FragDrop::MemoryLimit => "reassembly memory limit",
            FragDrop::Oversize => "reassembled datagram too large",
            FragDrop::EcnMismatch => "ECN mismatch between fragments",
        }
    }
}

/// What [`Reassembler::push`] did with a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Not a fragment: the caller passes it on as it is.
    NotFragment,
    /// Held; the datagram is not complete yet.
    Queued,
    /// The datagram is complete: the whole packet as the kernel delivers it
    /// (header rewritten; IPv6 fragment header removed).
    Complete(Vec<u8>),
    /// The fragment was not kept.
    Dropped(FragDrop),
}

/// What [`Reassembler::push_owned`] did with a packet it was given.
///
/// A packet comes back to the caller when nothing of it was used; a kept
/// fragment comes back inside the [`Chain`] of its datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushedOwned {
    /// Not a fragment: the packet, to pass on as it is.
    NotFragment(Vec<u8>),
    /// Held; the datagram is not complete yet.
    Queued,
    /// The datagram is complete (see [`Chain`]).
    Complete(Chain),
    /// The fragment was not kept: why, and the packet.
    Dropped(FragDrop, Vec<u8>),
}

/// A packet [`Reassembler::push_owned`] refused as malformed: the error and
/// the packet, given back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub error: ReasmError,
    /// The packet as it was given.
    pub packet: Vec<u8>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Rejected {}

/// What happened to a queue without a packet to answer for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// Its lifetime ended before it completed (`ReasmTimeout`).
    Timeout,
}

/// An expired queue, and what the kernel would send for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The queue's key.
    pub key: FragKey,
    /// `Some` when the kernel sends ICMP Time Exceeded (code 1): only when
    /// the offset-0 fragment had arrived. Holds what the kernel quotes: that
    /// fragment's IP header (IPv6: through the fragment header) and its data
    /// — at least the first 8 bytes RFC 792 asks for, and as much more as
    /// fits the minimum MTU, as Linux sends (548 bytes in all for IPv4,
    /// 1232 for IPv6).
    pub icmp_quote: Option<Vec<u8>>,
}

/// Counters named like the kernel's SNMP ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReasmStats {
    /// Fragments received.
    pub reasm_reqds: u64,
    /// Datagrams reassembled.
    pub reasm_oks: u64,
    /// Failures (queues discarded, fragments refused for memory, timeouts).
    pub reasm_fails: u64,
    /// Queues that timed out.
    pub reasm_timeout: u64,
    /// Overlaps that discarded a datagram (Linux policy).
    pub reasm_overlaps: u64,
}

/// Why [`Reassembler::push`] refused a packet outright.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReasmError {
    /// Not a well-formed IP packet.
    Malformed(WireError),
    /// IPv6: the kernel drops the fragment and sends ICMPv6 Parameter
    /// Problem with this code and pointer.
    ParamProblem {
        /// ICMPv6 code (0: erroneous header field, 3: incomplete header chain).
        code: u8,
        /// Offset of the offending byte from the start of the packet.
        pointer: u32,
    },
    /// A policy name that is not one of [`Policy::ALL`].
    UnknownPolicy(String),
}

impl fmt::Display for ReasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReasmError::Malformed(e) => write!(f, "malformed packet: {e}"),
            ReasmError::ParamProblem { code, pointer } => write!(
                f,
                "ICMPv6 parameter problem (code {code}, pointer {pointer})"
            ),
            ReasmError::UnknownPolicy(s) => write!(
                f,
                "unknown reassembly policy \"{s}\" (expected one of linux, first, last, bsd, bsd-right, linux-legacy, windows, solaris)"
            ),
        }
    }
}

impl std::error::Error for ReasmError {}

impl From<WireError> for ReasmError {
    fn from(e: WireError) -> Self {
        ReasmError::Malformed(e)
    }
}

/// Bytes charged for a queue's bookkeeping (the kernel charges its
/// `struct ipq` / `struct frag_queue` the same way).
pub const QUEUE_OVERHEAD: usize = 256;
/// Bytes charged per kept fragment for its bookkeeping, on top of the buffer.
pub const FRAGMENT_OVERHEAD: usize = 32;

/// Most buffers kept for reuse by [`Reassembler::recycle`].
const POOL_MAX: usize = 256;
/// Larger buffers are not kept for reuse (they would pin memory).
const POOL_MAX_CAPACITY: usize = 1 << 17;

/// The reassembly table: every queue, the memory they hold, the counters.
#[derive(Debug)]
pub struct Reassembler {
    cfg: ReasmConfig,
    stats4: ReasmStats,
    stats6: ReasmStats,
    /// Key → slot in `queues`; seeded per table (attackers cannot aim
    /// fragments at one bucket).
    /// Only slot numbers are stored (4 bytes each, so the table stays in
    /// cache with many datagrams in flight); keys live in the queues.
    table: HashTable<u32>,
    hasher: RandomState,
    queues: Vec<Queue>,
    free: Vec<u32>,
    /// Per family, queues in creation order = expiry order (the lifetime
    /// is fixed per family and armed once): a doubly linked list through
    /// `Queue::prev/next`, so expiry and removal are O(1).
    timers: [TimerList; 2],
    /// The earliest deadline of the two lists' heads (`u64::MAX`: none):
    /// a push checks this one number instead of walking the timers.
    next_due: u64,
    /// `ipfrag_max_dist` counters per (source, context) (`inet_peer`):
    /// key → slot in `peer_slab`; queues hold the slot index, so a fragment
    /// costs no lookup. Kept while a queue refers to them, and up to
    /// `PEERS_IDLE_MAX` more (the counter's absolute value never matters, so
    /// forgetting an idle one changes nothing).
    peers: HashMap<u64, u32, RandomState>,
    peer_slab: Vec<Peer>,
    peer_free: Vec<u32>,
    peer_idle: VecDeque<u32>,
    /// The peer the last queue was created for (skips the lookup for a
    /// source sending datagram after datagram).
    last_peer: Option<(u64, u32)>,
    /// The queue the last fragment went to: in-order fragments of one
    /// datagram skip the hash lookup.
    last: Option<(FragKey, u32)>,
    mem: usize,
    pending: VecDeque<Event>,
    pool: Vec<Vec<u8>>,
    /// Pushes so far (wrapping), and its value when the last buffer came
    /// back to `pool`: tells whether the next buffer taken is likely in
    /// cache (see `lookup_or_create`).
    pushes: u64,
    recycled_at: u64,
    /// The latest `now` seen: an earlier one counts as this.
    clock: u64,
    /// During `push_owned` (Linux policy): keep the fragment rather than
    /// copy it (the packet's length, charged when it is kept). Where it was
    /// recorded (queue, index in its kept list), and the buffer index it
    /// got in a chain completed by this push.
    keeping: Option<usize>,
    kept_at: Option<(u32, usize)>,
    pending_buf: Option<usize>,
    /// A datagram with kept fragments that the current push completed.
    chained: Option<Chain>,
    /// An empty kept-fragment list with capacity, swapped into the queue
    /// whose list a completion takes.
    spare_kept: Vec<queue::KeptFrag>,
}

impl Reassembler {
    /// An empty table.
    pub fn new(cfg: ReasmConfig) -> Self {
        Reassembler {
            cfg,
            stats4: ReasmStats::default(),
            stats6: ReasmStats::default(),
            table: HashTable::new(),
            hasher: RandomState::default(),
            queues: Vec::new(),
            free: Vec::new(),
            timers: [TimerList::default(); 2],
            next_due: u64::MAX,
            peers: HashMap::with_hasher(RandomState::default()),
            peer_slab: Vec::new(),
            peer_free: Vec::new(),
            peer_idle: VecDeque::new(),
            last_peer: None,
            last: None,
            mem: 0,
            pending: VecDeque::new(),
            pool: Vec::new(),
            pushes: 0,
            recycled_at: u64::MAX,
            clock: 0,
            keeping: None,
            kept_at: None,
            pending_buf: None,
            chained: None,
            spare_kept: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReasmConfig {
        &self.cfg
    }

    /// Takes one raw IP packet (IPv4 or IPv6, starting at the IP header)
    /// received at `now` (ns) in `context`.
    ///
    /// Queues whose lifetime ended at or before `now` are expired first (as
    /// if their timers had fired); their events wait for [`Self::expire`].
    pub fn push(&mut self, packet: &[u8], context: u32, now: u64) -> Result<Pushed, ReasmError> {
        self.push_inner::<false>(packet, context, now)
    }

    /// Like [`push`](Self::push), but takes the packet: a fragment the
    /// `Linux` policy keeps is held as it is, not copied, and the complete
    /// datagram is a [`Chain`] of the fragments' buffers (the first segment
    /// a rewritten header), as the kernel chains skbs and DPDK mbufs. With
    /// hundreds of datagrams in flight that saves moving every byte through
    /// the caches a second time.
    ///
    /// The IDS policies decide byte by byte, so with them the bytes are
    /// copied as by `push` (and the packet's buffer is freed). Memory is
    /// charged with the kept packets' whole lengths. Pushes of both kinds
    /// may go to one table, even to one datagram.
    ///
    /// ```
    /// use htb::reasm::{PushedOwned, ReasmConfig, Reassembler};
    /// # fn frag(offset: u16, data: &[u8], more: bool) -> Vec<u8> {
    /// #     let mut b = vec![0u8; 20 + data.len()];
    /// #     b[0] = 0x45;
    /// #     let n = b.len() as u16;
    /// #     b[2..4].copy_from_slice(&n.to_be_bytes());
    /// #     b[4..6].copy_from_slice(&7u16.to_be_bytes());
    /// #     let ff = (offset / 8) | if more { 0x2000 } else { 0 };
    /// #     b[6..8].copy_from_slice(&ff.to_be_bytes());
    /// #     b[8] = 64;
    /// #     b[9] = 17;
    /// #     b[12..16].copy_from_slice(&[192, 0, 2, 1]);
    /// #     b[16..20].copy_from_slice(&[192, 0, 2, 2]);
    /// #     let ck = htb::wire::checksum(&b[..20]);
    /// #     b[10..12].copy_from_slice(&ck.to_be_bytes());
    /// #     b[20..].copy_from_slice(data);
    /// #     b
    /// # }
    /// let mut r = Reassembler::new(ReasmConfig::default());
    /// assert_eq!(r.push_owned(frag(16, &[2; 8], false), 0, 0).unwrap(), PushedOwned::Queued);
    /// let PushedOwned::Complete(d) = r.push_owned(frag(0, &[1; 16], true), 0, 1).unwrap() else {
    ///     panic!("complete");
    /// };
    /// assert_eq!(d.len(), 20 + 24);
    /// assert_eq!(d.segment_count(), 3); // header, then each fragment's data
    /// let bytes = d.to_vec();
    /// assert_eq!(&bytes[20..], &[[1u8; 16].as_slice(), &[2; 8]].concat()[..]);
    /// // The fragments' buffers come back with the chain, to be reused.
    /// assert_eq!(d.into_buffers().len(), 3);
    /// ```
    pub fn push_owned(
        &mut self,
        packet: Vec<u8>,
        context: u32,
        now: u64,
    ) -> Result<PushedOwned, Rejected> {
        self.keeping = (self.cfg.policy == Policy::Linux).then_some(packet.len());
        self.kept_at = None;
        self.pending_buf = None;
        let done = self.push_inner::<true>(&packet, context, now);
        self.keeping = None;
        let kept_at = self.kept_at.take();
        let pending = self.pending_buf.take();
        let chained = self.chained.take();
        match done {
            Err(error) => Err(Rejected { error, packet }),
            Ok(Pushed::NotFragment) => Ok(PushedOwned::NotFragment(packet)),
            Ok(Pushed::Dropped(d)) => Ok(PushedOwned::Dropped(d, packet)),
            Ok(Pushed::Queued) => {
                // Kept (its entry waits for the buffer), or copied.
                if let Some((qi, idx)) = kept_at {
                    let slot = self.queues[qi as usize]
                        .kept
                        .as_mut()
                        .and_then(|k| k.frags.get_mut(idx));
                    if let Some(f) = slot {
                        f.buf = packet;
                    }
                }
                Ok(PushedOwned::Queued)
            }
            Ok(Pushed::Complete(d)) => match chained {
                Some(mut chain) => {
                    if let Some(i) = pending {
                        chain.fill(i, packet);
                    }
                    Ok(PushedOwned::Complete(chain))
                }
                // Copied whole (an IDS policy, an atomic fragment).
                None => Ok(PushedOwned::Complete(Chain::contiguous(d))),
            },
        }
    }

    /// The push itself, one copy for each entry point (`KEEP`: called by
    /// `push_owned`), so that each is inlined into its only caller and the
    /// copying path pays nothing for the other.
    fn push_inner<const KEEP: bool>(
        &mut self,
        packet: &[u8],
        context: u32,
        now: u64,
    ) -> Result<Pushed, ReasmError> {
        let parsed = wire::parse(packet)?;
        self.pushes = self.pushes.wrapping_add(1);
        let now = now.max(self.clock);
        self.clock = now;
        if now >= self.next_due {
            self.run_timers(now);
        }
        match parsed {
            Parsed::V4(info) => {
                Ok(self.push_v4::<KEEP>(&packet[..info.total_len], info, context, now))
            }
            Parsed::V6(info) => self.push_v6::<KEEP>(&packet[..info.total_len], info, context, now),
        }
    }

    /// Ends every queue whose lifetime is over at `now`; returns what the
    /// kernel would report for each, oldest first.
    pub fn expire(&mut self, now: u64) -> Vec<Event> {
        let now = now.max(self.clock);
        self.clock = now;
        self.run_timers(now);
        self.pending.drain(..).collect()
    }

    /// When the oldest queue expires (ns), if any queue is held.
    pub fn next_expiry(&self) -> Option<u64> {
        self.timers
            .iter()
            .filter(|t| t.head != NIL)
            .map(|t| self.queues[t.head as usize].deadline)
            .min()
    }

    /// Counters, IPv4 and IPv6 together.
    pub fn stats(&self) -> ReasmStats {
        let (a, b) = (self.stats4, self.stats6);
        ReasmStats {
            reasm_reqds: a.reasm_reqds + b.reasm_reqds,
            reasm_oks: a.reasm_oks + b.reasm_oks,
            reasm_fails: a.reasm_fails + b.reasm_fails,
            reasm_timeout: a.reasm_timeout + b.reasm_timeout,
            reasm_overlaps: a.reasm_overlaps + b.reasm_overlaps,
        }
    }

    /// Counters of one family (`/proc/net/snmp` `Ip:` vs `/proc/net/snmp6`).
    pub fn stats_for(&self, family: Family) -> ReasmStats {
        match family {
            Family::V4 => self.stats4,
            Family::V6 => self.stats6,
        }
    }

    /// Bytes held now (the quantity compared with `high_thresh`): per queue
    /// [`QUEUE_OVERHEAD`] plus its buffer (header room and every byte up to
    /// the highest end received, holes included) plus [`FRAGMENT_OVERHEAD`]
    /// per kept fragment, plus the length of each packet kept whole by
    /// [`push_owned`](Self::push_owned). A push is refused while this is above
    /// `high_thresh`, so it never exceeds `high_thresh` by more than what
    /// one fragment adds.
    pub fn mem_used(&self) -> usize {
        self.mem
    }

    /// Queues held now.
    pub fn queues(&self) -> usize {
        self.table.len()
    }

    /// Gives a completed datagram's buffer back, so the next datagram can
    /// reuse its allocation (optional; saves an allocation per datagram).
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() != 0 && self.pool.len() < POOL_MAX && buf.capacity() <= POOL_MAX_CAPACITY
        {
            buf.clear();
            self.pool.push(buf);
            self.recycled_at = self.pushes;
        }
    }

    fn stats_mut(&mut self, v6: bool) -> &mut ReasmStats {
        if v6 {
            &mut self.stats6
        } else {
            &mut self.stats4
        }
    }

    fn take_buf(&mut self, want: usize) -> Vec<u8> {
        match self.pool.pop() {
            Some(mut b) => {
                b.reserve(want);
                b
            }
            None => Vec::with_capacity(want),
        }
    }

    // ---- IPv4 (ip_defrag / ip_frag_queue) ----

    fn push_v4<const KEEP: bool>(
        &mut self,
        pkt: &[u8],
        info: V4Info,
        context: u32,
        now: u64,
    ) -> Pushed {
        // (`parse` checked that the header is there.)
        let Some(h) = pkt.first_chunk::<{ wire::IPV4_MIN_HEADER }>() else {
            return Pushed::NotFragment;
        };
        if !info.mf && info.offset == 0 {
            return Pushed::NotFragment;
        }
        self.stats4.reasm_reqds += 1;
        let key = FragKey::V4 {
            src: [h[12], h[13], h[14], h[15]],
            dst: [h[16], h[17], h[18], h[19]],
            id: u16::from_be_bytes([h[4], h[5]]),
            proto: h[9],
            context,
        };
        let Some((qi, cold)) = self.find_or_create(key, info.ihl, info.offset, pkt.len(), now)
        else {
            self.stats4.reasm_fails += 1;
            return Pushed::Dropped(FragDrop::MemoryLimit);
        };
        if cold && !(KEEP && self.keeping.is_some()) {
            // Started now, the loads overlap the bookkeeping below.
            let q = &mut self.queues[qi as usize];
            q.warm(info.offset, pkt.len() - info.ihl);
            if !info.mf {
                // A last fragment usually completes the datagram, whose
                // removal relinks its timer-list successor: load that
                // queue's line now too.
                let next = q.next;
                if let Some(n) = self.queues.get(next as usize) {
                    std::hint::black_box(n.deadline);
                }
            }
        }
        // ipfrag_max_dist: too many fragments from this source since this
        // queue's last one → flush it and start over with this fragment.
        if self.cfg.max_dist != 0 {
            let q = &mut self.queues[qi as usize];
            if let Some(peer) = self.peer_slab.get_mut(q.peer as usize) {
                peer.rid = peer.rid.wrapping_add(1);
                let end = peer.rid;
                let start = q.rid;
                q.rid = end;
                if !q.is_empty() && end.wrapping_sub(start) > self.cfg.max_dist {
                    self.stats4.reasm_fails += 1;
                    self.reinit(qi, now);
                }
            }
        }
        let ecn = 1u8 << (h[1] & 3);
        let data = pkt.get(info.ihl..).unwrap_or_default();
        let offset = info.offset as u32;
        let mut end = offset + data.len() as u32;
        let q = &mut self.queues[qi as usize];
        if !info.mf {
            if end < q.len || (q.last_in && end != q.len) {
                return self.kill_fail(qi, FragDrop::Inconsistent);
            }
            q.last_in = true;
            q.len = end;
        } else {
            // A non-last fragment is cut to a multiple of 8 (IPv4 trims,
            // IPv6 refuses).
            end &= !7;
            if end > q.len {
                if q.last_in {
                    return self.kill_fail(qi, FragDrop::Inconsistent);
                }
                q.len = end;
            }
        }
        if end == offset {
            return self.kill_fail(qi, FragDrop::Inconsistent);
        }
        let data = &data[..(end - offset) as usize];
        let header = &pkt[..info.ihl];
        if let Some(drop) = self.place::<KEEP>(qi, offset, end, data, header, None) {
            return drop;
        }
        let q = &mut self.queues[qi as usize];
        q.ecn |= ecn;
        let fragsize = (end - offset) + info.ihl as u32;
        q.max_size = q.max_size.max(fragsize);
        if info.df {
            q.max_df_size = q.max_df_size.max(fragsize);
        }
        if q.first_in && q.last_in && q.meat == q.len {
            return self.complete_v4(qi);
        }
        Pushed::Queued
    }

    fn complete_v4(&mut self, qi: u32) -> Pushed {
        let q = &self.queues[qi as usize];
        let ecn = ECN_TABLE[usize::from(q.ecn & 0x0f)];
        if ecn == 0xff {
            return self.kill_fail(qi, FragDrop::EcnMismatch);
        }
        let hl = q.header_room();
        let total = hl + q.len as usize;
        // (Never above 65535 whatever the config: the length field is 16 bits.)
        if total > self.cfg.max_datagram.min(65535) {
            return self.kill_fail(qi, FragDrop::Oversize);
        }
        let df = q.max_df_size == q.max_size;
        let kept = self.take_kept_frags(qi);
        let mut buf = self.remove_queue(qi);
        buf.truncate(total);
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..hl]);
        p.set_total_len(total as u16);
        p.set_flags_offset(if df { wire::IPV4_DF } else { 0 });
        let tos = p.tos() | ecn;
        p.set_tos(tos);
        p.fill_checksum();
        self.stats4.reasm_oks += 1;
        self.finish(buf, hl, total - hl, kept)
    }

    // ---- IPv6 (ipv6_frag_rcv / ip6_frag_queue) ----

    fn push_v6<const KEEP: bool>(
        &mut self,
        pkt: &[u8],
        info: V6Info,
        context: u32,
        now: u64,
    ) -> Result<Pushed, ReasmError> {
        let Some(fh) = info.frag_at else {
            return Ok(Pushed::NotFragment);
        };
        self.stats6.reasm_reqds += 1;
        let p = Ipv6Packet::new_unchecked(pkt);
        // A jumbogram cannot carry a fragment header.
        if p.payload_len() == 0 {
            return Err(ReasmError::ParamProblem {
                code: 0,
                pointer: fh as u32,
            });
        }
        let f = Ipv6FragHeader::new_unchecked(&pkt[fh..fh + IPV6_FRAG_HEADER]);
        let offset = u32::from(f.frag_offset());
        let data = &pkt[fh + IPV6_FRAG_HEADER..];
        if offset == 0 && !f.more_frags() {
            // Atomic fragment (RFC 6946): delivered at once, never queued.
            self.stats6.reasm_oks += 1;
            let mut out = self.take_buf(pkt.len());
            out.extend_from_slice(&pkt[..fh]);
            out.extend_from_slice(data);
            out[info.nhoff] = f.next_header();
            let plen = (out.len() - IPV6_HEADER) as u16;
            Ipv6Packet::new_unchecked(&mut out[..]).set_payload_len(plen);
            if let Some(at) = nested_fragment_header(|i| out.get(i).copied(), fh, f.next_header()) {
                self.recycle(out);
                return Err(ReasmError::ParamProblem {
                    code: 0,
                    pointer: at as u32,
                });
            }
            return Ok(Pushed::Complete(out));
        }
        if wire::ipv6_upper_header_truncated(pkt, IPV6_HEADER, p.next_header()) {
            return Err(ReasmError::ParamProblem {
                code: 3,
                pointer: 0,
            });
        }
        let key = FragKey::V6 {
            src: p.src_addr(),
            dst: p.dst_addr(),
            id: f.ident(),
            context,
        };
        let Some((qi, cold)) = self.find_or_create(key, fh, offset as usize, pkt.len(), now) else {
            self.stats6.reasm_fails += 1;
            return Ok(Pushed::Dropped(FragDrop::MemoryLimit));
        };
        if cold && !(KEEP && self.keeping.is_some()) {
            self.queues[qi as usize].warm(offset as usize, data.len());
        }
        let end = offset + data.len() as u32;
        if end > 65535 {
            return Err(ReasmError::ParamProblem {
                code: 0,
                pointer: (fh + 2) as u32,
            });
        }
        let ecn = 1u8 << p.ecn();
        let q = &mut self.queues[qi as usize];
        if !f.more_frags() {
            if end < q.len || (q.last_in && end != q.len) {
                return Ok(self.kill_fail(qi, FragDrop::Inconsistent));
            }
            q.last_in = true;
            q.len = end;
        } else {
            if end & 7 != 0 {
                return Err(ReasmError::ParamProblem {
                    code: 0,
                    pointer: 4,
                });
            }
            if end > q.len {
                if q.last_in {
                    return Ok(self.kill_fail(qi, FragDrop::Inconsistent));
                }
                q.len = end;
            }
        }
        if end == offset {
            return Ok(self.kill_fail(qi, FragDrop::Inconsistent));
        }
        let mut fhdr = [0u8; 8];
        fhdr.copy_from_slice(&pkt[fh..fh + 8]);
        let r = self.place::<KEEP>(qi, offset, end, data, &pkt[..fh], Some((info.nhoff, fhdr)));
        if let Some(drop) = r {
            return Ok(drop);
        }
        let q = &mut self.queues[qi as usize];
        q.ecn |= ecn;
        if q.first_in && q.last_in && q.meat == q.len {
            // The kernel marks the datagram `IP6SKB_FRAGMENTED`: another
            // Fragment header in its chain is refused (Parameter Problem,
            // code 0, pointing at it). ReasmOKs has counted it already.
            let start = q.header_room();
            let next = q.frag_hdr[0];
            return match self.complete_v6(qi) {
                Pushed::Complete(buf) => {
                    // (With kept fragments the datagram is in `chained`,
                    // and one kept by this very push is not in it yet: its
                    // bytes are read from `pkt`.)
                    let pending = self.pending_buf;
                    let at = match &self.chained {
                        Some(c) => {
                            nested_fragment_header(|i| c.byte_with(i, pending, pkt), start, next)
                        }
                        None => nested_fragment_header(|i| buf.get(i).copied(), start, next),
                    };
                    match at {
                        Some(at) => {
                            self.recycle(buf);
                            if let Some(c) = self.chained.take() {
                                c.for_each_buffer(|b| self.recycle(b));
                            }
                            Err(ReasmError::ParamProblem {
                                code: 0,
                                pointer: at as u32,
                            })
                        }
                        None => Ok(Pushed::Complete(buf)),
                    }
                }
                other => Ok(other),
            };
        }
        Ok(Pushed::Queued)
    }

    fn complete_v6(&mut self, qi: u32) -> Pushed {
        let q = &self.queues[qi as usize];
        let ecn = ECN_TABLE[usize::from(q.ecn & 0x0f)];
        if ecn == 0xff {
            return self.kill_fail(qi, FragDrop::EcnMismatch);
        }
        let hl = q.header_room();
        let payload = hl - IPV6_HEADER + q.len as usize;
        if payload > self.cfg.max_datagram.min(65535) {
            return self.kill_fail(qi, FragDrop::Oversize);
        }
        let (nhoff, next) = (q.nhoff as usize, q.frag_hdr[0]);
        let data_len = q.len as usize;
        let kept = self.take_kept_frags(qi);
        let mut buf = self.remove_queue(qi);
        buf.truncate(IPV6_HEADER + payload);
        buf[nhoff] = next;
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_payload_len(payload as u16);
        // Traffic class |= ecn: its low bits sit in the high nibble of byte 1.
        buf[1] |= ecn << 4;
        self.stats6.reasm_oks += 1;
        self.finish(buf, hl, data_len, kept)
    }

    // ---- shared queue machinery ----

    /// `inet_frag_find`: nothing when memory is above the threshold; else
    /// the queue for `key`, created (timer armed) if needed. The next
    /// fragment of the datagram of the previous one is found without a
    /// lookup (inlined: that is most fragments). The flag says whether the
    /// queue is another than the last one used (its buffer is likely out of
    /// the nearest caches).
    #[inline(always)]
    fn find_or_create(
        &mut self,
        key: FragKey,
        hdr_len: usize,
        offset: usize,
        pkt_len: usize,
        now: u64,
    ) -> Option<(u32, bool)> {
        if self.cfg.high_thresh == 0 || self.mem > self.cfg.high_thresh {
            return None;
        }
        if let Some((k, qi)) = self.last {
            if k == key {
                return Some((qi, false));
            }
        }
        Some(self.lookup_or_create(key, hdr_len, offset, pkt_len, now))
    }

    /// The table lookup of `find_or_create`, and queue creation.
    #[inline(never)]
    fn lookup_or_create(
        &mut self,
        key: FragKey,
        hdr_len: usize,
        offset: usize,
        pkt_len: usize,
        now: u64,
    ) -> (u32, bool) {
        // One hash for lookup and insert; kept in the queue for removal.
        let hash = BuildHasher::hash_one(&self.hasher, key);
        let queues = &self.queues;
        let slot = match self.table.entry(
            hash,
            |&i| queues[i as usize].key == key,
            |&i| queues[i as usize].hash,
        ) {
            TableEntry::Occupied(o) => {
                let qi = *o.get();
                self.last = Some((key, qi));
                return (qi, true);
            }
            TableEntry::Vacant(v) => v,
        };
        let v6 = matches!(key, FragKey::V6 { .. });
        // Room for the header, and a guess at the datagram: a first
        // fragment usually announces a few more of its size.
        let data = pkt_len - hdr_len;
        let want = hdr_len + (offset + data).max(if offset == 0 { 3 * data } else { 0 });
        let want = want.min(65536 + 128);
        // A buffer given back since the previous push is the one of a
        // datagram that just completed: in cache if that datagram was
        // short-lived (in order), which is all a cheap guess can tell.
        let warm = self.recycled_at.wrapping_add(1) == self.pushes;
        let (mut buf, cold) = match self.pool.pop() {
            Some(mut b) => {
                b.reserve(want);
                (b, !warm)
            }
            None => (Vec::with_capacity(want), true),
        };
        // Header room (written when the offset-0 fragment arrives); the
        // usual 20 bytes as a fixed-size copy rather than a memset call.
        if hdr_len == wire::IPV4_MIN_HEADER {
            buf.extend_from_slice(&[0; wire::IPV4_MIN_HEADER]);
        } else {
            buf.resize(hdr_len, 0);
        }
        let deadline = now.saturating_add(if v6 {
            self.cfg.timeout_v6
        } else {
            self.cfg.timeout_v4
        });
        let ids = self.cfg.policy != Policy::Linux;
        let qi = match self.free.pop() {
            Some(i) => {
                self.queues[i as usize].reuse(key, v6, deadline, buf, hdr_len as u32, ids);
                i
            }
            None => {
                let overlay = ids.then(Box::<Overlay>::default);
                self.queues
                    .push(Queue::new(key, v6, deadline, buf, hdr_len as u32, overlay));
                (self.queues.len() - 1) as u32
            }
        };
        slot.insert(qi);
        self.queues[qi as usize].hash = hash;
        self.last = Some((key, qi));
        if !v6 && self.cfg.max_dist != 0 {
            if let FragKey::V4 { src, context, .. } = key {
                let pi = self.peer_ref(src, context);
                self.queues[qi as usize].peer = pi;
            }
        }
        self.timer_link(qi);
        let charge = self.queues[qi as usize].charge();
        self.queues[qi as usize].charged = charge;
        self.mem += charge;
        (qi, cold)
    }

    /// Stores a fragment that passed the length checks: the policy decides
    /// which bytes it keeps; the data is copied once, to its place in the
    /// queue's buffer. Returns the push result when it was not kept.
    #[inline(always)]
    fn place<const KEEP: bool>(
        &mut self,
        qi: u32,
        offset: u32,
        end: u32,
        data: &[u8],
        header: &[u8],
        v6: Option<(usize, [u8; 8])>,
    ) -> Option<Pushed> {
        let q = &mut self.queues[qi as usize];
        if q.overlay.is_some() {
            return self.place_ids(qi, offset, end, data, header, v6);
        }
        match q.runs.insert(offset, end) {
            Insert::Stored => {}
            Insert::Dup => return Some(Pushed::Dropped(FragDrop::Duplicate)),
            Insert::Overlap => {
                let v6 = q.v6;
                self.stats_mut(v6).reasm_overlaps += 1;
                return Some(self.kill_fail(qi, FragDrop::Overlap));
            }
        }
        if offset == 0 {
            q.set_first(header, data, v6);
        }
        if let Some(pkt_len) = self.keeping.filter(|_| KEEP) {
            // The data starts right after the header (and, for IPv6, the
            // fragment header) in the packet.
            let at = header.len() + if v6.is_some() { IPV6_FRAG_HEADER } else { 0 };
            let idx = q.keep(offset, at, end - offset, pkt_len);
            self.kept_at = Some((qi, idx));
        } else {
            q.write(offset, data);
        }
        q.meat += end - offset;
        q.fragments += 1;
        // (`recharge`, on the queue already at hand.)
        let c = q.charge();
        self.mem = self.mem + c - q.charged;
        q.charged = c;
        None
    }

    /// `place` for the IDS policies (byte ownership through the overlay).
    #[inline(never)]
    fn place_ids(
        &mut self,
        qi: u32,
        offset: u32,
        end: u32,
        data: &[u8],
        header: &[u8],
        v6: Option<(usize, [u8; 8])>,
    ) -> Option<Pushed> {
        let policy = self.cfg.policy;
        let q = &mut self.queues[qi as usize];
        let ov = q.overlay.as_mut()?;
        let placed = ov.insert(policy, offset, end);
        if placed.overlapped {
            // IDS policies keep the datagram; the overlap is counted so
            // an analyser sees it.
            let s = if q.v6 {
                &mut self.stats6
            } else {
                &mut self.stats4
            };
            s.reasm_overlaps += 1;
        }
        if !placed.owns_any {
            // Nothing of it survives: like a duplicate. Its extent is
            // still remembered (it can matter for later decisions).
            q.fragments += 1;
            self.recharge(qi);
            return Some(Pushed::Dropped(FragDrop::Duplicate));
        }
        q.meat += placed.gained;
        if offset == 0 && !q.first_in {
            q.set_first(header, data, v6);
        }
        if let Some(ov) = q.overlay.as_ref() {
            for (s, e) in ov.won() {
                let d = &data[(s - offset) as usize..(e - offset) as usize];
                queue::write_at(&mut q.buf, q.headroom as usize, s, d);
            }
        }
        q.fragments += 1;
        self.recharge(qi);
        None
    }

    fn recharge(&mut self, qi: u32) {
        let q = &mut self.queues[qi as usize];
        let c = q.charge();
        self.mem = self.mem + c - q.charged;
        q.charged = c;
    }

    /// The kept fragments of a queue about to complete, out of it.
    #[inline]
    fn take_kept_frags(&mut self, qi: u32) -> Vec<queue::KeptFrag> {
        match self.queues[qi as usize].kept.as_mut() {
            Some(k) if !k.frags.is_empty() => {
                // (`remove_queue` uncharges them with the queue.)
                k.bytes = 0;
                std::mem::replace(&mut k.frags, std::mem::take(&mut self.spare_kept))
            }
            _ => Vec::new(),
        }
    }

    /// The completed datagram: `buf` holds the rewritten header
    /// (`hl` bytes) and any data that was copied; `kept` the fragments
    /// held whole. Without kept fragments it is `buf` itself; with them,
    /// during `push_owned`, the datagram goes to `chained` (the caller
    /// takes it from there) and the answer carries an empty buffer.
    #[inline(always)]
    fn finish(
        &mut self,
        buf: Vec<u8>,
        hl: usize,
        data_len: usize,
        kept: Vec<queue::KeptFrag>,
    ) -> Pushed {
        if kept.is_empty() {
            return Pushed::Complete(buf);
        }
        let c = self.chain(buf, hl, data_len, kept);
        if self.keeping.is_none() {
            // Completed by `push` (fragments kept by earlier `push_owned`
            // calls): the bytes in one buffer.
            return Pushed::Complete(c.into_vec());
        }
        self.chained = Some(c);
        Pushed::Complete(Vec::new())
    }

    #[inline(never)]
    fn chain(
        &mut self,
        buf: Vec<u8>,
        hl: usize,
        data_len: usize,
        mut kept: Vec<queue::KeptFrag>,
    ) -> Chain {
        kept.sort_unstable_by_key(|f| f.off);
        let mut pieces = Vec::with_capacity(kept.len() + 1);
        // Bytes that were copied (fragments pushed with `push` into a
        // datagram that also has kept ones: rare) get a buffer each.
        let copied = |from: usize, to: usize| Piece {
            buf: buf[hl + from..hl + to].to_vec(),
            start: 0,
            end: (to - from) as u32,
        };
        let mut gaps = Vec::new();
        // The runs tile the data exactly: what no kept fragment covers
        // was copied into `buf` at its offset.
        let mut at = 0usize;
        for (k, f) in kept.iter().enumerate() {
            let off = f.off as usize;
            if off > at {
                gaps.push((k, copied(at, off)));
            }
            at = off + f.len as usize;
        }
        let tail = (at < data_len).then(|| copied(at, data_len));
        let mut buf = buf;
        buf.truncate(hl);
        pieces.push(Piece {
            buf,
            start: 0,
            end: hl as u32,
        });
        let mut gaps = gaps.into_iter().peekable();
        for (k, f) in kept.drain(..).enumerate() {
            while let Some((_, g)) = gaps.next_if(|(before, _)| *before == k) {
                pieces.push(g);
            }
            if f.buf.is_empty() {
                self.pending_buf = Some(pieces.len());
            }
            pieces.push(Piece {
                buf: f.buf,
                start: f.start,
                end: f.start + f.len,
            });
        }
        pieces.extend(tail);
        // The list's allocation serves the next datagram.
        self.spare_kept = kept;
        Chain::pieces(pieces)
    }

    /// `discard_qp`: kill the queue, count a failure.
    fn kill_fail(&mut self, qi: u32, why: FragDrop) -> Pushed {
        let v6 = self.queues[qi as usize].v6;
        self.stats_mut(v6).reasm_fails += 1;
        let buf = self.remove_queue(qi);
        self.recycle(buf);
        Pushed::Dropped(why)
    }

    /// `ip_frag_reinit`: drop every fragment, re-arm the timer from `now`.
    /// (Like the kernel, the largest-fragment sizes and `rid` are kept.)
    fn reinit(&mut self, qi: u32, now: u64) {
        self.timer_unlink(qi);
        let timeout = self.cfg.timeout_v4;
        let q = &mut self.queues[qi as usize];
        q.deadline = now.saturating_add(timeout);
        q.reset_data();
        self.timer_link(qi);
        self.recharge(qi);
    }

    /// Unhashes and frees a queue; returns its buffer.
    fn remove_queue(&mut self, qi: u32) -> Vec<u8> {
        self.timer_unlink(qi);
        let q = &mut self.queues[qi as usize];
        self.mem -= q.charged;
        q.charged = 0;
        let buf = std::mem::take(&mut q.buf);
        // Fragments still kept (a queue killed or expired) are freed.
        q.drop_kept();
        if let Some(ov) = q.overlay.as_mut() {
            ov.clear();
        }
        q.runs.clear();
        if let Ok(e) = self.table.find_entry(q.hash, |&i| i == qi) {
            e.remove();
        }
        if matches!(self.last, Some((_, l)) if l == qi) {
            self.last = None;
        }
        let pi = q.peer;
        if pi != NIL {
            q.peer = NIL;
            self.peer_unref(pi);
        }
        self.free.push(qi);
        buf
    }

    /// Takes a reference on the peer counter of (`src`, `context`).
    fn peer_ref(&mut self, src: [u8; 4], context: u32) -> u32 {
        // (source, context) packed in one word: hashed in one step.
        let key = u64::from(u32::from_ne_bytes(src)) << 32 | u64::from(context);
        if let Some((k, pi)) = self.last_peer {
            if k == key {
                self.peer_slab[pi as usize].refs += 1;
                return pi;
            }
        }
        let pi = match self.peers.entry(key) {
            Entry::Occupied(o) => *o.get(),
            Entry::Vacant(v) => {
                let pi = match self.peer_free.pop() {
                    Some(i) => {
                        self.peer_slab[i as usize] = Peer::default();
                        i
                    }
                    None => {
                        self.peer_slab.push(Peer::default());
                        (self.peer_slab.len() - 1) as u32
                    }
                };
                self.peer_slab[pi as usize].key = key;
                *v.insert(pi)
            }
        };
        self.peer_slab[pi as usize].refs += 1;
        self.last_peer = Some((key, pi));
        pi
    }

    /// Drops a queue's reference; idle counters beyond `PEERS_IDLE_MAX`
    /// are forgotten, oldest first.
    fn peer_unref(&mut self, pi: u32) {
        let p = &mut self.peer_slab[pi as usize];
        p.refs -= 1;
        if p.refs == 0 && !p.listed {
            p.listed = true;
            self.peer_idle.push_back(pi);
            while self.peer_idle.len() > PEERS_IDLE_MAX {
                let Some(old) = self.peer_idle.pop_front() else {
                    break;
                };
                let p = &mut self.peer_slab[old as usize];
                p.listed = false;
                // Still idle (not taken again since): forget it. A busy one
                // is listed again when it next goes idle.
                if p.refs == 0 {
                    self.peers.remove(&p.key);
                    self.peer_free.push(old);
                    if matches!(self.last_peer, Some((_, l)) if l == old) {
                        self.last_peer = None;
                    }
                }
            }
        }
    }

    /// Fires every timer due at `now`, oldest first (`ip_expire`).
    fn run_timers(&mut self, now: u64) {
        loop {
            let (h4, h6) = (self.timers[0].head, self.timers[1].head);
            let d4 = self.deadline_of(h4);
            let d6 = self.deadline_of(h6);
            let qi = if h4 != NIL && d4 <= d6 && d4 <= now {
                h4
            } else if h6 != NIL && d6 <= now {
                h6
            } else {
                break;
            };
            let q = &self.queues[qi as usize];
            let icmp_quote = q.first_in.then(|| q.quote());
            let (key, v6) = (q.key, q.v6);
            let s = self.stats_mut(v6);
            s.reasm_fails += 1;
            s.reasm_timeout += 1;
            let buf = self.remove_queue(qi);
            self.recycle(buf);
            self.pending.push_back(Event {
                kind: EventKind::Timeout,
                key,
                icmp_quote,
            });
        }
    }

    /// The deadline of queue `qi`, `u64::MAX` for `NIL`.
    fn deadline_of(&self, qi: u32) -> u64 {
        if qi == NIL {
            u64::MAX
        } else {
            self.queues[qi as usize].deadline
        }
    }

    /// Recomputes `next_due` after a list head changed.
    fn refresh_due(&mut self) {
        self.next_due = self
            .deadline_of(self.timers[0].head)
            .min(self.deadline_of(self.timers[1].head));
    }

    #[inline]
    fn timer_link(&mut self, qi: u32) {
        let fam = usize::from(self.queues[qi as usize].v6);
        let tail = self.timers[fam].tail;
        {
            let q = &mut self.queues[qi as usize];
            q.prev = tail;
            q.next = NIL;
        }
        if tail == NIL {
            self.timers[fam].head = qi;
            self.refresh_due();
        } else {
            self.queues[tail as usize].next = qi;
        }
        self.timers[fam].tail = qi;
    }

    #[inline]
    fn timer_unlink(&mut self, qi: u32) {
        let (fam, prev, next) = {
            let q = &self.queues[qi as usize];
            (usize::from(q.v6), q.prev, q.next)
        };
        if next == NIL {
            self.timers[fam].tail = prev;
        } else {
            self.queues[next as usize].prev = prev;
        }
        if prev == NIL {
            self.timers[fam].head = next;
            self.refresh_due();
        } else {
            self.queues[prev as usize].next = next;
        }
    }
}

/// RFC 3168 §5.3 as the kernel tabulates it (`ip_frag_ecn_table`): index =
/// OR of `1 << ecn` over the fragments (bit 0 Not-ECT, 1 ECT(1), 2 ECT(0),
/// 3 CE); value OR-ed into the reassembled header, 0xff = drop.
const ECN_TABLE: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        let not_ect = i & 1 != 0;
        let ect = i & 0b110 != 0;
        let ce = i & 0b1000 != 0;
        t[i] = if not_ect && (ect || ce) {
            0xff
        } else if ce && ect {
            3
        } else {
            0
        };
        i += 1;
    }
    t
};

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct TimerList {
    head: u32,
    tail: u32,
}

impl Default for TimerList {
    fn default() -> Self {
        TimerList {
            head: NIL,
            tail: NIL,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Peer {
    /// Source address and context, packed as in `peer_ref`.
    key: u64,
    rid: u32,
    refs: u32,
    /// In `peer_idle` (at most once).
    listed: bool,
}

/// Idle `ipfrag_max_dist` counters kept for reuse.
const PEERS_IDLE_MAX: usize = 1024;

/// Where a Fragment header sits in the header chain of `buf` that starts
/// with header `nh` at `off` (after Hop-by-Hop, Routing, Destination Options
/// or AH headers), if one does: a nested fragment header, which the kernel
/// refuses in a packet it has already reassembled (`IP6SKB_FRAGMENTED`).
fn nested_fragment_header(
    byte: impl Fn(usize) -> Option<u8>,
    mut off: usize,
    mut nh: u8,
) -> Option<usize> {
    loop {
        let len = match nh {
            44 => return Some(off),
            0 | 43 | 60 => (usize::from(byte(off + 1)?) + 1) * 8,
            51 => (usize::from(byte(off + 1)?) + 2) * 4,
            _ => return None,
        };
        nh = byte(off)?;
        off += len;
    }
}
