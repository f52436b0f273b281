//! IP fragmentation, as the Linux kernel fragments.
//!
//! [`Fragmenter`] cuts one IPv4 or IPv6 packet (raw, starting at the IP
//! header) into fragments no larger than an MTU, one at a time, either into
//! a caller buffer ([`Fragmenter::next_into`], no allocation) or as owned
//! `Vec`s (the `Iterator` impl, or [`fragment`]).
//!
//! ```
//! use htb::frag::{FragOptions, Fragmenter};
//!
//! // A 4028-byte IPv4 datagram (20-byte header + 4008 bytes: UDP 4000).
//! let mut pkt = vec![0u8; 4028];
//! pkt[0] = 0x45; // version 4, IHL 5
//! pkt[2..4].copy_from_slice(&4028u16.to_be_bytes());
//! pkt[4..6].copy_from_slice(&0x1234u16.to_be_bytes()); // id
//! pkt[8] = 64; // TTL
//! pkt[9] = 17; // UDP
//! pkt[12..16].copy_from_slice(&[198, 18, 0, 1]);
//! pkt[16..20].copy_from_slice(&[198, 18, 0, 2]);
//! let c = htb::wire::checksum(&pkt[..20]);
//! pkt[10..12].copy_from_slice(&c.to_be_bytes());
//!
//! let mut frags = Fragmenter::new(&pkt, FragOptions::new(1500)).unwrap();
//! assert_eq!(frags.remaining(), 3);
//! let mut buf = [0u8; 1500];
//! let mut sizes = Vec::new();
//! while let Some(n) = frags.next_into(&mut buf).unwrap() {
//!     let frag = &buf[..n];
//!     // Every fragment's header checksum verifies.
//!     assert_eq!(htb::wire::checksum(&frag[..20]), 0);
//!     let off = u16::from_be_bytes([frag[6], frag[7]]);
//!     sizes.push((n - 20, (off & 0x1fff) * 8, off & 0x2000 != 0));
//! }
//! // What Linux puts on the wire for `sendto` of 4000 UDP bytes at MTU 1500.
//! assert_eq!(sizes, [(1480, 0, true), (1480, 1480, true), (1048, 2960, false)]);
//! ```
//!
//! # IPv4 (the kernel's `ip_do_fragment` slow path)
//!
//! * Data per fragment: `(mtu − ihl) & !7`; the last fragment takes what is
//!   left, which may be up to `mtu − ihl` bytes (the kernel only rounds a
//!   piece down when more data follows it).
//! * `MF` on every fragment but the last; on **every** fragment when the
//!   input was itself a non-last fragment. Offsets continue from the input's
//!   own offset (re-fragmenting a fragment keeps absolute offsets).
//! * The fragment field is rewritten from scratch, like the kernel's
//!   `frag_off = offset >> 3 | MF`: `DF` (only possible with
//!   [`FragOptions::ignore_df`]) and the reserved bit are cleared. Total
//!   length and header checksum are rewritten; id, TOS, TTL, protocol,
//!   addresses are kept.
//! * Options: the first fragment carries the header exactly as given. Every
//!   later fragment has the same IHL, with each option whose *copied* flag
//!   (bit 7 of the type) is clear overwritten by NOPs (`0x01`) over its whole
//!   length. The walk follows the kernel's `ip_options_fragment`: it stops
//!   at End of Option List (bytes after it are kept as they are), steps over
//!   NOPs, and stops — leaving the rest untouched, without error — at an
//!   option whose length byte is missing, below 2, or runs past the options
//!   area. (In the kernel such a list never gets this far — input
//!   validation, `ip_options_compile`, drops the packet with a Parameter
//!   Problem, and an `IP_HDRINCL` packet above the MTU is refused — so this
//!   is the walk's own behaviour, not an observed one.) Like the kernel,
//!   the options are only rewritten when the input starts at offset 0; a
//!   non-first fragment's options are taken as already reduced.
//! * `tests/frag_rules.rs` checks the output byte for byte against
//!   fragments captured from Linux 6.18 (options at MTU 1500 and 1000, a
//!   router re-fragmenting at 1000, IPv6 at 1280).
//! * DF set and the packet larger than the MTU: [`FragError::DontFragment`]
//!   (the kernel sends ICMP "fragmentation needed" carrying the MTU),
//!   unless [`FragOptions::ignore_df`].
//! * The input is validated like a received packet: version, IHL, total
//!   length against the buffer, header checksum. Bytes after the total
//!   length (link padding) are not part of the datagram and are not copied.
//!
//! # IPv6 (RFC 8200 §4.5)
//!
//! * A fragment header (next header, 0, `offset | M`, 32-bit id) goes after
//!   the per-fragment headers, split where Linux splits them
//!   (`ip6_find_1stfragopt`): the IPv6 header, Hop-by-Hop Options, Routing,
//!   and Destination Options that come before any Routing header (or after
//!   one, when they carry a Home Address option). Destination Options after
//!   a Routing header, and every other header, are fragmentable. The last
//!   per-fragment header's next-header byte becomes 44.
//! * Data per fragment: `(mtu − per_fragment_len − 8) & !7`, the last takes
//!   the rest; MTUs below 1280 are refused ([`FragError::MtuTooSmall`] with
//!   `min: 1280`), and so is one leaving less than 8 data bytes.
//! * The id is [`FragOptions::ipv6_id`], or a fresh non-zero random value per
//!   datagram (Linux picks a random 32-bit id per datagram too).
//! * RFC 8200 §4.5 would make a Destination Options header with no Routing
//!   header after it fragmentable; Linux 6.18 keeps it per-fragment (UDP
//!   with `IPV6_DSTOPTS` at MTU 1280 goes out as IPv6 → Destination Options
//!   → Fragment → UDP), and so do we: parity with the kernel wins.
//! * A packet that already carries a fragment header cannot be fragmented
//!   again ([`FragError::AlreadyFragment`]); the kernel's reassembly would
//!   reject the nested fragment header.
//! * The extension header chain is walked (Hop-by-Hop, Routing, Destination,
//!   AH, Mobility, HIP, Shim6) up to the first other header; a header that
//!   runs past the payload length is [`WireError::BadExtensionHeader`].
//!   A jumbogram (payload length 0 with a Hop-by-Hop header) fails that way.
//!
//! # Both
//!
//! A packet that fits the MTU is yielded unchanged (without link padding)
//! as its only fragment, whatever its flags and whatever the MTU; the MTU
//! and DF errors only arise when fragmentation is needed.

