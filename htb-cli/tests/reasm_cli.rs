//! Drives the built `htb` binary on captures made here with pcap-file's
//! writer: `htb reasm`, `htb frag`, `htb bench reasm|frag`, and bad input.
//!
//! Fragments are cut by hand in this file (not by `htb::frag`), so that the
//! reassembly tests do not lean on the code they check.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::{DataLink, TsResolution};
use serde_json::Value;

const HTB: &str = env!("CARGO_BIN_EXE_htb");

// ---------------------------------------------------------------------
// helpers: files, processes
// ---------------------------------------------------------------------

fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "reasm-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(HTB)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run htb")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn json(o: &Output) -> Value {
    ok(o);
    serde_json::from_str(&text(&o.stdout)).expect("stdout is one JSON value")
}

/// A packet in a capture: time in ns, bytes.
type Pkt = (u64, Vec<u8>);

fn write_pcap(path: &Path, link: DataLink, pkts: &[Pkt]) {
    let hdr = PcapHeader {
        datalink: link,
        ts_resolution: TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(File::create(path).unwrap(), hdr).unwrap();
    for (t, d) in pkts {
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(*t),
            d.len() as u32,
            d,
        ))
        .unwrap();
    }
}

fn read_pcap(path: &Path) -> (PcapHeader, Vec<Pkt>) {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    let hdr = r.header();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len());
        out.push((p.timestamp.as_nanos() as u64, p.data.into_owned()));
    }
    (hdr, out)
}

// ---------------------------------------------------------------------
// helpers: packets
// ---------------------------------------------------------------------

fn cksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// IPv4 header + payload; `frag` is the flags/offset field as sent.
fn ipv4(id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[198, 51, 100, 7]);
    p[16..20].copy_from_slice(&[203, 0, 113, 9]);
    let c = cksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The fragment of IPv4 datagram `d` (20-byte header) carrying payload
/// bytes `off..off + len`, MF as given.
fn frag4(d: &[u8], off: usize, len: usize, mf: bool) -> Vec<u8> {
    let id = u16::from_be_bytes([d[4], d[5]]);
    let df = u16::from_be_bytes([d[6], d[7]]) & 0x4000;
    let mf = if mf { 0x2000 } else { 0 };
    let field = (off / 8) as u16 | mf | df;
    ipv4(id, field, &d[20 + off..20 + off + len])
}

const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next);
    p.push(64);
    p.extend_from_slice(&SRC6);
    p.extend_from_slice(&DST6);
    p.extend_from_slice(payload);
    p
}

/// The fragment of IPv6 packet `d` (no extension headers) carrying payload
/// bytes `off..off + len`.
fn frag6(d: &[u8], off: usize, len: usize, mf: bool, id: u32) -> Vec<u8> {
    let mut fh = vec![d[6], 0];
    fh.extend_from_slice(&((off as u16) | u16::from(mf)).to_be_bytes());
    fh.extend_from_slice(&id.to_be_bytes());
    fh.extend_from_slice(&d[40 + off..40 + off + len]);
    ipv6(44, &fh)
}

/// Ethernet frame with source MAC ending in `mac`, optional 802.1Q tag.
fn eth(mac: u8, vlan: Option<u16>, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, mac];
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

const SEC: u64 = 1_000_000_000;

// ---------------------------------------------------------------------
// htb reasm
// ---------------------------------------------------------------------

