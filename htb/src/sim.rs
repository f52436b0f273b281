//! Deterministic virtual-time simulation: offered traffic in, per-class
//! rates out.
//!
//! A simulation drives an [`Htb`] with flows that are either *backlogged*
//! (always some packets waiting, like a blocking sender) or *paced* (a
//! constant packet rate), over a link that takes packets as fast as HTB
//! releases them or at a given rate. Time jumps from event to event (an
//! arrival, HTB's wake-up time, the link becoming free), so ten simulated
//! seconds take milliseconds.
//!
//! ```
//! use htb::{ClassConfig, ClassId, Htb, QdiscConfig, sim::{Flow, Offered, SimConfig, SimPacket, simulate}};
//! let mut q: Htb<SimPacket> = Htb::new(QdiscConfig::new(1));
//! q.add_class(ClassId::new(1, 1), ClassId::new(1, 0), &ClassConfig::new(625_000), 0).unwrap();
//! let flows = [Flow::backlogged(ClassId::new(1, 1), 1042)];
//! let report = simulate(&mut q, &flows, &SimConfig::default(), |_| {});
//! let r = report.class(ClassId::new(1, 1)).unwrap().rate_bps;
//! assert!((r - 5e6).abs() < 5e6 * 0.005, "{r}");
//! ```

use core::fmt;

use crate::class::ClassId;
use crate::leaf::{LeafQueue, Packet};
use crate::rate::{NSEC_PER_SEC, parse_rate};
use crate::sched::Htb;
use crate::tc::{Diagnostic, Severity};

/// A simulated packet: a length and the flow it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimPacket {
    /// Charged length in bytes.
    pub len: u32,
    /// Index of the flow that sent it.
    pub flow: u32,
}

impl Packet for SimPacket {
    fn len(&self) -> u32 {
        self.len
    }
}

/// How much a flow offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Always backlogged: a replacement is queued as soon as a packet leaves.
    Backlogged,
    /// Paced at this many bytes per second (of charged length).
    Rate(u64),
}

/// One source of traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The class id passed with each packet; `None` sends unclassified
    /// packets (class id 0), which go to the default class or the direct queue.
    pub class: Option<ClassId>,
    /// Offered load.
    pub offered: Offered,
    /// Charged packet length in bytes.
    pub packet_size: u32,
    /// When the flow starts (ns).
    pub start_ns: u64,
    /// When it stops (ns), if before the end.
    pub stop_ns: Option<u64>,
}

impl Flow {
    /// A backlogged flow into `class` from t = 0.
    pub fn backlogged(class: ClassId, packet_size: u32) -> Self {
        Flow {
            class: Some(class),
            offered: Offered::Backlogged,
            packet_size,
            start_ns: 0,
            stop_ns: None,
        }
    }

    /// A paced flow into `class` at `bytes_per_sec` from t = 0.
    pub fn paced(class: ClassId, bytes_per_sec: u64, packet_size: u32) -> Self {
        Flow {
            offered: Offered::Rate(bytes_per_sec),
            ..Flow::backlogged(class, packet_size)
        }
    }

    /// Time of the `k`-th packet after the first, for a paced flow.
    fn interval_ns(&self, k: u64) -> u64 {
        match self.offered {
            Offered::Rate(bps) => {
                (k as u128 * self.packet_size as u128 * NSEC_PER_SEC as u128 / bps.max(1) as u128)
                    as u64
            }
            Offered::Backlogged => 0,
        }
    }

    /// The same flow, unclassified.
    pub fn unclassified(mut self) -> Self {
        self.class = None;
        self
    }

    /// The same flow, active only in `[start, stop)`.
    pub fn between(mut self, start_ns: u64, stop_ns: Option<u64>) -> Self {
        self.start_ns = start_ns;
        self.stop_ns = stop_ns;
        self
    }
}

/// Simulation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Total simulated time (ns).
    pub duration_ns: u64,
    /// Time before the measured window starts (ns).
    pub warmup_ns: u64,
    /// Width of one time-series bucket (ns).
    pub step_ns: u64,
    /// Link rate in bytes per second; `None` takes packets as fast as HTB
    /// releases them.
    pub link: Option<u64>,
    /// Packets kept waiting per backlogged flow. A flow whose leaf queue is
    /// full stops offering (one refused packet, counted as a drop) until one
    /// of its packets is sent, as a blocking sender would.
    pub backlog_depth: u32,
    /// Largest random start offset added to each flow (ns). Real senders never
    /// start in the same nanosecond; equal-rate classes that do stay
    /// phase-locked for the whole run, which the kernel never sees.
    pub jitter_ns: u64,
    /// Seed for the start offsets.
    pub seed: u64,
}

