//! `htb simulate`.

use std::collections::HashMap;
use std::fmt::Write;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use htb::sim::{
    Flow, Offered, SimConfig, SimConfigError, SimPacket, SimReport, parse_flows, simulate,
};
use htb::tc::Diagnostic;
use htb::{ClassId, ClassInfo, Htb};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

use crate::SimulateArgs;
use crate::input::{
    CliError, Dest, destination, display_name, flow_warnings, load_script, print_warnings,
    read_text,
};
use crate::plot;
use crate::render::class_block;

pub fn run(a: &SimulateArgs) -> Result<String, CliError> {
    let cfg = SimConfig {
        duration_ns: a.duration,
        warmup_ns: a.warmup,
        step_ns: a.step,
        link: a.script.link,
        backlog_depth: a.backlog,
        ..SimConfig::default()
    };
    // The library's rule, in the command's words.
    if let Err(e) = cfg.validate() {
        return Err(CliError::Input(match e {
            SimConfigError::ZeroDuration => {
                "htb: error: --duration must be greater than zero".into()
            }
            SimConfigError::WarmupTooLong => format!(
                "htb: error: --warmup ({}) must be shorter than --duration ({})",
                secs(a.warmup),
                secs(a.duration)
            ),
            SimConfigError::StepTooShort { min_ns } => format!(
                "htb: error: --step must be between {} and --duration",
                secs(min_ns)
            ),
            SimConfigError::StepTooLong => {
                "htb: error: --step must not be longer than --duration".into()
            }
            e => format!("htb: error: {e}"),
        }));
    }
    if let Some(p) = &a.plot {
        plot::format_of(p)?;
    }

    let loaded = load_script(&a.script)?;
    let flows_name = display_name(&a.traffic);
    let flows_text = read_text(&a.traffic)?;
    let flows = parse_flows(&flows_text, &flows_name)?;
    let mut q = loaded.htb;
    let mut warnings = loaded.warnings;
    warnings.extend(flow_warnings(&q, &flows, &flows_text, &flows_name));
    if flows.is_empty() {
        warnings.push(Diagnostic {
            file: flows_name.clone(),
            line: 1,
            col: 1,
            severity: htb::tc::Severity::Warning,
            message: "no flows: every class stays idle".into(),
        });
    }
    print_warnings(&warnings);
    let plot_ids = match &a.plot {
        Some(p) => {
            let ids = parse_plot_classes(&q, &a.plot_classes)?;
            // The input is good: fail now if the plot cannot be written, not
            // after a long run.
            std::fs::File::create(p).map_err(|e| {
                CliError::Output(format!(
                    "htb: error: cannot write {}: {}",
                    p.display(),
                    crate::input::io_reason(&e)
                ))
            })?;
            Some(ids)
        }
        None => None,
    };

    let progress = Progress::new(a.duration, a.quiet);
    let report = simulate(&mut q, &flows, &cfg, |now| progress.update(now));
    progress.finish();

    let infos = q.classes();
    if let (Some(path), Some(ids)) = (&a.plot, plot_ids) {
        let ids = if ids.is_empty() {
            plot::default_selection(&infos, &report)
        } else {
            ids
        };
        let title = format!(
            "htb simulate {} --traffic {}",
            display_name(&a.script.script),
            flows_name
        );
        plot::draw(path, &title, &infos, &report, &ids, a.warmup)?;
    }
    if a.json {
        let mut s = serde_json::to_string_pretty(&json_report(&report))
            .map_err(|e| CliError::Output(format!("htb: error: {e}")))?;
        s.push('\n');
        return Ok(s);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "simulated {}, measured over the window {}..{} ({}); link {}; {} flow{} from {}",
        secs(report.duration_ns),
        secs(a.warmup),
        secs(report.duration_ns),
        secs(report.window_ns),
        match a.script.link {
            Some(r) => htb::rate::format_rate(r),
            None => "unlimited (takes packets as fast as HTB releases them)".to_string(),
        },
        flows.len(),
        if flows.len() == 1 { "" } else { "s" },
        flows_name,
    );
    let _ = writeln!(
        out,
        "offered and achieved rates in Mbit/s, averaged over the window; counters over the window"
    );
    if report.dropped > 0 {
        let _ = writeln!(
            out,
            "{} packets refused at enqueue over the whole run (full leaf queues)",
            report.dropped
        );
    }
    out.push('\n');
    if !a.summary {
        out.push_str(&tc_blocks(&infos, &report));
    }
    out.push_str(&summary_table(&q, &infos, &report, &flows));
    Ok(out)
}

/// `1.5s`, `100ms`, `10s`.
pub fn secs(ns: u64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns >= 1_000_000_000 {
        format!("{}s", ns as f64 / 1e9)
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}us", ns as f64 / 1e3)
    }
}

