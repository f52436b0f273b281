//! `htb bench shaper`: the criterion bench's unthrottled workload
//! (`htb-benches`), with any number of leaves and any packet size, timed once.

use std::hint::black_box;
use std::time::Instant;

use htb::{Htb, QdiscConfig};
use htb_benches::{HANDLE, Layout, NS_PER_STEP, PKT_LEN, Rng, build_tree, unthrottled_config};
use serde_json::Value;

use crate::BenchShaperArgs;
use crate::input::CliError;

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
    for _ in 0..a.packets.min(WARMUP) {
        step(&mut htb, &mut now);
    }
    let start = Instant::now();
    for _ in 0..a.packets {
        step(&mut htb, &mut now);
    }
    let elapsed = start.elapsed();
    if empty > 0 || drops > 0 || htb.stats().overlimits > 0 {
        eprintln!(
            "htb: warning: the workload was throttled ({empty} empty dequeues, {drops} drops, \
             {} overlimits): not the unthrottled case",
            htb.stats().overlimits
        );
    }
    let ns = elapsed.as_nanos() as f64 / a.packets as f64;
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    // The layout (`{"leaves": N, ...}`), numbers formatted by serde_json.
    Ok(format!(
        "{{\"leaves\": {}, \"packet_size\": {}, \"packets\": {}, \"ns_per_packet\": {}, \"mpps\": {}}}\n",
        a.leaves,
        a.packet_size,
        a.packets,
        Value::from(round(ns, 2)),
        Value::from(round(if ns > 0.0 { 1e3 / ns } else { 0.0 }, 3)),
    ))
}

#[cfg(test)]
mod test {
    use super::*;

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
