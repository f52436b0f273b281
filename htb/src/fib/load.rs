/*! Loading route tables from text: `PREFIX/LEN VALUE` files and the output
of `ip route show` / `ip -6 route show`.

Two line formats, mixed freely, IPv4 and IPv6 mixed too (`#` starts a
comment, blank lines are skipped):

* **Route file**: `PREFIX[/LEN] VALUE [METRIC]`. A bare address is a host
  route; VALUE is any word, except that `blackhole`, `unreachable` and
  `prohibit` make a route of that type. METRIC defaults to 0.
* **`ip route show`**: `[TYPE] PREFIX|default [via GW] [dev DEV] … [metric N] …`
  with TYPE `unicast` (implied), `blackhole`, `unreachable` or `prohibit`.
  The unicast value is `GW@DEV`, `GW` or `DEV`; a multipath route (its
  `nexthop` lines follow, indented) takes its first next hop. The metric
  defaults to 0 for IPv4 and 1024 for IPv6, as the kernel's. Other route
  types (`local`, `broadcast`, `multicast`, `anycast`, `throw`, `nat`) are
  refused. `default` is IPv6 when the gateway is or the line has `pref`,
  IPv4 otherwise.

Host bits are refused in IPv4 prefixes ("Invalid prefix for given prefix
length") and cleared in IPv6 ones, as the kernel does.

```
use htb::fib::load::load_tables;
let text = "default via 192.0.2.1 dev eth0 proto dhcp metric 100\n\
            10.0.0.0/8 dev eth1 proto kernel scope link src 10.0.0.1\n\
            blackhole 10.9.0.0/16\n\
            2001:db8::/32 nh7\n";
let t = load_tables(text, "routes").unwrap();
assert_eq!((t.v4.len(), t.v6.len()), (3, 1));
let m = t.v4.lookup("10.1.2.3".parse().unwrap()).unwrap();
assert_eq!(m.route.kind.value().unwrap(), "eth1");
let e = load_tables("10.0.0.1/8 x\n", "r.txt").unwrap_err();
assert_eq!(e.to_string(), "r.txt:1: invalid prefix 10.0.0.1/8: host bits set (did you mean 10.0.0.0/8?)");
```
*/

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Fib, FibError, Prefix, RouteKind};

/// A prefix of either family.
///
/// ```
/// use htb::fib::load::AnyPrefix;
/// let p: AnyPrefix = "2001:db8::/32".parse().unwrap();
/// assert!(matches!(p, AnyPrefix::V6(_)));
/// assert_eq!(p.to_string(), "2001:db8::/32");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnyPrefix {
    /// An IPv4 prefix.
    V4(Prefix<Ipv4Addr>),
    /// An IPv6 prefix.
    V6(Prefix<Ipv6Addr>),
}

impl fmt::Display for AnyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyPrefix::V4(p) => p.fmt(f),
            AnyPrefix::V6(p) => p.fmt(f),
        }
    }
}

impl core::str::FromStr for AnyPrefix {
    type Err = FibError;
    fn from_str(s: &str) -> Result<Self, FibError> {
        parse_prefix(s, false)
    }
}

/// Parses `ADDR[/LEN]`; IPv6 host bits are cleared when `mask_v6`.
fn parse_prefix(s: &str, mask_v6: bool) -> Result<AnyPrefix, FibError> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| FibError::Parse(s.to_string()))?;
    let len = match l {
        None => None,
        Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => Some(
            l.parse::<u8>()
                .map_err(|_| FibError::Parse(s.to_string()))?,
        ),
        Some(_) => return Err(FibError::Parse(s.to_string())),
    };
    Ok(match addr {
        IpAddr::V4(a) => AnyPrefix::V4(Prefix::new(a, len.unwrap_or(32))?),
        IpAddr::V6(a) if mask_v6 => AnyPrefix::V6(Prefix::new_masked(a, len.unwrap_or(128))?),
        IpAddr::V6(a) => AnyPrefix::V6(Prefix::new(a, len.unwrap_or(128))?),
    })
}

/// One parsed route.
///
/// ```
/// use htb::fib::load::parse_line;
/// let r = parse_line("unreachable 10.0.0.0/8 metric 5").unwrap().unwrap();
/// assert_eq!((r.prefix.to_string(), r.metric), ("10.0.0.0/8".to_string(), 5));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLine {
    /// The destination prefix.
    pub prefix: AnyPrefix,
    /// The metric.
    pub metric: u32,
    /// The route type; the unicast value is the line's VALUE (route files)
    /// or `GW@DEV` / `GW` / `DEV` (`ip route show`).
    pub kind: RouteKind<String>,
}

