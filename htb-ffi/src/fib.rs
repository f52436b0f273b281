//! The FIB: the `htb_fib` handle (an IPv4 and an IPv6 table) and its
//! functions.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_void};
use std::net::{Ipv4Addr, Ipv6Addr};

use htb_core::fib::load::{AnyPrefix, parse_line};
use htb_core::fib::{EntryId, Fib, FibError, FibKey, Prefix, Route, RouteKind};

use crate::error::{check_null, fail, ffi_boundary, htb_status, try_mut, try_ref};
use crate::text_arg;

/// An address family (`htb_prefix.family`, and the `family` argument of the
/// functions that take one).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_family {
    /// Both families (where a function accepts it).
    Any = 0,
    /// IPv4.
    Ipv4 = 4,
    /// IPv6.
    Ipv6 = 6,
}

/// What a route does with the packets it matches (`htb_route.kind`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_route_kind {
    /// No route: a batch lookup slot whose address matched nothing.
    None = 0,
    /// Forward; `value` is the caller's (next hop, interface, class id...).
    Unicast = 1,
    /// Drop silently (`ip route get` answers EINVAL).
    Blackhole = 2,
    /// Drop, "No route to host" (EHOSTUNREACH).
    Unreachable = 3,
    /// Drop, "Permission denied" (EACCES).
    Prohibit = 4,
}

/// An address prefix `addr/len` with no host bits set. IPv4 uses `addr[0..4]`
/// (network byte order, as in a packet header) and leaves the rest zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_prefix {
    /// `HTB_FAMILY_IPV4` or `HTB_FAMILY_IPV6`.
    pub family: u32,
    /// Prefix length: 0..32 (IPv4), 0..128 (IPv6).
    pub len: u32,
    /// The address, network byte order.
    pub addr: [u8; 16],
}

/// One route: a prefix, its metric, its type and (unicast) its value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_route {
    /// The prefix (all zero when `kind` is `HTB_ROUTE_KIND_NONE`).
    pub prefix: htb_prefix,
    /// One of `HTB_ROUTE_KIND_*`.
    pub kind: u32,
    /// The metric; the lowest of a prefix is the one lookups answer with.
    pub metric: u32,
    /// The unicast value (0 for the other types).
    pub value: u64,
}

/// Visits one route (`htb_fib_foreach`); return 0 to go on, anything else
/// to stop. `route` is valid only during the call.
pub type htb_route_visit_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, route: *const htb_route) -> i32>;

/// Maps the VALUE word of a loaded unicast route (`word`, NUL-terminated,
/// `len` bytes without the NUL) to the route's value: write it to `*value`
/// and return 0, or return non-zero to refuse the word (the load then fails
/// with `HTB_STATUS_PARSE_ERROR` naming the line). Called once per route, in
/// file order. It must not call into the library with the same fib.
pub type htb_fib_value_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        word: *const c_char,
        len: usize,
        value: *mut u64,
    ) -> i32,
>;

/// A routing table: longest-prefix match over IPv4 and IPv6 prefixes, with
/// several routes per prefix ordered by metric, as Linux's main table
/// (`ip route get fibmatch`).
///
/// Thread safety: the functions that take a `const htb_fib *` (lookups,
/// `htb_fib_foreach`, `htb_fib_count`, `htb_fib_name`) may run on any
/// number of threads at once; a function that changes the fib (insert,
/// replace, remove, load, free) needs it to itself (an rwlock's rules). A
/// fib may be moved to another thread. Create with `htb_fib_new`; free with
/// `htb_fib_free`.
#[derive(Clone, Default)]
pub struct htb_fib {
    v4: Fib<Ipv4Addr, u64>,
    v6: Fib<Ipv6Addr, u64>,
    /// VALUE words of routes loaded without a value callback; a word's value
    /// is its index here.
    names: Vec<Box<str>>,
    name_ix: HashMap<Box<str>, u64>,
}

// Lookups from several threads rely on the tables having no interior
// mutability; this fails to compile if that ever changes.
const _: fn() = || {
    fn sync_and_send<T: Sync + Send>() {}
    sync_and_send::<htb_fib>();
};

