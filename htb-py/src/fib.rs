//! `htb.Fib`: longest-prefix match over IPv4 and IPv6 prefixes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

use htb::fib::load::{AnyPrefix, load_tables};
use htb::fib::{EntryId, FibError, Prefix, Route, RouteKind};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple, PyType};

use crate::{ConfigError, ParseError, int_arg, read, type_name, write};

/// A route's value as stored: an `Arc` so that lookups can copy it without
/// the GIL (the reference count of the Python object is touched only when
/// the result is handed back).
type Val = Arc<Py<PyAny>>;
type Kind = RouteKind<Val>;

#[derive(Clone, Default)]
struct Tables {
    v4: htb::fib::Fib4<Val>,
    v6: htb::fib::Fib6<Val>,
}

fn fib_err(e: FibError) -> PyErr {
    match e {
        FibError::Exists { .. } | FibError::Full | FibError::LengthMismatch { .. } => {
            ConfigError::new_err(e.to_string())
        }
        FibError::PrefixLength { .. } | FibError::HostBits { .. } | FibError::Parse(_) => {
            ParseError::new_err(e.to_string())
        }
    }
}

/// The route types that are not unicast: a lookup that lands on one returns
/// it as the value, and storing one as a value makes a route of that type.
#[pyclass(module = "htb", frozen, eq, eq_int, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    /// Drop silently.
    #[pyo3(name = "BLACKHOLE")]
    Blackhole,
    /// Drop, "No route to host".
    #[pyo3(name = "UNREACHABLE")]
    Unreachable,
    /// Drop, "Permission denied".
    #[pyo3(name = "PROHIBIT")]
    Prohibit,
}

static IPV4_ADDRESS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static IPV6_ADDRESS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static IPV4_NETWORK: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static IPV6_NETWORK: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn ip_type<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "ipaddress", name)
}

#[derive(Clone, Copy)]
enum Addr {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// An address: `str`, `ipaddress.IPv4Address`/`IPv6Address`, or an int
/// (below 2**32: IPv4, as `ipaddress.ip_address` decides; else IPv6).
fn addr(obj: &Bound<'_, PyAny>) -> PyResult<Addr> {
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        return match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Ok(Addr::V4(a)),
            Ok(IpAddr::V6(a)) => Ok(Addr::V6(a)),
            Err(_) => Err(ParseError::new_err(format!("invalid address \"{s}\""))),
        };
    }
    if let Some(v) = int_arg(obj, "address", u128::MAX)? {
        return Ok(if v <= u32::MAX as u128 {
            Addr::V4(Ipv4Addr::from(v as u32))
        } else {
            Addr::V6(Ipv6Addr::from(v))
        });
    }
    if obj.is_instance(ip_type(py, &IPV4_ADDRESS, "IPv4Address")?)? {
        let v: u32 = obj.call_method0("__int__")?.extract()?;
        return Ok(Addr::V4(Ipv4Addr::from(v)));
    }
    if obj.is_instance(ip_type(py, &IPV6_ADDRESS, "IPv6Address")?)? {
        let v: u128 = obj.call_method0("__int__")?.extract()?;
        return Ok(Addr::V6(Ipv6Addr::from(v)));
    }
    Err(PyTypeError::new_err(format!(
        "address must be a str, an int or an ipaddress address, not {}",
        type_name(obj)
    )))
}

/// A prefix: `"10.0.0.0/8"` (a bare address is a host prefix), or an
/// `ipaddress` network or address. Host bits must be zero.
fn prefix(obj: &Bound<'_, PyAny>) -> PyResult<AnyPrefix> {
    let py = obj.py();
    let text = if let Ok(s) = obj.cast::<PyString>() {
        s.to_cow()?.into_owned()
    } else if obj.is_instance(ip_type(py, &IPV4_NETWORK, "IPv4Network")?)?
        || obj.is_instance(ip_type(py, &IPV6_NETWORK, "IPv6Network")?)?
        || obj.is_instance(ip_type(py, &IPV4_ADDRESS, "IPv4Address")?)?
        || obj.is_instance(ip_type(py, &IPV6_ADDRESS, "IPv6Address")?)?
    {
        obj.str()?.to_cow()?.into_owned()
    } else {
        return Err(PyTypeError::new_err(format!(
            "prefix must be a str like \"10.0.0.0/8\" or an ipaddress network, not {}",
            type_name(obj)
        )));
    };
    text.parse::<AnyPrefix>().map_err(fib_err)
}

