//! Random IP datagrams for the fragmentation property tests (shared by
//! `prop_frag.rs` and `prop_frag_reasm.rs`). Each case carries what the
//! generator knows about its own structure — which options are copied,
//! where the IPv6 per-fragment headers end — so the properties compare the
//! fragmenter against the construction, not against a second fragmenter.

#![allow(dead_code)]

use htb::wire::checksum;
use quickcheck::{Arbitrary, Gen};

pub fn pick<T: Copy>(g: &mut Gen, xs: &[T]) -> T {
    *g.choose(xs).unwrap()
}

/// A number in `lo..=hi`.
pub fn range(g: &mut Gen, lo: usize, hi: usize) -> usize {
    if hi <= lo {
        return lo;
    }
    lo + usize::arbitrary(g) % (hi - lo + 1)
}

pub fn bytes(g: &mut Gen, n: usize) -> Vec<u8> {
    (0..n).map(|_| u8::arbitrary(g)).collect()
}

/// A data length: mostly small or around common sizes, sometimes up to `max`.
fn data_len(g: &mut Gen, max: usize) -> usize {
    let n = match u8::arbitrary(g) % 8 {
        0 => range(g, 0, 64),
        1 => range(g, 0, 1600),
        2 | 3 => range(g, 1000, 5000),
        4 | 5 => range(g, 0, 12000),
        6 => pick(g, &[1472, 1480, 1500, 3000, 3008, 4000, 4008, 8000, 8008]),
        _ => range(g, 0, max),
    };
    n.min(max)
}

/// An IPv4 datagram and the options its later fragments must carry.
#[derive(Clone, Debug)]
pub struct V4Case {
    pub packet: Vec<u8>,
    /// Options of the fragments after the first (the kernel's
    /// `ip_options_fragment` result, known from the construction).
    pub later_options: Vec<u8>,
    pub mtu: usize,
    pub ignore_df: bool,
}

impl V4Case {
    pub fn hlen(&self) -> usize {
        usize::from(self.packet[0] & 0x0f) * 4
    }
    pub fn frag_field(&self) -> u16 {
        u16::from_be_bytes([self.packet[6], self.packet[7]])
    }
}

/// A valid option list of `len` bytes (a multiple of 4), and its reduced
/// form for later fragments.
fn options(g: &mut Gen, len: usize) -> (Vec<u8>, Vec<u8>) {
    // Option types by copied flag: security, LSRR, SSRR, stream id, router
    // alert (copied); record route, timestamp, traceroute, others.
    const COPIED: [u8; 6] = [0x82, 0x83, 0x89, 0x88, 0x94, 0x9e];
    const NOT_COPIED: [u8; 5] = [0x07, 0x44, 0x52, 0x0f, 0x1e];
    let mut opts = Vec::new();
    let mut later = Vec::new();
    while opts.len() < len {
        let room = len - opts.len();
        match u8::arbitrary(g) % 6 {
            0 => {
                opts.push(1);
                later.push(1);
            }
            1 => {
                // End of list: the rest is padding, left as it is.
                let pad = bytes(g, room - 1);
                opts.push(0);
                opts.extend_from_slice(&pad);
                later.push(0);
                later.extend_from_slice(&pad);
            }
            _ if room >= 2 => {
                let copied = bool::arbitrary(g);
                let kind = if copied {
                    pick(g, &COPIED)
                } else {
                    pick(g, &NOT_COPIED)
                };
                let l = range(g, 2, room.min(16));
                opts.push(kind);
                opts.push(l as u8);
                let body = bytes(g, l - 2);
                opts.extend_from_slice(&body);
                if copied {
                    later.push(kind);
                    later.push(l as u8);
                    later.extend_from_slice(&body);
                } else {
                    later.extend(std::iter::repeat_n(1u8, l));
                }
            }
            _ => {
                opts.push(1);
                later.push(1);
            }
        }
    }
    (opts, later)
}

/// Builds an IPv4 packet with a valid checksum.
pub fn ipv4_packet(tos: u8, id: u16, frag: u16, proto: u8, opts: &[u8], data: &[u8]) -> Vec<u8> {
    let hlen = 20 + opts.len();
    let total = hlen + data.len();
    let mut p = vec![0u8; total];
    p[0] = 0x40 | (hlen / 4) as u8;
    p[1] = tos;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p[20..hlen].copy_from_slice(opts);
    let c = checksum(&p[..hlen]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[hlen..].copy_from_slice(data);
    p
}

impl V4Case {
    /// `datagram_only`: no input that is itself a fragment, no reserved bit.
    pub fn generate(g: &mut Gen, datagram_only: bool) -> Self {
        let olen = 4 * pick(g, &[0, 0, 0, 1, 2, 3, 5, 8, 10]);
        let (opts, later_opts) = options(g, olen);
        let hlen = 20 + olen;
        let mut frag = 0u16;
        let mut max_data = 65535 - hlen;
        if u8::arbitrary(g) % 4 == 0 {
            frag |= 0x4000; // DF
        }
        if !datagram_only {
            if u8::arbitrary(g) % 8 == 0 {
                frag |= 0x8000; // reserved
            }
            if u8::arbitrary(g) % 3 == 0 {
                // A fragment being re-fragmented: MF and/or an offset.
                let r = range(g, 0, 8000);
                let off = pick(g, &[0usize, 0, 185, 1000, r]);
                frag |= off as u16;
                if bool::arbitrary(g) {
                    frag |= 0x2000;
                }
                max_data = max_data.min(8191 * 8 - off * 8);
            }
        }
        let n = data_len(g, max_data);
        let data = bytes(g, n);
        let (tos, id) = (u8::arbitrary(g), u16::arbitrary(g));
        let proto = pick(g, &[17, 6, 1, 253]);
        let packet = ipv4_packet(tos, id, frag, proto, &opts, &data);
        let total = packet.len();
        let mtu = match u8::arbitrary(g) % 6 {
            0 => pick(g, &[68, 576, 1000, 1280, 1500, 9000]),
            1 => range(g, hlen + 8, hlen + 64),
            2 => range(g, 0, hlen + 8),
            _ => range(g, hlen + 8, total + 16),
        };
        V4Case {
            packet,
            later_options: later_opts,
            mtu,
            ignore_df: bool::arbitrary(g),
        }
    }
}

impl Arbitrary for V4Case {
    fn arbitrary(g: &mut Gen) -> Self {
        V4Case::generate(g, false)
    }
}

/// An IPv4 datagram (never a fragment itself), for the reassembly identity.
#[derive(Clone, Debug)]
pub struct V4Datagram(pub V4Case);

impl Arbitrary for V4Datagram {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut c = V4Case::generate(g, true);
        // Reassembly needs every fragment: keep MTUs that fragment.
        c.ignore_df = true;
        c.mtu = c.mtu.max(c.hlen() + 8);
        V4Datagram(c)
    }
}