#[test]
fn reassembles_ethernet_ipv4_out_of_order_and_passes_the_rest_through_in_order() {
    let dir = scratch_dir();
    let dgram = ipv4(0x1234, 0, &pattern(3000, 1));
    let arp = eth(1, None, 0x0806, &[0u8; 28]);
    let plain = eth(2, None, 0x0800, &ipv4(9, 0x4000, &pattern(100, 2)));
    let f1 = eth(3, None, 0x0800, &frag4(&dgram, 0, 1480, true));
    let f2 = eth(4, None, 0x0800, &frag4(&dgram, 1480, 1480, true));
    let f3 = eth(5, None, 0x0800, &frag4(&dgram, 2960, 40, false));
    let mut padded = eth(6, None, 0x0800, &ipv4(10, 0, b"hi"));
    padded.resize(60, 0); // Ethernet minimum-frame padding after the IP packet
    let input = vec![
        (SEC, f2.clone()),
        (SEC + 1, arp.clone()),
        (SEC + 2, f3.clone()),
        (SEC + 3, plain.clone()),
        (SEC + 4, f1.clone()),
        (SEC + 5, padded.clone()),
    ];
    let (i, o) = (dir.join("in.pcap"), dir.join("out.pcap"));
    write_pcap(&i, DataLink::ETHERNET, &input);
    let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
    let (hdr, out) = read_pcap(&o);
    assert_eq!(hdr.datalink, DataLink::ETHERNET);
    // The datagram at the completing fragment's place, time and link header.
    let mut want_frame = f1[..14].to_vec();
    want_frame.extend_from_slice(&dgram);
    let want = vec![
        (SEC + 1, arp),
        (SEC + 3, plain),
        (SEC + 4, want_frame),
        (SEC + 5, padded),
    ];
    assert_eq!(out.len(), want.len());
    for (k, (g, w)) in out.iter().zip(&want).enumerate() {
        assert_eq!(g.0, w.0, "timestamp of output packet {k}");
        assert!(g.1 == w.1, "bytes of output packet {k} differ");
    }
    assert_eq!(v["packets_in"], 6);
    assert_eq!(v["packets_out"], 4);
    assert_eq!(v["not_ip"], 1);
    assert_eq!(v["not_fragments"], 2);
    assert_eq!(v["reassembled"], 1);
    assert_eq!(v["malformed"], 0);
    assert_eq!(v["ReasmReqds"], 3);
    assert_eq!(v["ReasmOKs"], 1);
    assert_eq!(v["ReasmFails"], 0);
    assert_eq!(v["ipv4"]["ReasmReqds"], 3);
    assert_eq!(v["ipv6"]["ReasmReqds"], 0);
    assert_eq!(v["incomplete_at_end"], 0);
}

#[test]
fn reassembles_ipv6_on_raw_ip_link_types() {
    let d = ipv6(17, &pattern(2000, 3));
    let frags = [
        frag6(&d, 1232, 768, false, 0xdead_beef),
        frag6(&d, 0, 1232, true, 0xdead_beef),
    ];
    for link in [DataLink::RAW, DataLink::IPV6] {
        let dir = scratch_dir();
        let (i, o) = (dir.join("in.pcap"), dir.join("out.pcap"));
        write_pcap(&i, link, &[(5, frags[0].clone()), (6, frags[1].clone())]);
        let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
        let (hdr, out) = read_pcap(&o);
        assert_eq!(hdr.datalink, link);
        assert_eq!(out.len(), 1, "{link:?}");
        assert_eq!(out[0].0, 6);
        assert!(
            out[0].1 == d,
            "{link:?}: fragment header not removed / bytes differ"
        );
        assert_eq!(v["ipv6"]["ReasmReqds"], 2);
        assert_eq!(v["ipv6"]["ReasmOKs"], 1);
        assert_eq!(v["ReasmOKs"], 1);
    }
}

#[test]
fn vlans_keep_datagrams_apart_and_text_output_shows_the_counters() {
    let dir = scratch_dir();
    let d = ipv4(77, 0, &pattern(64, 9));
    // Same key, first half on VLAN 10 and second half on VLAN 20: never one
    // datagram; the VLAN 10 pair completes.
    let input = vec![
        (1, eth(1, Some(10), 0x0800, &frag4(&d, 0, 32, true))),
        (2, eth(2, Some(20), 0x0800, &frag4(&d, 32, 32, false))),
        (3, eth(3, Some(10), 0x0800, &frag4(&d, 32, 32, false))),
    ];
    let (i, o) = (dir.join("in.pcap"), dir.join("out.pcap"));
    write_pcap(&i, DataLink::ETHERNET, &input);
    let r = run(&[Path::new("reasm"), &i, &o]);
    ok(&r);
    let (_, out) = read_pcap(&o);
    assert_eq!(out.len(), 1);
    assert_eq!(
        &out[0].1[..18],
        &input[2].1[..18],
        "link header with its tag"
    );
    assert!(out[0].1[18..] == d[..]);
    let s = text(&r.stdout);
    assert!(s.contains("3 packets in (pcap), 1 out"), "{s}");
    let reqds = s.lines().find(|l| l.starts_with("ReasmReqds")).expect(&s);
    assert_eq!(
        reqds.split_whitespace().collect::<Vec<_>>(),
        ["ReasmReqds", "3", "0", "3"]
    );
    assert!(s.contains("1 datagrams incomplete at the end"), "{s}");
    assert!(text(&r.stderr).contains("still incomplete"));
}

