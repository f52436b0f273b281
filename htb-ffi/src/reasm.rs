//! IP reassembly: the `htb_reasm` handle, its results and events, and the
//! `htb_buffer` that owned datagrams come in.

use std::ffi::{c_char, c_void};

use htb_core::reasm::{
    EventKind, Family, FragDrop, FragKey, Policy, Pushed, ReasmConfig, ReasmError, ReasmStats,
    Reassembler,
};

use crate::error::{check_null, fail, ffi_boundary, htb_status, try_mut, try_ref};
use crate::fib::htb_family;
use crate::text_arg;

/// How overlapping fragments are resolved (`htb_reasm_config.policy`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_reasm_policy {
    /// Today's Linux kernel exactly: runs kept, contained duplicates
    /// ignored, any other overlap discards the datagram.
    Linux = 0,
    /// Existing data always wins.
    First = 1,
    /// New data always wins.
    Last = 2,
    /// New wins iff it starts strictly before the existing fragment.
    Bsd = 3,
    /// New wins iff it ends after (or at the same end and starts no later).
    BsdRight = 4,
    /// Pre-4.19 Linux trimming (the IDS literature's "linux").
    LinuxLegacy = 5,
    /// New wins iff it strictly encloses the existing fragment.
    Windows = 6,
    /// New wins iff it starts before and ends no earlier.
    Solaris = 7,
}

fn policy_of(func: &str, v: u32) -> Result<Policy, htb_status> {
    Policy::ALL
        .into_iter()
        .find(|&p| policy_num(p) == v)
        .ok_or_else(|| {
            fail(
                htb_status::InvalidArgument,
                format_args!("{func}: policy {v} is not one of HTB_REASM_POLICY_*"),
            )
        })
}

fn policy_num(p: Policy) -> u32 {
    (match p {
        Policy::Linux => htb_reasm_policy::Linux,
        Policy::First => htb_reasm_policy::First,
        Policy::Last => htb_reasm_policy::Last,
        Policy::Bsd => htb_reasm_policy::Bsd,
        Policy::BsdRight => htb_reasm_policy::BsdRight,
        Policy::LinuxLegacy => htb_reasm_policy::LinuxLegacy,
        Policy::Windows => htb_reasm_policy::Windows,
        Policy::Solaris => htb_reasm_policy::Solaris,
    }) as u32
}

/// Limits and policy, named after the kernel's sysctls. Fill one with
/// `htb_reasm_config_default` and change what you need (zero is a real value
/// here: `max_dist = 0` turns the check off).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct htb_reasm_config {
    /// One of `HTB_REASM_POLICY_*` (default `HTB_REASM_POLICY_LINUX`).
    pub policy: u32,
    /// `ipfrag_max_dist` (IPv4 only; 0 disables; default 64).
    pub max_dist: u32,
    /// `ipfrag_high_thresh`: bytes held above which new fragments are
    /// refused (default 4 MiB).
    pub high_thresh: usize,
    /// Largest reassembled datagram, bytes (default 65535): IPv4 the whole
    /// datagram, IPv6 its payload (after the 40-byte header).
    pub max_datagram: usize,
    /// `ipfrag_time`: IPv4 queue lifetime from creation, ns (default 30 s).
    pub timeout_v4: u64,
    /// `ip6frag_time`: IPv6 queue lifetime from creation, ns (default 60 s).
    pub timeout_v6: u64,
}

impl From<&ReasmConfig> for htb_reasm_config {
    fn from(c: &ReasmConfig) -> Self {
        htb_reasm_config {
            policy: policy_num(c.policy),
            max_dist: c.max_dist,
            high_thresh: c.high_thresh,
            max_datagram: c.max_datagram,
            timeout_v4: c.timeout_v4,
            timeout_v6: c.timeout_v6,
        }
    }
}

/// What `htb_reasm_push` did with a packet (`htb_reasm_result.outcome`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_reasm_outcome {
    /// Not a fragment: pass the packet on as it is (nothing was copied).
    NotFragment = 0,
    /// Held; the datagram is not complete yet.
    Queued = 1,
    /// The datagram is complete (`len` bytes): in the caller's buffer, or
    /// waiting for `htb_reasm_take` after `HTB_STATUS_BUFFER_TOO_SMALL`.
    Complete = 2,
    /// The fragment was not kept; `drop_reason` says why.
    Dropped = 3,
    /// IPv6: dropped, and the kernel answers ICMPv6 Parameter Problem with
    /// `icmp_code` and `icmp_pointer` (status `HTB_STATUS_PARAM_PROBLEM`).
    ParamProblem = 4,
}

