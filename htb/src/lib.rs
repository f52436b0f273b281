//! # htb — the Linux HTB traffic shaper as an embeddable library
//!
//! This crate reproduces `sch_htb` (Linux 6.18) and the way `tc` configures
//! it: the same rate/ceil/burst/quantum arithmetic, the same borrowing, the
//! same priorities and round robin, the same statistics — without a kernel,
//! without a clock and without threads. Time is an input: you pass `now` (in
//! nanoseconds) to every call that needs it, so runs are deterministic.
//!
//! ```
//! use htb::{ClassConfig, ClassId, Htb, QdiscConfig, rate::parse_rate};
//!
//! // tc qdisc add dev X root handle 1: htb default 20
//! let mut q: Htb<Vec<u8>> = Htb::new(QdiscConfig::new(1).default_class(0x20));
//! let root = ClassId::new(1, 0);
//! let top: ClassId = "1:1".parse().unwrap();
//! // tc class add dev X parent 1: classid 1:1 htb rate 30mbit
//! q.add_class(top, root, &ClassConfig::new(parse_rate("30mbit").unwrap()), 0).unwrap();
//! // tc class add dev X parent 1:1 classid 1:10 htb rate 5mbit ceil 30mbit
//! let cfg = ClassConfig::new(parse_rate("5mbit").unwrap()).ceil(parse_rate("30mbit").unwrap());
//! q.add_class("1:10".parse().unwrap(), top, &cfg, 0).unwrap();
//! let cfg = ClassConfig::new(parse_rate("10mbit").unwrap()).ceil(parse_rate("30mbit").unwrap());
//! q.add_class("1:20".parse().unwrap(), top, &cfg, 0).unwrap();
//!
//! // The caller classifies (like skb->priority); 0 means "unclassified" and
//! // lands in the default class 1:20.
//! q.enqueue(vec![0u8; 1042], ClassId::new(1, 0x10)).unwrap();
//! q.enqueue(vec![0u8; 1042], 0).unwrap();
//!
//! let mut now = 0;
//! let mut sent = 0;
//! while sent < 2 {
//!     match q.dequeue(now) {
//!         Some(_pkt) => sent += 1,
//!         None => now = q.next_wakeup().unwrap(),
//!     }
//! }
//! assert_eq!(q.class_stats("1:10".parse().unwrap()).unwrap().packets, 1);
//! assert_eq!(q.class_stats("1:1".parse().unwrap()).unwrap().bytes, 2084);
//! ```
//!
//! ## The HTB picture, and where it lives in the code
//!
//! * **Classes** ([`class`], `sched::Class`) form a tree of up to 8 levels.
//!   Levels are numbered the kernel's way, from the top: a top-level inner
//!   class is level 7, its inner children 6, …, and every leaf is level 0.
//!   Each class has two token buckets kept in *nanoseconds of transmission
//!   time*: `tokens` (refilled at `rate`, depth `buffer`) and `ctokens`
//!   (`ceil`, `cbuffer`). [`rate::RateCfg`] turns a length into nanoseconds
//!   with the kernel's reciprocal multiply, so costs match to the nanosecond.
//! * **Colours** ([`Mode`]): green (CAN_SEND: both buckets ≥ 0), yellow
//!   (MAY_BORROW: ceil bucket ≥ 0, rate bucket < 0), red (CANT_SEND: ceil
//!   bucket < 0). Modes are evaluated lazily: only when a class is charged, or
//!   when its wake time in a wait queue comes.
//! * **Self slots / rows** (`Htb::rows[level][prio]`): a green class with
//!   backlog at prio *p* sits in the row of its level for *p*. Rows are
//!   ordered sets keyed by class minor ([`idset`]).
//! * **Inner feeds** (`Class::feeds[prio]`): a yellow class with backlog
//!   hangs in its parent's feed for its prios; the parent then counts as
//!   active for those prios and is itself linked by its own colour. Feeds are
//!   keyed by the child's rank among its siblings (class-id order).
//! * **Wait queues** (`waitq`): per level, every non-green class with the
//!   time its colour may next change; a near-event cache per level skips the
//!   queue until then, and a per-dequeue events budget bounds the work.
//! * **Dequeue**: direct queue first; then level 0 upwards; within a level
//!   strict prio; within a prio a deficit round robin (deficit per leaf per
//!   level) walking nested feeds in class-id order from the row's cursor. The
//!   leaf found sends one packet, then the leaf and all its ancestors are
//!   charged: ceil everywhere, rate at and above the level it was served
//!   from (`lends` on that class), a free refill below it (`borrows`).
//!
//! `htb/ARCHITECTURE.md` maps each kernel rule to the function that
//! implements it.
//!
//! ## Guarantees
//!
//! * Nothing is lost: every packet handed to [`Htb::enqueue`] is either
//!   returned by [`Htb::dequeue`], handed back at enqueue with a
//!   [`DropReason`], or handed back by the configuration call that removed
//!   its queue ([`Applied::dropped`], [`Htb::reset`]) — and counted. A
//!   custom leaf queue that drops packets it had accepted (an AQM at
//!   dequeue, a head-drop queue) hands them over through
//!   [`LeafQueue::take_dropped`], and the caller gets them from
//!   [`Htb::take_dropped`].
//! * No panics on bad input: configuration calls return [`HtbError`].
//! * No allocation per packet beyond the leaf queue's own storage.

#![deny(missing_docs)]
// `hint` holds the crate's only `unsafe` (a prefetch, a popcnt dispatch and
// a huge-page advice),
// each call with its reason; everything else is refused by the compiler.
#![deny(unsafe_code)]

pub mod class;
pub mod error;
#[cfg(feature = "fib")]
pub mod fib;
#[cfg(feature = "frag")]
pub mod frag;
#[allow(unsafe_code)]
mod hint;
pub mod idset;
pub mod leaf;
pub mod rate;
#[cfg(feature = "reasm")]
pub mod reasm;
pub mod sched;
pub mod sim;
pub mod stats;
pub mod tc;
mod waitq;
#[cfg(any(feature = "reasm", feature = "frag"))]
pub mod wire;

pub use class::{ClassConfig, ClassId, Mode, QuantumWarning};
pub use error::HtbError;
pub use leaf::{DropReason, Fifo, LeafQueue, Packet};
pub use rate::LinkLayer;
pub use sched::{Applied, Classifier, Dropped, Htb, QdiscConfig, Verdict};
pub use stats::{ClassInfo, ClassStats, EstimatorConfig, QdiscStats, RateEstimate};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Levels in a class tree (`TC_HTB_MAXDEPTH`).
pub const MAX_DEPTH: usize = 8;
/// Priorities 0..=7 (`TC_HTB_NUMPRIO`).
pub const NUM_PRIO: usize = 8;
