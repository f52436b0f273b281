//! A stream of packets into one `Reassembler`: no panic, and the memory and
//! accounting invariants hold after every push.
//!
//! Input: byte 0 picks the policy, byte 1 the memory threshold; then records
//! `[len_hi, len_lo, dt, bytes...]`; the top bit of `len_hi` sends the
//! packet with `push_owned` instead of `push` (the chain must hold as many
//! bytes as it says, and a packet not kept must come back unchanged).
#![no_main]

use htb::reasm::{
    FRAGMENT_OVERHEAD, Policy, Pushed, PushedOwned, QUEUE_OVERHEAD, ReasmConfig, ReasmError,
    Reassembler,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let policy = Policy::ALL[usize::from(data[0]) % Policy::ALL.len()];
    let high_thresh = 1024 + usize::from(data[1]) * 512;
    let mut r = Reassembler::new(ReasmConfig {
        policy,
        high_thresh,
        max_dist: u32::from(data[0] >> 4),
        ..ReasmConfig::default()
    });
    let mut rest = &data[2..];
    let mut now = 0u64;
    let mut frags = 0u64;
    while rest.len() >= 3 {
        let owned = rest[0] & 0x80 != 0;
        let len = usize::from(u16::from_be_bytes([rest[0] & 0x7f, rest[1]])).min(rest.len() - 3);
        now += u64::from(rest[2]) * 1_000_000_000;
        let pkt = &rest[3..3 + len];
        rest = &rest[3 + len..];
        // Timers first, so that the push below frees nothing of its own.
        r.expire(now);
        let before = r.mem_used();
        let res = if owned {
            match r.push_owned(pkt.to_vec(), 0, now) {
                Ok(PushedOwned::NotFragment(p)) => {
                    assert_eq!(p, pkt);
                    Ok(Pushed::NotFragment)
                }
                Ok(PushedOwned::Queued) => Ok(Pushed::Queued),
                Ok(PushedOwned::Complete(c)) => {
                    assert_eq!(c.segments().map(<[u8]>::len).sum::<usize>(), c.len());
                    Ok(Pushed::Complete(c.into_vec()))
                }
                Ok(PushedOwned::Dropped(d, p)) => {
                    assert_eq!(p, pkt);
                    Ok(Pushed::Dropped(d))
                }
                Err(e) => {
                    assert_eq!(e.packet, pkt);
                    Err(e.error)
                }
            }
        } else {
            r.push(pkt, 0, now)
        };
        let after = r.mem_used();
        match res {
            Ok(Pushed::NotFragment) | Err(ReasmError::Malformed(_)) => {}
            Ok(Pushed::Complete(buf)) => {
                frags += 1;
                r.recycle(buf);
            }
            _ => frags += 1,
        }
        // A push adds at most a queue, one fragment's bookkeeping, its header
        // and data up to its end (or, kept by `push_owned`, the whole
        // packet); above the threshold it adds nothing.
        assert!(
            after <= before.max(high_thresh) + QUEUE_OVERHEAD + FRAGMENT_OVERHEAD + 65535 + 65535
        );
        if before > high_thresh {
            assert!(after <= before);
        }
        if r.queues() == 0 {
            assert_eq!(after, 0);
        }
    }
    r.expire(u64::MAX);
    assert_eq!(r.queues(), 0);
    assert_eq!(r.mem_used(), 0);
    assert_eq!(r.next_expiry(), None);
    assert_eq!(r.stats().reasm_reqds, frags);
});