fn parse_plot_classes(q: &Htb<SimPacket>, names: &[String]) -> Result<Vec<ClassId>, CliError> {
    let mut ids = Vec::new();
    for n in names.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let id: ClassId = n.parse().map_err(|_| {
            CliError::Input(format!(
                "htb: error: --plot-classes: invalid class id \"{n}\""
            ))
        })?;
        if q.class_info(id).is_none() {
            return Err(CliError::Input(format!(
                "htb: error: --plot-classes: class {id} is not in the script"
            )));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// The JSON: counters over the window, every class in tree order.
pub fn json_report(r: &SimReport) -> Value {
    let mut classes = Map::new();
    for c in &r.classes {
        classes.insert(
            c.id.to_string(),
            json!({
                "bytes": c.bytes,
                "packets": c.packets,
                "drops": c.drops,
                "overlimits": c.overlimits,
                "lends": c.lends,
                "borrows": c.borrows,
                "rate_bps": c.rate_bps,
            }),
        );
    }
    json!({
        "duration_ns": r.duration_ns,
        "window_ns": r.window_ns,
        "classes": classes,
        "direct": {
            "bytes": r.direct_bytes,
            "packets": r.direct_packets,
            "rate_bps": r.direct_rate_bps,
        },
    })
}

/// Every class as `tc -s class show` prints it, with the counters of the
/// window and the achieved rate where tc shows its rate estimator.
fn tc_blocks(infos: &[ClassInfo], r: &SimReport) -> String {
    let window_s = r.window_ns as f64 / 1e9;
    let mut out = String::new();
    for info in infos {
        let mut c = info.clone();
        let Some(w) = r.class(c.id) else { continue };
        c.stats.bytes = w.bytes;
        c.stats.packets = w.packets;
        c.stats.drops = w.drops;
        c.stats.overlimits = w.overlimits;
        c.stats.lends = w.lends;
        c.stats.borrows = w.borrows;
        let pps = w.packets as f64 / window_s;
        out.push_str(&class_block(&c, false, Some((w.rate_bps, pps))));
    }
    out
}

fn mbit(bps: f64) -> String {
    format!("{:.4}", bps / 1e6)
}

/// Offered load per destination, averaged over the measured window like the
/// achieved rates: (bits/s of paced flows, any backlogged flow active in
/// the window).
fn offered(q: &Htb<SimPacket>, flows: &[Flow], r: &SimReport) -> HashMap<Dest, (f64, bool)> {
    let from = r.duration_ns - r.window_ns;
    let mut m: HashMap<Dest, (f64, bool)> = HashMap::new();
    for f in flows {
        let start = f.start_ns.max(from);
        let stop = f.stop_ns.unwrap_or(r.duration_ns).min(r.duration_ns);
        let share = stop.saturating_sub(start) as f64 / r.window_ns as f64;
        let e = m.entry(destination(q, f.class)).or_default();
        match f.offered {
            Offered::Backlogged => e.1 |= share > 0.0,
            Offered::Rate(bytes_ps) => e.0 += bytes_ps as f64 * 8.0 * share,
        }
    }
    m
}

fn summary_table(q: &Htb<SimPacket>, infos: &[ClassInfo], r: &SimReport, flows: &[Flow]) -> String {
    let offered = offered(q, flows, r);
    let offered_text = |d: Dest| match offered.get(&d) {
        None => "-".to_string(),
        Some((_, true)) => "max".to_string(),
        Some((bps, false)) if *bps == 0.0 => "-".to_string(),
        Some((bps, false)) => mbit(*bps),
    };
    let mut depth: HashMap<ClassId, usize> = HashMap::new();
    let header = [
        "class",
        "prio",
        "rate",
        "ceil",
        "offered",
        "achieved",
        "pkts",
        "drops",
        "overlimits",
        "lended",
        "borrowed",
    ];
    let mut rows: Vec<[String; 11]> = Vec::new();
    for info in infos {
        let d = info.parent.and_then(|p| depth.get(&p)).map_or(0, |d| d + 1);
        depth.insert(info.id, d);
        let Some(w) = r.class(info.id) else { continue };
        rows.push([
            format!("{}{}", "  ".repeat(d), info.id),
            if info.is_leaf {
                info.prio.to_string()
            } else {
                String::new()
            },
            htb::rate::format_rate(info.rate),
            htb::rate::format_rate(info.ceil),
            if info.is_leaf {
                offered_text(Dest::Leaf(info.id))
            } else {
                String::new()
            },
            mbit(w.rate_bps),
            w.packets.to_string(),
            w.drops.to_string(),
            w.overlimits.to_string(),
            w.lends.to_string(),
            w.borrows.to_string(),
        ]);
    }
    if r.direct_packets > 0 || offered.contains_key(&Dest::Direct) {
        rows.push([
            "direct".into(),
            String::new(),
            "-".into(),
            "-".into(),
            offered_text(Dest::Direct),
            mbit(r.direct_rate_bps),
            r.direct_packets.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[&str], out: &mut String| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i == 0 {
                let _ = write!(s, "{cell:<w$}");
            } else {
                let _ = write!(s, "  {cell:>w$}");
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header, &mut out);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells, &mut out);
    }
    out
}

/// A progress bar on stderr for runs that take over a second of wall-clock
/// time, and only when stderr is a terminal.
struct Progress {
    bar: ProgressBar,
    start: Instant,
    enabled: bool,
    shown: std::cell::Cell<bool>,
}

impl Progress {
    fn new(duration_ns: u64, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(duration_ns / 1_000_000),
            ProgressDrawTarget::hidden(),
        );
        let style = ProgressStyle::with_template(
            "simulating [{bar:30.cyan/blue}] {msg} virtual time ({elapsed}, ~{eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Progress {
            bar,
            start: Instant::now(),
            enabled: !quiet && std::io::stderr().is_terminal(),
            shown: std::cell::Cell::new(false),
        }
    }

    fn update(&self, now_ns: u64) {
        if !self.enabled {
            return;
        }
        let show = self.shown.get() || self.start.elapsed() >= Duration::from_secs(1);
        if !show {
            return;
        }
        self.bar.set_position(now_ns / 1_000_000);
        self.bar.set_message(format!(
            "{:.1}s / {:.1}s",
            now_ns as f64 / 1e9,
            self.bar.length().unwrap_or(0) as f64 / 1e3
        ));
        if !self.shown.get() {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
    }

    fn finish(&self) {
        if self.shown.get() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn durations_print_short() {
        assert_eq!(secs(10_000_000_000), "10s");
        assert_eq!(secs(1_500_000_000), "1.5s");
        assert_eq!(secs(100_000_000), "100ms");
        assert_eq!(secs(250_000), "250us");
    }
}
