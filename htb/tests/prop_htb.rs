//! Property tests over random class trees, parameters and traffic, driven
//! only through the public API (`Htb`, `QdiscConfig`, `ClassConfig`,
//! `enqueue`/`dequeue`/`next_wakeup`, `add_class`/`delete_class`/
//! `change_class`/`reset`, the statistics, and the hidden
//! `check_invariants`).
//!
//! Every property runs `QUICKCHECK_TESTS` cases (default 200) from a seeded
//! generator: the seed is `HTB_PROP_SEED` (decimal, or `random` for a fresh
//! one; default a fixed value, so runs are reproducible). The seed is
//! printed (shown on failure); a failing case is shrunk and printed whole.
//! `HTB_PROP_VERBOSE=1` prints per-case diagnostics (how much of each bound
//! was used).
//!
//! Scenarios: a random tree (1..=20 classes, depth <= 4; sometimes a chain
//! 8 deep, sometimes 60..140 leaves under one parent, sometimes minors up to
//! 0xffff), rates 100 kbit..100 mbit, ceil mostly above rate (sometimes
//! equal, sometimes below), prio 0..=7 (sometimes above, clamped), random or
//! default quantum/burst/cburst/mtu, sometimes overhead/mpu/ATM; qdisc
//! knobs (default class, direct_qlen, hysteresis, a tiny events budget,
//! r2q, small leaf queues); and a script of enqueues (to a leaf, an inner
//! class, an unknown id, 0, the handle, another major), time jumps (up to
//! past the 60 s cap), dequeues (also with a `now` in the past), runs that
//! follow `next_wakeup` (also behind a finite link), and configuration
//! changes (add under a leaf/inner/root, delete a leaf or an inner class,
//! change, reset, default class). Every script ends by draining to empty.
//!
//! The properties:
//! 1. conservation: in = out + dropped + queued, no packet lost or
//!    duplicated, FIFO per leaf, the direct queue first, the exact drop
//!    decisions and purges of a model, exact qdisc and leaf counters, the
//!    tree as reported, `check_invariants` after every step;
//! 2. bucket conformance over every window: every leaf's ceil (the bound is
//!    at [`Bucket`]), and more generally every class's rate and ceil
//!    buckets against the traffic they pay for and gate;
//! 3. inner bytes/packets = sum over the children (+ what deleted children
//!    and the class's own past as a leaf contributed), qdisc bytes/packets =
//!    top-level + direct (+ deleted top-level classes), exactly one lender
//!    per shaped packet, leaf lends + borrows = packets;
//! 4. guarantee: with every ancestor's rate covering its children and every
//!    ceil >= rate, a backlogged leaf gets at least its rate (bound at
//!    [`check_guarantee`]);
//! 5. progress: a `None` with packets queued comes with a wake-up time
//!    `>= now`; no packet comes out before it; no backlogged leaf is
//!    provably green while `dequeue` says `None` (no oversleeping); and
//!    following the wake-ups drains everything with a bounded number of
//!    wake-ups and of idle time.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use htb::{ClassConfig, ClassId, Fifo, Htb, HtbError, LinkLayer, Packet, QdiscConfig};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const MAJOR: u16 = 1;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

// ----------------------------------------------------------------------
// Packets
// ----------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct P {
    id: u64,
    len: u32,
}

impl Packet for P {
    fn len(&self) -> u32 {
        self.len
    }
}

fn cid(minor: u16) -> ClassId {
    ClassId::new(MAJOR, minor)
}

// ----------------------------------------------------------------------
// Random helpers over quickcheck's Gen
// ----------------------------------------------------------------------

fn below(g: &mut Gen, n: u64) -> u64 {
    if n == 0 { 0 } else { u64::arbitrary(g) % n }
}

fn range(g: &mut Gen, lo: u64, hi: u64) -> u64 {
    lo + below(g, hi - lo + 1)
}

fn chance(g: &mut Gen, percent: u64) -> bool {
    below(g, 100) < percent
}

/// Log-uniform in [lo, hi].
fn log_uniform(g: &mut Gen, lo: u64, hi: u64) -> u64 {
    let u = below(g, 1_000_001) as f64 / 1e6;
    let v = (lo as f64) * ((hi as f64) / (lo as f64)).powf(u);
    (v as u64).clamp(lo, hi)
}

/// 100 kbit/s .. 100 mbit/s in bytes per second.
const MIN_RATE: u64 = 12_500;
const MAX_RATE: u64 = 12_500_000;

// ----------------------------------------------------------------------
// Scenario description
// ----------------------------------------------------------------------

/// Qdisc-wide knobs.
#[derive(Clone, Debug)]
struct QSpec {
    default_class: u16,
    direct_qlen: usize,
    hysteresis: bool,
    events_budget: u32,
    r2q: u32,
    leaf_limit: usize,
    leaf_byte_limit: Option<u64>,
}

impl QSpec {
    fn generate(g: &mut Gen, minors: &[u16]) -> QSpec {
        let default_class = match below(g, 10) {
            0..=2 => 0,
            3..=7 if !minors.is_empty() => minors[below(g, minors.len() as u64) as usize],
            _ => range(g, 1, 0x400) as u16,
        };
        QSpec {
            default_class,
            direct_qlen: if chance(g, 25) {
                range(g, 0, 6) as usize
            } else {
                1000
            },
            hysteresis: chance(g, 20),
            events_budget: if chance(g, 20) {
                range(g, 1, 3) as u32
            } else {
                65_536
            },
            r2q: if chance(g, 80) {
                10
            } else {
                range(g, 0, 100) as u32
            },
            leaf_limit: if chance(g, 20) {
                range(g, 1, 8) as usize
            } else {
                1000
            },
            leaf_byte_limit: if chance(g, 10) {
                Some(range(g, 500, 20_000))
            } else {
                None
            },
        }
    }

    fn build(&self) -> Htb<P> {
        let cfg = QdiscConfig::new(MAJOR)
            .default_class(self.default_class)
            .direct_qlen(self.direct_qlen)
            .hysteresis(self.hysteresis)
            .events_budget(self.events_budget)
            .r2q(self.r2q);
        let mut fifo = Fifo::new(self.leaf_limit);
        if let Some(b) = self.leaf_byte_limit {
            fifo = fifo.with_byte_limit(b);
        }
        Htb::with_queue(cfg, fifo)
    }

    fn shrunk(&self) -> Vec<QSpec> {
        let mut out = Vec::new();
        if self.hysteresis {
            out.push(QSpec {
                hysteresis: false,
                ..self.clone()
            });
        }
        if self.events_budget != 65_536 {
            out.push(QSpec {
                events_budget: 65_536,
                ..self.clone()
            });
        }
        if self.leaf_limit != 1000 || self.leaf_byte_limit.is_some() {
            out.push(QSpec {
                leaf_limit: 1000,
                leaf_byte_limit: None,
                ..self.clone()
            });
        }
        out
    }
}

/// One class of the initial tree, created in list order (parents first).
#[derive(Clone, Debug)]
struct Cls {
    minor: u16,
    /// 0 = top level.
    parent: u16,
    cfg: ClassConfig,
}

/// Which kind of configuration to draw.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CfgKind {
    /// Anything, including ceil < rate, tiny bursts, odd link layers.
    Wild,
    /// `ceil >= rate` and plain Ethernet lengths (for the guarantee).
    Sane,
}

fn gen_wild_cfg(g: &mut Gen) -> ClassConfig {
    let rate = log_uniform(g, MIN_RATE, MAX_RATE);
    gen_cfg(g, rate, CfgKind::Wild)
}

fn gen_cfg(g: &mut Gen, rate: u64, kind: CfgKind) -> ClassConfig {
    let mut cfg = ClassConfig::new(rate);
    let wild = kind == CfgKind::Wild;
    match below(g, 20) {
        0..=2 => {}
        3 | 4 if wild => {
            // ceil below rate.
            cfg = cfg.ceil((rate * range(g, 30, 99) / 100).max(1));
        }
        5 => cfg = cfg.ceil(rate),
        _ => cfg = cfg.ceil((rate as f64 * (1.0 + below(g, 3000) as f64 / 1000.0)) as u64),
    }
    let size = |g: &mut Gen| -> u64 {
        match below(g, 10) {
            0 if wild => range(g, 0, 1000),
            1..=4 => range(g, 1000, 4000),
            _ => range(g, 4000, 100_000),
        }
    };
    if chance(g, 40) {
        cfg = cfg.burst(size(g));
    }
    if chance(g, 40) {
        cfg = cfg.cburst(size(g));
    }
    if chance(g, 50) {
        let q = match below(g, 4) {
            0 if wild => range(g, 1, 200) as u32,
            1 => range(g, 1000, 3000) as u32,
            _ => range(g, 200, 60_000) as u32,
        };
        cfg = cfg.quantum(q);
    }
    cfg = cfg.prio(if chance(g, 10) {
        range(g, 8, 40) as u32
    } else {
        range(g, 0, 7) as u32
    });
    if wild && chance(g, 10) {
        cfg = cfg.mtu(range(g, 100, 9000) as u32);
    }
    if wild && chance(g, 10) {
        cfg = cfg
            .overhead(range(g, 0, 100) as u16)
            .mpu(range(g, 0, 128) as u16);
        if chance(g, 50) {
            cfg = cfg.linklayer(LinkLayer::Atm);
        }
    }
    cfg
}

