//! Fragment arbitrary packets at an arbitrary MTU: no panic; when
//! fragmentation succeeds, every fragment fits the MTU and reassembling the
//! fragments gives the original payload back.
//!
//! Input: `[mtu_hi, mtu_lo, flags, packet...]`.
#![no_main]

use htb::frag::{FragOptions, Fragmenter};
use htb::reasm::{Pushed, ReasmConfig, Reassembler};
use htb::wire::{self, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let mtu = usize::from(u16::from_be_bytes([data[0], data[1]]));
    let flags = data[2];
    let pkt = &data[3..];
    let mut opts = FragOptions::new(mtu);
    opts.ignore_df = flags & 1 != 0;
    if flags & 2 != 0 {
        opts.ipv6_id = Some(0x1234_5678);
    }
    let Ok(mut f) = Fragmenter::new(pkt, opts) else {
        return;
    };
    // Caller buffers: a short one must be refused without consuming.
    let mut small = [0u8; 8];
    if let Some(n) = f.next_len() {
        if n > small.len() {
            assert!(f.next_into(&mut small).is_err());
        }
    }
    let frags: Vec<Vec<u8>> = f.collect();
    let mut r = Reassembler::new(ReasmConfig::default());
    let mut out = None;
    for fr in &frags {
        if frags.len() > 1 {
            assert!(
                fr.len() <= mtu,
                "fragment of {} bytes for MTU {mtu}",
                fr.len()
            );
        }
        if let Ok(Pushed::Complete(d)) = r.push(fr, 0, 0) {
            out = Some(d);
        }
    }
    // A whole, valid, unfragmented IPv4 packet cut in several pieces comes
    // back with the same payload.
    if frags.len() > 1 {
        if let Ok(Parsed::V4(i)) = wire::parse(pkt) {
            if i.offset == 0 && !i.mf {
                let d = out.expect("fragments of a whole packet reassemble");
                assert_eq!(&d[i.ihl..], &pkt[i.ihl..i.total_len]);
            }
        }
    }
});
