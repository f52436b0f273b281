//! `htb.Reassembler`, `htb.fragment` and their result types: IP reassembly
//! and fragmentation.
//!
//! Packets are `bytes` (also `bytearray` and `memoryview`, copied), starting
//! at the IP header. A `bytes` argument is read in place, never copied; the
//! GIL is released for `push_many` and whenever a call has to wait for the
//! table's lock (another thread is inside `push_many`), so one long batch
//! does not stall the interpreter.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, TryLockError};

use htb::frag::{FragError, FragOptions, Fragmenter};
use htb::reasm::{
    EventKind, FragDrop, FragKey as Key, Policy, Pushed, ReasmConfig, ReasmError, ReasmStats,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString};

use crate::{
    ConfigError, FragmentationNeededError, HtbError, PacketError, ParamProblemError, ParseError,
    int_arg, lock, now_arg, type_name,
};

/// Sets integer attributes on the exception `err` carries, so that callers
/// can read e.g. `e.code` without parsing the message.
fn with_attrs(py: Python<'_>, err: PyErr, attrs: &[(&str, u64)]) -> PyErr {
    for (k, v) in attrs {
        if let Err(e) = err.value(py).setattr(*k, *v) {
            return e;
        }
    }
    err
}

fn reasm_err(py: Python<'_>, e: ReasmError) -> PyErr {
    let msg = e.to_string();
    match e {
        ReasmError::ParamProblem { code, pointer } => with_attrs(
            py,
            ParamProblemError::new_err(msg),
            &[("code", code.into()), ("pointer", pointer.into())],
        ),
        ReasmError::UnknownPolicy(_) => ParseError::new_err(msg),
        _ => PacketError::new_err(msg),
    }
}

fn frag_err(py: Python<'_>, e: FragError) -> PyErr {
    let msg = e.to_string();
    match e {
        FragError::DontFragment { mtu } => with_attrs(
            py,
            FragmentationNeededError::new_err(msg),
            &[("mtu", mtu as u64)],
        ),
        FragError::MtuTooSmall { mtu, min } => with_attrs(
            py,
            ConfigError::new_err(msg),
            &[("mtu", mtu as u64), ("min", min as u64)],
        ),
        // Cannot happen here (every buffer is sized by `next_len`): a bug,
        // reported as an htb error rather than blamed on the packet.
        FragError::BufferTooSmall { .. } => HtbError::new_err(msg),
        // Malformed, an IPv6 packet that is already a fragment, and any
        // reason added later: the packet cannot be fragmented.
        _ => PacketError::new_err(msg),
    }
}

/// A packet argument: `bytes` borrowed in place; `bytearray` and
/// `memoryview` copied (their contents could change while the GIL is
/// released).
pub(crate) fn packet_arg<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.call_method0("tobytes")?;
        return Ok(Cow::Owned(b.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "packet must be bytes, bytearray or memoryview, not {}",
        type_name(obj)
    )))
}

/// A packet handed back unchanged: the same object when it is `bytes`.
fn same_packet(py: Python<'_>, obj: &Bound<'_, PyAny>, data: &[u8]) -> Py<PyAny> {
    if obj.is_exact_instance_of::<PyBytes>() {
        obj.clone().unbind()
    } else {
        PyBytes::new(py, data).into_any().unbind()
    }
}

/// A lifetime in seconds (int or float, >= 0) as ns; None keeps `default`.
fn timeout_arg(obj: Option<&Bound<'_, PyAny>>, default: u64) -> PyResult<u64> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(default);
    };
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<pyo3::types::PyBool>() {
        return match obj
            .extract::<u64>()
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
        {
            Some(ns) => Ok(ns),
            None => Err(ConfigError::new_err(format!(
                "timeout: {obj} seconds is out of range"
            ))),
        };
    }
    if obj.is_instance_of::<PyFloat>() {
        let s: f64 = obj.extract()?;
        let ns = s * 1e9;
        // `u64::MAX as f64` rounds up to 2**64, which does not fit: compare
        // strictly below it.
        if !(s.is_finite() && s >= 0.0 && ns < u64::MAX as f64) {
            return Err(ConfigError::new_err(format!(
                "timeout: {s} seconds is out of range (a finite number >= 0)"
            )));
        }
        return Ok(ns.round() as u64);
    }
    Err(PyTypeError::new_err(format!(
        "timeout must be a number of seconds (int or float) or None, not {}",
        type_name(obj)
    )))
}

fn u32_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    match int_arg(obj, what, u32::MAX as u128)? {
        Some(v) => Ok(v as u32),
        None => Err(PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            type_name(obj)
        ))),
    }
}