use core::fmt;
use std::cell::Cell;
use std::hash::BuildHasher;

use crate::wire::{
    IPV4_DF, IPV4_MF, IPV4_OFFSET_MASK, IPV6_FRAG_HEADER, IPV6_HEADER, WireError, ipv6_nh,
};

/// How to fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragOptions {
    /// Link MTU in bytes (IPv4: at least 68; IPv6: at least 1280).
    pub mtu: usize,
    /// IPv6 identification; `None`: a random 32-bit value per datagram, as
    /// Linux does. Ignored for IPv4 (the packet's own id is kept).
    pub ipv6_id: Option<u32>,
    /// Fragment an IPv4 packet even when DF is set (the kernel's
    /// `ignore_df`); default false: DF gives [`FragError::DontFragment`].
    pub ignore_df: bool,
}

impl FragOptions {
    /// Options for `mtu`, everything else default.
    pub fn new(mtu: usize) -> Self {
        FragOptions {
            mtu,
            ipv6_id: None,
            ignore_df: false,
        }
    }
}

/// Why a packet could not be fragmented.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FragError {
    /// Not a well-formed IP packet.
    Malformed(WireError),
    /// IPv4 DF is set and the packet exceeds the MTU: the kernel answers
    /// ICMP "fragmentation needed" carrying this MTU.
    DontFragment {
        /// The MTU to report.
        mtu: usize,
    },
    /// The MTU leaves no room for 8 data bytes after the header (or, for
    /// IPv6, is below 1280).
    MtuTooSmall {
        /// The MTU given.
        mtu: usize,
        /// The smallest MTU that works for this packet.
        min: usize,
    },
    /// A caller buffer is smaller than the fragment to write into it.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// An IPv6 packet larger than the MTU already carries a fragment header:
    /// fragmenting it would nest fragment headers, which receivers reject.
    AlreadyFragment,
}

