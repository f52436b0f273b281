//! Status codes, the per-thread last-error message and the panic boundary.

use std::cell::RefCell;
use std::fmt::Write as _;

use htb_core::HtbError;

/// The result of every fallible function.
///
/// The numbers are stable: a code keeps its number forever and new codes get
/// new numbers. `htb_status_str()` names each one; `htb_last_error()` gives
/// the message of the most recent failure on the calling thread.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum htb_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// An argument is out of its range: a zero rate or length, a handle above
    /// 0xffff, an unknown link layer, text that does not parse, ...
    InvalidArgument = 2,
    /// A class id with minor 0 (that names the qdisc) or with a major other
    /// than the qdisc's handle.
    BadClassId = 3,
    /// No class with this id exists.
    UnknownClass = 4,
    /// The parent named does not exist.
    UnknownParent = 5,
    /// A class with this id already exists.
    DuplicateClass = 6,
    /// The class still has children (tc: "class in use").
    ClassHasChildren = 7,
    /// The tree would be deeper than 8 levels.
    TooDeep = 8,
    /// The operation needs a leaf class.
    NotALeaf = 9,
    /// A tc script did not load; the message says file:line:col and why.
    ParseError = 10,
    /// A file could not be read.
    IoError = 11,
    /// `htb_enqueue`: the packet was not queued (see the drop reason); it is
    /// still the caller's.
    Dropped = 12,
    /// `htb_dequeue` / `htb_next_wakeup`: nothing is queued.
    Empty = 13,
    /// `htb_dequeue`: packets are queued but none may be sent at `now`; call
    /// again at `htb_next_wakeup()`.
    Throttled = 14,
    /// An index past the end (`htb_class_at`).
    OutOfRange = 15,
    /// A bug in the library was caught at the boundary (a Rust panic). The
    /// handle involved should be freed.
    Panic = 16,
    /// Nothing matched: no route for an address (`htb_fib_lookup`, which
    /// leaves the last error alone), no route with that prefix and metric,
    /// no name for a value, no completed datagram waiting.
    NotFound = 17,
    /// A route with this prefix and metric exists (`ip route add`'s
    /// "File exists").
    Exists = 18,
    /// A caller buffer is too small. The function's size output says how
    /// much is needed, and nothing was lost (see each function).
    BufferTooSmall = 19,
    /// Not a well-formed IPv4 or IPv6 packet (the message says why).
    Malformed = 20,
    /// IPv6 reassembly: the kernel drops this fragment and answers ICMPv6
    /// Parameter Problem; the result holds the code and pointer.
    ParamProblem = 21,
    /// IPv4 DF is set and the packet exceeds the MTU: the kernel answers
    /// ICMP "fragmentation needed"; the result holds the MTU to report.
    DontFragment = 22,
    /// The MTU is too small for this packet; the result holds the smallest
    /// that works.
    MtuTooSmall = 23,
    /// `htb_reasm_push`: a completed datagram is still waiting for
    /// `htb_reasm_take`; nothing was done with this packet.
    Pending = 24,
}

impl htb_status {
    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        use htb_status::*;
        Some(match v {
            0 => Ok,
            1 => NullParameter,
            2 => InvalidArgument,
            3 => BadClassId,
            4 => UnknownClass,
            5 => UnknownParent,
            6 => DuplicateClass,
            7 => ClassHasChildren,
            8 => TooDeep,
            9 => NotALeaf,
            10 => ParseError,
            11 => IoError,
            12 => Dropped,
            13 => Empty,
            14 => Throttled,
            15 => OutOfRange,
            16 => Panic,
            17 => NotFound,
            18 => Exists,
            19 => BufferTooSmall,
            20 => Malformed,
            21 => ParamProblem,
            22 => DontFragment,
            23 => MtuTooSmall,
            24 => Pending,
            _ => return None,
        })
    }

    pub(crate) fn text(self) -> &'static std::ffi::CStr {
        use htb_status::*;
        match self {
            Ok => c"ok",
            NullParameter => c"a required pointer argument was NULL",
            InvalidArgument => c"invalid argument",
            BadClassId => c"bad class id (minor 0, or not the qdisc's major)",
            UnknownClass => c"no such class",
            UnknownParent => c"no such parent class",
            DuplicateClass => c"class already exists",
            ClassHasChildren => c"class has children",
            TooDeep => c"class tree too deep (at most 8 levels)",
            NotALeaf => c"class is not a leaf",
            ParseError => c"tc script error",
            IoError => c"I/O error",
            Dropped => c"packet dropped",
            Empty => c"nothing queued",
            Throttled => c"packets queued, none may be sent now",
            OutOfRange => c"index out of range",
            Panic => c"internal error (panic caught at the C boundary)",
            NotFound => c"not found",
            Exists => c"route exists",
            BufferTooSmall => c"buffer too small",
            Malformed => c"malformed IP packet",
            ParamProblem => c"IPv6 parameter problem",
            DontFragment => c"DF set and packet larger than the MTU",
            MtuTooSmall => c"MTU too small",
            Pending => c"a completed datagram is waiting (htb_reasm_take)",
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `msg` as this thread's last error and returns `status`.
pub(crate) fn fail(status: htb_status, msg: impl std::fmt::Display) -> htb_status {
    LAST_ERROR.with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            e.clear();
            let _ = write!(e, "{msg}");
        }
    });
    status
}

