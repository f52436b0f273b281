//! The C-facing value types: class configuration, statistics, class info,
//! and the small enums whose numbers travel in `uint32_t` fields.

use htb_core::{ClassConfig, ClassInfo, ClassStats, DropReason, LinkLayer, Mode, QdiscStats};

use crate::error::{fail, htb_status};

/// Why `htb_enqueue` returned `HTB_STATUS_DROPPED` (or why a packet was
/// handed back by a configuration call: `HTB_DROP_REASON_PURGED`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_drop_reason {
    /// Not dropped.
    None = 0,
    /// The leaf queue is at its limit (pfifo: 1000 packets by default).
    QueueFull = 1,
    /// The direct queue is at its limit (`direct_qlen`).
    DirectQueueFull = 2,
    /// Dropped by a classifier.
    Classifier = 3,
    /// Classification looped through more than 8 classes.
    ClassifyLoop = 4,
    /// Queued in a class that a configuration change removed.
    Purged = 5,
    /// Dropped by a leaf queue after it had accepted the packet (never with
    /// the FIFO leaves of this C API).
    LeafQueue = 6,
}

impl From<DropReason> for htb_drop_reason {
    fn from(r: DropReason) -> Self {
        #[allow(unreachable_patterns)] // the core may grow reasons
        match r {
            DropReason::QueueFull => htb_drop_reason::QueueFull,
            DropReason::DirectQueueFull => htb_drop_reason::DirectQueueFull,
            DropReason::Classifier => htb_drop_reason::Classifier,
            DropReason::ClassifyLoop => htb_drop_reason::ClassifyLoop,
            DropReason::Purged => htb_drop_reason::Purged,
            DropReason::LeafQueue => htb_drop_reason::LeafQueue,
            _ => htb_drop_reason::QueueFull,
        }
    }
}

/// Link layer for cell padding (`htb_class_config.linklayer`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_linklayer {
    /// Lengths as given (plus overhead, at least mpu).
    Ethernet = 0,
    /// ATM/ADSL: padded to 48-byte cell payloads, 53 bytes per cell.
    Atm = 1,
}

/// A class's colour (`htb_class_info.mode`), numbered as the kernel's
/// `enum htb_cmode`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_mode {
    /// Red: over its ceil; it may not send.
    CantSend = 0,
    /// Yellow: over its rate, under its ceil; it may borrow.
    MayBorrow = 1,
    /// Green: under its rate.
    CanSend = 2,
}

/// Configuration of one class, in tc's units: rates in bytes per second,
/// sizes in bytes. Zero means "tc's default" for every field except `rate`,
/// so `htb_class_config c = {0}; c.rate = ...;` is a valid configuration.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct htb_class_config {
    /// Guaranteed rate, bytes per second. Required (non-zero).
    pub rate: u64,
    /// Maximum rate, bytes per second; 0 = `rate`.
    pub ceil: u64,
    /// Rate bucket depth in bytes; 0 = tc's default (`mtu + rate / 1e9`).
    pub burst: u64,
    /// Ceil bucket depth in bytes; 0 = tc's default (`mtu + ceil / 1e9`).
    pub cburst: u64,
    /// DRR quantum in bytes; 0 = `rate / r2q` clamped to [1000, 200000].
    pub quantum: u32,
    /// Priority 0..7 (0 first); larger values are clamped to 7.
    pub prio: u32,
    /// MTU used for the default bursts; 0 = 1600.
    pub mtu: u32,
    /// Link layer: one of `HTB_LINKLAYER_*`.
    pub linklayer: u32,
    /// Minimum packet unit, bytes.
    pub mpu: u16,
    /// Per-packet overhead, bytes.
    pub overhead: u16,
}

impl htb_class_config {
    pub(crate) fn core_config(&self, func: &str) -> Result<ClassConfig, htb_status> {
        if self.rate == 0 {
            return Err(fail(
                htb_status::InvalidArgument,
                format_args!("{func}: rate is required (bytes per second, non-zero)"),
            ));
        }
        let ll = match self.linklayer {
            0 => LinkLayer::Ethernet,
            1 => LinkLayer::Atm,
            x => {
                return Err(fail(
                    htb_status::InvalidArgument,
                    format_args!("{func}: unknown linklayer {x}"),
                ));
            }
        };
        let mut c = ClassConfig::new(self.rate)
            .prio(self.prio)
            .mpu(self.mpu)
            .overhead(self.overhead)
            .linklayer(ll);
        if self.ceil != 0 {
            c = c.ceil(self.ceil);
        }
        if self.burst != 0 {
            c = c.burst(self.burst);
        }
        if self.cburst != 0 {
            c = c.cburst(self.cburst);
        }
        if self.quantum != 0 {
            c = c.quantum(self.quantum);
        }
        if self.mtu != 0 {
            c = c.mtu(self.mtu);
        }
        Ok(c)
    }
}