impl fmt::Display for FragError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragError::Malformed(e) => write!(f, "malformed packet: {e}"),
            FragError::DontFragment { mtu } => {
                write!(
                    f,
                    "DF set and packet larger than MTU {mtu} (fragmentation needed)"
                )
            }
            FragError::MtuTooSmall { mtu, min } => {
                write!(f, "MTU {mtu} too small for this packet (at least {min})")
            }
            FragError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            FragError::AlreadyFragment => {
                write!(f, "IPv6 packet already has a fragment header")
            }
        }
    }
}

impl std::error::Error for FragError {}

impl From<WireError> for FragError {
    fn from(e: WireError) -> Self {
        FragError::Malformed(e)
    }
}

/// Largest IPv4 header (IHL 15).
const IPV4_MAX_HLEN: usize = 60;
/// IPv6 minimum link MTU.
const IPV6_MIN_MTU: usize = 1280;
/// The IPv4 No Operation option.
const NOP: u8 = 1;

/// What the fragmenter emits for each piece of data.
#[derive(Debug, Clone)]
enum Plan {
    /// The packet fits: it is its own only fragment.
    Whole,
    /// IPv4 fragments.
    V4(V4Plan),
    /// IPv6 fragments.
    V6(V6Plan),
}

#[derive(Debug, Clone)]
struct V4Plan {
    /// Option bytes (bit i: header byte 20 + i) that become NOPs in the
    /// fragments after the first; 0 when nothing changes (no options, only
    /// copied ones, or an input that is not at offset 0). A mask rather than
    /// a second header keeps `new` small: no 60-byte copy per datagram.
    nop_mask: u64,
    /// One's-complement sums (unfolded) of the first and later headers with
    /// total length, fragment field and checksum taken as zero: per fragment
    /// only those two fields are added, so the checksum costs a few adds.
    sum_first: u32,
    sum_later: u32,
    /// The input's own offset in bytes (non-zero when re-fragmenting).
    base_off: usize,
    /// The input was a non-last fragment: MF stays on every piece.
    not_last: bool,
}

#[derive(Debug, Clone)]
struct V6Plan {
    /// Offset of the next-header byte that becomes 44 (6 for the IPv6
    /// header, else the first byte of the last per-fragment header).
    nh_off: usize,
    /// The value it had: the fragment header's next header.
    nh: u8,
    /// Identification.
    id: u32,
}

/// Fragments of one packet, produced one at a time (no allocation needed:
/// [`Fragmenter::next_into`] writes into a caller buffer; the `Iterator`
/// impl allocates a `Vec` per fragment for convenience). A packet that fits
/// the MTU yields itself, unchanged, as its only fragment.
#[derive(Debug, Clone)]
pub struct Fragmenter<'a> {
    /// The datagram (link padding cut off).
    packet: &'a [u8],
    opts: FragOptions,
    plan: Plan,
    /// Bytes repeated in every fragment: the IPv4 header, or the IPv6
    /// per-fragment headers (the fragment header comes on top).
    hlen: usize,
    /// Bytes of fragmentable data already emitted (for `Whole`: 0 before,
    /// the packet length after).
    pos: usize,
    /// Largest data piece that may end the datagram (`mtu` minus headers).
    raw: usize,
    /// Data per non-last fragment: `raw & !7`.
    chunk: usize,
}

