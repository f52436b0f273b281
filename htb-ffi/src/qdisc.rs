//! The shaper: the `htb_qdisc` handle and its functions.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_void};

use htb_core::tc::{LoadOptions, load};
use htb_core::{ClassId, Htb, Packet, QdiscConfig};

use crate::error::{check_null, fail, fail_htb, ffi_boundary, htb_status, try_mut, try_ref};
use crate::types::{
    htb_class_config, htb_class_info, htb_class_stats, htb_drop_reason, htb_qdisc_stats,
};
use crate::{htb_class_visit_fn, htb_packet_fn, text_arg};

/// A packet as the scheduler holds it: the caller's opaque pointer and the
/// length to charge. The pointer is never dereferenced by the library.
#[derive(Debug)]
pub(crate) struct FfiPacket {
    ptr: *mut c_void,
    len: u32,
}

// SAFETY: the pointer is an opaque token that the library only stores and
// hands back; it never reads or writes through it, so moving it between
// threads cannot cause a data race in this library. What it points at, and
// the thread it may be used on, stay the C caller's business. (The qdisc
// handle itself is not thread-safe: see `htb_qdisc`.)
unsafe impl Send for FfiPacket {}

impl Packet for FfiPacket {
    #[inline]
    fn len(&self) -> u32 {
        self.len
    }
}

/// An HTB qdisc (the root of a class tree and its queues).
///
/// Not thread-safe: one thread at a time may use a qdisc (with any external
/// lock); different qdiscs may be used on different threads at once. A
/// qdisc may be moved to another thread. Create with `htb_qdisc_new`,
/// `htb_qdisc_load_tc` or `htb_qdisc_load_tc_file`; free with
/// `htb_qdisc_free`.
pub struct htb_qdisc {
    htb: Htb<FfiPacket>,
    /// Class ids in tree order for `htb_class_at`, rebuilt after a change.
    order: RefCell<Option<Vec<ClassId>>>,
    /// The burst calls' working buffers, kept between calls (no allocation
    /// per burst).
    batch: Vec<(FfiPacket, ClassId)>,
    out: Vec<FfiPacket>,
}

impl htb_qdisc {
    fn boxed(htb: Htb<FfiPacket>) -> *mut htb_qdisc {
        Box::into_raw(Box::new(htb_qdisc {
            htb,
            order: RefCell::new(None),
            batch: Vec::new(),
            out: Vec::new(),
        }))
    }
}

/// One packet of a burst (`htb_enqueue_burst`, `htb_dequeue_burst`): the
/// caller's opaque pointer, the length HTB charges, and the class id as
/// `htb_enqueue` takes it (0 in what `htb_dequeue_burst` writes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct htb_burst_pkt {
    /// The packet; never read by the library.
    pub pkt: *mut c_void,
    /// Its length in bytes (non-zero).
    pub len: u32,
    /// Its classification, as for `htb_enqueue`.
    pub classid: u32,
}

/// Hands each packet back through `cb` (or forgets it when `cb` is NULL).
fn hand_back(pkts: Vec<FfiPacket>, cb: htb_packet_fn, user: *mut c_void) {
    if let Some(cb) = cb {
        for p in pkts {
            // SAFETY: a C function pointer given by the caller for this purpose.
            unsafe { cb(user, p.ptr, p.len) };
        }
    }
}

fn write<T>(out: *mut T, v: T) {
    // SAFETY: every caller has checked `out` for NULL; it is valid for a
    // write of T (caller contract).
    unsafe { out.write(v) };
}

/// Creates an empty qdisc: `tc qdisc add ... root handle MAJOR: htb default
/// DEFAULT_MINOR r2q R2Q`. `handle_major` is 1..0xffff; `default_minor`
/// 0..0xffff (0: unclassified packets take the direct queue, unshaped);
/// `r2q` 0 means tc's default, 10.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_new(
    handle_major: u32,
    default_minor: u32,
    r2q: u32,
    out: *mut *mut htb_qdisc,
) -> htb_status {
    ffi_boundary!("htb_qdisc_new", {
        check_null!("htb_qdisc_new", out);
        if handle_major == 0 || handle_major > 0xffff {
            return fail(
                htb_status::InvalidArgument,
                format_args!("htb_qdisc_new: handle major {handle_major:#x} is not in 1..0xffff"),
            );
        }
        if default_minor > 0xffff {
            return fail(
                htb_status::InvalidArgument,
                format_args!("htb_qdisc_new: default minor {default_minor:#x} is above 0xffff"),
            );
        }
        let cfg = QdiscConfig::new(handle_major as u16)
            .default_class(default_minor as u16)
            .r2q(if r2q == 0 { 10 } else { r2q });
        write(out, htb_qdisc::boxed(Htb::new(cfg)));
        htb_status::Ok
    })
}

