//! IP reassembly, Linux-exact (and the IDS target-based policies).
//!
//! CONTRACT SKELETON (lead): the public names and signatures below are used
//! by htb-cli, htb-ffi, htb-py, the benches and the kernel oracle test, which
//! are written in parallel. The reassembly helper implements them (and may
//! add items, and split internals into submodules); changing a name or a
//! signature here needs the lead's agreement.

use core::fmt;
use core::str::FromStr;

use crate::wire::WireError;

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
    /// Largest reassembled datagram (default 65535, checked at completion).
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// the offset-0 fragment had arrived. Holds that fragment's IP header
    /// (IPv6: through the fragment header) and the first 8 bytes of its data,
    /// for the quote.
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

/// The reassembly table: every queue, the memory they hold, the counters.
#[derive(Debug)]
pub struct Reassembler {
    cfg: ReasmConfig,
    stats: ReasmStats,
}

impl Reassembler {
    /// An empty table.
    pub fn new(cfg: ReasmConfig) -> Self {
        Reassembler {
            cfg,
            stats: ReasmStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReasmConfig {
        &self.cfg
    }

    /// Takes one raw IP packet (IPv4 or IPv6, starting at the IP header)
    /// received at `now` (ns) in `context`.
    pub fn push(&mut self, packet: &[u8], context: u32, now: u64) -> Result<Pushed, ReasmError> {
        let _ = (packet, context, now);
        unimplemented!("reassembly helper")
    }

    /// Ends every queue whose lifetime is over at `now`; returns what the
    /// kernel would report for each, oldest first.
    pub fn expire(&mut self, now: u64) -> Vec<Event> {
        let _ = now;
        unimplemented!("reassembly helper")
    }

    /// When the oldest queue expires (ns), if any queue is held.
    pub fn next_expiry(&self) -> Option<u64> {
        unimplemented!("reassembly helper")
    }

    /// Counters, IPv4 and IPv6 together.
    pub fn stats(&self) -> ReasmStats {
        self.stats
    }

    /// Counters of one family (`/proc/net/snmp` `Ip:` vs `/proc/net/snmp6`).
    pub fn stats_for(&self, family: Family) -> ReasmStats {
        let _ = family;
        unimplemented!("reassembly helper")
    }

    /// Bytes held now (the quantity compared with `high_thresh`).
    pub fn mem_used(&self) -> usize {
        unimplemented!("reassembly helper")
    }

    /// Queues held now.
    pub fn queues(&self) -> usize {
        unimplemented!("reassembly helper")
    }

    /// Gives a completed datagram's buffer back, so the next datagram can
    /// reuse its allocation (optional; saves an allocation per datagram).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        let _ = buf;
    }
}
