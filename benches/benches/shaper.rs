//! Per-packet cost of the HTB data path (enqueue + dequeue), on a virtual
//! clock.
//!
//! * `unthrottled/{16,1024,65025}`: a 3-level tree (1 top-level class, a
//!   layer of inner classes, leaves under them: 4×4, 32×32 and 255×255
//!   leaves; 65 025 leaves = 65 281 classes is the largest square tree whose
//!   16-bit minors fit, 65 536 leaves cannot), 100 Gbit/s rate = ceil and
//!   1 MB bursts everywhere, 4 packets of backlog per leaf. One step = one
//!   64-byte packet enqueued to a pseudo-random leaf + one packet dequeued,
//!   clock +10 ns. Nothing is ever throttled (checked by the crate's tests),
//!   so this is the pure scheduling cost, comparable to DPDK rte_sched with
//!   every shaper at port rate (`benches/peers/`).
//! * `throttled/1024`: 32×32 leaves under a 1 Gbit/s top-level class with
//!   leaf and inner rates at 0.8 / 0.95 of their fair share (every 8th leaf
//!   also capped at half its share), every leaf kept backlogged: leaves flip
//!   green/yellow, capped leaves go red, inner classes borrow from the top,
//!   the top goes red every few packets. One step = dequeue until a packet
//!   comes out (when `dequeue` returns `None`, the clock jumps to
//!   `next_wakeup()`), then queue its replacement in the same leaf.
//!
//! The burst calls are timed by the `shaper_burst` bench (a binary of its
//! own: a second caller of `dequeue` in this one would change how the
//! compiler inlines it into the single-call loop).
//!
//! Criterion reports time per step, i.e. ns per packet (Throughput = 1
//! element per iteration; each sample times many packets in one go with
//! `iter_custom`). Trees are built and pre-filled outside the timed region,
//! once per benchmark, and the state carries over from sample to sample.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use htb_benches::{Layout, Throttled, Unthrottled};

/// Backlog per leaf in the unthrottled case.
const BACKLOG: u32 = 4;

fn unthrottled(c: &mut Criterion) {
    let mut g = c.benchmark_group("unthrottled");
    g.throughput(Throughput::Elements(1));
    for layout in [Layout::SMALL, Layout::MEDIUM, Layout::LARGE] {
        let mut state: Option<Unthrottled> = None;
        g.bench_function(BenchmarkId::from_parameter(layout.leaves()), |b| {
            // Built on first use only, so a filtered-out bench costs nothing.
            let w = state.get_or_insert_with(|| Unthrottled::new(layout, BACKLOG));
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(w.step());
                }
                start.elapsed()
            });
        });
        if let Some(w) = &state {
            assert_eq!(
                (w.empty_dequeues, w.drops),
                (0, 0),
                "unthrottled must not throttle"
            );
        }
    }
    g.finish();
}

fn throttled(c: &mut Criterion) {
    let mut g = c.benchmark_group("throttled");
    g.throughput(Throughput::Elements(1));
    let layout = Layout::MEDIUM;
    let mut state: Option<Throttled> = None;
    g.bench_function(BenchmarkId::from_parameter(layout.leaves()), |b| {
        let w = state.get_or_insert_with(|| Throttled::new(layout, 4, 100_000));
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(w.step());
            }
            start.elapsed()
        });
    });
    // That this workload really throttles is checked by the crate's unit
    // tests; here just say how often the clock had to jump.
    if let Some(w) = state.as_ref().filter(|w| w.sent > 0) {
        eprintln!(
            "throttled/{}: {} packets, {:.2} empty dequeues (clock jumps) per packet",
            layout.leaves(),
            w.sent,
            w.empty_dequeues as f64 / w.sent.max(1) as f64,
        );
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = unthrottled, throttled
}
criterion_main!(benches);