fn load_text(func: &str, text: &str, file: &str, out: *mut *mut htb_qdisc) -> htb_status {
    match load::<FfiPacket>(text, file, &LoadOptions::default()) {
        Ok(loaded) => {
            write(out, htb_qdisc::boxed(loaded.htb));
            htb_status::Ok
        }
        Err(d) => fail(htb_status::ParseError, format_args!("{func}: {d}")),
    }
}

/// Creates a qdisc from a tc script (`len` bytes of UTF-8 at `text`, no NUL
/// needed): the lines `tc qdisc add ... htb`, `tc class add|change|del ...
/// htb ...` and `pfifo`/`bfifo` leaf qdiscs, unchanged. On
/// `HTB_STATUS_PARSE_ERROR` the last error says `<tc>:LINE:COL: error: ...`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_load_tc(
    text: *const c_char,
    len: usize,
    out: *mut *mut htb_qdisc,
) -> htb_status {
    ffi_boundary!("htb_qdisc_load_tc", {
        check_null!("htb_qdisc_load_tc", text, out);
        match text_arg("htb_qdisc_load_tc", text, len) {
            Ok(s) => load_text("htb_qdisc_load_tc", s, "<tc>", out),
            Err(st) => st,
        }
    })
}

/// Like `htb_qdisc_load_tc`, reading the script from the file at `path` (a
/// NUL-terminated string). `HTB_STATUS_IO_ERROR` when it cannot be read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_load_tc_file(
    path: *const c_char,
    out: *mut *mut htb_qdisc,
) -> htb_status {
    ffi_boundary!("htb_qdisc_load_tc_file", {
        check_null!("htb_qdisc_load_tc_file", path, out);
        // SAFETY: non-NULL and NUL-terminated (caller contract).
        let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
        #[cfg(unix)]
        let p = std::path::Path::new(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes),
        );
        #[cfg(not(unix))]
        let p = std::path::Path::new(match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => {
                return fail(
                    htb_status::InvalidArgument,
                    "htb_qdisc_load_tc_file: path is not UTF-8",
                );
            }
        });
        let text = match std::fs::read(p) {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    htb_status::IoError,
                    format_args!("htb_qdisc_load_tc_file: {}: {e}", p.display()),
                );
            }
        };
        match std::str::from_utf8(&text) {
            Ok(s) => load_text("htb_qdisc_load_tc_file", s, &p.display().to_string(), out),
            Err(e) => fail(
                htb_status::ParseError,
                format_args!("htb_qdisc_load_tc_file: {}: not UTF-8 ({e})", p.display()),
            ),
        }
    })
}

/// Frees a qdisc. Every packet still queued is handed to `free_cb` (with
/// `user`); with a NULL `free_cb` they are forgotten. NULL `q` is a no-op;
/// freeing twice is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_free(
    q: *mut htb_qdisc,
    free_cb: htb_packet_fn,
    user: *mut c_void,
) {
    ffi_boundary!("htb_qdisc_free", {
        if q.is_null() {
            return;
        }
        // SAFETY: a handle from this library, not freed before (contract).
        let mut q = unsafe { Box::from_raw(q) };
        let pkts = q.htb.reset();
        drop(q);
        hand_back(pkts, free_cb, user);
    })
}

/// Empties the qdisc (`htb_reset`): every queued packet is handed to `cb`
/// (forgotten when NULL) and counted as dropped; classes and tokens stay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_reset(
    q: *mut htb_qdisc,
    cb: htb_packet_fn,
    user: *mut c_void,
) -> htb_status {
    ffi_boundary!("htb_qdisc_reset", {
        let q = try_mut!("htb_qdisc_reset", q);
        let pkts = q.htb.reset();
        hand_back(pkts, cb, user);
        htb_status::Ok
    })
}