/// Most time-series points a run may ask for (`duration / step`).
pub const MAX_STEPS: u64 = 1_000_000;

/// Why a [`SimConfig`] cannot run (see [`SimConfig::validate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimConfigError {
    /// `duration_ns` is 0.
    ZeroDuration,
    /// `warmup_ns` is not shorter than `duration_ns`.
    WarmupTooLong,
    /// `step_ns` is 0 or would make more than [`MAX_STEPS`] points; the
    /// shortest allowed step is given.
    StepTooShort {
        /// The shortest step this duration allows (ns).
        min_ns: u64,
    },
    /// `step_ns` is longer than `duration_ns`.
    StepTooLong,
}

impl fmt::Display for SimConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimConfigError::ZeroDuration => f.write_str("duration must be greater than zero"),
            SimConfigError::WarmupTooLong => f.write_str("warmup must be shorter than duration"),
            SimConfigError::StepTooShort { min_ns } => write!(
                f,
                "step must be at least {min_ns} ns (at most {MAX_STEPS} steps per run)"
            ),
            SimConfigError::StepTooLong => f.write_str("step must not be longer than duration"),
        }
    }
}

impl std::error::Error for SimConfigError {}

impl SimConfig {
    /// Checks that the run is well defined: a duration, a warmup shorter
    /// than it, a step between `duration / MAX_STEPS` and the duration.
    /// [`simulate`] trusts its configuration; front ends call this first.
    ///
    /// ```
    /// use htb::sim::{SimConfig, SimConfigError};
    /// assert_eq!(SimConfig::default().validate(), Ok(()));
    /// let c = SimConfig { warmup_ns: 20_000_000_000, ..SimConfig::default() };
    /// assert_eq!(c.validate(), Err(SimConfigError::WarmupTooLong));
    /// ```
    pub fn validate(&self) -> Result<(), SimConfigError> {
        if self.duration_ns == 0 {
            return Err(SimConfigError::ZeroDuration);
        }
        if self.warmup_ns >= self.duration_ns {
            return Err(SimConfigError::WarmupTooLong);
        }
        if self.step_ns == 0 || self.duration_ns / self.step_ns > MAX_STEPS {
            return Err(SimConfigError::StepTooShort {
                min_ns: self.duration_ns.div_ceil(MAX_STEPS),
            });
        }
        if self.step_ns > self.duration_ns {
            return Err(SimConfigError::StepTooLong);
        }
        Ok(())
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            duration_ns: 10 * NSEC_PER_SEC,
            warmup_ns: NSEC_PER_SEC,
            step_ns: 100_000_000,
            link: None,
            backlog_depth: 128,
            jitter_ns: 1_000_000,
            seed: 1,
        }
    }
}

/// Counters of one class over the measured window.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowStats {
    /// The class.
    pub id: ClassId,
    /// Bytes sent in the window.
    pub bytes: u64,
    /// Packets sent in the window.
    pub packets: u64,
    /// Drops in the window.
    pub drops: u64,
    /// Overlimits in the window.
    pub overlimits: u64,
    /// Lends in the window.
    pub lends: u64,
    /// Borrows in the window.
    pub borrows: u64,
    /// Achieved rate over the window, bits per second of charged length.
    pub rate_bps: f64,
}

/// What a simulation measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SimReport {
    /// Total simulated time (ns).
    pub duration_ns: u64,
    /// Length of the measured window (ns).
    pub window_ns: u64,
    /// Every class, in tree order.
    pub classes: Vec<WindowStats>,
    /// Bytes that went through the direct queue in the window.
    pub direct_bytes: u64,
    /// Packets that went through the direct queue in the window.
    pub direct_packets: u64,
    /// Direct-queue rate over the window (bit/s).
    pub direct_rate_bps: f64,
    /// Packets handed back as dropped over the whole run.
    pub dropped: u64,
    /// Time series: for each step, the end time (ns) and bytes sent per class
    /// (same order as `classes`) during that step.
    pub series: Vec<(u64, Vec<u64>)>,
}

impl SimReport {
    /// The window stats of class `id`.
    pub fn class(&self, id: ClassId) -> Option<&WindowStats> {
        self.classes.iter().find(|c| c.id == id)
    }
}

