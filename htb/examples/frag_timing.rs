//! A quick timing loop for `htb::frag`: ns per fragment when cutting IPv4
//! datagrams into a reused buffer (`Fragmenter::next_into`, no allocation),
//! for the target (≤ 30 ns per fragment; DPDK's copying
//! fragmenter: ~32 ns). The criterion bench in `benches/` is the reference;
//! this is the quick check.
//!
//! Run: `cargo run --release -p htb --example frag_timing [ROUNDS]`

use std::hint::black_box;
use std::time::Instant;

use htb::frag::{FragOptions, Fragmenter};

fn ipv4(data_len: usize) -> Vec<u8> {
    let total = 20 + data_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[198, 18, 0, 1]);
    p[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let c = htb::wire::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    for (i, b) in p[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

fn ipv6(data_len: usize) -> Vec<u8> {
    let mut p = vec![0u8; 40 + data_len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(data_len as u16).to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p
}

/// Median over `rounds` of ns per fragment for `iters` datagrams each.
fn time(name: &str, packet: &[u8], opts: FragOptions, rounds: usize) {
    let mut buf = vec![0u8; opts.mtu];
    let frags_per = Fragmenter::new(packet, opts).unwrap().remaining();
    let iters = 200_000;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..iters {
            let mut f = Fragmenter::new(black_box(packet), opts).unwrap();
            while let Some(n) = f.next_into(&mut buf).unwrap() {
                bytes += n;
                black_box(&mut buf);
            }
        }
        black_box(bytes);
        let ns = start.elapsed().as_nanos() as f64 / (iters * frags_per) as f64;
        samples.push(ns);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: {frags_per} fragments, median {:.1} ns/fragment (min {:.1}, max {:.1})",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1]
    );
}

/// The floor: the same bytes copied with plain `copy_from_slice` (header +
/// data piece per fragment), no header work.
fn floor(name: &str, packet: &[u8], mtu: usize, rounds: usize) {
    let mut buf = vec![0u8; mtu];
    let hlen = 20;
    let room = (mtu - hlen) & !7;
    let pieces: Vec<(usize, usize)> = (hlen..packet.len())
        .step_by(room)
        .map(|s| (s, (packet.len() - s).min(room)))
        .collect();
    let iters = 200_000;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iters {
            let p = black_box(packet);
            for &(s, l) in &pieces {
                buf[..hlen].copy_from_slice(&p[..hlen]);
                buf[hlen..hlen + l].copy_from_slice(&p[s..s + l]);
                black_box(&mut buf);
            }
        }
        samples.push(start.elapsed().as_nanos() as f64 / (iters * pieces.len()) as f64);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: memcpy floor, median {:.1} ns/fragment (min {:.1})",
        samples[samples.len() / 2],
        samples[0]
    );
}

/// The per-datagram part alone: `Fragmenter::new` (validation and plan).
fn setup(name: &str, packet: &[u8], opts: FragOptions, rounds: usize) {
    let iters = 1_000_000;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(Fragmenter::new(black_box(packet), opts).unwrap());
        }
        samples.push(start.elapsed().as_nanos() as f64 / iters as f64);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: Fragmenter::new alone, median {:.1} ns/datagram (min {:.1})",
        samples[samples.len() / 2],
        samples[0]
    );
}

fn main() {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    // 4000 and 8000 bytes of IP payload (the DPDK measurement's datagrams).
    time(
        "IPv4 4000 B @1500",
        &ipv4(4000 - 20),
        FragOptions::new(1500),
        rounds,
    );
    time(
        "IPv4 8000 B @1500",
        &ipv4(8000 - 20),
        FragOptions::new(1500),
        rounds,
    );
    floor("IPv4 4000 B @1500", &ipv4(4000 - 20), 1500, rounds);
    floor("IPv4 8000 B @1500", &ipv4(8000 - 20), 1500, rounds);
    setup(
        "IPv4 4000 B @1500",
        &ipv4(4000 - 20),
        FragOptions::new(1500),
        rounds,
    );
    let v6 = FragOptions {
        ipv6_id: Some(7),
        ..FragOptions::new(1500)
    };
    time("IPv6 8000 B @1500", &ipv6(8000 - 40), v6, rounds);
}
