//! Golden tests of `htb::frag` built from what the Linux kernel was observed
//! to put on the wire (reassembly-anchors.md §3, [oracle] facts): fragment
//! sizes, offsets, flags, option rewriting, byte for byte; and the errors
//! (DF, tiny MTU, malformed input), which must never panic.

use htb::frag::{FragError, FragOptions, Fragmenter, fragment};
use htb::wire::{WireError, checksum};

const SRC4: [u8; 4] = [198, 18, 0, 1];
const DST4: [u8; 4] = [198, 18, 0, 2];

/// Payload bytes that differ from position to position, so a misplaced copy
/// shows.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// An IPv4 packet: `options` (already padded to 4), fragment field `frag`,
/// `data` after the header; valid checksum.
fn ipv4(options: &[u8], frag: u16, id: u16, data: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let hlen = 20 + options.len();
    let total = hlen + data.len();
    let mut p = vec![0u8; total];
    p[0] = 0x40 | (hlen / 4) as u8;
    p[1] = 0x00;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&SRC4);
    p[16..20].copy_from_slice(&DST4);
    p[20..hlen].copy_from_slice(options);
    let c = checksum(&p[..hlen]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[hlen..].copy_from_slice(data);
    p
}

/// (data length, offset in bytes, MF, DF) of each IPv4 fragment, after
/// checking that its header is consistent: total length = buffer length,
/// checksum verifies.
fn v4_shape(frags: &[Vec<u8>]) -> Vec<(usize, usize, bool, bool)> {
    frags
        .iter()
        .map(|f| {
            let hlen = usize::from(f[0] & 0x0f) * 4;
            assert_eq!(usize::from(u16::from_be_bytes([f[2], f[3]])), f.len());
            assert_eq!(checksum(&f[..hlen]), 0, "header checksum");
            let fo = u16::from_be_bytes([f[6], f[7]]);
            (
                f.len() - hlen,
                usize::from(fo & 0x1fff) * 8,
                fo & 0x2000 != 0,
                fo & 0x4000 != 0,
            )
        })
        .collect()
}

/// The data bytes of every fragment, concatenated.
fn v4_data(frags: &[Vec<u8>]) -> Vec<u8> {
    frags
        .iter()
        .flat_map(|f| f[usize::from(f[0] & 0x0f) * 4..].to_vec())
        .collect()
}

/// Expected shape for a list of data lengths starting at `base`, with MF on
/// all but the last (or on all when `all_mf`).
fn expect(lens: &[usize], base: usize, all_mf: bool) -> Vec<(usize, usize, bool, bool)> {
    let mut off = base;
    lens.iter()
        .enumerate()
        .map(|(i, &l)| {
            let r = (l, off, all_mf || i + 1 < lens.len(), false);
            off += l;
            r
        })
        .collect()
}

/// Fragments through `next_into` into one reused buffer, and checks that
/// `remaining`/`next_len` announced each fragment and that the iterator
/// gives the same bytes.
fn frag_all(p: &[u8], opts: FragOptions) -> Result<Vec<Vec<u8>>, FragError> {
    let mut f = Fragmenter::new(p, opts)?;
    let iter_copy: Vec<Vec<u8>> = f.clone().collect();
    let mut buf = vec![0u8; 70_000];
    let mut out = Vec::new();
    loop {
        let rem = f.remaining();
        let want = f.next_len();
        match f.next_into(&mut buf)? {
            Some(n) => {
                assert_eq!(want, Some(n));
                assert!(rem >= 1);
                assert_eq!(f.remaining(), rem - 1);
                out.push(buf[..n].to_vec());
            }
            None => {
                assert_eq!((rem, want), (0, None));
                break;
            }
        }
    }
    assert_eq!(out, iter_copy);
    Ok(out)
}

// ---------------------------------------------------------------- IPv4 sizes

#[test]
fn v4_mtu_1500_udp_4000_is_1480_1480_1048_byte_for_byte() {
    let data = payload(4008);
    let p = ipv4(&[], 0, 0x1234, &data);
    let f = frag_all(&p, FragOptions::new(1500)).unwrap();
    assert_eq!(v4_shape(&f), expect(&[1480, 1480, 1048], 0, false));
    // The headers, byte for byte except the checksum (checked above).
    let hdr = |tot: u16, fo: u16| {
        let mut h = vec![0x45, 0x00];
        h.extend_from_slice(&tot.to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]);
        h.extend_from_slice(&fo.to_be_bytes());
        h.extend_from_slice(&[64, 17]);
        h
    };
    assert_eq!(f[0][..10], hdr(1500, 0x2000)[..]);
    assert_eq!(f[1][..10], hdr(1500, 0x2000 | 185)[..]);
    assert_eq!(f[2][..10], hdr(1068, 370)[..]);
    for fr in &f {
        assert_eq!(fr[12..16], SRC4);
        assert_eq!(fr[16..20], DST4);
    }
    // Checksums worked out independently (RFC 1071 by hand, outside this
    // crate) for these exact headers.
    assert_eq!(f[0][10..12], [0xb6, 0xb5]);
    assert_eq!(f[1][10..12], [0xb5, 0xfc]);
    assert_eq!(f[2][10..12], [0xd6, 0xf3]);
    assert_eq!(v4_data(&f), data);
}

