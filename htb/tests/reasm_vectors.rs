//! Every vector of `tests/vectors/novak-vectors.json` under every policy,
//! over IPv4 and IPv6 (packets built around the vectors' payloads).
//!
//! IDS policies must give the vector's `expected` bytes where the file has
//! them, else its `model_predictions` (an incomplete prediction must not
//! complete). The JSON's `linux` policy is our `LinuxLegacy`. Our `Linux`
//! (today's kernel) gives what the run rules derive, asserted per vector
//! below: every vector overlaps once, which kills the datagram.

use std::collections::HashMap;

use htb::reasm::{Family, FragDrop, Policy, Pushed, ReasmConfig, Reassembler};
use htb::wire::{Ipv4Packet, Ipv6Packet};
use serde_json::Value;

struct Frag {
    label: String,
    offset: usize,
    mf: bool,
    payload: Vec<u8>,
}

struct Vector {
    name: String,
    total_len: usize,
    frags: Vec<Frag>,
    raw: Value,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn load() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/novak-vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("novak-vectors.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| Vector {
            name: x["name"].as_str().unwrap().to_string(),
            total_len: x["total_len"].as_u64().unwrap() as usize,
            frags: x["fragments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let payload = hex(f["payload_hex"].as_str().unwrap());
                    assert_eq!(payload.len() as u64, f["len"].as_u64().unwrap());
                    Frag {
                        label: f["label"].as_str().unwrap().to_string(),
                        offset: f["offset"].as_u64().unwrap() as usize,
                        mf: f["mf"].as_bool().unwrap(),
                        payload,
                    }
                })
                .collect(),
            raw: x.clone(),
        })
        .collect()
}

