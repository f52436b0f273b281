//! The live kernel as the oracle of `htb::reasm` (policy `Linux`) and
//! `htb::frag` (`#[ignore]`d: run with `--ignored`; needs root and network
//! namespaces, and skips with a printed reason where they are not available).
//!
//! `oracle/reasm_oracle.py reasm` sends every case of
//! `oracle/reasm/cases.json` (hand-made IPv4/IPv6 fragments: duplicates with
//! other bytes, overlaps, runs in different orders, zero length, tiny
//! non-last, beyond 65535, ECN, DF, max_dist, timeouts, IPv6 parameter
//! problems, ...) between two fresh namespaces and records, per case, the
//! exact bytes it sent and when, what the kernel delivered (IPv4: header +
//! payload; IPv6: payload), the ICMP errors that came back and the receiver's
//! reassembly counters. The very same bytes, at the same times, go through a
//! [`Reassembler`] with the case's sysctls as its config; delivered
//! datagrams, counters, ICMPv6 parameter-problem pointers and time-exceeded
//! quotes must all be equal.
//!
//! `oracle/reasm_oracle.py frag` captures how the kernel fragments UDP
//! datagrams (MTU 1500/1000/576, IP options Router Alert + Record Route,
//! IPv6 at 1500/1280). The unfragmented datagram is rebuilt from the capture
//! (its UDP checksum must verify, which proves the rebuild); [`Fragmenter`]
//! must produce the kernel's fragments byte for byte (IPv6 with the kernel's
//! id), and [`Reassembler`] must turn the kernel's fragments back into it.
//!
//! Comparison rules (what "equal" means, found on Linux 6.18):
//! - IPv4: the whole delivered packet, header included, byte for byte. The
//!   kernel delivers the offset-0 fragment's header with total length,
//!   flags/offset (DF per the largest-fragment rule), TOS (ECN) and checksum
//!   rewritten; nothing else changes on the way to a raw socket, so no field
//!   is exempt.
//! - IPv6: a raw socket gives the payload only, so our packet minus its
//!   40-byte header is compared; our header's payload length and next header
//!   are checked against the payload's length and the protocol of the socket
//!   that received it.
//! - Counters: IPv4 ReasmReqds/OKs/Fails/Timeout/Overlaps (snmp, netstat
//!   IpExt); IPv6 Ip6Reasm{Reqds,OKs,Fails,Timeout} (snmp6 has no overlap
//!   counter).
//! - Cases the harness could not run cleanly after retries (`valid: false`)
//!   are printed as inconclusive and not compared.