struct FlowState {
    first_ns: u64,
    next_ns: u64,
    sent: u64,
    outstanding: u32,
    /// A backlogged flow whose last top-up was refused waits until one of
    /// its packets leaves, like a sender blocked on a full socket buffer.
    blocked: bool,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Runs `flows` through `q` for `cfg.duration_ns` of virtual time and reports
/// per-class rates over the window after the warm-up. `progress` is called
/// with the virtual time now and then (about every simulated 100 ms).
pub fn simulate<Q: LeafQueue<SimPacket>>(
    q: &mut Htb<SimPacket, Q>,
    flows: &[Flow],
    cfg: &SimConfig,
    mut progress: impl FnMut(u64),
) -> SimReport {
    let ids: Vec<ClassId> = q.classes().iter().map(|c| c.id).collect();
    let snapshot = |q: &Htb<SimPacket, Q>| -> Vec<crate::stats::ClassStats> {
        ids.iter()
            .map(|&id| q.class_stats(id).unwrap_or_default())
            .collect()
    };
    let mut states: Vec<FlowState> = flows
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let jitter = if cfg.jitter_ns > 0 {
                splitmix(cfg.seed ^ (i as u64).wrapping_mul(0x1234_5678_9abc)) % cfg.jitter_ns
            } else {
                0
            };
            FlowState {
                first_ns: f.start_ns + jitter,
                next_ns: f.start_ns + jitter,
                sent: 0,
                outstanding: 0,
                blocked: false,
            }
        })
        .collect();
    let mut dropped = 0u64;
    let mut now = 0u64;
    let mut link_free = 0u64;
    let mut warm: Option<(Vec<crate::stats::ClassStats>, crate::stats::QdiscStats)> = None;
    let mut series = Vec::new();
    let mut step_start = snapshot(q);
    let mut next_step = cfg.step_ns.max(1);
    let mut next_progress = 0;

    let send = |q: &mut Htb<SimPacket, Q>, i: usize, st: &mut FlowState, dropped: &mut u64| {
        let f = &flows[i];
        let pkt = SimPacket {
            len: f.packet_size,
            flow: i as u32,
        };
        let class = f.class.map(|c| c.raw()).unwrap_or(0);
        match q.enqueue(pkt, class) {
            Ok(()) => {
                st.outstanding += 1;
                true
            }
            Err(_) => {
                *dropped += 1;
                st.blocked = f.offered == Offered::Backlogged;
                false
            }
        }
    };

    loop {
        if warm.is_none() && now >= cfg.warmup_ns {
            warm = Some((snapshot(q), q.stats()));
        }
        while now >= next_step && next_step <= cfg.duration_ns {
            let cur = snapshot(q);
            series.push((
                next_step,
                cur.iter()
                    .zip(&step_start)
                    .map(|(a, b)| a.bytes - b.bytes)
                    .collect(),
            ));
            step_start = cur;
            next_step += cfg.step_ns.max(1);
        }
        if now >= cfg.duration_ns {
            break;
        }
        if now >= next_progress {
            progress(now);
            next_progress = now + 100_000_000;
        }
        // Arrivals due now.
        for (i, f) in flows.iter().enumerate() {
            let st = &mut states[i];
            if now < st.first_ns || f.stop_ns.is_some_and(|s| now >= s) {
                continue;
            }
            match f.offered {
                Offered::Backlogged => {
                    while !st.blocked && st.outstanding < cfg.backlog_depth {
                        if !send(q, i, st, &mut dropped) {
                            break;
                        }
                    }
                }
                Offered::Rate(_) => {
                    while st.next_ns <= now && f.stop_ns.is_none_or(|s| st.next_ns < s) {
                        send(q, i, st, &mut dropped);
                        st.sent += 1;
                        st.next_ns = st.first_ns + f.interval_ns(st.sent);
                    }
                }
            }
        }
        // Service.
        let mut wake = None;
        if now >= link_free {
            loop {
                match q.dequeue(now) {
                    Some(p) => {
                        let st = &mut states[p.flow as usize];
                        st.outstanding = st.outstanding.saturating_sub(1);
                        st.blocked = false;
                        let f = &flows[p.flow as usize];
                        let active = f.stop_ns.is_none_or(|s| now < s) && now >= st.first_ns;
                        if f.offered == Offered::Backlogged && active {
                            send(q, p.flow as usize, st, &mut dropped);
                        }
                        if let Some(rate) = cfg.link {
                            link_free = now
                                + (p.len as u128 * NSEC_PER_SEC as u128 / rate.max(1) as u128)
                                    as u64;
                            break;
                        }
                    }
                    None => {
                        wake = q.next_wakeup();
                        break;
                    }
                }
            }
        }
        // Packets a leaf queue dropped by itself (never with the default
        // FIFO): dropped, and no longer outstanding for their flow.
        for d in q.take_dropped() {
            dropped += 1;
            let st = &mut states[d.packet.flow as usize];
            st.outstanding = st.outstanding.saturating_sub(1);
            st.blocked = false;
        }
        // Next event.
        let mut next = cfg.duration_ns.min(next_step);
        if let Some(w) = wake {
            next = next.min(w);
        }
        if link_free > now {
            next = next.min(link_free);
        }
        for (i, f) in flows.iter().enumerate() {
            let st = &states[i];
            let pending = match f.offered {
                Offered::Rate(_) => st.next_ns,
                Offered::Backlogged => st.first_ns,
            };
            if pending > now && f.stop_ns.is_none_or(|s| pending < s) {
                next = next.min(pending);
            }
            if let Some(s) = f.stop_ns
                && s > now
            {
                next = next.min(s);
            }
        }
        if warm.is_none() && cfg.warmup_ns > now {
            next = next.min(cfg.warmup_ns);
        }
        now = next.max(now + 1).min(cfg.duration_ns.max(now + 1));
    }
    progress(cfg.duration_ns);

    let (w_classes, w_q) = warm.unwrap_or_else(|| (snapshot(q), q.stats()));
    let end = snapshot(q);
    let end_q = q.stats();
    let window_ns = cfg.duration_ns.saturating_sub(cfg.warmup_ns).max(1);
    let rate = |bytes: u64| bytes as f64 * 8.0 * NSEC_PER_SEC as f64 / window_ns as f64;
    let classes = ids
        .iter()
        .zip(end.iter().zip(&w_classes))
        .map(|(&id, (e, w))| WindowStats {
            id,
            bytes: e.bytes - w.bytes,
            packets: e.packets - w.packets,
            drops: e.drops - w.drops,
            overlimits: e.overlimits - w.overlimits,
            lends: e.lends - w.lends,
            borrows: e.borrows - w.borrows,
            rate_bps: rate(e.bytes - w.bytes),
        })
        .collect();
    // Direct traffic = qdisc output minus what the top-level classes sent.
    let top_bytes = |cs: &[crate::stats::ClassStats]| -> u64 {
        let infos = q.classes();
        infos
            .iter()
            .zip(cs)
            .filter(|(i, _)| i.parent.is_none())
            .map(|(_, s)| s.bytes)
            .sum()
    };
    let direct_bytes = (end_q.bytes - w_q.bytes) - (top_bytes(&end) - top_bytes(&w_classes));
    SimReport {
        duration_ns: cfg.duration_ns,
        window_ns,
        classes,
        direct_bytes,
        direct_packets: end_q.direct_packets - w_q.direct_packets,
        direct_rate_bps: rate(direct_bytes),
        dropped,
        series,
    }
}

