//! Captures in and out for `htb reasm` and `htb frag`: pcap or pcapng read
//! with the `pcap-file` crate, every packet handed to a closure that emits
//! zero or more packets, written in the input's own format (same header, same
//! interfaces, same non-packet blocks, in order).
//!
//! The link layers understood are the ones IP captures come in: Ethernet
//! (with 802.1Q / 802.1ad tags), raw IP (LINKTYPE_RAW 101, IPV4 228, IPV6
//! 229), Linux cooked (SLL 113, SLL2 276) and BSD loopback (NULL 0, LOOP 108).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::{DataLink, PcapError, TsResolution};

use crate::input::{CliError, io_reason};

/// Snap length of the output: reassembled datagrams reach 65535 bytes plus
/// the link header, longer than many captures' snaplen (the writer refuses
/// packets longer than the header's snaplen). tcpdump's default.
const OUT_SNAPLEN: u32 = 262_144;

/// The pcapng block type of a section header (its magic number).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The link layers this module can find an IP header in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// IP header first (101, 228, 229).
    RawIp,
    LinuxSll,
    LinuxSll2,
    /// 4-byte address family, host (NULL) or network (LOOP) byte order.
    Loopback,
}

impl Link {
    pub fn from_datalink(d: DataLink) -> Option<Link> {
        Some(match d {
            DataLink::ETHERNET => Link::Ethernet,
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Link::RawIp,
            DataLink::LINUX_SLL => Link::LinuxSll,
            DataLink::LINUX_SLL2 => Link::LinuxSll2,
            DataLink::NULL | DataLink::LOOP => Link::Loopback,
            _ => return None,
        })
    }
}

/// Where the IP packet of a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L3 {
    /// Bytes of link header before the IP header.
    pub offset: usize,
    /// End of the IP packet as its length fields say, when they fit the
    /// frame (Ethernet pads short frames to 60 bytes; the kernel trims the
    /// padding off before IP sees the packet, and so do we).
    pub end: usize,
    /// VLAN ids of the tags crossed (12 bits each, outermost highest):
    /// fragments on different VLANs never belong together.
    pub vlans: u32,
}

impl L3 {
    pub fn ip<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.offset..self.end]
    }
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Finds the IPv4 / IPv6 packet in a frame; `None` when the frame carries
/// something else (ARP, another protocol, a frame too short for its link
/// header).
pub fn locate(link: Link, frame: &[u8]) -> Option<L3> {
    let mut vlans = 0u32;
    let offset = match link {
        Link::Ethernet => {
            let mut at = 12;
            let mut ty = be16(frame, at)?;
            // 802.1Q, 802.1ad and the old pre-standard QinQ tag.
            while matches!(ty, 0x8100 | 0x88a8 | 0x9100) {
                vlans = (vlans << 12) | u32::from(be16(frame, at + 2)? & 0x0fff);
                at += 4;
                ty = be16(frame, at)?;
            }
            if ty != ETH_P_IP && ty != ETH_P_IPV6 {
                return None;
            }
            at + 2
        }
        Link::RawIp => 0,
        Link::LinuxSll => match be16(frame, 14)? {
            ETH_P_IP | ETH_P_IPV6 => 16,
            _ => return None,
        },
        Link::LinuxSll2 => match be16(frame, 0)? {
            ETH_P_IP | ETH_P_IPV6 => 20,
            _ => return None,
        },
        Link::Loopback => {
            let f = frame.get(..4)?;
            let le = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            let be = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30
            // (the BSDs and macOS).
            let known = |v: u32| matches!(v, 2 | 10 | 24 | 28 | 30);
            if !known(le) && !known(be) {
                return None;
            }
            4
        }
    };
    let ip = frame.get(offset..)?;
    let version = ip.first()? >> 4;
    let len = match version {
        4 => be16(ip, 2).map(usize::from).filter(|&l| l >= 20),
        6 => be16(ip, 4).filter(|&l| l > 0).map(|l| 40 + usize::from(l)),
        _ if link == Link::RawIp => return None,
        // The link layer said IP: a bad version is a malformed IP packet.
        _ => None,
    };
    let end = match len {
        Some(l) if l <= ip.len() => offset + l,
        // Longer than the frame (truncated by the snaplen, or a lie): keep
        // everything so that the reassembler reports the truncation.
        _ => frame.len(),
    };
    Some(L3 { offset, end, vlans })
}

