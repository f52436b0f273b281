//! `htb bench shaper`: the criterion bench's unthrottled workload
//! (`htb-benches`), with any number of leaves and any packet size, timed once.
//! `htb bench reasm` / `htb bench frag`: the criterion bench `reasm`'s
//! workloads, with any sizes.

use std::hint::black_box;
use std::time::Instant;

use htb::{Htb, QdiscConfig};
use htb_benches::{HANDLE, Layout, NS_PER_STEP, PKT_LEN, Rng, build_tree, unthrottled_config};
use serde_json::Value;

use htb::frag::{FragOptions, Fragmenter, fragment};
use htb::reasm::{Pushed, PushedOwned, ReasmConfig, Reassembler};

use crate::input::CliError;
use crate::{BenchFragArgs, BenchReasmArgs, BenchShaperArgs};

/// Packets queued in every leaf before timing (as the criterion bench).
const BACKLOG: u32 = 4;
/// Untimed steps before timing, at most.
const WARMUP: u64 = 1_000_000;

/// Inner classes × leaves per inner class for `leaves` leaves: the divisor
/// of `leaves` closest to its square root (16 → 4 × 4, 1024 → 32 × 32,
/// 65025 → 255 × 255, as the criterion bench; a prime → 1 × p).
pub fn layout_for(leaves: u32) -> Result<Layout, CliError> {
    let mut inner = (leaves as f64).sqrt() as u32;
    while inner > 1 && leaves % inner != 0 {
        inner -= 1;
    }
    let inner = inner.max(1);
    let per_inner = leaves / inner;
    let layout = match (u16::try_from(inner), u16::try_from(per_inner)) {
        (Ok(inner), Ok(per_inner)) => Layout { inner, per_inner },
        _ => return Err(too_many(leaves)),
    };
    // Minors 1..=0xffff: the top class, the inner classes, the leaves.
    if layout.classes() > 0xffff {
        return Err(too_many(leaves));
    }
    Ok(layout)
}

fn too_many(leaves: u32) -> CliError {
    CliError::Input(format!(
        "htb: error: --leaves {leaves}: the tree would need more than 65535 class minors \
         (top + inner classes + leaves); try a number with a divisor near its square root, \
         e.g. 65025 = 255 x 255"
    ))
}

pub fn shaper(a: &BenchShaperArgs) -> Result<String, CliError> {
    let layout = layout_for(a.leaves)?;
    let mut htb: Htb<u32> = Htb::new(QdiscConfig::new(HANDLE));
    let leaves = build_tree(&mut htb, layout, &unthrottled_config());
    for _ in 0..BACKLOG {
        for &leaf in &leaves {
            if htb.enqueue(a.packet_size, leaf).is_err() {
                return Err(CliError::Output(
                    "htb: error: the bench tree refused its prefill".into(),
                ));
            }
        }
    }
    // Keep the offered load at the criterion bench's 64 B per 10 ns
    // (51.2 Gbit/s, half the classes' 100 Gbit/s) whatever the size.
    let ns_per_step = (a.packet_size as u64 * NS_PER_STEP).div_ceil(PKT_LEN as u64);
    let ns_per_step = ns_per_step.max(NS_PER_STEP);
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut now = 0u64;
    let mut empty = 0u64;
    let mut drops = 0u64;
    let n_leaves = leaves.len() as u32;
    let mut step = |htb: &mut Htb<u32>, now: &mut u64| {
        let leaf = leaves[rng.below(n_leaves) as usize];
        if htb.enqueue(black_box(a.packet_size), leaf).is_err() {
            drops += 1;
        }
        *now += ns_per_step;
        match htb.dequeue(*now) {
            Some(p) => {
                black_box(p);
            }
            None => empty += 1,
        }
    };
    // Burst mode: the same traffic, `burst` packets per call.
    let burst = a.burst as usize;
    let mut batch = Vec::with_capacity(burst);
    let mut out = Vec::with_capacity(burst);
    let mut rng2 = Rng::new(0x9e37_79b9_7f4a_7c15);
    let (mut bempty, mut bdrops) = (0u64, 0u64);
    let mut step_burst = |htb: &mut Htb<u32>, now: &mut u64| {
        for _ in 0..burst {
            let leaf = leaves[rng2.below(n_leaves) as usize];
            batch.push((black_box(a.packet_size), leaf));
        }
        bdrops += htb.enqueue_burst(&mut batch).len() as u64;
        *now += ns_per_step * burst as u64;
        let got = htb.dequeue_burst(*now, burst, &mut out);
        bempty += (burst - got) as u64;
        black_box(&out);
        out.clear();
    };
    let (elapsed, packets) = if burst == 1 {
        for _ in 0..a.packets.min(WARMUP) {
            step(&mut htb, &mut now);
        }
        let start = Instant::now();
        for _ in 0..a.packets {
            step(&mut htb, &mut now);
        }
        (start.elapsed(), a.packets)
    } else {
        let bursts = a.packets.div_ceil(burst as u64);
        for _ in 0..bursts.min(WARMUP / burst as u64) {
            step_burst(&mut htb, &mut now);
        }
        let start = Instant::now();
        for _ in 0..bursts {
            step_burst(&mut htb, &mut now);
        }
        (start.elapsed(), bursts * burst as u64)
    };
    let (empty, drops) = (empty + bempty, drops + bdrops);
    if empty > 0 || drops > 0 || htb.stats().overlimits > 0 {
        eprintln!(
            "htb: warning: the workload was throttled ({empty} empty dequeues, {drops} drops, \
             {} overlimits): not the unthrottled case",
            htb.stats().overlimits
        );
    }
    let ns = elapsed.as_nanos() as f64 / packets as f64;
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    // The layout (`{"leaves": N, ...}`), numbers formatted by serde_json.
    Ok(format!(
        "{{\"leaves\": {}, \"packet_size\": {}, {}\"packets\": {}, \"ns_per_packet\": {}, \"mpps\": {}}}\n",
        a.leaves,
        a.packet_size,
        // The keys; `burst` only when bursts were asked for.
        if burst > 1 {
            format!("\"burst\": {burst}, ")
        } else {
            String::new()
        },
        packets,
        Value::from(round(ns, 2)),
        Value::from(round(if ns > 0.0 { 1e3 / ns } else { 0.0 }, 3)),
    ))
}