/// The qdisc handle as a class id (`major << 16`). Enqueueing with this id
/// sends a packet through the direct queue, unshaped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_handle(q: *const htb_qdisc, out: *mut u32) -> htb_status {
    ffi_boundary!("htb_qdisc_handle", {
        let q = try_ref!("htb_qdisc_handle", q);
        check_null!("htb_qdisc_handle", out);
        write(out, q.htb.handle().raw());
        htb_status::Ok
    })
}

/// Sets the default class minor (`tc qdisc change ... default N`); 0 sends
/// unclassified packets to the direct queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_set_default(
    q: *mut htb_qdisc,
    default_minor: u32,
) -> htb_status {
    ffi_boundary!("htb_qdisc_set_default", {
        let q = try_mut!("htb_qdisc_set_default", q);
        if default_minor > 0xffff {
            return fail(
                htb_status::InvalidArgument,
                format_args!(
                    "htb_qdisc_set_default: default minor {default_minor:#x} is above 0xffff"
                ),
            );
        }
        q.htb.set_default_class(default_minor as u16);
        htb_status::Ok
    })
}

/// Adds class `classid` under `parent` (the qdisc handle `major << 16` for a
/// top-level class): `tc class add`. When the parent was a leaf, it becomes
/// an inner class and its queued packets are handed to `purged_cb`
/// (forgotten when NULL). `now` is the current time in nanoseconds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_add(
    q: *mut htb_qdisc,
    classid: u32,
    parent: u32,
    cfg: *const htb_class_config,
    now: u64,
    purged_cb: htb_packet_fn,
    user: *mut c_void,
) -> htb_status {
    ffi_boundary!("htb_class_add", {
        let q = try_mut!("htb_class_add", q);
        let cfg = try_ref!("htb_class_add", cfg);
        let cfg = match cfg.core_config("htb_class_add") {
            Ok(c) => c,
            Err(st) => return st,
        };
        let applied = match q.htb.add_class(
            ClassId::from_raw(classid),
            ClassId::from_raw(parent),
            &cfg,
            now,
        ) {
            Ok(a) => a,
            Err(e) => return fail_htb("htb_class_add", &e),
        };
        *q.order.get_mut() = None;
        hand_back(applied.dropped, purged_cb, user);
        htb_status::Ok
    })
}

/// Changes the rates, bursts, quantum and prio of class `classid`: `tc class
/// change`. Tokens, mode and queued packets stay.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_change(
    q: *mut htb_qdisc,
    classid: u32,
    cfg: *const htb_class_config,
) -> htb_status {
    ffi_boundary!("htb_class_change", {
        let q = try_mut!("htb_class_change", q);
        let cfg = try_ref!("htb_class_change", cfg);
        let cfg = match cfg.core_config("htb_class_change") {
            Ok(c) => c,
            Err(st) => return st,
        };
        match q.htb.change_class(ClassId::from_raw(classid), &cfg) {
            Ok(_) => htb_status::Ok,
            Err(e) => fail_htb("htb_class_change", &e),
        }
    })
}

/// Deletes class `classid` (`tc class del`); refused with
/// `HTB_STATUS_CLASS_HAS_CHILDREN` while it has children. Its queued packets
/// are handed to `purged_cb` (forgotten when NULL). When it was its parent's
/// last child, the parent becomes a leaf again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_delete(
    q: *mut htb_qdisc,
    classid: u32,
    now: u64,
    purged_cb: htb_packet_fn,
    user: *mut c_void,
) -> htb_status {
    ffi_boundary!("htb_class_delete", {
        let q = try_mut!("htb_class_delete", q);
        let applied = match q.htb.delete_class(ClassId::from_raw(classid), now) {
            Ok(a) => a,
            Err(e) => return fail_htb("htb_class_delete", &e),
        };
        *q.order.get_mut() = None;
        hand_back(applied.dropped, purged_cb, user);
        htb_status::Ok
    })
}