fn write<T>(out: *mut T, v: T) {
    // SAFETY: every caller has checked `out` for NULL; it is valid for a
    // write of T (caller contract).
    unsafe { out.write(v) };
}

fn fib_fail(func: &str, e: &FibError) -> htb_status {
    let st = match e {
        FibError::Exists { .. } => htb_status::Exists,
        _ => htb_status::InvalidArgument,
    };
    fail(st, format_args!("{func}: {e}"))
}

impl htb_prefix {
    fn from_any(p: &AnyPrefix) -> Self {
        let mut addr = [0u8; 16];
        match p {
            AnyPrefix::V4(p) => {
                addr[..4].copy_from_slice(&p.addr().octets());
                htb_prefix {
                    family: htb_family::Ipv4 as u32,
                    len: u32::from(p.len()),
                    addr,
                }
            }
            AnyPrefix::V6(p) => htb_prefix {
                family: htb_family::Ipv6 as u32,
                len: u32::from(p.len()),
                addr: p.addr().octets(),
            },
        }
    }

    /// The core prefix; host bits set, a bad family or length is an error.
    fn to_any(self, func: &str) -> Result<AnyPrefix, htb_status> {
        let len = u8::try_from(self.len).unwrap_or(u8::MAX);
        let r = match self.family {
            4 => {
                let a: [u8; 4] = self.addr[..4].try_into().expect("4 bytes");
                Prefix::new(Ipv4Addr::from(a), len).map(AnyPrefix::V4)
            }
            6 => Prefix::new(Ipv6Addr::from(self.addr), len).map(AnyPrefix::V6),
            f => {
                return Err(fail(
                    htb_status::InvalidArgument,
                    format_args!("{func}: family {f} is not HTB_FAMILY_IPV4 (4) or IPV6 (6)"),
                ));
            }
        };
        r.map_err(|e| fib_fail(func, &e))
    }
}

fn kind_of(func: &str, kind: u32, value: u64) -> Result<RouteKind<u64>, htb_status> {
    Ok(match kind {
        1 => RouteKind::Unicast(value),
        2 => RouteKind::Blackhole,
        3 => RouteKind::Unreachable,
        4 => RouteKind::Prohibit,
        t => {
            return Err(fail(
                htb_status::InvalidArgument,
                format_args!(
                    "{func}: route type {t} is not one of HTB_ROUTE_KIND_UNICAST..PROHIBIT"
                ),
            ));
        }
    })
}

fn route_of<K: FibKey>(
    prefix: Prefix<K>,
    route: &Route<u64>,
    any: fn(Prefix<K>) -> AnyPrefix,
) -> htb_route {
    let (kind, value) = match route.kind {
        RouteKind::Unicast(v) => (htb_route_kind::Unicast, v),
        RouteKind::Blackhole => (htb_route_kind::Blackhole, 0),
        RouteKind::Unreachable => (htb_route_kind::Unreachable, 0),
        RouteKind::Prohibit => (htb_route_kind::Prohibit, 0),
    };
    htb_route {
        prefix: htb_prefix::from_any(&any(prefix)),
        kind: kind as u32,
        metric: route.metric,
        value,
    }
}

/// `len` bytes at `ptr` (checked non-NULL by the caller) as an address.
enum Addr {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

fn addr_arg(func: &str, ptr: *const u8, len: usize) -> Result<Addr, htb_status> {
    // SAFETY: non-NULL and valid for `len` bytes (caller contract).
    let b = unsafe { std::slice::from_raw_parts(ptr, len) };
    match len {
        4 => Ok(Addr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(b).expect("4 bytes"),
        ))),
        16 => Ok(Addr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(b).expect("16 bytes"),
        ))),
        n => Err(fail(
            htb_status::InvalidArgument,
            format_args!("{func}: address length {n} is neither 4 (IPv4) nor 16 (IPv6)"),
        )),
    }
}

/// Creates an empty fib (both families).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_new(out: *mut *mut htb_fib) -> htb_status {
    ffi_boundary!("htb_fib_new", {
        check_null!("htb_fib_new", out);
        write(out, Box::into_raw(Box::default()));
        htb_status::Ok
    })
}

