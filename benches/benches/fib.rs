//! FIB (`htb::fib`) lookup, insert and remove on synthetic Internet-like
//! tables (`htb::fib::synth`: ~60 % /24, nested prefixes, mean length ~23
//! for IPv4; /48-heavy, mean ~43 for IPv6).
//!
//! * `fib4_lookup_batch/{1k,100k,1M}`, `fib4_lookup_single/…`: random
//!   addresses (uniform over the IPv4 space) looked up in batches of 4096
//!   (`lookup_batch`) or one at a time (`lookup`, resolving the route).
//! * `fib6_lookup_batch/200k`, `fib6_lookup_single/200k`: random addresses
//!   inside 2000::/3.
//! * `fib4_insert_remove/{1k,100k,1M}`, `fib6_insert_remove/200k`: one step
//!   removes a prefix of the table and inserts it back (two incremental
//!   updates of the trie and the compiled table).
//!
//! * `fib4_shared_lookup_batch/…`: the same batches through a lock-free
//!   [`htb::fib::FibReader`] while another thread keeps removing and
//!   re-inserting prefixes through the [`htb::fib::FibWriter`] (one read guard
//!   per batch).
//!
//! Throughput = 1 element per lookup or per update, so criterion reports ns
//! per lookup/update. Tables are built once, outside the timed region.
//!
//! Side by side with DPDK `rte_lpm` on the same 1M-prefix table and
//! addresses: `cargo run --release -p htb-benches --example fib_dump -- DIR`
//! writes them as files, then `htb bench fib --routes DIR/routes4.txt
//! --addrs DIR/addrs4.txt` and `benches/peers/run_lpm.sh` (same arguments;
//! `--rounds N --between CMD` alternates the two). `examples/fib_drive.rs`
//! runs one workload for profilers.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use htb::fib::synth::{self, Rng};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use htb::fib::{Fib, FibKey, Prefix, RouteKind, shared};

const BATCH: usize = 4096;

fn build<K: FibKey>(t: &[Prefix<K>]) -> Fib<K, u32> {
    let mut f = Fib::new();
    for (i, p) in t.iter().enumerate() {
        f.insert(*p, 0, RouteKind::Unicast(i as u32))
            .expect("distinct prefixes");
    }
    f
}

fn lookups<K: FibKey>(c: &mut Criterion, name: &str, label: &str, fib: &Fib<K, u32>, addrs: &[K]) {
    let mut g = c.benchmark_group(format!("{name}_lookup_batch"));
    g.throughput(Throughput::Elements(1));
    let mut out = vec![None; BATCH];
    g.bench_function(BenchmarkId::from_parameter(label), |b| {
        b.iter_custom(|iters| {
            let mut done = 0u64;
            let start = Instant::now();
            while done < iters {
                let off = (done as usize * 7919) % (addrs.len() - BATCH);
                let n = BATCH.min((iters - done) as usize);
                fib.lookup_batch(&addrs[off..off + n], &mut out[..n])
                    .unwrap();
                black_box(&out);
                done += n as u64;
            }
            start.elapsed()
        });
    });
    g.finish();
    let mut g = c.benchmark_group(format!("{name}_lookup_single"));
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter(label), |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = if i + 1 == addrs.len() { 0 } else { i + 1 };
            black_box(fib.lookup(black_box(addrs[i])).map(|m| m.route.metric))
        });
    });
    g.finish();
}

fn updates<K: FibKey>(
    c: &mut Criterion,
    name: &str,
    label: &str,
    fib: &mut Fib<K, u32>,
    t: &[Prefix<K>],
) {
    let mut g = c.benchmark_group(format!("{name}_insert_remove"));
    g.throughput(Throughput::Elements(2));
    g.bench_function(BenchmarkId::from_parameter(label), |b| {
        let mut r = Rng::new(9);
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let p = t[r.below(t.len() as u64) as usize];
                let start = Instant::now();
                let k = fib.remove(&p, 0).expect("present");
                fib.insert(p, 0, k).expect("absent");
                spent += start.elapsed();
            }
            spent
        });
    });
    g.finish();
}

/// Batch lookups through a reader while a writer thread updates the table.
fn shared_lookups<K: FibKey>(
    c: &mut Criterion,
    name: &str,
    label: &str,
    fib: Fib<K, u32>,
    t: &[Prefix<K>],
    addrs: &[K],
) {
    let (mut w, r) = shared(fib);
    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let t: Vec<Prefix<K>> = t.to_vec();
    let writer = {
        let (stop, updates) = (stop.clone(), updates.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(11);
            while !stop.load(Ordering::Relaxed) {
                let p = t[rng.below(t.len() as u64) as usize];
                let k = w.remove(&p, 0).expect("present");
                w.insert(p, 0, k).expect("absent");
                updates.fetch_add(2, Ordering::Relaxed);
            }
        })
    };
    let mut g = c.benchmark_group(format!("{name}_shared_lookup_batch"));
    g.throughput(Throughput::Elements(1));
    let mut out = vec![None; BATCH];
    let started = Instant::now();
    g.bench_function(BenchmarkId::from_parameter(label), |b| {
        b.iter_custom(|iters| {
            let mut done = 0u64;
            let start = Instant::now();
            while done < iters {
                let off = (done as usize * 7919) % (addrs.len() - BATCH);
                let n = BATCH.min((iters - done) as usize);
                let fib = r.read().expect("writer alive");
                fib.lookup_batch(&addrs[off..off + n], &mut out[..n])
                    .unwrap();
                drop(fib);
                black_box(&out);
                done += n as u64;
            }
            start.elapsed()
        });
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}_shared/{label}: the writer published {:.0} updates/s meanwhile",
        updates.load(Ordering::Relaxed) as f64 / secs
    );
}

fn fib4(c: &mut Criterion) {
    // criterion's --test mode (CI) runs each bench once: keep that cheap.
    let test_mode = std::env::args().any(|a| a == "--test");
    let sizes: &[(usize, &str)] = if test_mode {
        &[(1_000, "1k")]
    } else {
        &[(1_000, "1k"), (100_000, "100k"), (1_000_000, "1M")]
    };
    let mut r = Rng::new(5);
    let addrs: Vec<Ipv4Addr> = (0..1 << 20)
        .map(|_| Ipv4Addr::from(r.next_u64() as u32))
        .collect();
    for &(n, label) in sizes {
        let t = synth::ipv4_prefixes(n, 4);
        let mut fib = build(&t);
        lookups(c, "fib4", label, &fib, &addrs);
        updates(c, "fib4", label, &mut fib, &t);
        if n == 1_000_000 || test_mode {
            shared_lookups(c, "fib4", label, fib, &t, &addrs);
        }
    }
}

fn fib6(c: &mut Criterion) {
    let test_mode = std::env::args().any(|a| a == "--test");
    let (n, label) = if test_mode {
        (1_000, "1k")
    } else {
        (200_000, "200k")
    };
    let t = synth::ipv6_prefixes(n, 6);
    let mut r = Rng::new(7);
    let addrs: Vec<Ipv6Addr> = (0..1 << 18)
        .map(|_| {
            let hi = (r.next_u64() & 0x1fff_ffff_ffff_ffff) | 0x2000_0000_0000_0000;
            Ipv6Addr::from(u128::from(hi) << 64 | u128::from(r.next_u64()))
        })
        .collect();
    let mut fib = build(&t);
    lookups(c, "fib6", label, &fib, &addrs);
    updates(c, "fib6", label, &mut fib, &t);
}

criterion_group!(benches, fib4, fib6);
criterion_main!(benches);
