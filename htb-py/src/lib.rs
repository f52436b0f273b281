//! Python bindings for the `htb` crate: the native module `htb._htb`.
//!
//! A thin layer: it translates Python values into the library's types
//! (class ids, tc rates and sizes, addresses and prefixes), calls the
//! library, and translates results and errors back. It holds no shaping or
//! routing logic of its own.
//!
//! * Errors: every library error becomes `htb.HtbError` (a `ValueError`) or
//!   one of its subclasses `ConfigError` (refused configuration), `ParseError`
//!   (bad text: class ids, rates, sizes, tc scripts, flows, prefixes, route
//!   files) and `PacketError` (a packet the shaper, the reassembler or the
//!   fragmenter cannot take; subclasses `ParamProblemError` with `code` and
//!   `pointer`, `FragmentationNeededError` with `mtu`), carrying the Rust
//!   error's message. Wrong Python types raise `TypeError`.
//! * Threads: the module declares no GIL dependence (PyO3's default), so
//!   every class is `Sync`: mutable state sits behind a `Mutex`/`RwLock`
//!   that is never held while Python code can run. Simulations, route-file
//!   loads, batch lookups and batch reassembly run with the GIL released.

#![forbid(unsafe_code)]

use std::ffi::CString;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyUserWarning, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

mod fib;
mod qdisc;
mod reasm;
mod sim;

pyo3::create_exception!(
    htb,
    HtbError,
    PyValueError,
    "Base class of every error raised by htb (a ValueError)."
);
pyo3::create_exception!(
    htb,
    ConfigError,
    HtbError,
    "A configuration call was refused (unknown class, duplicate route, ...)."
);
pyo3::create_exception!(
    htb,
    ParseError,
    HtbError,
    "Text did not parse: a class id, rate, size, duration, tc script, flows, prefix or route file."
);
pyo3::create_exception!(
    htb,
    PacketError,
    HtbError,
    "A packet the library cannot take: a size out of range, a malformed IP packet."
);
pyo3::create_exception!(
    htb,
    ParamProblemError,
    PacketError,
    "An IPv6 fragment the kernel drops with ICMPv6 Parameter Problem; `code` and `pointer` say which."
);
pyo3::create_exception!(
    htb,
    FragmentationNeededError,
    PacketError,
    "An IPv4 packet with DF set exceeds the MTU; `mtu` is what ICMP \"fragmentation needed\" reports."
);
pyo3::create_exception!(
    htb,
    HtbWarning,
    PyUserWarning,
    "A warning tc would print (e.g. a quantum clamped by r2q)."
);

/// The library's configuration errors: a bad class id string is a parse
/// error, everything else a refused configuration.
pub(crate) fn htb_err(e: htb::HtbError) -> PyErr {
    match e {
        htb::HtbError::BadClassId(_) => ParseError::new_err(e.to_string()),
        _ => ConfigError::new_err(e.to_string()),
    }
}

/// A unit-grammar error (rates, sizes) for the parameter `what`.
pub(crate) fn unit_err(what: &str, e: htb::rate::UnitError) -> PyErr {
    ParseError::new_err(format!("{what}: {e}"))
}

/// Locks a mutex; a poisoned one (a panic inside the library) becomes an
/// `HtbError` instead of a second panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> PyResult<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| HtbError::new_err("internal state is unusable after an earlier panic"))
}

pub(crate) fn read<T>(m: &RwLock<T>) -> PyResult<RwLockReadGuard<'_, T>> {
    m.read()
        .map_err(|_| HtbError::new_err("internal state is unusable after an earlier panic"))
}

pub(crate) fn write<T>(m: &RwLock<T>) -> PyResult<RwLockWriteGuard<'_, T>> {
    m.write()
        .map_err(|_| HtbError::new_err("internal state is unusable after an earlier panic"))
}

/// Issues `htb.HtbWarning(msg)` at the caller's line.
pub(crate) fn warn(py: Python<'_>, msg: &str) -> PyResult<()> {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    PyErr::warn(py, &py.get_type::<HtbWarning>().into_any(), &msg, 1)
}

/// The Python type name of `obj`, for TypeError messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// An exact `int` (not `bool`), as `u128`; negative or too large values are a
/// `ParseError` naming `what`.
pub(crate) fn int_arg(obj: &Bound<'_, PyAny>, what: &str, max: u128) -> PyResult<Option<u128>> {
    if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<pyo3::types::PyBool>() {
        return Ok(None);
    }
    // Fast path: under the limited API a u128 conversion goes through
    // Python-level arithmetic, several times slower than this one call, and
    // nearly every int passed here (times in ns, sizes) fits 64 bits.
    if let Ok(v) = obj.extract::<u64>() {
        let v = u128::from(v);
        return if v <= max {
            Ok(Some(v))
        } else {
            Err(ParseError::new_err(format!(
                "{what}: {obj} is out of range (at most {max})"
            )))
        };
    }
    match obj.extract::<u128>() {
        Ok(v) if v <= max => Ok(Some(v)),
        Ok(_) => Err(ParseError::new_err(format!(
            "{what}: {obj} is out of range (at most {max})"
        ))),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(ParseError::new_err(
            format!("{what}: {obj} is out of range"),
        )),
        Err(e) => Err(e),
    }
}