/// A random tree shape of depth <= 4 with `n` classes, as (minor, parent)
/// in creation order (parents first; siblings not in id order).
fn gen_shape(g: &mut Gen, n: usize) -> Vec<(u16, u16)> {
    let mut pool: Vec<u16> = if chance(g, 10) {
        // Large and scattered minors (rows are keyed by minor).
        (1..=40)
            .chain(0x3f0..=0x410)
            .chain(0xffc0..=0xffff)
            .collect()
    } else {
        (1..=300).collect()
    };
    let mut minors = Vec::with_capacity(n);
    for _ in 0..n {
        let i = below(g, pool.len() as u64) as usize;
        minors.push(pool.swap_remove(i));
    }
    let n_top = range(g, 1, 3.min(n as u64)) as usize;
    let mut out: Vec<(u16, u16)> = Vec::new();
    let mut depth: HashMap<u16, u8> = HashMap::new();
    for (k, &m) in minors.iter().enumerate() {
        let parent = if k < n_top || chance(g, 5) {
            0
        } else {
            let cands: Vec<u16> = out
                .iter()
                .map(|&(c, _)| c)
                .filter(|c| depth[c] < 4)
                .collect();
            if cands.is_empty() {
                0
            } else {
                cands[below(g, cands.len() as u64) as usize]
            }
        };
        let d = if parent == 0 { 1 } else { depth[&parent] + 1 };
        depth.insert(m, d);
        out.push((m, parent));
    }
    out
}

/// One inner class with more than 64 leaves (feeds keyed by rank grow).
fn gen_wide(g: &mut Gen) -> Vec<Cls> {
    let n = range(g, 60, 140) as usize;
    let mut pool: Vec<u16> = (2..=2000).collect();
    let mut out = vec![Cls {
        minor: 1,
        parent: 0,
        cfg: ClassConfig::new(log_uniform(g, MAX_RATE / 10, MAX_RATE)),
    }];
    for _ in 0..n {
        let i = below(g, pool.len() as u64) as usize;
        let minor = pool.swap_remove(i);
        out.push(Cls {
            minor,
            parent: 1,
            cfg: gen_wild_cfg(g),
        });
    }
    out
}

/// A chain 5..=8 classes deep (the kernel's limit is 8 levels), with a few
/// siblings hanging off it.
fn gen_deep(g: &mut Gen) -> Vec<Cls> {
    let depth = range(g, 5, 8) as u16;
    let mut out: Vec<Cls> = (1..=depth)
        .map(|d| Cls {
            minor: d * 0x10,
            parent: (d - 1) * 0x10,
            cfg: gen_wild_cfg(g),
        })
        .collect();
    for k in 0..range(g, 0, 4) as u16 {
        let parent = range(g, 0, depth as u64 - 1) as u16 * 0x10;
        out.push(Cls {
            minor: 0x200 + k,
            parent,
            cfg: gen_wild_cfg(g),
        });
    }
    out
}

fn gen_classes(g: &mut Gen, max: u64) -> Vec<Cls> {
    let n = range(g, 1, max) as usize;
    gen_shape(g, n)
        .into_iter()
        .map(|(minor, parent)| Cls {
            minor,
            parent,
            cfg: gen_wild_cfg(g),
        })
        .collect()
}

/// Where an enqueue goes; resolved against the tree at the time it runs.
#[derive(Clone, Debug)]
enum Target {
    /// The k-th current leaf (mod the number of leaves).
    Leaf(u8),
    /// The k-th current inner class.
    Inner(u8),
    /// A minor that probably does not exist.
    Unknown(u16),
    /// Raw 0 (`0:0`, not the handle: unclassified).
    Zero,
    /// The qdisc handle `1:` (direct queue).
    Handle,
    /// A class of another qdisc major.
    OtherMajor,
}

#[derive(Clone, Debug)]
enum ParentSel {
    Leaf(u8),
    Inner(u8),
    Root,
}

#[derive(Clone, Debug)]
enum Ev {
    Enqueue {
        to: Target,
        lens: Vec<u32>,
    },
    Advance(u64),
    /// Dequeue until `None` at the current time.
    Drain,
    /// Dequeue at most this many, passing a time `back` ns in the past.
    Dequeue {
        n: u8,
        back: u64,
    },
    /// Dequeue; on `None` jump to `next_wakeup`; stop past `now + horizon`.
    RunUntil(u64),
    /// Like `RunUntil`, but a link of `rate` B/s is busy after each packet.
    RunLink {
        horizon: u64,
        rate: u64,
    },
    Add {
        parent: ParentSel,
        minor: u16,
        cfg: ClassConfig,
    },
    DeleteLeaf(u8),
    DeleteInner(u8),
    Change {
        k: u8,
        cfg: ClassConfig,
    },
    Reset,
    SetDefault(u16),
}

fn gen_lens(g: &mut Gen) -> Vec<u32> {
    let k = range(g, 1, 8) as usize;
    if chance(g, 30) {
        let l = range(g, 64, 1514) as u32;
        vec![l; k]
    } else {
        (0..k).map(|_| range(g, 64, 1514) as u32).collect()
    }
}

fn gen_advance(g: &mut Gen) -> u64 {
    match below(g, 50) {
        0..=4 => 0,
        5..=9 => range(g, 1, 1000),
        10..=34 => range(g, 1000, 10 * MS),
        35..=48 => range(g, 10 * MS, 500 * MS),
        _ => range(g, 59 * SEC, 62 * SEC),
    }
}

impl Ev {
    fn generate(g: &mut Gen) -> Ev {
        let small = |g: &mut Gen| below(g, 256) as u8;
        match below(g, 100) {
            0..=34 => {
                let to = match below(g, 100) {
                    0..=69 => Target::Leaf(small(g)),
                    70..=77 => Target::Inner(small(g)),
                    78..=82 => Target::Unknown(range(g, 1, 0x400) as u16),
                    83..=89 => Target::Zero,
                    90..=96 => Target::Handle,
                    _ => Target::OtherMajor,
                };
                Ev::Enqueue {
                    to,
                    lens: gen_lens(g),
                }
            }
            35..=54 => Ev::Advance(gen_advance(g)),
            55..=62 => Ev::Drain,
            63..=69 => Ev::Dequeue {
                n: range(g, 1, 6) as u8,
                back: if chance(g, 30) {
                    range(g, 1, 5 * MS)
                } else {
                    0
                },
            },
            70..=79 => Ev::RunUntil(range(g, MS, 2 * SEC)),
            80..=82 => Ev::RunLink {
                horizon: range(g, MS, SEC),
                rate: log_uniform(g, MIN_RATE, 4 * MAX_RATE),
            },
            83..=87 => Ev::Add {
                parent: match below(g, 10) {
                    0..=5 => ParentSel::Leaf(small(g)),
                    6..=7 => ParentSel::Inner(small(g)),
                    _ => ParentSel::Root,
                },
                minor: range(g, 1, 320) as u16,
                cfg: gen_wild_cfg(g),
            },
            88..=90 => Ev::DeleteLeaf(small(g)),
            91 => Ev::DeleteInner(small(g)),
            92..=96 => Ev::Change {
                k: small(g),
                cfg: gen_wild_cfg(g),
            },
            97 | 98 => Ev::Reset,
            _ => Ev::SetDefault(range(g, 0, 320) as u16),
        }
    }
}

/// A random tree plus a random traffic and configuration script.
#[derive(Clone, Debug)]
struct Scenario {
    q: QSpec,
    classes: Vec<Cls>,
    events: Vec<Ev>,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let classes = match below(g, 20) {
            0 => gen_wide(g),
            1 => gen_deep(g),
            _ => gen_classes(g, 20),
        };
        let minors: Vec<u16> = classes.iter().map(|c| c.minor).collect();
        let q = QSpec::generate(g, &minors);
        let n_ev = range(g, 1, (g.size() as u64).clamp(2, 80)) as usize;
        let events = (0..n_ev).map(|_| Ev::generate(g)).collect();
        Scenario { q, classes, events }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut out = Vec::new();
        let n = self.events.len();
        if n > 1 {
            out.push(Scenario {
                events: self.events[..n / 2].to_vec(),
                ..self.clone()
            });
            out.push(Scenario {
                events: self.events[n / 2..].to_vec(),
                ..self.clone()
            });
        }
        for i in (0..n).rev() {
            let mut s = self.clone();
            s.events.remove(i);
            out.push(s);
        }
        for i in 0..n {
            if let Ev::Enqueue { to, lens } = &self.events[i]
                && lens.len() > 1
            {
                let mut s = self.clone();
                s.events[i] = Ev::Enqueue {
                    to: to.clone(),
                    lens: lens[..1].to_vec(),
                };
                out.push(s);
            }
        }
        // Drop classes without children (their subtree order stays valid).
        for i in (0..self.classes.len()).rev() {
            let m = self.classes[i].minor;
            if self.classes.iter().all(|c| c.parent != m) && self.classes.len() > 1 {
                let mut s = self.clone();
                s.classes.remove(i);
                out.push(s);
            }
        }
        for q in self.q.shrunk() {
            out.push(Scenario { q, ..self.clone() });
        }
        Box::new(out.into_iter())
    }
}