/// Why a fragment was not kept (`htb_reasm_result.drop_reason`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_frag_drop {
    /// Not dropped.
    None = 0,
    /// Lies inside data already held: ignored, the queue is kept.
    Duplicate = 1,
    /// Overlaps held data (Linux policy): the whole datagram is discarded.
    Overlap = 2,
    /// Zero length, a second last fragment with another end, or data past
    /// a known end: the queue is discarded.
    Inconsistent = 3,
    /// Reassembly memory is above `high_thresh`: refused.
    MemoryLimit = 4,
    /// The reassembled datagram would exceed `max_datagram`: discarded.
    Oversize = 5,
    /// Not-ECT mixed with ECT/CE fragments (RFC 3168): discarded.
    EcnMismatch = 6,
    /// A reason newer than this header (see `htb_frag_drop_str`).
    Other = 255,
}

fn drop_num(d: FragDrop) -> u32 {
    (match d {
        FragDrop::Duplicate => htb_frag_drop::Duplicate,
        FragDrop::Overlap => htb_frag_drop::Overlap,
        FragDrop::Inconsistent => htb_frag_drop::Inconsistent,
        FragDrop::MemoryLimit => htb_frag_drop::MemoryLimit,
        FragDrop::Oversize => htb_frag_drop::Oversize,
        FragDrop::EcnMismatch => htb_frag_drop::EcnMismatch,
        _ => htb_frag_drop::Other,
    }) as u32
}

/// The result of `htb_reasm_push` / `htb_reasm_push_owned`, written on
/// `HTB_STATUS_OK`, `HTB_STATUS_BUFFER_TOO_SMALL` and
/// `HTB_STATUS_PARAM_PROBLEM`. Fields that do not apply are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_reasm_result {
    /// One of `HTB_REASM_OUTCOME_*`.
    pub outcome: u32,
    /// `HTB_REASM_OUTCOME_DROPPED`: one of `HTB_FRAG_DROP_*`.
    pub drop_reason: u32,
    /// `HTB_REASM_OUTCOME_PARAM_PROBLEM`: the ICMPv6 code (0: erroneous
    /// header field, 3: incomplete header chain).
    pub icmp_code: u32,
    /// `HTB_REASM_OUTCOME_PARAM_PROBLEM`: offset of the offending byte from
    /// the start of the packet.
    pub icmp_pointer: u32,
    /// `HTB_REASM_OUTCOME_COMPLETE`: the datagram's length, bytes (on
    /// `HTB_STATUS_BUFFER_TOO_SMALL`: the room it needs).
    pub len: usize,
}

/// Reassembly counters, named like the kernel's SNMP ones.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_reasm_stats {
    /// `ReasmReqds`: fragments received.
    pub reasm_reqds: u64,
    /// `ReasmOKs`: datagrams reassembled.
    pub reasm_oks: u64,
    /// `ReasmFails`: failures (queues discarded, fragments refused for
    /// memory, timeouts).
    pub reasm_fails: u64,
    /// `ReasmTimeout`: queues that timed out.
    pub reasm_timeout: u64,
    /// `ReasmOverlaps`: overlaps that discarded a datagram (Linux policy).
    pub reasm_overlaps: u64,
}

impl From<ReasmStats> for htb_reasm_stats {
    fn from(s: ReasmStats) -> Self {
        htb_reasm_stats {
            reasm_reqds: s.reasm_reqds,
            reasm_oks: s.reasm_oks,
            reasm_fails: s.reasm_fails,
            reasm_timeout: s.reasm_timeout,
            reasm_overlaps: s.reasm_overlaps,
        }
    }
}

/// What happened to an expired queue (`htb_reasm_event.kind`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_reasm_event_kind {
    /// Its lifetime ended before it completed (`ReasmTimeout`).
    Timeout = 0,
    /// A kind newer than this header.
    Other = 255,
}