/// Queues the packet `pkt` (an opaque pointer the library never reads) of
/// `len` bytes (the length HTB charges: the L2 frame without FCS, non-zero).
///
/// `classid` is the caller's classification, like `skb->priority`: a leaf
/// id queues to that leaf; the qdisc handle (`major << 16`) to the direct
/// queue; any other id to the default class (or, with none, the direct
/// queue), as the kernel does. `now` is the current time in nanoseconds
/// (accepted for the future; queueing does not depend on it today).
///
/// Returns `HTB_STATUS_OK` (the library holds the packet until it is
/// dequeued, purged or handed back at free) or `HTB_STATUS_DROPPED`: the
/// packet was not queued and is still the caller's; `*reason_out` (which may
/// be NULL) then gets an `HTB_DROP_REASON_*`, and is not written otherwise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_enqueue(
    q: *mut htb_qdisc,
    pkt: *mut c_void,
    len: u32,
    classid: u32,
    now: u64,
    reason_out: *mut u32,
) -> htb_status {
    let _ = now;
    ffi_boundary!("htb_enqueue", {
        let q = try_mut!("htb_enqueue", q);
        check_null!("htb_enqueue", pkt);
        if len == 0 {
            return fail(
                htb_status::InvalidArgument,
                "htb_enqueue: packet length is 0",
            );
        }
        match q
            .htb
            .enqueue(FfiPacket { ptr: pkt, len }, ClassId::from_raw(classid))
        {
            Ok(()) => htb_status::Ok,
            Err(d) => {
                if !reason_out.is_null() {
                    write(reason_out, htb_drop_reason::from(d.reason) as u32);
                }
                htb_status::Dropped
            }
        }
    })
}

/// Queues the `n` packets of `pkts[0..n]` exactly as `n` calls of
/// `htb_enqueue` in that order would, but faster per packet in large trees
/// (the burst's memory accesses overlap; the shape of DPDK's
/// `rte_sched_port_enqueue`).
///
/// `*queued_out` gets how many were queued. The refused ones are still the
/// caller's: they are moved, in their original order, to the front of
/// `pkts` (`pkts[0 .. n - *queued_out]`), and `reasons[i]` (when `reasons`
/// is not NULL it has room for `n`) gets the `HTB_DROP_REASON_*` of
/// `pkts[i]`. Returns `HTB_STATUS_OK` even when some were refused.
///
/// Before anything is queued every packet is checked: a NULL `pkt` or a
/// zero `len` fails the whole call with `HTB_STATUS_NULL_PARAMETER` /
/// `HTB_STATUS_INVALID_ARGUMENT`, nothing queued. `pkts` may be NULL when
/// `n` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_enqueue_burst(
    q: *mut htb_qdisc,
    pkts: *mut htb_burst_pkt,
    n: usize,
    now: u64,
    queued_out: *mut usize,
    reasons: *mut u32,
) -> htb_status {
    let _ = now;
    ffi_boundary!("htb_enqueue_burst", {
        let q = try_mut!("htb_enqueue_burst", q);
        check_null!("htb_enqueue_burst", queued_out);
        if n == 0 {
            write(queued_out, 0);
            return htb_status::Ok;
        }
        check_null!("htb_enqueue_burst", pkts);
        // SAFETY: non-NULL and valid for `n` elements (caller contract).
        let pkts = unsafe { std::slice::from_raw_parts_mut(pkts, n) };
        for (i, p) in pkts.iter().enumerate() {
            if p.pkt.is_null() {
                return fail(
                    htb_status::NullParameter,
                    format_args!("htb_enqueue_burst: pkts[{i}].pkt is NULL"),
                );
            }
            if p.len == 0 {
                return fail(
                    htb_status::InvalidArgument,
                    format_args!("htb_enqueue_burst: pkts[{i}].len is 0"),
                );
            }
        }
        q.batch.clear();
        q.batch.extend(pkts.iter().map(|p| {
            (
                FfiPacket {
                    ptr: p.pkt,
                    len: p.len,
                },
                ClassId::from_raw(p.classid),
            )
        }));
        let refused = q.htb.enqueue_burst(&mut q.batch);
        let kept = refused.len();
        // The refused come back in input order, so each one's slot is found
        // scanning forward; the i-th sits at or after slot i, so moving it
        // to slot i never overwrites one still to be found.
        let mut from = 0;
        for (i, d) in refused.into_iter().enumerate() {
            while from < n && pkts[from].pkt != d.packet.ptr {
                from += 1;
            }
            let classid = pkts.get(from).map_or(0, |p| p.classid);
            from += 1;
            pkts[i] = htb_burst_pkt {
                pkt: d.packet.ptr,
                len: d.packet.len,
                classid,
            };
            if !reasons.is_null() {
                // SAFETY: non-NULL and valid for `n` elements (caller
                // contract), and i < n.
                unsafe { reasons.add(i).write(htb_drop_reason::from(d.reason) as u32) };
            }
        }
        write(queued_out, n - kept);
        htb_status::Ok
    })
}

