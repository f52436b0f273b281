//! `htb route lookup ROUTES ADDRS` and `htb bench fib --routes R --addrs A`:
//! the FIB (`htb::fib`) on route files or `ip route show` text.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Instant;

use htb::fib::load::{AnyPrefix, RouteLine, parse_line};
use htb::fib::{Fib, FibKey, Match, RouteKind};

use crate::input::CliError;

fn read(path: &Path) -> Result<String, CliError> {
    let r = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    r.map_err(|e| CliError::Input(format!("{}: error: {e}", path.display())))
}

/// Every route line of a file (either format), `file:line: message` on error.
fn parse_routes(path: &Path) -> Result<Vec<(usize, RouteLine)>, CliError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(r)) => out.push((n + 1, r)),
            Ok(None) => {}
            Err(m) => {
                return Err(CliError::Input(format!(
                    "{}:{}: {m}",
                    path.display(),
                    n + 1
                )));
            }
        }
    }
    Ok(out)
}

/// One address per line (`#` comments, blank lines skipped).
fn parse_addrs(path: &Path) -> Result<Vec<IpAddr>, CliError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.split('#').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        let a = t.parse::<IpAddr>().map_err(|_| {
            CliError::Input(format!(
                "{}:{}: invalid address \"{t}\"",
                path.display(),
                n + 1
            ))
        })?;
        out.push(a);
    }
    Ok(out)
}

struct Tables {
    v4: Fib<Ipv4Addr, String>,
    v6: Fib<Ipv6Addr, String>,
}

fn build(path: &Path, routes: Vec<(usize, RouteLine)>) -> Result<Tables, CliError> {
    let mut t = Tables {
        v4: Fib::new(),
        v6: Fib::new(),
    };
    for (n, r) in routes {
        match r.prefix {
            AnyPrefix::V4(p) => t.v4.insert(p, r.metric, r.kind),
            AnyPrefix::V6(p) => t.v6.insert(p, r.metric, r.kind),
        }
        .map_err(|e| CliError::Input(format!("{}:{n}: {e}", path.display())))?;
    }
    Ok(t)
}

/// IPv6 text as Python's `ipaddress` prints it: RFC 5952 (lowercase, the
/// longest run of two or more zero groups compressed, leftmost on a tie),
/// and no dotted quad for IPv4-mapped addresses.
pub fn fmt_v6(a: Ipv6Addr) -> String {
    let g = a.segments();
    let (mut best, mut best_len, mut i) = (0, 0, 0);
    while i < 8 {
        if g[i] == 0 {
            let s = i;
            while i < 8 && g[i] == 0 {
                i += 1;
            }
            if i - s > best_len {
                (best, best_len) = (s, i - s);
            }
        } else {
            i += 1;
        }
    }
    let hex = |gs: &[u16]| {
        gs.iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best_len < 2 {
        hex(&g)
    } else {
        format!("{}::{}", hex(&g[..best]), hex(&g[best + best_len..]))
    }
}

fn fmt_addr(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => fmt_v6(a),
    }
}

fn fmt_match<K: FibKey>(m: Option<Match<'_, K, String>>, addr: &dyn Fn(K) -> String) -> String {
    match m {
        None => "- -".to_string(),
        Some(m) => {
            let v = match &m.route.kind {
                RouteKind::Unicast(v) => v.clone(),
                k => k.to_string(),
            };
            format!("{}/{} {v}", addr(m.prefix.addr()), m.prefix.len())
        }
    }
}

/// `htb route lookup`: one line per address, `ADDRESS PREFIX/LEN VALUE` or
/// `ADDRESS - -`.
pub fn lookup(routes: &Path, addrs: &Path) -> Result<String, CliError> {
    let t = build(routes, parse_routes(routes)?)?;
    let mut out = String::new();
    for a in parse_addrs(addrs)? {
        let m = match a {
            IpAddr::V4(x) => fmt_match(t.v4.lookup(x), &|k: Ipv4Addr| k.to_string()),
            IpAddr::V6(x) => fmt_match(t.v6.lookup(x), &fmt_v6),
        };
        out.push_str(&format!("{} {m}\n", fmt_addr(a)));
    }
    Ok(out)
}

