//! The Rust side of the C ABI cost comparison: the loop of
//! `htb-ffi/bench/shaper_bench.c` (= the criterion bench `unthrottled/1024`
//! of `benches/`) calling the core crate directly, timed the same way
//! (minimum and median of 10 rounds). It runs twice: with bare `u32`
//! packets, as the criterion bench does, and with 16-byte `{ptr, len}`
//! packets, which is what the C ABI queues.
//!
//! ```sh
//! cargo run --release -p htb-ffi --example rust_reference [STEPS]
//! make -C htb-ffi bench            # the C figure
//! ```

use std::hint::black_box;
use std::time::Instant;

use htb_core::{ClassConfig, ClassId, Htb, Packet, QdiscConfig};

const HANDLE: u16 = 1;
const PKT_LEN: u32 = 64;
const NS_PER_STEP: u64 = 10;
const RATE_100GBIT: u64 = 100_000_000_000 / 8;
const INNER: u16 = 32;
const PER_INNER: u16 = 32;
const REPS: usize = 10;

/// What the C ABI stores per packet.
#[derive(Clone, Copy)]
struct PtrPacket {
    _ptr: *const u8,
    len: u32,
}

impl Packet for PtrPacket {
    fn len(&self) -> u32 {
        self.len
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (((r >> 32) * n as u64) >> 32) as u32
    }
}

fn run<P: Packet + Copy>(what: &str, pkt: P, steps: u64) {
    let class = || {
        ClassConfig::new(RATE_100GBIT)
            .ceil(RATE_100GBIT)
            .burst(1_000_000)
            .cburst(1_000_000)
    };
    let mut q: Htb<P> = Htb::new(QdiscConfig::new(HANDLE));
    let id = |m: u16| ClassId::new(HANDLE, m);
    q.add_class(id(1), id(0), &class(), 0).unwrap();
    for i in 0..INNER {
        q.add_class(id(2 + i), id(1), &class(), 0).unwrap();
    }
    let first = 2 + INNER;
    let leaves = INNER as u32 * PER_INNER as u32;
    for i in 0..INNER {
        for j in 0..PER_INNER {
            let leaf = id(first + i * PER_INNER + j);
            q.add_class(leaf, id(2 + i), &class().quantum(1514), 0)
                .unwrap();
        }
    }
    for _ in 0..4 {
        for n in 0..leaves {
            assert!(q.enqueue(pkt, id(first + n as u16)).is_ok());
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = 0u64;
    let (mut empty, mut drops) = (0u64, 0u64);
    let per = steps / REPS as u64;
    let mut ns: Vec<f64> = (0..REPS)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..per {
                let leaf = id(first + rng.below(leaves) as u16);
                if q.enqueue(pkt, leaf).is_err() {
                    drops += 1;
                }
                now += NS_PER_STEP;
                match q.dequeue(now) {
                    Some(p) => {
                        black_box(p);
                    }
                    None => empty += 1,
                }
            }
            t0.elapsed().as_nanos() as f64 / per.max(1) as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    assert_eq!((empty, drops), (0, 0), "the workload must not throttle");
    println!(
        "Rust unthrottled/{leaves} ({what}): min {:.2} ns/packet, median {:.2} ns/packet \
         ({REPS} rounds of {per} steps)",
        ns[0],
        ns[REPS / 2]
    );
}

fn main() {
    let steps = std::env::args()
        .nth(1)
        .map_or(20_000_000, |s| s.parse().expect("STEPS"));
    run("u32 packets", PKT_LEN, steps);
    static DUMMY: u8 = 0;
    let p = PtrPacket {
        _ptr: &DUMMY,
        len: PKT_LEN,
    };
    run("16-byte ptr+len packets", p, steps);
}