/// Frees a fib. NULL is a no-op; freeing twice is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_free(fib: *mut htb_fib) {
    ffi_boundary!("htb_fib_free", {
        if !fib.is_null() {
            // SAFETY: a handle from this library, not freed before (contract).
            drop(unsafe { Box::from_raw(fib) });
        }
    })
}

/// Parses `len` bytes of text at `text`: `"10.0.0.0/8"`, `"2001:db8::/32"`,
/// or a bare address (a host prefix, /32 or /128). Host bits set is
/// `HTB_STATUS_INVALID_ARGUMENT` (the message suggests the masked prefix).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_prefix_parse(
    text: *const c_char,
    len: usize,
    out: *mut htb_prefix,
) -> htb_status {
    ffi_boundary!("htb_prefix_parse", {
        check_null!("htb_prefix_parse", text, out);
        let s = match text_arg("htb_prefix_parse", text, len) {
            Ok(s) => s,
            Err(st) => return st,
        };
        match s.trim().parse::<AnyPrefix>() {
            Ok(p) => {
                write(out, htb_prefix::from_any(&p));
                htb_status::Ok
            }
            Err(e) => fib_fail("htb_prefix_parse", &e),
        }
    })
}

/// Writes `prefix` as text (`"10.0.0.0/8"`, `"2001:db8::/32"`) into `buf`
/// like `snprintf` (at most `len - 1` bytes and a NUL); `*out_len` gets the
/// full length without the NUL (the text was cut iff `*out_len >= len`;
/// 44 bytes always suffice). `buf` may be NULL when `len` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_prefix_format(
    prefix: *const htb_prefix,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_prefix_format", {
        let p = try_ref!("htb_prefix_format", prefix);
        check_null!("htb_prefix_format", out_len);
        if len > 0 {
            check_null!("htb_prefix_format", buf);
        }
        let p = match p.to_any("htb_prefix_format") {
            Ok(p) => p,
            Err(st) => return st,
        };
        crate::copy_text(&p.to_string(), buf, len, out_len);
        htb_status::Ok
    })
}

fn insert_or_replace(
    func: &str,
    fib: &mut htb_fib,
    prefix: &htb_prefix,
    metric: u32,
    kind: u32,
    value: u64,
    replace: bool,
) -> htb_status {
    let p = match prefix.to_any(func) {
        Ok(p) => p,
        Err(st) => return st,
    };
    let kind = match kind_of(func, kind, value) {
        Ok(k) => k,
        Err(st) => return st,
    };
    let r = match (p, replace) {
        (AnyPrefix::V4(p), false) => fib.v4.insert(p, metric, kind),
        (AnyPrefix::V6(p), false) => fib.v6.insert(p, metric, kind),
        (AnyPrefix::V4(p), true) => fib.v4.replace(p, metric, kind).map(drop),
        (AnyPrefix::V6(p), true) => fib.v6.replace(p, metric, kind).map(drop),
    };
    match r {
        Ok(()) => htb_status::Ok,
        Err(e) => fib_fail(func, &e),
    }
}

/// Adds a route (`ip route add PREFIX metric METRIC`): `kind` is one of
/// `HTB_ROUTE_KIND_UNICAST..PROHIBIT`; `value` is stored for unicast routes
/// (a next-hop index, a class id, or a pointer cast through `uintptr_t`:
/// the library never interprets it) and ignored otherwise. A route with the
/// same prefix and metric is `HTB_STATUS_EXISTS`, whatever its type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_insert(
    fib: *mut htb_fib,
    prefix: *const htb_prefix,
    metric: u32,
    kind: u32,
    value: u64,
) -> htb_status {
    ffi_boundary!("htb_fib_insert", {
        let fib = try_mut!("htb_fib_insert", fib);
        let prefix = try_ref!("htb_fib_insert", prefix);
        insert_or_replace("htb_fib_insert", fib, prefix, metric, kind, value, false)
    })
}

