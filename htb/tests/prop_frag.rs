//! Property tests of `htb::frag`: for random IPv4 datagrams (random valid
//! options, DF, inputs that are themselves fragments) and IPv6 datagrams
//! (random extension header chains), at random MTUs:
//!
//! * a packet that fits comes back unchanged; otherwise every fragment is at
//!   most the MTU, every non-last fragment carries the largest multiple of 8
//!   that fits, offsets are contiguous from the input's own offset, and the
//!   data concatenated is the original data;
//! * headers are consistent: IPv4 fields kept, total length and checksum
//!   right, MF as the kernel sets it, later fragments' options reduced to
//!   the copied ones (known from the construction); IPv6 per-fragment part
//!   repeated with the next header rewritten to 44, fragment header right;
//! * the DF and MTU errors arise exactly when they should;
//! * arbitrary or mutated bytes never panic.
//!
//! Seeds: `HTB_PROP_SEED` (printed), case count `QUICKCHECK_TESTS`.

#[path = "support/frag_gen.rs"]
mod frag_gen;

use frag_gen::{V4Case, V6Case, range};
use htb::frag::{FragError, FragOptions, Fragmenter};
use htb::wire::checksum;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

fn qc(prop: u64) -> QuickCheck {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let base: u64 = std::env::var("HTB_PROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xf7a9);
    println!("HTB_PROP_SEED={base} (frag property {prop})");
    let seed = base.wrapping_add(prop.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    QuickCheck::new()
        .tests(tests)
        .max_tests(tests * 10)
        .rng(Gen::from_size_and_seed(100, seed))
}

/// Runs the fragmenter through `next_into` (one reused buffer) and checks
/// `remaining`/`next_len` along the way.
fn run(packet: &[u8], opts: FragOptions) -> Result<(Vec<Vec<u8>>, Option<u32>), FragError> {
    let mut f = Fragmenter::new(packet, opts)?;
    let id = f.ipv6_id();
    let announced = f.remaining();
    let mut buf = vec![0u8; 70_000];
    let mut out = Vec::new();
    while let Some(n) = f.next_into(&mut buf)? {
        out.push(buf[..n].to_vec());
        assert_eq!(f.remaining(), announced - out.len());
    }
    assert_eq!(out.len(), announced);
    Ok((out, id))
}

/// Fails the case with a message, prefixed by the `ctx` summary in scope
/// (quickcheck does not print the packet, which would be kilobytes).
macro_rules! ensure {
    ($ctx:ident, $c:expr, $($m:tt)*) => {
        if !$c {
            return TestResult::error(format!("{}: {}", $ctx, format!($($m)*)));
        }
    };
}

fn v4_props(c: V4Case) -> TestResult {
    let p = &c.packet;
    let hlen = c.hlen();
    let total = p.len();
    let ff = c.frag_field();
    let opts = FragOptions {
        ignore_df: c.ignore_df,
        ..FragOptions::new(c.mtu)
    };
    let res = run(p, opts);
    let ctx = format!(
        "IPv4 len {total} IHL {hlen} MTU {} frag field {ff:#06x} ignore_df {}",
        c.mtu, c.ignore_df
    );
    if total <= c.mtu {
        ensure!(
            ctx,
            matches!(&res, Ok((f, _)) if f.len() == 1 && f[0] == *p),
            "fits but {res:?}"
        );
        return TestResult::passed();
    }
    if ff & 0x4000 != 0 && !c.ignore_df {
        ensure!(
            ctx,
            res == Err(FragError::DontFragment { mtu: c.mtu }),
            "DF: {res:?}"
        );
        return TestResult::passed();
    }
    if c.mtu < hlen + 8 {
        ensure!(
            ctx,
            res == Err(FragError::MtuTooSmall {
                mtu: c.mtu,
                min: hlen + 8
            }),
            "tiny MTU: {res:?}"
        );
        return TestResult::passed();
    }
    let frags = match res {
        Ok((f, _)) => f,
        Err(e) => return TestResult::error(format!("unexpected {e:?}")),
    };
    let room = (c.mtu - hlen) & !7;
    let base = usize::from(ff & 0x1fff) * 8;
    let input_mf = ff & 0x2000 != 0;
    let mut off = base;
    let mut data = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        let last = i + 1 == frags.len();
        ensure!(
            ctx,
            f.len() <= c.mtu,
            "fragment {i} is {} > {}",
            f.len(),
            c.mtu
        );
        ensure!(ctx, f[0] == p[0], "version/IHL");
        ensure!(ctx, checksum(&f[..hlen]) == 0, "checksum of fragment {i}");
        ensure!(
            ctx,
            usize::from(u16::from_be_bytes([f[2], f[3]])) == f.len(),
            "total length of fragment {i}"
        );
        ensure!(ctx, f[1] == p[1] && f[4..6] == p[4..6], "TOS/id");
        ensure!(
            ctx,
            f[8..10] == p[8..10] && f[12..20] == p[12..20],
            "TTL/proto/addresses"
        );
        let opts_want = if i == 0 || base != 0 {
            &p[20..hlen]
        } else {
            &c.later_options[..]
        };
        ensure!(ctx, &f[20..hlen] == opts_want, "options of fragment {i}");
        let fo = u16::from_be_bytes([f[6], f[7]]);
        ensure!(ctx, fo & 0xc000 == 0, "DF/reserved cleared");
        ensure!(
            ctx,
            (fo & 0x2000 != 0) == (!last || input_mf),
            "MF of fragment {i}"
        );
        ensure!(
            ctx,
            usize::from(fo & 0x1fff) * 8 == off,
            "offset of fragment {i}"
        );
        let len = f.len() - hlen;
        if !last {
            ensure!(
                ctx,
                len == room,
                "non-last fragment {i} carries {len}, room {room}"
            );
            ensure!(ctx, len % 8 == 0, "non-last length");
        } else {
            ensure!(ctx, len > 0 && len <= c.mtu - hlen, "last length {len}");
        }
        off += len;
        data.extend_from_slice(&f[hlen..]);
    }
    ensure!(ctx, frags.len() >= 2, "fragmented into one piece");
    ensure!(ctx, data == p[hlen..], "data differs");
    TestResult::passed()
}

fn v6_props(c: V6Case) -> TestResult {
    let p = &c.packet;
    let total = p.len();
    let opts = FragOptions {
        ipv6_id: c.id,
        ..FragOptions::new(c.mtu)
    };
    let res = run(p, opts);
    let ctx = format!("IPv6 len {total} per-fragment {} MTU {}", c.unfrag, c.mtu);
    if total <= c.mtu {
        ensure!(
            ctx,
            matches!(&res, Ok((f, _)) if f.len() == 1 && f[0] == *p),
            "fits but {res:?}"
        );
        return TestResult::passed();
    }
    let min = (c.unfrag + 16).max(1280);
    if c.mtu < min {
        ensure!(
            ctx,
            res == Err(FragError::MtuTooSmall { mtu: c.mtu, min }),
            "tiny MTU: {res:?}"
        );
        return TestResult::passed();
    }
    let (frags, id) = match res {
        Ok(r) => r,
        Err(e) => return TestResult::error(format!("unexpected {e:?}")),
    };
    let id = id.expect("an IPv6 id");
    if let Some(want) = c.id {
        ensure!(ctx, id == want, "id {id} != {want}");
    }
    let u = c.unfrag;
    let room = (c.mtu - u - 8) & !7;
    let mut off = 0;
    let mut data = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        let last = i + 1 == frags.len();
        ensure!(ctx, f.len() <= c.mtu, "fragment {i} too big");
        ensure!(
            ctx,
            usize::from(u16::from_be_bytes([f[4], f[5]])) + 40 == f.len(),
            "payload length"
        );
        ensure!(
            ctx,
            f[..4] == p[..4] && f[6..c.nh_off] == p[6..c.nh_off],
            "header"
        );
        ensure!(
            ctx,
            f[c.nh_off] == 44,
            "next header not rewritten at {}",
            c.nh_off
        );
        ensure!(
            ctx,
            f[c.nh_off + 1..u] == p[c.nh_off + 1..u],
            "per-fragment part"
        );
        let fh = &f[u..u + 8];
        ensure!(
            ctx,
            fh[0] == p[c.nh_off] && fh[1] == 0,
            "fragment header nh"
        );
        ensure!(ctx, fh[4..8] == id.to_be_bytes(), "fragment header id");
        let o = u16::from_be_bytes([fh[2], fh[3]]);
        ensure!(ctx, o & 6 == 0, "reserved bits");
        ensure!(ctx, (o & 1 == 0) == last, "M of fragment {i}");
        ensure!(ctx, usize::from(o & !7) == off, "offset of fragment {i}");
        let len = f.len() - u - 8;
        if !last {
            ensure!(ctx, len == room && len % 8 == 0, "non-last length {len}");
        } else {
            ensure!(ctx, len > 0 && len <= c.mtu - u - 8, "last length {len}");
        }
        off += len;
        data.extend_from_slice(&f[u + 8..]);
    }
    ensure!(ctx, frags.len() >= 2, "one piece");
    ensure!(ctx, data == p[u..], "data differs");
    TestResult::passed()
}