// ----------------------------------------------------------------------
// The model the harness keeps next to the scheduler
// ----------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
struct Checks {
    /// Property 1: conservation, exact stats, FIFO, drop decisions.
    conservation: bool,
    /// Property 2: bucket conformance (every leaf's ceil; every class's
    /// rate and ceil against what they pay for and gate).
    ceil: bool,
    /// Property 3: hierarchical sums.
    sums: bool,
    /// Property 5: wake-ups, no oversleeping, level 0 first.
    progress: bool,
}

impl Checks {
    fn all() -> Checks {
        Checks {
            conservation: true,
            ceil: true,
            sums: true,
            progress: true,
        }
    }
}

/// One token bucket of one class, checked over windows (property 2).
///
/// **The bound.** Let the bucket be `depth` ns deep (`buffer_ticks << 6` or
/// `cbuffer_ticks << 6`) and refill at `rate` B/s (the class's rate or ceil).
/// HTB charges it for some packets ("charged") and lets some packets through
/// only while it is non-negative ("gated"):
///
/// * ceil bucket of class `c`: charged for every packet of `c`'s subtree;
///   gated for the packets lent by `c` itself or by an ancestor (the borrow
///   goes through `c`: `c` must be CAN_SEND or MAY_BORROW, i.e. not red). For
///   a leaf that is every packet it sends: the classic "leaf never exceeds
///   its ceil".
/// * rate bucket of class `c`: charged for the packets lent by `c` or by a
///   class below it on the path (serving level `<= c.level`); gated for the
///   packets lent by `c` itself (`c` must be CAN_SEND).
///
/// The lender of each packet is the one class on its path whose `lends`
/// counter moved (checked to be exactly one).
///
/// Let gated packets `j` and `k` be sent at `s_j <= s_k` (`T = s_k - s_j`).
/// Before each charge the bucket is `b = min(tokens + elapsed, depth)`: never
/// above `depth` (clamp before charge), and at a gated packet `b >= 0`
/// (`>= -depth` with hysteresis, whose low/high-water marks are
/// `-cbuffer`/`-buffer`). Modes only change lazily, but tokens only grow
/// between charges, so a recorded non-red/green mode is never optimistic.
/// Refill between charges is at most the elapsed time, hence
/// `sum of costs of the charged packets in [s_j, s_k) <= h*depth + T`
/// (`h` = 1, or 2 with hysteresis). The reciprocal multiply floors and
/// under-estimates by at most 2^-31, so `cost >= wire*1e9/rate*(1-2^-31) - 1`,
/// and `cost_k <= wire_k*1e9/rate`. So, in bytes of wire length (length plus
/// overhead, raised to mpu, ATM-padded — what the class is charged for):
///
/// `W*(1-2^-31) <= rate*(T + n + h*depth)/1e9 + wire_k`
///
/// with `W` the charged wire bytes of `[s_j, s_k]` (packet `k` included) and
/// `n` their count (1 ns of flooring each). It is checked in units of
/// bytes*1e9, the `2^-31` term bounded by `W` units plus one byte of slack:
/// `W*1e9 - rate*(T + n) <= rate*h*depth + wire_k*1e9 + 1e9 + W`.
/// With a leaf's default cburst (`mtu + ceil/1e9` = 1600 B) this is "ceil*T +
/// cburst + one packet". All pairs of gated packets are covered, in O(1) per
/// packet, with a running minimum.
///
/// A tracker restarts (forgets its past) when the bucket may legitimately be
/// refilled or re-sized outside these rules or its mode forced: class
/// creation, leaf <-> inner, `change_class` of the class, `reset` (all
/// classes become CAN_SEND), and when its debt nears the 60 s floor (the
/// floor hands out free tokens).
#[derive(Clone, Debug)]
struct Bucket {
    what: &'static str,
    rate: i128,
    depth_ns: i128,
    h: i128,
    wire: i128,
    pkts: i128,
    /// min over earlier gated packets a of (W_before_a*1e9 - rate*(s_a + n_before_a)), with its sample.
    min_f: Option<(i128, u64, i128, i128)>,
    /// Largest fraction of the allowance used by a window of >= 3 packets (diagnostics).
    tight: f64,
}

impl Bucket {
    fn new(what: &'static str, rate: u64, depth_ticks: u32, hysteresis: bool) -> Bucket {
        Bucket {
            what,
            rate: rate as i128,
            depth_ns: ((depth_ticks as u64) << 6) as i128,
            h: if hysteresis { 2 } else { 1 },
            wire: 0,
            pkts: 0,
            min_f: None,
            tight: 0.0,
        }
    }

    fn on_packet(&mut self, minor: u16, t: u64, wire: u64, gated: bool) -> R {
        let w = wire as i128;
        let t = t as i128;
        if !gated {
            self.wire += w;
            self.pkts += 1;
            return Ok(());
        }
        let f_pre = self.wire * 1_000_000_000 - self.rate * (t + self.pkts);
        if self.min_f.is_none_or(|(f, ..)| f_pre < f) {
            self.min_f = Some((f_pre, t as u64, self.wire, self.pkts));
        }
        self.wire += w;
        self.pkts += 1;
        let f_post = self.wire * 1_000_000_000 - self.rate * (t + self.pkts);
        let (fmin, ta, wa, na) = self.min_f.unwrap();
        let win = self.wire - wa;
        let bound = self.rate * self.h * self.depth_ns + w * 1_000_000_000 + 1_000_000_000 + win;
        if self.pkts - na >= 3 {
            self.tight = self.tight.max((f_post - fmin) as f64 / bound as f64);
        }
        if f_post - fmin > bound {
            let secs = (t - ta as i128) as f64 / 1e9;
            let allowed =
                self.rate as f64 * (secs + (self.h * self.depth_ns) as f64 / 1e9) + w as f64;
            return Err(format!(
                "{} bucket of {} over-spent: {win} wire bytes charged in {} packets over \
                 [{ta} ns, {t} ns] ({secs:.6} s); refill {} B/s, depth {} ns (x{}), last packet \
                 {w} B: allowed ~{allowed:.0} B",
                self.what,
                cid(minor),
                self.pkts - na,
                self.rate,
                self.depth_ns,
                self.h,
            ));
        }
        Ok(())
    }
}

/// Property 2's state for one class.
#[derive(Clone, Debug)]
struct Tracks {
    rate: Bucket,
    ceil: Bucket,
    /// `lends` as last seen, to find each packet's lender.
    lends: u64,
}

fn wire_len(cfg: &ClassConfig, len: u32) -> u64 {
    let mut l = len as u64 + cfg.overhead as u64;
    if l < cfg.mpu as u64 {
        l = cfg.mpu as u64;
    }
    if cfg.linklayer == LinkLayer::Atm {
        l = l.div_ceil(48) * 53;
    }
    l
}

#[derive(Debug)]
struct LeafModel {
    q: VecDeque<P>,
    bytes: u64,
    /// Class stats at the moment it (last) became a leaf.
    base_bytes: u64,
    base_pkts: u64,
    sent_bytes: u64,
    sent_pkts: u64,
    /// When the scheduler last updated this leaf's buckets (its `t_c`): at
    /// creation, when it turned back into a leaf, and at each of its sends.
    t_c: u64,
    /// Its `lends` counter as last seen.
    lends: u64,
}

#[derive(Debug)]
struct Node {
    parent: u16,
    children: BTreeSet<u16>,
    cfg: ClassConfig,
    depth: u8,
    leaf: Option<LeafModel>,
    /// Bytes/packets counted in this class that its current children do not
    /// account for (deleted children, its own past as a leaf).
    extra_bytes: u64,
    extra_pkts: u64,
    /// Was inner at some point (its lends/borrows then include inner work).
    ever_inner: bool,
}

/// Drives an `Htb<P>` and keeps an exact model of where every packet is.
struct Harness {
    q: Htb<P>,
    spec: QSpec,
    checks: Checks,
    now: u64,
    next_id: u64,
    nodes: BTreeMap<u16, Node>,
    roots: BTreeSet<u16>,
    direct: VecDeque<P>,
    /// Packet id -> where it is queued (0 = direct queue, else leaf minor).
    loc: HashMap<u64, u16>,
    in_ok: u64,
    /// Refused at enqueue.
    refused: u64,
    /// Handed back by configuration calls.
    purged: u64,
    out_pkts: u64,
    out_bytes: u64,
    drops: u64,
    direct_in: u64,
    direct_out_bytes: u64,
    direct_out_pkts: u64,
    /// Bytes/packets of deleted top-level classes.
    root_extra_bytes: u64,
    root_extra_pkts: u64,
    /// `lends` of deleted classes.
    lends_gone: u64,
    /// Property 2: buckets by class minor.
    tracks: HashMap<u16, Tracks>,
    /// The scheduler's own clock: the largest time it has been given by a
    /// call that reads it (a dequeue served from the direct queue, or one
    /// with nothing queued, does not).
    lib_now: u64,
    /// Wake-ups in the current run of `None`s (property 5), and the time
    /// that run started.
    idle_wakeups: u64,
    idle_since: Option<u64>,
    /// Run the (expensive) model comparisons every this many steps.
    check_every: u64,
    steps: u64,
    /// Per-leaf hook for backlogged drivers: bytes sent, by minor.
    on_sent: Option<SentHook>,
}

