//! The wire views and the validating parser on arbitrary bytes: no panic,
//! and what `parse` accepts is consistent with the views.
#![no_main]

use htb::wire::{self, Ipv4Packet, Ipv6FragHeader, Ipv6Packet, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match wire::parse(data) {
        Ok(Parsed::V4(i)) => {
            let p = Ipv4Packet::new_checked(data).unwrap();
            assert!(p.verify_checksum());
            assert_eq!(p.header_len(), i.ihl);
            assert!(i.ihl >= 20 && i.ihl <= i.total_len && i.total_len <= data.len());
            assert_eq!(usize::from(p.frag_offset()), i.offset);
        }
        Ok(Parsed::V6(i)) => {
            let p = Ipv6Packet::new_checked(data).unwrap();
            assert_eq!(p.version(), 6);
            assert!(i.total_len <= data.len());
            if let Some(at) = i.frag_at {
                if p.payload_len() != 0 {
                    let f = Ipv6FragHeader::new_checked(&data[at..i.total_len]).unwrap();
                    let _ = (f.frag_offset(), f.more_frags(), f.ident());
                }
                assert!(i.nhoff < at);
            }
            let _ = wire::ipv6_upper_header_truncated(&data[..i.total_len], 40, p.next_header());
        }
        Err(_) => {}
    }
    let _ = wire::checksum(data);
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (
            p.verify_checksum(),
            p.is_fragment(),
            p.src_addr(),
            p.dst_addr(),
        );
    }
});
