//! IPv4 / IPv6 header views shared by the `reasm` and `frag` modules.
//!
//! CONTRACT SKELETON (lead): the reassembly helper owns this file and grows
//! it (smoltcp-style `Packet<T>` views + `Repr`); the names below are used by
//! other modules and must stay.

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
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