/// Fragment A holds payload 0..16 ("a"), B (last) 8..24 ("b"): a partial
/// overlap. Linux drops the datagram; the IDS policies pick a side.
fn overlap_capture(dir: &Path) -> PathBuf {
    let a = ipv4(5, 0x2000, &[b'a'; 16]);
    let b = ipv4(5, 1, &[b'b'; 16]);
    let i = dir.join("overlap.pcap");
    write_pcap(&i, DataLink::RAW, &[(1, a), (2, b)]);
    i
}

#[test]
fn overlap_policy_linux_discards_first_keeps_old_last_takes_new() {
    let dir = scratch_dir();
    let i = overlap_capture(&dir);
    let o = dir.join("linux.pcap");
    let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
    assert_eq!(v["policy"], "linux");
    assert_eq!(v["ReasmOverlaps"], 1);
    assert_eq!(v["ReasmOKs"], 0);
    assert!(v["ReasmFails"].as_u64().unwrap() >= 1);
    assert_eq!(v["fragments_dropped"]["overlap"], 1);
    assert!(read_pcap(&o).1.is_empty());

    for (policy, tail) in [("first", b'a'), ("last", b'b')] {
        let o = dir.join(format!("{policy}.pcap"));
        let v = json(&run(&[
            Path::new("reasm"),
            &i,
            &o,
            Path::new("--json"),
            Path::new("--policy"),
            Path::new(policy),
        ]));
        assert_eq!(v["policy"], policy);
        assert_eq!(v["ReasmOKs"], 1, "{policy}");
        let mut payload = vec![b'a'; 8];
        payload.extend_from_slice(&[tail; 8]);
        payload.extend_from_slice(&[b'b'; 8]);
        let (_, out) = read_pcap(&o);
        assert_eq!(out.len(), 1);
        assert!(out[0].1 == ipv4(5, 0, &payload), "{policy}: {:?}", out[0].1);
    }
    let r = run(&[
        Path::new("reasm"),
        &i,
        &o,
        Path::new("--policy"),
        Path::new("bsd-lefty"),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("bsd-right"), "{}", text(&r.stderr));
}

#[test]
fn capture_time_drives_the_timeout() {
    let dir = scratch_dir();
    let d = ipv4(8, 0, &pattern(48, 4));
    // The first half at 0 s, the second at 31 s: the queue expired at 30 s
    // (with the offset-0 fragment in it: the kernel would send ICMP time
    // exceeded), so the second half starts a new queue that never completes.
    let input = vec![
        (0, frag4(&d, 0, 24, true)),
        (31 * SEC, frag4(&d, 24, 24, false)),
    ];
    let (i, o) = (dir.join("in.pcap"), dir.join("out.pcap"));
    write_pcap(&i, DataLink::RAW, &input);
    let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
    assert_eq!(v["ReasmTimeout"], 1);
    assert_eq!(v["timeouts"], 1);
    assert_eq!(v["icmp_time_exceeded"], 1);
    assert_eq!(v["ReasmOKs"], 0);
    assert_eq!(v["incomplete_at_end"], 1);
    assert!(read_pcap(&o).1.is_empty());
    // 29 s apart: in time.
    write_pcap(
        &i,
        DataLink::RAW,
        &[(0, input[0].1.clone()), (29 * SEC, input[1].1.clone())],
    );
    let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
    assert_eq!(v["ReasmOKs"], 1);
    assert_eq!(v["ReasmTimeout"], 0);
}

#[test]
fn malformed_packets_are_counted_and_passed_or_dropped() {
    let dir = scratch_dir();
    let mut bad = ipv4(1, 0x2000, &[0u8; 16]);
    bad[10] ^= 0xff; // header checksum
    let truncated = ipv4(2, 0, &[1u8; 40])[..30].to_vec();
    let good = ipv4(3, 0, b"fine");
    let (i, o) = (dir.join("in.pcap"), dir.join("out.pcap"));
    write_pcap(
        &i,
        DataLink::RAW,
        &[(1, bad.clone()), (2, truncated.clone()), (3, good.clone())],
    );
    let r = run(&[Path::new("reasm"), &i, &o, Path::new("--json")]);
    let v = json(&r);
    assert_eq!(v["malformed"], 2);
    assert_eq!(v["malformed_action"], "passed");
    assert!(text(&r.stderr).contains("2 malformed IP packet(s) passed through"));
    let (_, out) = read_pcap(&o);
    assert_eq!(
        out.into_iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![bad, truncated, good.clone()]
    );
    let v = json(&run(&[
        Path::new("reasm"),
        &i,
        &o,
        Path::new("--json"),
        Path::new("--drop-malformed"),
    ]));
    assert_eq!(v["malformed"], 2);
    assert_eq!(v["packets_out"], 1);
    assert_eq!(read_pcap(&o).1, vec![(3, good)]);
}

#[test]
fn captures_with_a_short_snaplen_pass_cut_packets_through() {
    let dir = scratch_dir();
    let d = ipv4(0x55, 0, &pattern(3000, 2));
    let cut = eth(1, None, 0x0800, &frag4(&d, 0, 1480, true));
    let small = eth(2, None, 0x0800, &ipv4(0x56, 0, b"short"));
    let (i, o) = (dir.join("in.pcap"), dir.join("out.pcap"));
    let hdr = PcapHeader {
        datalink: DataLink::ETHERNET,
        snaplen: 96,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(File::create(&i).unwrap(), hdr).unwrap();
    // As `tcpdump -s 96` records them: 96 bytes kept of a 1514-byte frame.
    w.write_packet(&PcapPacket::new(
        Duration::from_secs(1),
        cut.len() as u32,
        &cut[..96],
    ))
    .unwrap();
    w.write_packet(&PcapPacket::new(
        Duration::from_secs(2),
        small.len() as u32,
        &small,
    ))
    .unwrap();
    drop(w);
    let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
    assert_eq!(v["malformed"], 1);
    assert_eq!(v["packets_out"], 2);
    let mut r = PcapReader::new(File::open(&o).unwrap()).unwrap();
    let first = r.next_packet().unwrap().unwrap();
    assert_eq!(first.orig_len as usize, cut.len(), "wire length kept");
    assert!(first.data[..] == cut[..96]);
    assert!(r.next_packet().unwrap().unwrap().data[..] == small[..]);
}

#[test]
fn pcapng_in_pcapng_out() {
    let dir = scratch_dir();
    let d = ipv4(0x4242, 0, &pattern(600, 5));
    let (i, o) = (dir.join("in.pcapng"), dir.join("out.pcapng"));
    {
        let mut w = PcapNgWriter::new(File::create(&i).unwrap()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535))
            .unwrap();
        for (k, (off, len, mf)) in [(304, 296, false), (0, 304, true)].into_iter().enumerate() {
            let data = eth(k as u8, None, 0x0800, &frag4(&d, off, len, mf));
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                // Default resolution: microseconds.
                timestamp: Duration::from_nanos(1_700_000_000_000_000 + k as u64),
                original_len: data.len() as u32,
                data: Cow::Owned(data),
                options: vec![],
            })
            .unwrap();
        }
    }
    let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
    assert_eq!(v["input_format"], "pcapng");
    assert_eq!(v["ReasmOKs"], 1);
    let mut r = PcapNgReader::new(File::open(&o).unwrap()).unwrap();
    let mut packets = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(e) = b.unwrap() {
            packets.push((e.timestamp, e.data.into_owned()));
        }
    }
    assert_eq!(r.interfaces().len(), 1);
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].0, Duration::from_nanos(1_700_000_000_000_001));
    assert!(packets[0].1[14..] == d[..]);
}

