//! Runs one benchmark workload for a fixed number of packets, outside
//! criterion, for profilers (`perf record`, `valgrind --tool=callgrind`).
//!
//! ```text
//! cargo build --release -p htb-benches --example drive
//! target/release/examples/drive unthrottled 1024 2000000
//! target/release/examples/drive throttled 1024 2000000
//! ```
//!
//! Arguments: workload (`unthrottled` | `burst32` | `throttled`), leaves
//! (16, 1024 or 65025), packets, and optionally packets to run untimed
//! first (so that the timed part sees the queues at their grown size, as a
//! long criterion run does). Prints the wall time per packet (setup excluded), and the
//! thread's own CPU time per packet and the time it sat runnable but
//! descheduled (from `/proc/thread-self/schedstat`), which tell how much a
//! busy machine inflated the wall time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use htb_benches::{Layout, Throttled, Unthrottled};

/// (ns on the CPU, ns runnable but waiting) for this thread, if the kernel
/// has schedstats.
fn schedstat() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// Times `f`: wall time, and CPU / wait time deltas when available.
fn timed(f: impl FnOnce()) -> (Duration, Option<(u64, u64)>) {
    let s0 = schedstat();
    let t = Instant::now();
    f();
    let wall = t.elapsed();
    let sched = match (s0, schedstat()) {
        (Some((r0, w0)), Some((r1, w1))) => Some((r1 - r0, w1 - w0)),
        _ => None,
    };
    (wall, sched)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: drive unthrottled|burst32|throttled 16|1024|65025 PACKETS [WARMUP]";
    let kind = args.get(1).expect(usage).as_str();
    let layout = match args.get(2).map(String::as_str) {
        Some("16") => Layout::SMALL,
        Some("1024") => Layout::MEDIUM,
        Some("65025") => Layout::LARGE,
        _ => panic!("{usage}"),
    };
    let n: u64 = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
    let warmup: u64 = args.get(4).map_or(0, |s| s.parse().expect(usage));
    let (elapsed, sched, extra) = match kind {
        "unthrottled" => {
            let mut w = Unthrottled::new(layout, 4);
            black_box(w.run(warmup));
            let (wall, sched) = timed(|| {
                black_box(w.run(n));
            });
            let extra = format!("empty={} drops={}", w.empty_dequeues, w.drops);
            (wall, sched, extra)
        }
        "burst32" => {
            let mut w = Unthrottled::new(layout, 4);
            black_box(w.run_burst(warmup, 32));
            let (wall, sched) = timed(|| {
                black_box(w.run_burst(n, 32));
            });
            let extra = format!("empty={} drops={}", w.empty_dequeues, w.drops);
            (wall, sched, extra)
        }
        "throttled" => {
            let mut w = Throttled::new(layout, 4, 100_000);
            black_box(w.run(warmup));
            let (wall, sched) = timed(|| {
                black_box(w.run(n));
            });
            (wall, sched, format!("empty={}", w.empty_dequeues))
        }
        _ => panic!("{usage}"),
    };
    let per = |ns: f64| ns / n as f64;
    let cpu = match sched {
        Some((run, wait)) => format!(
            ", on-CPU {:.1} ns/packet, descheduled {:.1} ms",
            per(run as f64),
            wait as f64 / 1e6
        ),
        None => String::new(),
    };
    println!(
        "{kind}/{}: {n} packets, {:.1} ns/packet{cpu} ({extra})",
        layout.leaves(),
        per(elapsed.as_nanos() as f64)
    );
}
