//! Conformance with the live Linux kernel: `htb simulate` and the real
//! `sch_htb` on the same inputs (issue 3, "The live kernel as the oracle").
//!
//! Every pair `NAME.tc` + `NAME.flows` in `oracle/conformance/` is run twice:
//! by the built `htb` binary (`simulate NAME.tc --traffic NAME.flows --json
//! --duration 10s --warmup 2s`) and by `oracle/htb_oracle.py --script NAME.tc
//! --flows NAME.flows`, which applies the script to a veth in private network
//! namespaces and measures the kernel's class counters over rtnetlink while
//! one UDP sender per flow runs. Every class's rate (inner ones too) and the
//! direct queue's rate must agree within 2 % of the ceil of the class's
//! top-level ancestor (for the direct queue: of the largest top-level ceil).
//!
//! The test is `#[ignore]`d so that a plain `cargo test` stays fast;
//! `scripts/test.sh` (and so CI) runs it with `--ignored`. It never fails for
//! reasons outside the code under test:
//! - where namespaces are unavailable (not root, no `ip netns add`: the
//!   harness exits 77) it prints why and passes;
//! - a kernel measurement the harness declares invalid after its retries
//!   (vCPU steal, a starved sender) is reported as NOT COMPARED, with the
//!   harness's reasons, and does not fail the test;
//! - the kernel runs share a time budget (`BUDGET`) so that the whole suite
//!   stays under 3 minutes; a scenario the budget cannot cover any more is
//!   NOT COMPARED too.
//!
//! The harness removes its namespaces itself, also when it fails or is
//! terminated (SIGTERM from the watchdog here).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

const HTB: &str = env!("CARGO_BIN_EXE_htb");

/// Our side: the command of the issue.
const SIM_ARGS: [&str; 6] = ["--duration", "10s", "--warmup", "2s", "--json", "--quiet"];

/// Kernel side: a shorter warm-up and window than the simulation's. The flows
/// are stationary (no START/STOP, checked below), so only long-run rates are
/// compared and a 4 s window carries ≈ 0.05 % of counter-skew noise.
const KERNEL_WARMUP_S: f64 = 1.5;
const KERNEL_WINDOW_S: f64 = 4.0;
/// Valid kernel runs per scenario (the harness reports their median).
const KERNEL_REPEATS: u32 = 2;
/// Wall time of one kernel attempt: warm-up + window + ≈ 0.45 s of namespace
/// set-up, start barrier and teardown (measured 5.9–6.0 s), plus margin.
const ATTEMPT_S: f64 = 6.3;
/// At most this many attempts per scenario (valid or not).
const MAX_ATTEMPTS: u32 = 5;
/// Wall-time budget of all kernel runs together; with the simulations and
/// start-up the suite stays under 3 minutes.
const BUDGET: Duration = Duration::from_secs(160);

/// Tolerance of the issue: 2 % of the top class's ceil.
const TOLERANCE_OF_TOP_CEIL: f64 = 0.02;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The `NAME.tc` + `NAME.flows` pairs, sorted by name.
fn scenarios() -> Vec<(String, PathBuf, PathBuf)> {
    let dir = workspace().join("oracle/conformance");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tc"))
        .map(|tc| {
            let flows = tc.with_extension("flows");
            assert!(
                flows.is_file(),
                "{} has no flows file {}",
                tc.display(),
                flows.display()
            );
            let name = tc.file_stem().unwrap().to_string_lossy().into_owned();
            (name, tc, flows)
        })
        .collect();
    out.sort();
    out
}

/// Conformance flows must be stationary: the kernel window (1.5 s + 4 s) is
/// not the simulation's (2 s + 8 s), which only matters when flows start or
/// stop. (The harness itself supports START/STOP, with windows aligned.)
fn assert_stationary(flows: &Path) {
    let text = std::fs::read_to_string(flows).expect("read flows file");
    for (n, line) in text.lines().enumerate() {
        let fields = line.split('#').next().unwrap().split_whitespace().count();
        assert!(
            fields <= 3,
            "{}:{}: conformance flows must not use START/STOP",
            flows.display(),
            n + 1
        );
    }
}

/// The real interpreter (Python ≥ 3.11, which the harness needs), not a pyenv
/// shim, so that the watchdog's SIGTERM reaches the harness (which then
/// cleans up and exits). `HTB_ORACLE_PYTHON` overrides the search.
fn python() -> Option<PathBuf> {
    const PROBE: &str = "import sys; print(sys.executable if sys.version_info >= (3, 11) else '')";
    let from_env = std::env::var("HTB_ORACLE_PYTHON").ok();
    let candidates =
        from_env
            .iter()
            .map(String::as_str)
            .chain(["python3", "/usr/bin/python3", "python3.11"]);
    for c in candidates {
        let found = Command::new("/usr/bin/env")
            .args([c, "-c", PROBE])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.is_absolute() && p.is_file());
        if found.is_some() {
            return found;
        }
    }
    None
}