/// An IPv6 packet and where its per-fragment part ends.
#[derive(Clone, Debug)]
pub struct V6Case {
    pub packet: Vec<u8>,
    /// Length of the IPv6 header plus the per-fragment extension headers.
    pub unfrag: usize,
    /// Offset of the next-header byte that names the first fragmentable
    /// header (becomes 44 in fragments).
    pub nh_off: usize,
    pub mtu: usize,
    pub id: Option<u32>,
}

/// An extension header of `kind` with random contents, `len` bytes (a
/// multiple of 8); its next-header byte is filled in later.
fn ext_header(g: &mut Gen, kind: u8, len: usize) -> Vec<u8> {
    let mut h = bytes(g, len);
    h[1] = if kind == 51 {
        (len / 4 - 2) as u8
    } else {
        (len / 8 - 1) as u8
    };
    if kind == 60 {
        // Options: one PadN over the rest, so that no random byte reads as
        // a Home Address option (which would change where Linux splits).
        h[2] = 1;
        h[3] = (len - 4) as u8;
    }
    h
}

impl V6Case {
    /// `small_headers`: keep every header short, so the first fragment holds
    /// the whole header chain (RFC 7112; the reassembler checks it).
    pub fn generate(g: &mut Gen, small_headers: bool) -> Self {
        let max8 = if small_headers { 4 } else { 40 };
        // RFC 8200 order: HBH, Dest (for routing), Routing, AH, Dest (final).
        let mut chain: Vec<(u8, Vec<u8>)> = Vec::new();
        let has_hbh = u8::arbitrary(g) % 3 == 0;
        let has_dest1 = u8::arbitrary(g) % 4 == 0;
        let has_routing = u8::arbitrary(g) % 3 == 0;
        let has_ah = u8::arbitrary(g) % 5 == 0;
        let has_dest2 = u8::arbitrary(g) % 3 == 0;
        for (present, kind) in [
            (has_hbh, 0u8),
            (has_dest1, 60),
            (has_routing, 43),
            (has_ah, 51),
            (has_dest2, 60),
        ] {
            if present {
                let len = 8 * range(g, 1, max8);
                let len = if kind == 51 { len.max(16) } else { len };
                chain.push((kind, ext_header(g, kind, len)));
            }
        }
        let upper = pick(g, &[17, 6, 58, 253]);
        let mut p = vec![0u8; 40];
        p[0] = 0x60 | (u8::arbitrary(g) & 0x0f);
        p[1..4].copy_from_slice(&bytes(g, 3));
        p[7] = u8::arbitrary(g);
        p[8..40].copy_from_slice(&bytes(g, 32));
        let mut nh_at = 6;
        let mut unfrag = 40;
        let mut nh_off = 6;
        // Linux's split: HBH, Routing, and Dest before any Routing stay per
        // fragment; the first other header starts the fragmentable part.
        let mut per_fragment = true;
        let mut seen_routing = false;
        for (kind, h) in &chain {
            p[nh_at] = *kind;
            let start = p.len();
            nh_at = start;
            p.extend_from_slice(h);
            seen_routing |= *kind == 43;
            per_fragment &= match kind {
                0 | 43 => true,
                60 => !seen_routing,
                _ => false,
            };
            if per_fragment {
                unfrag = p.len();
                nh_off = start;
            }
        }
        p[nh_at] = upper;
        let max_data = 65535 - (p.len() - 40);
        let n = data_len(g, max_data);
        let data = bytes(g, n);
        p.extend_from_slice(&data);
        let plen = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        let total = p.len();
        let mtu = match u8::arbitrary(g) % 5 {
            0 => pick(g, &[1280, 1500, 9000]),
            1 => range(g, 1200, 1300),
            _ => range(g, 1280, total + 16),
        };
        let id = if bool::arbitrary(g) {
            Some(u32::arbitrary(g))
        } else {
            None
        };
        V6Case {
            packet: p,
            unfrag,
            nh_off,
            mtu,
            id,
        }
    }
}

impl Arbitrary for V6Case {
    fn arbitrary(g: &mut Gen) -> Self {
        V6Case::generate(g, false)
    }
}

/// An IPv6 datagram whose header chain fits in a first fragment.
#[derive(Clone, Debug)]
pub struct V6Datagram(pub V6Case);

impl Arbitrary for V6Datagram {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut c = V6Case::generate(g, true);
        c.mtu = c.mtu.max(1280);
        V6Datagram(c)
    }
}

/// A random permutation of `0..n`.
pub fn permutation(g: &mut Gen, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = usize::arbitrary(g) % (i + 1);
        v.swap(i, j);
    }
    v
}