/// A queue that `htb_reasm_expire` ended, and what the kernel would send.
/// Valid only during the callback (copy what you keep, `quote` included).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct htb_reasm_event {
    /// One of `HTB_REASM_EVENT_KIND_*`.
    pub kind: u32,
    /// `HTB_FAMILY_IPV4` or `HTB_FAMILY_IPV6`: which key fields apply.
    pub family: u32,
    /// Source address (IPv4: the first 4 bytes), network order.
    pub src: [u8; 16],
    /// Destination address (IPv4: the first 4 bytes), network order.
    pub dst: [u8; 16],
    /// Identification (IPv4: 16 bits; IPv6: 32 bits).
    pub id: u32,
    /// IPv4 protocol (0 for IPv6).
    pub proto: u32,
    /// The `context` the fragments were pushed with.
    pub context: u32,
    /// True when the kernel sends ICMP Time Exceeded (code 1): only when the
    /// offset-0 fragment had arrived.
    pub send_icmp: bool,
    /// With `send_icmp`: what the kernel quotes in the ICMP error, i.e.
    /// that fragment from its IP header on, cut at 548 bytes (IPv4) or 1232
    /// (IPv6); else NULL.
    pub quote: *const u8,
    /// Length of `quote` (0 when NULL).
    pub quote_len: usize,
}

/// Receives one event (`htb_reasm_expire`). It must not call into the
/// library with the same reassembler.
pub type htb_reasm_event_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, event: *const htb_reasm_event)>;

/// An IP reassembly table: the fragment queues of IPv4 and IPv6 datagrams,
/// the memory they hold, the counters. Linux-exact with
/// `HTB_REASM_POLICY_LINUX`.
///
/// Not thread-safe: one thread at a time may use a reassembler (with any
/// external lock); different ones may be used on different threads at once.
/// A reassembler may be moved to another thread. Create with
/// `htb_reasm_new`; free with `htb_reasm_free`.
pub struct htb_reasm {
    r: Reassembler,
    /// A completed datagram that did not fit the caller's buffer, kept for
    /// `htb_reasm_take` so that it is never lost.
    pending: Option<Vec<u8>>,
}

/// A byte buffer the library allocated (a reassembled datagram): read it
/// with `htb_buffer_data` / `htb_buffer_len`, free it with
/// `htb_buffer_free`. Independent of the handle that made it; may be used
/// and freed on any thread.
pub struct htb_buffer {
    bytes: Vec<u8>,
}

// "May be moved to another thread" (htb_reasm) and "any thread"
// (htb_buffer) rely on these; this fails to compile if that ever changes.
const _: fn() = || {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<htb_reasm>();
    send_sync::<htb_buffer>();
};

fn write<T>(out: *mut T, v: T) {
    // SAFETY: every caller has checked `out` for NULL; it is valid for a
    // write of T (caller contract).
    unsafe { out.write(v) };
}

/// Fills `*out` with the defaults (Linux policy and the kernel's sysctl
/// defaults).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_config_default(out: *mut htb_reasm_config) -> htb_status {
    ffi_boundary!("htb_reasm_config_default", {
        check_null!("htb_reasm_config_default", out);
        write(out, (&ReasmConfig::default()).into());
        htb_status::Ok
    })
}

/// Parses a policy name (`linux`, `first`, `last`, `bsd`, `bsd-right`,
/// `linux-legacy`, `windows`, `solaris`; any case, `_` for `-`) from `len`
/// bytes at `text` into `*out` (an `HTB_REASM_POLICY_*`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_policy_parse(
    text: *const c_char,
    len: usize,
    out: *mut u32,
) -> htb_status {
    ffi_boundary!("htb_reasm_policy_parse", {
        check_null!("htb_reasm_policy_parse", text, out);
        let s = match text_arg("htb_reasm_policy_parse", text, len) {
            Ok(s) => s,
            Err(st) => return st,
        };
        match s.parse::<Policy>() {
            Ok(p) => {
                write(out, policy_num(p));
                htb_status::Ok
            }
            Err(e) => fail(
                htb_status::InvalidArgument,
                format_args!("htb_reasm_policy_parse: {e}"),
            ),
        }
    })
}

