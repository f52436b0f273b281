//! IPv4 / IPv6 header views shared by the `reasm` and `frag` modules.
//!
//! Two layers, as in smoltcp: a *packet view* ([`Ipv4Packet`], [`Ipv6Packet`],
//! [`Ipv6FragHeader`]) wraps a byte buffer and reads or writes one field at a
//! time, and [`parse`] validates a received packet the way the kernel's
//! receive path does (`ip_rcv_core`, `ipv6_rcv`) and says where its fragment
//! fields are.
//!
//! The view contract: `new_checked` verifies that every fixed field is inside
//! the buffer, after which no getter or setter panics. `new_unchecked` is for
//! buffers the caller built itself (it may panic on a short buffer).
//!
//! ```
//! use htb::wire::{checksum, Ipv4Packet};
//!
//! let mut bytes = [0u8; 20];
//! let mut p = Ipv4Packet::new_unchecked(&mut bytes[..]);
//! p.set_version_ihl(4, 5);
//! p.set_total_len(20);
//! p.set_ident(0x1234);
//! p.set_more_frags(true);
//! p.set_frag_offset(1480);
//! p.set_ttl(64);
//! p.set_protocol(17);
//! p.fill_checksum();
//! let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
//! assert!(p.verify_checksum());
//! assert_eq!((p.frag_offset(), p.more_frags()), (1480, true));
//! assert_eq!(checksum(&bytes), 0);
//! ```

use core::fmt;

/// Why a byte string is not a well-formed IP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the header (or the length fields) say.
    Truncated,
    /// The version nibble is neither 4 nor 6.
    BadVersion(u8),
    /// IPv4 header length below 5 words, or beyond the buffer.
    BadHeaderLength(u8),
    /// IPv4 total length smaller than the header or larger than the buffer.
    BadTotalLength(u16),
    /// IPv4 header checksum does not verify.
    BadChecksum,
    /// An IPv6 extension header chain that runs past the packet or is invalid.
    BadExtensionHeader,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "packet truncated"),
            WireError::BadVersion(v) => write!(f, "IP version {v} (expected 4 or 6)"),
            WireError::BadHeaderLength(l) => write!(f, "bad IPv4 header length {l}"),
            WireError::BadTotalLength(l) => write!(f, "bad IPv4 total length {l}"),
            WireError::BadChecksum => write!(f, "bad IPv4 header checksum"),
            WireError::BadExtensionHeader => write!(f, "bad IPv6 extension header chain"),
        }
    }
}

impl std::error::Error for WireError {}

/// The Internet checksum (RFC 1071) of `data`, ready to store.
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data)
}

/// Checksum of an IPv4 header (verifies when it returns 0).
#[inline]
fn header_checksum(hdr: &[u8]) -> u16 {
    // The usual header without options is summed as a fixed-size array
    // (three additions, no loop).
    match <&[u8; IPV4_MIN_HEADER]>::try_from(hdr) {
        Ok(h) => !ones_sum(h),
        Err(_) => !ones_sum(hdr),
    }
}

/// The ones'-complement sum of `data` as big-endian 16-bit words (an odd
/// last byte padded with zero), folded to 16 bits; 0 only for all-zero data.
///
/// Summed 8 bytes at a time in native order with end-around carry: the sum
/// does not depend on byte order or on how the words are grouped (RFC 1071
/// §2 (B), (C)), so one conversion at the end gives the big-endian value.
/// An IPv4 header is 2–7 additions instead of 10–30.
#[inline]
fn ones_sum(data: &[u8]) -> u16 {
    #[inline(always)]
    fn add(sum: u64, w: u64) -> u64 {
        let (s, carry) = sum.overflowing_add(w);
        // After a wrap `s` is at most 2^64 - 2: adding the carry cannot wrap.
        s + u64::from(carry)
    }
    let mut sum = 0u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        sum = add(
            sum,
            u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
        );
    }
    // The rest, at an 8-byte boundary: each piece keeps its 16-bit words
    // whole, in native order, so its lane inside `sum` does not matter.
    let mut rest = words.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        sum = add(sum, u64::from(u32::from_ne_bytes([*a, *b, *c, *d])));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        sum = add(sum, u64::from(u16::from_ne_bytes([*a, *b])));
        rest = tail;
    }
    if let [a] = rest {
        sum = add(sum, u64::from(u16::from_ne_bytes([*a, 0])));
    }
    let (s, carry) = (sum as u32).overflowing_add((sum >> 32) as u32);
    let s = s + u32::from(carry);
    let (s, carry) = (s as u16).overflowing_add((s >> 16) as u16);
    let s = s + u16::from(carry);
    // Native-order lanes: back to the big-endian reading.
    u16::from_be(s)
}

