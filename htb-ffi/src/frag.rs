//! IP fragmentation: `htb_fragment` (into one caller buffer) and
//! `htb_fragment_each` (a callback per fragment).

use std::ffi::c_void;

use htb_core::frag::{FragError, FragOptions, Fragmenter};

use crate::error::{check_null, fail, ffi_boundary, htb_status, try_ref};

/// How to fragment. `htb_frag_options o = {0}; o.mtu = 1500;` is valid.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_frag_options {
    /// Link MTU in bytes (IPv4: at least 68; IPv6: at least 1280).
    pub mtu: usize,
    /// IPv6 identification, used when `set_ipv6_id` is true; otherwise a
    /// random 32-bit value per datagram, as Linux does. Ignored for IPv4
    /// (the packet's own id is kept).
    pub ipv6_id: u32,
    /// Use `ipv6_id` (reproducible output, tests).
    pub set_ipv6_id: bool,
    /// Fragment an IPv4 packet even when DF is set (the kernel's
    /// `ignore_df`); false: DF gives `HTB_STATUS_DONT_FRAGMENT`.
    pub ignore_df: bool,
}

/// The result of `htb_fragment` / `htb_fragment_each`, written on
/// `HTB_STATUS_OK`, `HTB_STATUS_BUFFER_TOO_SMALL`, `HTB_STATUS_DONT_FRAGMENT`
/// and `HTB_STATUS_MTU_TOO_SMALL`. Fields that do not apply are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct htb_frag_result {
    /// Fragments written (`HTB_STATUS_OK`) or needed
    /// (`HTB_STATUS_BUFFER_TOO_SMALL`: the room `frag_lens` needs).
    pub count: usize,
    /// Bytes written, or needed in `buf` (`HTB_STATUS_BUFFER_TOO_SMALL`).
    pub bytes: usize,
    /// `HTB_STATUS_DONT_FRAGMENT`: the MTU to report in ICMP "fragmentation
    /// needed". `HTB_STATUS_MTU_TOO_SMALL`: the smallest MTU that works.
    pub mtu: usize,
}

/// Receives fragment number `index` (from 0), `len` bytes at `frag`, valid
/// only during the call. Return 0 to go on, anything else to stop.
pub type htb_fragment_fn = Option<
    unsafe extern "C" fn(user: *mut c_void, frag: *const u8, len: usize, index: usize) -> i32,
>;

fn write<T>(out: *mut T, v: T) {
    // SAFETY: every caller has checked `out` for NULL; it is valid for a
    // write of T (caller contract).
    unsafe { out.write(v) };
}

/// Maps a core error to its status, filling `res` where it carries a size.
fn frag_fail(func: &str, e: &FragError, res: *mut htb_frag_result) -> htb_status {
    let (st, mtu) = match e {
        // An IPv6 packet that already carries a fragment header cannot be
        // fragmented again: as for a malformed one, the packet is at fault.
        FragError::Malformed(_) | FragError::AlreadyFragment => (htb_status::Malformed, None),
        FragError::DontFragment { mtu } => (htb_status::DontFragment, Some(*mtu)),
        FragError::MtuTooSmall { min, .. } => (htb_status::MtuTooSmall, Some(*min)),
        FragError::BufferTooSmall { .. } => (htb_status::BufferTooSmall, None),
        _ => (htb_status::InvalidArgument, None),
    };
    if let Some(mtu) = mtu {
        write(
            res,
            htb_frag_result {
                mtu,
                ..Default::default()
            },
        );
    }
    fail(st, format_args!("{func}: {e}"))
}

fn start<'a>(
    func: &str,
    pkt: &'a [u8],
    opts: &htb_frag_options,
    res: *mut htb_frag_result,
) -> Result<Fragmenter<'a>, htb_status> {
    let o = FragOptions {
        mtu: opts.mtu,
        ipv6_id: opts.set_ipv6_id.then_some(opts.ipv6_id),
        ignore_df: opts.ignore_df,
    };
    Fragmenter::new(pkt, o).map_err(|e| frag_fail(func, &e, res))
}