/// One packet of the input.
pub struct InPacket<'a> {
    /// pcapng interface (0 for pcap).
    pub iface: u32,
    pub link: Link,
    /// Capture time in ns since the epoch.
    pub now_ns: u64,
    pub data: &'a [u8],
    pub orig_len: u32,
}

/// What the per-packet closure writes: `emit(frame, orig_len)` writes a
/// packet with the input packet's timestamp and interface.
pub type Emit<'e> = dyn FnMut(&[u8], u32) -> Result<(), CliError> + 'e;

/// The malformed IP packets of a run (`--drop-malformed` or passed through
/// unchanged): how many, and the first one's error for the warning.
#[derive(Debug, Default)]
pub struct Malformed {
    pub count: u64,
    first: Option<String>,
    /// `--drop-malformed`.
    pub drop: bool,
}

impl Malformed {
    pub fn new(drop: bool) -> Self {
        Malformed {
            drop,
            ..Malformed::default()
        }
    }

    /// Counts input packet number `packet` as malformed because of `err`;
    /// true when it is to be passed through (not dropped).
    pub fn note(&mut self, packet: u64, err: impl std::fmt::Display) -> bool {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(format!("packet {packet}: {err}"));
        }
        !self.drop
    }

    /// Packets passed through unchanged (0 with `--drop-malformed`).
    pub fn passed(&self) -> u64 {
        if self.drop { 0 } else { self.count }
    }

    /// `"dropped"` or `"passed"` (the JSON `malformed_action`).
    pub fn action(&self) -> &'static str {
        if self.drop { "dropped" } else { "passed" }
    }

    /// The warning on stderr when there were any.
    pub fn warn(&self) {
        if let Some(m) = &self.first {
            let what = if self.drop {
                "dropped"
            } else {
                "passed through unchanged"
            };
            eprintln!(
                "htb: warning: {} malformed IP packet(s) {what}; the first: {m}",
                self.count
            );
        }
    }
}

/// What [`process`] saw besides the packets.
#[derive(Debug, Default)]
pub struct Summary {
    /// `"pcap"` or `"pcapng"`.
    pub format: &'static str,
}

fn in_err(path: &Path, what: &str, e: PcapError) -> CliError {
    let reason = match e {
        PcapError::IoError(e) => io_reason(&e),
        PcapError::IncompleteBuffer => "truncated file".to_string(),
        e => e.to_string(),
    };
    CliError::Input(format!(
        "{}: error: {what}: {reason}",
        crate::input::display_name(path)
    ))
}

fn out_err(path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::Output(format!("{}: error: cannot write: {e}", path.display()))
}

fn unsupported(path: &Path, d: DataLink) -> CliError {
    CliError::Input(format!(
        "{}: error: link type {} ({:?}) is not supported (Ethernet, raw IP 101/228/229, \
         Linux cooked SLL/SLL2, BSD loopback NULL/LOOP)",
        path.display(),
        u32::from(d),
        d
    ))
}