/// Times `f` over enough rounds for about `budget_ns`; ns per item.
fn time_per_item(items: usize, budget_ns: u128, mut f: impl FnMut()) -> f64 {
    if items == 0 {
        return 0.0;
    }
    let start = Instant::now();
    f();
    let once = start.elapsed().as_nanos().max(1);
    let rounds = (budget_ns / once).clamp(1, 1000) as u32;
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_nanos() as f64 / (f64::from(rounds) * items as f64)
}

/// `htb bench fib`: insert every route into empty tables (timed), then look
/// up every address in batches and one at a time; one JSON line.
pub fn bench(routes: &Path, addrs: &Path) -> Result<String, CliError> {
    let lines = parse_routes(routes)?;
    let n_routes = lines.len();
    let t0 = Instant::now();
    let t = build(routes, lines)?;
    let insert_ns = t0.elapsed().as_nanos() as f64 / n_routes.max(1) as f64;
    let addrs = parse_addrs(addrs)?;
    let a4: Vec<Ipv4Addr> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(x) => Some(*x),
            _ => None,
        })
        .collect();
    let a6: Vec<Ipv6Addr> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V6(x) => Some(*x),
            _ => None,
        })
        .collect();
    let mut o4 = vec![None; a4.len()];
    let mut o6 = vec![None; a6.len()];
    let batch = time_per_item(addrs.len(), 500_000_000, || {
        t.v4.lookup_batch(&a4, &mut o4).expect("same lengths");
        t.v6.lookup_batch(&a6, &mut o6).expect("same lengths");
        black_box((&o4, &o6));
    });
    let single = time_per_item(addrs.len(), 500_000_000, || {
        for a in &a4 {
            black_box(t.v4.lookup(black_box(*a)));
        }
        for a in &a6 {
            black_box(t.v6.lookup(black_box(*a)));
        }
    });
    let mlps = if batch > 0.0 { 1e3 / batch } else { 0.0 };
    Ok(format!(
        "{{\"routes\": {n_routes}, \"insert_ns_per_route\": {insert_ns:.1}, \"lookups\": {}, \
         \"ns_per_lookup\": {batch:.2}, \"ns_per_lookup_single\": {single:.2}, \
         \"mlookups_per_s\": {mlps:.1}, \"bytes\": {}}}\n",
        addrs.len(),
        t.v4.memory_bytes() + t.v6.memory_bytes()
    ))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn v6_text_as_python_prints_it() {
        for (a, want) in [
            ("::ffff:1.2.3.4", "::ffff:102:304"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("::", "::"),
            ("1::", "1::"),
            ("::1", "::1"),
        ] {
            assert_eq!(fmt_v6(a.parse().unwrap()), want);
        }
    }

    #[test]
    fn lookup_mixed_files() {
        let dir = std::env::temp_dir().join(format!("htb-route-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = dir.join("routes");
        let a = dir.join("addrs");
        std::fs::write(
            &r,
            "10.0.0.0/8 core\n2001:db8::/32 v6\nblackhole 10.9.0.0/16\n",
        )
        .unwrap();
        std::fs::write(&a, "10.1.1.1\n10.9.0.1\n11.0.0.1\n2001:db8::ffff:1.2.3.4\n").unwrap();
        let out = lookup(&r, &a).unwrap();
        assert_eq!(
            out,
            "10.1.1.1 10.0.0.0/8 core\n10.9.0.1 10.9.0.0/16 blackhole\n11.0.0.1 - -\n\
             2001:db8::ffff:102:304 2001:db8::/32 v6\n"
        );
        std::fs::write(&r, "10.0.0.0/8 core\n10.0.0.1/8 x\n").unwrap();
        let e = lookup(&r, &a).unwrap_err();
        assert!(
            e.message().ends_with(
                ":2: invalid prefix 10.0.0.1/8: host bits set (did you mean 10.0.0.0/8?)"
            ),
            "{}",
            e.message()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
