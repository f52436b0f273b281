//! Statistics with the fields and meanings of `tc -s class show` and
//! `tc -s qdisc show`, plus the optional rate estimator.

use core::fmt;
use core::fmt::Write as _;

use crate::class::ClassId;
use crate::rate::{LinkLayer, format_rate, format_size};

/// Counters and state of one class, as `tc -s -d class show` reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Bytes sent (for inner classes: the sum over the subtree).
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets refused at enqueue into this class's queue (`dropped`).
    pub drops: u64,
    /// Transitions into CANT_SEND (`overlimits`).
    pub overlimits: u64,
    /// Always 0: HTB does not requeue.
    pub requeues: u64,
    /// Bytes waiting in the leaf queue.
    pub backlog: u64,
    /// Packets waiting in the leaf queue.
    pub qlen: u64,
    /// Packets this class paid for with its own rate (`lended`).
    pub lends: u64,
    /// Packets this class sent on an ancestor's rate (`borrowed`).
    pub borrows: u64,
    /// Always 0 in current kernels (kept for the field set).
    pub giants: u64,
    /// Rate bucket in psched ticks (64 ns), as of the class's last update.
    pub tokens: i32,
    /// Ceil bucket in psched ticks (64 ns), as of the class's last update.
    pub ctokens: i32,
    /// The rate estimate, when an estimator is configured.
    pub rate_est: Option<RateEstimate>,
}

/// Per-qdisc counters, as `tc -s qdisc show` reports them for HTB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QdiscStats {
    /// Bytes handed out by `dequeue` (shaped and direct).
    pub bytes: u64,
    /// Packets handed out by `dequeue`.
    pub packets: u64,
    /// Packets handed back as dropped (enqueue refusals and purges).
    pub drops: u64,
    /// Sum of all class transitions into CANT_SEND.
    pub overlimits: u64,
    /// Always 0.
    pub requeues: u64,
    /// Bytes queued (direct queue and leaves).
    pub backlog: u64,
    /// Packets queued (direct queue and leaves).
    pub qlen: u64,
    /// Packets that went through the direct queue (`direct_packets_stat`).
    pub direct_packets: u64,
    /// Times the per-dequeue events budget ran out (the kernel's
    /// "htb: too many events!").
    pub too_many_events: u64,
    /// Times a leaf queue held packets but gave none (non-work-conserving).
    pub nonwc_skips: u64,
}

/// A smoothed rate, as `tc -s` shows after `rate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateEstimate {
    /// Bits per second.
    pub bps: u64,
    /// Packets per second.
    pub pps: u64,
}

/// Rate estimator settings: sample every `interval_ns`, and smooth with an
/// exponentially weighted moving average of weight `2^-ewma_log` (the
/// kernel's `gen_estimator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EstimatorConfig {
    /// Sampling interval in nanoseconds (must be non-zero).
    pub interval_ns: u64,
    /// Smoothing: each sample moves the average by `1 / 2^ewma_log` of the gap.
    pub ewma_log: u8,
}

impl Default for EstimatorConfig {
    /// One-second samples with a weight of 1/4 (tc's `est 1sec 4sec`).
    fn default() -> Self {
        EstimatorConfig {
            interval_ns: 1_000_000_000,
            ewma_log: 2,
        }
    }
}

/// Running estimator state for one class.
#[derive(Clone, Debug, Default)]
pub(crate) struct Estimator {
    last_bytes: u64,
    last_packets: u64,
    /// Averages scaled by 2^8 to keep fractions through the EWMA.
    avg_bps: u128,
    avg_pps: u128,
    primed: bool,
}

impl Estimator {
    /// Feeds one sample taken `interval_ns` after the previous one.
    pub(crate) fn sample(&mut self, cfg: &EstimatorConfig, bytes: u64, packets: u64) {
        let db = bytes.wrapping_sub(self.last_bytes) as u128;
        let dp = packets.wrapping_sub(self.last_packets) as u128;
        self.last_bytes = bytes;
        self.last_packets = packets;
        let iv = cfg.interval_ns.max(1) as u128;
        let bps = ((db * 8 * 1_000_000_000) << 8) / iv;
        let pps = ((dp * 1_000_000_000) << 8) / iv;
        if !self.primed {
            self.avg_bps = bps;
            self.avg_pps = pps;
            self.primed = true;
        } else {
            let s = cfg.ewma_log.min(31) as u32;
            self.avg_bps = self.avg_bps - (self.avg_bps >> s) + (bps >> s);
            self.avg_pps = self.avg_pps - (self.avg_pps >> s) + (pps >> s);
        }
    }

    pub(crate) fn estimate(&self) -> RateEstimate {
        RateEstimate {
            bps: (self.avg_bps >> 8) as u64,
            pps: (self.avg_pps >> 8) as u64,
        }
    }
}