fn kind_of(value: &Bound<'_, PyAny>) -> Kind {
    match value.cast::<RouteType>() {
        Ok(t) => match *t.get() {
            RouteType::Blackhole => RouteKind::Blackhole,
            RouteType::Unreachable => RouteKind::Unreachable,
            RouteType::Prohibit => RouteKind::Prohibit,
        },
        Err(_) => RouteKind::Unicast(Arc::new(value.clone().unbind())),
    }
}

fn value_of(py: Python<'_>, k: &Kind) -> PyResult<Py<PyAny>> {
    let t = match k {
        RouteKind::Unicast(v) => return Ok(v.clone_ref(py)),
        RouteKind::Blackhole => RouteType::Blackhole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
    };
    Ok(Py::new(py, t)?.into_any())
}

/// A found route, copied out of the table (no GIL needed).
type Found = Option<(String, Kind)>;

fn found_obj(py: Python<'_>, f: Found) -> PyResult<Option<Py<PyTuple>>> {
    match f {
        None => Ok(None),
        Some((p, k)) => Ok(Some(
            PyTuple::new(
                py,
                [p.into_pyobject(py)?.into_any().unbind(), value_of(py, &k)?],
            )?
            .unbind(),
        )),
    }
}

impl Tables {
    fn lookup(&self, a: Addr) -> Found {
        match a {
            Addr::V4(a) => self
                .v4
                .lookup(a)
                .map(|m| (m.prefix.to_string(), m.route.kind.clone())),
            Addr::V6(a) => self
                .v6
                .lookup(a)
                .map(|m| (m.prefix.to_string(), m.route.kind.clone())),
        }
    }

    fn routes(&self, p: &AnyPrefix) -> Option<&[Route<Val>]> {
        match p {
            AnyPrefix::V4(p) => self.v4.get(p),
            AnyPrefix::V6(p) => self.v6.get(p),
        }
    }

    fn all(&self) -> Vec<(String, &[Route<Val>])> {
        let v4 = self.v4.iter().map(|(p, r)| (p.to_string(), r));
        let v6 = self.v6.iter().map(|(p, r)| (p.to_string(), r));
        v4.chain(v6).collect()
    }
}

/// A routing table of IPv4 and IPv6 prefixes carrying Python values, with
/// the kernel's longest-prefix match and metrics (lowest wins).
#[pyclass(module = "htb", frozen)]
pub struct Fib {
    inner: RwLock<Tables>,
}

#[pymethods]
impl Fib {
    #[new]
    fn new() -> Self {
        Fib {
            inner: RwLock::new(Tables::default()),
        }
    }

    /// Adds a route (`ip route add`); one with the same prefix and metric is
    /// a `ConfigError` unless `replace=True` (`ip route replace`).
    #[pyo3(signature = (prefix, value, metric=0, *, replace=false))]
    fn insert(
        &self,
        prefix: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        metric: u32,
        replace: bool,
    ) -> PyResult<()> {
        let p = crate::fib::prefix(prefix)?;
        let kind = kind_of(value);
        // The replaced value is dropped after the lock is released.
        let old = {
            let mut t = write(&self.inner)?;
            match (p, replace) {
                (AnyPrefix::V4(p), false) => t.v4.insert(p, metric, kind).map(|_| None),
                (AnyPrefix::V6(p), false) => t.v6.insert(p, metric, kind).map(|_| None),
                (AnyPrefix::V4(p), true) => t.v4.replace(p, metric, kind),
                (AnyPrefix::V6(p), true) => t.v6.replace(p, metric, kind),
            }
        };
        old.map(drop).map_err(fib_err)
    }

    /// `fib[prefix] = value`: the metric-0 route of `prefix`, replaced.
    fn __setitem__(&self, prefix: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.insert(prefix, value, 0, true)
    }

    /// The value of the best (lowest-metric) route of exactly `prefix`.
    fn __getitem__(&self, py: Python<'_>, prefix: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let p = crate::fib::prefix(prefix)?;
        let k = read(&self.inner)?.routes(&p).map(|r| r[0].kind.clone());
        match k {
            Some(k) => value_of(py, &k),
            None => Err(PyKeyError::new_err(p.to_string())),
        }
    }