/// IPv4 field offsets (RFC 791).
pub mod ipv4_field {
    /// Version and IHL.
    pub const VER_IHL: usize = 0;
    /// Type of service (DSCP + ECN).
    pub const TOS: usize = 1;
    /// Total length.
    pub const LENGTH: usize = 2;
    /// Identification.
    pub const IDENT: usize = 4;
    /// Flags and fragment offset.
    pub const FLG_OFF: usize = 6;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: usize = 10;
    /// Source address.
    pub const SRC: usize = 12;
    /// Destination address.
    pub const DST: usize = 16;
}

/// IPv4 header length without options.
pub const IPV4_MIN_HEADER: usize = 20;
/// IPv6 fixed header length.
pub const IPV6_HEADER: usize = 40;
/// IPv6 fragment header length.
pub const IPV6_FRAG_HEADER: usize = 8;
/// IPv4 flag: don't fragment.
pub const IPV4_DF: u16 = 0x4000;
/// IPv4 flag: more fragments.
pub const IPV4_MF: u16 = 0x2000;
/// IPv4 fragment offset mask (in 8-byte units).
pub const IPV4_OFFSET_MASK: u16 = 0x1fff;

/// IPv6 next-header values this module walks.
pub mod ipv6_nh {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AUTH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No next header.
    pub const NONE: u8 = 59;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility header (RFC 6275).
    pub const MOBILITY: u8 = 135;
    /// Host Identity Protocol (RFC 7401).
    pub const HIP: u8 = 139;
    /// Shim6 (RFC 5533).
    pub const SHIM6: u8 = 140;
}

/// A read/write view of an IPv4 header.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer`, checking that the fixed header fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < IPV4_MIN_HEADER {
            return Err(WireError::Truncated);
        }
        Ok(Ipv4Packet { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.b()[at], self.b()[at + 1]])
    }

    /// Version nibble.
    pub fn version(&self) -> u8 {
        self.b()[ipv4_field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[ipv4_field::VER_IHL] & 0x0f) * 4
    }
    /// Type of service byte (DSCP << 2 | ECN).
    pub fn tos(&self) -> u8 {
        self.b()[ipv4_field::TOS]
    }
    /// ECN codepoint (low two bits of the TOS byte).
    pub fn ecn(&self) -> u8 {
        self.tos() & 3
    }
    /// Total length.
    pub fn total_len(&self) -> u16 {
        self.u16_at(ipv4_field::LENGTH)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        self.u16_at(ipv4_field::IDENT)
    }
    /// The raw flags + offset word.
    pub fn flags_offset(&self) -> u16 {
        self.u16_at(ipv4_field::FLG_OFF)
    }
    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & IPV4_DF != 0
    }
    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & IPV4_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & IPV4_OFFSET_MASK) << 3
    }
    /// True when MF is set or the offset is not zero (`ip_is_fragment`).
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (IPV4_MF | IPV4_OFFSET_MASK) != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[ipv4_field::TTL]
    }
    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.b()[ipv4_field::PROTOCOL]
    }
    /// Header checksum as stored.
    pub fn checksum(&self) -> u16 {
        self.u16_at(ipv4_field::CHECKSUM)
    }
    /// Source address.
    pub fn src_addr(&self) -> [u8; 4] {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.b()[12..16]);
        a
    }
    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 4] {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.b()[16..20]);
        a
    }
    /// Whether the header checksum verifies (needs `header_len()` bytes).
    pub fn verify_checksum(&self) -> bool {
        let hl = self.header_len();
        self.b().len() >= hl && header_checksum(&self.b()[..hl]) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    fn set_u16_at(&mut self, at: usize, v: u16) {
        self.bm()[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets version and IHL (in 32-bit words).
    pub fn set_version_ihl(&mut self, version: u8, ihl: u8) {
        self.bm()[ipv4_field::VER_IHL] = (version << 4) | (ihl & 0x0f);
    }
    /// Sets the TOS byte.
    pub fn set_tos(&mut self, tos: u8) {
        self.bm()[ipv4_field::TOS] = tos;
    }
    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        self.set_u16_at(ipv4_field::LENGTH, len);
    }
    /// Sets the identification.
    pub fn set_ident(&mut self, id: u16) {
        self.set_u16_at(ipv4_field::IDENT, id);
    }
    /// Sets the raw flags + offset word.
    pub fn set_flags_offset(&mut self, v: u16) {
        self.set_u16_at(ipv4_field::FLG_OFF, v);
    }
    /// Sets or clears DF.
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flags_offset() & !IPV4_DF;
        self.set_flags_offset(v | if on { IPV4_DF } else { 0 });
    }
    /// Sets or clears MF.
    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flags_offset() & !IPV4_MF;
        self.set_flags_offset(v | if on { IPV4_MF } else { 0 });
    }
    /// Sets the fragment offset in bytes (must be a multiple of 8).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = self.flags_offset() & !IPV4_OFFSET_MASK;
        self.set_flags_offset(v | ((bytes >> 3) & IPV4_OFFSET_MASK));
    }
    /// Sets the TTL.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.bm()[ipv4_field::TTL] = ttl;
    }
    /// Sets the protocol.
    pub fn set_protocol(&mut self, p: u8) {
        self.bm()[ipv4_field::PROTOCOL] = p;
    }
    /// Stores a checksum value.
    pub fn set_checksum(&mut self, c: u16) {
        self.set_u16_at(ipv4_field::CHECKSUM, c);
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: [u8; 4]) {
        self.bm()[12..16].copy_from_slice(&a);
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: [u8; 4]) {
        self.bm()[16..20].copy_from_slice(&a);
    }
    /// Recomputes and stores the header checksum over `header_len()` bytes.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = header_checksum(&self.b()[..hl]);
        self.set_checksum(c);
    }
}