/// One class as `tc -s -d class show` prints it: identity, configuration and
/// statistics. Its `Display` reproduces tc's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    /// The class id.
    pub id: ClassId,
    /// The parent, or `None` for a top-level class.
    pub parent: Option<ClassId>,
    /// Level in the kernel's numbering (leaves 0, top-level inner classes 7).
    pub level: u8,
    /// True for leaves.
    pub is_leaf: bool,
    /// Priority (meaningful for leaves).
    pub prio: u8,
    /// Quantum in bytes (meaningful for leaves).
    pub quantum: u32,
    /// Rate in bytes per second.
    pub rate: u64,
    /// Ceil in bytes per second.
    pub ceil: u64,
    /// Rate bucket in psched ticks, as the kernel stores `buffer`.
    pub buffer_ticks: u32,
    /// Ceil bucket in psched ticks.
    pub cbuffer_ticks: u32,
    /// Minimum packet unit.
    pub mpu: u16,
    /// Overhead.
    pub overhead: u16,
    /// Link layer.
    pub linklayer: LinkLayer,
    /// Current mode.
    pub mode: crate::Mode,
    /// Statistics.
    pub stats: ClassStats,
}

impl ClassInfo {
    /// This class as `tc -s class show` prints it (`detailed`: `tc -s -d`),
    /// ending with a newline. `est` stands in for a rate estimator's figure
    /// (tc prints `rate 10Mbit 1199pps` before the backlog); without it the
    /// class's own estimator is shown, if it has one.
    pub fn tc_text(&self, detailed: bool, est: Option<RateEstimate>) -> String {
        let mut o = String::new();
        let _ = write!(o, "class htb {} ", self.id);
        match self.parent {
            Some(p) => {
                let _ = write!(o, "parent {p} ");
            }
            None => o.push_str("root "),
        }
        if self.is_leaf {
            let _ = write!(o, "prio {} ", self.prio);
            if detailed {
                let _ = write!(o, "quantum {} ", self.quantum);
            }
        }
        let _ = write!(o, "rate {} ", format_rate(self.rate));
        if self.overhead != 0 {
            let _ = write!(o, "overhead {} ", self.overhead);
        }
        let _ = write!(o, "ceil {} ", format_rate(self.ceil));
        let burst = format_size(crate::rate::tc_xmitsize(self.rate, self.buffer_ticks));
        let cburst = format_size(crate::rate::tc_xmitsize(self.ceil, self.cbuffer_ticks));
        if detailed {
            let ll = match self.linklayer {
                LinkLayer::Ethernet => "ethernet",
                LinkLayer::Atm => "atm",
            };
            let mpu = format_size(self.mpu as u64);
            let _ = write!(
                o,
                "linklayer {ll} burst {burst}/1 mpu {mpu} cburst {cburst}/1 mpu {mpu} level {} ",
                self.level
            );
        } else {
            let _ = write!(o, "burst {burst} cburst {cburst} ");
        }
        o.push('\n');
        let s = &self.stats;
        let _ = writeln!(
            o,
            " Sent {} bytes {} pkt (dropped {}, overlimits {} requeues {}) ",
            s.bytes, s.packets, s.drops, s.overlimits, s.requeues
        );
        if let Some(r) = est.or(s.rate_est) {
            let _ = write!(o, " rate {} {}pps", format_rate(r.bps / 8), r.pps);
        }
        let _ = writeln!(
            o,
            " backlog {}b {}p requeues {}",
            s.backlog, s.qlen, s.requeues
        );
        let _ = writeln!(
            o,
            " lended: {} borrowed: {} giants: {}",
            s.lends, s.borrows, s.giants
        );
        let _ = writeln!(o, " tokens: {} ctokens: {}", s.tokens, s.ctokens);
        o
    }
}

impl fmt::Display for ClassInfo {
    /// The `tc -s -d class show` block for this class (without the final
    /// newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tc_text(true, None).trim_end_matches('\n'))
    }
}

/// The qdisc as `tc -s -d qdisc show` prints an HTB root, ending with a
/// newline.
pub fn qdisc_tc_text(cfg: &crate::QdiscConfig, s: &QdiscStats) -> String {
    // `default` is printed with %#llx: 0 stays 0, others get 0x.
    let default = if cfg.default_class == 0 {
        "0".to_string()
    } else {
        format!("{:#x}", cfg.default_class)
    };
    format!(
        "qdisc htb {:x}: root refcnt 2 r2q {} default {default} direct_packets_stat {} ver 3.17 direct_qlen {}\n \
         Sent {} bytes {} pkt (dropped {}, overlimits {} requeues {}) \n \
         backlog {}b {}p requeues {}\n",
        cfg.handle,
        cfg.r2q,
        s.direct_packets,
        cfg.direct_qlen,
        s.bytes,
        s.packets,
        s.drops,
        s.overlimits,
        s.requeues,
        s.backlog,
        s.qlen,
        s.requeues,
    )
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn estimator_converges_to_steady_rate() {
        let cfg = EstimatorConfig::default();
        let mut e = Estimator::default();
        let mut bytes = 0;
        for i in 1..=40u64 {
            bytes += 125_000; // 1 Mbit per 1 s interval
            e.sample(&cfg, bytes, i * 100);
        }
        let r = e.estimate();
        assert!((999_000..=1_000_000).contains(&r.bps), "{r:?}");
        assert!((99..=100).contains(&r.pps));
    }
}