/// The name of a policy (`"linux"`, `"bsd-right"`, ...) as a static
/// NUL-terminated string; `"unknown policy"` for another number.
#[unsafe(no_mangle)]
pub extern "C" fn htb_reasm_policy_str(policy: u32) -> *const c_char {
    ffi_boundary!("htb_reasm_policy_str", {
        match policy {
            0 => c"linux",
            1 => c"first",
            2 => c"last",
            3 => c"bsd",
            4 => c"bsd-right",
            5 => c"linux-legacy",
            6 => c"windows",
            7 => c"solaris",
            _ => c"unknown policy",
        }
        .as_ptr()
    })
}

/// A static NUL-terminated description of a drop reason (`HTB_FRAG_DROP_*`).
#[unsafe(no_mangle)]
pub extern "C" fn htb_frag_drop_str(reason: u32) -> *const c_char {
    ffi_boundary!("htb_frag_drop_str", {
        match reason {
            0 => c"not dropped",
            1 => c"duplicate fragment",
            2 => c"overlapping fragment",
            3 => c"inconsistent fragment",
            4 => c"reassembly memory limit",
            5 => c"reassembled datagram too large",
            6 => c"ECN mismatch between fragments",
            _ => c"unknown drop reason",
        }
        .as_ptr()
    })
}

/// Creates an empty reassembly table with `cfg` (NULL: the defaults of
/// `htb_reasm_config_default`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_new(
    cfg: *const htb_reasm_config,
    out: *mut *mut htb_reasm,
) -> htb_status {
    ffi_boundary!("htb_reasm_new", {
        check_null!("htb_reasm_new", out);
        // SAFETY: NULL or valid for the call (caller contract).
        let cfg = match unsafe { cfg.as_ref() } {
            None => ReasmConfig::default(),
            Some(c) => ReasmConfig {
                policy: match policy_of("htb_reasm_new", c.policy) {
                    Ok(p) => p,
                    Err(st) => return st,
                },
                high_thresh: c.high_thresh,
                timeout_v4: c.timeout_v4,
                timeout_v6: c.timeout_v6,
                max_dist: c.max_dist,
                max_datagram: c.max_datagram,
            },
        };
        write(
            out,
            Box::into_raw(Box::new(htb_reasm {
                r: Reassembler::new(cfg),
                pending: None,
            })),
        );
        htb_status::Ok
    })
}

/// Frees a reassembly table and every fragment it holds (and a datagram
/// waiting for `htb_reasm_take`). NULL is a no-op; freeing twice is
/// undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_free(r: *mut htb_reasm) {
    ffi_boundary!("htb_reasm_free", {
        if !r.is_null() {
            // SAFETY: a handle from this library, not freed before (contract).
            drop(unsafe { Box::from_raw(r) });
        }
    })
}

/// The configuration in effect into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_get_config(
    r: *const htb_reasm,
    out: *mut htb_reasm_config,
) -> htb_status {
    ffi_boundary!("htb_reasm_get_config", {
        let r = try_ref!("htb_reasm_get_config", r);
        check_null!("htb_reasm_get_config", out);
        write(out, r.r.config().into());
        htb_status::Ok
    })
}

/// A push that went through: the result, and the completed datagram if any.
type PushOk = (htb_reasm_result, Option<Vec<u8>>);
/// A push that did not: the status, and the result to write first if any.
type PushErr = (htb_status, Option<htb_reasm_result>);