/// A read/write view of the fixed IPv6 header.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }
    /// Wraps `buffer`, checking that the fixed header fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < IPV6_HEADER {
            return Err(WireError::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Version nibble.
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }
    /// Traffic class (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.b()[0] << 4) | (self.b()[1] >> 4)
    }
    /// ECN codepoint.
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 3
    }
    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        u32::from_be_bytes([0, self.b()[1] & 0x0f, self.b()[2], self.b()[3]])
    }
    /// Payload length.
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]])
    }
    /// Next header.
    pub fn next_header(&self) -> u8 {
        self.b()[6]
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }
    /// Source address.
    pub fn src_addr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[8..24]);
        a
    }
    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[24..40]);
        a
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version (6), traffic class and flow label together.
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let b = self.buffer.as_mut();
        b[0] = 0x60 | (tc >> 4);
        b[1] = (tc << 4) | ((flow >> 16) as u8 & 0x0f);
        b[2] = (flow >> 8) as u8;
        b[3] = flow as u8;
    }
    /// Sets the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[4..6].copy_from_slice(&len.to_be_bytes());
    }
    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[6] = nh;
    }
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hl: u8) {
        self.buffer.as_mut()[7] = hl;
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a);
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a);
    }
}

/// A read/write view of an IPv6 fragment header (8 bytes).
#[derive(Debug, Clone)]
pub struct Ipv6FragHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragHeader<T> {
    /// Wraps `buffer` without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6FragHeader { buffer }
    }
    /// Wraps `buffer`, checking that 8 bytes fit.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < IPV6_FRAG_HEADER {
            return Err(WireError::Truncated);
        }
        Ok(Ipv6FragHeader { buffer })
    }
    /// Next header after this one.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// The raw offset/flags word (offset in bytes, low 3 bits flags).
    pub fn offset_flags(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        self.offset_flags() & !7
    }
    /// M flag.
    pub fn more_frags(&self) -> bool {
        self.offset_flags() & 1 != 0
    }
    /// Identification.
    pub fn ident(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6FragHeader<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[0] = nh;
        self.buffer.as_mut()[1] = 0;
    }
    /// Sets offset (bytes, multiple of 8) and M.
    pub fn set_offset_more(&mut self, offset: u16, more: bool) {
        let v = (offset & !7) | u16::from(more);
        self.buffer.as_mut()[2..4].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the identification.
    pub fn set_ident(&mut self, id: u32) {
        self.buffer.as_mut()[4..8].copy_from_slice(&id.to_be_bytes());
    }
}

