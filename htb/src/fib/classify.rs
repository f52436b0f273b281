/*! An HTB classifier backed by a FIB: a packet's destination (or source)
address is looked up, and the matched route's value is the class.

Unicast routes carry a [`ClassId`]; blackhole, unreachable and prohibit
routes drop the packet ([`Verdict::Drop`]); no match leaves it to the default
class ([`Verdict::NoMatch`]).

```
use htb::fib::{Direction, FibClassifier, RouteKind};
use htb::{Classifier, ClassId, Verdict};

let mut c = FibClassifier::new(Direction::Destination);
c.v4.insert("10.0.0.0/8".parse().unwrap(), 0, RouteKind::Unicast(ClassId::new(1, 0x10))).unwrap();
c.v4.insert("10.66.0.0/16".parse().unwrap(), 0, RouteKind::Blackhole).unwrap();

// A 20-byte IPv4 header: 192.0.2.1 -> 10.1.2.3.
let mut pkt = vec![0u8; 20];
pkt[0] = 0x45;
pkt[12..16].copy_from_slice(&[192, 0, 2, 1]);
pkt[16..20].copy_from_slice(&[10, 1, 2, 3]);
assert_eq!(c.classify(&pkt, ClassId::new(1, 0)), Verdict::Class(ClassId::new(1, 0x10)));
pkt[17] = 66;
assert_eq!(c.classify(&pkt, ClassId::new(1, 0)), Verdict::Drop);
assert_eq!(c.classify(&vec![0u8; 3], ClassId::new(1, 0)), Verdict::NoMatch);
```
*/

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Fib, RouteKind};
use crate::class::ClassId;
use crate::sched::{Classifier, Verdict};

/// Packets whose IP addresses a [`FibClassifier`] can read.
///
/// Implemented for raw IP packets (`Vec<u8>`, `[u8]`: an IPv4 or IPv6
/// header at byte 0) and for `(IpAddr, IpAddr)` pairs `(src, dst)`.
///
/// ```
/// use std::net::IpAddr;
/// use htb::fib::PacketAddrs;
/// let p: (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "10.0.0.1".parse().unwrap());
/// assert_eq!(p.dst(), Some("10.0.0.1".parse().unwrap()));
/// ```
pub trait PacketAddrs {
    /// Source address, if the packet has one.
    fn src(&self) -> Option<IpAddr>;
    /// Destination address, if the packet has one.
    fn dst(&self) -> Option<IpAddr>;
}

/// `(source, destination)` of an IP packet starting at byte 0.
fn ip_addrs(b: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match b.first()? >> 4 {
        4 if b.len() >= 20 => {
            let s: [u8; 4] = b[12..16].try_into().ok()?;
            let d: [u8; 4] = b[16..20].try_into().ok()?;
            Some((Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()))
        }
        6 if b.len() >= 40 => {
            let s: [u8; 16] = b[8..24].try_into().ok()?;
            let d: [u8; 16] = b[24..40].try_into().ok()?;
            Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()))
        }
        _ => None,
    }
}

impl PacketAddrs for [u8] {
    fn src(&self) -> Option<IpAddr> {
        ip_addrs(self).map(|a| a.0)
    }
    fn dst(&self) -> Option<IpAddr> {
        ip_addrs(self).map(|a| a.1)
    }
}

impl PacketAddrs for Vec<u8> {
    fn src(&self) -> Option<IpAddr> {
        self.as_slice().src()
    }
    fn dst(&self) -> Option<IpAddr> {
        self.as_slice().dst()
    }
}

impl PacketAddrs for (IpAddr, IpAddr) {
    fn src(&self) -> Option<IpAddr> {
        Some(self.0)
    }
    fn dst(&self) -> Option<IpAddr> {
        Some(self.1)
    }
}

/// Which address of the packet is looked up.
///
/// ```
/// use htb::fib::{Direction, FibClassifier};
/// assert_eq!(FibClassifier::new(Direction::Source).direction, Direction::Source);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The destination address (egress shaping by where traffic goes).
    Destination,
    /// The source address (shaping by subscriber on an upload path).
    Source,
}

