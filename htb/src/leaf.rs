//! Packets and leaf queues.
//!
//! HTB itself never looks inside a packet: it needs only the length it charges
//! ([`Packet::len`], the kernel's `qdisc_pkt_len`, i.e. the L2 frame without
//! FCS). Each leaf class owns a queue behind the [`LeafQueue`] trait; the
//! default is [`Fifo`], the kernel's `pfifo` (packet limit, default 1000) with
//! an optional byte limit (`bfifo`).

use std::collections::VecDeque;

/// What HTB needs to know about a packet.
// A packet is never "empty" in HTB's eyes, so no `is_empty` twin.
#[allow(clippy::len_without_is_empty)]
pub trait Packet {
    /// The length HTB charges, in bytes (the kernel's `qdisc_pkt_len`).
    fn len(&self) -> u32;
}

impl Packet for Vec<u8> {
    fn len(&self) -> u32 {
        Vec::len(self).min(u32::MAX as usize) as u32
    }
}

impl Packet for Box<[u8]> {
    fn len(&self) -> u32 {
        <[u8]>::len(self).min(u32::MAX as usize) as u32
    }
}

impl Packet for u32 {
    /// A bare length: handy for simulations and benchmarks.
    fn len(&self) -> u32 {
        *self
    }
}

/// Why a packet was handed back instead of being queued or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The leaf queue is at its packet or byte limit.
    QueueFull,
    /// The direct queue is at `direct_qlen`.
    DirectQueueFull,
    /// The classifier asked for the packet to be dropped (`TC_ACT_SHOT`).
    Classifier,
    /// Classification hopped through more than 8 inner classes.
    ClassifyLoop,
    /// The packet was queued in a class that was removed, turned into an inner
    /// class, grafted over, or reset.
    Purged,
    /// The leaf queue dropped the packet by itself after accepting it (an
    /// AQM dropping at dequeue, a head-drop queue making room): see
    /// [`LeafQueue::take_dropped`] and [`Htb::take_dropped`](crate::Htb::take_dropped).
    LeafQueue,
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DropReason::QueueFull => "leaf queue full",
            DropReason::DirectQueueFull => "direct queue full",
            DropReason::Classifier => "dropped by classifier",
            DropReason::ClassifyLoop => "classify loop detected",
            DropReason::Purged => "purged by a configuration change",
            DropReason::LeafQueue => "dropped by the leaf queue",
        })
    }
}

/// A queue discipline for a leaf class.
///
/// HTB calls [`enqueue`](LeafQueue::enqueue) when a packet is classified to the
/// leaf and [`dequeue`](LeafQueue::dequeue) when the leaf is served. A queue
/// that holds packets but returns `None` from `dequeue` is non-work-conserving
/// (like netem or tbf): HTB skips it for this round, as the kernel does.
///
/// A queue that drops packets it had accepted (an AQM such as CoDel, which
/// drops at dequeue; a head-drop queue, which drops its oldest packet to take
/// a new one) hands them over through
/// [`take_dropped`](LeafQueue::take_dropped), so that none is lost silently.
pub trait LeafQueue<P> {
    /// Queues `pkt`, or hands it back with the reason.
    fn enqueue(&mut self, pkt: P) -> Result<(), (P, DropReason)>;
    /// Takes the next packet to send.
    fn dequeue(&mut self) -> Option<P>;
    /// Packets queued.
    fn len(&self) -> usize;
    /// Bytes queued (sum of [`Packet::len`]).
    fn backlog(&self) -> u64;
    /// True when no packet is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Removes every packet, appending them to `out`.
    fn drain_into(&mut self, out: &mut Vec<P>);
    /// Moves the packets this queue dropped by itself since the last call to
    /// the end of `out`, oldest first, and returns how many. Never the packet
    /// an `enqueue` hands back, which the caller already has. HTB calls it
    /// after every `enqueue` and `dequeue` of the queue, takes those packets
    /// out of its queue length and backlog, counts them as drops as the
    /// kernel counts a child qdisc's own drops (qdisc drops; class drops too
    /// for those dropped during an enqueue) and keeps them for
    /// [`Htb::take_dropped`](crate::Htb::take_dropped). The default, for
    /// queues that only drop at enqueue, has none (and costs nothing).
    #[inline]
    fn take_dropped(&mut self, out: &mut Vec<P>) -> usize {
        let _ = out;
        0
    }
    /// A new empty queue with the same configuration (used for new leaves).
    fn fresh(&self) -> Self
    where
        Self: Sized;
    /// A hint that [`dequeue`](LeafQueue::dequeue) will soon be called: the
    /// queue may start loading the packet it will hand out. HTB calls it when
    /// its round robin moves on to this leaf. The default does nothing.
    #[inline]
    fn prefetch_dequeue(&self) {}
}

/// First-in first-out queue with a packet limit and an optional byte limit:
/// the kernel's `pfifo` (and `bfifo` when only bytes are limited).
///
/// `repr(C)`: what an enqueue without byte limit reads comes first, so in
/// HTB's class layout it shares one cache line with the class's activity.
#[repr(C)]
pub struct Fifo<P> {
    q: VecDeque<P>,
    bytes: u64,
    limit_packets: usize,
    byte_limited: bool,
    /// Meaningful only when `byte_limited`.
    limit_bytes: u64,
}

