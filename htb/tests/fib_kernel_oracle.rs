//! The live kernel as the oracle of `htb::fib` (`#[ignore]`d: run with
//! `--ignored`; needs root and network namespaces, and skips with a printed
//! reason where they are not available).
//!
//! A synthetic table (50 000 IPv4 + 10 000 IPv6 prefixes, 1 % of them
//! blackhole / unreachable / prohibit) is loaded into a fresh namespace with
//! `ip -batch`, each route's metric = its id, and `oracle/fib_oracle.py` asks
//! `ip route get fibmatch` (rtnetlink) for random addresses, addresses inside
//! prefixes, first and last addresses of prefixes and just outside them —
//! first without, then with default routes. Every answer (matched length and
//! metric, or the errno) must equal this crate's.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use htb::fib::synth::{self, Rng};
use htb::fib::{Fib, FibKey, Prefix, RouteKind};

const V4_ROUTES: usize = 50_000;
const V6_ROUTES: usize = 10_000;

/// What the kernel answers for a route kind (`fib_props` errors), or `None`
/// for a unicast match.
fn errno_of<V>(k: &RouteKind<V>) -> Option<i32> {
    match k {
        RouteKind::Unicast(_) => None,
        RouteKind::Blackhole => Some(22),    // EINVAL
        RouteKind::Unreachable => Some(113), // EHOSTUNREACH
        RouteKind::Prohibit => Some(13),     // EACCES
    }
}

fn kind_for(id: u32) -> RouteKind<u32> {
    match id % 300 {
        1 => RouteKind::Blackhole,
        2 => RouteKind::Unreachable,
        3 => RouteKind::Prohibit,
        _ => RouteKind::Unicast(id),
    }
}

fn batch_line<K: FibKey>(out: &mut String, p: &Prefix<K>, metric: u32, kind: &RouteKind<u32>) {
    let ty = match kind {
        RouteKind::Unicast(_) => "",
        RouteKind::Blackhole => "blackhole ",
        RouteKind::Unreachable => "unreachable ",
        RouteKind::Prohibit => "prohibit ",
    };
    let dev = if matches!(kind, RouteKind::Unicast(_)) {
        " dev fibo0"
    } else {
        ""
    };
    writeln!(out, "route add {ty}{p}{dev} metric {metric}").unwrap();
}

/// The answer line this crate predicts, in the helper's format.
fn expect<K: FibKey>(fib: &Fib<K, u32>, a: K) -> String {
    match fib.lookup(a) {
        None => format!("{a} ! 101"),
        Some(m) => match errno_of(&m.route.kind) {
            Some(e) => format!("{a} ! {e}"),
            None => format!("{a} {} {}", m.prefix.len(), m.route.metric),
        },
    }
}

