//! IP reassembly (`htb::reasm`) and fragmentation (`htb::frag`) per fragment,
//! the workloads of the DPDK `rte_ip_frag` peer (`peers/run_frag.sh`) and of
//! `htb bench reasm|frag`.
//!
//! * `reasm/in_order_4000/{linux,bsd}`: IPv4/UDP datagrams of 4000 bytes cut
//!   for MTU 1500 (3 fragments: 1480, 1480, 1020 data bytes), pushed in
//!   order, one datagram after the other; completed buffers go back through
//!   `Reassembler::recycle`.
//! * `reasm/interleaved_256/{linux,bsd}`: 256 such datagrams in flight, each
//!   from its own source address, their fragments sent round-robin (the 256
//!   first fragments, then the 256 second ones, then the last ones).
//! * `reasm_owned/{in_order_4000,interleaved_256}/linux`: the same, pushed
//!   with `Reassembler::push_owned`: each fragment's buffer is handed over
//!   and kept, not copied; a completed chain gives the buffers back to
//!   their slots (as a driver recycles its receive buffers).
//! * `frag/4000_mtu1500`, `frag/8000_mtu1500`: one datagram cut into 3 / 6
//!   fragments with `Fragmenter::new` + `next_into` a reused buffer (header
//!   written, data copied).
//!
//! Throughput = 1 element per fragment, so criterion reports ns per
//! fragment. Fragments are built once (1024 datagrams' worth, so consecutive
//! rounds read different buffers), outside the timed region; the pushes
//! cycle through them, and the table's state carries over between samples.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use htb::frag::{FragOptions, Fragmenter, fragment};
use htb::reasm::{Policy, Pushed, PushedOwned, ReasmConfig, Reassembler};

/// Datagrams pre-built per workload (as `htb bench reasm` and the peer).
const POOL_DATAGRAMS: usize = 1024;

/// An IPv4/UDP datagram of `size` bytes (DF clear, TTL 64) from 10.x.y.z
/// (`src` spread over x.y.z) to 192.0.2.1 (the same bytes as `htb bench`
/// and the DPDK peer build).
fn udp_datagram(size: usize, src: u32, id: u16) -> Vec<u8> {
    let mut p = vec![0u8; size];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12] = 10;
    p[13..16].copy_from_slice(&src.to_be_bytes()[1..]);
    p[16..20].copy_from_slice(&[192, 0, 2, 1]);
    let ck = htb::wire::checksum(&p[..20]);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&9u16.to_be_bytes());
    p[24..26].copy_from_slice(&((size - 20) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(src) as u8;
    }
    p
}

/// Push order for `interleave` datagrams in flight: rounds of `interleave`
/// datagrams, fragment k of each in turn.
fn workload(size: usize, mtu: usize, interleave: usize) -> Vec<Vec<u8>> {
    let rounds = POOL_DATAGRAMS.div_ceil(interleave);
    let mut out = Vec::new();
    for round in 0..rounds {
        let frags: Vec<Vec<Vec<u8>>> = (0..interleave)
            .map(|i| {
                let n = round * interleave + i;
                fragment(&udp_datagram(size, i as u32, n as u16), mtu).expect("fragmentable")
            })
            .collect();
        for k in 0..frags[0].len() {
            for f in &frags {
                out.push(f[k].clone());
            }
        }
    }
    out
}