/// An IPv4/UDP datagram of `size` bytes (DF clear, TTL 64) from
/// 10.x.y.z (`src` spread over x.y.z) to 192.0.2.1, identification `id`,
/// payload a byte pattern: the workload of the criterion bench `reasm` and
/// the DPDK peer.
pub fn udp_datagram(size: usize, src: u32, id: u16) -> Vec<u8> {
    let size = size.max(28);
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
    // UDP: ports, length; checksum 0 (none) so the payload stays a pattern.
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&9u16.to_be_bytes());
    p[24..26].copy_from_slice(&((size - 20) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(src) as u8;
    }
    p
}

/// Rounds of N interleaved datagrams pre-built, at least this many datagrams
/// in all (so consecutive rounds use different buffers, as a NIC's would).
const POOL_DATAGRAMS: usize = 1024;

/// The fragments to push, in push order: `rounds` rounds, each `interleave`
/// datagrams (each from its own source) sent round-robin fragment by
/// fragment. Also returns fragments per datagram.
pub fn reasm_workload(
    size: usize,
    mtu: usize,
    interleave: usize,
) -> Result<(Vec<Vec<u8>>, usize), CliError> {
    let rounds = POOL_DATAGRAMS.div_ceil(interleave).max(1);
    let mut out = Vec::new();
    let mut per = 0;
    for round in 0..rounds {
        let mut frags = Vec::with_capacity(interleave);
        for i in 0..interleave {
            let n = round * interleave + i;
            let d = udp_datagram(size, i as u32, n as u16);
            let f = fragment(&d, mtu).map_err(|e| {
                CliError::Input(format!(
                    "htb: error: cannot fragment the bench datagram: {e}"
                ))
            })?;
            per = f.len();
            frags.push(f);
        }
        for k in 0..per {
            for f in &frags {
                out.push(f[k].clone());
            }
        }
    }
    Ok((out, per))
}

fn round(x: f64, d: i32) -> f64 {
    (x * 10f64.powi(d)).round() / 10f64.powi(d)
}

/// The thread's time on a CPU so far (ns), from the scheduler
/// (`/proc/thread-self/schedstat`); `None` where that is not available. On
/// a shared machine the wall clock also counts other tenants' time slices.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `"ns_per_fragment": X, "mfragments_per_s": Y` and, where the scheduler
/// tells, `, "cpu_ns_per_fragment": Z`.
fn rate_fields(fragments: u64, elapsed: std::time::Duration, cpu: Option<u64>) -> String {
    let per = |t: f64| t / fragments.max(1) as f64;
    let ns = per(elapsed.as_nanos() as f64);
    let mut s = format!(
        "\"ns_per_fragment\": {}, \"mfragments_per_s\": {}",
        Value::from(round(ns, 2)),
        Value::from(round(if ns > 0.0 { 1e3 / ns } else { 0.0 }, 3))
    );
    if let Some(c) = cpu {
        s += &format!(
            ", \"cpu_ns_per_fragment\": {}",
            Value::from(round(per(c as f64), 2))
        );
    }
    s
}

