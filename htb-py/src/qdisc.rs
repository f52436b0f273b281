//! `htb.Qdisc`, `htb.Dropped`, `htb.ClassStats`: the shaper.

use std::sync::Mutex;

use htb::leaf::DropReason;
use htb::rate::LinkLayer;
use htb::tc::LoadOptions;
use htb::{ClassConfig, ClassId, ClassInfo, Htb, Packet, QdiscConfig};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::{
    ConfigError, PacketError, ParseError, classid, htb_err, int_arg, lock, now_arg, rate, size,
    type_name, warn,
};

/// A Python object queued in the shaper, with the length HTB charges.
pub(crate) struct PyPacket {
    obj: Py<PyAny>,
    len: u32,
}

impl Packet for PyPacket {
    fn len(&self) -> u32 {
        self.len
    }
}

fn reason_code(r: DropReason) -> &'static str {
    match r {
        DropReason::QueueFull => "queue_full",
        DropReason::DirectQueueFull => "direct_queue_full",
        DropReason::Classifier => "classifier",
        DropReason::ClassifyLoop => "classify_loop",
        DropReason::Purged => "purged",
        DropReason::LeafQueue => "leaf_queue",
    }
}

/// A packet the shaper handed back, with the reason: returned by
/// `Qdisc.enqueue` when refused, and by configuration calls that removed the
/// queue a packet was in (`reason == "purged"`). The packet is never lost.
#[pyclass(module = "htb", frozen)]
pub struct Dropped {
    /// The packet object, as given to `enqueue`.
    #[pyo3(get)]
    packet: Py<PyAny>,
    /// `"queue_full"`, `"direct_queue_full"`, `"classifier"`,
    /// `"classify_loop"` or `"purged"`.
    #[pyo3(get)]
    reason: String,
}

#[pymethods]
impl Dropped {
    #[new]
    fn new(packet: Py<PyAny>, reason: String) -> Self {
        Dropped { packet, reason }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Dropped(packet={}, reason={:?})",
            self.packet.bind(py).repr()?,
            self.reason
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        match other.cast::<Dropped>() {
            Ok(o) => {
                let o = o.get();
                Ok(self.reason == o.reason && self.packet.bind(py).eq(o.packet.bind(py))?)
            }
            Err(_) => Ok(false),
        }
    }

    /// `packet, reason = dropped`
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let t = (self.packet.clone_ref(py), self.reason.clone()).into_pyobject(py)?;
        Ok(t.try_iter()?.into_any().unbind())
    }
}

fn dropped_obj(py: Python<'_>, d: htb::Dropped<PyPacket>) -> PyResult<Py<Dropped>> {
    Py::new(
        py,
        Dropped {
            packet: d.packet.obj,
            reason: reason_code(d.reason).to_string(),
        },
    )
}

fn purged_list(py: Python<'_>, pkts: Vec<PyPacket>) -> PyResult<Vec<Py<Dropped>>> {
    pkts.into_iter()
        .map(|p| {
            dropped_obj(
                py,
                htb::Dropped {
                    packet: p,
                    reason: DropReason::Purged,
                },
            )
        })
        .collect()
}

/// One class's identity, configuration and counters, with the field names
/// of `tc -s -j class show` and pyroute2. Rates are in bits per second,
/// sizes in bytes; `tokens`/`ctokens` are tc's signed credits in 64 ns ticks.
#[pyclass(module = "htb", frozen)]
pub struct ClassStats {
    #[pyo3(get)]
    classid: String,
    #[pyo3(get)]
    parent: String,
    #[pyo3(get)]
    bytes: u64,
    #[pyo3(get)]
    packets: u64,
    #[pyo3(get)]
    drops: u64,
    #[pyo3(get)]
    overlimits: u64,
    #[pyo3(get)]
    requeues: u64,
    #[pyo3(get)]
    backlog: u64,
    #[pyo3(get)]
    qlen: u64,
    #[pyo3(get)]
    lends: u64,
    #[pyo3(get)]
    borrows: u64,
    #[pyo3(get)]
    giants: u64,
    #[pyo3(get)]
    tokens: i32,
    #[pyo3(get)]
    ctokens: i32,
    #[pyo3(get)]
    rate: u64,
    #[pyo3(get)]
    ceil: u64,
    #[pyo3(get)]
    burst: u64,
    #[pyo3(get)]
    cburst: u64,
    #[pyo3(get)]
    level: u8,
    #[pyo3(get)]
    prio: u8,
    #[pyo3(get)]
    quantum: u32,
    #[pyo3(get)]
    leaf: bool,
    #[pyo3(get)]
    mode: String,
    text: String,
}