impl<'a> Fragmenter<'a> {
    /// Validates `packet` (IPv4 or IPv6 by its version) and plans the
    /// fragments.
    pub fn new(packet: &'a [u8], opts: FragOptions) -> Result<Self, FragError> {
        let Some(&first) = packet.first() else {
            return Err(WireError::Truncated.into());
        };
        match first >> 4 {
            4 => Self::new_v4(packet, opts),
            6 => Self::new_v6(packet, opts),
            v => Err(WireError::BadVersion(v).into()),
        }
    }

    fn whole(packet: &'a [u8], opts: FragOptions) -> Self {
        Fragmenter {
            packet,
            opts,
            plan: Plan::Whole,
            hlen: 0,
            pos: 0,
            raw: 0,
            chunk: 0,
        }
    }

    fn new_v4(packet: &'a [u8], opts: FragOptions) -> Result<Self, FragError> {
        let (hlen, total, sum_first) = check_ipv4(packet)?;
        let packet = &packet[..total];
        if total <= opts.mtu {
            return Ok(Self::whole(packet, opts));
        }
        let frag = u16::from_be_bytes([packet[6], packet[7]]);
        if frag & IPV4_DF != 0 && !opts.ignore_df {
            return Err(FragError::DontFragment { mtu: opts.mtu });
        }
        let raw = opts.mtu.saturating_sub(hlen);
        if raw < 8 {
            return Err(FragError::MtuTooSmall {
                mtu: opts.mtu,
                min: hlen + 8,
            });
        }
        let chunk = raw & !7;
        let base_off = usize::from(frag & IPV4_OFFSET_MASK) * 8;
        let data = total - hlen;
        // Every piece's offset must fit the 13-bit field. Data ending by
        // 65535 always does (offsets are multiples of 8), so the division is
        // only paid for a bogus input fragment whose data ends past 65535
        // (which the kernel's reassembly would drop anyway): there the last
        // piece starts at the first multiple of `chunk` leaving ≤ `raw` bytes.
        if base_off + data > 65535 {
            let last_start = base_off + (data - raw).div_ceil(chunk) * chunk;
            if last_start > usize::from(IPV4_OFFSET_MASK) * 8 {
                return Err(WireError::BadTotalLength(total as u16).into());
            }
        }

        let mut nop_mask = 0;
        let mut sum_later = sum_first;
        // Linux reduces the options once, after building the piece at
        // offset 0; an input at a later offset already had them reduced.
        if base_off == 0 && hlen > 20 {
            let mut later = [0u8; IPV4_MAX_HLEN];
            later[..hlen].copy_from_slice(&packet[..hlen]);
            nop_uncopied_options(&mut later[20..hlen]);
            for i in 20..hlen {
                if later[i] != packet[i] {
                    nop_mask |= 1u64 << (i - 20);
                }
            }
            sum_later = header_sum(&later[..hlen]);
        }
        Ok(Fragmenter {
            packet,
            opts,
            plan: Plan::V4(V4Plan {
                nop_mask,
                sum_first,
                sum_later,
                base_off,
                not_last: frag & IPV4_MF != 0,
            }),
            hlen,
            pos: 0,
            raw,
            chunk,
        })
    }

    fn new_v6(packet: &'a [u8], opts: FragOptions) -> Result<Self, FragError> {
        if packet.len() < IPV6_HEADER {
            return Err(WireError::Truncated.into());
        }
        let total = IPV6_HEADER + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
        if total > packet.len() {
            return Err(WireError::Truncated.into());
        }
        let packet = &packet[..total];
        let layout = ipv6_layout(packet)?;
        if total <= opts.mtu {
            return Ok(Self::whole(packet, opts));
        }
        if layout.has_fragment_header {
            return Err(FragError::AlreadyFragment);
        }
        let min = (layout.unfrag + IPV6_FRAG_HEADER + 8).max(IPV6_MIN_MTU);
        if opts.mtu < min {
            return Err(FragError::MtuTooSmall { mtu: opts.mtu, min });
        }
        let raw = opts.mtu - layout.unfrag - IPV6_FRAG_HEADER;
        Ok(Fragmenter {
            packet,
            opts,
            plan: Plan::V6(V6Plan {
                nh_off: layout.nh_off,
                nh: packet[layout.nh_off],
                id: opts.ipv6_id.unwrap_or_else(random_id),
            }),
            hlen: layout.unfrag,
            pos: 0,
            raw,
            chunk: raw & !7,
        })
    }