#[test]
#[ignore = "needs root and network namespaces; run with --ignored"]
fn fib_matches_live_kernel() {
    let t0 = Instant::now();
    let dir: PathBuf = std::env::temp_dir().join(format!("htb-fib-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let helper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../oracle/fib_oracle.py");

    let mut f4: Fib<Ipv4Addr, u32> = Fib::new();
    let mut f6: Fib<Ipv6Addr, u32> = Fib::new();
    let mut batch = String::new();
    let mut id = 0u32;
    let t4 = synth::ipv4_prefixes(V4_ROUTES, 41);
    let t6 = synth::ipv6_prefixes(V6_ROUTES, 61);
    for p in &t4 {
        id += 1;
        let k = kind_for(id);
        batch_line(&mut batch, p, id, &k);
        f4.insert(*p, id, k).unwrap();
    }
    for p in &t6 {
        id += 1;
        let k = kind_for(id);
        batch_line(&mut batch, p, id, &k);
        f6.insert(*p, id, k).unwrap();
    }
    let mut rnd4 = |r: &mut Rng| Ipv4Addr::from(r.next_u64() as u32);
    let mut rnd6 = |r: &mut Rng| {
        // Mostly inside 2000::/3, where the table is.
        let hi = (r.next_u64() & 0x1fff_ffff_ffff_ffff) | 0x2000_0000_0000_0000;
        Ipv6Addr::from(u128::from(hi) << 64 | u128::from(r.next_u64()))
    };
    let a4 = synth::probes(&t4, 18_000, 1, &mut rnd4);
    let a6 = synth::probes(&t6, 7_000, 2, &mut rnd6);
    let mut addrs1: Vec<IpAddr> = a4.iter().map(|&a| a.into()).collect();
    addrs1.extend(a6.iter().map(|&a| IpAddr::from(a)));

    // Step 2: default routes, then addresses again (random ones mostly miss).
    let mut batch2 = String::new();
    id += 1;
    let d4 = Prefix::new(Ipv4Addr::UNSPECIFIED, 0).unwrap();
    batch_line(&mut batch2, &d4, id, &RouteKind::Unicast(id));
    let id4 = id;
    id += 1;
    let d6 = Prefix::new(Ipv6Addr::UNSPECIFIED, 0).unwrap();
    batch_line(&mut batch2, &d6, id, &RouteKind::Unicast(id));
    let id6 = id;
    let addrs2: Vec<IpAddr> = addrs1.iter().step_by(3).copied().collect();

    let write = |name: &str, s: &str| {
        let p = dir.join(name);
        std::fs::write(&p, s).unwrap();
        p
    };
    let list = |v: &[IpAddr]| v.iter().map(|a| format!("{a}\n")).collect::<String>();
    let r1 = write("routes1.batch", &batch);
    let q1 = write("addrs1.txt", &list(&addrs1));
    let r2 = write("routes2.batch", &batch2);
    let q2 = write("addrs2.txt", &list(&addrs2));
    let (o1, o2) = (dir.join("out1.txt"), dir.join("out2.txt"));

    let out = Command::new("python3")
        .arg(&helper)
        .arg("--step")
        .args([&r1, &q1, &o1])
        .arg("--step")
        .args([&r2, &q2, &o2])
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            println!("SKIPPED: cannot run python3: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        println!("SKIPPED: {}", stderr.trim());
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    assert!(out.status.success(), "oracle helper failed: {stderr}");

    let mut compared = 0;
    // Answers by kind: matches, no route (ENETUNREACH), error-type routes.
    let mut kinds = [0usize; 3];
    let mut mismatches = Vec::new();
    let mut check =
        |path: &PathBuf, addrs: &[IpAddr], f4: &Fib<Ipv4Addr, u32>, f6: &Fib<Ipv6Addr, u32>| {
            let text = std::fs::read_to_string(path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), addrs.len(), "answers for every address");
            for (line, a) in lines.iter().zip(addrs) {
                let want = match a {
                    IpAddr::V4(a) => expect(f4, *a),
                    IpAddr::V6(a) => expect(f6, *a),
                };
                // Drop the kernel's route type column (unicast = 1) for matches.
                let got: Vec<&str> = line.split(' ').collect();
                let got = if got[1] == "!" {
                    line.to_string()
                } else {
                    got[..3].join(" ")
                };
                compared += 1;
                kinds[match got.split(' ').nth(2) {
                    Some("101") => 1,
                    Some(_) if got.contains(" ! ") => 2,
                    _ => 0,
                }] += 1;
                if got != want {
                    mismatches.push(format!("kernel `{line}`, library `{want}`"));
                }
            }
        };
    check(&o1, &addrs1, &f4, &f6);
    f4.insert(d4, id4, RouteKind::Unicast(id4)).unwrap();
    f6.insert(d6, id6, RouteKind::Unicast(id6)).unwrap();
    check(&o2, &addrs2, &f4, &f6);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "fib kernel oracle: {} IPv4 + {} IPv6 routes, {compared} lookups compared \
         ({} matches, {} no route, {} blackhole/unreachable/prohibit), {} mismatches, {:.1} s",
        t4.len(),
        t6.len(),
        kinds[0],
        kinds[1],
        kinds[2],
        mismatches.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(compared >= 20_000);
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}