#[test]
fn ipv4_fragments_are_linux_shaped() {
    qc(1).quickcheck(v4_props as fn(V4Case) -> TestResult);
}

#[test]
fn ipv6_fragments_are_rfc8200_shaped() {
    qc(2).quickcheck(v6_props as fn(V6Case) -> TestResult);
}

/// Random bytes, or a valid packet with a few bytes changed, at a random MTU.
#[derive(Clone, Debug)]
struct Junk {
    bytes: Vec<u8>,
    mtu: usize,
}

impl Arbitrary for Junk {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut bytes = match u8::arbitrary(g) % 4 {
            0 => Vec::<u8>::arbitrary(g),
            1 => V4Case::arbitrary(g).packet,
            _ => V6Case::arbitrary(g).packet,
        };
        if !bytes.is_empty() {
            for _ in 0..range(g, 0, 4) {
                let i = usize::arbitrary(g) % bytes.len().min(120);
                bytes[i] = u8::arbitrary(g);
            }
            if bool::arbitrary(g) {
                let keep = usize::arbitrary(g) % (bytes.len() + 1);
                bytes.truncate(keep);
            }
        }
        if bool::arbitrary(g) {
            // Force a plausible version nibble.
            if let Some(b) = bytes.first_mut() {
                *b = (*b & 0x0f) | if bool::arbitrary(g) { 0x40 } else { 0x60 };
            }
        }
        Junk {
            bytes,
            mtu: usize::arbitrary(g) % 3000,
        }
    }
}

fn junk_never_panics(j: Junk) -> TestResult {
    let opts = FragOptions {
        ignore_df: j.mtu % 2 == 0,
        ipv6_id: None,
        mtu: j.mtu,
    };
    match Fragmenter::new(&j.bytes, opts) {
        Err(FragError::BufferTooSmall { .. }) => TestResult::error("BufferTooSmall from new"),
        Err(_) => TestResult::passed(),
        Ok(f) => {
            let ctx = format!(
                "{} bytes {:02x?}… MTU {}",
                j.bytes.len(),
                &j.bytes[..j.bytes.len().min(8)],
                j.mtu
            );
            let n = f.remaining();
            let frags: Vec<Vec<u8>> = f.collect();
            ensure!(
                ctx,
                frags.len() == n && n >= 1,
                "count {n} vs {}",
                frags.len()
            );
            if n == 1 {
                ensure!(ctx, j.bytes.starts_with(&frags[0]), "whole packet altered");
            } else {
                ensure!(
                    ctx,
                    frags.iter().all(|f| f.len() <= j.mtu),
                    "fragment > MTU"
                );
            }
            TestResult::passed()
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    qc(3).quickcheck(junk_never_panics as fn(Junk) -> TestResult);
}