#[test]
fn v4_mtu_1000_udp_4000_is_976x4_plus_104() {
    let data = payload(4008);
    let f = frag_all(&ipv4(&[], 0, 7, &data), FragOptions::new(1000)).unwrap();
    assert_eq!(v4_shape(&f), expect(&[976, 976, 976, 976, 104], 0, false));
    assert_eq!(v4_data(&f), data);
}

#[test]
fn v4_mtu_576_udp_1500_is_552_552_404() {
    let data = payload(1508);
    let f = frag_all(&ipv4(&[], 0, 7, &data), FragOptions::new(576)).unwrap();
    assert_eq!(v4_shape(&f), expect(&[552, 552, 404], 0, false));
    assert_eq!(v4_data(&f), data);
}

#[test]
fn v4_largest_udp_65507_gives_45_fragments() {
    let data = payload(65515);
    let p = ipv4(&[], 0, 9, &data);
    assert_eq!(p.len(), 65535);
    let f = frag_all(&p, FragOptions::new(1500)).unwrap();
    assert_eq!(f.len(), 45);
    let mut lens = vec![1480; 44];
    lens.push(65515 - 44 * 1480);
    assert_eq!(v4_shape(&f), expect(&lens, 0, false));
    assert_eq!(v4_data(&f), data);
    // The last offset, 65120, is 8140 in 8-byte units: inside 13 bits.
    assert_eq!(u16::from_be_bytes([f[44][6], f[44][7]]), 8140);
}

#[test]
fn v4_router_1428_at_mtu_1000_is_976_432() {
    let data = payload(1408);
    let f = frag_all(&ipv4(&[], 0, 1, &data), FragOptions::new(1000)).unwrap();
    assert_eq!(v4_shape(&f), expect(&[976, 432], 0, false));
}

#[test]
fn v4_last_piece_may_use_the_unrounded_room() {
    // MTU 1503: room 1483, non-last pieces 1480; 1480 + 1483 bytes of data
    // leave 1483 for the last piece, which the kernel sends whole (it only
    // rounds a piece down when more data follows).
    let data = payload(1480 + 1483);
    let f = frag_all(&ipv4(&[], 0, 1, &data), FragOptions::new(1503)).unwrap();
    assert_eq!(v4_shape(&f), expect(&[1480, 1483], 0, false));
    assert_eq!(f[1].len(), 1503);
}

// -------------------------------------------------------------- IPv4 options

/// Router Alert (0x94, copied) + Record Route (0x07, not copied, one address
/// recorded) + NOP: the options of the oracle's capture.
const ORACLE_OPTIONS: [u8; 20] = [
    0x94, 0x04, 0x00, 0x00, // Router Alert
    0x07, 0x0f, 0x08, 0xc6, 0x12, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,    // Record Route
    0x01, // NOP
];

#[test]
fn v4_options_first_fragment_full_later_ones_copied_only() {
    let data = payload(4008);
    let p = ipv4(&ORACLE_OPTIONS, 0, 0x4242, &data);
    let f = frag_all(&p, FragOptions::new(1500)).unwrap();
    // IHL 40 everywhere; (1500 - 40) & !7 = 1456 per fragment.
    assert_eq!(v4_shape(&f), expect(&[1456, 1456, 1096], 0, false));
    let mut later = vec![0x94, 0x04, 0x00, 0x00];
    later.extend_from_slice(&[0x01; 16]);
    assert_eq!(f[0][0], 0x4a);
    assert_eq!(f[0][20..40], ORACLE_OPTIONS);
    for fr in &f[1..] {
        assert_eq!(fr[0], 0x4a);
        assert_eq!(fr[20..40], later[..]);
    }
    assert_eq!(v4_data(&f), data);
}

#[test]
fn v4_refragmenting_a_later_fragment_keeps_its_options() {
    // The kernel reduces options only when the piece at offset 0 is built;
    // a fragment at offset 1480 is taken as already reduced, so an
    // uncopied option in it (unusual, but possible on the wire) stays.
    let data = payload(1480);
    let p = ipv4(&ORACLE_OPTIONS, 0x2000 | 185, 5, &data);
    let f = frag_all(&p, FragOptions::new(1000)).unwrap();
    assert_eq!(v4_shape(&f), expect(&[960, 520], 1480, true));
    for fr in &f {
        assert_eq!(fr[20..40], ORACLE_OPTIONS);
    }
}

