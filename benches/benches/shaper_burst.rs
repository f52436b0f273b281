//! Per-packet cost of the HTB data path driven in bursts, as DPDK data
//! planes drive rte_sched: `unthrottled_burst32/{1024,65025}` is the
//! `unthrottled` workload of the `shaper` bench (same tree, same traffic),
//! 32 packets to pseudo-random leaves through `enqueue_burst`, then
//! `dequeue_burst` of 32, the clock +320 ns per burst. `enqueue_burst`
//! looks up the leaves of the whole burst before queueing, so in a large
//! tree the misses on their class lines overlap. Criterion's time is ns per
//! packet.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use htb_benches::{Layout, Unthrottled};

/// Backlog per leaf (as the `shaper` bench).
const BACKLOG: u32 = 4;

/// Burst size of the `unthrottled_burst32` benches (rte_sched's usual one).
const BURST: usize = 32;

fn unthrottled_burst(c: &mut Criterion) {
    let mut g = c.benchmark_group("unthrottled_burst32");
    g.throughput(Throughput::Elements(1));
    for layout in [Layout::MEDIUM, Layout::LARGE] {
        let mut state: Option<Unthrottled> = None;
        g.bench_function(BenchmarkId::from_parameter(layout.leaves()), |b| {
            let w = state.get_or_insert_with(|| Unthrottled::new(layout, BACKLOG));
            b.iter_custom(|iters| {
                // Whole bursts only; the time is scaled back to `iters`
                // packets.
                let bursts = iters.div_ceil(BURST as u64).max(1);
                let start = Instant::now();
                black_box(w.run_burst(bursts * BURST as u64, BURST));
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (bursts * BURST as u64) as f64)
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

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = unthrottled_burst
}
criterion_main!(benches);