/// Like `htb_fib_insert`, overwriting a route with the same prefix and
/// metric (`ip route replace`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_replace(
    fib: *mut htb_fib,
    prefix: *const htb_prefix,
    metric: u32,
    kind: u32,
    value: u64,
) -> htb_status {
    ffi_boundary!("htb_fib_replace", {
        let fib = try_mut!("htb_fib_replace", fib);
        let prefix = try_ref!("htb_fib_replace", prefix);
        insert_or_replace("htb_fib_replace", fib, prefix, metric, kind, value, true)
    })
}

/// Removes the route of `prefix` with `metric`; `HTB_STATUS_NOT_FOUND` when
/// there is none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_remove(
    fib: *mut htb_fib,
    prefix: *const htb_prefix,
    metric: u32,
) -> htb_status {
    ffi_boundary!("htb_fib_remove", {
        let fib = try_mut!("htb_fib_remove", fib);
        let prefix = try_ref!("htb_fib_remove", prefix);
        let p = match prefix.to_any("htb_fib_remove") {
            Ok(p) => p,
            Err(st) => return st,
        };
        let removed = match p {
            AnyPrefix::V4(p) => fib.v4.remove(&p, metric).is_some(),
            AnyPrefix::V6(p) => fib.v6.remove(&p, metric).is_some(),
        };
        if removed {
            htb_status::Ok
        } else {
            fail(
                htb_status::NotFound,
                format_args!("htb_fib_remove: no route {p} metric {metric}"),
            )
        }
    })
}

/// Removes every route of `prefix` (all metrics); `*removed` (which may be
/// NULL) gets how many. None is not an error (`*removed` = 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_remove_prefix(
    fib: *mut htb_fib,
    prefix: *const htb_prefix,
    removed: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_fib_remove_prefix", {
        let fib = try_mut!("htb_fib_remove_prefix", fib);
        let prefix = try_ref!("htb_fib_remove_prefix", prefix);
        let n = match prefix.to_any("htb_fib_remove_prefix") {
            Ok(AnyPrefix::V4(p)) => fib.v4.remove_prefix(&p).len(),
            Ok(AnyPrefix::V6(p)) => fib.v6.remove_prefix(&p).len(),
            Err(st) => return st,
        };
        if !removed.is_null() {
            write(removed, n);
        }
        htb_status::Ok
    })
}

/// Longest-prefix match of the address at `addr` (`addr_len` bytes, network
/// order: 4 for IPv4, 16 for IPv6): what `ip route get fibmatch` answers.
/// `*out` gets the matched prefix and its lowest-metric route, which may be
/// a blackhole, unreachable or prohibit route (a lookup that lands on one
/// does not fall back to a shorter prefix). `HTB_STATUS_NOT_FOUND` when no
/// prefix holds the address.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_lookup(
    fib: *const htb_fib,
    addr: *const u8,
    addr_len: usize,
    out: *mut htb_route,
) -> htb_status {
    ffi_boundary!("htb_fib_lookup", {
        let fib = try_ref!("htb_fib_lookup", fib);
        check_null!("htb_fib_lookup", addr, out);
        let found = match addr_arg("htb_fib_lookup", addr, addr_len) {
            Ok(Addr::V4(a)) => fib
                .v4
                .lookup(a)
                .map(|m| route_of(m.prefix, m.route, AnyPrefix::V4)),
            Ok(Addr::V6(a)) => fib
                .v6
                .lookup(a)
                .map(|m| route_of(m.prefix, m.route, AnyPrefix::V6)),
            Err(st) => return st,
        };
        match found {
            Some(r) => {
                write(out, r);
                htb_status::Ok
            }
            // Not a failure worth a message: leave the last error alone, as
            // HTB_STATUS_EMPTY does, so a miss costs no allocation.
            None => htb_status::NotFound,
        }
    })
}

/// Addresses looked up per call of the core's batch lookup: enough to
/// overlap the memory accesses, small enough for the stack.
const BATCH: usize = 64;

