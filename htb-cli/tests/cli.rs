//! Drives the built `htb` binary: what a user types, what a user sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

const HTB: &str = env!("CARGO_BIN_EXE_htb");

/// The README's reference tree: 5/30 and 10/30 under a 30mbit top.
const SPLIT_TC: &str = "\
# two leaves borrowing from one top class
tc qdisc add dev eth0 root handle 1: htb default 20
tc class add dev eth0 parent 1: classid 1:1 htb rate 30mbit
tc class add dev eth0 parent 1:1 classid 1:10 htb rate 5mbit ceil 30mbit
tc class add dev eth0 parent 1:1 classid 1:20 htb rate 10mbit ceil 30mbit
";

const SPLIT_FLOWS: &str = "1:10 max 1042\n1:20 max 1042\n";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn example(name: &str) -> String {
    workspace()
        .join("examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A fresh file under the test scratch directory.
fn scratch(name: &str, contents: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "htb-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(HTB)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run htb")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

fn simulate_json(args: &[&str]) -> Value {
    let mut a = vec!["simulate"];
    a.extend_from_slice(args);
    a.push("--json");
    let o = run(&a);
    ok(&o);
    serde_json::from_str(&stdout(&o)).expect("stdout is exactly one JSON value")
}

fn rate(v: &Value, class: &str) -> f64 {
    v["classes"][class]["rate_bps"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rate for {class} in {v}"))
}

fn near(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= want.abs() * rel
}

// ---------------------------------------------------------------------
// show
// ---------------------------------------------------------------------

#[test]
fn show_prints_tc_s_d_text_and_tc_warnings() {
    let script = scratch(
        "show.tc",
        &format!(
            "{SPLIT_TC}tc class add dev eth0 parent 1:1 classid 1:30 htb rate 8kbit ceil 30mbit prio 1\n"
        ),
    );
    let o = run(&[Path::new("show"), &script]);
    ok(&o);
    // iproute2 6.1 on Linux 6.18 printed exactly this for these lines (burst
    // 1593b is tc's truncation of 6656 ticks at 30mbit), except for the
    // device's direct_qlen (a veth's 1000 here).
    let want = "\
qdisc htb 1: root refcnt 2 r2q 10 default 0x20 direct_packets_stat 0 ver 3.17 direct_qlen 1000
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0

class htb 1:1 root rate 30Mbit ceil 30Mbit linklayer ethernet burst 1593b/1 mpu 0b cburst 1593b/1 mpu 0b level 7 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 6656 ctokens: 6656

class htb 1:10 parent 1:1 prio 0 quantum 62500 rate 5Mbit ceil 30Mbit linklayer ethernet burst 1600b/1 mpu 0b cburst 1593b/1 mpu 0b level 0 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 40000 ctokens: 6656

class htb 1:20 parent 1:1 prio 0 quantum 125000 rate 10Mbit ceil 30Mbit linklayer ethernet burst 1600b/1 mpu 0b cburst 1593b/1 mpu 0b level 0 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 20000 ctokens: 6656

class htb 1:30 parent 1:1 prio 1 quantum 1000 rate 8Kbit ceil 30Mbit linklayer ethernet burst 1600b/1 mpu 0b cburst 1593b/1 mpu 0b level 0 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 25000000 ctokens: 6656

";
    assert_eq!(stdout(&o), want);
    // 1:1 is a leaf when it is created: tc warns, on stderr, in these words.
    assert_eq!(
        stderr(&o),
        "Warning: sch_htb: quantum of class 10001 is big. Consider r2q change.\n\
         Warning: sch_htb: quantum of class 10030 is small. Consider r2q change.\n"
    );
}

#[test]
fn show_reads_standard_input() {
    let mut child = Command::new(HTB)
        .args(["show", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SPLIT_TC.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    ok(&o);
    assert!(stdout(&o).contains("class htb 1:20 parent 1:1 prio 0 quantum 125000"));
}

#[test]
fn unsupported_lines_fail_or_warn() {
    let script = scratch(
        "filter.tc",
        &format!(
            "{SPLIT_TC}tc filter add dev eth0 parent 1: protocol ip u32 match ip dport 22 0xffff flowid 1:10\n"
        ),
    );
    let o = run(&[Path::new("show"), &script]);
    assert_eq!(o.status.code(), Some(2));
    let name = script.display().to_string();
    assert_eq!(
        stderr(&o),
        format!(
            "{name}:6:4: error: unsupported tc object \"filter\" (classify with class ids instead)\n"
        )
    );
    assert!(stdout(&o).is_empty());

    let o = run(&[
        Path::new("show"),
        Path::new("--ignore-unsupported"),
        &script,
    ]);
    ok(&o);
    assert!(stderr(&o).contains(&format!("{name}:6:4: warning: unsupported tc object")));
    assert!(stdout(&o).contains("class htb 1:10"));
}

// ---------------------------------------------------------------------
// simulate
// ---------------------------------------------------------------------

#[test]
fn simulate_json_has_every_class_and_the_kernel_split() {
    let script = scratch("split.tc", SPLIT_TC);
    let flows = scratch("split.flows", SPLIT_FLOWS);
    let (s, f) = (script.to_str().unwrap(), flows.to_str().unwrap());
    let v = simulate_json(&[s, "--traffic", f]);
    assert_eq!(v["duration_ns"], 10_000_000_000u64);
    assert_eq!(v["window_ns"], 9_000_000_000u64);
    let classes = v["classes"].as_object().unwrap();
    let ids: Vec<&str> = classes.keys().map(String::as_str).collect();
    assert_eq!(ids, ["1:1", "1:10", "1:20"], "every class, inner ones too");
    for (id, c) in classes {
        for k in [
            "bytes",
            "packets",
            "drops",
            "overlimits",
            "lends",
            "borrows",
        ] {
            assert!(c[k].is_u64(), "{id}.{k} in {c}");
        }
        assert!(c["rate_bps"].is_f64(), "{id}");
        // rate_bps is bits per second of charged length over the window.
        let bytes = c["bytes"].as_f64().unwrap();
        assert!(near(
            c["rate_bps"].as_f64().unwrap(),
            bytes * 8.0 / 9.0,
            1e-9
        ));
    }
    // The kernel's split (README parity table): 10 / 20 Mbit of 30.
    assert!(near(rate(&v, "1:10"), 10e6, 0.005), "{v}");
    assert!(near(rate(&v, "1:20"), 20e6, 0.005), "{v}");
    assert!(near(rate(&v, "1:1"), 30e6, 0.005), "{v}");
    assert_eq!(v["classes"]["1:10"]["drops"], 0);
    assert_eq!(v["direct"]["packets"], 0);
    assert_eq!(v["direct"]["rate_bps"], 0.0);
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["duration_ns", "window_ns", "classes", "direct"]
    );
}

#[test]
fn simulate_direct_queue_link_and_percent_rates() {
    // No default class: unclassified packets take the direct queue,
    // unshaped; --link caps the whole thing and is the base of `%` rates.
    let script = scratch(
        "direct.tc",
        "tc qdisc add dev x root handle 1: htb\n\
         tc class add dev x parent 1: classid 1:1 htb rate 50% ceil 50%\n",
    );
    let flows = scratch("direct.flows", "1:1 max 1000\n- 40mbit 1000\n");
    let (s, f) = (script.to_str().unwrap(), flows.to_str().unwrap());
    let v = simulate_json(&[s, "--traffic", f, "--link", "100mbit"]);
    assert!(near(rate(&v, "1:1"), 50e6, 0.01), "{v}");
    let direct = v["direct"]["rate_bps"].as_f64().unwrap();
    assert!(near(direct, 40e6, 0.01), "{v}");
    assert!(v["direct"]["packets"].as_u64().unwrap() > 40_000);

    let o = run(&["simulate", s, "--traffic", f]);
    assert_eq!(o.status.code(), Some(2), "a % rate needs --link");
    assert!(stderr(&o).contains(":2:"), "{}", stderr(&o));
}

#[test]
fn simulate_table_looks_like_tc() {
    let script = scratch("split.tc", SPLIT_TC);
    let flows = scratch("split.flows", SPLIT_FLOWS);
    let o = run(&[
        Path::new("simulate"),
        &script,
        Path::new("--traffic"),
        &flows,
    ]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains(
            "class htb 1:10 parent 1:1 prio 0 rate 5Mbit ceil 30Mbit burst 1600b cburst 1593b \n"
        ),
        "{out}"
    );
    assert!(out.contains("\n rate 10Mbit 1200pps backlog "), "{out}");
    assert!(out.contains("\n rate 20Mbit 2399pps backlog "), "{out}");
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("class  "))
        .collect();
    assert!(table[0].split_whitespace().eq([
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
        "borrowed"
    ]));
    let row = |id: &str| -> Vec<&str> {
        table
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row {id}"))
            .split_whitespace()
            .collect()
    };
    assert_eq!(
        &row("1:10")[..6],
        ["1:10", "0", "5Mbit", "30Mbit", "max", "10.0004"]
    );
    assert_eq!(
        &row("1:20")[..6],
        ["1:20", "0", "10Mbit", "30Mbit", "max", "20.0008"]
    );
}

#[test]
fn plot_writes_svg_and_png() {
    let script = scratch("split.tc", SPLIT_TC);
    let flows = scratch("split.flows", SPLIT_FLOWS);
    let dir = flows.parent().unwrap();
    for ext in ["svg", "png"] {
        let out = dir.join(format!("plot.{ext}"));
        let o = run(&[
            Path::new("simulate"),
            &script,
            Path::new("--traffic"),
            &flows,
            Path::new("--duration"),
            Path::new("3s"),
            Path::new("--summary"),
            Path::new("--plot"),
            &out,
        ]);
        ok(&o);
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.len() > 10_000, "{ext}: {} bytes", bytes.len());
        if ext == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(svg.starts_with("<svg"));
            assert!(svg.trim_end().ends_with("</svg>"));
            for label in [
                "time (s)",
                "throughput (Mbit/s)",
                "1:1  (top)",
                "1:10  (leaf, prio 0)",
                "1:20  (leaf, prio 0)",
            ] {
                assert!(svg.contains(label), "{label} missing from the SVG");
            }
            assert!(svg.matches("<polyline").count() >= 2, "one line per class");
        }
    }
    // Only .svg and .png.
    let o = run(&[
        Path::new("simulate"),
        &script,
        Path::new("--traffic"),
        &flows,
        Path::new("--plot"),
        &dir.join("plot.pdf"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    // An unwritable plot fails before the run, with exit code 1.
    let o = run(&[
        Path::new("simulate"),
        &script,
        Path::new("--traffic"),
        &flows,
        Path::new("--plot"),
        &dir.join("no/such/dir/plot.svg"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------

/// `file:line:col: error: message` on stderr, nothing on stdout, exit 2.
fn assert_bad_input(o: &Output, file: &Path, line_col: &str, msg: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let want = format!("{}:{line_col}: error: {msg}", file.display());
    assert!(
        stderr(o).lines().any(|l| l == want),
        "want {want:?}\ngot {:?}",
        stderr(o)
    );
    assert!(stdout(o).is_empty());
}

#[test]
fn bad_script_line_exits_2_with_location() {
    let script = scratch(
        "bad.tc",
        "tc qdisc add dev x root handle 1: htb\n\
         tc class add dev x parent 1: classid 1:1 htb rate 5mbiz\n",
    );
    let flows = scratch("ok.flows", SPLIT_FLOWS);
    let msg = "invalid rate \"5mbiz\": unknown unit in \"5mbiz\"";
    let o = run(&[Path::new("show"), &script]);
    assert_bad_input(&o, &script, "2:51", msg);
    let o = run(&[
        Path::new("simulate"),
        &script,
        Path::new("--traffic"),
        &flows,
        Path::new("--json"),
    ]);
    assert_bad_input(&o, &script, "2:51", msg);
}

#[test]
fn bad_flows_line_exits_2_with_location() {
    let script = scratch("split.tc", SPLIT_TC);
    let flows = scratch("bad.flows", "# comment\n1:10 max 1042\n1:20  4mbiz 1500\n");
    let o = run(&[
        Path::new("simulate"),
        &script,
        Path::new("--traffic"),
        &flows,
    ]);
    assert_bad_input(
        &o,
        &flows,
        "3:7",
        "invalid offered rate \"4mbiz\" (a tc rate or max)",
    );
}

#[test]
fn missing_files_exit_2_with_location() {
    let dir = scratch("x", "").parent().unwrap().to_path_buf();
    let missing = dir.join("missing.tc");
    let o = run(&[Path::new("show"), &missing]);
    assert_bad_input(
        &o,
        &missing,
        "1:1",
        "cannot read file: No such file or directory",
    );
    let script = scratch("split.tc", SPLIT_TC);
    let missing = dir.join("missing.flows");
    let o = run(&[
        Path::new("simulate"),
        &script,
        Path::new("--traffic"),
        &missing,
    ]);
    assert_bad_input(
        &o,
        &missing,
        "1:1",
        "cannot read file: No such file or directory",
    );
}

#[test]
fn bad_arguments_exit_2() {
    let script = scratch("split.tc", SPLIT_TC);
    let flows = scratch("split.flows", SPLIT_FLOWS);
    let s = script.to_str().unwrap();
    let f = flows.to_str().unwrap();
    let plot = flows
        .with_file_name("never.svg")
        .to_string_lossy()
        .into_owned();
    for args in [
        vec!["simulate", s, "--traffic", f, "--duration", "ten"],
        vec!["simulate", s, "--traffic", f, "--link", "5mbiz"],
        vec!["simulate", s, "--traffic", f, "--warmup", "20s"],
        vec!["simulate", s, "--traffic", f, "--step", "0"],
        vec![
            "simulate",
            s,
            "--traffic",
            f,
            "--plot-classes",
            "1:99",
            "--plot",
            &plot,
        ],
        vec!["simulate", s],
        vec!["bench", "shaper", "--leaves", "0"],
        vec!["bench", "shaper", "--leaves", "65534"],
        vec!["frobnicate"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "{args:?}");
        assert!(!stderr(&o).contains("panicked"), "{args:?}");
    }
    assert!(!Path::new(&plot).exists(), "bad input writes no plot");
}

#[test]
fn flows_naming_inner_or_unknown_classes_warn() {
    let script = scratch("split.tc", SPLIT_TC);
    let flows = scratch(
        "odd.flows",
        "1:10 max 1042\n1:1 1mbit 1000\n1:99 1mbit 1000\n",
    );
    let o = run(&[
        Path::new("simulate"),
        &script,
        Path::new("--traffic"),
        &flows,
        Path::new("--json"),
    ]);
    ok(&o);
    let e = stderr(&o);
    let f = flows.display();
    assert!(e.contains(&format!("{f}:2:1: warning: class 1:1 is an inner class: its packets go to the default class 1:20")), "{e}");
    assert!(
        e.contains(&format!(
            "{f}:3:1: warning: class 1:99 is not in the script"
        )),
        "{e}"
    );
}

// ---------------------------------------------------------------------
// help, version, bench
// ---------------------------------------------------------------------

#[test]
fn help_on_every_command_has_an_example() {
    for args in [
        vec!["--help"],
        vec!["show", "--help"],
        vec!["simulate", "--help"],
        vec!["bench", "--help"],
        vec!["bench", "shaper", "--help"],
        vec!["help", "simulate"],
    ] {
        let o = run(&args);
        ok(&o);
        let out = stdout(&o);
        assert!(out.contains("Usage: htb"), "{args:?}: {out}");
        if args != ["bench", "--help"] {
            assert!(out.contains("Example"), "{args:?}: {out}");
        }
    }
    let o = run(&["--version"]);
    ok(&o);
    assert_eq!(stdout(&o), format!("htb {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bench_prints_one_json_line() {
    let o = run(&[
        "bench",
        "shaper",
        "--leaves",
        "16",
        "--packet-size",
        "1500",
        "--packets",
        "20000",
    ]);
    ok(&o);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("{\"leaves\": 16, \"packet_size\": 1500, \"packets\": 20000, "));
    let v: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["leaves", "packet_size", "packets", "ns_per_packet", "mpps"]
    );
    let ns = v["ns_per_packet"].as_f64().unwrap();
    let mpps = v["mpps"].as_f64().unwrap();
    assert!(ns > 0.0 && mpps > 0.0);
    assert!(near(mpps, 1e3 / ns, 0.01), "{v}");
    // Unthrottled means unthrottled: no warning.
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    // In bursts: the same workload, whole bursts, the burst size shown.
    let o = run(&[
        "bench",
        "shaper",
        "--leaves",
        "16",
        "--packets",
        "1000",
        "--burst",
        "32",
    ]);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "leaves",
            "packet_size",
            "burst",
            "packets",
            "ns_per_packet",
            "mpps"
        ]
    );
    assert_eq!(
        (v["burst"].as_u64(), v["packets"].as_u64()),
        (Some(32), Some(1024))
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

// ---------------------------------------------------------------------
// examples/
// ---------------------------------------------------------------------

/// Every example loads without a warning and simulates to the numbers its
/// comments promise.
#[test]
fn examples_simulate_cleanly() {
    for name in ["home-uplink", "three-level", "isp-subscribers"] {
        let tc = example(&format!("{name}.tc"));
        let o = run(&["show", &tc]);
        ok(&o);
        assert!(stderr(&o).is_empty(), "{name}: {}", stderr(&o));
        let o = run(&[
            "simulate",
            &tc,
            "--traffic",
            &example(&format!("{name}.flows")),
            "--json",
        ]);
        ok(&o);
        assert!(stderr(&o).is_empty(), "{name}: {}", stderr(&o));
    }
}

#[test]
fn home_uplink_numbers() {
    let v = simulate_json(&[
        &example("home-uplink.tc"),
        "--traffic",
        &example("home-uplink.flows"),
    ]);
    // The uplink is full, VoIP gets exactly what it offers (one call over
    // the window, the other from 3 s), the backup takes what is left.
    assert!(near(rate(&v, "1:1"), 9.5e6, 0.005), "{v}");
    assert!(
        near(rate(&v, "1:10"), 87_200.0 * (1.0 + 7.0 / 9.0), 0.01),
        "{v}"
    );
    assert!(near(rate(&v, "1:20"), 214e3, 0.01), "{v}");
    assert!(near(rate(&v, "1:30"), 6e6 * 5.0 / 9.0 + 300e3, 0.01), "{v}");
    let rest = 9.5e6 - rate(&v, "1:10") - rate(&v, "1:20") - rate(&v, "1:30");
    assert!(near(rate(&v, "1:40"), rest, 0.01), "{v}");
    for c in ["1:10", "1:20", "1:30", "1:40"] {
        assert_eq!(v["classes"][c]["drops"], 0, "{c}");
    }
}

#[test]
fn three_level_phases() {
    // Phase by phase, as the flows file's comments say.
    let run_window = |warmup: &str, duration: &str| {
        simulate_json(&[
            &example("three-level.tc"),
            "--traffic",
            &example("three-level.flows"),
            "--warmup",
            warmup,
            "--duration",
            duration,
        ])
    };
    let v = run_window("0.5s", "2s");
    assert!(near(rate(&v, "1:10"), 100e6, 0.01), "{v}");
    let v = run_window("2.5s", "4s");
    assert!(near(rate(&v, "1:10"), 75e6, 0.01), "{v}");
    assert!(near(rate(&v, "1:11"), 25e6, 0.02), "{v}");
    let v = run_window("4.5s", "8s");
    assert!(near(rate(&v, "1:10"), 30e6, 0.01), "{v}");
    assert!(near(rate(&v, "1:11"), 10e6, 0.01), "{v}");
    assert!(near(rate(&v, "1:12"), 60e6, 0.01), "{v}");
    assert!(near(rate(&v, "1:2"), 40e6, 0.01), "{v}");
    let v = run_window("8.5s", "10s");
    assert!(near(rate(&v, "1:10"), 40e6, 0.01), "{v}");
    assert!(near(rate(&v, "1:12"), 60e6, 0.01), "{v}");
}

#[test]
fn isp_numbers() {
    let v = simulate_json(&[
        &example("isp-subscribers.tc"),
        "--traffic",
        &example("isp-subscribers.flows"),
    ]);
    assert_eq!(v["classes"].as_object().unwrap().len(), 53);
    assert!(near(rate(&v, "1:1"), 200e6, 0.005), "{v}");
    // Each plan pool is busy and gets at least its rate.
    for (pool, r) in [("1:100", 58e6), ("1:200", 80e6), ("1:300", 60e6)] {
        assert!(rate(&v, pool) >= r * 0.995, "{pool}: {v}");
    }
    // Equal subscribers in a busy pool get equal shares.
    let basic: Vec<f64> = (0x101..=0x106)
        .map(|m| rate(&v, &format!("1:{m:x}")))
        .collect();
    for r in &basic {
        assert!(near(*r, basic[0], 0.01), "{basic:?}");
    }
    // Small paced flows get what they ask for; idle subscribers nothing.
    assert!(near(rate(&v, "1:10d"), 87_200.0, 0.01));
    assert!(near(rate(&v, "1:302"), 10e6, 0.01));
    assert!(near(rate(&v, "1:2"), 500e3, 0.01));
    assert_eq!(rate(&v, "1:118"), 0.0);
}