    /// Removes every route of `prefix`.
    fn __delitem__(&self, prefix: &Bound<'_, PyAny>) -> PyResult<()> {
        let p = crate::fib::prefix(prefix)?;
        let removed = {
            let mut t = write(&self.inner)?;
            match &p {
                AnyPrefix::V4(q) => t.v4.remove_prefix(q),
                AnyPrefix::V6(q) => t.v6.remove_prefix(q),
            }
        };
        if removed.is_empty() {
            return Err(PyKeyError::new_err(p.to_string()));
        }
        Ok(())
    }

    /// Removes the route of `prefix` with `metric` (every route of the prefix
    /// when `metric` is None); returns the removed value (the best one).
    #[pyo3(signature = (prefix, metric=None))]
    fn remove(
        &self,
        py: Python<'_>,
        prefix: &Bound<'_, PyAny>,
        metric: Option<u32>,
    ) -> PyResult<Py<PyAny>> {
        let p = crate::fib::prefix(prefix)?;
        let removed: Option<Kind> = {
            let mut t = write(&self.inner)?;
            match (&p, metric) {
                (AnyPrefix::V4(q), Some(m)) => t.v4.remove(q, m),
                (AnyPrefix::V6(q), Some(m)) => t.v6.remove(q, m),
                (AnyPrefix::V4(q), None) => {
                    t.v4.remove_prefix(q).into_iter().next().map(|r| r.kind)
                }
                (AnyPrefix::V6(q), None) => {
                    t.v6.remove_prefix(q).into_iter().next().map(|r| r.kind)
                }
            }
        };
        match removed {
            Some(k) => value_of(py, &k),
            None => Err(PyKeyError::new_err(match metric {
                Some(m) => format!("{p} metric {m}"),
                None => p.to_string(),
            })),
        }
    }

    fn __contains__(&self, prefix: &Bound<'_, PyAny>) -> PyResult<bool> {
        let p = crate::fib::prefix(prefix)?;
        Ok(read(&self.inner)?.routes(&p).is_some())
    }

    /// Number of distinct prefixes (what iteration yields).
    fn __len__(&self) -> PyResult<usize> {
        let t = read(&self.inner)?;
        Ok(t.v4.prefix_count() + t.v6.prefix_count())
    }

    /// Number of routes (several per prefix with different metrics count
    /// separately).
    #[getter]
    fn route_count(&self) -> PyResult<usize> {
        let t = read(&self.inner)?;
        Ok(t.v4.len() + t.v6.len())
    }