/// A bad line: `file:line: message`.
///
/// ```
/// use htb::fib::load::load_tables;
/// let e = load_tables("\n10.0.0.0/8\n", "t").unwrap_err();
/// assert_eq!((e.line, e.to_string()), (2, "t:2: missing value after the prefix".to_string()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file name as given.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for LoadError {}

const IP_ROUTE_WORDS: &[&str] = &[
    "via",
    "dev",
    "proto",
    "scope",
    "src",
    "metric",
    "table",
    "pref",
    "mtu",
    "onlink",
    "linkdown",
    "expires",
    "realm",
    "realms",
    "nhid",
    "weight",
    "tos",
    "dsfield",
    "advmss",
    "hoplimit",
    "initcwnd",
    "initrwnd",
    "rtt",
    "rttvar",
    "window",
    "cwnd",
    "ssthresh",
    "features",
    "quickack",
    "congctl",
    "fastopen_no_cookie",
    "encap",
    "error",
    "dead",
    "offload",
    "trap",
    "rt_offload",
    "rt_trap",
    "pervasive",
    "notify",
];

fn error_kind(w: &str) -> Option<RouteKind<String>> {
    match w {
        "blackhole" => Some(RouteKind::Blackhole),
        "unreachable" => Some(RouteKind::Unreachable),
        "prohibit" => Some(RouteKind::Prohibit),
        _ => None,
    }
}

/// Parses one line of either format; `Ok(None)` for blank and comment lines
/// and for the indented `nexthop` lines of multipath routes.
///
/// ```
/// use htb::fib::load::parse_line;
/// let r = parse_line("10.1.0.0/16 hop-a 20").unwrap().unwrap();
/// assert_eq!(r.kind.value().map(String::as_str), Some("hop-a"));
/// assert_eq!(r.metric, 20);
/// let r = parse_line("default via fe80::1 dev eth0 metric 1024 pref medium").unwrap().unwrap();
/// assert_eq!(r.prefix.to_string(), "::/0");
/// assert!(parse_line("# nothing").unwrap().is_none());
/// assert!(parse_line("local 10.0.0.1 dev lo").is_err());
/// ```
pub fn parse_line(line: &str) -> Result<Option<RouteLine>, String> {
    let text = line.split('#').next().unwrap_or("");
    if line.starts_with(char::is_whitespace) && text.trim_start().starts_with("nexthop") {
        return Ok(None);
    }
    let toks: Vec<&str> = text.split_whitespace().collect();
    if toks.is_empty() {
        return Ok(None);
    }
    let first_is_prefix = toks[0]
        .split('/')
        .next()
        .is_some_and(|a| a.parse::<IpAddr>().is_ok());
    let is_word = |t: &str| IP_ROUTE_WORDS.contains(&t);
    let route_file = first_is_prefix
        && match toks.len() {
            1 => true,
            2 => !is_word(toks[1]),
            3 => !is_word(toks[1]) && toks[2].bytes().all(|b| b.is_ascii_digit()),
            _ => false,
        };
    if route_file {
        parse_route_file_line(&toks).map(Some)
    } else {
        parse_ip_route_line(&toks).map(Some)
    }
}

fn parse_route_file_line(toks: &[&str]) -> Result<RouteLine, String> {
    let prefix = parse_prefix(toks[0], true).map_err(|e| e.to_string())?;
    if let AnyPrefix::V6(_) = prefix {
        // Route files are strict for both families.
        parse_prefix(toks[0], false).map_err(|e| e.to_string())?;
    }
    let value = toks.get(1).ok_or("missing value after the prefix")?;
    let metric = match toks.get(2) {
        Some(m) => m
            .parse::<u32>()
            .map_err(|_| format!("invalid metric \"{m}\""))?,
        None => 0,
    };
    let kind = error_kind(value).unwrap_or_else(|| RouteKind::Unicast((*value).to_string()));
    Ok(RouteLine {
        prefix,
        metric,
        kind,
    })
}