fn stats_dict<'py>(py: Python<'py>, s: ReasmStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ReasmReqds", s.reasm_reqds)?;
    d.set_item("ReasmOKs", s.reasm_oks)?;
    d.set_item("ReasmFails", s.reasm_fails)?;
    d.set_item("ReasmTimeout", s.reasm_timeout)?;
    d.set_item("ReasmOverlaps", s.reasm_overlaps)?;
    Ok(d)
}

/// A reassembly queue's key, as the kernel keys it: IPv4 (src, dst, id,
/// protocol, context), IPv6 (src, dst, 32-bit id, context; no protocol).
/// Hashable and comparable, so it can key a dict.
#[pyclass(module = "htb", name = "FragKey", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyFragKey {
    key: Key,
}

#[pymethods]
impl PyFragKey {
    /// 4 or 6.
    #[getter]
    fn family(&self) -> u8 {
        match self.key {
            Key::V4 { .. } => 4,
            Key::V6 { .. } => 6,
        }
    }

    /// Source address (text).
    #[getter]
    fn src(&self) -> String {
        match self.key {
            Key::V4 { src, .. } => Ipv4Addr::from(src).to_string(),
            Key::V6 { src, .. } => Ipv6Addr::from(src).to_string(),
        }
    }

    /// Destination address (text).
    #[getter]
    fn dst(&self) -> String {
        match self.key {
            Key::V4 { dst, .. } => Ipv4Addr::from(dst).to_string(),
            Key::V6 { dst, .. } => Ipv6Addr::from(dst).to_string(),
        }
    }

    /// Identification (16 bits for IPv4, 32 for IPv6).
    #[getter]
    fn id(&self) -> u32 {
        match self.key {
            Key::V4 { id, .. } => id.into(),
            Key::V6 { id, .. } => id,
        }
    }

    /// IPv4 protocol; None for IPv6 (not part of its key).
    #[getter]
    fn proto(&self) -> Option<u8> {
        match self.key {
            Key::V4 { proto, .. } => Some(proto),
            Key::V6 { .. } => None,
        }
    }

    /// The `context` the fragments were pushed with.
    #[getter]
    fn context(&self) -> u32 {
        match self.key {
            Key::V4 { context, .. } | Key::V6 { context, .. } => context,
        }
    }

    fn __repr__(&self) -> String {
        let proto = match self.proto() {
            Some(p) => p.to_string(),
            None => "None".into(),
        };
        format!(
            "FragKey(family={}, src='{}', dst='{}', id={}, proto={}, context={})",
            self.family(),
            self.src(),
            self.dst(),
            self.id(),
            proto,
            self.context()
        )
    }
}

/// A queue that ended without a packet to answer for it (returned by
/// `Reassembler.expire`). Unpacks as `kind, key, icmp_quote`.
#[pyclass(module = "htb", frozen)]
pub struct ReasmEvent {
    /// `"timeout"`: the queue's lifetime ended before it completed.
    #[pyo3(get)]
    kind: String,
    /// The queue's key.
    #[pyo3(get)]
    key: Py<PyFragKey>,
    /// What the kernel quotes in the ICMP Time Exceeded (code 1) it sends:
    /// the offset-0 fragment from its IP header on, cut at 548 bytes (IPv4)
    /// or 1232 (IPv6). None when that fragment never arrived
    /// (the kernel then sends nothing).
    #[pyo3(get)]
    icmp_quote: Option<Py<PyBytes>>,
}

#[pymethods]
impl ReasmEvent {
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let t = (
            self.kind.clone(),
            self.key.clone_ref(py),
            self.icmp_quote.as_ref().map(|q| q.clone_ref(py)),
        )
            .into_pyobject(py)?;
        Ok(t.try_iter()?.into_any().unbind())
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(o) = other.cast::<ReasmEvent>() else {
            return Ok(false);
        };
        let o = o.get();
        let quote = |q: &Option<Py<PyBytes>>| q.as_ref().map(|b| b.as_bytes(py).to_vec());
        Ok(self.kind == o.kind
            && self.key.get() == o.key.get()
            && quote(&self.icmp_quote) == quote(&o.icmp_quote))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let quote = match &self.icmp_quote {
            Some(q) => q.bind(py).repr()?.to_string(),
            None => "None".into(),
        };
        Ok(format!(
            "ReasmEvent(kind={:?}, key={}, icmp_quote={})",
            self.kind,
            self.key.get().__repr__(),
            quote
        ))
    }
}