    /// The options this fragmenter was built with.
    pub fn options(&self) -> &FragOptions {
        &self.opts
    }

    /// The IPv6 identification the fragments carry (`None` for IPv4, and
    /// for a packet that fits the MTU and is passed on unchanged).
    pub fn ipv6_id(&self) -> Option<u32> {
        match &self.plan {
            Plan::V6(p) => Some(p.id),
            _ => None,
        }
    }

    /// Fragmentable bytes left, and the length of the next data piece.
    #[inline]
    fn next_piece(&self) -> Option<usize> {
        let left = match self.plan {
            Plan::Whole => return (self.pos == 0).then_some(self.packet.len()),
            _ => self.packet.len() - self.hlen - self.pos,
        };
        if left == 0 {
            None
        } else if left > self.raw {
            Some(self.chunk)
        } else {
            Some(left)
        }
    }

    /// Fragments still to come.
    pub fn remaining(&self) -> usize {
        match self.plan {
            Plan::Whole => usize::from(self.pos == 0),
            _ => {
                let left = self.packet.len() - self.hlen - self.pos;
                if left == 0 {
                    0
                } else if left <= self.raw {
                    1
                } else {
                    (left - self.raw).div_ceil(self.chunk) + 1
                }
            }
        }
    }

    /// Length of the next fragment, if any.
    pub fn next_len(&self) -> Option<usize> {
        let piece = self.next_piece()?;
        Some(match self.plan {
            Plan::Whole => piece,
            Plan::V4(_) => self.hlen + piece,
            Plan::V6(_) => self.hlen + IPV6_FRAG_HEADER + piece,
        })
    }

    /// Writes the next fragment into `buf` and returns its length; `Ok(None)`
    /// when done; [`FragError::BufferTooSmall`] (nothing consumed) if `buf`
    /// is too short.
    #[inline]
    pub fn next_into(&mut self, buf: &mut [u8]) -> Result<Option<usize>, FragError> {
        let Some(piece) = self.next_piece() else {
            return Ok(None);
        };
        let hlen = self.hlen;
        let start = hlen + self.pos;
        let more = start + piece < self.packet.len();
        let n = match &self.plan {
            Plan::Whole => {
                let Some(out) = buf.get_mut(..piece) else {
                    return Err(FragError::BufferTooSmall { needed: piece });
                };
                out.copy_from_slice(self.packet);
                piece
            }
            Plan::V4(p) => {
                let n = hlen + piece;
                let Some(out) = buf.get_mut(..n) else {
                    return Err(FragError::BufferTooSmall { needed: n });
                };
                let (hdr, data) = out.split_at_mut(hlen);
                copy_header(hdr, &self.packet[..hlen]);
                let sum = if self.pos != 0 && p.nop_mask != 0 {
                    let mut m = p.nop_mask;
                    while m != 0 {
                        hdr[20 + m.trailing_zeros() as usize] = NOP;
                        m &= m - 1;
                    }
                    p.sum_later
                } else {
                    p.sum_first
                };
                // Offsets stay below 65536 (checked in `new`), lengths
                // below the input's total length.
                let tot = n as u16;
                let mut frag = ((p.base_off + self.pos) >> 3) as u16;
                if more || p.not_last {
                    frag |= IPV4_MF;
                }
                hdr[2..4].copy_from_slice(&tot.to_be_bytes());
                hdr[6..8].copy_from_slice(&frag.to_be_bytes());
                let csum = fold(sum + u32::from(tot) + u32::from(frag));
                hdr[10..12].copy_from_slice(&csum.to_be_bytes());
                data.copy_from_slice(&self.packet[start..start + piece]);
                n
            }
            Plan::V6(p) => {
                let n = hlen + IPV6_FRAG_HEADER + piece;
                let Some(out) = buf.get_mut(..n) else {
                    return Err(FragError::BufferTooSmall { needed: n });
                };
                let (hdr, rest) = out.split_at_mut(hlen);
                let (fh, data) = rest.split_at_mut(IPV6_FRAG_HEADER);
                copy_header(hdr, &self.packet[..hlen]);
                hdr[p.nh_off] = ipv6_nh::FRAGMENT;
                // n ≤ mtu < total ≤ 65575, so the payload length fits.
                hdr[4..6].copy_from_slice(&((n - IPV6_HEADER) as u16).to_be_bytes());
                // Offsets are below the 65535-byte payload and multiples of 8.
                let off = self.pos as u16 | u16::from(more);
                fh[0] = p.nh;
                fh[1] = 0;
                fh[2..4].copy_from_slice(&off.to_be_bytes());
                fh[4..8].copy_from_slice(&p.id.to_be_bytes());
                data.copy_from_slice(&self.packet[start..start + piece]);
                n
            }
        };
        self.pos += piece;
        Ok(Some(n))
    }
}