pub fn reasm(a: &BenchReasmArgs) -> Result<String, CliError> {
    let n = a.interleave as usize;
    let (pool, per) = reasm_workload(a.datagram_size as usize, a.mtu as usize, n)?;
    if per < 2 {
        return Err(CliError::Input(format!(
            "htb: error: a {}-byte datagram fits MTU {}: nothing to reassemble",
            a.datagram_size, a.mtu
        )));
    }
    let round_len = n * per;
    let rounds_total = a.count.div_ceil(n as u64);
    let mut r = Reassembler::new(ReasmConfig {
        policy: a.policy,
        ..ReasmConfig::default()
    });
    let mut now = 0u64;
    let mut tally = [0u64; 2]; // completed, neither queued nor completed
    // Pushes one round (N datagrams' fragments); the clock moves 1 us a
    // round, far from the 30 s timeout.
    let mut pool = pool;
    let pool_rounds = pool.len() / round_len;
    let mut push_round = |r: &mut Reassembler, idx: usize, now: &mut u64, tally: &mut [u64; 2]| {
        let start = (idx % pool_rounds) * round_len;
        if a.owned {
            push_owned_round(r, &mut pool[start..start + round_len], n, *now, tally);
        } else {
            for f in &pool[start..start + round_len] {
                match r.push(black_box(f), 0, *now) {
                    Ok(Pushed::Complete(d)) => {
                        tally[0] += 1;
                        r.recycle(black_box(d));
                    }
                    Ok(Pushed::Queued) => {}
                    _ => tally[1] += 1,
                }
            }
        }
        *now += 1_000;
    };
    for i in 0..pool_rounds {
        push_round(&mut r, i, &mut now, &mut tally);
    }
    let [warm_done, _] = tally;
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    for i in 0..rounds_total {
        push_round(&mut r, i as usize, &mut now, &mut tally);
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu_ns().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    let [done, other] = tally;
    let datagrams = rounds_total * n as u64;
    let fragments = datagrams * per as u64;
    if done - warm_done != datagrams || other > 0 {
        eprintln!(
            "htb: warning: {} of {datagrams} datagrams completed and {other} pushes neither \
             queued nor completed: not the workload intended",
            done - warm_done
        );
    }
    Ok(format!(
        "{{\"datagram_size\": {}, \"mtu\": {}, \"interleave\": {}, \"policy\": \"{}\", \
         \"owned\": {}, \"datagrams\": {datagrams}, \"fragments\": {fragments}, {}}}\n",
        a.datagram_size,
        a.mtu,
        a.interleave,
        a.policy,
        a.owned,
        rate_fields(fragments, elapsed, cpu)
    ))
}

/// One round of `htb bench reasm --owned`: each fragment's buffer goes in
/// by `push_owned`; a completed chain gives the datagram's buffers back (the
/// header buffer to the table's pool, the fragments, in offset order, to
/// their slots), as a driver recycles its receive buffers.
fn push_owned_round(
    r: &mut Reassembler,
    round: &mut [Vec<u8>],
    n: usize,
    now: u64,
    tally: &mut [u64; 2],
) {
    for s in 0..round.len() {
        let f = std::mem::take(&mut round[s]);
        match r.push_owned(black_box(f), 0, now) {
            Ok(PushedOwned::Complete(c)) => {
                tally[0] += 1;
                let i = s % n;
                let mut k = 0;
                c.for_each_buffer(|b| {
                    if k == 0 {
                        r.recycle(b);
                    } else {
                        round[(k - 1) * n + i] = b;
                    }
                    k += 1;
                });
            }
            Ok(PushedOwned::Queued) => {}
            _ => tally[1] += 1,
        }
    }
}

pub fn frag(a: &BenchFragArgs) -> Result<String, CliError> {
    let d = udp_datagram(a.datagram_size as usize, 1, 1);
    let opts = FragOptions::new(a.mtu as usize);
    let bad = |e: htb::frag::FragError| {
        CliError::Input(format!(
            "htb: error: cannot fragment the bench datagram: {e}"
        ))
    };
    let mut buf = vec![0u8; 65_536];
    let mut run = |count: u64| -> Result<u64, CliError> {
        let mut frags = 0u64;
        for _ in 0..count {
            let mut f = Fragmenter::new(black_box(&d), opts).map_err(bad)?;
            while let Some(n) = f.next_into(&mut buf).map_err(bad)? {
                black_box(&buf[..n]);
                frags += 1;
            }
        }
        Ok(frags)
    };
    run(a.count.min(100_000))?;
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let fragments = run(a.count)?;
    let elapsed = start.elapsed();
    let cpu = thread_cpu_ns().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    Ok(format!(
        "{{\"datagram_size\": {}, \"mtu\": {}, \"datagrams\": {}, \"fragments\": {fragments}, {}}}\n",
        a.datagram_size,
        a.mtu,
        a.count,
        rate_fields(fragments, elapsed, cpu)
    ))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn bench_datagrams_are_valid_ipv4() {
        let d = udp_datagram(4000, 0x01_02_03, 7);
        assert_eq!(d.len(), 4000);
        assert_eq!(htb::wire::checksum(&d[..20]), 0);
        assert_eq!(&d[12..16], &[10, 1, 2, 3]);
        assert_eq!(u16::from_be_bytes([d[2], d[3]]), 4000);
        assert_eq!(d[6] & 0x40, 0, "DF must be clear");
    }

    #[test]
    fn layouts_match_the_criterion_bench() {
        let l = |n| {
            let l = layout_for(n).unwrap();
            (l.inner, l.per_inner)
        };
        assert_eq!(l(16), (4, 4));
        assert_eq!(l(1024), (32, 32));
        assert_eq!(l(65025), (255, 255));
        assert_eq!(l(1000), (25, 40));
        assert_eq!(l(7), (1, 7));
        assert_eq!(l(1), (1, 1));
        assert!(layout_for(65534).is_err());
        assert!(layout_for(65_000).is_ok());
    }
}