struct State {
    core: htb::reasm::Reassembler,
    /// Fragments not kept, by reason (the kernel's drop reasons; the SNMP
    /// counters do not count duplicates).
    drops: [u64; FragDrop::ALL.len()],
}

impl State {
    fn push(&mut self, packet: &[u8], context: u32, now: u64) -> Result<Pushed, ReasmError> {
        let r = self.core.push(packet, context, now);
        if let Ok(Pushed::Dropped(d)) = &r {
            self.drops[d.index()] += 1;
        }
        r
    }
}

/// What one pushed packet turned into, held without the GIL.
enum Out {
    Pass,
    Held,
    Datagram(Vec<u8>),
}

impl From<Pushed> for Out {
    fn from(p: Pushed) -> Self {
        match p {
            Pushed::NotFragment => Out::Pass,
            Pushed::Complete(d) => Out::Datagram(d),
            Pushed::Queued | Pushed::Dropped(_) => Out::Held,
        }
    }
}

/// Linux IP reassembly (IPv4 and IPv6), or one of the IDS target-based
/// overlap policies. Times are ints in ns; the caller owns the clock.
#[pyclass(module = "htb", frozen)]
pub struct Reassembler {
    inner: Mutex<State>,
    cfg: ReasmConfig,
}

impl Reassembler {
    /// Runs `f` on the table. Waiting for the lock (another thread is in
    /// `push_many`) happens with the GIL released.
    fn with<R, F>(&self, py: Python<'_>, f: F) -> PyResult<R>
    where
        F: FnOnce(&mut State) -> R + Send,
        R: Send,
    {
        match self.inner.try_lock() {
            Ok(mut g) => Ok(f(&mut g)),
            Err(TryLockError::WouldBlock) => py.detach(|| Ok(f(&mut *lock(&self.inner)?))),
            Err(TryLockError::Poisoned(_)) => Err(HtbError::new_err(
                "internal state is unusable after an earlier panic",
            )),
        }
    }
}

#[pymethods]
impl Reassembler {
    #[new]
    #[pyo3(signature = (policy=None, high_thresh=None, timeout=None, *, max_dist=None, max_datagram=None))]
    fn new(
        policy: Option<&Bound<'_, PyAny>>,
        high_thresh: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        max_dist: Option<&Bound<'_, PyAny>>,
        max_datagram: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let d = ReasmConfig::default();
        let policy = match policy
            .filter(|o| !o.is_none())
            .map(|o| (o, o.cast::<PyString>()))
        {
            None => d.policy,
            Some((_, Ok(s))) => s
                .to_cow()?
                .parse::<Policy>()
                .map_err(|e| ParseError::new_err(e.to_string()))?,
            Some((policy, Err(_))) => {
                return Err(PyTypeError::new_err(format!(
                    "policy must be a str, not {}",
                    type_name(policy)
                )));
            }
        };
        let high_thresh = match high_thresh.filter(|o| !o.is_none()) {
            Some(o) => crate::size(o, "high_thresh", usize::MAX as u64)? as usize,
            None => d.high_thresh,
        };
        let cfg = ReasmConfig {
            policy,
            high_thresh,
            timeout_v4: timeout_arg(timeout, d.timeout_v4)?,
            timeout_v6: timeout_arg(timeout, d.timeout_v6)?,
            max_dist: match max_dist.filter(|o| !o.is_none()) {
                Some(o) => u32_arg(o, "max_dist")?,
                None => d.max_dist,
            },
            max_datagram: match max_datagram.filter(|o| !o.is_none()) {
                Some(o) => match int_arg(o, "max_datagram", usize::MAX as u128)? {
                    Some(v) => v as usize,
                    None => {
                        return Err(PyTypeError::new_err(format!(
                            "max_datagram must be an int, not {}",
                            type_name(o)
                        )));
                    }
                },
                None => d.max_datagram,
            },
        };
        Ok(Reassembler {
            inner: Mutex::new(State {
                core: htb::reasm::Reassembler::new(cfg.clone()),
                drops: [0; FragDrop::ALL.len()],
            }),
            cfg,
        })
    }