#[test]
fn v4_refragmenting_a_first_fragment_reduces_options_after_its_first_piece() {
    let data = payload(1456);
    let p = ipv4(&ORACLE_OPTIONS, 0x2000, 5, &data);
    let f = frag_all(&p, FragOptions::new(1000)).unwrap();
    // (1000 - 40) & !7 = 960.
    assert_eq!(v4_shape(&f), expect(&[960, 496], 0, true));
    assert_eq!(f[0][20..40], ORACLE_OPTIONS);
    assert_eq!(f[1][20..24], [0x94, 0x04, 0, 0]);
    assert_eq!(f[1][24..40], [0x01; 16]);
}

#[test]
fn v4_option_list_walk_edge_cases() {
    // (options, what later fragments carry)
    let cases: [(&[u8], &[u8]); 5] = [
        // End of Option List stops the walk: an uncopied timestamp after it
        // is left alone.
        (
            &[0x07, 0x03, 0x04, 0x00, 0x44, 0x04, 0x05, 0x00],
            &[0x01, 0x01, 0x01, 0x00, 0x44, 0x04, 0x05, 0x00],
        ),
        // A length past the end of the options stops the walk (no error).
        (&[0x07, 0x09, 0x04, 0x00], &[0x07, 0x09, 0x04, 0x00]),
        // A length below 2 stops it, after the options before it were done.
        (
            &[0x07, 0x03, 0x04, 0x44, 0x01, 0x00, 0x00, 0x00],
            &[0x01, 0x01, 0x01, 0x44, 0x01, 0x00, 0x00, 0x00],
        ),
        // Last byte is an option type without its length byte.
        (&[0x01, 0x01, 0x01, 0x07], &[0x01, 0x01, 0x01, 0x07]),
        // Copied options (security 0x82, loose source route 0x83) stay.
        (
            &[
                0x82, 0x04, 0x09, 0x09, 0x83, 0x03, 0x04, 0x07, 0x04, 0x04, 0x00, 0x00,
            ],
            &[
                0x82, 0x04, 0x09, 0x09, 0x83, 0x03, 0x04, 0x01, 0x01, 0x01, 0x01, 0x00,
            ],
        ),
    ];
    for (opts, later) in cases {
        let data = payload(3000);
        let f = frag_all(&ipv4(opts, 0, 1, &data), FragOptions::new(1500)).unwrap();
        assert_eq!(f.len(), 3);
        let hlen = 20 + opts.len();
        assert_eq!(&f[0][20..hlen], opts);
        for fr in &f[1..] {
            assert_eq!(&fr[20..hlen], later, "options {opts:02x?}");
        }
        assert_eq!(v4_data(&f), data);
    }
}

// ------------------------------------------------------- IPv4 re-fragmenting

#[test]
fn v4_refragmenting_1480_byte_fragments_at_1000_keeps_absolute_offsets() {
    let data = payload(4008);
    let first = frag_all(&ipv4(&[], 0, 77, &data), FragOptions::new(1500)).unwrap();
    let mut second = Vec::new();
    for f in &first {
        second.extend(frag_all(f, FragOptions::new(1000)).unwrap());
    }
    // The router's output in the oracle: 976, 504, 976, 504, 976, 72 with
    // MF on all but the very last.
    assert_eq!(
        v4_shape(&second),
        expect(&[976, 504, 976, 504, 976, 72], 0, false)
    );
    assert_eq!(v4_data(&second), data);
    assert!(second.iter().all(|f| f[4..6] == 77u16.to_be_bytes()));
}

// ------------------------------------------------------------------ DF etc.

#[test]
fn v4_df_set_and_too_big_is_fragmentation_needed_with_the_mtu() {
    let p = ipv4(&[], 0x4000, 1, &payload(1480));
    assert_eq!(
        Fragmenter::new(&p, FragOptions::new(1000)).unwrap_err(),
        FragError::DontFragment { mtu: 1000 }
    );
    assert_eq!(
        fragment(&p, 1499).unwrap_err(),
        FragError::DontFragment { mtu: 1499 }
    );
    // Fits: passed on, DF and all.
    assert_eq!(fragment(&p, 1500).unwrap(), vec![p.clone()]);
}

#[test]
fn v4_ignore_df_fragments_and_clears_df_like_the_kernel() {
    // The kernel rebuilds the fragment field as offset | MF; DF is only
    // kept when forwarding a reassembled DF datagram (IPSKB_FRAG_PMTU), a
    // case this library does not model. The reserved bit goes too.
    let data = payload(1480);
    let p = ipv4(&[], 0x4000 | 0x8000, 1, &data);
    let opts = FragOptions {
        ignore_df: true,
        ..FragOptions::new(1000)
    };
    let f = frag_all(&p, opts).unwrap();
    assert_eq!(v4_shape(&f), expect(&[976, 504], 0, false));
    assert!(f.iter().all(|f| f[6] & 0xc0 == 0));
}