/// Runs the core push; the completed datagram (if any) comes back apart
/// from the result.
fn push(
    func: &str,
    r: &mut htb_reasm,
    pkt: *const u8,
    len: usize,
    context: u32,
    now: u64,
) -> Result<PushOk, PushErr> {
    if r.pending.is_some() {
        return Err((
            fail(
                htb_status::Pending,
                format_args!(
                    "{func}: a completed datagram is waiting; take it with htb_reasm_take first"
                ),
            ),
            None,
        ));
    }
    // SAFETY: non-NULL (checked by the caller) and valid for `len` bytes.
    let packet = unsafe { std::slice::from_raw_parts(pkt, len) };
    let mut res = htb_reasm_result::default();
    match r.r.push(packet, context, now) {
        Ok(Pushed::NotFragment) => res.outcome = htb_reasm_outcome::NotFragment as u32,
        Ok(Pushed::Queued) => res.outcome = htb_reasm_outcome::Queued as u32,
        Ok(Pushed::Dropped(d)) => {
            res.outcome = htb_reasm_outcome::Dropped as u32;
            res.drop_reason = drop_num(d);
        }
        Ok(Pushed::Complete(v)) => {
            res.outcome = htb_reasm_outcome::Complete as u32;
            res.len = v.len();
            return Ok((res, Some(v)));
        }
        Err(ReasmError::ParamProblem { code, pointer }) => {
            res.outcome = htb_reasm_outcome::ParamProblem as u32;
            res.icmp_code = u32::from(code);
            res.icmp_pointer = pointer;
            let st = fail(
                htb_status::ParamProblem,
                format_args!("{func}: ICMPv6 parameter problem (code {code}, pointer {pointer})"),
            );
            return Err((st, Some(res)));
        }
        Err(e @ ReasmError::Malformed(_)) => {
            return Err((
                fail(htb_status::Malformed, format_args!("{func}: {e}")),
                None,
            ));
        }
        Err(e) => {
            return Err((
                fail(htb_status::InvalidArgument, format_args!("{func}: {e}")),
                None,
            ));
        }
    }
    Ok((res, None))
}

/// Takes one raw IP packet (IPv4 or IPv6, starting at the IP header, `len`
/// bytes at `pkt`) received at `now` (ns, any monotonic origin) in
/// `context` (the caller's scope for the queue key, like the kernel's
/// `user`/vif: fragments with different contexts never meet). `*res` says
/// what happened (`HTB_REASM_OUTCOME_*`).
///
/// A completed datagram is copied into `out_buf` (room `out_cap`; may be
/// NULL when `out_cap` is 0) and its length is `res->len`. When it does not
/// fit: `HTB_STATUS_BUFFER_TOO_SMALL`, `res->len` is the size needed, and the
/// datagram waits in the table for `htb_reasm_take` / `htb_reasm_take_owned`
/// (it is not lost; until it is taken, pushes return `HTB_STATUS_PENDING`
/// and do nothing). `max_datagram + 40` bytes always suffice (65575 with
/// the defaults: an IPv6 payload of up to `max_datagram` plus its header).
///
/// Other statuses: `HTB_STATUS_MALFORMED` (not a well-formed IP packet; it
/// is not counted as a fragment), `HTB_STATUS_PARAM_PROBLEM` (IPv6: `*res`
/// holds the ICMPv6 code and pointer).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_push(
    r: *mut htb_reasm,
    pkt: *const u8,
    len: usize,
    context: u32,
    now: u64,
    res: *mut htb_reasm_result,
    out_buf: *mut u8,
    out_cap: usize,
) -> htb_status {
    ffi_boundary!("htb_reasm_push", {
        let r = try_mut!("htb_reasm_push", r);
        check_null!("htb_reasm_push", pkt, res);
        if out_cap > 0 {
            check_null!("htb_reasm_push", out_buf);
        }
        match push("htb_reasm_push", r, pkt, len, context, now) {
            Ok((result, None)) => {
                write(res, result);
                htb_status::Ok
            }
            Ok((result, Some(v))) => {
                write(res, result);
                if v.len() <= out_cap {
                    // SAFETY: `out_buf` is valid for `out_cap` bytes (caller
                    // contract) and does not overlap the library's vector.
                    unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), out_buf, v.len()) };
                    r.r.recycle(v);
                    htb_status::Ok
                } else {
                    let st = fail(
                        htb_status::BufferTooSmall,
                        format_args!(
                            "htb_reasm_push: the datagram is {} bytes, the buffer {out_cap}; \
                             it waits for htb_reasm_take",
                            v.len()
                        ),
                    );
                    r.pending = Some(v);
                    st
                }
            }
            Err((st, result)) => {
                if let Some(result) = result {
                    write(res, result);
                }
                st
            }
        }
    })
}