    /// The prefixes (a snapshot): IPv4 then IPv6, in address order.
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let keys: Vec<String> = read(&self.inner)?
            .all()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        Ok(keys.into_pyobject(py)?.try_iter()?.into_any().unbind())
    }

    /// `(prefix, value)` of every prefix's best route (a snapshot).
    fn items(&self, py: Python<'_>) -> PyResult<Vec<(String, Py<PyAny>)>> {
        let all: Vec<(String, Kind)> = read(&self.inner)?
            .all()
            .into_iter()
            .map(|(p, r)| (p, r[0].kind.clone()))
            .collect();
        all.into_iter()
            .map(|(p, k)| Ok((p, value_of(py, &k)?)))
            .collect()
    }

    /// `(prefix, metric, value)` of every route (a snapshot).
    fn routes(&self, py: Python<'_>) -> PyResult<Vec<(String, u32, Py<PyAny>)>> {
        let all: Vec<(String, u32, Kind)> = read(&self.inner)?
            .all()
            .into_iter()
            .flat_map(|(p, rs)| {
                rs.iter()
                    .map(move |r| (p.clone(), r.metric, r.kind.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.into_iter()
            .map(|(p, m, k)| Ok((p, m, value_of(py, &k)?)))
            .collect()
    }

    /// Longest-prefix match: `(prefix, value)` of the best route of the
    /// longest prefix holding `addr`, or `None`.
    fn lookup(&self, py: Python<'_>, addr: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyTuple>>> {
        let a = crate::fib::addr(addr)?;
        let f = read(&self.inner)?.lookup(a);
        found_obj(py, f)
    }

    /// `lookup` for each address of an iterable, in one call with the GIL
    /// released during the lookups (IPv4 through the library's batch path).
    fn lookup_many(
        &self,
        py: Python<'_>,
        addrs: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Option<Py<PyTuple>>>> {
        let mut v4 = Vec::new();
        let mut v4_at = Vec::new();
        let mut v6 = Vec::new();
        let mut v6_at = Vec::new();
        let mut n = 0;
        for (i, a) in addrs.try_iter()?.enumerate() {
            match crate::fib::addr(&a?)? {
                Addr::V4(x) => {
                    v4.push(x);
                    v4_at.push(i);
                }
                Addr::V6(x) => {
                    v6.push(x);
                    v6_at.push(i);
                }
            }
            n = i + 1;
        }
        let found = py.detach(|| -> PyResult<Vec<Found>> {
            let t = read(&self.inner)?;
            let mut out: Vec<Found> = vec![None; n];
            let mut ids: Vec<Option<EntryId>> = vec![None; v4.len()];
            t.v4.lookup_batch(&v4, &mut ids).map_err(fib_err)?;
            for (id, &i) in ids.iter().zip(&v4_at) {
                out[i] = id
                    .and_then(|id| t.v4.resolve(id))
                    .map(|m| (m.prefix.to_string(), m.route.kind.clone()));
            }
            for (a, &i) in v6.iter().zip(&v6_at) {
                out[i] = t.lookup(Addr::V6(*a));
            }
            Ok(out)
        })?;
        found.into_iter().map(|f| found_obj(py, f)).collect()
    }

    /// Adds the routes of a route file (`PREFIX[/LEN] VALUE [METRIC]` lines,
    /// or `ip route show` output; values become `str`, blackhole/unreachable/
    /// prohibit become `RouteType`). All or nothing: on an error the table is
    /// unchanged. Returns the number of routes added.
    fn load(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<usize> {
        let os = py.import("os")?;
        let path: String = os
            .call_method1("fspath", (path,))
            .and_then(|p| p.extract())
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "path must be a str or os.PathLike, not {}",
                    type_name(path)
                ))
            })?;
        let loaded = py.detach(|| {
            let text = std::fs::read_to_string(&path).map_err(Err)?;
            load_tables(&text, &path).map_err(Ok)
        });
        let t = match loaded {
            Ok(t) => t,
            // An OSError subclass (FileNotFoundError, ...), as open() raises.
            Err(Err(e)) => return Err(PyErr::from(e)),
            Err(Ok(e)) => return Err(ParseError::new_err(e.to_string())),
        };
        // One Python str per distinct value.
        let mut strs: HashMap<String, Val> = HashMap::new();
        let mut conv = |k: &RouteKind<String>| -> Kind {
            match k {
                RouteKind::Unicast(s) => RouteKind::Unicast(
                    strs.entry(s.clone())
                        .or_insert_with(|| Arc::new(PyString::new(py, s).into_any().unbind()))
                        .clone(),
                ),
                RouteKind::Blackhole => RouteKind::Blackhole,
                RouteKind::Unreachable => RouteKind::Unreachable,
                RouteKind::Prohibit => RouteKind::Prohibit,
            }
        };
        let mut v4: Vec<(Prefix<Ipv4Addr>, u32, Kind)> = Vec::with_capacity(t.v4.len());
        for (p, rs) in t.v4.iter() {
            for r in rs {
                v4.push((p, r.metric, conv(&r.kind)));
            }
        }
        let mut v6: Vec<(Prefix<Ipv6Addr>, u32, Kind)> = Vec::with_capacity(t.v6.len());
        for (p, rs) in t.v6.iter() {
            for r in rs {
                v6.push((p, r.metric, conv(&r.kind)));
            }
        }
        let added = v4.len() + v6.len();
        let old = {
            let mut cur = write(&self.inner)?;
            let mut next = cur.clone();
            for (p, m, k) in v4 {
                next.v4
                    .insert(p, m, k)
                    .map_err(|e| ConfigError::new_err(format!("{path}: {e}")))?;
            }
            for (p, m, k) in v6 {
                next.v6
                    .insert(p, m, k)
                    .map_err(|e| ConfigError::new_err(format!("{path}: {e}")))?;
            }
            std::mem::replace(&mut *cur, next)
        };
        drop(old);
        Ok(added)
    }

    fn __repr__(&self) -> PyResult<String> {
        let t = read(&self.inner)?;
        Ok(format!(
            "Fib(prefixes={}, routes={})",
            t.v4.prefix_count() + t.v6.prefix_count(),
            t.v4.len() + t.v6.len()
        ))
    }
}