fn simulate(tc: &Path, flows: &Path) -> Value {
    let out = Command::new(HTB)
        .arg("simulate")
        .arg(tc)
        .arg("--traffic")
        .arg(flows)
        .args(SIM_ARGS)
        .stdin(Stdio::null())
        .output()
        .expect("run htb");
    assert!(
        out.status.success(),
        "htb simulate {} failed ({}): {}",
        tc.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("htb simulate --json prints one JSON object")
}

enum Kernel {
    /// A valid measurement (the harness's JSON).
    Measured(Value),
    /// No namespaces here: skip the whole suite.
    Unavailable(String),
    /// No valid measurement (noise, time budget): not compared.
    Inconclusive(String),
}

fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Asks a process we started to terminate (the harness cleans up on SIGTERM).
fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn run_oracle(
    python: &Path,
    tc: &Path,
    flows: &Path,
    max_attempts: u32,
    lock_timeout_s: f64,
    watchdog: Duration,
) -> Kernel {
    let mut child = Command::new(python)
        .arg(workspace().join("oracle/htb_oracle.py"))
        .arg("--script")
        .arg(tc)
        .arg("--flows")
        .arg(flows)
        .args(["--warmup", &KERNEL_WARMUP_S.to_string()])
        .args(["--window", &KERNEL_WINDOW_S.to_string()])
        .args(["--repeats", &KERNEL_REPEATS.to_string()])
        .args(["--max-attempts", &max_attempts.to_string()])
        .args(["--lock-timeout", &format!("{lock_timeout_s:.0}")])
        .arg("--quiet")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let t0 = Instant::now();
    let mut terminated = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the oracle") {
            break s;
        }
        if !terminated && t0.elapsed() > watchdog {
            terminate(&child);
            terminated = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap())
        .trim()
        .to_string();
    match status.code() {
        Some(0) => {
            let k: Value = serde_json::from_slice(&stdout).expect("oracle prints one JSON object");
            if k["valid"].as_bool() == Some(true) {
                Kernel::Measured(k)
            } else {
                Kernel::Inconclusive(format!(
                    "no valid kernel measurement after {} attempt(s): {}",
                    k["attempts"],
                    k["reasons"]
                        .as_array()
                        .map(|r| r
                            .iter()
                            .map(|x| x.as_str().unwrap_or("?"))
                            .collect::<Vec<_>>()
                            .join("; "))
                        .unwrap_or_default()
                ))
            }
        }
        Some(77) => Kernel::Unavailable(stderr),
        _ if terminated => Kernel::Inconclusive(format!(
            "the oracle overran its {} s watchdog and was terminated ({status})",
            watchdog.as_secs()
        )),
        _ => panic!("oracle failed ({status}) on {}: {stderr}", tc.display()),
    }
}

/// Per class: 2 % of the ceil (bit/s) of its top-level ancestor, from the
/// configuration the kernel reports back. For the direct queue: 2 % of the
/// largest top-level ceil.
fn tolerances(kernel: &Value) -> (Vec<(String, f64)>, f64) {
    let cfg = kernel["config"]["classes"]
        .as_object()
        .expect("config.classes in oracle output");
    let top_ceil = |id: &str| -> f64 {
        let mut id = id.to_string();
        for _ in 0..16 {
            match cfg[&id]["parent"].as_str() {
                Some("root") | None => break,
                Some(p) => id = p.to_string(),
            }
        }
        cfg[&id]["ceil_Bps"].as_f64().expect("ceil_Bps") * 8.0
    };
    let per_class = cfg
        .keys()
        .map(|id| (id.clone(), TOLERANCE_OF_TOP_CEIL * top_ceil(id)))
        .collect();
    let max_top = cfg
        .iter()
        .filter(|(_, c)| c["parent"] == "root")
        .map(|(_, c)| c["ceil_Bps"].as_f64().unwrap_or(0.0) * 8.0)
        .fold(0.0, f64::max);
    (per_class, TOLERANCE_OF_TOP_CEIL * max_top)
}