/// Like `htb_reasm_push`, handing a completed datagram over in a buffer the
/// library allocated: `*out` gets it (free it with `htb_buffer_free`), or
/// NULL when the outcome is not `HTB_REASM_OUTCOME_COMPLETE`. Written on
/// `HTB_STATUS_OK` only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_push_owned(
    r: *mut htb_reasm,
    pkt: *const u8,
    len: usize,
    context: u32,
    now: u64,
    res: *mut htb_reasm_result,
    out: *mut *mut htb_buffer,
) -> htb_status {
    ffi_boundary!("htb_reasm_push_owned", {
        let r = try_mut!("htb_reasm_push_owned", r);
        check_null!("htb_reasm_push_owned", pkt, res, out);
        match push("htb_reasm_push_owned", r, pkt, len, context, now) {
            Ok((result, v)) => {
                write(res, result);
                write(
                    out,
                    v.map_or(std::ptr::null_mut(), |bytes| {
                        Box::into_raw(Box::new(htb_buffer { bytes }))
                    }),
                );
                htb_status::Ok
            }
            Err((st, result)) => {
                if let Some(result) = result {
                    write(res, result);
                }
                st
            }
        }
    })
}

/// Copies the datagram that `htb_reasm_push` could not fit into `buf` (room
/// `cap`) and releases it; `*out_len` gets its length. Still too small:
/// `HTB_STATUS_BUFFER_TOO_SMALL` with the size needed in `*out_len` (the
/// datagram keeps waiting). `HTB_STATUS_NOT_FOUND` when none waits.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_take(
    r: *mut htb_reasm,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_reasm_take", {
        let r = try_mut!("htb_reasm_take", r);
        check_null!("htb_reasm_take", out_len);
        if cap > 0 {
            check_null!("htb_reasm_take", buf);
        }
        let Some(v) = r.pending.as_ref() else {
            return fail(
                htb_status::NotFound,
                "htb_reasm_take: no completed datagram is waiting",
            );
        };
        write(out_len, v.len());
        if v.len() > cap {
            return fail(
                htb_status::BufferTooSmall,
                format_args!(
                    "htb_reasm_take: the datagram is {} bytes, the buffer {cap}",
                    v.len()
                ),
            );
        }
        // SAFETY: `buf` is valid for `cap >= v.len()` bytes (caller contract).
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), buf, v.len()) };
        if let Some(v) = r.pending.take() {
            r.r.recycle(v);
        }
        htb_status::Ok
    })
}

/// Hands the datagram that `htb_reasm_push` could not fit over in a buffer
/// the library allocated (`htb_buffer_free` it). `HTB_STATUS_NOT_FOUND` when
/// none waits.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_take_owned(
    r: *mut htb_reasm,
    out: *mut *mut htb_buffer,
) -> htb_status {
    ffi_boundary!("htb_reasm_take_owned", {
        let r = try_mut!("htb_reasm_take_owned", r);
        check_null!("htb_reasm_take_owned", out);
        match r.pending.take() {
            Some(bytes) => {
                write(out, Box::into_raw(Box::new(htb_buffer { bytes })));
                htb_status::Ok
            }
            None => fail(
                htb_status::NotFound,
                "htb_reasm_take_owned: no completed datagram is waiting",
            ),
        }
    })
}

/// Ends every queue whose lifetime is over at `now` and calls `cb(user,
/// event)` for each, oldest first (`cb` NULL: the events are counted and
/// forgotten). `*count` (which may be NULL) gets the number of events.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_expire(
    r: *mut htb_reasm,
    now: u64,
    cb: htb_reasm_event_fn,
    user: *mut c_void,
    count: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_reasm_expire", {
        let r = try_mut!("htb_reasm_expire", r);
        let events = r.r.expire(now);
        if let Some(cb) = cb {
            for e in &events {
                let mut ev = htb_reasm_event {
                    kind: match e.kind {
                        EventKind::Timeout => htb_reasm_event_kind::Timeout,
                        _ => htb_reasm_event_kind::Other,
                    } as u32,
                    family: 0,
                    src: [0; 16],
                    dst: [0; 16],
                    id: 0,
                    proto: 0,
                    context: 0,
                    send_icmp: e.icmp_quote.is_some(),
                    quote: e
                        .icmp_quote
                        .as_ref()
                        .map_or(std::ptr::null(), |q| q.as_ptr()),
                    quote_len: e.icmp_quote.as_ref().map_or(0, Vec::len),
                };
                match e.key {
                    FragKey::V4 {
                        src,
                        dst,
                        id,
                        proto,
                        context,
                    } => {
                        ev.family = htb_family::Ipv4 as u32;
                        ev.src[..4].copy_from_slice(&src);
                        ev.dst[..4].copy_from_slice(&dst);
                        ev.id = u32::from(id);
                        ev.proto = u32::from(proto);
                        ev.context = context;
                    }
                    FragKey::V6 {
                        src,
                        dst,
                        id,
                        context,
                    } => {
                        ev.family = htb_family::Ipv6 as u32;
                        ev.src = src;
                        ev.dst = dst;
                        ev.id = id;
                        ev.context = context;
                    }
                }
                // SAFETY: a C function pointer given by the caller; `ev` and
                // the quote it points at live for the call.
                unsafe { cb(user, &ev) };
            }
        }
        if !count.is_null() {
            write(count, events.len());
        }
        htb_status::Ok
    })
}