#[test]
fn v4_packet_that_fits_is_yielded_unchanged_without_link_padding() {
    let p = ipv4(&ORACLE_OPTIONS, 0x2000 | 3, 1, &payload(960));
    assert_eq!(fragment(&p, 1000).unwrap(), vec![p.clone()]);
    assert_eq!(fragment(&p, p.len()).unwrap(), vec![p.clone()]);
    let mut padded = p.clone();
    padded.extend_from_slice(&[0xee; 6]);
    assert_eq!(fragment(&padded, 1500).unwrap(), vec![p.clone()]);
    // Padding is not data either when fragmenting.
    let f = frag_all(&padded, FragOptions::new(500)).unwrap();
    assert_eq!(v4_data(&f), payload(960));
    // A tiny MTU is no error while nothing needs fragmenting.
    let small = ipv4(&[], 0, 1, &payload(8));
    assert_eq!(fragment(&small, 28).unwrap(), vec![small.clone()]);
}

#[test]
fn v4_mtu_must_leave_8_data_bytes_after_the_header() {
    let p = ipv4(&[], 0, 1, &payload(100));
    assert_eq!(
        fragment(&p, 27).unwrap_err(),
        FragError::MtuTooSmall { mtu: 27, min: 28 }
    );
    assert_eq!(
        fragment(&p, 0).unwrap_err(),
        FragError::MtuTooSmall { mtu: 0, min: 28 }
    );
    // 28 works: 8 bytes per fragment.
    let f = frag_all(&p, FragOptions::new(28)).unwrap();
    let mut lens = vec![8; 12];
    lens.push(4);
    assert_eq!(v4_shape(&f), expect(&lens, 0, false));
    // With a 60-byte header the minimum is 68, the IPv4 minimum MTU.
    let opts = [0x01; 40];
    let p = ipv4(&opts, 0, 1, &payload(100));
    assert_eq!(
        fragment(&p, 67).unwrap_err(),
        FragError::MtuTooSmall { mtu: 67, min: 68 }
    );
    let f = frag_all(&p, FragOptions::new(68)).unwrap();
    assert_eq!(f.len(), 13);
    assert!(f.iter().all(|f| f.len() <= 68));
}

#[test]
fn v4_refragmenting_past_the_13_bit_offset_is_refused() {
    // A fragment at offset 65000 with 1000 data bytes cannot be split: its
    // second piece would start at 65976, beyond 8191 × 8.
    let p = ipv4(&[], 65000 / 8, 1, &payload(1000));
    assert_eq!(
        fragment(&p, 1000).unwrap_err(),
        FragError::Malformed(WireError::BadTotalLength(1020))
    );
    // Passing it on whole is fine.
    assert_eq!(fragment(&p, 1500).unwrap(), vec![p.clone()]);
}

#[test]
fn buffer_too_small_consumes_nothing() {
    let p = ipv4(&[], 0, 1, &payload(4008));
    let mut f = Fragmenter::new(&p, FragOptions::new(1500)).unwrap();
    let mut small = [0u8; 1499];
    assert_eq!(
        f.next_into(&mut small).unwrap_err(),
        FragError::BufferTooSmall { needed: 1500 }
    );
    assert_eq!(f.remaining(), 3);
    let mut buf = [0u8; 1500];
    assert_eq!(f.next_into(&mut buf).unwrap(), Some(1500));
    let mut whole = Fragmenter::new(&p, FragOptions::new(5000)).unwrap();
    assert_eq!(
        whole.next_into(&mut buf).unwrap_err(),
        FragError::BufferTooSmall { needed: 4028 }
    );
    assert_eq!(whole.remaining(), 1);
}