impl Iterator for Fragmenter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        let mut v = vec![0u8; self.next_len()?];
        // The buffer has exactly the length asked for, so this cannot fail.
        match self.next_into(&mut v) {
            Ok(Some(n)) => {
                v.truncate(n);
                Some(v)
            }
            _ => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Fragmenter<'_> {}

impl core::iter::FusedIterator for Fragmenter<'_> {}

/// Every fragment of `packet` for `mtu` (IPv6 ids random), as owned buffers.
pub fn fragment(packet: &[u8], mtu: usize) -> Result<Vec<Vec<u8>>, FragError> {
    Ok(Fragmenter::new(packet, FragOptions::new(mtu))?.collect())
}

// --- private header helpers (to be merged with `crate::wire`'s views) ---

/// Checks an IPv4 header the way a receiver does; returns (IHL in bytes,
/// total length, [`header_sum`] of the header). One pass over the header
/// serves both the checksum check and the per-fragment sum.
fn check_ipv4(p: &[u8]) -> Result<(usize, usize, u32), WireError> {
    if p.len() < 20 {
        return Err(WireError::Truncated);
    }
    let ihl = p[0] & 0x0f;
    let hlen = usize::from(ihl) * 4;
    if ihl < 5 || hlen > p.len() {
        return Err(WireError::BadHeaderLength(ihl));
    }
    let total = u16::from_be_bytes([p[2], p[3]]);
    if usize::from(total) < hlen || usize::from(total) > p.len() {
        return Err(WireError::BadTotalLength(total));
    }
    let word = |i: usize| u32::from(u16::from_be_bytes([p[i], p[i + 1]]));
    let all: u32 = p[..hlen]
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    // A header verifies when its words, checksum included, sum to 0xffff
    // (folded): what `wire::checksum` over it returns as 0.
    if fold(all) != 0 {
        return Err(WireError::BadChecksum);
    }
    Ok((hlen, usize::from(total), all - word(2) - word(6) - word(10)))
}

/// Unfolded one's-complement sum of an IPv4 header's 16-bit words, leaving
/// out total length (2..4), fragment field (6..8) and checksum (10..12).
fn header_sum(h: &[u8]) -> u32 {
    h.chunks_exact(2)
        .enumerate()
        .filter(|(i, _)| !matches!(i, 1 | 3 | 5))
        .map(|(_, w)| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum()
}

/// `dst.copy_from_slice(src)` for a header: the common lengths (a bare IPv4
/// or IPv6 header) get a fixed-size copy the compiler turns into a few
/// moves, instead of a call to `memcpy` per fragment.
#[inline(always)]
fn copy_header(dst: &mut [u8], src: &[u8]) {
    match (dst.len(), src.len()) {
        (20, 20) => dst[..20].copy_from_slice(&src[..20]),
        (40, 40) => dst[..40].copy_from_slice(&src[..40]),
        _ => dst.copy_from_slice(src),
    }
}

/// The checksum to store for an unfolded sum.
#[inline]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Overwrites with NOPs every option whose copied flag is clear, walking the
/// list as Linux's `ip_options_fragment` does: stop at End of Option List,
/// step over NOP, stop at a length that is missing, below 2 or past the end.
fn nop_uncopied_options(opts: &mut [u8]) {
    const EOL: u8 = 0;
    const COPIED: u8 = 0x80;
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        if kind == EOL {
            return;
        }
        if kind == NOP {
            i += 1;
            continue;
        }
        let left = opts.len() - i;
        let Some(&len) = opts.get(i + 1) else {
            return;
        };
        let len = usize::from(len);
        if len < 2 || len > left {
            return;
        }
        if kind & COPIED == 0 {
            opts[i..i + len].fill(NOP);
        }
        i += len;
    }
}

/// Where an IPv6 packet's per-fragment part ends.
struct V6Layout {
    /// Length of the per-fragment part (IPv6 header + unfragmentable
    /// extension headers).
    unfrag: usize,
    /// Offset of the next-header byte that names the first fragmentable
    /// header.
    nh_off: usize,
    /// A fragment header appears in the chain.
    has_fragment_header: bool,
}

/// Walks the extension header chain of `p` (exactly one datagram).
fn ipv6_layout(p: &[u8]) -> Result<V6Layout, WireError> {
    let mut layout = V6Layout {
        unfrag: IPV6_HEADER,
        nh_off: 6,
        has_fragment_header: false,
    };
    let mut nh = p[6];
    let mut off = IPV6_HEADER;
    let mut seen_routing = false;
    let mut per_fragment = true;
    loop {
        let len = match nh {
            ipv6_nh::FRAGMENT => {
                layout.has_fragment_header = true;
                return Ok(layout);
            }
            ipv6_nh::HOP_BY_HOP
            | ipv6_nh::ROUTING
            | ipv6_nh::DEST_OPTS
            | ipv6_nh::MOBILITY
            | ipv6_nh::HIP
            | ipv6_nh::SHIM6 => {
                let b = *p.get(off + 1).ok_or(WireError::BadExtensionHeader)?;
                (usize::from(b) + 1) * 8
            }
            ipv6_nh::AUTH => {
                let b = *p.get(off + 1).ok_or(WireError::BadExtensionHeader)?;
                (usize::from(b) + 2) * 4
            }
            // Upper layer, No Next Header, ESP or unknown: the chain ends.
            _ => return Ok(layout),
        };
        if off + len > p.len() {
            return Err(WireError::BadExtensionHeader);
        }
        if per_fragment {
            // Linux's split (ip6_find_1stfragopt): Hop-by-Hop and Routing
            // stay in front of the fragment header; so do Destination
            // Options seen before any Routing header, and after one only
            // when they carry a Home Address option (Mobile IPv6 needs it
            // per fragment). Any other header starts the fragmentable part.
            let stays = match nh {
                ipv6_nh::HOP_BY_HOP => true,
                ipv6_nh::ROUTING => {
                    seen_routing = true;
                    true
                }
                ipv6_nh::DEST_OPTS => !seen_routing || has_home_address(&p[off..off + len]),
                _ => false,
            };
            if stays {
                layout.unfrag = off + len;
                layout.nh_off = off;
            } else {
                per_fragment = false;
            }
        }
        nh = p[off];
        off += len;
    }
}

/// Whether a Destination Options header (whole, including its two leading
/// bytes) carries a Home Address option (type 0xC9, RFC 6275). A malformed
/// TLV list simply ends the search.
fn has_home_address(hdr: &[u8]) -> bool {
    const PAD1: u8 = 0;
    const HOME_ADDRESS: u8 = 0xc9;
    let mut i = 2;
    while let Some(&kind) = hdr.get(i) {
        if kind == PAD1 {
            i += 1;
            continue;
        }
        if kind == HOME_ADDRESS {
            return true;
        }
        match hdr.get(i + 1) {
            Some(&len) => i += 2 + usize::from(len),
            None => return false,
        }
    }
    false
}

/// A fresh non-zero 32-bit IPv6 identification. A splitmix64 sequence per
/// thread, seeded once from std's randomly keyed `RandomState`: unpredictable
/// enough for ids (Linux uses `get_random_u32_above(0)`), and a few ns.
fn random_id() -> u32 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        );
    }
    STATE.with(|s| {
        loop {
            let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            s.set(x);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let id = (z >> 32) as u32;
            if id != 0 {
                return id;
            }
        }
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn options_walk_follows_ip_options_fragment() {
        // Router Alert (copied) + Record Route (not copied) + NOP.
        let mut o = [
            0x94, 0x04, 0, 0, 0x07, 0x0f, 0x08, 0xc6, 0x12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        nop_uncopied_options(&mut o);
        let mut want = [1u8; 20];
        want[..4].copy_from_slice(&[0x94, 0x04, 0, 0]);
        assert_eq!(o, want);

        // EOL stops the walk: the timestamp (0x44, not copied) after it stays.
        let mut o = [0x07, 3, 4, 0, 0x44, 4, 5, 0];
        nop_uncopied_options(&mut o);
        assert_eq!(o, [1, 1, 1, 0, 0x44, 4, 5, 0]);

        // A length running past the end stops the walk, nothing changed.
        let mut o = [0x07, 9, 4, 0];
        nop_uncopied_options(&mut o);
        assert_eq!(o, [0x07, 9, 4, 0]);
        // Length below 2 stops it too, after the earlier options were done.
        let mut o = [0x07, 3, 4, 0x44, 1, 0, 0, 0];
        nop_uncopied_options(&mut o);
        assert_eq!(o, [1, 1, 1, 0x44, 1, 0, 0, 0]);
        // A lone type byte at the end (no length byte).
        let mut o = [1, 1, 1, 0x07];
        nop_uncopied_options(&mut o);
        assert_eq!(o, [1, 1, 1, 0x07]);
        // Copied options (security 0x82, LSRR 0x83) are kept.
        let mut o = [0x82, 4, 9, 9, 0x83, 3, 4, 0x07, 4, 4, 0, 0];
        nop_uncopied_options(&mut o);
        assert_eq!(o, [0x82, 4, 9, 9, 0x83, 3, 4, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn header_sum_and_fold_match_full_checksum() {
        let mut h = [
            0x46u8, 0, 0x05, 0xdc, 0x12, 0x34, 0x20, 0xb9, 64, 17, 0xab, 0xcd, 198, 18, 0, 1, 198,
            18, 0, 2, 0x94, 4, 0, 0,
        ];
        let c = fold(header_sum(&h) + 0x05dc + 0x20b9);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(crate::wire::checksum(&h), 0);
    }

    #[test]
    fn check_ipv4_sum_is_the_header_sum() {
        let mut h = vec![
            0x46u8, 0x10, 0, 40, 0xbe, 0xef, 0x40, 0, 3, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x94,
            4, 0, 0,
        ];
        h.resize(40, 0x5a);
        let c = crate::wire::checksum(&h[..24]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(check_ipv4(&h), Ok((24, 40, header_sum(&h[..24]))));
        h[11] ^= 1;
        assert_eq!(check_ipv4(&h), Err(WireError::BadChecksum));
    }

    #[test]
    fn random_ids_differ_and_are_not_zero() {
        let ids: Vec<u32> = (0..64).map(|_| random_id()).collect();
        assert!(ids.iter().all(|&i| i != 0));
        let mut d = ids.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), ids.len());
    }
}