/// Takes up to `max` packets that may be sent at `now`, as `max` calls of
/// `htb_dequeue` at that time would, into `out[0 .. *n_out]` (`classid` is
/// written as 0), faster per packet in large trees. The packets are the
/// caller's again. Returns `HTB_STATUS_OK` when at least one came out;
/// otherwise, as `htb_dequeue`, `HTB_STATUS_EMPTY` (nothing queued) or
/// `HTB_STATUS_THROTTLED` (call again at `htb_next_wakeup()`), with
/// `*n_out` = 0. `out` may be NULL when `max` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_dequeue_burst(
    q: *mut htb_qdisc,
    now: u64,
    out: *mut htb_burst_pkt,
    max: usize,
    n_out: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_dequeue_burst", {
        let q = try_mut!("htb_dequeue_burst", q);
        check_null!("htb_dequeue_burst", n_out);
        if max > 0 {
            check_null!("htb_dequeue_burst", out);
        }
        q.out.clear();
        let n = q.htb.dequeue_burst(now, max, &mut q.out);
        for (i, p) in q.out.drain(..).enumerate() {
            // SAFETY: non-NULL and valid for `max` elements (caller
            // contract), and i < n <= max.
            unsafe {
                out.add(i).write(htb_burst_pkt {
                    pkt: p.ptr,
                    len: p.len,
                    classid: 0,
                })
            };
        }
        write(n_out, n);
        if n > 0 {
            htb_status::Ok
        } else if q.htb.is_empty() {
            htb_status::Empty
        } else {
            htb_status::Throttled
        }
    })
}

/// Takes the next packet that may be sent at `now` (nanoseconds, from any
/// monotonic origin; a time earlier than one seen before counts as that
/// one). On `HTB_STATUS_OK`, `*pkt_out` and `*len_out` get the packet, which
/// is the caller's again. `HTB_STATUS_EMPTY`: nothing is queued.
/// `HTB_STATUS_THROTTLED`: packets are queued but every class holding them
/// is over its limits; call again at `htb_next_wakeup()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_dequeue(
    q: *mut htb_qdisc,
    now: u64,
    pkt_out: *mut *mut c_void,
    len_out: *mut u32,
) -> htb_status {
    ffi_boundary!("htb_dequeue", {
        let q = try_mut!("htb_dequeue", q);
        check_null!("htb_dequeue", pkt_out, len_out);
        match q.htb.dequeue(now) {
            Some(p) => {
                write(pkt_out, p.ptr);
                write(len_out, p.len);
                htb_status::Ok
            }
            None if q.htb.is_empty() => htb_status::Empty,
            None => htb_status::Throttled,
        }
    })
}

/// After `htb_dequeue` returned `HTB_STATUS_THROTTLED`: the time (ns) at
/// which to call it again (the kernel's watchdog). A time at or before the
/// last `now` means "at once". `HTB_STATUS_EMPTY` when nothing is queued
/// (dequeue again after the next enqueue).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_next_wakeup(q: *const htb_qdisc, out: *mut u64) -> htb_status {
    ffi_boundary!("htb_next_wakeup", {
        let q = try_ref!("htb_next_wakeup", q);
        check_null!("htb_next_wakeup", out);
        if q.htb.is_empty() {
            return htb_status::Empty;
        }
        write(out, q.htb.next_wakeup().unwrap_or(0));
        htb_status::Ok
    })
}