/// What [`parse`] found in a valid IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4Info {
    /// Header length (with options).
    pub ihl: usize,
    /// Total length (the packet ends here; bytes after it are link padding).
    pub total_len: usize,
    /// Fragment offset in bytes.
    pub offset: usize,
    /// More fragments.
    pub mf: bool,
    /// Don't fragment.
    pub df: bool,
}

/// What [`parse`] found in a valid IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6Info {
    /// 40 + payload length (the packet ends here), or the buffer length for
    /// a jumbogram (payload length 0).
    pub total_len: usize,
    /// Where the fragment header starts, if the chain has one before the
    /// upper-layer header. (For a jumbogram it may not fit in the buffer:
    /// such a packet is refused before the header is read.)
    pub frag_at: Option<usize>,
    /// Offset of the next-header byte that names the fragment header
    /// (6 when it directly follows the IPv6 header).
    pub nhoff: usize,
}

/// A validated packet: which family, and where its fragment fields are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// IPv4.
    V4(V4Info),
    /// IPv6.
    V6(V6Info),
}

/// Validates a received IP packet as the kernel's input path does, in the
/// same order: version; IPv4: IHL ≥ 5, header inside the buffer, header
/// checksum, total length between the header and the buffer; IPv6: fixed
/// header, payload length inside the buffer, the extension header chain
/// (hop-by-hop, routing, destination options) up to a fragment header or the
/// first other header. The buffer may be longer than the packet (link
/// padding): the length fields decide.
///
/// Always inlined: it is the first step of every reassembly push, and a
/// call returns its result through memory.
#[inline(always)]
pub fn parse(packet: &[u8]) -> Result<Parsed, WireError> {
    let Some(&first) = packet.first() else {
        return Err(WireError::Truncated);
    };
    match first >> 4 {
        4 => parse_v4(packet).map(Parsed::V4),
        6 => parse_v6(packet).map(Parsed::V6),
        v => Err(WireError::BadVersion(v)),
    }
}

#[inline(always)]
fn parse_v4(packet: &[u8]) -> Result<V4Info, WireError> {
    let Some(fixed) = packet.first_chunk::<IPV4_MIN_HEADER>() else {
        return Err(WireError::Truncated);
    };
    let ihl_words = fixed[ipv4_field::VER_IHL] & 0x0f;
    let ihl = usize::from(ihl_words) * 4;
    if ihl_words < 5 || ihl > packet.len() {
        return Err(WireError::BadHeaderLength(ihl_words));
    }
    if header_checksum(&packet[..ihl]) != 0 {
        return Err(WireError::BadChecksum);
    }
    let tot = u16::from_be_bytes([fixed[ipv4_field::LENGTH], fixed[ipv4_field::LENGTH + 1]]);
    if usize::from(tot) < ihl || usize::from(tot) > packet.len() {
        return Err(WireError::BadTotalLength(tot));
    }
    let fo = u16::from_be_bytes([fixed[ipv4_field::FLG_OFF], fixed[ipv4_field::FLG_OFF + 1]]);
    Ok(V4Info {
        ihl,
        total_len: usize::from(tot),
        offset: usize::from(fo & IPV4_OFFSET_MASK) << 3,
        mf: fo & IPV4_MF != 0,
        df: fo & IPV4_DF != 0,
    })
}