impl ClassStats {
    fn new(c: &ClassInfo, handle: ClassId) -> Self {
        let s = &c.stats;
        ClassStats {
            classid: c.id.to_string(),
            parent: c.parent.unwrap_or(handle).to_string(),
            bytes: s.bytes,
            packets: s.packets,
            drops: s.drops,
            overlimits: s.overlimits,
            requeues: s.requeues,
            backlog: s.backlog,
            qlen: s.qlen,
            lends: s.lends,
            borrows: s.borrows,
            giants: s.giants,
            tokens: s.tokens,
            ctokens: s.ctokens,
            rate: c.rate.saturating_mul(8),
            ceil: c.ceil.saturating_mul(8),
            burst: htb::rate::tc_xmitsize(c.rate, c.buffer_ticks),
            cburst: htb::rate::tc_xmitsize(c.ceil, c.cbuffer_ticks),
            level: c.level,
            prio: c.prio,
            quantum: c.quantum,
            leaf: c.is_leaf,
            mode: c.mode.to_string(),
            text: c.tc_text(true, None),
        }
    }
}

const STAT_FIELDS: [&str; 23] = [
    "classid",
    "parent",
    "bytes",
    "packets",
    "drops",
    "overlimits",
    "requeues",
    "backlog",
    "qlen",
    "lends",
    "borrows",
    "giants",
    "tokens",
    "ctokens",
    "rate",
    "ceil",
    "burst",
    "cburst",
    "level",
    "prio",
    "quantum",
    "leaf",
    "mode",
];

#[pymethods]
impl ClassStats {
    /// The fields as a plain dict (JSON-ready).
    fn as_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(slf.py());
        for f in STAT_FIELDS {
            d.set_item(f, slf.getattr(f)?)?;
        }
        Ok(d)
    }

    /// The class as `tc -s -d class show` prints it.
    fn __str__(&self) -> String {
        self.text.trim_end().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "ClassStats(classid={:?}, bytes={}, packets={}, drops={}, overlimits={}, backlog={}, qlen={}, lends={}, borrows={}, tokens={}, ctokens={}, rate={}, ceil={})",
            self.classid,
            self.bytes,
            self.packets,
            self.drops,
            self.overlimits,
            self.backlog,
            self.qlen,
            self.lends,
            self.borrows,
            self.tokens,
            self.ctokens,
            self.rate,
            self.ceil
        )
    }
}

/// An HTB qdisc (`tc qdisc add ... htb`) shaping arbitrary Python objects.
/// Time is an input: `now` is in nanoseconds from any origin.
#[pyclass(module = "htb", frozen)]
pub struct Qdisc {
    inner: Mutex<Htb<PyPacket>>,
    warnings: Vec<String>,
}

/// `default`: a class id (`"1:20"`, an int handle), tc's bare hex minor
/// (`"20"`), or an int below 0x10000 taken as the minor.
fn default_minor(obj: &Bound<'_, PyAny>, handle: u16) -> PyResult<u16> {
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        if !s.contains(':') {
            return u16::from_str_radix(s.trim_start_matches("0x"), 16)
                .map_err(|_| ParseError::new_err(format!("default: invalid class id \"{s}\"")));
        }
    }
    let id = classid(obj, "default")?;
    if id.major() != 0 && id.major() != handle {
        return Err(htb_err(htb::HtbError::WrongMajor { id, handle }));
    }
    Ok(id.minor())
}