/// Nanoseconds since the epoch of a pcapng timestamp: pcap-file keeps the raw
/// 64-bit count in the `Duration`'s nanoseconds whatever the interface's
/// `if_tsresol` (default 10^-6 s).
fn pcapng_ns(raw: Duration, tsresol: u8) -> u64 {
    let raw = raw.as_nanos();
    let ns = if tsresol & 0x80 == 0 {
        let exp = u32::from(tsresol);
        if exp <= 9 {
            raw.saturating_mul(10u128.pow(9 - exp))
        } else {
            raw / 10u128.saturating_pow(exp - 9)
        }
    } else {
        let exp = u32::from(tsresol & 0x7f).min(120);
        raw.saturating_mul(1_000_000_000) >> exp
    };
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Reads `input`, calls `f` on every packet, writes what it emits to
/// `output` in the same format. Errors: unreadable or corrupt input, an
/// unsupported link type (exit 2); an unwritable output (exit 1).
pub fn process<F>(input: &Path, output: &Path, mut f: F) -> Result<Summary, CliError>
where
    F: FnMut(&InPacket<'_>, &mut Emit<'_>) -> Result<(), CliError>,
{
    let name = crate::input::display_name(input);
    if input.is_dir() {
        return Err(CliError::Input(format!("{name}: error: is a directory")));
    }
    let file = File::open(input)
        .map_err(|e| CliError::Input(format!("{name}: error: cannot open: {}", io_reason(&e))))?;
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(CliError::Input(format!(
                "{name}: error: the output would overwrite the input"
            )));
        }
    }
    let mut rd = BufReader::with_capacity(1 << 16, file);
    let magic = rd
        .fill_buf()
        .map_err(|e| CliError::Input(format!("{name}: error: cannot read: {}", io_reason(&e))))?;
    if magic.is_empty() {
        return Err(CliError::Input(format!(
            "{name}: error: empty file (not a pcap or pcapng capture)"
        )));
    }
    let pcapng = magic.starts_with(&PCAPNG_MAGIC);
    let create = || {
        File::create(output)
            .map(|f| BufWriter::with_capacity(1 << 16, f))
            .map_err(|e| out_err(output, io_reason(&e)))
    };
    if pcapng {
        let mut r = PcapNgReader::new(rd).map_err(|e| in_err(input, "not a pcapng capture", e))?;
        let mut w = PcapNgWriter::with_section_header(create()?, r.section().clone())
            .map_err(|e| out_err(output, e))?;
        // Per interface of the current section: link and timestamp resolution.
        let mut ifaces: Vec<(Link, u8)> = Vec::new();
        let mut last_ns = 0u64;
        let mut n = 0u64;
        while let Some(block) = r.next_block() {
            n += 1;
            let block = block.map_err(|e| in_err(input, &format!("block {n}"), e))?;
            match block {
                Block::SectionHeader(_) => {
                    ifaces.clear();
                    w.write_block(&block).map_err(|e| out_err(output, e))?;
                }
                Block::InterfaceDescription(ref idb) => {
                    let link = Link::from_datalink(idb.linktype)
                        .ok_or_else(|| unsupported(input, idb.linktype))?;
                    let res = idb
                        .options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                            _ => None,
                        })
                        .unwrap_or(6);
                    ifaces.push((link, res));
                    w.write_block(&block).map_err(|e| out_err(output, e))?;
                }
                Block::EnhancedPacket(epb) => {
                    let &(link, res) = ifaces.get(epb.interface_id as usize).ok_or_else(|| {
                        CliError::Input(format!(
                            "{name}: error: block {n}: packet on undeclared interface {}",
                            epb.interface_id
                        ))
                    })?;
                    last_ns = pcapng_ns(epb.timestamp, res);
                    let pkt = InPacket {
                        iface: epb.interface_id,
                        link,
                        now_ns: last_ns,
                        data: &epb.data,
                        orig_len: epb.original_len,
                    };
                    let mut emit = |data: &[u8], orig_len: u32| {
                        let orig_len = orig_len.max(data.len() as u32);
                        let out = EnhancedPacketBlock {
                            interface_id: epb.interface_id,
                            timestamp: epb.timestamp,
                            original_len: orig_len,
                            data: Cow::Borrowed(data),
                            options: epb.options.clone(),
                        };
                        w.write_pcapng_block(out)
                            .map(|_| ())
                            .map_err(|e| out_err(output, e))
                    };
                    f(&pkt, &mut emit)?;
                }
                Block::SimplePacket(spb) => {
                    // No interface id (always the first) and no timestamp:
                    // time stands still at the previous packet's.
                    let &(link, _) = ifaces.first().ok_or_else(|| {
                        CliError::Input(format!(
                            "{name}: error: block {n}: packet before any interface"
                        ))
                    })?;
                    let pkt = InPacket {
                        iface: 0,
                        link,
                        now_ns: last_ns,
                        data: &spb.data,
                        orig_len: spb.original_len,
                    };
                    let mut emit = |data: &[u8], orig_len: u32| {
                        let orig_len = orig_len.max(data.len() as u32);
                        let out = SimplePacketBlock {
                            original_len: orig_len,
                            data: Cow::Borrowed(data),
                        };
                        w.write_pcapng_block(out)
                            .map(|_| ())
                            .map_err(|e| out_err(output, e))
                    };
                    f(&pkt, &mut emit)?;
                }
                // Name resolution, statistics, obsolete packet blocks,
                // journal entries, unknown blocks: copied as they are.
                other => {
                    w.write_block(&other).map_err(|e| out_err(output, e))?;
                }
            }
        }
        w.into_inner()
            .flush()
            .map_err(|e| out_err(output, io_reason(&e)))?;
        Ok(Summary { format: "pcapng" })
    } else {
        let mut r =
            PcapReader::new(rd).map_err(|e| in_err(input, "not a pcap or pcapng capture", e))?;
        let hdr = r.header();
        let link =
            Link::from_datalink(hdr.datalink).ok_or_else(|| unsupported(input, hdr.datalink))?;
        let out_hdr = PcapHeader {
            snaplen: hdr.snaplen.max(OUT_SNAPLEN),
            ..hdr
        };
        let mut w = PcapWriter::with_header(create()?, out_hdr).map_err(|e| out_err(output, e))?;
        let mut n = 0u64;
        // Raw records: pcap-file's checked `next_packet` refuses a packet
        // whose wire length exceeds the snaplen, i.e. every packet that the
        // capture cut short (`tcpdump -s 96`); those are ordinary here
        // (they pass through as malformed IP).
        while let Some(p) = r.next_raw_packet() {
            n += 1;
            let p = p.map_err(|e| in_err(input, &format!("packet {n}"), e))?;
            let nanos = match hdr.ts_resolution {
                TsResolution::MicroSecond => u64::from(p.ts_frac) * 1000,
                TsResolution::NanoSecond => u64::from(p.ts_frac),
            };
            // A fraction of a second of 1 s or more (a broken writer)
            // carries into the seconds.
            let timestamp = Duration::from_secs(u64::from(p.ts_sec)) + Duration::from_nanos(nanos);
            let pkt = InPacket {
                iface: 0,
                link,
                now_ns: u64::try_from(timestamp.as_nanos()).unwrap_or(u64::MAX),
                data: &p.data,
                orig_len: p.orig_len,
            };
            let mut emit = |data: &[u8], orig_len: u32| {
                // The writer wants incl_len <= orig_len, as the format does.
                let orig_len = orig_len.max(data.len() as u32);
                w.write_packet(&PcapPacket::new(timestamp, orig_len, data))
                    .map(|_| ())
                    .map_err(|e| out_err(output, e))
            };
            f(&pkt, &mut emit)?;
        }
        w.into_writer()
            .flush()
            .map_err(|e| out_err(output, io_reason(&e)))?;
        Ok(Summary { format: "pcap" })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn eth(ty: u16, tags: &[u16], ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for &t in tags {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn finds_ip_behind_ethernet_vlans_and_trims_padding() {
        let mut ip = vec![0x45, 0, 0, 28];
        ip.resize(28, 0);
        let mut frame = eth(ETH_P_IP, &[0x2005, 7], &ip);
        frame.resize(60 + 8, 0); // Ethernet padding
        let l3 = locate(Link::Ethernet, &frame).unwrap();
        assert_eq!(l3.offset, 22);
        assert_eq!(l3.end, 22 + 28);
        assert_eq!(l3.vlans, (5 << 12) | 7);
        assert_eq!(l3.ip(&frame), &ip[..]);
        assert_eq!(locate(Link::Ethernet, &eth(0x0806, &[], &ip)), None);
        assert_eq!(locate(Link::Ethernet, &frame[..13]), None);
    }

    #[test]
    fn a_length_past_the_frame_keeps_the_whole_frame() {
        let mut ip = vec![0x60, 0, 0, 0, 0x05, 0xdc];
        ip.resize(60, 0);
        let l3 = locate(Link::RawIp, &ip).unwrap();
        assert_eq!((l3.offset, l3.end), (0, 60));
        assert_eq!(locate(Link::RawIp, &[0x20, 1, 2]), None);
        assert_eq!(locate(Link::RawIp, &[]), None);
    }

    #[test]
    fn pcapng_resolutions() {
        assert_eq!(pcapng_ns(Duration::from_nanos(1_500_000), 6), 1_500_000_000);
        assert_eq!(pcapng_ns(Duration::from_nanos(7), 9), 7);
        assert_eq!(
            pcapng_ns(Duration::from_nanos(1024), 0x80 | 10),
            1_000_000_000
        );
    }
}