fn parse_v6(packet: &[u8]) -> Result<V6Info, WireError> {
    let p = Ipv6Packet::new_checked(packet)?;
    let plen = usize::from(p.payload_len());
    // Payload length 0 claims a jumbogram: the whole buffer is walked (a
    // fragment header found there makes the caller refuse the packet, as
    // the kernel does before reading it).
    let jumbo = plen == 0;
    let total_len = if jumbo {
        packet.len()
    } else {
        IPV6_HEADER + plen
    };
    if total_len > packet.len() {
        return Err(WireError::Truncated);
    }
    let pkt = &packet[..total_len];
    let mut nh = p.next_header();
    let mut nhoff = 6;
    let mut at = IPV6_HEADER;
    loop {
        match nh {
            ipv6_nh::FRAGMENT => {
                if !jumbo && at + IPV6_FRAG_HEADER > pkt.len() {
                    return Err(WireError::BadExtensionHeader);
                }
                return Ok(V6Info {
                    total_len,
                    frag_at: Some(at),
                    nhoff,
                });
            }
            ipv6_nh::HOP_BY_HOP | ipv6_nh::ROUTING | ipv6_nh::DEST_OPTS => {
                // Hop-by-hop is only valid right after the fixed header
                // (the kernel answers anything else with a parameter
                // problem: there is no handler for next header 0).
                if nh == ipv6_nh::HOP_BY_HOP && at != IPV6_HEADER {
                    return Err(WireError::BadExtensionHeader);
                }
                if at + 2 > pkt.len() {
                    return Err(WireError::BadExtensionHeader);
                }
                let len = (usize::from(pkt[at + 1]) + 1) * 8;
                if at + len > pkt.len() {
                    return Err(WireError::BadExtensionHeader);
                }
                nhoff = at;
                nh = pkt[at];
                at += len;
            }
            _ => {
                return Ok(V6Info {
                    total_len,
                    frag_at: None,
                    nhoff,
                });
            }
        }
    }
}

/// The kernel's `ipv6frag_thdr_truncated`: walking the extension headers
/// from `start` (40, right after the fixed header) with next header `nh`
/// (the fixed header's), through the fragment header, does the upper-layer
/// header fit in `pkt`? Returns true only for a first fragment (offset 0)
/// that lacks it (→ ICMPv6 parameter problem code 3, pointer 0). TCP needs
/// 20 bytes, UDP and ICMPv6 8, anything else 1. A chain the walk cannot
/// follow counts as not truncated, as in the kernel.
pub fn ipv6_upper_header_truncated(pkt: &[u8], start: usize, mut nh: u8) -> bool {
    let mut at = start;
    let mut frag_off: u16 = 0;
    loop {
        let is_ext = matches!(
            nh,
            ipv6_nh::HOP_BY_HOP
                | ipv6_nh::ROUTING
                | ipv6_nh::FRAGMENT
                | ipv6_nh::AUTH
                | ipv6_nh::NONE
                | ipv6_nh::DEST_OPTS
        );
        if !is_ext {
            break;
        }
        if nh == ipv6_nh::NONE || at + 2 > pkt.len() {
            return false;
        }
        let len = if nh == ipv6_nh::FRAGMENT {
            if at + 4 > pkt.len() {
                return false;
            }
            frag_off = u16::from_be_bytes([pkt[at + 2], pkt[at + 3]]);
            if frag_off & !7 != 0 {
                break;
            }
            8
        } else if nh == ipv6_nh::AUTH {
            (usize::from(pkt[at + 1]) + 2) * 4
        } else {
            (usize::from(pkt[at + 1]) + 1) * 8
        };
        nh = pkt[at];
        at += len;
    }
    if frag_off & !7 != 0 {
        return false;
    }
    let need = match nh {
        ipv6_nh::TCP => 20,
        ipv6_nh::UDP => 8,
        ipv6_nh::ICMPV6 => 8,
        _ => 1,
    };
    at + need > pkt.len()
}

#[cfg(test)]
mod test {
    use super::*;

    // An IPv4 fragment: id 0x1234, MF, offset 0x203*8, TTL 0x1a, proto 1,
    // 10.0.0.1 -> 10.0.0.2, 10 data bytes.
    static PACKET_BYTES: [u8; 30] = [
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x22, 0x03, 0x1a, 0x01, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
    ];