fn batch<K: FibKey + Copy>(
    fib: &Fib<K, u64>,
    addrs: &[u8],
    width: usize,
    out: &mut [htb_route],
    from: fn(&[u8]) -> K,
    any: fn(Prefix<K>) -> AnyPrefix,
) {
    let mut keys = [from(&[0u8; 16][..width]); BATCH];
    let mut ids: [Option<EntryId>; BATCH] = [None; BATCH];
    for (chunk, outs) in addrs.chunks(width * BATCH).zip(out.chunks_mut(BATCH)) {
        let n = outs.len();
        for (k, a) in keys.iter_mut().zip(chunk.chunks_exact(width)) {
            *k = from(a);
        }
        fib.lookup_batch(&keys[..n], &mut ids[..n])
            .expect("equal lengths by construction");
        for (o, id) in outs.iter_mut().zip(&ids[..n]) {
            *o = match id.and_then(|id| fib.resolve(id)) {
                Some(m) => route_of(m.prefix, m.route, any),
                None => htb_route::default(),
            };
        }
    }
}

/// Looks up `count` addresses of `addr_len` bytes each (4: IPv4, 16: IPv6),
/// stored back to back at `addrs` (`count * addr_len` bytes), into
/// `out[0..count]`; `out_count` (the room at `out`) must be at least
/// `count`, else `HTB_STATUS_BUFFER_TOO_SMALL`. Each slot gets what
/// `htb_fib_lookup` would, or a zeroed route of type `HTB_ROUTE_KIND_NONE`
/// for an address that matches nothing. Faster per address than a loop of
/// `htb_fib_lookup` (the lookups overlap their memory accesses). `addrs` and
/// `out` may be NULL when `count` is 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_lookup_batch(
    fib: *const htb_fib,
    addrs: *const u8,
    addr_len: usize,
    count: usize,
    out: *mut htb_route,
    out_count: usize,
) -> htb_status {
    ffi_boundary!("htb_fib_lookup_batch", {
        let fib = try_ref!("htb_fib_lookup_batch", fib);
        if addr_len != 4 && addr_len != 16 {
            return fail(
                htb_status::InvalidArgument,
                format_args!(
                    "htb_fib_lookup_batch: address length {addr_len} is neither 4 (IPv4) nor 16 (IPv6)"
                ),
            );
        }
        if out_count < count {
            return fail(
                htb_status::BufferTooSmall,
                format_args!(
                    "htb_fib_lookup_batch: {count} addresses but room for {out_count} results"
                ),
            );
        }
        if count == 0 {
            return htb_status::Ok;
        }
        check_null!("htb_fib_lookup_batch", addrs, out);
        let Some(bytes) = count.checked_mul(addr_len) else {
            return fail(
                htb_status::InvalidArgument,
                "htb_fib_lookup_batch: count * addr_len overflows",
            );
        };
        // SAFETY: valid for `count * addr_len` bytes and `count` results
        // (caller contract); the two do not overlap (different types).
        let (a, o) = unsafe {
            (
                std::slice::from_raw_parts(addrs, bytes),
                std::slice::from_raw_parts_mut(out, count),
            )
        };
        if addr_len == 4 {
            batch(
                &fib.v4,
                a,
                4,
                o,
                |b| Ipv4Addr::from(<[u8; 4]>::try_from(b).expect("4 bytes")),
                AnyPrefix::V4,
            );
        } else {
            batch(
                &fib.v6,
                a,
                16,
                o,
                |b| Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")),
                AnyPrefix::V6,
            );
        }
        htb_status::Ok
    })
}

/// The number of routes of `family` (`HTB_FAMILY_ANY`: both) into `*out`;
/// several routes of one prefix (different metrics) count separately.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_count(
    fib: *const htb_fib,
    family: u32,
    out: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_fib_count", {
        let fib = try_ref!("htb_fib_count", fib);
        check_null!("htb_fib_count", out);
        let n = match family {
            0 => fib.v4.len() + fib.v6.len(),
            4 => fib.v4.len(),
            6 => fib.v6.len(),
            f => return bad_family("htb_fib_count", f),
        };
        write(out, n);
        htb_status::Ok
    })
}

fn bad_family(func: &str, f: u32) -> htb_status {
    fail(
        htb_status::InvalidArgument,
        format_args!("{func}: family {f} is not HTB_FAMILY_ANY (0), IPV4 (4) or IPV6 (6)"),
    )
}