fn linklayer(s: &str) -> PyResult<LinkLayer> {
    match s {
        "ethernet" => Ok(LinkLayer::Ethernet),
        "atm" | "adsl" => Ok(LinkLayer::Atm),
        _ => Err(ParseError::new_err(format!(
            "linklayer: \"{s}\" is not ethernet, atm or adsl"
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn class_config(
    rate_: &Bound<'_, PyAny>,
    ceil: Option<&Bound<'_, PyAny>>,
    burst: Option<&Bound<'_, PyAny>>,
    cburst: Option<&Bound<'_, PyAny>>,
    prio: &Bound<'_, PyAny>,
    quantum: Option<&Bound<'_, PyAny>>,
    mtu: Option<&Bound<'_, PyAny>>,
    mpu: Option<&Bound<'_, PyAny>>,
    overhead: Option<&Bound<'_, PyAny>>,
    ll: Option<&str>,
) -> PyResult<ClassConfig> {
    let mut c = ClassConfig::new(rate(rate_, "rate")?);
    if let Some(v) = ceil {
        c = c.ceil(rate(v, "ceil")?);
    }
    if let Some(v) = burst {
        c = c.burst(size(v, "burst", u64::MAX)?);
    }
    if let Some(v) = cburst {
        c = c.cburst(size(v, "cburst", u32::MAX as u64)?);
    }
    match int_arg(prio, "prio", u32::MAX as u128)? {
        Some(p) => c = c.prio(p as u32),
        None => {
            return Err(PyTypeError::new_err(format!(
                "prio must be an int, not {}",
                type_name(prio)
            )));
        }
    }
    if let Some(v) = quantum {
        c = c.quantum(size(v, "quantum", u32::MAX as u64)? as u32);
    }
    if let Some(v) = mtu {
        c = c.mtu(size(v, "mtu", u32::MAX as u64)? as u32);
    }
    if let Some(v) = mpu {
        c = c.mpu(size(v, "mpu", u16::MAX as u64)? as u16);
    }
    if let Some(v) = overhead {
        c = c.overhead(size(v, "overhead", u16::MAX as u64)? as u16);
    }
    if let Some(l) = ll {
        c = c.linklayer(linklayer(l)?);
    }
    Ok(c)
}

impl Qdisc {
    fn finish(
        py: Python<'_>,
        applied: Result<htb::Applied<PyPacket>, htb::HtbError>,
    ) -> PyResult<Vec<Py<Dropped>>> {
        let applied = applied.map_err(htb_err)?;
        if let Some(w) = applied.warning {
            warn(py, &format!("sch_htb: {w}"))?;
        }
        purged_list(py, applied.dropped)
    }
}

#[pymethods]
impl Qdisc {
    /// `tc qdisc add dev X root handle 1: htb [default N] [r2q N] [direct_qlen N]`.
    #[new]
    #[pyo3(signature = (default=None, r2q=10, direct_qlen=1000, *, handle=1))]
    fn new(
        default: Option<&Bound<'_, PyAny>>,
        r2q: u32,
        direct_qlen: usize,
        handle: u16,
    ) -> PyResult<Self> {
        if handle == 0 {
            return Err(ConfigError::new_err(
                "handle: the qdisc major must not be 0",
            ));
        }
        let minor = match default {
            Some(d) => default_minor(d, handle)?,
            None => 0,
        };
        let cfg = QdiscConfig::new(handle)
            .default_class(minor)
            .r2q(r2q)
            .direct_qlen(direct_qlen);
        Ok(Qdisc {
            inner: Mutex::new(Htb::new(cfg)),
            warnings: Vec::new(),
        })
    }

    /// A qdisc built from a tc script (its `tc qdisc`/`tc class` lines);
    /// tc's warnings are issued as `htb.HtbWarning` and kept in `warnings`.
    #[classmethod]
    #[pyo3(signature = (text, *, ignore_unsupported=false, link=None))]
    fn from_tc(
        _cls: &Bound<'_, pyo3::types::PyType>,
        py: Python<'_>,
        text: &str,
        ignore_unsupported: bool,
        link: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let opts = LoadOptions {
            ignore_unsupported,
            link_rate: link.map(|l| rate(l, "link")).transpose()?,
            now: 0,
        };
        let loaded = htb::tc::load::<PyPacket>(text, "<tc>", &opts)
            .map_err(|d| ParseError::new_err(d.to_string()))?;
        let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
        for w in &warnings {
            warn(py, w)?;
        }
        Ok(Qdisc {
            inner: Mutex::new(loaded.htb),
            warnings,
        })
    }

    /// The warnings of `from_tc` (tc's quantum warnings, skipped lines).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// The qdisc handle, e.g. `"1:"`.
    #[getter]
    fn handle(&self) -> PyResult<String> {
        Ok(lock(&self.inner)?.handle().to_string())
    }

    /// `tc class add ... classid CLASSID parent PARENT htb rate ...`. Returns
    /// the packets purged from `parent` when it stopped being a leaf.
    #[pyo3(signature = (classid, parent, rate, ceil=None, burst=None, cburst=None, prio=None,
                        quantum=None, *, mtu=None, mpu=None, overhead=None, linklayer=None, now=None),
           text_signature = "(self, classid, parent, rate, ceil=None, burst=None, cburst=None, prio=0, quantum=None, *, mtu=None, mpu=None, overhead=None, linklayer=None, now=None)")]
    #[allow(clippy::too_many_arguments)]
    fn add_class(
        &self,
        py: Python<'_>,
        classid: &Bound<'_, PyAny>,
        parent: &Bound<'_, PyAny>,
        rate: &Bound<'_, PyAny>,
        ceil: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
        cburst: Option<&Bound<'_, PyAny>>,
        prio: Option<&Bound<'_, PyAny>>,
        quantum: Option<&Bound<'_, PyAny>>,
        mtu: Option<&Bound<'_, PyAny>>,
        mpu: Option<&Bound<'_, PyAny>>,
        overhead: Option<&Bound<'_, PyAny>>,
        linklayer: Option<&str>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Dropped>>> {
        let id = crate::classid(classid, "classid")?;
        let parent = crate::classid(parent, "parent")?;
        let zero = 0u8.into_pyobject(py)?.into_any();
        let cfg = class_config(
            rate,
            ceil,
            burst,
            cburst,
            prio.unwrap_or(&zero),
            quantum,
            mtu,
            mpu,
            overhead,
            linklayer,
        )?;
        let now = now.map(now_arg).transpose()?.unwrap_or(0);
        let applied = lock(&self.inner)?.add_class(id, parent, &cfg, now);
        Self::finish(py, applied)
    }

    /// `tc class change ...`: new rates, bursts, prio and quantum for an
    /// existing class (tokens are kept). `parent` may be `None`; when given
    /// it must be the class's parent.
    #[pyo3(signature = (classid, parent, rate, ceil=None, burst=None, cburst=None, prio=None,
                        quantum=None, *, mtu=None, mpu=None, overhead=None, linklayer=None),
           text_signature = "(self, classid, parent, rate, ceil=None, burst=None, cburst=None, prio=0, quantum=None, *, mtu=None, mpu=None, overhead=None, linklayer=None)")]
    #[allow(clippy::too_many_arguments)]
    fn change_class(
        &self,
        py: Python<'_>,
        classid: &Bound<'_, PyAny>,
        parent: Option<&Bound<'_, PyAny>>,
        rate: &Bound<'_, PyAny>,
        ceil: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
        cburst: Option<&Bound<'_, PyAny>>,
        prio: Option<&Bound<'_, PyAny>>,
        quantum: Option<&Bound<'_, PyAny>>,
        mtu: Option<&Bound<'_, PyAny>>,
        mpu: Option<&Bound<'_, PyAny>>,
        overhead: Option<&Bound<'_, PyAny>>,
        linklayer: Option<&str>,
    ) -> PyResult<Vec<Py<Dropped>>> {
        let id = crate::classid(classid, "classid")?;
        let parent = parent.map(|p| crate::classid(p, "parent")).transpose()?;
        let zero = 0u8.into_pyobject(py)?.into_any();
        let cfg = class_config(
            rate,
            ceil,
            burst,
            cburst,
            prio.unwrap_or(&zero),
            quantum,
            mtu,
            mpu,
            overhead,
            linklayer,
        )?;
        let applied = {
            let mut q = lock(&self.inner)?;
            if let Some(p) = parent {
                let info = q
                    .class_info(id)
                    .ok_or_else(|| htb_err(htb::HtbError::UnknownClass(id)))?;
                let actual = info.parent.unwrap_or(q.handle());
                if actual != p {
                    return Err(ConfigError::new_err(format!(
                        "class {id} has parent {actual}, not {p}"
                    )));
                }
            }
            q.change_class(id, &cfg)
        };
        Self::finish(py, applied)
    }

    /// `tc class del ... classid CLASSID`. Returns the packets it held.
    #[pyo3(signature = (classid, *, now=None))]
    fn delete_class(
        &self,
        py: Python<'_>,
        classid: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Dropped>>> {
        let id = crate::classid(classid, "classid")?;
        let now = now.map(now_arg).transpose()?.unwrap_or(0);
        let applied = lock(&self.inner)?.delete_class(id, now);
        Self::finish(py, applied)
    }

    /// Queues `packet` (any object; HTB charges `len(packet)` bytes unless
    /// `size` is given) for `classid`: a leaf id, the qdisc handle (`"1:"`,
    /// the direct queue) or anything else (0: unclassified, the default
    /// class). Returns `None` when queued, or `htb.Dropped(packet, reason)`.
    #[pyo3(signature = (packet, classid, now, size=None))]
    fn enqueue(
        &self,
        py: Python<'_>,
        packet: &Bound<'_, PyAny>,
        classid: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
        size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<Dropped>>> {
        let id = crate::classid(classid, "classid")?;
        // The library's enqueue takes no time; `now` is checked for type only.
        now_arg(now)?;
        let len = match size {
            Some(s) => match int_arg(s, "size", u32::MAX as u128) {
                Ok(Some(v)) => v as u32,
                Ok(None) => {
                    return Err(PyTypeError::new_err(format!(
                        "size must be an int (bytes), not {}",
                        type_name(s)
                    )));
                }
                Err(e) => return Err(PacketError::new_err(e.value(py).to_string())),
            },
            None => match packet.len() {
                Ok(n) if n <= u32::MAX as usize => n as u32,
                Ok(n) => {
                    return Err(PacketError::new_err(format!(
                        "packet of {n} bytes is too long (at most {})",
                        u32::MAX
                    )));
                }
                Err(e) if e.is_instance_of::<PyTypeError>(py) => {
                    return Err(PyTypeError::new_err(format!(
                        "packet of type {} has no len(); pass size=",
                        type_name(packet)
                    )));
                }
                Err(e) => return Err(e),
            },
        };
        let pkt = PyPacket {
            obj: packet.clone().unbind(),
            len,
        };
        let res = lock(&self.inner)?.enqueue(pkt, id);
        match res {
            Ok(()) => Ok(None),
            Err(d) => Ok(Some(dropped_obj(py, d)?)),
        }
    }

    /// The next packet to send at time `now` (ns), or `None`.
    fn dequeue(&self, now: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let now = now_arg(now)?;
        let p = lock(&self.inner)?.dequeue(now);
        Ok(p.map(|p| p.obj))
    }

    /// When to call `dequeue` again after it returned `None` with packets
    /// queued (ns), or `None` when nothing is queued.
    fn next_wakeup(&self) -> PyResult<Option<u64>> {
        Ok(lock(&self.inner)?.next_wakeup())
    }

    /// Every class's statistics, keyed by class id (`"1:10"`), tree order.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (infos, handle) = {
            let q = lock(&self.inner)?;
            (q.classes(), q.handle())
        };
        let d = PyDict::new(py);
        for c in &infos {
            d.set_item(c.id.to_string(), Py::new(py, ClassStats::new(c, handle))?)?;
        }
        Ok(d)
    }

    /// Qdisc-wide counters (`tc -s qdisc show`).
    fn qdisc_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = lock(&self.inner)?.stats();
        let d = PyDict::new(py);
        d.set_item("bytes", s.bytes)?;
        d.set_item("packets", s.packets)?;
        d.set_item("drops", s.drops)?;
        d.set_item("overlimits", s.overlimits)?;
        d.set_item("requeues", s.requeues)?;
        d.set_item("backlog", s.backlog)?;
        d.set_item("qlen", s.qlen)?;
        d.set_item("direct_packets", s.direct_packets)?;
        Ok(d)
    }

    /// The qdisc and its classes as `tc -s -d qdisc show` and
    /// `tc -s -d class show` print them.
    fn show(&self) -> PyResult<String> {
        let q = lock(&self.inner)?;
        let mut out = htb::stats::qdisc_tc_text(q.config(), &q.stats());
        for c in q.classes() {
            out.push_str(&c.tc_text(true, None));
        }
        Ok(out)
    }

    /// Empties every queue (the kernel's `htb_reset`); returns the packets.
    fn reset(&self, py: Python<'_>) -> PyResult<Vec<Py<Dropped>>> {
        let pkts = lock(&self.inner)?.reset();
        purged_list(py, pkts)
    }

    /// Packets queued (direct queue and leaves).
    fn __len__(&self) -> PyResult<usize> {
        Ok(lock(&self.inner)?.len())
    }

    fn __repr__(&self) -> PyResult<String> {
        let q = lock(&self.inner)?;
        let c = q.config();
        Ok(format!(
            "Qdisc(handle={:?}, default={:?}, r2q={}, direct_qlen={}, classes={}, queued={})",
            q.handle().to_string(),
            ClassId::new(c.handle, c.default_class).to_string(),
            c.r2q,
            c.direct_qlen,
            q.class_count(),
            q.len()
        ))
    }
}