    /// Takes one IP packet received at `now` (ns). Returns the whole
    /// datagram when this fragment completes it, the packet itself when it
    /// is not a fragment, else None (held, or dropped and counted).
    #[pyo3(signature = (packet, now, *, context=None))]
    fn push(
        &self,
        py: Python<'_>,
        packet: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let data = packet_arg(packet)?;
        let now = now_arg(now)?;
        let context = match context {
            Some(c) => u32_arg(c, "context")?,
            None => 0,
        };
        let r = self.with(py, |st| st.push(&data, context, now).map(Out::from))?;
        match r.map_err(|e| reasm_err(py, e))? {
            Out::Pass => Ok(Some(same_packet(py, packet, &data))),
            Out::Held => Ok(None),
            Out::Datagram(d) => {
                let out = PyBytes::new(py, &d).into_any().unbind();
                // Hand the buffer back for the next datagram (try_lock: if
                // another thread holds the table, skipping is harmless).
                if let Ok(mut g) = self.inner.try_lock() {
                    g.core.recycle(d);
                }
                Ok(Some(out))
            }
        }
    }

    /// `push` for each packet of an iterable, in order, with the GIL
    /// released while they are processed. `now` is one time for all or an
    /// iterable of times, one per packet. Returns one entry per packet.
    ///
    /// A packet that is not a well-formed IP packet stops the batch: the
    /// `PacketError` raised has `index` (its position) and `results` (the
    /// entries of the packets before it, which were processed); the packets
    /// after it were not.
    #[pyo3(signature = (packets, now, *, context=None))]
    fn push_many(
        &self,
        py: Python<'_>,
        packets: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyList>> {
        let objs: Vec<Bound<'_, PyAny>> = packets.try_iter()?.collect::<PyResult<_>>()?;
        let datas: Vec<Cow<'_, [u8]>> = objs.iter().map(packet_arg).collect::<PyResult<_>>()?;
        let times: Vec<u64> = if now.is_instance_of::<PyInt>() {
            vec![now_arg(now)?; datas.len()]
        } else if let Ok(it) = now.try_iter() {
            let t: Vec<u64> = it.map(|t| now_arg(&t?)).collect::<PyResult<_>>()?;
            if t.len() != datas.len() {
                return Err(ParseError::new_err(format!(
                    "now: {} times for {} packets",
                    t.len(),
                    datas.len()
                )));
            }
            t
        } else {
            return Err(PyTypeError::new_err(format!(
                "now must be an int (nanoseconds) or an iterable of ints, not {}",
                type_name(now)
            )));
        };
        let context = match context {
            Some(c) => u32_arg(c, "context")?,
            None => 0,
        };
        let (outs, failed) = py.detach(|| -> PyResult<_> {
            let mut st = lock(&self.inner)?;
            let mut outs = Vec::with_capacity(datas.len());
            for (i, (d, &t)) in datas.iter().zip(&times).enumerate() {
                match st.push(d, context, t) {
                    Ok(p) => outs.push(Out::from(p)),
                    Err(e) => return Ok((outs, Some((i, e)))),
                }
            }
            Ok((outs, None))
        })?;
        let list = PyList::empty(py);
        for (i, o) in outs.into_iter().enumerate() {
            match o {
                Out::Pass => list.append(same_packet(py, &objs[i], &datas[i]))?,
                Out::Held => list.append(py.None())?,
                Out::Datagram(d) => list.append(PyBytes::new(py, &d))?,
            }
        }
        match failed {
            None => Ok(list.unbind()),
            Some((i, e)) => {
                let err = reasm_err(py, e);
                err.value(py).setattr("index", i)?;
                err.value(py).setattr("results", list)?;
                Err(err)
            }
        }
    }

    /// Ends every queue whose lifetime is over at `now` (ns): the kernel's
    /// reassembly timer. Returns one `ReasmEvent` per queue, oldest first.
    fn expire(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<Vec<Py<ReasmEvent>>> {
        let now = now_arg(now)?;
        let events = self.with(py, |st| st.core.expire(now))?;
        events
            .into_iter()
            .map(|e| {
                let kind = match e.kind {
                    EventKind::Timeout => "timeout",
                    _ => "other",
                };
                Py::new(
                    py,
                    ReasmEvent {
                        kind: kind.to_string(),
                        key: Py::new(py, PyFragKey { key: e.key })?,
                        icmp_quote: e.icmp_quote.map(|q| PyBytes::new(py, &q).unbind()),
                    },
                )
            })
            .collect()
    }

    /// When the oldest queue expires (ns), or None when nothing is held.
    fn next_expiry(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.with(py, |st| st.core.next_expiry())
    }

    /// The counters, IPv4 and IPv6 together, under their SNMP names:
    /// `ReasmReqds`, `ReasmOKs`, `ReasmFails`, `ReasmTimeout`,
    /// `ReasmOverlaps` (under the IDS policies: fragments that overlapped
    /// held data, resolved rather than fatal).
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.with(py, |st| st.core.stats())?;
        stats_dict(py, s)
    }

    /// `stats` of one family: 4 (`/proc/net/snmp` `Ip:`) or 6
    /// (`/proc/net/snmp6` `Ip6`).
    fn stats_for<'py>(
        &self,
        py: Python<'py>,
        family: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let fam = match int_arg(family, "family", u8::MAX as u128)? {
            Some(4) => htb::reasm::Family::V4,
            Some(6) => htb::reasm::Family::V6,
            Some(_) => return Err(ParseError::new_err("family must be 4 or 6")),
            None => {
                return Err(PyTypeError::new_err(format!(
                    "family must be an int (4 or 6), not {}",
                    type_name(family)
                )));
            }
        };
        let s = self.with(py, |st| st.core.stats_for(fam))?;
        stats_dict(py, s)
    }