#![cfg(all(feature = "reasm", feature = "frag"))]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use htb::frag::{FragError, FragOptions, Fragmenter};
use htb::reasm::{
    EventKind, Family, Policy, Pushed, ReasmConfig, ReasmError, ReasmStats, Reassembler,
};
use serde_json::Value as Json;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs the harness in `mode`; `None` (after printing why) when the kernel
/// cannot be used here.
fn harness(mode: &str) -> Option<Json> {
    let dir = std::env::temp_dir().join(format!("htb-reasm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join(format!("{mode}.json"));
    let out = Command::new("python3")
        .arg(workspace().join("oracle/reasm_oracle.py"))
        .arg(mode)
        .arg("--out")
        .arg(&out_path)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            println!("SKIPPED: cannot run python3: {e}");
            return None;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        println!("SKIPPED: {}", stderr.trim());
        return None;
    }
    assert!(
        out.status.success(),
        "reasm_oracle.py {mode} failed ({}):\n{stderr}",
        out.status
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Some(serde_json::from_str(&text).expect("harness JSON"))
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn u64_of(v: &Json, k: &str) -> u64 {
    v.get(k).and_then(Json::as_u64).unwrap_or(0)
}

/// Index and values of the first differing byte, for messages.
fn first_diff(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(
            "first difference at byte {i}: {:#04x} vs {:#04x}",
            a[i], b[i]
        ),
        None => format!("lengths {} vs {}", a.len(), b.len()),
    }
}

/// One ICMP error: type, code, pointer (parameter problems only), quote
/// (time exceeded only).
type Icmp = (u8, u8, Option<u32>, Option<Vec<u8>>);

/// What one side (kernel or ours) made of a case.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    /// Delivered datagrams: IPv4 whole packets, IPv6 payloads.
    delivered: Vec<Vec<u8>>,
    /// Counters in kernel order (v4: Reqds OKs Fails Timeout Overlaps; v6:
    /// the first four).
    counters: Vec<u64>,
    /// ICMP errors: (type, code, pointer, quote); pointer only for parameter
    /// problems, quote only for time exceeded.
    icmp: Vec<Icmp>,
}

impl Outcome {
    fn summary(&self) -> String {
        let mut s = format!("{} dgram", self.delivered.len());
        let _ = write!(s, " cnt {:?}", self.counters);
        for (t, c, p, q) in &self.icmp {
            let _ = write!(s, " icmp {t}/{c}");
            if let Some(p) = p {
                let _ = write!(s, " ptr {p}");
            }
            if let Some(q) = q {
                let _ = write!(s, " quote {}B", q.len());
            }
        }
        s
    }
}

fn kernel_outcome(r: &Json, v6: bool) -> Outcome {
    let c = &r["counters"];
    let counters = if v6 {
        [
            "Ip6ReasmReqds",
            "Ip6ReasmOKs",
            "Ip6ReasmFails",
            "Ip6ReasmTimeout",
        ]
        .iter()
        .map(|k| u64_of(c, k))
        .collect()
    } else {
        [
            "ReasmReqds",
            "ReasmOKs",
            "ReasmFails",
            "ReasmTimeout",
            "ReasmOverlaps",
        ]
        .iter()
        .map(|k| u64_of(c, k))
        .collect()
    };
    let icmp = r["icmp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let t = e["type"].as_u64().unwrap() as u8;
            let time_exceeded = (!v6 && t == 11) || (v6 && t == 3);
            (
                t,
                e["code"].as_u64().unwrap() as u8,
                e.get("pointer").and_then(Json::as_u64).map(|p| p as u32),
                time_exceeded.then(|| hex(e["quote"].as_str().unwrap())),
            )
        })
        .collect();
    Outcome {
        delivered: r["delivered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| hex(d.as_str().unwrap()))
            .collect(),
        counters,
        icmp,
    }
}

fn stats_vec(s: ReasmStats, v6: bool) -> Vec<u64> {
    let mut v = vec![s.reasm_reqds, s.reasm_oks, s.reasm_fails, s.reasm_timeout];
    if !v6 {
        v.push(s.reasm_overlaps);
    }
    v
}

/// The case's receiver sysctls as our config.
fn config_of(r: &Json) -> ReasmConfig {
    let sys = &r["sysctl"];
    let get = |k: &str, d: u64| sys.get(k).and_then(Json::as_u64).unwrap_or(d);
    ReasmConfig {
        policy: Policy::Linux,
        max_dist: get("net.ipv4.ipfrag_max_dist", 64) as u32,
        timeout_v4: get("net.ipv4.ipfrag_time", 30) * 1_000_000_000,
        timeout_v6: get("net.ipv6.ip6frag_time", 60) * 1_000_000_000,
        ..ReasmConfig::default()
    }
}

/// Feeds the harness's exact bytes, at its send times, to our reassembler.
/// Returns our outcome and notes on anything odd (errors other than
/// parameter problems, inconsistent IPv6 headers).
fn our_outcome(r: &Json, v6: bool) -> (Outcome, Vec<String>) {
    let mut notes = Vec::new();
    let mut ra = Reassembler::new(config_of(r));
    let mut out = Outcome::default();
    let mut last = 0u64;
    let mut protos = r["delivered_proto"].as_array().unwrap().iter();
    for (i, s) in r["sent"].as_array().unwrap().iter().enumerate() {
        let pkt = hex(s["bytes"].as_str().unwrap());
        let now = s["t_ns"].as_u64().unwrap();
        last = now;
        match ra.push(&pkt, 0, now) {
            Ok(Pushed::Complete(d)) => {
                if v6 {
                    if d.len() < 40 {
                        notes.push(format!(
                            "fragment {i}: completed packet of {} bytes",
                            d.len()
                        ));
                        out.delivered.push(d);
                        continue;
                    }
                    let plen = usize::from(u16::from_be_bytes([d[4], d[5]]));
                    if plen != d.len() - 40 {
                        notes.push(format!(
                            "fragment {i}: IPv6 payload length {plen} but {} bytes follow",
                            d.len() - 40
                        ));
                    }
                    if let Some(p) = protos.next().and_then(Json::as_u64) {
                        if u64::from(d[6]) != p {
                            notes.push(format!(
                                "fragment {i}: next header {} but the kernel delivered protocol {p}",
                                d[6]
                            ));
                        }
                    }
                    out.delivered.push(d[40..].to_vec());
                } else {
                    out.delivered.push(d);
                }
            }
            Ok(_) => {}
            Err(ReasmError::ParamProblem { code, pointer }) => {
                out.icmp.push((4, code, Some(pointer), None));
            }
            Err(e) => notes.push(format!("fragment {i}: push error {e}")),
        }
    }
    let wait_ns = (r["wait_ms"].as_f64().unwrap() * 1e6) as u64;
    for ev in ra.expire(last + wait_ns) {
        if ev.kind == EventKind::Timeout {
            if let Some(q) = ev.icmp_quote {
                out.icmp.push(if v6 {
                    (3, 1, None, Some(q))
                } else {
                    (11, 1, None, Some(q))
                });
            }
        }
    }
    out.counters = stats_vec(ra.stats_for(if v6 { Family::V6 } else { Family::V4 }), v6);
    (out, notes)
}

fn explain(k: &Outcome, o: &Outcome) -> String {
    let mut s = String::new();
    if k.delivered.len() != o.delivered.len() {
        let _ = write!(
            s,
            "delivered {} vs ours {}; ",
            k.delivered.len(),
            o.delivered.len()
        );
    } else {
        for (i, (a, b)) in k.delivered.iter().zip(&o.delivered).enumerate() {
            if a != b {
                let _ = write!(s, "datagram {i}: {}; ", first_diff(a, b));
                let n = a.len().min(b.len()).min(28);
                let _ = write!(s, "kernel {:02x?}.. ours {:02x?}..; ", &a[..n], &b[..n]);
            }
        }
    }
    if k.counters != o.counters {
        let _ = write!(s, "counters {:?} vs ours {:?}; ", k.counters, o.counters);
    }
    if k.icmp != o.icmp {
        let show = |v: &[Icmp]| {
            v.iter()
                .map(|(t, c, p, q)| {
                    let mut s = format!("{t}/{c}");
                    if let Some(p) = p {
                        let _ = write!(s, " ptr {p}");
                    }
                    if let Some(q) = q {
                        let _ = write!(
                            s,
                            " quote {} B {}..",
                            q.len(),
                            hex_of(&q[..q.len().min(32)])
                        );
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = write!(
            s,
            "ICMP kernel [{}] ours [{}]",
            show(&k.icmp),
            show(&o.icmp)
        );
        if let ([(_, _, _, Some(a))], [(_, _, _, Some(b))]) = (&k.icmp[..], &o.icmp[..]) {
            let _ = write!(
                s,
                " (quotes: {}; ours is {}a prefix of the kernel's)",
                first_diff(a, b),
                if a.starts_with(b) { "" } else { "not " }
            );
        }
        s.push_str("; ");
    }
    s
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
#[ignore = "needs root and network namespaces; run with --ignored"]
fn reassembly_matches_live_kernel() {
    let Some(doc) = harness("reasm") else { return };
    println!("kernel {}", doc["kernel"].as_str().unwrap_or("?"));
    let mut table = String::new();
    let mut failures = Vec::new();
    let (mut compared, mut inconclusive) = (0, 0);
    for r in doc["results"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let v6 = r["case"]["family"].as_u64() == Some(6);
        if r["valid"].as_bool() != Some(true) {
            inconclusive += 1;
            let _ = writeln!(table, "{name:<40} INCONCLUSIVE {}", r["reasons"]);
            continue;
        }
        compared += 1;
        let k = kernel_outcome(r, v6);
        let (o, notes) = our_outcome(r, v6);
        let same = k == o && notes.is_empty();
        let _ = writeln!(
            table,
            "{name:<40} {:<4} kernel: {:<44} ours: {}",
            if same { "ok" } else { "DIFF" },
            k.summary(),
            o.summary()
        );
        if !same {
            failures.push(format!("{name}: {}{}", explain(&k, &o), notes.join("; ")));
        }
    }
    println!("{table}");
    println!(
        "{compared} cases compared, {inconclusive} inconclusive (harness {} s)",
        doc["wall_s"]
    );
    assert!(
        compared > 0,
        "every case was inconclusive: the kernel runs were too noisy"
    );
    assert!(
        failures.is_empty(),
        "{} case(s) differ from the kernel:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The datagram the kernel fragmented, rebuilt from its fragments (the
/// offset-0 fragment's header carries every option; IPv6: the fragment
/// header's next header and id).
fn rebuild(frags: &[Vec<u8>], v6: bool) -> (Vec<u8>, Option<u32>) {
    let mut parts: Vec<(usize, &[u8])> = Vec::new();
    let mut first: Option<&[u8]> = None;
    let mut id = None;
    for f in frags {
        if v6 {
            let (nh_at, fh) = v6_chain(f, 44);
            assert_eq!(f[nh_at], 44, "IPv6 fragment without a fragment header");
            let fo = u16::from_be_bytes([f[fh + 2], f[fh + 3]]);
            id = Some(u32::from_be_bytes([
                f[fh + 4],
                f[fh + 5],
                f[fh + 6],
                f[fh + 7],
            ]));
            let off = usize::from(fo & 0xfff8);
            if off == 0 {
                first = Some(f);
            }
            parts.push((off, &f[fh + 8..]));
        } else {
            let ihl = usize::from(f[0] & 15) * 4;
            let off = usize::from(u16::from_be_bytes([f[6], f[7]]) & 0x1fff) * 8;
            if off == 0 {
                first = Some(f);
            }
            parts.push((off, &f[ihl..]));
        }
    }
    parts.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (off, p) in parts {
        assert_eq!(off, data.len(), "captured fragments do not abut");
        data.extend_from_slice(p);
    }
    let first = first.expect("no offset-0 fragment captured");
    let mut d;
    if v6 {
        // The per-fragment headers as they came, the fragment header taken
        // out: its next-header byte goes back where the 44 was.
        let (nh_at, fh) = v6_chain(first, 44);
        d = first[..fh].to_vec();
        d[nh_at] = first[fh];
        d[4..6].copy_from_slice(&((fh - 40 + data.len()) as u16).to_be_bytes());
    } else {
        let ihl = usize::from(first[0] & 15) * 4;
        d = first[..ihl].to_vec();
        let tot = (ihl + data.len()) as u16;
        d[2..4].copy_from_slice(&tot.to_be_bytes());
        let df = u16::from_be_bytes([first[6], first[7]]) & 0x4000;
        d[6..8].copy_from_slice(&df.to_be_bytes());
        d[10] = 0;
        d[11] = 0;
        let c = htb::wire::checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
    }
    d.extend_from_slice(&data);
    (d, id)
}

/// Walks an IPv6 packet's Hop-by-Hop / Routing / Destination Options chain
/// until `stop` or any other header: (where that header's next-header byte
/// sits, where the header starts).
fn v6_chain(p: &[u8], stop: u8) -> (usize, usize) {
    let (mut nh_at, mut off) = (6, 40);
    while p[nh_at] != stop && matches!(p[nh_at], 0 | 43 | 60) {
        nh_at = off;
        off += (usize::from(p[off + 1]) + 1) * 8;
    }
    (nh_at, off)
}

/// The UDP checksum over the pseudo-header (the test's own check that a
/// datagram was rebuilt right).
fn udp_checksum_ok(d: &[u8], v6: bool) -> bool {
    let (mut pseudo, l4) = if v6 {
        let (nh_at, start) = v6_chain(d, 17);
        assert_eq!(d[nh_at], 17, "no UDP header in the rebuilt datagram");
        let l4 = &d[start..];
        let mut p = d[8..40].to_vec();
        p.extend_from_slice(&(l4.len() as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 17]);
        (p, l4)
    } else {
        let ihl = usize::from(d[0] & 15) * 4;
        let l4 = &d[ihl..];
        let mut p = d[12..20].to_vec();
        p.extend_from_slice(&[0, 17]);
        p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        (p, l4)
    };
    pseudo.extend_from_slice(l4);
    htb::wire::checksum(&pseudo) == 0
}

fn hex_list(v: &Json) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(|h| hex(h.as_str().unwrap())).collect())
        .unwrap_or_default()
}

/// What a router does to a packet before fragmenting it: TTL − 1, checksum
/// recomputed.
fn forwarded(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    let ihl = usize::from(p[0] & 15) * 4;
    p[8] -= 1;
    p[10] = 0;
    p[11] = 0;
    let c = htb::wire::checksum(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// One fragmentation case: the kernel's fragments (and ICMP "fragmentation
/// needed" MTUs), ours, and every difference found.
fn frag_case(r: &Json) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<String>) {
    let v6 = r["case"]["family"].as_u64() == Some(6);
    let kernel = hex_list(&r["fragments"]);
    let mut problems = Vec::new();
    let mut ours = Vec::new();
    let mut frag = |pkt: &[u8], mtu: usize, id: Option<u32>, icmp: &mut Vec<u64>| {
        let opts = FragOptions {
            ipv6_id: id,
            ..FragOptions::new(mtu)
        };
        match Fragmenter::new(pkt, opts) {
            Ok(f) => ours.extend(f),
            Err(FragError::DontFragment { mtu }) => icmp.push(mtu as u64),
            Err(e) => problems.push(format!("Fragmenter::new: {e}")),
        }
    };
    let mut our_icmp = Vec::new();
    let kernel_icmp: Vec<u64> = r["icmp"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["type"].as_u64() == Some(3) && e["code"].as_u64() == Some(4))
                .map(|e| e["mtu"].as_u64().unwrap())
                .collect()
        })
        .unwrap_or_default();
    let fwd = &r["case"]["forward"];
    if fwd.is_object() {
        // The router re-fragments each packet it forwards, as it came in.
        let egress = fwd["egress_mtu"].as_u64().unwrap() as usize;
        let ingress = hex_list(&r["ingress"]);
        let (sent, _) = rebuild(&ingress, false);
        assert!(
            udp_checksum_ok(&sent, false),
            "the datagram rebuilt from the router's ingress fails its UDP checksum (test bug)"
        );
        for p in &ingress {
            frag(&forwarded(p), egress, None, &mut our_icmp);
        }
    } else {
        let mtu = r["case"]["mtu"].as_u64().unwrap() as usize;
        let (dgram, id) = rebuild(&kernel, v6);
        assert!(
            udp_checksum_ok(&dgram, v6),
            "the datagram rebuilt from the capture fails its UDP checksum (test bug)"
        );
        frag(&dgram, mtu, id, &mut our_icmp);
    }
    if kernel_icmp != our_icmp {
        problems.push(format!(
            "ICMP fragmentation-needed MTUs: kernel {kernel_icmp:?}, ours {our_icmp:?}"
        ));
    }
    if ours.len() != kernel.len() {
        problems.push(format!(
            "{} fragments vs ours {} (sizes {:?} vs {:?})",
            kernel.len(),
            ours.len(),
            kernel.iter().map(Vec::len).collect::<Vec<_>>(),
            ours.iter().map(Vec::len).collect::<Vec<_>>()
        ));
    }
    for (i, (k, o)) in kernel.iter().zip(&ours).enumerate() {
        if k != o {
            problems.push(format!("fragment {i}: {}", first_diff(k, o)));
        }
    }
    if !kernel.is_empty() {
        // The kernel's own fragments must reassemble, with ours, to the
        // datagram (the receiver's UDP socket got it, so the kernel did).
        let (dgram, _) = rebuild(&kernel, v6);
        let mut ra = Reassembler::new(ReasmConfig::default());
        let mut back = None;
        for (i, f) in kernel.iter().enumerate() {
            match ra.push(f, 0, i as u64 * 1000) {
                Ok(Pushed::Complete(d)) => back = Some(d),
                Ok(_) => {}
                Err(e) => problems.push(format!("reassembling kernel fragment {i}: {e}")),
            }
        }
        match back {
            Some(d) if d == dgram => {}
            Some(d) => problems.push(format!(
                "our reassembly of the kernel's fragments: {}",
                first_diff(&dgram, &d)
            )),
            None => problems.push("our reassembly of the kernel's fragments: incomplete".into()),
        }
    }
    let df = fwd.get("df").and_then(Json::as_bool) == Some(true);
    if !df && r["delivered_ok"].as_bool() == Some(false) {
        problems.push("the kernel's receiver did not get the datagram (harness)".into());
    }
    (kernel, ours, problems)
}

#[test]
#[ignore = "needs root and network namespaces; run with --ignored"]
fn fragmentation_matches_live_kernel() {
    let Some(doc) = harness("frag") else { return };
    let mut failures = Vec::new();
    let mut table = String::new();
    let mut compared = 0;
    for r in doc["results"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        if r["valid"].as_bool() != Some(true) {
            let _ = writeln!(table, "{name:<32} INCONCLUSIVE {}", r["reasons"]);
            continue;
        }
        compared += 1;
        let (kernel, ours, problems) = frag_case(r);
        let sizes = |v: &[Vec<u8>]| v.iter().map(Vec::len).collect::<Vec<_>>();
        let icmp = r["icmp"].as_array().map_or(0, Vec::len);
        let _ = writeln!(
            table,
            "{name:<32} {:<4} kernel {} fragments {:?}{} ours {}",
            if problems.is_empty() { "ok" } else { "DIFF" },
            kernel.len(),
            &sizes(&kernel)[..kernel.len().min(4)],
            if icmp > 0 { " + ICMP 3/4" } else { "" },
            if sizes(&ours) == sizes(&kernel) {
                "same sizes".to_string()
            } else {
                format!("{:?}", sizes(&ours))
            }
        );
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    println!("{table}");
    assert!(compared > 0, "every fragmentation case was inconclusive");
    assert!(
        failures.is_empty(),
        "{} fragmentation case(s) differ from the kernel:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