fn visit<K: FibKey>(
    fib: &Fib<K, u64>,
    any: fn(Prefix<K>) -> AnyPrefix,
    cb: unsafe extern "C" fn(*mut c_void, *const htb_route) -> i32,
    user: *mut c_void,
) -> bool {
    for (p, routes) in fib.iter() {
        for r in routes {
            let route = route_of(p, r, any);
            // SAFETY: a C function pointer given by the caller; `route`
            // lives for the call.
            if unsafe { cb(user, &route) } != 0 {
                return false;
            }
        }
    }
    true
}

/// Calls `cb(user, route)` for every route of `family` (`HTB_FAMILY_ANY`:
/// IPv4 then IPv6), in prefix order (address, then length; the routes of a
/// prefix by metric), until it returns non-zero. The callback may call the
/// const functions on the same fib but must not change it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_foreach(
    fib: *const htb_fib,
    family: u32,
    cb: htb_route_visit_fn,
    user: *mut c_void,
) -> htb_status {
    ffi_boundary!("htb_fib_foreach", {
        let fib = try_ref!("htb_fib_foreach", fib);
        let Some(cb) = cb else {
            return crate::error::null_param("htb_fib_foreach", "cb");
        };
        match family {
            0 => {
                if visit(&fib.v4, AnyPrefix::V4, cb, user) {
                    visit(&fib.v6, AnyPrefix::V6, cb, user);
                }
            }
            4 => {
                visit(&fib.v4, AnyPrefix::V4, cb, user);
            }
            6 => {
                visit(&fib.v6, AnyPrefix::V6, cb, user);
            }
            f => return bad_family("htb_fib_foreach", f),
        }
        htb_status::Ok
    })
}

/// Adds every route of a route text to `next`, mapping values with `map`
/// (or interning them as names); `Err` is `(status, message)`.
fn load_into(
    next: &mut htb_fib,
    text: &str,
    file: &str,
    map: htb_fib_value_fn,
    user: *mut c_void,
) -> Result<usize, (htb_status, String)> {
    let mut added = 0;
    for (n, line) in text.lines().enumerate() {
        let at = |m: &dyn std::fmt::Display| format!("{file}:{}: {m}", n + 1);
        let r = match parse_line(line) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(m) => return Err((htb_status::ParseError, at(&m))),
        };
        let kind = match r.kind {
            RouteKind::Unicast(word) => RouteKind::Unicast(match map {
                Some(cb) => {
                    let Ok(c) = CString::new(word.as_str()) else {
                        return Err((htb_status::ParseError, at(&"value contains a NUL byte")));
                    };
                    let mut v = 0u64;
                    // SAFETY: a C function pointer given by the caller; the
                    // word and `v` live for the call.
                    if unsafe { cb(user, c.as_ptr(), word.len(), &mut v) } != 0 {
                        return Err((
                            htb_status::ParseError,
                            at(&format_args!("value \"{word}\" refused by the callback")),
                        ));
                    }
                    v
                }
                None => match next.name_ix.get(word.as_str()) {
                    Some(&v) => v,
                    None => {
                        let v = next.names.len() as u64;
                        let w: Box<str> = word.into();
                        next.names.push(w.clone());
                        next.name_ix.insert(w, v);
                        v
                    }
                },
            }),
            RouteKind::Blackhole => RouteKind::Blackhole,
            RouteKind::Unreachable => RouteKind::Unreachable,
            RouteKind::Prohibit => RouteKind::Prohibit,
        };
        match r.prefix {
            AnyPrefix::V4(p) => next.v4.insert(p, r.metric, kind),
            AnyPrefix::V6(p) => next.v6.insert(p, r.metric, kind),
        }
        .map_err(|e| {
            let st = match e {
                FibError::Exists { .. } => htb_status::Exists,
                _ => htb_status::ParseError,
            };
            (st, at(&e))
        })?;
        added += 1;
    }
    Ok(added)
}