/// Qdisc-wide statistics into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_qdisc_get_stats(
    q: *const htb_qdisc,
    out: *mut htb_qdisc_stats,
) -> htb_status {
    ffi_boundary!("htb_qdisc_get_stats", {
        let q = try_ref!("htb_qdisc_get_stats", q);
        check_null!("htb_qdisc_get_stats", out);
        write(out, (&q.htb.stats()).into());
        htb_status::Ok
    })
}

/// Statistics of class `classid` into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_get_stats(
    q: *const htb_qdisc,
    classid: u32,
    out: *mut htb_class_stats,
) -> htb_status {
    ffi_boundary!("htb_class_get_stats", {
        let q = try_ref!("htb_class_get_stats", q);
        check_null!("htb_class_get_stats", out);
        match q.htb.class_stats(ClassId::from_raw(classid)) {
            Some(s) => {
                write(out, (&s).into());
                htb_status::Ok
            }
            None => fail(
                htb_status::UnknownClass,
                format_args!(
                    "htb_class_get_stats: class {} does not exist",
                    ClassId::from_raw(classid)
                ),
            ),
        }
    })
}

/// Identity, configuration, state and statistics of class `classid`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_get_info(
    q: *const htb_qdisc,
    classid: u32,
    out: *mut htb_class_info,
) -> htb_status {
    ffi_boundary!("htb_class_get_info", {
        let q = try_ref!("htb_class_get_info", q);
        check_null!("htb_class_get_info", out);
        match q.htb.class_info(ClassId::from_raw(classid)) {
            Some(i) => {
                write(out, htb_class_info::from_core(&i, q.htb.handle().raw()));
                htb_status::Ok
            }
            None => fail(
                htb_status::UnknownClass,
                format_args!(
                    "htb_class_get_info: class {} does not exist",
                    ClassId::from_raw(classid)
                ),
            ),
        }
    })
}

/// The number of classes into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_count(q: *const htb_qdisc, out: *mut usize) -> htb_status {
    ffi_boundary!("htb_class_count", {
        let q = try_ref!("htb_class_count", q);
        check_null!("htb_class_count", out);
        write(out, q.htb.class_count());
        htb_status::Ok
    })
}

/// Class number `index` (0 .. count-1) in tree order (depth first, children
/// by id: the order of `tc class show`); `HTB_STATUS_OUT_OF_RANGE` past the
/// end. Indexes are stable until a class is added or deleted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_at(
    q: *const htb_qdisc,
    index: usize,
    out: *mut htb_class_info,
) -> htb_status {
    ffi_boundary!("htb_class_at", {
        let q = try_ref!("htb_class_at", q);
        check_null!("htb_class_at", out);
        let mut order = q.order.borrow_mut();
        let order = order.get_or_insert_with(|| q.htb.classes().iter().map(|c| c.id).collect());
        let Some(&id) = order.get(index) else {
            return fail(
                htb_status::OutOfRange,
                format_args!(
                    "htb_class_at: index {index} is past the {} classes",
                    order.len()
                ),
            );
        };
        match q.htb.class_info(id) {
            Some(i) => {
                write(out, htb_class_info::from_core(&i, q.htb.handle().raw()));
                htb_status::Ok
            }
            None => fail(htb_status::Panic, "htb_class_at: stale class order"),
        }
    })
}

/// Calls `cb(user, info)` for every class in tree order, until it returns
/// non-zero. The callback may read the qdisc (const functions) but not
/// change it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_class_foreach(
    q: *const htb_qdisc,
    cb: htb_class_visit_fn,
    user: *mut c_void,
) -> htb_status {
    ffi_boundary!("htb_class_foreach", {
        let q = try_ref!("htb_class_foreach", q);
        let Some(cb) = cb else {
            return crate::error::null_param("htb_class_foreach", "cb");
        };
        let handle = q.htb.handle().raw();
        for c in q.htb.classes() {
            let info = htb_class_info::from_core(&c, handle);
            // SAFETY: a C function pointer given by the caller; `info` lives
            // for the call.
            if unsafe { cb(user, &info) } != 0 {
                break;
            }
        }
        htb_status::Ok
    })
}