    fn golden() -> [u8; 30] {
        let mut b = PACKET_BYTES;
        let c = checksum(&b[..20]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        b
    }

    #[test]
    fn v4_deconstruct() {
        let b = golden();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.tos(), 0);
        assert_eq!(p.total_len(), 30);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 0x203 * 8);
        assert!(p.is_fragment());
        assert_eq!(p.ttl(), 0x1a);
        assert_eq!(p.protocol(), 1);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), [10, 0, 0, 2]);
        assert!(p.verify_checksum());
        assert_eq!(
            parse(&b).unwrap(),
            Parsed::V4(V4Info {
                ihl: 20,
                total_len: 30,
                offset: 0x203 * 8,
                mf: true,
                df: false
            })
        );
    }

    #[test]
    fn v4_construct() {
        let mut b = vec![0xa5u8; 30];
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_version_ihl(4, 5);
        p.set_tos(0);
        p.set_total_len(30);
        p.set_ident(0x1234);
        p.set_flags_offset(0);
        p.set_more_frags(true);
        p.set_dont_frag(false);
        p.set_frag_offset(0x203 * 8);
        p.set_ttl(0x1a);
        p.set_protocol(1);
        p.set_src_addr([10, 0, 0, 1]);
        p.set_dst_addr([10, 0, 0, 2]);
        p.fill_checksum();
        b[20..].copy_from_slice(&PACKET_BYTES[20..]);
        assert_eq!(b, golden());
    }

    #[test]
    fn v4_errors() {
        let b = golden();
        assert_eq!(parse(&[]), Err(WireError::Truncated));
        assert_eq!(parse(&b[..19]), Err(WireError::Truncated));
        assert_eq!(parse(&[0x55; 40]), Err(WireError::BadVersion(5)));
        let mut x = b;
        x[0] = 0x44;
        assert_eq!(parse(&x), Err(WireError::BadHeaderLength(4)));
        let mut x = b;
        x[0] = 0x4f; // 60-byte header in a 30-byte buffer
        assert_eq!(parse(&x), Err(WireError::BadHeaderLength(15)));
        let mut x = b;
        x[8] ^= 1;
        assert_eq!(parse(&x), Err(WireError::BadChecksum));
        // Total length past the buffer, then below the header.
        for tot in [31u16, 19] {
            let mut x = b;
            x[2..4].copy_from_slice(&tot.to_be_bytes());
            x[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&x[..20]);
            x[10..12].copy_from_slice(&c.to_be_bytes());
            assert_eq!(parse(&x), Err(WireError::BadTotalLength(tot)));
        }
        // Link padding after the packet is fine: total length decides.
        let mut padded = b.to_vec();
        padded.extend_from_slice(&[0; 16]);
        assert!(matches!(
            parse(&padded),
            Ok(Parsed::V4(V4Info { total_len: 30, .. }))
        ));
    }

    // IPv6 + hop-by-hop (8) + fragment header + 8 data bytes.
    static V6_BYTES: [u8; 64] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00,
        0x40, // ver, tc, flow; plen 24; nh hbh; hlim
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // hbh: nh frag, len 0, PadN
        0x11, 0x00, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef, // frag: nh udp, off 0x5a8, M
        1, 2, 3, 4, 5, 6, 7, 8,
    ];

    #[test]
    fn v6_deconstruct() {
        let p = Ipv6Packet::new_checked(&V6_BYTES[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0);
        assert_eq!(p.payload_len(), 24);
        assert_eq!(p.next_header(), 0);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr()[15], 1);
        assert_eq!(p.dst_addr()[15], 2);
        let f = Ipv6FragHeader::new_checked(&V6_BYTES[48..]).unwrap();
        assert_eq!(f.next_header(), 17);
        assert_eq!(f.frag_offset(), 0x5a8);
        assert!(f.more_frags());
        assert_eq!(f.ident(), 0xdead_beef);
        assert_eq!(
            parse(&V6_BYTES).unwrap(),
            Parsed::V6(V6Info {
                total_len: 64,
                frag_at: Some(48),
                nhoff: 40
            })
        );
    }

    #[test]
    fn v6_construct() {
        let mut b = vec![0xa5u8; 64];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0, 0);
        p.set_payload_len(24);
        p.set_next_header(0);
        p.set_hop_limit(64);
        p.set_src_addr(V6_BYTES[8..24].try_into().unwrap());
        p.set_dst_addr(V6_BYTES[24..40].try_into().unwrap());
        b[40..48].copy_from_slice(&V6_BYTES[40..48]);
        let mut f = Ipv6FragHeader::new_unchecked(&mut b[48..56]);
        f.set_next_header(17);
        f.set_offset_more(0x5a8, true);
        f.set_ident(0xdead_beef);
        b[56..].copy_from_slice(&V6_BYTES[56..]);
        assert_eq!(b, V6_BYTES);
        // Traffic class / flow label round trip.
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0xb7, 0xabcde);
        let p = Ipv6Packet::new_unchecked(&b[..]);
        assert_eq!((p.version(), p.traffic_class(), p.ecn()), (6, 0xb7, 3));
        assert_eq!(p.flow_label(), 0xabcde);
    }

    #[test]
    fn v6_errors() {
        assert_eq!(parse(&V6_BYTES[..39]), Err(WireError::Truncated));
        assert_eq!(parse(&V6_BYTES[..63]), Err(WireError::Truncated));
        // Hop-by-hop length running past the payload.
        let mut x = V6_BYTES;
        x[41] = 5;
        assert_eq!(parse(&x), Err(WireError::BadExtensionHeader));
        // Hop-by-hop not first.
        let mut x = V6_BYTES;
        x[40] = 0;
        assert_eq!(parse(&x), Err(WireError::BadExtensionHeader));
        // Fragment header cut by the payload length.
        let mut x = V6_BYTES;
        x[5] = 12;
        assert_eq!(parse(&x), Err(WireError::BadExtensionHeader));
        // Not a fragment: UDP right after the fixed header.
        let mut x = V6_BYTES;
        x[6] = 17;
        assert_eq!(
            parse(&x).unwrap(),
            Parsed::V6(V6Info {
                total_len: 64,
                frag_at: None,
                nhoff: 6
            })
        );
    }

    #[test]
    fn upper_header_truncation() {
        // Fragment header right after the fixed header, UDP needs 8 bytes.
        let mut pkt = vec![0u8; 48 + 7];
        pkt[40] = 17;
        assert!(ipv6_upper_header_truncated(&pkt, 40, ipv6_nh::FRAGMENT));
        pkt.push(0);
        assert!(!ipv6_upper_header_truncated(&pkt, 40, ipv6_nh::FRAGMENT));
        // TCP needs 20.
        pkt[40] = 6;
        assert!(ipv6_upper_header_truncated(&pkt, 40, ipv6_nh::FRAGMENT));
        // A non-first fragment is never checked.
        pkt[43] = 8;
        assert!(!ipv6_upper_header_truncated(&pkt, 40, ipv6_nh::FRAGMENT));
        // Behind a hop-by-hop header: walked through it.
        let mut pkt = vec![0u8; 56 + 19];
        pkt[40] = ipv6_nh::FRAGMENT;
        pkt[48] = 6;
        assert!(ipv6_upper_header_truncated(&pkt, 40, ipv6_nh::HOP_BY_HOP));
        pkt.push(0);
        assert!(!ipv6_upper_header_truncated(&pkt, 40, ipv6_nh::HOP_BY_HOP));
    }

    /// RFC 1071 done the plain way: big-endian 16-bit words, folded.
    fn naive_checksum(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for (i, b) in data.iter().enumerate() {
            sum += u64::from(*b) << if i % 2 == 0 { 8 } else { 0 };
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn checksum_matches_the_plain_sum_at_every_length() {
        // Every length and alignment of the 8-byte folding, with data that
        // carries a lot (0xff..), none (zeros) and a mix.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mixed: Vec<u8> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for data in [vec![0xffu8; 200], vec![0u8; 200], mixed] {
            for start in 0..8 {
                for len in 0..(200 - start) {
                    let d = &data[start..start + len];
                    assert_eq!(checksum(d), naive_checksum(d), "len {len} start {start}");
                    assert_eq!(header_checksum(d), naive_checksum(d));
                }
            }
        }
        // A buffer that sums to 0xffff (checksum 0) stays 0, not 0xffff.
        assert_eq!(checksum(&[0xff, 0xff]), 0);
        assert_eq!(checksum(&[0x12, 0x34, 0xed, 0xcb]), 0);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3 example words sum to 0xddf2; the stored value is its
        // complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        assert_eq!(header_checksum(&data), !0xddf2);
        assert_eq!(header_checksum(&data[..7]), checksum(&data[..7]));
    }
}