/// Counters of one class, with the names and meanings of `tc -s class show`
/// (JSON keys).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_class_stats {
    /// Bytes sent (inner classes: over the subtree).
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets refused at enqueue into this class (`dropped`).
    pub drops: u64,
    /// Transitions into CANT_SEND.
    pub overlimits: u64,
    /// Always 0.
    pub requeues: u64,
    /// Bytes waiting in the leaf queue.
    pub backlog: u64,
    /// Packets waiting in the leaf queue.
    pub qlen: u64,
    /// Packets sent on the class's own rate (`lended`).
    pub lends: u64,
    /// Packets sent on an ancestor's rate (`borrowed`).
    pub borrows: u64,
    /// Always 0 (kept for tc's field set).
    pub giants: u64,
    /// Rate estimate in bits per second (0 without an estimator).
    pub rate_bps: u64,
    /// Rate estimate in packets per second (0 without an estimator).
    pub rate_pps: u64,
    /// Rate bucket in psched ticks (64 ns); negative = over rate.
    pub tokens: i32,
    /// Ceil bucket in psched ticks (64 ns); negative = over ceil.
    pub ctokens: i32,
}

impl From<&ClassStats> for htb_class_stats {
    fn from(s: &ClassStats) -> Self {
        let est = s.rate_est.unwrap_or_default();
        htb_class_stats {
            bytes: s.bytes,
            packets: s.packets,
            drops: s.drops,
            overlimits: s.overlimits,
            requeues: s.requeues,
            backlog: s.backlog,
            qlen: s.qlen,
            lends: s.lends,
            borrows: s.borrows,
            giants: s.giants,
            rate_bps: est.bps,
            rate_pps: est.pps,
            tokens: s.tokens,
            ctokens: s.ctokens,
        }
    }
}

/// Qdisc-wide counters (`tc -s qdisc show`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_qdisc_stats {
    /// Bytes handed out by `htb_dequeue`.
    pub bytes: u64,
    /// Packets handed out by `htb_dequeue`.
    pub packets: u64,
    /// Packets dropped (enqueue refusals and purges).
    pub drops: u64,
    /// Sum of the classes' transitions into CANT_SEND.
    pub overlimits: u64,
    /// Always 0.
    pub requeues: u64,
    /// Bytes queued (direct queue and leaves).
    pub backlog: u64,
    /// Packets queued (direct queue and leaves).
    pub qlen: u64,
    /// Packets that went through the direct queue (`direct_packets_stat`).
    pub direct_packets: u64,
    /// Times the per-dequeue events budget ran out.
    pub too_many_events: u64,
    /// Times a leaf queue held packets but gave none.
    pub nonwc_skips: u64,
}

impl From<&QdiscStats> for htb_qdisc_stats {
    fn from(s: &QdiscStats) -> Self {
        htb_qdisc_stats {
            bytes: s.bytes,
            packets: s.packets,
            drops: s.drops,
            overlimits: s.overlimits,
            requeues: s.requeues,
            backlog: s.backlog,
            qlen: s.qlen,
            direct_packets: s.direct_packets,
            too_many_events: s.too_many_events,
            nonwc_skips: s.nonwc_skips,
        }
    }
}

/// One class: identity, configuration as the kernel stores it, state and
/// statistics (`tc -s -d class show`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_class_info {
    /// The class id, `(major << 16) | minor`.
    pub classid: u32,
    /// The parent class id; the qdisc handle (`major << 16`) for a
    /// top-level class.
    pub parent: u32,
    /// Level in the kernel's numbering: leaves 0, top-level inner classes 7.
    pub level: u32,
    /// Priority (meaningful for leaves).
    pub prio: u32,
    /// Quantum in bytes (meaningful for leaves).
    pub quantum: u32,
    /// Colour: one of `HTB_MODE_*`.
    pub mode: u32,
    /// Link layer: one of `HTB_LINKLAYER_*`.
    pub linklayer: u32,
    /// Minimum packet unit, bytes.
    pub mpu: u16,
    /// Per-packet overhead, bytes.
    pub overhead: u16,
    /// Rate, bytes per second.
    pub rate: u64,
    /// Ceil, bytes per second.
    pub ceil: u64,
    /// Rate bucket depth in bytes, as tc would print it.
    pub burst: u64,
    /// Ceil bucket depth in bytes, as tc would print it.
    pub cburst: u64,
    /// True for leaves.
    pub is_leaf: bool,
    /// Statistics.
    pub stats: htb_class_stats,
}

impl htb_class_info {
    pub(crate) fn from_core(i: &ClassInfo, handle: u32) -> Self {
        #[allow(unreachable_patterns)]
        let mode = match i.mode {
            Mode::CantSend => htb_mode::CantSend,
            Mode::MayBorrow => htb_mode::MayBorrow,
            Mode::CanSend => htb_mode::CanSend,
            _ => htb_mode::CantSend,
        };
        #[allow(unreachable_patterns)]
        let linklayer = match i.linklayer {
            LinkLayer::Ethernet => htb_linklayer::Ethernet,
            LinkLayer::Atm => htb_linklayer::Atm,
            _ => htb_linklayer::Ethernet,
        };
        htb_class_info {
            classid: i.id.raw(),
            parent: i.parent.map_or(handle, |p| p.raw()),
            level: i.level as u32,
            prio: i.prio as u32,
            quantum: i.quantum,
            mode: mode as u32,
            linklayer: linklayer as u32,
            mpu: i.mpu,
            overhead: i.overhead,
            rate: i.rate,
            ceil: i.ceil,
            burst: htb_core::rate::tc_xmitsize(i.rate, i.buffer_ticks),
            cburst: htb_core::rate::tc_xmitsize(i.ceil, i.cbuffer_ticks),
            is_leaf: i.is_leaf,
            stats: (&i.stats).into(),
        }
    }
}