fn reassembly(c: &mut Criterion) {
    let mut g = c.benchmark_group("reasm");
    g.throughput(Throughput::Elements(1));
    for (label, interleave) in [("in_order_4000", 1), ("interleaved_256", 256)] {
        let frags = workload(4000, 1500, interleave);
        for policy in [Policy::Linux, Policy::Bsd] {
            let mut r = Reassembler::new(ReasmConfig {
                policy,
                ..ReasmConfig::default()
            });
            // Checked outside the timed region: one pass completes every
            // datagram (the workload is what it claims to be).
            let mut done = 0;
            for f in &frags {
                if let Ok(Pushed::Complete(d)) = r.push(f, 0, 0) {
                    done += 1;
                    r.recycle(d);
                }
            }
            assert_eq!(done, frags.len() / 3, "{label}/{policy}");
            let mut next = 0usize;
            let mut now = 0u64;
            g.bench_function(BenchmarkId::new(label, policy.name()), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if let Ok(Pushed::Complete(d)) = r.push(black_box(&frags[next]), 0, now) {
                            r.recycle(black_box(d));
                        }
                        next += 1;
                        if next == frags.len() {
                            next = 0;
                            now += 1_000;
                        }
                    }
                    start.elapsed()
                });
            });
        }
    }
    g.finish();
}

/// The workloads of `reassembly`, by `push_owned`: the pool's buffers move
/// in and come back with each completed chain (header buffer to the table,
/// fragments to their slots).
fn reassembly_owned(c: &mut Criterion) {
    let mut g = c.benchmark_group("reasm_owned");
    g.throughput(Throughput::Elements(1));
    for (label, interleave) in [("in_order_4000", 1usize), ("interleaved_256", 256)] {
        let mut frags = workload(4000, 1500, interleave);
        let per = 3;
        let round = interleave * per;
        let mut r = Reassembler::new(ReasmConfig::default());
        let mut next = 0usize;
        let mut now = 0u64;
        let mut done = 0usize;
        let mut push = |r: &mut Reassembler, frags: &mut [Vec<u8>], next: &mut usize, now: u64| {
            let f = std::mem::take(&mut frags[*next]);
            if let Ok(PushedOwned::Complete(d)) = r.push_owned(black_box(f), 0, now) {
                done += 1;
                // Slot of fragment k of this datagram: same round, same
                // position among the `interleave` datagrams.
                let start = *next / round * round;
                let i = (*next - start) % interleave;
                let mut k = 0;
                d.for_each_buffer(|b| {
                    if k == 0 {
                        r.recycle(b);
                    } else {
                        frags[start + (k - 1) * interleave + i] = b;
                    }
                    k += 1;
                });
            }
            *next += 1;
            if *next == frags.len() {
                *next = 0;
            }
        };
        // Checked outside the timed region: one pass completes every
        // datagram and gives every buffer back.
        for _ in 0..frags.len() {
            push(&mut r, &mut frags, &mut next, now);
        }
        assert!(frags.iter().all(|f| !f.is_empty()), "{label}: buffers back");
        g.bench_function(BenchmarkId::new(label, "linux"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    push(&mut r, &mut frags, &mut next, now);
                    if next == 0 {
                        now += 1_000;
                    }
                }
                start.elapsed()
            });
        });
        assert!(done >= frags.len() / per, "{label}: datagrams completed");
    }
    g.finish();
}

fn fragmentation(c: &mut Criterion) {
    let mut g = c.benchmark_group("frag");
    g.throughput(Throughput::Elements(1));
    for size in [4000usize, 8000] {
        let d = udp_datagram(size, 1, 1);
        let opts = FragOptions::new(1500);
        let per = Fragmenter::new(&d, opts).expect("fragmentable").remaining() as u64;
        let mut buf = vec![0u8; 2048];
        g.bench_function(
            BenchmarkId::from_parameter(format!("{size}_mtu1500")),
            |b| {
                b.iter_custom(|iters| {
                    // Whole datagrams: iters fragments rounded up.
                    let datagrams = iters.div_ceil(per);
                    let start = Instant::now();
                    for _ in 0..datagrams {
                        let mut f = Fragmenter::new(black_box(&d), opts).expect("fragmentable");
                        while let Ok(Some(n)) = f.next_into(&mut buf) {
                            black_box(&buf[..n]);
                        }
                    }
                    // Scaled back to `iters` fragments' worth of time.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (datagrams * per) as f64)
                });
            },
        );
    }
    g.finish();
}

criterion_group!(benches, reassembly, reassembly_owned, fragmentation);
criterion_main!(benches);