/// A class id: `"1:10"` (tc's hex `major:minor`) or an int handle
/// `(major << 16) | minor`.
pub(crate) fn classid(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<htb::ClassId> {
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_cow()?.parse::<htb::ClassId>().map_err(htb_err);
    }
    match int_arg(obj, what, u32::MAX as u128)? {
        Some(v) => Ok(htb::ClassId::from_raw(v as u32)),
        None => Err(PyTypeError::new_err(format!(
            "{what} must be a str like \"1:10\" or an int, not {}",
            type_name(obj)
        ))),
    }
}

/// A rate: an int in bits per second or a tc rate string (`"10mbit"`);
/// returns bytes per second, as the library stores rates.
pub(crate) fn rate(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(s) = obj.cast::<PyString>() {
        return htb::rate::parse_rate(&s.to_cow()?).map_err(|e| unit_err(what, e));
    }
    match int_arg(obj, what, u64::MAX as u128)? {
        // bits/s -> bytes/s, truncated as tc does for a bare number.
        Some(v) => Ok((v / 8) as u64),
        None => Err(PyTypeError::new_err(format!(
            "{what} must be an int (bits/s) or a tc rate string like \"10mbit\", not {}",
            type_name(obj)
        ))),
    }
}

/// A size: an int in bytes or a tc size string (`"15k"`, `"1600b"`).
pub(crate) fn size(obj: &Bound<'_, PyAny>, what: &str, max: u64) -> PyResult<u64> {
    let v = if let Ok(s) = obj.cast::<PyString>() {
        htb::rate::parse_size(&s.to_cow()?).map_err(|e| unit_err(what, e))?
    } else {
        match int_arg(obj, what, max as u128)? {
            Some(v) => v as u64,
            None => {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be an int (bytes) or a tc size string like \"15k\", not {}",
                    type_name(obj)
                )));
            }
        }
    };
    if v > max {
        return Err(ParseError::new_err(format!(
            "{what}: {v} bytes is out of range (at most {max})"
        )));
    }
    Ok(v)
}

/// A duration: a string (`"10s"`, `"100ms"`, a bare number is seconds) or an
/// int in nanoseconds.
pub(crate) fn duration(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        return htb::sim::parse_duration(&s)
            .ok_or_else(|| ParseError::new_err(format!("{what}: invalid duration \"{s}\"")));
    }
    match int_arg(obj, what, u64::MAX as u128)? {
        Some(v) => Ok(v as u64),
        None => Err(PyTypeError::new_err(format!(
            "{what} must be a duration string like \"10s\" or an int (ns), not {}",
            type_name(obj)
        ))),
    }
}

/// A time in nanoseconds (an int >= 0).
pub(crate) fn now_arg(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    match int_arg(obj, "now", u64::MAX as u128)? {
        Some(v) => Ok(v as u64),
        None => Err(PyTypeError::new_err(format!(
            "now must be an int (nanoseconds), not {}",
            type_name(obj)
        ))),
    }
}

/// The native module `htb._htb`; `htb/__init__.py` re-exports it.
#[pymodule]
fn _htb(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("HtbError", py.get_type::<HtbError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ParseError", py.get_type::<ParseError>())?;
    m.add("PacketError", py.get_type::<PacketError>())?;
    m.add("ParamProblemError", py.get_type::<ParamProblemError>())?;
    m.add(
        "FragmentationNeededError",
        py.get_type::<FragmentationNeededError>(),
    )?;
    m.add("HtbWarning", py.get_type::<HtbWarning>())?;
    m.add_class::<qdisc::Qdisc>()?;
    m.add_class::<qdisc::Dropped>()?;
    m.add_class::<qdisc::ClassStats>()?;
    m.add_class::<sim::SimResult>()?;
    m.add_function(wrap_pyfunction!(sim::simulate, m)?)?;
    m.add_class::<fib::Fib>()?;
    m.add_class::<fib::RouteType>()?;
    m.add_class::<reasm::Reassembler>()?;
    m.add_class::<reasm::ReasmEvent>()?;
    m.add_class::<reasm::PyFragKey>()?;
    m.add_function(wrap_pyfunction!(reasm::fragment, m)?)?;
    m.add(
        "REASM_POLICIES",
        pyo3::types::PyTuple::new(py, reasm::policies())?,
    )?;
    Ok(())
}