    /// Fragments not kept, by reason: `duplicate`, `overlap`,
    /// `inconsistent`, `memory_limit`, `oversize`, `ecn_mismatch`.
    #[getter]
    fn drops<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let drops = self.with(py, |st| st.drops)?;
        let d = PyDict::new(py);
        for (name, n) in FragDrop::ALL.iter().map(|d| d.name()).zip(drops) {
            d.set_item(name, n)?;
        }
        Ok(d)
    }

    /// Bytes held now (compared with `high_thresh`).
    #[getter]
    fn mem_used(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |st| st.core.mem_used())
    }

    /// Queues held now (also `len()`).
    #[getter]
    fn queues(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |st| st.core.queues())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.queues(py)
    }

    #[getter]
    fn policy(&self) -> &'static str {
        self.cfg.policy.name()
    }

    #[getter]
    fn high_thresh(&self) -> usize {
        self.cfg.high_thresh
    }

    /// IPv4 queue lifetime, seconds.
    #[getter]
    fn timeout_v4(&self) -> f64 {
        self.cfg.timeout_v4 as f64 / 1e9
    }

    /// IPv6 queue lifetime, seconds.
    #[getter]
    fn timeout_v6(&self) -> f64 {
        self.cfg.timeout_v6 as f64 / 1e9
    }

    #[getter]
    fn max_dist(&self) -> u32 {
        self.cfg.max_dist
    }

    #[getter]
    fn max_datagram(&self) -> usize {
        self.cfg.max_datagram
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (q, m) = self.with(py, |st| (st.core.queues(), st.core.mem_used()))?;
        Ok(format!(
            "Reassembler(policy={:?}, queues={q}, mem_used={m})",
            self.cfg.policy.name()
        ))
    }
}

/// Fragments an IP packet for a link of `mtu` bytes, as Linux does; a
/// packet that fits is returned as its only fragment.
#[pyfunction]
#[pyo3(signature = (packet, mtu, *, ipv6_id=None, ignore_df=false))]
pub fn fragment(
    py: Python<'_>,
    packet: &Bound<'_, PyAny>,
    mtu: &Bound<'_, PyAny>,
    ipv6_id: Option<&Bound<'_, PyAny>>,
    ignore_df: bool,
) -> PyResult<Vec<Py<PyBytes>>> {
    let data = packet_arg(packet)?;
    let mtu = match int_arg(mtu, "mtu", usize::MAX as u128)? {
        Some(v) => v as usize,
        None => {
            return Err(PyTypeError::new_err(format!(
                "mtu must be an int, not {}",
                type_name(mtu)
            )));
        }
    };
    let ipv6_id = match ipv6_id.filter(|o| !o.is_none()) {
        Some(o) => Some(u32_arg(o, "ipv6_id")?),
        None => None,
    };
    let opts = FragOptions {
        mtu,
        ipv6_id,
        ignore_df,
    };
    let mut f = Fragmenter::new(&data, opts).map_err(|e| frag_err(py, e))?;
    let mut out = Vec::with_capacity(f.remaining());
    // Each fragment is written straight into its Python bytes object.
    while let Some(n) = f.next_len() {
        let b = PyBytes::new_with(py, n, |buf| match f.next_into(buf) {
            Ok(Some(m)) if m == n => Ok(()),
            Ok(_) => Err(HtbError::new_err(
                "internal error: fragment length differs from its announced length",
            )),
            Err(e) => Err(frag_err(py, e)),
        })?;
        out.push(b.unbind());
    }
    Ok(out)
}

/// Every policy name, the default first.
pub fn policies() -> Vec<&'static str> {
    Policy::ALL.iter().map(|p| p.name()).collect()
}