/// Fragments the IP packet at `pkt` (`len` bytes, IPv4 or IPv6 by its
/// version nibble) for `opts->mtu`, as the Linux kernel does: the fragments
/// go back to back into `buf` (room `buf_len`) and their lengths into
/// `frag_lens` (room for `max_frags`); fragment i starts at the sum of the
/// lengths before it. `res->count` and `res->bytes` say how many and how
/// much. A packet that fits the MTU comes back unchanged as the one
/// fragment.
///
/// Sizing: when `buf` or `frag_lens` is too small, `HTB_STATUS_BUFFER_TOO_SMALL`
/// with the room needed in `res->count` and `res->bytes` (the contents of
/// `buf` are then unspecified); `buf_len = 0, max_frags = 0` (NULL buffers)
/// asks just for the sizes. `opts->mtu` bytes per fragment always suffice.
///
/// Errors: `HTB_STATUS_MALFORMED` (also for an IPv6 packet that already
/// carries a fragment header); `HTB_STATUS_DONT_FRAGMENT` (IPv4 DF set
/// and `ignore_df` false: `res->mtu` is the MTU for ICMP "fragmentation
/// needed"); `HTB_STATUS_MTU_TOO_SMALL` (`res->mtu`: the smallest that
/// works).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fragment(
    pkt: *const u8,
    len: usize,
    opts: *const htb_frag_options,
    buf: *mut u8,
    buf_len: usize,
    frag_lens: *mut usize,
    max_frags: usize,
    res: *mut htb_frag_result,
) -> htb_status {
    ffi_boundary!("htb_fragment", {
        let opts = try_ref!("htb_fragment", opts);
        check_null!("htb_fragment", pkt, res);
        if buf_len > 0 {
            check_null!("htb_fragment", buf);
        }
        if max_frags > 0 {
            check_null!("htb_fragment", frag_lens);
        }
        // SAFETY: non-NULL and valid for `len` bytes (caller contract).
        let packet = unsafe { std::slice::from_raw_parts(pkt, len) };
        let mut f = match start("htb_fragment", packet, opts, res) {
            Ok(f) => f,
            Err(st) => return st,
        };
        let out: &mut [u8] = if buf_len == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL and valid for `buf_len` bytes (caller
            // contract); it does not overlap `pkt` (the packet is read-only
            // input, the buffer output).
            unsafe { std::slice::from_raw_parts_mut(buf, buf_len) }
        };
        let total = f.remaining();
        let (mut used, mut i) = (0usize, 0usize);
        while let Some(n) = f.next_len() {
            if i >= max_frags || n > out.len() - used {
                // Too small: count what the rest needs on a copy of the plan,
                // through a scratch buffer (this path may allocate).
                let mut rest = f.clone();
                let mut scratch = Vec::new();
                let mut bytes = used;
                while let Some(n) = rest.next_len() {
                    scratch.resize(n, 0);
                    match rest.next_into(&mut scratch) {
                        Ok(Some(n)) => bytes += n,
                        Ok(None) => break,
                        Err(e) => return frag_fail("htb_fragment", &e, res),
                    }
                }
                write(
                    res,
                    htb_frag_result {
                        count: total,
                        bytes,
                        mtu: 0,
                    },
                );
                return fail(
                    htb_status::BufferTooSmall,
                    format_args!(
                        "htb_fragment: {total} fragments of {bytes} bytes in all; room for \
                         {max_frags} fragments and {buf_len} bytes"
                    ),
                );
            }
            match f.next_into(&mut out[used..]) {
                Ok(Some(n)) => {
                    // SAFETY: i < max_frags, `frag_lens` is valid for
                    // `max_frags` entries (caller contract).
                    unsafe { frag_lens.add(i).write(n) };
                    used += n;
                    i += 1;
                }
                Ok(None) => break,
                Err(e) => return frag_fail("htb_fragment", &e, res),
            }
        }
        write(
            res,
            htb_frag_result {
                count: i,
                bytes: used,
                mtu: 0,
            },
        );
        htb_status::Ok
    })
}

/// Like `htb_fragment`, handing each fragment to `cb(user, frag, len,
/// index)` in order from a buffer the library owns (no sizing needed). When
/// the callback returns non-zero the rest is not made; `res->count` and
/// `res->bytes` count the fragments delivered either way.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn htb_fragment_each(
    pkt: *const u8,
    len: usize,
    opts: *const htb_frag_options,
    cb: htb_fragment_fn,
    user: *mut c_void,
    res: *mut htb_frag_result,
) -> htb_status {
    ffi_boundary!("htb_fragment_each", {
        let opts = try_ref!("htb_fragment_each", opts);
        check_null!("htb_fragment_each", pkt, res);
        let Some(cb) = cb else {
            return crate::error::null_param("htb_fragment_each", "cb");
        };
        // SAFETY: non-NULL and valid for `len` bytes (caller contract).
        let packet = unsafe { std::slice::from_raw_parts(pkt, len) };
        let mut f = match start("htb_fragment_each", packet, opts, res) {
            Ok(f) => f,
            Err(st) => return st,
        };
        let mut scratch = Vec::new();
        let (mut count, mut bytes) = (0usize, 0usize);
        while let Some(n) = f.next_len() {
            scratch.resize(n, 0);
            let n = match f.next_into(&mut scratch) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => return frag_fail("htb_fragment_each", &e, res),
            };
            // SAFETY: a C function pointer given by the caller; the
            // fragment lives for the call.
            let stop = unsafe { cb(user, scratch.as_ptr(), n, count) } != 0;
            count += 1;
            bytes += n;
            if stop {
                break;
            }
        }
        write(
            res,
            htb_frag_result {
                count,
                bytes,
                mtu: 0,
            },
        );
        htb_status::Ok
    })
}