#[test]
fn v4_malformed_input_gets_typed_errors() {
    let good = ipv4(&[], 0, 1, &payload(100));
    let m = |p: &[u8]| Fragmenter::new(p, FragOptions::new(60)).unwrap_err();
    assert_eq!(m(&[]), FragError::Malformed(WireError::Truncated));
    assert_eq!(m(&good[..19]), FragError::Malformed(WireError::Truncated));
    let mut p = good.clone();
    p[0] = 0x55;
    assert_eq!(m(&p), FragError::Malformed(WireError::BadVersion(5)));
    p[0] = 0x44;
    assert_eq!(m(&p), FragError::Malformed(WireError::BadHeaderLength(4)));
    assert_eq!(
        m(&good[..30]),
        FragError::Malformed(WireError::BadTotalLength(120))
    );
    let mut p = good.clone();
    p[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(m(&p), FragError::Malformed(WireError::BadTotalLength(19)));
    let mut p = good.clone();
    p[8] = 63; // TTL changed, checksum not updated
    assert_eq!(m(&p), FragError::Malformed(WireError::BadChecksum));
    // IHL 15 on a 40-byte buffer.
    let mut p = good[..40].to_vec();
    p[0] = 0x4f;
    assert_eq!(m(&p), FragError::Malformed(WireError::BadHeaderLength(15)));
}

#[test]
fn short_garbage_never_panics() {
    // Every 1- and 2-byte string, and every version/IHL byte over a few
    // header shapes: errors or passes through, never a panic.
    for a in 0..=255u8 {
        let _ = fragment(&[a], 1280);
        for b in 0..=255u8 {
            let _ = fragment(&[a, b], 1280);
        }
    }
    let base = ipv4(&[], 0, 1, &payload(200));
    for first in 0..=255u8 {
        for len in [0usize, 1, 20, 21, 40, 60, 100, 220] {
            let mut p = base.clone();
            p[0] = first;
            p.truncate(len);
            for mtu in [0, 8, 28, 68, 100, 1280] {
                let _ = fragment(&p, mtu);
            }
        }
    }
}

// ---------------------------------------------------------------------- IPv6

const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// An extension header: `nh` is filled in by `ipv6`.
fn ext(kind: u8, len8: usize) -> (u8, Vec<u8>) {
    let mut h = vec![0u8; len8 * 8];
    h[1] = (len8 - 1) as u8;
    for (i, b) in h.iter_mut().enumerate().skip(2) {
        *b = (0xa0 + i) as u8;
    }
    (kind, h)
}

/// An IPv6 packet: extension headers in order, then `upper` with `data`.
fn ipv6(exts: &[(u8, Vec<u8>)], upper: u8, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[1] = 0x0a; // traffic class / flow label bits that must be kept
    p[3] = 0x55;
    p[7] = 64;
    p[8..24].copy_from_slice(&SRC6);
    p[24..40].copy_from_slice(&DST6);
    let mut nh_at = 6;
    for (kind, h) in exts {
        p[nh_at] = *kind;
        nh_at = p.len();
        p.extend_from_slice(h);
    }
    p[nh_at] = upper;
    p.extend_from_slice(data);
    let plen = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&plen.to_be_bytes());
    p
}

/// (fragmentable data length, offset, M) per IPv6 fragment, checking that
/// the per-fragment part equals the input's (but for the payload length and
/// the next-header byte at `nh_off`, which must be 44), that the fragment
/// header carries `nh` and `id`.
fn v6_shape(
    orig: &[u8],
    frags: &[Vec<u8>],
    unfrag: usize,
    nh_off: usize,
    id: u32,
) -> Vec<(usize, usize, bool)> {
    frags
        .iter()
        .map(|f| {
            assert_eq!(usize::from(u16::from_be_bytes([f[4], f[5]])) + 40, f.len());
            assert_eq!(f[..4], orig[..4]);
            assert_eq!(f[6..nh_off], orig[6..nh_off]);
            assert_eq!(f[nh_off], 44);
            assert_eq!(f[nh_off + 1..unfrag], orig[nh_off + 1..unfrag]);
            let fh = &f[unfrag..unfrag + 8];
            assert_eq!(fh[0], orig[nh_off], "fragment header next header");
            assert_eq!(fh[1], 0);
            assert_eq!(fh[4..8], id.to_be_bytes());
            let o = u16::from_be_bytes([fh[2], fh[3]]);
            assert_eq!(o & 6, 0, "reserved bits");
            (f.len() - unfrag - 8, usize::from(o & !7), o & 1 != 0)
        })
        .collect()
}

fn v6_data(frags: &[Vec<u8>], unfrag: usize) -> Vec<u8> {
    frags
        .iter()
        .flat_map(|f| f[unfrag + 8..].to_vec())
        .collect()
}

fn expect6(lens: &[usize]) -> Vec<(usize, usize, bool)> {
    expect(lens, 0, false)
        .into_iter()
        .map(|(l, o, m, _)| (l, o, m))
        .collect()
}

fn v6opts(mtu: usize, id: u32) -> FragOptions {
    FragOptions {
        ipv6_id: Some(id),
        ..FragOptions::new(mtu)
    }
}