fn parse_ip_route_line(toks: &[&str]) -> Result<RouteLine, String> {
    let mut i = 0;
    let mut kind = None;
    match toks[0] {
        "unicast" => i = 1,
        w if error_kind(w).is_some() => {
            kind = error_kind(w);
            i = 1;
        }
        w @ ("local" | "broadcast" | "multicast" | "anycast" | "throw" | "nat") => {
            return Err(format!("unsupported route type \"{w}\""));
        }
        _ => {}
    }
    let dst = *toks.get(i).ok_or("missing destination")?;
    i += 1;
    let parsed = match dst {
        "default" => None,
        d => Some(parse_prefix(d, true).map_err(|e| e.to_string())?),
    };
    let (mut via, mut dev, mut metric, mut v6_hint) = (None, None, None, false);
    while i < toks.len() {
        let w = toks[i];
        let arg = toks.get(i + 1).copied();
        match w {
            "via" => {
                // `via inet6 ADDR` names the family explicitly.
                let a = match arg {
                    Some("inet" | "inet6") => {
                        i += 1;
                        toks.get(i + 1).copied()
                    }
                    a => a,
                };
                let a = a.ok_or("missing gateway after \"via\"")?;
                let ip: IpAddr = a.parse().map_err(|_| format!("invalid gateway \"{a}\""))?;
                v6_hint |= ip.is_ipv6();
                via = Some(a);
                i += 2;
            }
            "dev" => {
                dev = Some(arg.ok_or("missing device after \"dev\"")?);
                i += 2;
            }
            "metric" | "priority" | "preference" => {
                let m = arg.ok_or("missing metric")?;
                metric = Some(
                    m.parse::<u32>()
                        .map_err(|_| format!("invalid metric \"{m}\""))?,
                );
                i += 2;
            }
            "pref" => {
                v6_hint = true;
                i += 2;
            }
            "onlink" | "linkdown" | "dead" | "offload" | "trap" | "rt_offload" | "rt_trap"
            | "pervasive" | "notify" | "rt_offload_failed" => i += 1,
            w if IP_ROUTE_WORDS.contains(&w) => i += 2,
            w => return Err(format!("unknown word \"{w}\" in route")),
        }
    }
    let prefix = match parsed {
        Some(p) => p,
        None if v6_hint => AnyPrefix::V6(Prefix::host(Ipv6Addr::UNSPECIFIED).with_len0()),
        None => AnyPrefix::V4(Prefix::host(Ipv4Addr::UNSPECIFIED).with_len0()),
    };
    let v6 = matches!(prefix, AnyPrefix::V6(_));
    let kind = kind.unwrap_or_else(|| {
        RouteKind::Unicast(match (via, dev) {
            (Some(g), Some(d)) => format!("{g}@{d}"),
            (Some(g), None) => g.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "multipath".to_string(),
        })
    });
    Ok(RouteLine {
        prefix,
        metric: metric.unwrap_or(if v6 { 1024 } else { 0 }),
        kind,
    })
}

impl<K: super::FibKey> Prefix<K> {
    fn with_len0(self) -> Self {
        Prefix::new_masked(self.addr, 0).unwrap_or(self)
    }
}

/// An IPv4 and an IPv6 table, as loaded from one text.
///
/// ```
/// let t = htb::fib::load::load_tables("10.0.0.0/8 a\n::/0 b\n", "x").unwrap();
/// assert_eq!((t.v4.len(), t.v6.len()), (1, 1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Tables<V> {
    /// The IPv4 routes.
    pub v4: Fib<Ipv4Addr, V>,
    /// The IPv6 routes.
    pub v6: Fib<Ipv6Addr, V>,
}

/// Loads every line of `text` (either format) into two tables; `file` names
/// the text in errors. A second route with the same prefix and metric is an
/// error, as `ip route add` would make it.
///
/// ```
/// use htb::fib::load::load_tables;
/// let e = load_tables("10.0.0.0/8 a\n10.0.0.0/8 b\n", "f").unwrap_err();
/// assert_eq!(e.to_string(), "f:2: route 10.0.0.0/8 metric 0 exists");
/// ```
pub fn load_tables(text: &str, file: &str) -> Result<Tables<String>, LoadError> {
    let mut t = Tables::default();
    for (n, line) in text.lines().enumerate() {
        let err = |message: String| LoadError {
            file: file.to_string(),
            line: n + 1,
            message,
        };
        let Some(r) = parse_line(line).map_err(err)? else {
            continue;
        };
        match r.prefix {
            AnyPrefix::V4(p) => t.v4.insert(p, r.metric, r.kind),
            AnyPrefix::V6(p) => t.v6.insert(p, r.metric, r.kind),
        }
        .map_err(|e| err(e.to_string()))?;
    }
    Ok(t)
}
