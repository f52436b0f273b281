//! `htb reasm IN OUT`: every fragmented datagram of a capture reassembled
//! (`htb::reasm`), everything else passed through in order; the kernel's
//! counters printed.

use htb::reasm::{EventKind, Family, FragDrop, Pushed, ReasmConfig, ReasmStats, Reassembler};
use serde_json::{Map, Value, json};

use crate::ReasmArgs;
use crate::input::CliError;
use crate::pcap::{self, Emit, InPacket, Malformed};

/// What happened to the packets, beside the library's counters.
#[derive(Debug, Default)]
struct Counts {
    packets_in: u64,
    packets_out: u64,
    not_ip: u64,
    not_fragments: u64,
    reassembled: u64,
    /// Fragments not kept, by reason (FragDrop order).
    dropped: [u64; FragDrop::ALL.len()],
    timeouts: u64,
    icmp_time_exceeded: u64,
}

/// The reassembly context of a packet: fragments of different interfaces or
/// VLANs are different datagrams (the kernel would see them on different
/// devices).
fn context(pkt: &InPacket<'_>, vlans: u32) -> u32 {
    (pkt.iface << 24) ^ vlans
}

pub fn run(a: &ReasmArgs) -> Result<String, CliError> {
    let cfg = ReasmConfig {
        policy: a.policy,
        ..ReasmConfig::default()
    };
    let mut r = Reassembler::new(cfg);
    let mut c = Counts::default();
    let mut malformed = Malformed::new(a.drop_malformed);
    let mut now = 0u64;
    let mut frame = Vec::new();
    let summary = pcap::process(&a.input, &a.output, |pkt, emit: &mut Emit<'_>| {
        c.packets_in += 1;
        // Time never runs backwards for the table (merged captures can).
        now = now.max(pkt.now_ns);
        if r.next_expiry().is_some_and(|t| t <= now) {
            for ev in r.expire(now) {
                if ev.kind == EventKind::Timeout {
                    c.timeouts += 1;
                }
                if ev.icmp_quote.is_some() {
                    c.icmp_time_exceeded += 1;
                }
            }
        }
        let Some(l3) = pcap::locate(pkt.link, pkt.data) else {
            c.not_ip += 1;
            return pass(&mut c, emit, pkt);
        };
        match r.push(l3.ip(pkt.data), context(pkt, l3.vlans), now) {
            Ok(Pushed::NotFragment) => {
                c.not_fragments += 1;
                pass(&mut c, emit, pkt)
            }
            Ok(Pushed::Queued) => Ok(()),
            Ok(Pushed::Complete(dgram)) => {
                // The completing fragment's link header (its addresses and
                // VLAN tags) in front of the whole datagram.
                frame.clear();
                frame.extend_from_slice(&pkt.data[..l3.offset]);
                frame.extend_from_slice(&dgram);
                r.recycle(dgram);
                c.reassembled += 1;
                c.packets_out += 1;
                emit(&frame, frame.len() as u32)
            }
            Ok(Pushed::Dropped(d)) => {
                c.dropped[d.index()] += 1;
                Ok(())
            }
            Err(e) => {
                if malformed.note(c.packets_in, e) {
                    pass(&mut c, emit, pkt)
                } else {
                    Ok(())
                }
            }
        }
    })?;
    malformed.warn();
    let held = r.queues();
    let held_bytes = r.mem_used();
    if held > 0 {
        eprintln!(
            "htb: warning: {held} datagram(s) still incomplete at the end of the capture \
             (their fragments are not in the output)"
        );
    }
    let v4 = r.stats_for(Family::V4);
    let v6 = r.stats_for(Family::V6);
    let all = r.stats();
    if a.json {
        let mut dropped = Map::new();
        for (name, n) in FragDrop::ALL.iter().map(|d| d.name()).zip(c.dropped) {
            dropped.insert(name.to_string(), n.into());
        }
        let mut v = json!({
            "input_format": summary.format,
            "policy": a.policy.name(),
            "packets_in": c.packets_in,
            "packets_out": c.packets_out,
            "not_ip": c.not_ip,
            "not_fragments": c.not_fragments,
            "reassembled": c.reassembled,
            "malformed": malformed.count,
            "malformed_action": malformed.action(),
            "fragments_dropped": Value::Object(dropped),
            "timeouts": c.timeouts,
            "icmp_time_exceeded": c.icmp_time_exceeded,
            "incomplete_at_end": held,
            "incomplete_bytes": held_bytes,
        });
        let obj = v.as_object_mut().expect("an object");
        for (k, n) in snmp(&all) {
            obj.insert(k.to_string(), n.into());
        }
        for (fam, s) in [("ipv4", &v4), ("ipv6", &v6)] {
            let m: Map<String, Value> = snmp(s)
                .into_iter()
                .map(|(k, n)| (k.to_string(), n.into()))
                .collect();
            obj.insert(fam.to_string(), Value::Object(m));
        }
        return Ok(format!("{v}\n"));
    }
    let mut out = String::new();
    let passed = c.not_ip + c.not_fragments + malformed.passed();
    out += &format!(
        "{} packets in ({}), {} out: {} passed through ({} not IP, {} not fragments, {} malformed), \
         {} datagrams reassembled (policy {})\n",
        c.packets_in,
        summary.format,
        c.packets_out,
        passed,
        c.not_ip,
        c.not_fragments,
        malformed.passed(),
        c.reassembled,
        a.policy
    );
    if malformed.drop && malformed.count > 0 {
        out += &format!("{} malformed packets dropped\n", malformed.count);
    }
    let dropped: Vec<String> = FragDrop::ALL
        .iter()
        .map(|d| d.name())
        .zip(c.dropped)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !dropped.is_empty() {
        out += &format!("fragments not kept: {}\n", dropped.join(", "));
    }
    if c.timeouts > 0 {
        out += &format!(
            "{} datagrams timed out ({} would get ICMP time exceeded)\n",
            c.timeouts, c.icmp_time_exceeded
        );
    }
    if held > 0 {
        out += &format!("{held} datagrams incomplete at the end ({held_bytes} bytes held)\n");
    }
    out += &format!("{:<16}{:>12}{:>12}{:>12}\n", "", "IPv4", "IPv6", "total");
    for ((k, a4), ((_, a6), (_, t))) in snmp(&v4)
        .into_iter()
        .zip(snmp(&v6).into_iter().zip(snmp(&all)))
    {
        out += &format!("{k:<16}{a4:>12}{a6:>12}{t:>12}\n");
    }
    Ok(out)
}

/// Writes the input packet unchanged.
fn pass(c: &mut Counts, emit: &mut Emit<'_>, pkt: &InPacket<'_>) -> Result<(), CliError> {
    c.packets_out += 1;
    emit(pkt.data, pkt.orig_len)
}

/// The counters under the kernel's SNMP names.
fn snmp(s: &ReasmStats) -> [(&'static str, u64); 5] {
    [
        ("ReasmReqds", s.reasm_reqds),
        ("ReasmOKs", s.reasm_oks),
        ("ReasmFails", s.reasm_fails),
        ("ReasmTimeout", s.reasm_timeout),
        ("ReasmOverlaps", s.reasm_overlaps),
    ]
}