/// Maps a packet's address through an IPv4 and an IPv6 [`Fib`] to a class.
///
/// ```
/// use std::net::IpAddr;
/// use htb::fib::{Direction, FibClassifier, RouteKind};
/// use htb::{ClassId, Classifier, Verdict};
/// let mut c = FibClassifier::new(Direction::Source).attached_at(ClassId::new(1, 0));
/// c.v6.insert("2001:db8::/32".parse().unwrap(), 0, RouteKind::Unicast(ClassId::new(1, 0x20))).unwrap();
/// let pkt: (IpAddr, IpAddr) = ("2001:db8::7".parse().unwrap(), "::1".parse().unwrap());
/// assert_eq!(c.classify(&pkt, ClassId::new(1, 0)), Verdict::Class(ClassId::new(1, 0x20)));
/// // Attached at the qdisc only: other attach points see no match.
/// assert_eq!(c.classify(&pkt, ClassId::new(1, 1)), Verdict::NoMatch);
/// ```
#[derive(Clone, Debug)]
pub struct FibClassifier {
    /// IPv4 routes to classes.
    pub v4: Fib<Ipv4Addr, ClassId>,
    /// IPv6 routes to classes.
    pub v6: Fib<Ipv6Addr, ClassId>,
    /// Which address is looked up.
    pub direction: Direction,
    /// Answer only at this attach point (`None`: everywhere).
    pub attach: Option<ClassId>,
}

impl FibClassifier {
    /// An empty classifier answering at every attach point.
    ///
    /// ```
    /// let c = htb::fib::FibClassifier::new(htb::fib::Direction::Destination);
    /// assert!(c.v4.is_empty() && c.attach.is_none());
    /// ```
    pub fn new(direction: Direction) -> Self {
        FibClassifier {
            v4: Fib::new(),
            v6: Fib::new(),
            direction,
            attach: None,
        }
    }

    /// Answers only when the walk is at `at` (e.g. the qdisc handle).
    ///
    /// ```
    /// use htb::{ClassId, fib::{Direction, FibClassifier}};
    /// let c = FibClassifier::new(Direction::Destination).attached_at(ClassId::new(1, 0));
    /// assert_eq!(c.attach, Some(ClassId::new(1, 0)));
    /// ```
    pub fn attached_at(mut self, at: ClassId) -> Self {
        self.attach = Some(at);
        self
    }

    /// The verdict for an address.
    ///
    /// ```
    /// use htb::{ClassId, Verdict, fib::{Direction, FibClassifier, RouteKind}};
    /// let mut c = FibClassifier::new(Direction::Destination);
    /// c.v4.insert("0.0.0.0/0".parse().unwrap(), 0, RouteKind::Prohibit).unwrap();
    /// assert_eq!(c.verdict("1.2.3.4".parse().unwrap()), Verdict::Drop);
    /// assert_eq!(c.verdict("::1".parse().unwrap()), Verdict::NoMatch);
    /// ```
    pub fn verdict(&self, addr: IpAddr) -> Verdict {
        let kind = match addr {
            IpAddr::V4(a) => self.v4.lookup(a).map(|m| m.route.kind),
            IpAddr::V6(a) => self.v6.lookup(a).map(|m| m.route.kind),
        };
        match kind {
            None => Verdict::NoMatch,
            Some(RouteKind::Unicast(c)) => Verdict::Class(c),
            Some(_) => Verdict::Drop,
        }
    }
}

impl<P: PacketAddrs> Classifier<P> for FibClassifier {
    fn classify(&mut self, pkt: &P, at: ClassId) -> Verdict {
        if self.attach.is_some_and(|a| a != at) {
            return Verdict::NoMatch;
        }
        let addr = match self.direction {
            Direction::Destination => pkt.dst(),
            Direction::Source => pkt.src(),
        };
        addr.map_or(Verdict::NoMatch, |a| self.verdict(a))
    }
}
