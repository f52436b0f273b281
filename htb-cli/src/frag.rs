//! `htb frag --mtu N IN OUT`: every IP packet of a capture longer than the
//! MTU fragmented as the Linux kernel fragments it (`htb::frag`); the
//! kernel's counters printed (FragOKs, FragFails, FragCreates).

use htb::frag::{FragError, FragOptions, Fragmenter};
use serde_json::json;

use crate::FragArgs;
use crate::input::CliError;
use crate::pcap::{self, Emit, InPacket, Malformed};

#[derive(Debug, Default)]
struct Counts {
    packets_in: u64,
    packets_out: u64,
    not_ip: u64,
    /// IP packets no longer than the MTU.
    fit: u64,
    /// `FragOKs`: datagrams fragmented.
    frag_oks: u64,
    /// `FragFails`: datagrams that needed fragmenting and could not be.
    frag_fails: u64,
    /// `FragCreates`: fragments written.
    frag_creates: u64,
    /// Of `frag_fails`: IPv4 with DF set.
    df: u64,
    /// Of `frag_fails`: the MTU is below the minimum for this packet (IPv6:
    /// 1280).
    mtu_too_small: u64,
}

fn pass(c: &mut Counts, emit: &mut Emit<'_>, pkt: &InPacket<'_>) -> Result<(), CliError> {
    c.packets_out += 1;
    emit(pkt.data, pkt.orig_len)
}

pub fn run(a: &FragArgs) -> Result<String, CliError> {
    let mtu = a.mtu as usize;
    let mut c = Counts::default();
    let mut malformed = Malformed::new(a.drop_malformed);
    let mut next_id = a.ipv6_id;
    let mut frame = Vec::new();
    pcap::process(&a.input, &a.output, |pkt, emit: &mut Emit<'_>| {
        c.packets_in += 1;
        let Some(l3) = pcap::locate(pkt.link, pkt.data) else {
            c.not_ip += 1;
            return pass(&mut c, emit, pkt);
        };
        let ip = l3.ip(pkt.data);
        if ip.len() <= mtu {
            c.fit += 1;
            return pass(&mut c, emit, pkt);
        }
        let opts = FragOptions {
            mtu,
            ipv6_id: next_id,
            ignore_df: a.ignore_df,
        };
        let fragmenter = match Fragmenter::new(ip, opts) {
            Ok(f) => f,
            Err(FragError::DontFragment { .. }) => {
                c.df += 1;
                c.frag_fails += 1;
                return pass(&mut c, emit, pkt);
            }
            Err(FragError::MtuTooSmall { .. }) => {
                c.mtu_too_small += 1;
                c.frag_fails += 1;
                return pass(&mut c, emit, pkt);
            }
            Err(e) => {
                if malformed.note(c.packets_in, e) {
                    return pass(&mut c, emit, pkt);
                }
                return Ok(());
            }
        };
        if ip.first().is_some_and(|b| b >> 4 == 6) {
            next_id = next_id.map(|id| id.wrapping_add(1));
        }
        let mut fragmenter = fragmenter;
        // Every fragment behind the original frame's link header.
        while let Some(len) = fragmenter.next_len() {
            frame.clear();
            frame.extend_from_slice(&pkt.data[..l3.offset]);
            frame.resize(l3.offset + len, 0);
            let n = match fragmenter.next_into(&mut frame[l3.offset..]) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    return Err(CliError::Output(format!(
                        "htb: error: packet {}: fragmenting failed after validation: {e}",
                        c.packets_in
                    )));
                }
            };
            frame.truncate(l3.offset + n);
            c.frag_creates += 1;
            c.packets_out += 1;
            emit(&frame, frame.len() as u32)?;
        }
        c.frag_oks += 1;
        Ok(())
    })?;
    malformed.warn();
    if c.df > 0 {
        eprintln!(
            "htb: warning: {} IPv4 packet(s) larger than MTU {} have DF set: passed through \
             unfragmented (the kernel would answer ICMP fragmentation needed; --ignore-df fragments them)",
            c.df, a.mtu
        );
    }
    if c.mtu_too_small > 0 {
        eprintln!(
            "htb: warning: {} packet(s) not fragmented: MTU {} is below their minimum \
             (IPv6 needs at least 1280): passed through",
            c.mtu_too_small, a.mtu
        );
    }
    if a.json {
        let v = json!({
            "mtu": a.mtu,
            "packets_in": c.packets_in,
            "packets_out": c.packets_out,
            "not_ip": c.not_ip,
            "fit": c.fit,
            "FragOKs": c.frag_oks,
            "FragFails": c.frag_fails,
            "FragCreates": c.frag_creates,
            "not_fragmented_df": c.df,
            "not_fragmented_mtu_too_small": c.mtu_too_small,
            "malformed": malformed.count,
            "malformed_action": malformed.action(),
        });
        return Ok(format!("{v}\n"));
    }
    let mut out = format!(
        "{} packets in, {} out: {} fit MTU {}, {} not IP, {} datagrams fragmented into {} fragments\n",
        c.packets_in, c.packets_out, c.fit, a.mtu, c.not_ip, c.frag_oks, c.frag_creates
    );
    if c.frag_fails > 0 {
        out += &format!(
            "not fragmented: DF {}, MTU too small {} (passed through)\n",
            c.df, c.mtu_too_small
        );
    }
    if malformed.count > 0 {
        out += &format!(
            "malformed: {} ({})\n",
            malformed.count,
            if malformed.drop {
                "dropped"
            } else {
                "passed through"
            }
        );
    }
    out += &format!(
        "FragOKs {}\nFragFails {}\nFragCreates {}\n",
        c.frag_oks, c.frag_fails, c.frag_creates
    );
    Ok(out)
}
