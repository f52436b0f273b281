//! A leaf queue that drops packets it had accepted, for the tests of
//! `LeafQueue::take_dropped`: its oldest packet when full, to take a new
//! one (like `pfifo_head_drop`); at dequeue, every stale packet at its head
//! (like an AQM); and it refuses packets longer than `max_len` at enqueue.

use std::collections::VecDeque;

use htb::leaf::LeafQueue;
use htb::{DropReason, Packet};

pub struct DroppingQueue<P> {
    pub q: VecDeque<P>,
    pub cap: usize,
    pub max_len: u32,
    pub stale: fn(&P) -> bool,
    pub dropped: Vec<P>,
}

impl<P> DroppingQueue<P> {
    pub fn new(cap: usize, max_len: u32, stale: fn(&P) -> bool) -> Self {
        DroppingQueue {
            q: VecDeque::new(),
            cap,
            max_len,
            stale,
            dropped: Vec::new(),
        }
    }
}

impl<P: Packet> LeafQueue<P> for DroppingQueue<P> {
    fn enqueue(&mut self, p: P) -> Result<(), (P, DropReason)> {
        if p.len() > self.max_len {
            return Err((p, DropReason::QueueFull));
        }
        if self.q.len() >= self.cap {
            self.dropped.extend(self.q.pop_front());
        }
        self.q.push_back(p);
        Ok(())
    }
    fn dequeue(&mut self) -> Option<P> {
        while let Some(p) = self.q.pop_front() {
            if !(self.stale)(&p) {
                return Some(p);
            }
            self.dropped.push(p);
        }
        None
    }
    fn len(&self) -> usize {
        self.q.len()
    }
    fn backlog(&self) -> u64 {
        self.q.iter().map(|p| u64::from(p.len())).sum()
    }
    fn drain_into(&mut self, out: &mut Vec<P>) {
        out.extend(self.q.drain(..));
    }
    fn take_dropped(&mut self, out: &mut Vec<P>) -> usize {
        let n = self.dropped.len();
        out.append(&mut self.dropped);
        n
    }
    fn fresh(&self) -> Self {
        DroppingQueue::new(self.cap, self.max_len, self.stale)
    }
}