/// Parses a duration: `10s`, `1.5s`, `100ms`, `250us`, `1000ns`; a bare
/// number is seconds.
///
/// ```
/// assert_eq!(htb::sim::parse_duration("1.5s"), Some(1_500_000_000));
/// assert_eq!(htb::sim::parse_duration("100ms"), Some(100_000_000));
/// assert_eq!(htb::sim::parse_duration("2"), Some(2_000_000_000));
/// ```
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, scale) = [
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
    ]
    .iter()
    .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((s, 1e9));
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * scale < u64::MAX as f64).then(|| (v * scale).round() as u64)
}

/// Parses a flows file: one flow per line,
/// `CLASSID OFFERED PACKET_SIZE [START [STOP]]`, where CLASSID is `major:minor`
/// or `-` (unclassified), OFFERED is `max` (always backlogged) or a tc rate,
/// PACKET_SIZE is the charged frame length in bytes, and START/STOP are
/// durations. `#` starts a comment.
///
/// ```
/// use htb::sim::{parse_flows, Offered};
/// let flows = parse_flows("1:10 max 1042\n- 4mbit 1500 2s 8s  # web\n", "f.txt").unwrap();
/// assert_eq!(flows[0].offered, Offered::Backlogged);
/// assert_eq!(flows[1].class, None);
/// assert_eq!(flows[1].offered, Offered::Rate(500_000));
/// assert_eq!(flows[1].stop_ns, Some(8_000_000_000));
/// ```
pub fn parse_flows(text: &str, file: &str) -> Result<Vec<Flow>, Diagnostic> {
    let mut flows = Vec::new();
    for (ln, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        // Words with 1-based columns.
        let mut words = Vec::new();
        let mut col = 0;
        for part in line.split(' ') {
            for (j, w) in part.split('\t').enumerate() {
                if j > 0 {
                    col += 1;
                }
                if !w.is_empty() {
                    words.push((col + 1, w));
                }
                col += w.chars().count();
            }
            col += 1;
        }
        if words.is_empty() {
            continue;
        }
        let err = |(c, _): (usize, &str), msg: String| Diagnostic {
            file: file.to_string(),
            line: ln + 1,
            col: c,
            severity: Severity::Error,
            message: msg,
        };
        if words.len() < 3 || words.len() > 5 {
            return Err(err(
                words[0],
                format!(
                    "expected CLASSID OFFERED PACKET_SIZE [START [STOP]], found {} fields",
                    words.len()
                ),
            ));
        }
        let class = match words[0].1 {
            "-" => None,
            s => Some(
                s.parse::<ClassId>()
                    .map_err(|_| err(words[0], format!("invalid class id \"{s}\"")))?,
            ),
        };
        let offered = match words[1].1 {
            "max" => Offered::Backlogged,
            s => Offered::Rate(parse_rate(s).ok().filter(|&r| r > 0).ok_or_else(|| {
                err(
                    words[1],
                    format!("invalid offered rate \"{s}\" (a tc rate or max)"),
                )
            })?),
        };
        let packet_size: u32 = words[2]
            .1
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| err(words[2], format!("invalid packet size \"{}\"", words[2].1)))?;
        let time = |i: usize| -> Result<Option<u64>, Diagnostic> {
            words
                .get(i)
                .map(|&w| {
                    parse_duration(w.1).ok_or_else(|| err(w, format!("invalid time \"{}\"", w.1)))
                })
                .transpose()
        };
        let start_ns = time(3)?.unwrap_or(0);
        let stop_ns = time(4)?;
        if let Some(stop) = stop_ns
            && stop <= start_ns
        {
            return Err(err(words[4], "stop time is not after start time".into()));
        }
        flows.push(Flow {
            class,
            offered,
            packet_size,
            start_ns,
            stop_ns,
        });
    }
    Ok(flows)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::{ClassConfig, QdiscConfig};

    #[test]
    fn validate_names_each_bad_setting() {
        let ok = SimConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let with = |f: fn(&mut SimConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate()
        };
        assert_eq!(
            with(|c| c.duration_ns = 0),
            Err(SimConfigError::ZeroDuration)
        );
        assert_eq!(
            with(|c| c.warmup_ns = c.duration_ns),
            Err(SimConfigError::WarmupTooLong)
        );
        assert_eq!(
            with(|c| c.step_ns = 0),
            Err(SimConfigError::StepTooShort { min_ns: 10_000 })
        );
        assert_eq!(
            with(|c| c.step_ns = 9_999),
            Err(SimConfigError::StepTooShort { min_ns: 10_000 })
        );
        assert_eq!(with(|c| c.step_ns = 10_000), Ok(()));
        assert_eq!(
            with(|c| c.step_ns = c.duration_ns + 1),
            Err(SimConfigError::StepTooLong)
        );
        assert!(
            SimConfigError::StepTooShort { min_ns: 5 }
                .to_string()
                .contains("at least 5 ns")
        );
    }

    #[test]
    fn backlogged_flow_blocks_on_a_full_leaf_instead_of_spinning() {
        let mut q: Htb<SimPacket> = Htb::with_queue(QdiscConfig::new(1), crate::Fifo::new(20));
        q.add_class(
            ClassId::new(1, 1),
            ClassId::new(1, 0),
            &ClassConfig::new(125_000),
            0,
        )
        .unwrap();
        let flows = [Flow::backlogged(ClassId::new(1, 1), 1000)];
        let r = simulate(&mut q, &flows, &SimConfig::default(), |_| {});
        let c = r.class(ClassId::new(1, 1)).unwrap();
        // At most one refusal per packet sent.
        assert!(
            c.drops <= c.packets + 1,
            "{} drops for {} packets",
            c.drops,
            c.packets
        );
        assert!((c.rate_bps - 1e6).abs() < 1e4, "{}", c.rate_bps);
    }

    #[test]
    fn flows_errors_point_at_the_field() {
        let e = parse_flows("1:10 max 1042\n1:20  4mbiz 1500\n", "f").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:2:7: error: invalid offered rate \"4mbiz\" (a tc rate or max)"
        );
        let e = parse_flows("1:10 max\n", "f").unwrap_err();
        assert!(e.to_string().starts_with("f:1:1: error: expected CLASSID"));
        let e = parse_flows("1:10 max 100 5s 2s\n", "f").unwrap_err();
        assert_eq!(e.col, 17);
        assert!(parse_flows("# only a comment\n\n", "f").unwrap().is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250us"), Some(250_000));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
