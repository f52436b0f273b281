//! Runs one FIB workload of the criterion bench `fib` (1M synthetic IPv4
//! prefixes, random addresses) for a fixed count, outside criterion, for
//! profilers (`valgrind --tool=cachegrind`, `perf stat`).
//!
//! ```text
//! cargo build --release -p htb-benches --example fib_drive
//! target/release/examples/fib_drive batch 1000000     # lookup_batch, 4096 a call
//! target/release/examples/fib_drive single 1000000    # lookup (route resolved)
//! target/release/examples/fib_drive id 1000000        # lookup_id one at a time
//! target/release/examples/fib_drive insert 0          # build the table only
//! target/release/examples/fib_drive update 200000     # remove + re-insert
//! ```
//!
//! `update` is the criterion bench's `fib4_insert_remove` step: remove a
//! random prefix of the full table and insert it back (the time printed
//! is per update, two per step).
//!
//! Arguments: workload, count, and optionally the number of prefixes
//! (default 1,000,000). Every workload first builds the table (timed and
//! printed as ns per insert); run it with count 0 to get the fixed cost to
//! subtract from instruction counts.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use htb::fib::synth::{self, Rng};
use htb::fib::{Fib, RouteKind};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: fib_drive batch|single|id|insert|update COUNT [PREFIXES]");
        std::process::exit(2);
    };
    let (Some(work), Some(count)) = (args.first(), args.get(1)) else {
        usage()
    };
    let Ok(count) = count.parse::<usize>() else {
        usage()
    };
    let n = args
        .get(2)
        .map_or(Ok(1_000_000), |s| s.parse::<usize>())
        .unwrap_or_else(|_| usage());

    let t = synth::ipv4_prefixes(n, 4);
    let mut r = Rng::new(5);
    let addrs: Vec<Ipv4Addr> = (0..count.min(1 << 20))
        .map(|_| Ipv4Addr::from(r.next_u64() as u32))
        .collect();
    let start = Instant::now();
    let mut fib: Fib<Ipv4Addr, u32> = Fib::new();
    for (i, p) in t.iter().enumerate() {
        fib.insert(*p, 0, RouteKind::Unicast(i as u32))
            .expect("distinct prefixes");
    }
    let build = start.elapsed();
    eprintln!(
        "built {n} prefixes: {:.0} ns per insert, {:.1} MiB",
        build.as_nanos() as f64 / n.max(1) as f64,
        fib.memory_bytes() as f64 / 1048576.0
    );
    if count == 0 {
        return;
    }
    let start = Instant::now();
    match work.as_str() {
        "batch" => {
            let mut out = vec![None; 4096];
            let mut done = 0;
            while done < count {
                let off = done % addrs.len();
                let k = 4096.min(count - done).min(addrs.len() - off);
                fib.lookup_batch(&addrs[off..off + k], &mut out[..k])
                    .expect("same lengths");
                black_box(&out);
                done += k;
            }
        }
        "single" => {
            for i in 0..count {
                let a = addrs[i % addrs.len()];
                black_box(fib.lookup(black_box(a)).map(|m| m.route.metric));
            }
        }
        "id" => {
            for i in 0..count {
                let a = addrs[i % addrs.len()];
                black_box(fib.lookup_id(black_box(a)));
            }
        }
        "insert" => {}
        "update" => {
            let mut r = Rng::new(9);
            for _ in 0..count {
                let p = t[r.below(t.len() as u64) as usize];
                let k = fib.remove(&p, 0).expect("present");
                fib.insert(p, 0, k).expect("absent");
            }
        }
        _ => usage(),
    }
    let per = if work == "update" { 2 * count } else { count };
    eprintln!(
        "{work}: {:.2} ns per {}",
        start.elapsed().as_nanos() as f64 / per as f64,
        if work == "update" { "update" } else { "lookup" }
    );
}
