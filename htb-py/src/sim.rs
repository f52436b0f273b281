//! `htb.simulate`: the simulation of `htb simulate`, returning rate series.

use std::collections::BTreeMap;

use htb::sim::{SimConfig, SimPacket, parse_flows};
use htb::tc::LoadOptions;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::{ConfigError, ParseError, int_arg, rate, type_name, warn};
/// Text given directly (`str`), or a file (`os.PathLike`): (text, name).
fn text_or_file(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<(String, String)> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok((s.to_cow()?.into_owned(), format!("<{what}>")));
    }
    let os = py.import("os")?;
    let path: String = match os.call_method1("fspath", (obj,)) {
        Ok(p) => p
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("{what}: a bytes path is not supported")))?,
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "{what} must be the text (str) or a path (os.PathLike), not {}",
                type_name(obj)
            )));
        }
    };
    let text = py.detach(|| std::fs::read_to_string(&path))?;
    Ok((text, path))
}

/// What a simulation measured. Rates are bits per second; `times` are the
/// ends of the steps in seconds, one per entry of each `series` list.
#[pyclass(module = "htb", frozen)]
pub struct SimResult {
    /// Class ids in tree order.
    #[pyo3(get)]
    classes: Vec<String>,
    /// End of each step (s).
    #[pyo3(get)]
    times: Vec<f64>,
    /// Per class, the rate achieved in each step (bit/s).
    #[pyo3(get)]
    series: BTreeMap<String, Vec<f64>>,
    /// Per class, the rate averaged over the window after the warm-up (bit/s).
    #[pyo3(get)]
    rates: BTreeMap<String, f64>,
    /// Rate of the direct queue over the window (bit/s).
    #[pyo3(get)]
    direct_rate: f64,
    /// Packets handed back as dropped over the whole run.
    #[pyo3(get)]
    dropped: u64,
    /// Simulated time (s).
    #[pyo3(get)]
    duration: f64,
    /// Warm-up before the measured window (s).
    #[pyo3(get)]
    warmup: f64,
    /// Step width (s).
    #[pyo3(get)]
    step: f64,
    /// Loader warnings (tc's quantum warnings, skipped lines).
    #[pyo3(get)]
    warnings: Vec<String>,
    window_stats: Vec<htb::sim::WindowStats>,
}

#[pymethods]
impl SimResult {
    /// Per class, the window counters: bytes, packets, drops, overlimits,
    /// lends, borrows and rate (bit/s).
    #[getter]
    fn window<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let d = PyDict::new(py);
        for w in &slf.get().window_stats {
            let e = PyDict::new(py);
            e.set_item("bytes", w.bytes)?;
            e.set_item("packets", w.packets)?;
            e.set_item("drops", w.drops)?;
            e.set_item("overlimits", w.overlimits)?;
            e.set_item("lends", w.lends)?;
            e.set_item("borrows", w.borrows)?;
            e.set_item("rate", w.rate_bps)?;
            d.set_item(w.id.to_string(), e)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let rates: Vec<String> = self
            .classes
            .iter()
            .map(|c| format!("{c:?}: {:.4e}", self.rates.get(c).copied().unwrap_or(0.0)))
            .collect();
        format!(
            "SimResult(duration={}, warmup={}, step={}, rates={{{}}})",
            self.duration,
            self.warmup,
            self.step,
            rates.join(", ")
        )
    }
}

/// Loads a tc script, runs the flows through it for `duration` of virtual
/// time (the GIL is released meanwhile) and returns per-class rate series.
#[pyfunction]
#[pyo3(signature = (script, flows, duration=None, step=None, *, warmup=None, link=None,
                    backlog=None, ignore_unsupported=false),
       text_signature = "(script, flows, duration='10s', step='100ms', *, warmup='1s', link=None, backlog=128, ignore_unsupported=False)")]
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    py: Python<'_>,
    script: &Bound<'_, PyAny>,
    flows: &Bound<'_, PyAny>,
    duration: Option<&Bound<'_, PyAny>>,
    step: Option<&Bound<'_, PyAny>>,
    warmup: Option<&Bound<'_, PyAny>>,
    link: Option<&Bound<'_, PyAny>>,
    backlog: Option<&Bound<'_, PyAny>>,
    ignore_unsupported: bool,
) -> PyResult<SimResult> {
    let defaults = SimConfig::default();
    let dur = |o: Option<&Bound<'_, PyAny>>, what: &str, default: u64| {
        o.map_or(Ok(default), |o| crate::duration(o, what))
    };
    let duration_ns = dur(duration, "duration", defaults.duration_ns)?;
    let step_ns = dur(step, "step", defaults.step_ns)?;
    let warmup_ns = dur(warmup, "warmup", defaults.warmup_ns)?;
    let link = link.map(|l| rate(l, "link")).transpose()?;
    let backlog = match backlog {
        None => defaults.backlog_depth,
        Some(backlog) => match int_arg(backlog, "backlog", 1_000_000)? {
            Some(b) if b >= 1 => b as u32,
            Some(_) => return Err(ConfigError::new_err("backlog must be at least 1")),
            None => {
                return Err(PyTypeError::new_err(format!(
                    "backlog must be an int, not {}",
                    type_name(backlog)
                )));
            }
        },
    };
    let cfg = SimConfig {
        duration_ns,
        warmup_ns,
        step_ns,
        link,
        backlog_depth: backlog,
        ..SimConfig::default()
    };
    cfg.validate()
        .map_err(|e| ConfigError::new_err(e.to_string()))?;
    let (script_text, script_name) = text_or_file(py, script, "script")?;
    let (flows_text, flows_name) = text_or_file(py, flows, "flows")?;

    let opts = LoadOptions {
        ignore_unsupported,
        link_rate: link,
        now: 0,
    };
    let outcome = py.detach(move || {
        let loaded = htb::tc::load::<SimPacket>(&script_text, &script_name, &opts)?;
        let flows = parse_flows(&flows_text, &flows_name)?;
        let mut q = loaded.htb;
        let report = htb::sim::simulate(&mut q, &flows, &cfg, |_| {});
        Ok::<_, htb::tc::Diagnostic>((report, loaded.warnings))
    });
    let (report, warnings) = outcome.map_err(|d| ParseError::new_err(d.to_string()))?;
    let warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    for w in &warnings {
        warn(py, w)?;
    }

    let classes: Vec<String> = report.classes.iter().map(|c| c.id.to_string()).collect();
    let mut times = Vec::with_capacity(report.series.len());
    let mut series: BTreeMap<String, Vec<f64>> = classes
        .iter()
        .map(|c| (c.clone(), Vec::with_capacity(report.series.len())))
        .collect();
    let mut prev = 0u64;
    for (end, bytes) in &report.series {
        let width = end.saturating_sub(prev).max(1) as f64 / 1e9;
        prev = *end;
        times.push(*end as f64 / 1e9);
        for (c, b) in classes.iter().zip(bytes) {
            if let Some(v) = series.get_mut(c) {
                v.push(*b as f64 * 8.0 / width);
            }
        }
    }
    let rates = report
        .classes
        .iter()
        .map(|c| (c.id.to_string(), c.rate_bps))
        .collect();
    Ok(SimResult {
        classes,
        times,
        series,
        rates,
        direct_rate: report.direct_rate_bps,
        dropped: report.dropped,
        duration: report.duration_ns as f64 / 1e9,
        warmup: warmup_ns as f64 / 1e9,
        step: step_ns as f64 / 1e9,
        warnings,
        window_stats: report.classes,
    })
}