impl<P: core::fmt::Debug> core::fmt::Debug for Fifo<P> {
    // As `#[derive(Debug)]` printed it when the byte limit was an `Option`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fifo")
            .field("q", &self.q)
            .field("bytes", &self.bytes)
            .field("limit_packets", &self.limit_packets)
            .field("limit_bytes", &self.limit_bytes())
            .finish()
    }
}

/// The kernel's default leaf queue length (`tx_queue_len`).
pub const DEFAULT_FIFO_LIMIT: usize = 1000;

impl<P> Default for Fifo<P> {
    fn default() -> Self {
        Fifo::new(DEFAULT_FIFO_LIMIT)
    }
}

impl<P> Fifo<P> {
    /// A `pfifo` holding at most `limit_packets` packets.
    pub fn new(limit_packets: usize) -> Self {
        Fifo {
            q: VecDeque::new(),
            bytes: 0,
            limit_packets,
            byte_limited: false,
            limit_bytes: 0,
        }
    }

    /// A `bfifo` holding at most `limit_bytes` bytes (no packet limit).
    pub fn bytes(limit_bytes: u64) -> Self {
        Fifo {
            q: VecDeque::new(),
            bytes: 0,
            limit_packets: usize::MAX,
            byte_limited: true,
            limit_bytes,
        }
    }

    /// Adds a byte limit to this queue.
    pub fn with_byte_limit(mut self, limit_bytes: u64) -> Self {
        self.byte_limited = true;
        self.limit_bytes = limit_bytes;
        self
    }

    /// The packet limit.
    pub fn limit_packets(&self) -> usize {
        self.limit_packets
    }

    /// The byte limit, if any.
    pub fn limit_bytes(&self) -> Option<u64> {
        self.byte_limited.then_some(self.limit_bytes)
    }
}

impl<P: Packet> LeafQueue<P> for Fifo<P> {
    #[inline]
    fn enqueue(&mut self, pkt: P) -> Result<(), (P, DropReason)> {
        let len = pkt.len() as u64;
        if self.q.len() >= self.limit_packets
            || (self.byte_limited && self.bytes + len > self.limit_bytes)
        {
            return Err((pkt, DropReason::QueueFull));
        }
        self.bytes += len;
        self.q.push_back(pkt);
        Ok(())
    }

    #[inline]
    fn dequeue(&mut self) -> Option<P> {
        let p = self.q.pop_front()?;
        self.bytes -= p.len() as u64;
        Some(p)
    }

    #[inline]
    fn len(&self) -> usize {
        self.q.len()
    }

    #[inline]
    fn backlog(&self) -> u64 {
        self.bytes
    }

    fn drain_into(&mut self, out: &mut Vec<P>) {
        out.extend(self.q.drain(..));
        self.bytes = 0;
    }

    #[inline]
    fn prefetch_dequeue(&self) {
        if let Some(first) = self.q.front() {
            crate::hint::prefetch(first);
        }
    }

    fn fresh(&self) -> Self {
        Fifo {
            q: VecDeque::new(),
            bytes: 0,
            limit_packets: self.limit_packets,
            byte_limited: self.byte_limited,
            limit_bytes: self.limit_bytes,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn packet_limit() {
        let mut f: Fifo<u32> = Fifo::new(2);
        assert!(f.enqueue(100).is_ok());
        assert!(f.enqueue(200).is_ok());
        assert_eq!(f.enqueue(300), Err((300, DropReason::QueueFull)));
        assert_eq!(f.backlog(), 300);
        assert_eq!(f.dequeue(), Some(100));
        assert_eq!(f.backlog(), 200);
    }

    #[test]
    fn order_limits_and_debug_match_a_vecdeque() {
        let mut f: Fifo<u32> = Fifo::new(100);
        let mut model = std::collections::VecDeque::new();
        let mut x: u32 = 7;
        for step in 0..2000u32 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            if (x >> 16) % 3 != 0 {
                let r = f.enqueue(step);
                if model.len() < 100 {
                    assert!(r.is_ok());
                    model.push_back(step);
                } else {
                    assert!(r.is_err());
                }
            } else {
                assert_eq!(f.dequeue(), model.pop_front());
            }
            assert_eq!(f.len(), model.len());
            assert_eq!(f.backlog(), model.iter().map(|&p| p as u64).sum::<u64>());
            if step % 97 == 0 {
                assert_eq!(
                    format!("{f:?}"),
                    format!(
                        "Fifo {{ q: {model:?}, bytes: {}, limit_packets: 100, limit_bytes: None }}",
                        f.backlog()
                    )
                );
            }
        }
        let mut out = vec![];
        f.drain_into(&mut out);
        assert_eq!(out, model.into_iter().collect::<Vec<_>>());
        assert_eq!((f.len(), f.backlog(), f.dequeue()), (0, 0, None));
    }

    #[test]
    fn byte_limit() {
        let mut f: Fifo<u32> = Fifo::bytes(1500);
        assert!(f.enqueue(1000).is_ok());
        assert_eq!(f.enqueue(600), Err((600, DropReason::QueueFull)));
        assert!(f.enqueue(500).is_ok());
        let mut out = vec![];
        f.drain_into(&mut out);
        assert_eq!(out, vec![1000, 500]);
        assert_eq!((f.len(), f.backlog()), (0, 0));
        assert_eq!(f.fresh().limit_bytes(), Some(1500));
    }
}
