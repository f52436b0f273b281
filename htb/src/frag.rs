//! IP fragmentation, as the Linux kernel fragments.
//!
//! CONTRACT SKELETON (lead): the public names and signatures below are used
//! by htb-cli, htb-ffi, htb-py, the benches and the kernel oracle test. The
//! fragmentation helper implements them (and may add items).

use core::fmt;

use crate::wire::WireError;

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
}

impl fmt::Display for FragError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragError::Malformed(e) => write!(f, "malformed packet: {e}"),
            FragError::DontFragment { mtu } => {
                write!(f, "DF set and packet larger than MTU {mtu} (fragmentation needed)")
            }
            FragError::MtuTooSmall { mtu, min } => {
                write!(f, "MTU {mtu} too small for this packet (at least {min})")
            }
            FragError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
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

/// Fragments of one packet, produced one at a time (no allocation needed:
/// [`Fragmenter::next_into`] writes into a caller buffer; the `Iterator`
/// impl allocates a `Vec` per fragment for convenience). A packet that fits
/// the MTU yields itself, unchanged, as its only fragment.
#[derive(Debug, Clone)]
pub struct Fragmenter<'a> {
    packet: &'a [u8],
    opts: FragOptions,
}

impl<'a> Fragmenter<'a> {
    /// Validates `packet` (IPv4 or IPv6 by its version) and plans the
    /// fragments.
    pub fn new(packet: &'a [u8], opts: FragOptions) -> Result<Self, FragError> {
        let _ = (packet, opts);
        unimplemented!("fragmentation helper")
    }

    /// Fragments still to come.
    pub fn remaining(&self) -> usize {
        unimplemented!("fragmentation helper")
    }

    /// Length of the next fragment, if any.
    pub fn next_len(&self) -> Option<usize> {
        unimplemented!("fragmentation helper")
    }

    /// Writes the next fragment into `buf` and returns its length; `Ok(None)`
    /// when done; [`FragError::BufferTooSmall`] (nothing consumed) if `buf`
    /// is too short.
    pub fn next_into(&mut self, buf: &mut [u8]) -> Result<Option<usize>, FragError> {
        let _ = buf;
        unimplemented!("fragmentation helper")
    }
}

impl Iterator for Fragmenter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        unimplemented!("fragmentation helper")
    }
}

/// Every fragment of `packet` for `mtu` (IPv6 ids random), as owned buffers.
pub fn fragment(packet: &[u8], mtu: usize) -> Result<Vec<Vec<u8>>, FragError> {
    Ok(Fragmenter::new(packet, FragOptions::new(mtu))?.collect())
}
