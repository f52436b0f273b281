//! Writes the IPv4 table and addresses of the criterion bench `fib`
//! (`fib4_*/1M`) as files, so that `htb bench fib` and the DPDK peer
//! (`benches/peers/run_lpm.sh`) measure exactly the same load.
//!
//! ```text
//! cargo run --release -p htb-benches --example fib_dump -- DIR [PREFIXES] [ADDRS]
//! htb bench fib --routes DIR/routes4.txt --addrs DIR/addrs4.txt
//! benches/peers/run_lpm.sh --routes DIR/routes4.txt --addrs DIR/addrs4.txt
//! ```
//!
//! `DIR/routes4.txt`: `PREFIX/LEN VALUE` per line, `htb::fib::synth::
//! ipv4_prefixes(PREFIXES, 4)` (default 1,000,000) in generation order,
//! VALUE = the line number from 0 (the route ids the criterion bench
//! inserts). The synthetic IPv4 mix has no prefix shorter than /8, so no
//! `/0` either (which `rte_lpm` could not hold). `DIR/addrs4.txt`: one
//! address per line, ADDRS (default 2^20) addresses uniform over the IPv4
//! space from `Rng::new(5)`, as the criterion bench draws them.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use htb::fib::synth::{self, Rng};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: fib_dump DIR [PREFIXES] [ADDRS]");
        std::process::exit(2);
    };
    let num = |a: Option<String>, d: usize| {
        a.map_or(Ok(d), |s| s.parse::<usize>()).unwrap_or_else(|e| {
            eprintln!("fib_dump: bad count: {e}");
            std::process::exit(2);
        })
    };
    let n = num(args.next(), 1_000_000);
    let n_addrs = num(args.next(), 1 << 20);

    let mut routes = String::with_capacity(n * 24);
    for (i, p) in synth::ipv4_prefixes(n, 4).iter().enumerate() {
        writeln!(routes, "{p} {i}").expect("write to a String");
    }
    let mut r = Rng::new(5);
    let mut addrs = String::with_capacity(n_addrs * 16);
    for _ in 0..n_addrs {
        writeln!(addrs, "{}", Ipv4Addr::from(r.next_u64() as u32)).expect("write to a String");
    }
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| {
            eprintln!("fib_dump: {}: {e}", path.display());
            std::process::exit(1);
        });
        eprintln!("wrote {}", path.display());
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
        eprintln!("fib_dump: {}: {e}", dir.display());
        std::process::exit(1);
    });
    write("routes4.txt", &routes);
    write("addrs4.txt", &addrs);
}