type R = Result<(), String>;

/// Called with (leaf minor, packet, send time) for each shaped packet.
type SentHook = Box<dyn FnMut(u16, &P, u64)>;

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond { Ok(()) } else { Err(msg()) }
}

impl Harness {
    fn new(spec: &QSpec, checks: Checks) -> Harness {
        Harness {
            q: spec.build(),
            spec: spec.clone(),
            checks,
            now: 0,
            next_id: 1,
            nodes: BTreeMap::new(),
            roots: BTreeSet::new(),
            direct: VecDeque::new(),
            loc: HashMap::new(),
            in_ok: 0,
            refused: 0,
            purged: 0,
            out_pkts: 0,
            out_bytes: 0,
            drops: 0,
            direct_in: 0,
            direct_out_bytes: 0,
            direct_out_pkts: 0,
            root_extra_bytes: 0,
            root_extra_pkts: 0,
            lends_gone: 0,
            tracks: HashMap::new(),
            lib_now: 0,
            idle_wakeups: 0,
            idle_since: None,
            check_every: 1,
            steps: 0,
            on_sent: None,
        }
    }

    fn leaves(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.leaf.is_some())
            .map(|(&m, _)| m)
            .collect()
    }

    fn inners(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.leaf.is_none())
            .map(|(&m, _)| m)
            .collect()
    }

    fn start_leaf_epoch(&mut self, minor: u16) {
        let s = self.q.class_stats(cid(minor)).expect("leaf exists");
        let n = self.nodes.get_mut(&minor).unwrap();
        let l = n.leaf.as_mut().unwrap();
        l.base_bytes = s.bytes;
        l.base_pkts = s.packets;
        l.sent_bytes = 0;
        l.sent_pkts = 0;
        l.t_c = self.lib_now;
        l.lends = s.lends;
        self.restart_tracks(minor);
    }

    /// (Re)starts property 2's trackers of `minor`.
    fn restart_tracks(&mut self, minor: u16) {
        if !self.checks.ceil {
            return;
        }
        let info = self.q.class_info(cid(minor)).expect("tracked class exists");
        let h = self.spec.hysteresis;
        self.tracks.insert(
            minor,
            Tracks {
                rate: Bucket::new("rate", info.rate, info.buffer_ticks, h),
                ceil: Bucket::new("ceil", info.ceil, info.cbuffer_ticks, h),
                lends: info.stats.lends,
            },
        );
    }

    /// Property 2 for one dequeued packet of leaf `leaf` sent at `t`.
    fn track_packet(&mut self, leaf: u16, len: u32, t: u64) -> R {
        let mut path = vec![leaf];
        while let Some(&p) = path.last().map(|m| &self.nodes[m].parent)
            && p != 0
        {
            path.push(p);
        }
        let stats: Vec<htb::ClassStats> = path
            .iter()
            .map(|&m| self.q.class_stats(cid(m)).unwrap())
            .collect();
        let lenders: Vec<usize> = (0..path.len())
            .filter(|&i| stats[i].lends != self.tracks[&path[i]].lends)
            .collect();
        ensure(
            lenders.len() == 1
                && stats[lenders[0]].lends == self.tracks[&path[lenders[0]]].lends + 1,
            || {
                format!(
                    "packet of {} at {t}: lends moved on {:?} (path {:?}), want exactly one +1",
                    cid(leaf),
                    lenders.iter().map(|&i| cid(path[i])).collect::<Vec<_>>(),
                    path.iter().map(|&m| cid(m)).collect::<Vec<_>>()
                )
            },
        )?;
        let lender = lenders[0];
        for (i, &m) in path.iter().enumerate() {
            let wire = wire_len(&self.nodes[&m].cfg, len);
            let tr = self.tracks.get_mut(&m).unwrap();
            tr.lends = stats[i].lends;
            // Rate: charged at or below the lender, gated at the lender.
            if i >= lender {
                tr.rate.on_packet(m, t, wire, i == lender)?;
            }
            // Ceil: always charged, gated at and below the lender.
            tr.ceil.on_packet(m, t, wire, i <= lender)?;
        }
        // Near the 60 s debt floor the floor may hand out tokens: restart.
        for (i, &m) in path.iter().enumerate() {
            let floor = -((59 * SEC) as i64);
            if ((stats[i].tokens as i64) << 6) < floor || ((stats[i].ctokens as i64) << 6) < floor {
                self.restart_tracks(m);
            }
        }
        Ok(())
    }

    /// Checks that a configuration call handed back exactly the packets the
    /// model says it removed (as a multiset), and forgets them.
    fn expect_dropped(&mut self, got: &[P], want: Vec<P>, what: &str) -> R {
        let mut a: Vec<(u64, u32)> = got.iter().map(|p| (p.id, p.len)).collect();
        let mut b: Vec<(u64, u32)> = want.iter().map(|p| (p.id, p.len)).collect();
        a.sort_unstable();
        b.sort_unstable();
        ensure(a == b, || {
            format!("{what}: handed back {a:?}, model expected {b:?}")
        })?;
        for p in got {
            self.loc.remove(&p.id);
        }
        self.drops += got.len() as u64;
        self.purged += got.len() as u64;
        Ok(())
    }

    // -- configuration ------------------------------------------------------

    fn add(&mut self, minor: u16, parent: u16, cfg: &ClassConfig) -> R {
        let pid = if parent == 0 {
            ClassId::new(MAJOR, 0)
        } else {
            cid(parent)
        };
        let res = self.q.add_class(cid(minor), pid, cfg, self.now);
        self.lib_now = self.lib_now.max(self.now);
        let pdepth = if parent == 0 {
            0
        } else {
            self.nodes[&parent].depth
        };
        if self.nodes.contains_key(&minor) {
            return ensure(matches!(res, Err(HtbError::DuplicateClass(_))), || {
                format!("add of existing {}: {res:?}", cid(minor))
            });
        }
        if pdepth >= 8 {
            return ensure(matches!(res, Err(HtbError::TooDeep(_))), || {
                format!("add under depth-8 {}: {res:?}", cid(parent))
            });
        }
        let applied = res.map_err(|e| format!("add {} under {}: {e}", cid(minor), pid))?;
        // A leaf parent becomes inner: its queue is handed back.
        if parent != 0 && self.nodes[&parent].leaf.is_some() {
            let stats = self.q.class_stats(cid(parent)).unwrap();
            let pn = self.nodes.get_mut(&parent).unwrap();
            let leaf = pn.leaf.take().unwrap();
            pn.extra_bytes = stats.bytes;
            pn.extra_pkts = stats.packets;
            pn.ever_inner = true;
            let want: Vec<P> = leaf.q.into_iter().collect();
            self.expect_dropped(&applied.dropped, want, "add under a leaf")?;
            // Its mode was forced to CAN_SEND.
            self.restart_tracks(parent);
        } else {
            ensure(applied.dropped.is_empty(), || {
                format!("add under inner/root dropped {:?}", applied.dropped)
            })?;
        }
        self.nodes.insert(
            minor,
            Node {
                parent,
                children: BTreeSet::new(),
                cfg: cfg.clone(),
                depth: pdepth + 1,
                leaf: Some(LeafModel {
                    q: VecDeque::new(),
                    bytes: 0,
                    base_bytes: 0,
                    base_pkts: 0,
                    sent_bytes: 0,
                    sent_pkts: 0,
                    t_c: 0,
                    lends: 0,
                }),
                extra_bytes: 0,
                extra_pkts: 0,
                ever_inner: false,
            },
        );
        if parent == 0 {
            self.roots.insert(minor);
        } else {
            self.nodes.get_mut(&parent).unwrap().children.insert(minor);
        }
        self.start_leaf_epoch(minor);
        Ok(())
    }

    fn delete(&mut self, minor: u16) -> R {
        let before = self.q.class_stats(cid(minor));
        let res = self.q.delete_class(cid(minor), self.now);
        self.lib_now = self.lib_now.max(self.now);
        let Some(node) = self.nodes.get(&minor) else {
            return ensure(matches!(res, Err(HtbError::UnknownClass(_))), || {
                format!("delete of unknown {}: {res:?}", cid(minor))
            });
        };
        if !node.children.is_empty() {
            return ensure(matches!(res, Err(HtbError::ClassHasChildren(_))), || {
                format!("delete of inner {}: {res:?}", cid(minor))
            });
        }
        let stats = before.ok_or("stats of a known class")?;
        let applied = res.map_err(|e| format!("delete {}: {e}", cid(minor)))?;
        let node = self.nodes.remove(&minor).unwrap();
        self.tracks.remove(&minor);
        self.lends_gone += stats.lends;
        let want: Vec<P> = node.leaf.unwrap().q.into_iter().collect();
        self.expect_dropped(&applied.dropped, want, "delete")?;
        if node.parent == 0 {
            self.roots.remove(&minor);
            self.root_extra_bytes += stats.bytes;
            self.root_extra_pkts += stats.packets;
        } else {
            let pn = self.nodes.get_mut(&node.parent).unwrap();
            pn.children.remove(&minor);
            pn.extra_bytes += stats.bytes;
            pn.extra_pkts += stats.packets;
            if pn.children.is_empty() {
                pn.leaf = Some(LeafModel {
                    q: VecDeque::new(),
                    bytes: 0,
                    base_bytes: 0,
                    base_pkts: 0,
                    sent_bytes: 0,
                    sent_pkts: 0,
                    t_c: 0,
                    lends: 0,
                });
                pn.extra_bytes = 0;
                pn.extra_pkts = 0;
                self.start_leaf_epoch(node.parent);
            }
        }
        Ok(())
    }

    fn change(&mut self, minor: u16, cfg: &ClassConfig) -> R {
        let res = self.q.change_class(cid(minor), cfg);
        let Some(node) = self.nodes.get_mut(&minor) else {
            return ensure(matches!(res, Err(HtbError::UnknownClass(_))), || {
                format!("change of unknown {}: {res:?}", cid(minor))
            });
        };
        let applied = res.map_err(|e| format!("change {}: {e}", cid(minor)))?;
        ensure(applied.dropped.is_empty(), || {
            "change dropped packets".into()
        })?;
        node.cfg = cfg.clone();
        self.restart_tracks(minor);
        Ok(())
    }

    fn reset(&mut self) -> R {
        let got = self.q.reset();
        let mut want: Vec<P> = self.direct.drain(..).collect();
        for n in self.nodes.values_mut() {
            if let Some(l) = n.leaf.as_mut() {
                want.extend(l.q.drain(..));
                l.bytes = 0;
            }
        }
        self.expect_dropped(&got, want, "reset")?;
        ensure(self.q.next_wakeup().is_none(), || {
            "next_wakeup after reset".into()
        })?;
        let all: Vec<u16> = self.nodes.keys().copied().collect();
        for m in all {
            self.restart_tracks(m);
        }
        Ok(())
    }

    // -- data path ----------------------------------------------------------

    /// Where the model says a packet for `raw` lands: `Some(minor)` of a
    /// leaf, `Some(0)` for the direct queue.
    fn classify(&self, raw: ClassId) -> u16 {
        if raw == ClassId::new(MAJOR, 0) {
            return 0;
        }
        if raw.major() == MAJOR
            && let Some(n) = self.nodes.get(&raw.minor())
            && n.leaf.is_some()
        {
            return raw.minor();
        }
        match self.nodes.get(&self.spec.default_class) {
            Some(n) if n.leaf.is_some() => self.spec.default_class,
            _ => 0,
        }
    }

    fn enqueue(&mut self, raw: ClassId, len: u32) -> R {
        let p = P {
            id: self.next_id,
            len,
        };
        self.next_id += 1;
        let dest = self.classify(raw);
        let res = self.q.enqueue(p, raw);
        let accept = if dest == 0 {
            self.direct.len() < self.spec.direct_qlen
        } else {
            let l = self.nodes[&dest].leaf.as_ref().unwrap();
            l.q.len() < self.spec.leaf_limit
                && self
                    .spec
                    .leaf_byte_limit
                    .is_none_or(|b| l.bytes + len as u64 <= b)
        };
        match res {
            Ok(()) => {
                ensure(accept, || {
                    format!("enqueue of {p:?} to {raw} accepted; model expected a drop")
                })?;
                self.in_ok += 1;
                self.loc.insert(p.id, dest);
                if dest == 0 {
                    self.direct.push_back(p);
                    self.direct_in += 1;
                } else {
                    let l = self.nodes.get_mut(&dest).unwrap().leaf.as_mut().unwrap();
                    l.q.push_back(p);
                    l.bytes += len as u64;
                }
            }
            Err(d) => {
                ensure(!accept && d.packet == p, || {
                    format!(
                        "enqueue of {p:?} to {raw} refused ({:?}); model expected it queued",
                        d.reason
                    )
                })?;
                self.drops += 1;
                self.refused += 1;
            }
        }
        Ok(())
    }

    /// One `dequeue` at `self.now - back`; returns whether a packet came.
    fn dequeue_once(&mut self, back: u64) -> Result<bool, String> {
        let t = self.now.saturating_sub(back);
        if self.direct.is_empty() && !self.loc.is_empty() {
            self.lib_now = self.lib_now.max(t);
        }
        let budget_outs = self.q.stats().too_many_events;
        let Some(p) = self.q.dequeue(t) else {
            if self.checks.progress && !self.q.is_empty() {
                let w = self.q.next_wakeup();
                ensure(w.is_some_and(|w| w >= self.lib_now), || {
                    format!(
                        "dequeue(None) at {} with {} queued: next_wakeup = {w:?}",
                        self.lib_now,
                        self.q.len()
                    )
                })?;
                if self.idle_since.is_none() {
                    self.idle_since = Some(self.lib_now);
                }
                if w != Some(self.lib_now) {
                    self.check_no_green_leaf_idles(None)?;
                }
            }
            if self.checks.conservation {
                ensure(self.direct.is_empty(), || {
                    "dequeue returned None with the direct queue non-empty".into()
                })?;
            }
            return Ok(false);
        };
        let Some(at) = self.loc.remove(&p.id) else {
            return Err(format!(
                "dequeued {p:?}, which is not queued (duplicate or phantom)"
            ));
        };
        self.out_pkts += 1;
        self.out_bytes += p.len as u64;
        self.idle_wakeups = 0;
        self.idle_since = None;
        let t = self.lib_now;
        if at == 0 {
            let head = self.direct.pop_front();
            ensure(head == Some(p), || {
                format!("direct queue out of order: got {p:?}, head {head:?}")
            })?;
            self.direct_out_bytes += p.len as u64;
            self.direct_out_pkts += 1;
        } else {
            ensure(self.direct.is_empty(), || {
                format!("{p:?} from {} overtook the direct queue", cid(at))
            })?;
            let lends = self.q.class_stats(cid(at)).ok_or("leaf vanished")?.lends;
            let l = self.nodes.get_mut(&at).unwrap().leaf.as_mut().unwrap();
            let head = l.q.pop_front();
            ensure(head == Some(p), || {
                format!("leaf {} out of order: got {p:?}, head {head:?}", cid(at))
            })?;
            l.bytes -= p.len as u64;
            l.t_c = t;
            l.sent_bytes += p.len as u64;
            l.sent_pkts += 1;
            let borrowed = lends == l.lends;
            l.lends = lends;
            // Property 5: level 0 first. A packet lent above level 0 while
            // another backlogged leaf is provably green means that leaf
            // was skipped (unless the events budget ran out just now).
            if self.checks.progress && borrowed && self.q.stats().too_many_events == budget_outs {
                self.check_no_green_leaf_idles(Some(at))
                    .map_err(|e| format!("{p:?} of {} went out borrowed: {e}", cid(at)))?;
            }
            if self.checks.ceil {
                self.track_packet(at, p.len, t)?;
            }
            if let Some(f) = self.on_sent.as_mut() {
                f(at, &p, t);
            }
        }
        Ok(true)
    }

    /// Property 5, no oversleeping and level 0 first: after a `None`, and
    /// after a packet that went out on borrowed bandwidth (both when no
    /// events budget ran out), no other backlogged leaf may be green. A leaf's
    /// buckets only change when it sends, so from its reported `tokens` /
    /// `ctokens` (ns >> 6, so `ticks*64` is a lower bound) and its last
    /// update `t_c`, `ticks*64 + min(now - t_c, 60 s) >= 0` for both buckets
    /// proves it CAN_SEND now (also with hysteresis: leaving MAY_BORROW or
    /// CANT_SEND needs exactly these), and a CAN_SEND leaf is in row 0,
    /// which a `dequeue` serves before any level above (a leaf whose wake-up
    /// time has come is re-coloured by that same `dequeue` first).
    fn check_no_green_leaf_idles(&self, except: Option<u16>) -> R {
        for (&m, n) in &self.nodes {
            let Some(l) = &n.leaf else { continue };
            if l.q.is_empty() || except == Some(m) {
                continue;
            }
            let s = self.q.class_stats(cid(m)).ok_or("leaf vanished")?;
            let e = (self.lib_now - l.t_c).min(60 * SEC) as i64;
            let tok = ((s.tokens as i64) << 6) + e;
            let ctok = ((s.ctokens as i64) << 6) + e;
            ensure(tok < 0 || ctok < 0, || {
                format!(
                    "at dequeue({}) (next_wakeup {:?}) backlogged leaf {} is green but was not \
                     served: tokens >= {tok} ns, ctokens >= {ctok} ns (last update at {})",
                    self.lib_now,
                    self.q.next_wakeup(),
                    cid(m),
                    l.t_c
                )
            })?;
        }
        Ok(())
    }

    fn drain(&mut self) -> R {
        let mut guard = 0u64;
        while self.dequeue_once(0)? {
            guard += 1;
            ensure(guard < 1_000_000, || "drain does not end".into())?;
            self.step_checks()?;
        }
        self.step_checks()
    }

    /// Jumps to the wake-up time; returns false when past `until`.
    fn wake(&mut self, until: u64) -> Result<bool, String> {
        let Some(w) = self.q.next_wakeup() else {
            return Err(format!(
                "no wake-up time with {} packets queued",
                self.q.len()
            ));
        };
        if w > until {
            return Ok(false);
        }
        // Property 5: nothing may come out before the wake-up time.
        if self.checks.progress && w > self.lib_now + 1 && self.next_id % 3 == 0 {
            let mid = self.lib_now + (w - self.lib_now) / 2;
            self.now = self.now.max(mid);
            self.lib_now = mid;
            let got = self.q.dequeue(mid);
            ensure(got.is_none(), || {
                format!("a packet came out at {mid}, before the announced wake-up {w}: {got:?}")
            })?;
            ensure(self.q.next_wakeup() == Some(w), || {
                format!(
                    "wake-up moved from {w} to {:?} by an idle dequeue at {mid}",
                    self.q.next_wakeup()
                )
            })?;
        }
        self.now = self.now.max(w);
        self.idle_wakeups += 1;
        // The stall bound is also the harness's own liveness guard.
        {
            let since = self.idle_since.unwrap_or(self.lib_now);
            let n = self.nodes.len() as u64;
            let secs = (w - since) / SEC;
            let bound = 4 * n + 32 + 16 * secs;
            ensure(self.idle_wakeups <= bound, || {
                format!(
                    "stall: {} wake-ups without a packet ({} queued, now {w}, idle since {since})",
                    self.idle_wakeups,
                    self.q.len(),
                )
            })?;
            ensure(w - since <= 70 * SEC, || {
                format!(
                    "stall: no packet for {} ns with {} queued",
                    w - since,
                    self.q.len()
                )
            })?;
        }
        Ok(true)
    }

    /// Dequeue at wire speed, jumping to wake-ups, until `until`.
    fn run_until(&mut self, until: u64, link: Option<u64>) -> R {
        let mut guard = 0u64;
        loop {
            guard += 1;
            ensure(guard < 2_000_000, || "run_until does not end".into())?;
            if self.q.is_empty() {
                break;
            }
            if self.dequeue_once(0)? {
                if let Some(rate) = link {
                    // Not exact lengths; the link just keeps time moving.
                    self.now += (1514 * SEC / rate.max(1)).max(1);
                    if self.now > until {
                        break;
                    }
                }
                self.step_checks()?;
                continue;
            }
            self.step_checks()?;
            if !self.wake(until)? {
                break;
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Drains everything by waking up as told (property 5's final phase).
    fn drain_all(&mut self) -> R {
        self.idle_wakeups = 0;
        self.idle_since = None;
        let mut guard = 0u64;
        while !self.q.is_empty() {
            guard += 1;
            ensure(guard < 2_000_000, || "drain_all does not end".into())?;
            if !self.dequeue_once(0)? {
                self.step_checks()?;
                self.wake(u64::MAX)?;
            }
        }
        self.step_checks()?;
        ensure(self.loc.is_empty(), || {
            format!("queue empty but the model still holds {:?}", self.loc)
        })
    }

    // -- checks -------------------------------------------------------------

    fn step_checks(&mut self) -> R {
        self.steps += 1;
        if self.steps % self.check_every.div_ceil(4) == 0 {
            self.q.check_invariants();
        }
        if self.steps % self.check_every != 0 {
            return Ok(());
        }
        if self.checks.conservation {
            self.check_conservation()?;
        }
        if self.checks.sums {
            self.check_sums()?;
        }
        Ok(())
    }

    fn check_conservation(&self) -> R {
        let s = self.q.stats();
        let queued = self.loc.len() as u64;
        ensure(self.in_ok + self.refused == self.next_id - 1, || {
            "harness bookkeeping".into()
        })?;
        ensure(self.in_ok == self.out_pkts + self.purged + queued, || {
            format!(
                "accepted {} != dequeued {} + handed back {} + queued {queued}",
                self.in_ok, self.out_pkts, self.purged
            )
        })?;
        ensure(self.q.len() as u64 == queued, || {
            format!("len() = {}, model {}", self.q.len(), queued)
        })?;
        let backlog: u64 = self.direct.iter().map(|p| p.len as u64).sum::<u64>()
            + self
                .nodes
                .values()
                .filter_map(|n| n.leaf.as_ref())
                .map(|l| l.bytes)
                .sum::<u64>();
        ensure(s.qlen == queued && s.backlog == backlog, || {
            format!(
                "qdisc qlen/backlog {}/{}, model {queued}/{backlog}",
                s.qlen, s.backlog
            )
        })?;
        ensure(
            s.packets == self.out_pkts && s.bytes == self.out_bytes,
            || {
                format!(
                    "qdisc sent {} pkts / {} B, harness received {} / {}",
                    s.packets, s.bytes, self.out_pkts, self.out_bytes
                )
            },
        )?;
        ensure(s.drops == self.drops, || {
            format!("qdisc drops {}, model {}", s.drops, self.drops)
        })?;
        ensure(s.direct_packets == self.direct_in, || {
            format!(
                "direct_packets {}, model {}",
                s.direct_packets, self.direct_in
            )
        })?;
        for (&m, n) in &self.nodes {
            let cs = self
                .q
                .class_stats(cid(m))
                .ok_or_else(|| format!("{} vanished", cid(m)))?;
            if let Some(l) = &n.leaf {
                ensure(cs.qlen == l.q.len() as u64 && cs.backlog == l.bytes, || {
                    format!(
                        "leaf {} qlen/backlog {}/{}, model {}/{}",
                        cid(m),
                        cs.qlen,
                        cs.backlog,
                        l.q.len(),
                        l.bytes
                    )
                })?;
                ensure(
                    cs.bytes - l.base_bytes == l.sent_bytes
                        && cs.packets - l.base_pkts == l.sent_pkts,
                    || {
                        format!(
                            "leaf {} sent {} B / {} pkts since it became a leaf, harness saw {} / {}",
                            cid(m),
                            cs.bytes - l.base_bytes,
                            cs.packets - l.base_pkts,
                            l.sent_bytes,
                            l.sent_pkts
                        )
                    },
                )?;
            }
        }
        // The tree the scheduler reports is the model's tree.
        let infos = self.q.classes();
        ensure(infos.len() == self.nodes.len(), || {
            format!("{} classes, model {}", infos.len(), self.nodes.len())
        })?;
        for i in &infos {
            let n = self
                .nodes
                .get(&i.id.minor())
                .ok_or_else(|| format!("unknown class {} listed", i.id))?;
            let parent = i.parent.map(|p| p.minor()).unwrap_or(0);
            let level = if n.leaf.is_some() { 0 } else { 8 - n.depth };
            ensure(
                parent == n.parent && i.is_leaf == n.leaf.is_some() && i.level == level,
                || {
                    format!(
                        "class {}: parent {parent:x} leaf {} level {}; model parent {:x} leaf {} level {level}",
                        i.id,
                        i.is_leaf,
                        i.level,
                        n.parent,
                        n.leaf.is_some()
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Property 3.
    fn check_sums(&self) -> R {
        let infos = self.q.classes();
        let by_id: HashMap<u16, &htb::ClassInfo> =
            infos.iter().map(|i| (i.id.minor(), i)).collect();
        let mut lends = self.lends_gone;
        for i in &infos {
            lends += i.stats.lends;
            let n = &self.nodes[&i.id.minor()];
            if n.leaf.is_some() {
                ensure(
                    n.ever_inner || i.stats.lends + i.stats.borrows == i.stats.packets,
                    || {
                        format!(
                            "leaf {}: lends {} + borrows {} != packets {}",
                            i.id, i.stats.lends, i.stats.borrows, i.stats.packets
                        )
                    },
                )?;
                continue;
            }
            let (mut b, mut p) = (n.extra_bytes, n.extra_pkts);
            for c in &n.children {
                b += by_id[c].stats.bytes;
                p += by_id[c].stats.packets;
            }
            ensure(i.stats.bytes == b && i.stats.packets == p, || {
                format!(
                    "inner {}: {} B / {} pkts, children (+ deleted/own past) {} B / {} pkts",
                    i.id, i.stats.bytes, i.stats.packets, b, p
                )
            })?;
        }
        let s = self.q.stats();
        let top: u64 = self.roots.iter().map(|m| by_id[m].stats.bytes).sum();
        let top_p: u64 = self.roots.iter().map(|m| by_id[m].stats.packets).sum();
        ensure(
            s.bytes == top + self.direct_out_bytes + self.root_extra_bytes
                && s.packets == top_p + self.direct_out_pkts + self.root_extra_pkts,
            || {
                format!(
                    "qdisc {} B / {} pkts != top-level {top} / {top_p} + direct {} / {} + deleted {} / {}",
                    s.bytes,
                    s.packets,
                    self.direct_out_bytes,
                    self.direct_out_pkts,
                    self.root_extra_bytes,
                    self.root_extra_pkts
                )
            },
        )?;
        // Exactly one class on the path lends for each shaped packet.
        let shaped = s.packets - self.direct_out_pkts;
        ensure(lends == shaped, || {
            format!("sum of lends {lends} != shaped packets {shaped}")
        })
    }

    // -- scenario ----------------------------------------------------------

    fn build_tree(&mut self, classes: &[Cls]) -> R {
        for c in classes {
            // Skip classes whose parent was shrunk away.
            if c.parent != 0 && !self.nodes.contains_key(&c.parent) {
                continue;
            }
            self.add(c.minor, c.parent, &c.cfg)?;
            self.step_checks()?;
        }
        Ok(())
    }

    fn pick(list: &[u16], k: u8) -> Option<u16> {
        if list.is_empty() {
            None
        } else {
            Some(list[k as usize % list.len()])
        }
    }

    fn apply(&mut self, ev: &Ev) -> R {
        if !matches!(ev, Ev::RunUntil(_) | Ev::RunLink { .. }) {
            self.idle_wakeups = 0;
            self.idle_since = None;
        }
        match ev {
            Ev::Enqueue { to, lens } => {
                let raw = match to {
                    Target::Leaf(k) => Self::pick(&self.leaves(), *k).map(cid),
                    Target::Inner(k) => Self::pick(&self.inners(), *k).map(cid),
                    Target::Unknown(m) => Some(cid(*m)),
                    Target::Zero => Some(ClassId::from_raw(0)),
                    Target::Handle => Some(ClassId::new(MAJOR, 0)),
                    Target::OtherMajor => Some(ClassId::new(MAJOR + 1, 1)),
                }
                .unwrap_or(ClassId::from_raw(0));
                for &l in lens {
                    self.enqueue(raw, l)?;
                }
            }
            Ev::Advance(d) => self.now += d,
            Ev::Drain => self.drain()?,
            Ev::Dequeue { n, back } => {
                for _ in 0..*n {
                    if !self.dequeue_once(*back)? {
                        break;
                    }
                    self.step_checks()?;
                }
            }
            Ev::RunUntil(h) => self.run_until(self.now + h, None)?,
            Ev::RunLink { horizon, rate } => self.run_until(self.now + horizon, Some(*rate))?,
            Ev::Add { parent, minor, cfg } => {
                let p = match parent {
                    ParentSel::Leaf(k) => Self::pick(&self.leaves(), *k),
                    ParentSel::Inner(k) => Self::pick(&self.inners(), *k),
                    ParentSel::Root => None,
                }
                .unwrap_or(0);
                self.add(*minor, p, cfg)?;
            }
            Ev::DeleteLeaf(k) => {
                if let Some(m) = Self::pick(&self.leaves(), *k) {
                    self.delete(m)?;
                } else {
                    self.delete(0x3ff)?;
                }
            }
            Ev::DeleteInner(k) => {
                if let Some(m) = Self::pick(&self.inners(), *k) {
                    self.delete(m)?;
                }
            }
            Ev::Change { k, cfg } => {
                let all: Vec<u16> = self.nodes.keys().copied().collect();
                if let Some(m) = Self::pick(&all, *k) {
                    self.change(m, cfg)?;
                }
            }
            Ev::Reset => self.reset()?,
            Ev::SetDefault(m) => {
                self.q.set_default_class(*m);
                self.spec.default_class = *m;
            }
        }
        self.step_checks()
    }

    fn run(sc: &Scenario, checks: Checks) -> R {
        let mut h = Harness::new(&sc.q, checks);
        h.build_tree(&sc.classes)?;
        for (i, ev) in sc.events.iter().enumerate() {
            h.apply(ev)
                .map_err(|e| format!("event #{i} {ev:?} at t={}: {e}", h.now))?;
        }
        h.drain_all()
            .map_err(|e| format!("final drain at t={}: {e}", h.now))?;
        h.report("script");
        Ok(())
    }

    fn report(&self, what: &str) {
        if std::env::var("HTB_PROP_VERBOSE").is_ok() {
            let tight = self
                .tracks
                .values()
                .map(|c| c.ceil.tight.max(c.rate.tight))
                .fold(0.0, f64::max);
            eprintln!(
                "{what}: classes {} pkts in {} out {} drops {} t={:.3}s ceil-tightness {tight:.4}",
                self.nodes.len(),
                self.in_ok,
                self.out_pkts,
                self.drops,
                self.now as f64 / 1e9
            );
        }
    }
}

// ----------------------------------------------------------------------
// Backlogged runs (properties 2 and 4)
// ----------------------------------------------------------------------

/// A tree where every leaf is kept backlogged for `duration` ns.
#[derive(Clone, Debug)]
struct Backlogged {
    q: QSpec,
    classes: Vec<Cls>,
    /// Packet length range per leaf minor.
    lens: Vec<(u16, u32, u32)>,
    duration: u64,
    warmup: u64,
    /// Per-leaf start offsets (ns), so equal rates do not phase-lock.
    starts: Vec<(u16, u64)>,
}

/// Backlogged, with a guarantee-covered tree: each inner class's rate is at
/// least the sum of its children's rates, every ceil is at least the rate.
#[derive(Clone, Debug)]
struct Covered(Backlogged);

/// Backlogged, on an arbitrary (wild) tree.
#[derive(Clone, Debug)]
struct Loaded(Backlogged);

fn is_leaf(classes: &[Cls], m: u16) -> bool {
    classes.iter().all(|c| c.parent != m)
}

/// An upper estimate of the total throughput, to size the run: green
/// leaves send at most their rate, and each inner class lends at most its
/// rate (and no leaf exceeds its ceil).
fn rough_total(classes: &[Cls]) -> u64 {
    let leaves: Vec<&Cls> = classes
        .iter()
        .filter(|c| is_leaf(classes, c.minor))
        .collect();
    let leaf_rates: u64 = leaves.iter().map(|c| c.cfg.rate).sum();
    let inner_rates: u64 = classes
        .iter()
        .filter(|c| !is_leaf(classes, c.minor))
        .map(|c| c.cfg.rate)
        .sum();
    let ceils: u64 = leaves
        .iter()
        .map(|c| c.cfg.effective_ceil().max(c.cfg.rate))
        .sum();
    (leaf_rates + inner_rates).min(ceils).max(MIN_RATE)
}

/// A backlogged run of about `packets` packets in total.
fn gen_backlogged(g: &mut Gen, classes: Vec<Cls>, q: QSpec, packets: u64) -> Backlogged {
    let mut lens = Vec::new();
    let mut starts = Vec::new();
    for c in &classes {
        if is_leaf(&classes, c.minor) {
            let a = range(g, 64, 1514) as u32;
            let b = if chance(g, 50) {
                a
            } else {
                range(g, a as u64, 1514) as u32
            };
            lens.push((c.minor, a, b));
            starts.push((c.minor, below(g, MS)));
        }
    }
    let total = rough_total(&classes);
    let avg_len = lens
        .iter()
        .map(|&(_, a, b)| (a + b) as u64 / 2)
        .min()
        .unwrap_or(800);
    let duration = (packets * avg_len * SEC / total).clamp(5 * MS, 2 * SEC);
    Backlogged {
        q,
        classes,
        lens,
        duration,
        warmup: duration / 5,
        starts,
    }
}

impl Arbitrary for Loaded {
    fn arbitrary(g: &mut Gen) -> Self {
        let classes = gen_classes(g, 16);
        let minors: Vec<u16> = classes.iter().map(|c| c.minor).collect();
        let mut q = QSpec::generate(g, &minors);
        q.leaf_limit = 1000;
        q.leaf_byte_limit = None;
        Loaded(gen_backlogged(g, classes, q, 1500))
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrunk().into_iter().map(Loaded))
    }
}

impl Arbitrary for Covered {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 1, 16) as usize;
        let shape = gen_shape(g, n);
        // Leaf rates within a factor 10 of a per-case base, so the slowest
        // leaf sends enough packets to measure within the packet budget.
        let base = log_uniform(g, MIN_RATE, MAX_RATE / 10);
        let mut rate: HashMap<u16, u64> = HashMap::new();
        // Bottom-up: children first.
        for &(m, _) in shape.iter().rev() {
            let kids: Vec<u16> = shape.iter().filter(|c| c.1 == m).map(|c| c.0).collect();
            let r = if kids.is_empty() {
                log_uniform(g, base, base * 10)
            } else {
                let sum: u64 = kids.iter().map(|k| rate[k]).sum();
                sum + sum * below(g, 50) / 100
            };
            rate.insert(m, r);
        }
        let classes: Vec<Cls> = shape
            .iter()
            .map(|&(m, p)| {
                let mut cfg = gen_cfg(g, rate[&m], CfgKind::Sane);
                if cfg.effective_ceil() < cfg.rate {
                    let r = cfg.rate;
                    cfg = cfg.ceil(r);
                }
                Cls {
                    minor: m,
                    parent: p,
                    cfg,
                }
            })
            .collect();
        let mut q = QSpec::generate(g, &[]);
        q.leaf_limit = 1000;
        q.leaf_byte_limit = None;
        q.default_class = 0;
        Covered(gen_backlogged(g, classes, q, 1500))
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrunk().into_iter().map(Covered))
    }
}

impl Backlogged {
    fn shrunk(&self) -> Vec<Backlogged> {
        let mut out = Vec::new();
        for q in self.q.shrunk() {
            out.push(Backlogged { q, ..self.clone() });
        }
        if self.duration > 100 * MS {
            out.push(Backlogged {
                duration: self.duration / 2,
                warmup: self.warmup / 2,
                ..self.clone()
            });
        }
        out
    }

    /// Runs with every leaf kept at `depth` queued packets; calls
    /// `sent(minor, len, t)` for each packet. Returns the harness.
    fn run(
        &self,
        checks: Checks,
        sent: impl FnMut(u16, &P, u64) + 'static,
    ) -> Result<Harness, String> {
        let mut h = Harness::new(&self.q, checks);
        h.build_tree(&self.classes)?;
        h.on_sent = Some(Box::new(sent));
        h.check_every = 16;
        let depth = 4usize;
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ self.duration;
        let mut next_len = |lo: u32, hi: u32| -> u32 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + ((rng >> 33) % (hi - lo + 1) as u64) as u32
        };
        let starts: HashMap<u16, u64> = self.starts.iter().copied().collect();
        let mut guard = 0u64;
        loop {
            // Top up every started leaf.
            for &(m, lo, hi) in &self.lens {
                if starts[&m] > h.now {
                    continue;
                }
                while h.nodes[&m].leaf.as_ref().unwrap().q.len() < depth {
                    h.enqueue(cid(m), next_len(lo, hi))?;
                }
            }
            guard += 1;
            ensure(guard < 400_000, || "backlogged run does not end".into())?;
            if h.dequeue_once(0)? {
                h.step_checks()?;
                continue;
            }
            h.step_checks()?;
            let next_start = starts.values().copied().filter(|&s| s > h.now).min();
            let wake = h.q.next_wakeup();
            let t = match (wake, next_start) {
                (Some(w), Some(s)) => w.min(s),
                (Some(w), None) => w,
                (None, Some(s)) => s,
                (None, None) => break,
            };
            if t > self.duration {
                break;
            }
            if Some(t) == wake {
                if !h.wake(self.duration)? {
                    break;
                }
            } else {
                h.now = t;
            }
        }
        h.now = h.now.max(self.duration);
        Ok(h)
    }
}

// ----------------------------------------------------------------------
// Running the properties
// ----------------------------------------------------------------------

fn seed(prop: u64) -> u64 {
    let base = match std::env::var("HTB_PROP_SEED") {
        Ok(s) if s == "random" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        Ok(s) => s.parse().unwrap_or(0x5eed),
        Err(_) => 0x5eed,
    };
    println!("HTB_PROP_SEED={base} (property {prop})");
    base.wrapping_add(prop.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn qc(prop: u64) -> QuickCheck {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let size = std::env::var("QUICKCHECK_GENERATOR_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    QuickCheck::new()
        .tests(tests)
        .max_tests(tests * 10)
        .rng(Gen::from_size_and_seed(size, seed(prop)))
}

fn verdict(r: R) -> TestResult {
    match r {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

/// Property 1: conservation, exact drop decisions, FIFO, exact counters,
/// `check_invariants` after every step.
#[test]
fn prop1_conservation() {
    fn prop(sc: Scenario) -> TestResult {
        let checks = Checks {
            conservation: true,
            ..Checks::default()
        };
        verdict(Harness::run(&sc, checks))
    }
    qc(1).quickcheck(prop as fn(Scenario) -> TestResult);
}

/// Property 2 on the random scripts: every leaf's ceil (and every class's
/// rate and ceil bucket), every window.
#[test]
fn prop2_ceil_conformance_scripts() {
    fn prop(sc: Scenario) -> TestResult {
        let checks = Checks {
            ceil: true,
            ..Checks::default()
        };
        verdict(Harness::run(&sc, checks))
    }
    qc(2).quickcheck(prop as fn(Scenario) -> TestResult);
}

/// Property 2 under sustained load (all leaves backlogged, wild trees).
#[test]
fn prop2_ceil_conformance_backlogged() {
    fn prop(b: Loaded) -> TestResult {
        let checks = Checks {
            ceil: true,
            ..Checks::default()
        };
        verdict(b.0.run(checks, |_, _, _| {}).map(|h| h.report("loaded")))
    }
    qc(22).quickcheck(prop as fn(Loaded) -> TestResult);
}

/// Property 3: hierarchical byte/packet sums and one lender per packet.
#[test]
fn prop3_hierarchical_sums() {
    fn prop(sc: Scenario) -> TestResult {
        let checks = Checks {
            sums: true,
            ..Checks::default()
        };
        verdict(Harness::run(&sc, checks))
    }
    qc(3).quickcheck(prop as fn(Scenario) -> TestResult);
}

/// Property 4: the guarantee.
///
/// Premise: every inner class's rate is at least the sum of its children's
/// rates, every ceil is at least the rate (leaf rates within 10x of each
/// other so the slowest leaf sends enough in ~1500 packets), every leaf
/// backlogged from a random start in the first 1 ms, and `dequeue` called
/// until `None` at each wake-up (an infinitely fast link).
///
/// **The bound.** Over the window `[warmup + 1 ms, end]` of length `T`, a
/// leaf of rate `r` sends at least
///
/// `r*T - 2*maxpkt - [red or hysteresis]*(r*b + r*cb) - [hysteresis]*r*b`
///
/// bytes, with `b`/`cb` its rate/ceil bucket depths in seconds (so `r*b` is
/// its burst), "red" = it ever went CANT_SEND (`overlimits > 0`). Why:
/// rate tokens are only lost to the clamp, which needs a non-negative bucket
/// while not sending; a green leaf is served at once (level 0 comes first and
/// its wake-up is exact), a yellow one has a negative bucket, so only a red
/// leaf (ceil bucket empty, sending at `ceil >= r`) can lose them. Without
/// loss, lent bytes >= `r*(T - cost)`: the bucket starts the window >= -one
/// packet (>= -b - one packet with hysteresis) and ends it < 0. The 2nd
/// packet is slack. The ancestors' cover is what makes the guarantee hold on
/// a real link; with an infinitely fast one a green leaf is served whatever
/// its ancestors, so here the cover is only part of the premise. The bound
/// is tight: the closest leaves reach it within 0.1 %.
#[test]
fn prop4_guarantee() {
    fn prop(c: Covered) -> TestResult {
        verdict(check_guarantee(&c.0))
    }
    qc(4).quickcheck(prop as fn(Covered) -> TestResult);
}

fn check_guarantee(b: &Backlogged) -> R {
    use std::cell::RefCell;
    use std::rc::Rc;
    // Bytes per leaf sent in the window, and the max packet.
    let window_start = b.warmup + MS;
    let acc: Rc<RefCell<HashMap<u16, (u64, u32)>>> = Rc::default();
    let acc2 = acc.clone();
    let checks = Checks {
        ceil: true,
        progress: true,
        ..Checks::default()
    };
    let h = b.run(checks, move |m, p, t| {
        if t >= window_start {
            let mut a = acc2.borrow_mut();
            let e = a.entry(m).or_default();
            e.0 += p.len as u64;
            e.1 = e.1.max(p.len);
        }
    })?;
    let t = (b.duration - window_start) as f64 / 1e9;
    h.report("guarantee");
    let acc = acc.borrow();
    for &(m, _, hi) in &b.lens {
        let info = h.q.class_info(cid(m)).unwrap();
        let r = info.rate as f64;
        // The rate bucket and the ceil bucket, in bytes at the guaranteed rate.
        let rburst = r * ((info.buffer_ticks as u64) << 6) as f64 / 1e9;
        let cburst_at_r = r * ((info.cbuffer_ticks as u64) << 6) as f64 / 1e9;
        let hyst = b.q.hysteresis;
        let was_red = info.stats.overlimits > 0;
        let mut need = r * t - 2.0 * hi as f64;
        if hyst || was_red {
            need -= rburst + cburst_at_r;
        }
        if hyst {
            need -= rburst;
        }
        let got = acc.get(&m).map(|e| e.0).unwrap_or(0) as f64;
        if std::env::var("HTB_PROP_VERBOSE").is_ok() {
            eprintln!(
                "  leaf {m:x}: got/(r*t) = {:.4}, got/need = {:.4}, r*t = {:.0}",
                got / (r * t),
                got / need,
                r * t
            );
        }
        ensure(got >= need, || {
            format!(
                "leaf {}: sent {got} B in {t:.4} s, guaranteed rate {r} B/s needs >= {need:.0} B \
                 (rate burst {rburst:.0} B, ceil burst {cburst_at_r:.0} B at rate, hysteresis {hyst}, \
                 overlimits {}); got {:.4} of rate",
                cid(m),
                info.stats.overlimits,
                got / (r * t)
            )
        })?;
    }
    Ok(())
}

/// Property 5: wake-ups, no early packets, and no stall until empty.
#[test]
fn prop5_next_wakeup_progress() {
    fn prop(sc: Scenario) -> TestResult {
        let checks = Checks {
            progress: true,
            conservation: true,
            ..Checks::default()
        };
        verdict(Harness::run(&sc, checks))
    }
    qc(5).quickcheck(prop as fn(Scenario) -> TestResult);
}

/// Property 5 under sustained load (wild trees, much borrowing): also checks
/// that nothing is lent above level 0 while a backlogged leaf is green.
#[test]
fn prop5_next_wakeup_progress_backlogged() {
    fn prop(b: Loaded) -> TestResult {
        let checks = Checks {
            progress: true,
            ..Checks::default()
        };
        verdict(b.0.run(checks, |_, _, _| {}).map(|h| h.report("loaded")))
    }
    qc(55).quickcheck(prop as fn(Loaded) -> TestResult);
}

/// Everything at once, on the random scripts (cheap extra coverage).
#[test]
fn all_properties_together() {
    fn prop(sc: Scenario) -> TestResult {
        verdict(Harness::run(&sc, Checks::all()))
    }
    qc(6).quickcheck(prop as fn(Scenario) -> TestResult);
}