fn load(
    func: &str,
    fib: &mut htb_fib,
    text: &str,
    file: &str,
    map: htb_fib_value_fn,
    user: *mut c_void,
    added: *mut usize,
) -> htb_status {
    // All or nothing: the routes go into a copy that replaces the fib only
    // when every line went in.
    let mut next = fib.clone();
    match load_into(&mut next, text, file, map, user) {
        Ok(n) => {
            *fib = next;
            if !added.is_null() {
                write(added, n);
            }
            htb_status::Ok
        }
        Err((st, m)) => fail(st, format_args!("{func}: {m}")),
    }
}

/// Adds the routes of a route text (`len` bytes of UTF-8 at `text`): lines
/// `PREFIX[/LEN] VALUE [METRIC]` and/or the output of `ip route show` /
/// `ip -6 route show` (the value is then `GW@DEV`, `GW` or `DEV`), `#`
/// comments; `blackhole`, `unreachable` and `prohibit` make routes of those
/// types.
///
/// Values: with a `map` callback, it turns each VALUE word into the route's
/// value. With `map` NULL, each distinct word is numbered in order of first
/// appearance in the fib's name list and the route's value is that number;
/// `htb_fib_name` gives the word back.
///
/// All or nothing: the routes go into a copy of the fib that replaces it
/// once every line went in (so a load briefly needs room for two tables).
/// On an error the fib is unchanged and the last error says
/// `<text>:LINE: why` (`HTB_STATUS_PARSE_ERROR`, or `HTB_STATUS_EXISTS` for a
/// prefix and metric already present). `*added` (which may be NULL) gets the
/// number of routes added.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_load(
    fib: *mut htb_fib,
    text: *const c_char,
    len: usize,
    map: htb_fib_value_fn,
    user: *mut c_void,
    added: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_fib_load", {
        let fib = try_mut!("htb_fib_load", fib);
        check_null!("htb_fib_load", text);
        match text_arg("htb_fib_load", text, len) {
            Ok(s) => load("htb_fib_load", fib, s, "<text>", map, user, added),
            Err(st) => st,
        }
    })
}

/// Like `htb_fib_load`, reading the file at `path` (NUL-terminated);
/// `HTB_STATUS_IO_ERROR` when it cannot be read. Errors name `path:LINE`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_load_file(
    fib: *mut htb_fib,
    path: *const c_char,
    map: htb_fib_value_fn,
    user: *mut c_void,
    added: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_fib_load_file", {
        let fib = try_mut!("htb_fib_load_file", fib);
        check_null!("htb_fib_load_file", path);
        // SAFETY: non-NULL and NUL-terminated (caller contract).
        let p = match crate::path_arg("htb_fib_load_file", unsafe { CStr::from_ptr(path) }) {
            Ok(p) => p,
            Err(st) => return st,
        };
        let text = match std::fs::read(&p) {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    htb_status::IoError,
                    format_args!("htb_fib_load_file: {}: {e}", p.display()),
                );
            }
        };
        match std::str::from_utf8(&text) {
            Ok(s) => load(
                "htb_fib_load_file",
                fib,
                s,
                &p.display().to_string(),
                map,
                user,
                added,
            ),
            Err(e) => fail(
                htb_status::ParseError,
                format_args!("htb_fib_load_file: {}: not UTF-8 ({e})", p.display()),
            ),
        }
    })
}

/// The VALUE word that a route loaded without a callback got `value` for,
/// copied into `buf` like `snprintf` (`*out_len`: the full length without
/// the NUL; `buf` may be NULL when `len` is 0). `HTB_STATUS_NOT_FOUND` when
/// `value` is not the number of a loaded word (values given to
/// `htb_fib_insert` have no name).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fib_name(
    fib: *const htb_fib,
    value: u64,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> htb_status {
    ffi_boundary!("htb_fib_name", {
        let fib = try_ref!("htb_fib_name", fib);
        check_null!("htb_fib_name", out_len);
        if len > 0 {
            check_null!("htb_fib_name", buf);
        }
        let Some(name) = usize::try_from(value).ok().and_then(|i| fib.names.get(i)) else {
            return fail(
                htb_status::NotFound,
                format_args!(
                    "htb_fib_name: value {value} is not one of the {} loaded names",
                    fib.names.len()
                ),
            );
        };
        crate::copy_text(name, buf, len, out_len);
        htb_status::Ok
    })
}