/// When the oldest queue expires (ns) into `*out`: call `htb_reasm_expire`
/// then. `HTB_STATUS_EMPTY` when no queue is held.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_next_expiry(r: *const htb_reasm, out: *mut u64) -> htb_status {
    ffi_boundary!("htb_reasm_next_expiry", {
        let r = try_ref!("htb_reasm_next_expiry", r);
        check_null!("htb_reasm_next_expiry", out);
        match r.r.next_expiry() {
            Some(t) => {
                write(out, t);
                htb_status::Ok
            }
            None => htb_status::Empty,
        }
    })
}

/// Counters of `family` (`HTB_FAMILY_IPV4`: `/proc/net/snmp` `Ip:`;
/// `HTB_FAMILY_IPV6`: `/proc/net/snmp6`; `HTB_FAMILY_ANY`: both summed) into
/// `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_get_stats(
    r: *const htb_reasm,
    family: u32,
    out: *mut htb_reasm_stats,
) -> htb_status {
    ffi_boundary!("htb_reasm_get_stats", {
        let r = try_ref!("htb_reasm_get_stats", r);
        check_null!("htb_reasm_get_stats", out);
        let s = match family {
            0 => r.r.stats(),
            4 => r.r.stats_for(Family::V4),
            6 => r.r.stats_for(Family::V6),
            f => {
                return fail(
                    htb_status::InvalidArgument,
                    format_args!(
                        "htb_reasm_get_stats: family {f} is not HTB_FAMILY_ANY (0), IPV4 (4) or IPV6 (6)"
                    ),
                );
            }
        };
        write(out, s.into());
        htb_status::Ok
    })
}

/// What the table holds now: `*mem_used` the bytes compared with
/// `high_thresh`, `*queues` the datagrams being reassembled. Either pointer
/// may be NULL (not wanted).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_reasm_get_usage(
    r: *const htb_reasm,
    mem_used: *mut usize,
    queues: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_reasm_get_usage", {
        let r = try_ref!("htb_reasm_get_usage", r);
        if !mem_used.is_null() {
            write(mem_used, r.r.mem_used());
        }
        if !queues.is_null() {
            write(queues, r.r.queues());
        }
        htb_status::Ok
    })
}

/// The bytes of a library buffer (NULL for a NULL buffer). Valid until the
/// buffer is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_buffer_data(buf: *const htb_buffer) -> *const u8 {
    ffi_boundary!("htb_buffer_data", {
        // SAFETY: NULL or a live buffer from this library (contract).
        match unsafe { buf.as_ref() } {
            Some(b) => b.bytes.as_ptr(),
            None => std::ptr::null(),
        }
    })
}

/// The length of a library buffer in bytes (0 for a NULL buffer).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_buffer_len(buf: *const htb_buffer) -> usize {
    ffi_boundary!("htb_buffer_len", {
        // SAFETY: NULL or a live buffer from this library (contract).
        unsafe { buf.as_ref() }.map_or(0, |b| b.bytes.len())
    })
}

/// Frees a library buffer. NULL is a no-op; freeing twice is undefined
/// behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_buffer_free(buf: *mut htb_buffer) {
    ffi_boundary!("htb_buffer_free", {
        if !buf.is_null() {
            // SAFETY: a buffer from this library, not freed before (contract).
            drop(unsafe { Box::from_raw(buf) });
        }
    })
}