/// The message of this thread's last error (empty when none).
pub(crate) fn last_error() -> String {
    LAST_ERROR.with(|e| e.try_borrow().map(|e| e.clone()).unwrap_or_default())
}

/// Maps a core configuration error to its status, recording the message.
pub(crate) fn fail_htb(func: &str, e: &HtbError) -> htb_status {
    #[allow(unreachable_patterns)] // the core may grow variants
    let status = match e {
        HtbError::ClassIdIsQdisc(_) | HtbError::WrongMajor { .. } | HtbError::BadClassId(_) => {
            htb_status::BadClassId
        }
        HtbError::DuplicateClass(_) => htb_status::DuplicateClass,
        HtbError::UnknownClass(_) => htb_status::UnknownClass,
        HtbError::UnknownParent(_) => htb_status::UnknownParent,
        HtbError::TooDeep(_) => htb_status::TooDeep,
        HtbError::ClassHasChildren(_) => htb_status::ClassHasChildren,
        HtbError::NotALeaf(_) => htb_status::NotALeaf,
        HtbError::ZeroRate(_)
        | HtbError::ZeroCeil(_)
        | HtbError::BurstOutOfRange(_)
        | HtbError::BadParameter(_) => htb_status::InvalidArgument,
        _ => htb_status::InvalidArgument,
    };
    fail(status, format_args!("{func}: {e}"))
}

/// Records a NULL argument.
pub(crate) fn null_param(func: &str, arg: &str) -> htb_status {
    fail(
        htb_status::NullParameter,
        format_args!("{func}: argument `{arg}` is NULL"),
    )
}

/// What an `extern "C"` function returns when its body panicked.
pub(crate) trait PanicValue {
    fn panic_value() -> Self;
}

impl PanicValue for htb_status {
    fn panic_value() -> Self {
        htb_status::Panic
    }
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl PanicValue for usize {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

/// Records a caught panic as the last error.
pub(crate) fn record_panic(func: &str, payload: &(dyn std::any::Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic payload");
    fail(htb_status::Panic, format_args!("{func}: panic: {what}"));
}

/// Runs an `extern "C"` body so that a panic never unwinds into C: it is
/// caught, recorded as the last error, and turned into the function's panic
/// value (`HTB_STATUS_PANIC`, NULL, or nothing). `return` inside the body
/// returns from the body.
macro_rules! ffi_boundary {
    ($func:literal, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(payload) => {
                $crate::error::record_panic($func, &*payload);
                $crate::error::PanicValue::panic_value()
            }
        }
    };
}

/// `&*ptr`, or return `HTB_STATUS_NULL_PARAMETER` from the body.
macro_rules! try_ref {
    ($func:literal, $ptr:ident) => {
        // SAFETY: the caller passes NULL or a valid pointer (header contract).
        match unsafe { $ptr.as_ref() } {
            Some(r) => r,
            None => return $crate::error::null_param($func, stringify!($ptr)),
        }
    };
}

/// `&mut *ptr`, or return `HTB_STATUS_NULL_PARAMETER` from the body.
macro_rules! try_mut {
    ($func:literal, $ptr:ident) => {
        // SAFETY: the caller passes NULL or a valid, unaliased pointer.
        match unsafe { $ptr.as_mut() } {
            Some(r) => r,
            None => return $crate::error::null_param($func, stringify!($ptr)),
        }
    };
}

/// Returns `HTB_STATUS_NULL_PARAMETER` from the body when `ptr` is NULL.
macro_rules! check_null {
    ($func:literal, $($ptr:ident),+) => {
        $(
            if $ptr.is_null() {
                return $crate::error::null_param($func, stringify!($ptr));
            }
        )+
    };
}

pub(crate) use {check_null, ffi_boundary, try_mut, try_ref};

#[cfg(test)]
mod test {
    use super::*;
    use std::ffi::c_char;

    fn panics() -> htb_status {
        ffi_boundary!("panics", {
            if last_error().len() < usize::MAX {
                panic!("boom");
            }
            htb_status::Ok
        })
    }

    #[test]
    fn panic_becomes_status_and_message() {
        assert_eq!(panics(), htb_status::Panic);
        assert_eq!(last_error(), "panics: panic: boom");
        let p: *const c_char = ffi_boundary!("p", { panic!("x {}", 1) });
        assert!(p.is_null());
        assert_eq!(last_error(), "p: panic: x 1");
    }

    #[test]
    fn every_code_round_trips_and_has_text() {
        for v in 0..=24 {
            let s = htb_status::from_u32(v).unwrap();
            assert_eq!(s as u32, v);
            assert!(!s.text().to_bytes().is_empty());
        }
        assert_eq!(htb_status::from_u32(25), None);
    }
}