#[test]
fn bad_files_exit_2_with_a_message() {
    let dir = scratch_dir();
    let o = dir.join("out.pcap");
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all, sorry").unwrap();
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let wifi = dir.join("wifi.pcap");
    write_pcap(&wifi, DataLink::IEEE802_11, &[(1, vec![0u8; 24])]);
    let truncated = dir.join("truncated.pcap");
    write_pcap(&truncated, DataLink::RAW, &[(1, ipv4(1, 0, &[0u8; 100]))]);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 50]).unwrap();
    let cases: [(&Path, &str); 5] = [
        (&dir.join("missing.pcap"), "cannot open"),
        (&garbage, "not a pcap"),
        (&empty, "empty file"),
        (&wifi, "link type 105"),
        (&truncated, "packet 1"),
    ];
    for (input, msg) in cases {
        for cmd in [&["reasm"][..], &["frag", "--mtu", "1280"][..]] {
            let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|s| s.as_ref()).collect();
            args.push(input.as_os_str());
            args.push(o.as_os_str());
            let r = run(&args);
            let err = text(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{cmd:?} {input:?}: {err}");
            assert!(err.contains(msg), "{cmd:?} {input:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    // The output over the input.
    let r = run(&[Path::new("reasm"), &wifi, &wifi]);
    assert_eq!(r.status.code(), Some(2));
    // An output that cannot be written: exit 1.
    let i = dir.join("ok.pcap");
    write_pcap(&i, DataLink::RAW, &[(1, ipv4(1, 0, b"x"))]);
    let r = run(&[Path::new("reasm"), &i, &dir.join("no/such/dir/out.pcap")]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r.stderr));
}

// ---------------------------------------------------------------------
// htb frag
// ---------------------------------------------------------------------

#[test]
fn frag_cuts_as_linux_and_reasm_undoes_it() {
    let dir = scratch_dir();
    let big = ipv4(0x0101, 0, &pattern(3980, 6)); // 4000 bytes
    let df = ipv4(0x0202, 0x4000, &pattern(2000, 7));
    let small = ipv4(0x0303, 0, &pattern(100, 8));
    let input = vec![
        (1, eth(1, Some(5), 0x0800, &big)),
        (2, eth(2, None, 0x0800, &df)),
        (3, eth(3, None, 0x0800, &small)),
    ];
    let (i, o) = (dir.join("in.pcap"), dir.join("frag.pcap"));
    write_pcap(&i, DataLink::ETHERNET, &input);
    let r = run(&[
        Path::new("frag"),
        Path::new("--mtu"),
        Path::new("1500"),
        &i,
        &o,
        Path::new("--json"),
    ]);
    let v = json(&r);
    assert_eq!(v["FragOKs"], 1);
    assert_eq!(v["FragCreates"], 3);
    assert_eq!(v["FragFails"], 1);
    assert_eq!(v["not_fragmented_df"], 1);
    assert_eq!(v["fit"], 1);
    assert!(text(&r.stderr).contains("DF set"));
    let (_, out) = read_pcap(&o);
    assert_eq!(out.len(), 5);
    // (1500 - 20) & ~7 = 1480 data bytes per fragment: 1480, 1480, 1020.
    for (k, (off, len, mf)) in [(0, 1480, true), (1480, 1480, true), (2960, 1020, false)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(out[k].0, 1);
        assert_eq!(&out[k].1[..18], &input[0].1[..18], "link header copied");
        assert!(out[k].1[18..] == frag4(&big, off, len, mf), "fragment {k}");
    }
    assert_eq!(out[3], input[1]);
    assert_eq!(out[4], input[2]);
    // Reassembling the result gives the input back.
    let back = dir.join("back.pcap");
    let v = json(&run(&[Path::new("reasm"), &o, &back, Path::new("--json")]));
    assert_eq!(v["ReasmOKs"], 1);
    assert_eq!(read_pcap(&back).1, input);
    // --ignore-df fragments the DF packet too.
    let v = json(&run(&[
        Path::new("frag"),
        Path::new("--mtu"),
        Path::new("1500"),
        Path::new("--ignore-df"),
        &i,
        &o,
        Path::new("--json"),
    ]));
    assert_eq!(v["FragOKs"], 2);
    assert_eq!(v["FragCreates"], 5);
    assert_eq!(v["FragFails"], 0);
}

#[test]
fn frag_ipv6_with_given_ids_and_minimum_mtu() {
    let dir = scratch_dir();
    let p = ipv6(17, &pattern(3000, 9));
    let (i, o) = (dir.join("in.pcap"), dir.join("out.pcap"));
    write_pcap(&i, DataLink::RAW, &[(1, p.clone()), (2, p.clone())]);
    let v = json(&run(&[
        Path::new("frag"),
        Path::new("--mtu"),
        Path::new("1280"),
        Path::new("--ipv6-id"),
        Path::new("7"),
        &i,
        &o,
        Path::new("--json"),
    ]));
    assert_eq!(v["FragOKs"], 2);
    let (_, out) = read_pcap(&o);
    // (1280 - 40 - 8) & ~7 = 1232 data bytes: 1232, 1232, 536 per packet.
    assert_eq!(out.len(), 6);
    let ids: Vec<u32> = out
        .iter()
        .map(|(_, f)| u32::from_be_bytes([f[44], f[45], f[46], f[47]]))
        .collect();
    assert_eq!(ids, [7, 7, 7, 8, 8, 8]);
    assert!(out[1].1 == frag6(&p, 1232, 1232, true, 7));
    assert!(out[5].1 == frag6(&p, 2464, 536, false, 8));
    // Below 1280, IPv6 is not fragmented: counted, passed through.
    let v = json(&run(&[
        Path::new("frag"),
        Path::new("--mtu"),
        Path::new("1000"),
        &i,
        &o,
        Path::new("--json"),
    ]));
    assert_eq!(v["FragFails"], 2);
    assert_eq!(v["not_fragmented_mtu_too_small"], 2);
    assert_eq!(read_pcap(&o).1.len(), 2);
    // An MTU below 68 is refused by the argument parser.
    let r = run(&[
        Path::new("frag"),
        Path::new("--mtu"),
        Path::new("60"),
        &i,
        &o,
    ]);
    assert_eq!(r.status.code(), Some(2));
}

// ---------------------------------------------------------------------
// htb bench reasm | frag, help
// ---------------------------------------------------------------------

#[test]
fn bench_commands_print_one_json_line() {
    let v = json(&run(&["bench", "reasm", "--count", "2000"]));
    assert_eq!(v["datagrams"], 2000);
    assert_eq!(v["fragments"], 6000);
    assert!(v["ns_per_fragment"].as_f64().unwrap() > 0.0);
    assert!(v["mfragments_per_s"].as_f64().unwrap() > 0.0);
    let r = run(&[
        "bench",
        "reasm",
        "--interleave",
        "256",
        "--count",
        "300",
        "--policy",
        "bsd",
        "--datagram-size",
        "8000",
    ]);
    let v = json(&r);
    assert!(!text(&r.stderr).contains("warning"), "{}", text(&r.stderr));
    assert_eq!(v["datagrams"], 512); // rounded up to whole rounds of 256
    assert_eq!(v["fragments"], 512 * 6);
    assert_eq!(v["policy"], "bsd");
    let r = run(&["bench", "reasm", "--datagram-size", "1000"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("nothing to reassemble"));
    let v = json(&run(&[
        "bench",
        "frag",
        "--count",
        "1000",
        "--datagram-size",
        "8000",
    ]));
    assert_eq!(v["fragments"], 6000);
    assert!(v["ns_per_fragment"].as_f64().unwrap() > 0.0);
}

#[test]
fn help_has_examples() {
    for cmd in [
        &["reasm", "--help"][..],
        &["frag", "--help"],
        &["bench", "reasm", "--help"],
        &["bench", "frag", "--help"],
    ] {
        let r = run(cmd);
        ok(&r);
        let s = text(&r.stdout);
        assert!(s.contains("Example"), "{cmd:?}: {s}");
    }
    let s = text(&run(&["reasm", "--help"]).stdout);
    assert!(s.contains("--drop-malformed") && s.contains("passed") && s.contains("through"));
}

#[test]
fn the_example_capture_reassembles_as_its_generator_says() {
    // examples/fragments.pcap is written by examples/make_fragments_pcap.py,
    // whose docstring lists the packets and these outcomes.
    let i = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fragments.pcap");
    let dir = scratch_dir();
    let o = dir.join("out.pcap");
    let v = json(&run(&[Path::new("reasm"), &i, &o, Path::new("--json")]));
    assert_eq!(v["packets_in"], 13);
    assert_eq!(v["packets_out"], 6);
    assert_eq!(v["ReasmReqds"], 10);
    assert_eq!(v["ReasmOKs"], 3);
    assert_eq!(v["ReasmOverlaps"], 1);
    assert_eq!(v["ipv6"]["ReasmOKs"], 1);
    assert_eq!(v["fragments_dropped"]["duplicate"], 1);
    let (_, out) = read_pcap(&o);
    let lens: Vec<usize> = out.iter().map(|p| p.1.len()).collect();
    // UDP 14 + 20 + 40, ARP padded to 60, A = 14 + 4000, echo 14 + 40 + 12,
    // B = 14 + 40 + 2000 (fragment header gone), D = 14 + 1500.
    assert_eq!(lens, [74, 60, 4014, 66, 2054, 1514]);
    // Datagram C under the IDS policies: bytes 8..16 from the old or the
    // new fragment.
    for (policy, mid) in [("first", b'a'), ("last", b'b')] {
        let v = json(&run(&[
            Path::new("reasm"),
            &i,
            &o,
            Path::new("--json"),
            Path::new("--policy"),
            Path::new(policy),
        ]));
        assert_eq!(v["ReasmOKs"], 4, "{policy}");
        let (_, out) = read_pcap(&o);
        let c = out
            .iter()
            .find(|p| p.1.len() == 14 + 20 + 24)
            .expect("datagram C");
        assert_eq!(&c.1[34 + 8..34 + 16], &[mid; 8], "{policy}");
    }
}