fn v4_packet(id: u16, f: &Frag) -> Vec<u8> {
    let mut b = vec![0u8; 20 + f.payload.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    p.set_version_ihl(4, 5);
    p.set_total_len((20 + f.payload.len()) as u16);
    p.set_ident(id);
    p.set_more_frags(f.mf);
    p.set_frag_offset(f.offset as u16);
    p.set_ttl(64);
    p.set_protocol(1);
    p.set_src_addr([192, 0, 2, 1]);
    p.set_dst_addr([192, 0, 2, 2]);
    p.fill_checksum();
    b[20..].copy_from_slice(&f.payload);
    b
}

fn v6_packet(id: u32, f: &Frag) -> Vec<u8> {
    let mut b = vec![0u8; 48 + f.payload.len()];
    let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
    p.set_version_tc_flow(0, 0);
    p.set_payload_len((8 + f.payload.len()) as u16);
    p.set_next_header(44);
    p.set_hop_limit(64);
    p.set_src_addr([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.set_dst_addr([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    // Next header 253 (experimental), as the kernel oracle uses: only one
    // byte of upper-layer header is required in the first fragment.
    b[40] = 253;
    let om = (f.offset as u16) | u16::from(f.mf);
    b[42..44].copy_from_slice(&om.to_be_bytes());
    b[44..48].copy_from_slice(&id.to_be_bytes());
    b[48..].copy_from_slice(&f.payload);
    b
}

/// Pushes every fragment in order; returns each push's result and the
/// reassembled payload(s) (header stripped).
fn run(v: &Vector, policy: Policy, family: Family) -> (Vec<Pushed>, Reassembler) {
    let mut r = Reassembler::new(ReasmConfig {
        policy,
        ..ReasmConfig::default()
    });
    let res = v
        .frags
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let pkt = match family {
                Family::V4 => v4_packet(0x4242, f),
                Family::V6 => v6_packet(0x4242_4242, f),
            };
            r.push(&pkt, 0, i as u64).unwrap()
        })
        .collect();
    (res, r)
}

fn json_name(p: Policy) -> &'static str {
    match p {
        Policy::LinuxLegacy => "linux",
        other => other.name(),
    }
}

/// The bytes a `blocks` / `blocks_bytes` string stands for: each block is
/// the named fragment's own bytes at that position.
fn decode_blocks(v: &Vector, spec: &Value) -> Vec<u8> {
    let by_label: HashMap<&str, &Frag> = v.frags.iter().map(|f| (f.label.as_str(), f)).collect();
    let mut out = Vec::new();
    let take = |label: &str, n: usize, out: &mut Vec<u8>| {
        let f = by_label[label];
        let at = out.len();
        out.extend_from_slice(&f.payload[at - f.offset..at - f.offset + n]);
    };
    if let Some(b) = spec.get("blocks_bytes") {
        for part in b.as_str().unwrap().split_whitespace() {
            let (label, n) = part.split_once('*').unwrap();
            take(label, n.parse().unwrap(), &mut out);
        }
    } else {
        for label in spec["blocks"].as_str().unwrap().split_whitespace() {
            let n = 8.min(v.total_len - out.len());
            take(label, n, &mut out);
        }
    }
    out
}

/// What the vector file says `policy` must give: `Some(bytes)` or `None`
/// (must not complete).
fn expectation(v: &Vector, policy: Policy) -> Option<Vec<u8>> {
    let name = json_name(policy);
    let spec = v.raw["expected"]
        .get(name)
        .or_else(|| v.raw["model_predictions"].get(name))
        .unwrap_or_else(|| panic!("{}: nothing for {name}", v.name));
    if spec.get("incomplete").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let mut forms = Vec::new();
    if let Some(h) = spec.get("payload_hex") {
        forms.push(hex(h.as_str().unwrap()));
    }
    if let Some(a) = spec.get("payload_ascii") {
        forms.push(a.as_str().unwrap().as_bytes().to_vec());
    }
    if spec.get("blocks").is_some() || spec.get("blocks_bytes").is_some() {
        forms.push(decode_blocks(v, spec));
    }
    assert!(!forms.is_empty(), "{}: {name}: no payload form", v.name);
    for f in &forms[1..] {
        assert_eq!(f, &forms[0], "{}: {name}: forms disagree", v.name);
    }
    // Where `expected` exists, the model prediction agrees with it.
    if let (Some(e), Some(m)) = (
        v.raw["expected"].get(name),
        v.raw["model_predictions"].get(name),
    ) {
        if e.get("incomplete").is_none() {
            let m = m["payload_ascii"].as_str().unwrap().as_bytes();
            // Upstream compares bytes 8.. only for one vector.
            assert_eq!(&m[8..], &forms[0][8..], "{}: {name}", v.name);
        }
    }
    assert_eq!(forms[0].len(), v.total_len);
    Some(forms.swap_remove(0))
}

fn strip(family: Family, d: &[u8]) -> &[u8] {
    match family {
        Family::V4 => &d[20..],
        Family::V6 => &d[40..],
    }
}

#[test]
fn ids_policies_reproduce_every_vector() {
    let vectors = load();
    assert_eq!(vectors.len(), 6);
    let mut checked = 0;
    for v in &vectors {
        for policy in Policy::ALL.into_iter().filter(|&p| p != Policy::Linux) {
            let want = expectation(v, policy);
            for family in [Family::V4, Family::V6] {
                let (res, r) = run(v, policy, family);
                let done: Vec<(usize, &[u8])> = res
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| match p {
                        Pushed::Complete(d) => Some((i, strip(family, d))),
                        _ => None,
                    })
                    .collect();
                let ctx = format!("{} / {policy} / {family:?}", v.name);
                match &want {
                    Some(bytes) => {
                        assert_eq!(done.len(), 1, "{ctx}: {res:?}");
                        assert_eq!(done[0].1, &bytes[..], "{ctx}");
                        assert_eq!(r.stats().reasm_oks, 1, "{ctx}");
                        assert_eq!(r.queues(), 0, "{ctx}");
                        // IDS policies never fail a datagram for an overlap.
                        assert_eq!(r.stats().reasm_fails, 0, "{ctx}");
                    }
                    None => {
                        assert!(done.is_empty(), "{ctx}: completed {done:?}");
                        assert_eq!(r.queues(), 1, "{ctx}");
                    }
                }
                assert_eq!(r.stats().reasm_reqds, v.frags.len() as u64, "{ctx}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6 * 7 * 2);
}

#[test]
fn sturges_novak_ids_overlaps_are_reported() {
    // Suricata asserts at least one of J..Q raises the overlap event and
    // none of A..I does.
    let v = &load()[0];
    assert_eq!(v.name, "sturges-novak-2005");
    for policy in Policy::ALL.into_iter().filter(|&p| p != Policy::Linux) {
        let mut r = Reassembler::new(ReasmConfig {
            policy,
            ..ReasmConfig::default()
        });
        for (i, f) in v.frags.iter().enumerate() {
            r.push(&v4_packet(1, f), 0, 0).unwrap();
            if i == 8 {
                assert_eq!(r.stats().reasm_overlaps, 0, "{policy}");
            }
        }
        assert!(r.stats().reasm_overlaps >= 1, "{policy}");
    }
}

/// Today's kernel, derived by hand from the run rules for each vector:
/// (vector, index of the fragment whose overlap kills the queue). The
/// fragments after it never complete a new datagram.
const LINUX: [(&str, usize); 6] = [
    // J (8..40) lands in run B (32..48) but starts before it.
    ("sturges-novak-2005", 9),
    // C (24..72) reaches into the tail run B (40..88) from before it.
    ("suricata-jeremy-linux", 2),
    // B (8..24) is its own run before A (24..40); C (16..32) touches both.
    ("suricata-bsd-fragment-after-no-mf", 2),
    // M (0..24) reaches into E (8..32) from before it.
    ("suricata-bsd-subsequent-overlaps-start-of-original", 1),
    // P2 (8..24) reaches into P1 (16..32).
    ("suricata-bsd-subsequent-overlaps-start-of-original-2", 1),
    // P3 (8..24) touches run P1 (16..32) from before it.
    ("suricata-bsd-missing-fragment", 2),
];

#[test]
fn linux_policy_kills_every_vector_on_its_first_overlap() {
    let vectors = load();
    for (name, kill_at) in LINUX {
        let v = vectors.iter().find(|v| v.name == name).unwrap();
        for family in [Family::V4, Family::V6] {
            let (res, r) = run(v, Policy::Linux, family);
            let ctx = format!("{name} / {family:?}");
            for (i, p) in res.iter().enumerate() {
                if i == kill_at {
                    assert_eq!(p, &Pushed::Dropped(FragDrop::Overlap), "{ctx}");
                } else {
                    // Nothing is delivered: what follows the kill starts a
                    // new queue that never gets all its bytes.
                    assert_eq!(p, &Pushed::Queued, "{ctx}: fragment {i}");
                }
            }
            let s = r.stats_for(family);
            assert_eq!(
                (s.reasm_overlaps, s.reasm_fails, s.reasm_oks),
                (1, 1, 0),
                "{ctx}"
            );
            assert_eq!(s.reasm_reqds, v.frags.len() as u64, "{ctx}");
        }
    }
}