#[test]
fn v6_mtu_1500_4008_bytes_is_1448_1448_1112_byte_for_byte() {
    // UDP header + 4000 bytes: (1500 - 40 - 8) & !7 = 1448 per fragment.
    let data = payload(4008);
    let p = ipv6(&[], 17, &data);
    let f = frag_all(&p, v6opts(1500, 0xdead_beef)).unwrap();
    assert_eq!(
        v6_shape(&p, &f, 40, 6, 0xdead_beef),
        expect6(&[1448, 1448, 1112])
    );
    // First fragment's fragment header, byte for byte.
    assert_eq!(f[0][40..48], [17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(f[1][40..48], [17, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(f[2][40..48], [17, 0, 0x0b, 0x50, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(f[0][4..6], 1456u16.to_be_bytes());
    assert_eq!(v6_data(&f, 40), data);
}

#[test]
fn v6_mtu_1280() {
    // The oracle's 1232/1232/544 is a 3008-byte fragmentable part (UDP 3000):
    // 1280 - 48 = 1232. 4008 bytes would need a fourth fragment.
    let data = payload(3008);
    let p = ipv6(&[], 17, &data);
    let f = frag_all(&p, v6opts(1280, 1)).unwrap();
    assert_eq!(v6_shape(&p, &f, 40, 6, 1), expect6(&[1232, 1232, 544]));
    assert_eq!(v6_data(&f, 40), data);
    let data = payload(4008);
    let p = ipv6(&[], 17, &data);
    let f = frag_all(&p, v6opts(1280, 1)).unwrap();
    assert_eq!(
        v6_shape(&p, &f, 40, 6, 1),
        expect6(&[1232, 1232, 1232, 312])
    );
}

#[test]
fn v6_fragment_header_goes_after_hop_by_hop_and_routing() {
    // HBH, Dest (for the routing hops), Routing, Dest (final), UDP: the
    // per-fragment part ends after Routing; the final Dest is fragmentable.
    let exts = [ext(0, 1), ext(60, 2), ext(43, 3), ext(60, 1)];
    let data = payload(3000);
    let p = ipv6(&exts, 17, &data);
    let unfrag = 40 + 8 + 16 + 24;
    let routing_at = 40 + 8 + 16;
    let f = frag_all(&p, v6opts(1500, 9)).unwrap();
    let shape = v6_shape(&p, &f, unfrag, routing_at, 9);
    let room = (1500 - unfrag - 8) & !7;
    let total = p.len() - unfrag;
    assert_eq!(shape[0], (room, 0, true));
    assert_eq!(shape.iter().map(|s| s.0).sum::<usize>(), total);
    assert_eq!(v6_data(&f, unfrag), p[unfrag..]);
    assert_eq!(
        f[0][unfrag], 60,
        "the final Dest follows the fragment header"
    );
}

#[test]
fn v6_destination_options_without_routing_stay_per_fragment() {
    // Linux (ip6_find_1stfragopt, seen on 6.18 with IPV6_DSTOPTS) keeps a
    // Dest that no Routing header precedes in front of the fragment header;
    // RFC 8200 would fragment it. We follow the kernel.
    let exts = [ext(0, 2), ext(60, 1)];
    let p = ipv6(&exts, 6, &payload(2000));
    let f = frag_all(&p, v6opts(1280, 3)).unwrap();
    v6_shape(&p, &f, 40 + 16 + 8, 40 + 16, 3);
    assert_eq!(f[0][64], 6, "TCP follows the fragment header");
    assert_eq!(v6_data(&f, 64), p[64..]);

    // Only a Dest: the fragment header goes after it.
    let p = ipv6(&[ext(60, 1)], 6, &payload(2000));
    let f = frag_all(&p, v6opts(1280, 3)).unwrap();
    v6_shape(&p, &f, 48, 40, 3);
    assert_eq!(f[0][48], 6);
}

#[test]
fn v6_destination_options_after_routing_keep_a_home_address_per_fragment() {
    // Dest after Routing is fragmentable, unless it carries a Home Address
    // option (0xC9): Mobile IPv6 needs that one in every fragment.
    let mut home = vec![0u8, 2, 0xc9, 16];
    home.extend_from_slice(&[0xaa; 16]);
    home.extend_from_slice(&[1, 2, 0, 0]); // PadN to 24 bytes
    let exts = [ext(43, 1), (60, home)];
    let p = ipv6(&exts, 17, &payload(2000));
    let f = frag_all(&p, v6opts(1280, 4)).unwrap();
    v6_shape(&p, &f, 40 + 8 + 24, 40 + 8, 4);
    assert_eq!(v6_data(&f, 72), p[72..]);

    // The same header without the Home Address option is fragmentable.
    let plain = ext(60, 3);
    let p = ipv6(&[ext(43, 1), plain], 17, &payload(2000));
    let f = frag_all(&p, v6opts(1280, 4)).unwrap();
    v6_shape(&p, &f, 48, 40, 4);
    assert_eq!(f[0][48], 60);
}

#[test]
fn v6_random_id_is_shared_by_the_fragments_and_fresh_per_datagram() {
    let p = ipv6(&[], 17, &payload(4008));
    let ids: Vec<u32> = (0..8)
        .map(|_| {
            let fr = Fragmenter::new(&p, FragOptions::new(1500)).unwrap();
            let id = fr.ipv6_id().unwrap();
            let f: Vec<_> = fr.collect();
            v6_shape(&p, &f, 40, 6, id);
            assert_ne!(id, 0);
            id
        })
        .collect();
    let mut d = ids.clone();
    d.sort_unstable();
    d.dedup();
    assert_eq!(d.len(), ids.len(), "{ids:?}");
}

#[test]
fn v6_mtu_limits() {
    let p = ipv6(&[], 17, &payload(4008));
    assert_eq!(
        fragment(&p, 1279).unwrap_err(),
        FragError::MtuTooSmall {
            mtu: 1279,
            min: 1280
        }
    );
    // A packet that fits is passed on whatever the MTU.
    let small = ipv6(&[], 17, &payload(100));
    assert_eq!(fragment(&small, 200).unwrap(), vec![small.clone()]);
    // Per-fragment headers leaving under 8 data bytes at 1280.
    let big_routing = ext(43, 155); // 1240 bytes
    let p = ipv6(&[big_routing], 17, &payload(2000));
    assert_eq!(
        fragment(&p, 1295).unwrap_err(),
        FragError::MtuTooSmall {
            mtu: 1295,
            min: 1296
        }
    );
    let f = frag_all(&p, v6opts(1296, 4)).unwrap();
    assert!(f.iter().all(|f| f.len() <= 1296));
    assert_eq!(v6_data(&f, 1280), p[1280..]);
}

#[test]
fn v6_already_fragmented_is_refused_when_too_big() {
    let frag_hdr = (44u8, vec![0u8, 0, 0, 1, 0, 0, 0, 5]);
    let p = ipv6(&[ext(60, 1), frag_hdr.clone()], 17, &payload(3000));
    assert_eq!(fragment(&p, 1500).unwrap_err(), FragError::AlreadyFragment);
    let p = ipv6(&[frag_hdr], 17, &payload(100));
    assert_eq!(fragment(&p, 1500).unwrap(), vec![p.clone()]);
}

#[test]
fn v6_malformed_input_gets_typed_errors() {
    let good = ipv6(&[ext(0, 1)], 17, &payload(100));
    let m = |p: &[u8]| Fragmenter::new(p, FragOptions::new(1280)).unwrap_err();
    assert_eq!(m(&good[..39]), FragError::Malformed(WireError::Truncated));
    assert_eq!(m(&good[..147]), FragError::Malformed(WireError::Truncated));
    // Hop-by-hop length running past the payload.
    let mut p = good.clone();
    p[41] = 20;
    assert_eq!(m(&p), FragError::Malformed(WireError::BadExtensionHeader));
    // A jumbogram (payload length 0 with Hop-by-Hop) is not supported.
    let mut p = good.clone();
    p[4] = 0;
    p[5] = 0;
    assert_eq!(m(&p), FragError::Malformed(WireError::BadExtensionHeader));
    // Payload length 0, no extension headers: a 40-byte packet.
    let bare = ipv6(&[], 59, &[]);
    assert_eq!(fragment(&bare, 1280).unwrap(), vec![bare.clone()]);
}

#[test]
fn iterator_is_exact_size_and_fused() {
    let p = ipv4(&[], 0, 1, &payload(4008));
    let mut f = Fragmenter::new(&p, FragOptions::new(1000)).unwrap();
    assert_eq!(f.len(), 5);
    f.next();
    assert_eq!(f.size_hint(), (4, Some(4)));
    assert_eq!(f.by_ref().count(), 4);
    assert_eq!(f.next(), None);
    assert_eq!(f.next_len(), None);
    let mut buf = [0u8; 10];
    assert_eq!(f.next_into(&mut buf).unwrap(), None);
}

// ------------------------------------------- captured from the live kernel

/// Payload bytes of the oracle's UDP datagrams (`oracle/reasm_oracle.py
/// frag`): byte i is 3 + 7·i.
fn oracle_udp_payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (3 + 7 * i) as u8).collect()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Linux 6.18, `v4/mtu1500-options-ra-rr`: 4000 UDP bytes sent with
/// IP_OPTIONS Router Alert + Record Route at MTU 1500, captured on the
/// receiver's veth. The datagram is rebuilt from the first fragment's header
/// (total length, fragment field and checksum as before fragmenting) and
/// fragmented again here: every fragment must equal the kernel's, byte for
/// byte (headers below as captured, then the data).
#[test]
fn v4_options_match_the_kernel_capture_byte_for_byte() {
    let captured_headers = [
        "4a0005d81d3320004011efdfc6120001c6120002 94040000 070f08c6120001 0000000000000000 01",
        "4a0005d81d3320b6401109f8c6120001c6120002 94040000 01010101010101010101010101010101",
        "4a0004701d33016c40112aaac6120001c6120002 94040000 01010101010101010101010101010101",
    ];
    let mut data = hex("aca600090fa8056d"); // the UDP header as captured
    data.extend(oracle_udp_payload(4000));
    let first = hex(captured_headers[0]);
    let p = {
        let mut p = first.clone();
        p[2..4].copy_from_slice(&((40 + data.len()) as u16).to_be_bytes());
        p[6..8].copy_from_slice(&[0, 0]);
        p[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&data);
        p
    };
    let f = frag_all(&p, FragOptions::new(1500)).unwrap();
    assert_eq!(f.len(), 3);
    let mut at = 0;
    for (fr, h) in f.iter().zip(captured_headers) {
        let h = hex(h);
        assert_eq!(fr[..40], h[..], "header");
        let n = fr.len() - 40;
        assert_eq!(fr[40..], data[at..at + n]);
        at += n;
    }
    assert_eq!([f[0].len(), f[1].len(), f[2].len()], [1496, 1496, 1136]);
}

/// Linux 6.18, `v6/mtu1280-udp4000`: 4000 UDP bytes over IPv6 at MTU 1280
/// come out as 1232 × 3 + 312 bytes of data (the 1232/1232/544 of the notes
/// is a 3000-byte payload). Rebuilt and re-fragmented with the kernel's id:
/// byte for byte.
#[test]
fn v6_matches_the_kernel_capture_byte_for_byte() {
    let ip6 =
        "60043c31 04d8 2c 40 20010db8000000000000000000000001 20010db8000000000000000000000002";
    let captured = [
        (1280, "11000001f2a0ad00"),
        (1280, "110004d1f2a0ad00"),
        (1280, "110009a1f2a0ad00"),
        (360, "11000e70f2a0ad00"),
    ];
    let mut data = hex("be9e00090fa82428");
    data.extend(oracle_udp_payload(4000));
    let mut p = hex(ip6);
    p[4..6].copy_from_slice(&(data.len() as u16).to_be_bytes());
    p[6] = 17;
    p.extend_from_slice(&data);
    let f = frag_all(&p, v6opts(1280, 0xf2a0_ad00)).unwrap();
    assert_eq!(f.len(), 4);
    let mut at = 0;
    for (fr, (len, fh)) in f.iter().zip(captured) {
        assert_eq!(fr.len(), len);
        let mut h = hex(ip6);
        h[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        assert_eq!(fr[..40], h[..], "IPv6 header");
        assert_eq!(fr[40..48], hex(fh)[..], "fragment header");
        let n = fr.len() - 48;
        assert_eq!(fr[48..], data[at..at + n]);
        at += n;
    }
}

/// Rebuilds the datagram whose first fragment (or unfragmented header)
/// `first_header` is, with `data` after it.
fn rebuild_v4(first_header: &str, data: &[u8]) -> Vec<u8> {
    let mut p = hex(first_header);
    let hlen = p.len();
    p[2..4].copy_from_slice(&((hlen + data.len()) as u16).to_be_bytes());
    p[6..8].copy_from_slice(&[0, 0]);
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(data);
    p
}

/// Each fragment's header equals the captured one, and the data follows.
fn assert_capture(frags: &[Vec<u8>], captured_headers: &[&str], data: &[u8]) {
    assert_eq!(frags.len(), captured_headers.len());
    let mut at = 0;
    for (i, (fr, h)) in frags.iter().zip(captured_headers).enumerate() {
        let h = hex(h);
        assert_eq!(fr[..h.len()], h[..], "header of fragment {i}");
        let n = fr.len() - h.len();
        assert_eq!(fr[h.len()..], data[at..at + n], "data of fragment {i}");
        at += n;
    }
    assert_eq!(at, data.len());
}

/// Linux 6.18, `v4/mtu1000-options-ra-rr`: the same options at MTU 1000:
/// (1000 − 40) & !7 = 960 bytes per fragment, 4 × 960 + 168.
#[test]
fn v4_options_at_mtu_1000_match_the_kernel_capture() {
    let rr = "94040000 070f08c6120001 0000000000000000 01";
    let later = "94040000 01010101010101010101010101010101";
    let captured = [
        format!("4a0003e896212000401178e1c6120001c6120002 {rr}"),
        format!("4a0003e89621207840119337c6120001c6120002 {later}"),
        format!("4a0003e8962120f0401192bfc6120001c6120002 {later}"),
        format!("4a0003e89621216840119247c6120001c6120002 {later}"),
        format!("4a0000d0962101e04011b4e7c6120001c6120002 {later}"),
    ];
    let captured: Vec<&str> = captured.iter().map(String::as_str).collect();
    let mut data = hex("88d000090fa82943");
    data.extend(oracle_udp_payload(4000));
    let p = rebuild_v4(captured[0], &data);
    let f = frag_all(&p, FragOptions::new(1000)).unwrap();
    assert_capture(&f, &captured, &data);
}

/// Linux 6.18, `fwd/v4-4000-refragment`: the sender fragments 4000 UDP
/// bytes at 1500; a router (TTL already decremented to 63 when it
/// fragments) re-fragments each 1480-byte fragment for its 1000-byte egress.
/// Fragmenting the datagram at 1500 and then each fragment at 1000 gives the
/// router's output byte for byte.
#[test]
fn v4_router_refragmenting_matches_the_kernel_capture() {
    let captured = [
        "450003e4951720003f1136c9c6120001c6130002",
        "4500020c9517207a3f113827c6120001c6130002",
        "450003e4951720b93f113610c6120001c6130002",
        "4500020c951721333f11376ec6120001c6130002",
        "450003e4951721723f113557c6120001c6130002",
        "4500005c951701ec3f115865c6120001c6130002",
    ];
    let mut data = hex("948300090fa81d8f");
    data.extend(oracle_udp_payload(4000));
    let p = rebuild_v4(captured[0], &data);
    let mut out = Vec::new();
    for f in frag_all(&p, FragOptions::new(1500)).unwrap() {
        out.extend(frag_all(&f, FragOptions::new(1000)).unwrap());
    }
    assert_capture(&out, &captured, &data);
}