/// Compares; returns the disagreements and prints one line per rate.
fn compare(name: &str, ours: &Value, kernel: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let (tols, direct_tol) = tolerances(kernel);
    let our_classes = ours["classes"].as_object().expect("classes in htb output");
    for id in our_classes.keys() {
        if kernel["classes"].get(id).is_none() {
            bad.push(format!("{name}: class {id} is ours only"));
        }
    }
    let mut rows: Vec<(String, f64, f64, f64)> = Vec::new();
    for (id, tol) in tols {
        let k = kernel["classes"][&id]["rate_bps"].as_f64();
        let o = our_classes.get(&id).and_then(|c| c["rate_bps"].as_f64());
        match (o, k) {
            (Some(o), Some(k)) => rows.push((id, o, k, tol)),
            (None, _) => bad.push(format!("{name}: class {id} is the kernel's only")),
            (_, None) => bad.push(format!("{name}: no kernel rate for class {id}")),
        }
    }
    let kd = kernel["direct_rate_bps"].as_f64().expect("direct_rate_bps");
    let od = ours["direct"]["rate_bps"]
        .as_f64()
        .expect("direct.rate_bps");
    rows.push(("direct".into(), od, kd, direct_tol));
    for (id, o, k, tol) in rows {
        let ok = (o - k).abs() <= tol;
        println!(
            "  {name:<16} {id:<7} ours {:>8.3}  kernel {:>8.3}  diff {:>+7.3}  tol {:.3} Mbit/s  {}",
            o / 1e6,
            k / 1e6,
            (o - k) / 1e6,
            tol / 1e6,
            if ok { "ok" } else { "MISMATCH" }
        );
        if !ok {
            bad.push(format!(
                "{name}: {id} ours {:.3} Mbit/s, kernel {:.3} Mbit/s (tolerance {:.3})",
                o / 1e6,
                k / 1e6,
                tol / 1e6
            ));
        }
    }
    bad
}

#[test]
#[ignore = "runs the live kernel for ~2 minutes; scripts/test.sh runs it"]
fn htb_simulate_matches_the_live_kernel() {
    let t_suite = Instant::now();
    let list = scenarios();
    assert!(
        list.len() >= 6,
        "expected at least 6 conformance pairs, found {}",
        list.len()
    );

    // Our side first: fast, and a broken script fails before any kernel run.
    let ours: Vec<Value> = list
        .iter()
        .map(|(_, tc, flows)| {
            assert_stationary(flows);
            simulate(tc, flows)
        })
        .collect();

    let Some(python) = python() else {
        println!("SKIP: no Python >= 3.11 interpreter for oracle/htb_oracle.py");
        return;
    };
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel_conformance");
    let _ = std::fs::create_dir_all(&scratch);

    let t_kernel = Instant::now();
    let mut failures = Vec::new();
    let mut not_compared = Vec::new();
    let mut compared = 0;
    for (i, ((name, tc, flows), ours)) in list.iter().zip(&ours).enumerate() {
        // Keep two attempts' worth for every scenario still to come.
        let left = BUDGET.saturating_sub(t_kernel.elapsed()).as_secs_f64();
        let reserve = (list.len() - i - 1) as f64 * f64::from(KERNEL_REPEATS) * ATTEMPT_S;
        let attempts = (((left - reserve) / ATTEMPT_S).floor().max(0.0) as u32).min(MAX_ATTEMPTS);
        if attempts < KERNEL_REPEATS {
            println!("{name}: NOT COMPARED: kernel time budget used up");
            not_compared.push(name.clone());
            continue;
        }
        // Waiting for another oracle run on this machine (the harness's lock)
        // may use what the attempts leave of the share; the watchdog bounds
        // the rest.
        let lock_timeout = (left - reserve - f64::from(attempts) * ATTEMPT_S).max(1.0);
        let watchdog = Duration::from_secs_f64(left - reserve + 10.0);
        let t = Instant::now();
        let kernel = run_oracle(&python, tc, flows, attempts, lock_timeout, watchdog);
        let wall = t.elapsed().as_secs_f64();
        let kernel = match kernel {
            Kernel::Unavailable(why) => {
                println!("SKIP: kernel oracle unavailable here: {why}");
                return;
            }
            Kernel::Inconclusive(why) => {
                println!("{name}: NOT COMPARED ({wall:.1} s): {why}");
                not_compared.push(name.clone());
                continue;
            }
            Kernel::Measured(k) => k,
        };
        let _ = std::fs::write(
            scratch.join(format!("{name}.oracle.json")),
            serde_json::to_string_pretty(&kernel).unwrap(),
        );
        let steal: Vec<String> = kernel["runs"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| {
                        format!(
                            "{}{:.2}%",
                            if r["valid"] == true { "" } else { "x" },
                            r["steal_frac"].as_f64().unwrap_or(f64::NAN) * 100.0
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{name}: kernel {} valid of {} attempt(s) (max {attempts}), {wall:.1} s, steal per attempt [{}] (x = discarded)",
            kernel["valid_runs"],
            kernel["attempts"],
            steal.join(" ")
        );
        failures.extend(compare(name, ours, &kernel));
        compared += 1;
    }
    println!(
        "compared {compared} of {} scenarios with the kernel{}; kernel runs {:.1} s, suite {:.1} s",
        list.len(),
        if not_compared.is_empty() {
            String::new()
        } else {
            format!(" (not compared: {})", not_compared.join(", "))
        },
        t_kernel.elapsed().as_secs_f64(),
        t_suite.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "htb simulate disagrees with the kernel:\n{}",
        failures.join("\n")
    );
}
