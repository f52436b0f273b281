/*! A forwarding information base: longest-prefix match for IPv4 and IPv6,
with the answers of Linux's `ip route get fibmatch`.

[`Fib`] holds routes the way the kernel's main table does (see
`shared/docs/fib-anchors.md`):

* Several routes per prefix, ordered by metric; the lowest metric is the one
  a lookup answers with. A second route with the same prefix and metric is
  refused ([`FibError::Exists`], `ip route add`'s "File exists");
  [`Fib::replace`] overwrites it (`ip route replace`).
* Route types ([`RouteKind`]): unicast with a caller value (a next-hop id, an
  interface, a class id…), blackhole, unreachable, prohibit. A lookup that
  lands on an error type returns it; it does not fall back to a shorter
  prefix (the kernel answers `EINVAL`/`EHOSTUNREACH`/`EACCES`).
* `/0` is an ordinary prefix. Host bits must be zero ([`Prefix::new`]; the
  kernel's "Invalid prefix for given prefix length"), or use
  [`Prefix::new_masked`].

The prefixes live in an LC-trie ([`trie`]) shaped like the kernel's
`fib_trie`, with its inflate/halve thresholds and `/proc/net/fib_triestat`
style [statistics](Fib::stats). Lookups go through a compiled table updated
incrementally with every insert and remove, one implementation for both
families ([`table`]): a multibit trie of compressed 6-bit-stride nodes below
a /18 array.

```
use std::net::Ipv4Addr;
use htb::fib::{Fib, Prefix, RouteKind};

let mut fib: Fib<Ipv4Addr, &str> = Fib::new();
fib.insert("0.0.0.0/0".parse().unwrap(), 100, RouteKind::Unicast("uplink")).unwrap();
fib.insert("10.0.0.0/8".parse().unwrap(), 10, RouteKind::Unicast("core")).unwrap();
fib.insert("10.1.0.0/16".parse().unwrap(), 10, RouteKind::Blackhole).unwrap();

let m = fib.lookup("10.2.3.4".parse().unwrap()).unwrap();
assert_eq!(m.prefix.to_string(), "10.0.0.0/8");
assert_eq!(m.route.kind, RouteKind::Unicast("core"));
assert_eq!(fib.lookup("10.1.9.9".parse().unwrap()).unwrap().route.kind, RouteKind::Blackhole);
assert_eq!(fib.lookup("192.0.2.1".parse().unwrap()).unwrap().prefix.len(), 0);
```
*/

pub mod classify;
pub mod load;
pub mod shared;
pub mod synth;
pub mod table;
pub mod trie;

use core::fmt;
use core::hash::Hash;
use core::num::NonZeroU32;
use core::str::FromStr;
use std::net::{Ipv4Addr, Ipv6Addr};

pub use classify::{Direction, FibClassifier, PacketAddrs};
pub use shared::{FibReader, FibReaderFactory, FibWriter, shared};
pub use trie::{KeyBits, MAX_WORK, Thresholds, TrieStats};

use table::{MAX_TAG, Table};
use trie::Trie;

/// An address type a [`Fib`] can be keyed by: [`Ipv4Addr`] or [`Ipv6Addr`].
///
/// ```
/// use std::net::Ipv4Addr;
/// use htb::fib::FibKey;
/// assert_eq!(Ipv4Addr::new(10, 0, 0, 1).to_bits(), 0x0a00_0001u32);
/// assert_eq!(<Ipv4Addr as FibKey>::from_bits(0x0a00_0001), Ipv4Addr::new(10, 0, 0, 1));
/// ```
pub trait FibKey:
    Copy + Eq + Ord + Hash + fmt::Debug + fmt::Display + FromStr + Send + Sync + 'static
{
    /// The integer form of the address.
    type Bits: KeyBits;
    /// The address as an integer (network byte order read big-endian).
    fn to_bits(self) -> Self::Bits;
    /// The address from its integer form.
    fn from_bits(b: Self::Bits) -> Self;
}

impl FibKey for Ipv4Addr {
    type Bits = u32;
    #[inline(always)]
    fn to_bits(self) -> u32 {
        u32::from(self)
    }
    #[inline(always)]
    fn from_bits(b: u32) -> Self {
        Ipv4Addr::from(b)
    }
}

impl FibKey for Ipv6Addr {
    type Bits = u128;
    #[inline(always)]
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    #[inline(always)]
    fn from_bits(b: u128) -> Self {
        Ipv6Addr::from(b)
    }
}

/// Why a FIB call or a prefix was refused. Nothing changes when an error is
/// returned.
///
/// ```
/// use std::net::Ipv4Addr;
/// use htb::fib::{FibError, Prefix};
/// let e = Prefix::new(Ipv4Addr::new(10, 0, 0, 1), 8).unwrap_err();
/// assert_eq!(e.to_string(), "invalid prefix 10.0.0.1/8: host bits set (did you mean 10.0.0.0/8?)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibError {
    /// The prefix length exceeds the address width.
    PrefixLength {
        /// The length given.
        len: u8,
        /// The address width (32 or 128).
        max: u8,
    },
    /// Bits beyond the prefix length are set.
    HostBits {
        /// The prefix as given.
        given: String,
        /// The prefix with the host bits cleared.
        masked: String,
    },
    /// The text is not an address or `address/length` of this family.
    Parse(String),
    /// A route with this prefix and metric exists (`ip route add`'s EEXIST).
    Exists {
        /// The prefix.
        prefix: String,
        /// The metric.
        metric: u32,
    },
    /// Batch lookup: the output slice is not as long as the input.
    LengthMismatch {
        /// Addresses given.
        addrs: usize,
        /// Result slots given.
        out: usize,
    },
    /// More distinct prefixes than the table can number (2^31 - 1).
    Full,
}

impl fmt::Display for FibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FibError::PrefixLength { len, max } => {
                write!(f, "invalid prefix length {len} (at most {max})")
            }
            FibError::HostBits { given, masked } => write!(
                f,
                "invalid prefix {given}: host bits set (did you mean {masked}?)"
            ),
            FibError::Parse(s) => write!(f, "invalid prefix \"{s}\""),
            FibError::Exists { prefix, metric } => {
                write!(f, "route {prefix} metric {metric} exists")
            }
            FibError::LengthMismatch { addrs, out } => {
                write!(f, "batch lookup: {addrs} addresses but {out} result slots")
            }
            FibError::Full => write!(f, "too many prefixes"),
        }
    }
}

impl std::error::Error for FibError {}

/// An address prefix `addr/len` with no host bits set.
///
/// Ordered by address, then length (a prefix sorts before its
/// more-specifics). Displays as `10.0.0.0/8`, `2001:db8::/32`; parses the
/// same, and a bare address as a host prefix (/32, /128).
///
/// ```
/// use std::net::{Ipv4Addr, Ipv6Addr};
/// use htb::fib::Prefix;
/// let p: Prefix<Ipv4Addr> = "192.168.0.0/16".parse().unwrap();
/// assert!(p.contains(Ipv4Addr::new(192, 168, 7, 1)));
/// assert_eq!(p.len(), 16);
/// let q = Prefix::new_masked(Ipv6Addr::LOCALHOST, 64).unwrap();
/// assert_eq!(q.to_string(), "::/64");
/// assert!("10.0.0.1/8".parse::<Prefix<Ipv4Addr>>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix<K> {
    addr: K,
    len: u8,
}

#[inline(always)]
fn mask<B: KeyBits>(len: u8) -> B {
    B::high_mask(B::BITS - len)
}

impl<K: FibKey> Prefix<K> {
    /// `addr/len`; refuses a length beyond the address width and set host
    /// bits.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// assert!(Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8).is_ok());
    /// assert!(Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 33).is_err());
    /// ```
    pub fn new(addr: K, len: u8) -> Result<Self, FibError> {
        let p = Self::new_masked(addr, len)?;
        if p.addr != addr {
            return Err(FibError::HostBits {
                given: format!("{addr}/{len}"),
                masked: p.to_string(),
            });
        }
        Ok(p)
    }

    /// `addr/len` with the host bits cleared.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// let p = Prefix::new_masked(Ipv4Addr::new(10, 9, 8, 7), 8).unwrap();
    /// assert_eq!(p.addr(), Ipv4Addr::new(10, 0, 0, 0));
    /// ```
    pub fn new_masked(addr: K, len: u8) -> Result<Self, FibError> {
        let max = K::Bits::BITS;
        if len > max {
            return Err(FibError::PrefixLength { len, max });
        }
        let bits = addr.to_bits().and(mask::<K::Bits>(len));
        Ok(Prefix {
            addr: K::from_bits(bits),
            len,
        })
    }

    /// The host prefix of `addr` (/32 or /128).
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// assert_eq!(Prefix::host(Ipv4Addr::LOCALHOST).to_string(), "127.0.0.1/32");
    /// ```
    pub fn host(addr: K) -> Self {
        Prefix {
            addr,
            len: K::Bits::BITS,
        }
    }

    /// The network address.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// let p: Prefix<Ipv4Addr> = "10.0.0.0/8".parse().unwrap();
    /// assert_eq!(p.addr(), Ipv4Addr::new(10, 0, 0, 0));
    /// ```
    pub fn addr(&self) -> K {
        self.addr
    }

    /// The prefix length.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// assert_eq!("10.0.0.0/8".parse::<Prefix<Ipv4Addr>>().unwrap().len(), 8);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` is inside the prefix.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// let p: Prefix<Ipv4Addr> = "10.0.0.0/8".parse().unwrap();
    /// assert!(p.contains(Ipv4Addr::new(10, 255, 0, 1)));
    /// assert!(!p.contains(Ipv4Addr::new(11, 0, 0, 0)));
    /// ```
    pub fn contains(&self, addr: K) -> bool {
        addr.to_bits().and(mask::<K::Bits>(self.len)) == self.addr.to_bits()
    }

    /// Whether `other` is this prefix or one of its more-specifics.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// let p: Prefix<Ipv4Addr> = "10.0.0.0/8".parse().unwrap();
    /// assert!(p.covers(&"10.1.0.0/16".parse().unwrap()));
    /// assert!(!p.covers(&"0.0.0.0/0".parse().unwrap()));
    /// ```
    pub fn covers(&self, other: &Prefix<K>) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// The last address of the prefix.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::Prefix;
    /// let p: Prefix<Ipv4Addr> = "10.0.0.0/8".parse().unwrap();
    /// assert_eq!(p.last(), Ipv4Addr::new(10, 255, 255, 255));
    /// ```
    pub fn last(&self) -> K {
        K::from_bits(self.addr.to_bits().or(!mask::<K::Bits>(self.len)))
    }
}

impl<K: FibKey> fmt::Display for Prefix<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<K: FibKey> FromStr for Prefix<K> {
    type Err = FibError;
    fn from_str(s: &str) -> Result<Self, FibError> {
        let bad = || FibError::Parse(s.to_string());
        match s.split_once('/') {
            None => Ok(Prefix::host(s.parse::<K>().map_err(|_| bad())?)),
            Some((a, l)) => {
                let addr = a.parse::<K>().map_err(|_| bad())?;
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                    return Err(bad());
                }
                let len: u8 = l.parse().map_err(|_| bad())?;
                Prefix::new(addr, len)
            }
        }
    }
}

/// What a route does with the packets it matches.
///
/// ```
/// use htb::fib::RouteKind;
/// let r: RouteKind<u32> = RouteKind::Unicast(3);
/// assert_eq!(r.value(), Some(&3));
/// assert_eq!(RouteKind::<u32>::Prohibit.to_string(), "prohibit");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteKind<V> {
    /// Forward; the value is the caller's (next hop, interface, class…).
    Unicast(V),
    /// Drop silently (the kernel answers `EINVAL`).
    Blackhole,
    /// Drop, "No route to host" (`EHOSTUNREACH`).
    Unreachable,
    /// Drop, "Permission denied" (`EACCES`).
    Prohibit,
}

impl<V> RouteKind<V> {
    /// The unicast value, `None` for the error types.
    ///
    /// ```
    /// use htb::fib::RouteKind;
    /// assert_eq!(RouteKind::<u8>::Blackhole.value(), None);
    /// ```
    pub fn value(&self) -> Option<&V> {
        match self {
            RouteKind::Unicast(v) => Some(v),
            _ => None,
        }
    }
}

impl<V> fmt::Display for RouteKind<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteKind::Unicast(_) => "unicast",
            RouteKind::Blackhole => "blackhole",
            RouteKind::Unreachable => "unreachable",
            RouteKind::Prohibit => "prohibit",
        })
    }
}

/// One route of a prefix: its metric (lower wins) and what it does.
///
/// ```
/// use htb::fib::{Route, RouteKind};
/// let r = Route { metric: 10, kind: RouteKind::Unicast("eth0") };
/// assert_eq!(r.metric, 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route<V> {
    /// The metric (`ip route ... metric N`); the lowest is preferred.
    pub metric: u32,
    /// The route type and unicast value.
    pub kind: RouteKind<V>,
}

/// A lookup's answer: the matched prefix and its best (lowest-metric) route,
/// like `ip route get fibmatch`.
///
/// ```
/// use std::net::Ipv4Addr;
/// use htb::fib::{Fib, RouteKind};
/// let mut fib: Fib<Ipv4Addr, u8> = Fib::new();
/// fib.insert("10.0.0.0/8".parse().unwrap(), 5, RouteKind::Unicast(1)).unwrap();
/// let m = fib.lookup(Ipv4Addr::new(10, 1, 2, 3)).unwrap();
/// assert_eq!((m.prefix.len(), m.route.metric), (8, 5));
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Match<'a, K, V> {
    /// The longest prefix holding the address.
    pub prefix: Prefix<K>,
    /// That prefix's best route.
    pub route: &'a Route<V>,
}

impl<K: Copy, V> Clone for Match<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Copy, V> Copy for Match<'_, K, V> {}

/// A handle to a prefix entry, as batch lookups return it; turn it into a
/// [`Match`] with [`Fib::resolve`]. Valid until that prefix is removed.
///
/// ```
/// use std::net::Ipv4Addr;
/// use htb::fib::{Fib, RouteKind};
/// let mut fib: Fib<Ipv4Addr, u8> = Fib::new();
/// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(9)).unwrap();
/// let id = fib.lookup_id(Ipv4Addr::new(10, 0, 0, 1)).unwrap();
/// assert_eq!(fib.resolve(id).unwrap().route.kind, RouteKind::Unicast(9));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(NonZeroU32);

impl EntryId {
    /// The id as a number (dense, reused after removal).
    ///
    /// ```
    /// # use std::net::Ipv4Addr;
    /// # use htb::fib::{Fib, RouteKind};
    /// # let mut fib: Fib<Ipv4Addr, u8> = Fib::new();
    /// # fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(9)).unwrap();
    /// assert_eq!(fib.lookup_id(Ipv4Addr::new(10, 0, 0, 1)).unwrap().index(), 0);
    /// ```
    pub fn index(self) -> u32 {
        self.0.get() - 1
    }

    /// The id whose compiled-table tag is `tag` (id + 1; 0 = no entry).
    #[inline(always)]
    fn from_tag(tag: u32) -> Option<Self> {
        NonZeroU32::new(tag).map(EntryId)
    }
}

#[derive(Clone, Debug)]
struct Slot<K, V> {
    prefix: Prefix<K>,
    /// Metric ascending; empty = a free slot.
    routes: Routes<V>,
}

/// The routes of one prefix, metric ascending. Nearly every prefix has one
/// route, kept inline (no heap block, no pointer to follow on a lookup);
/// several go behind one thin pointer, so that the whole is 16 bytes for a
/// 4-byte value (the route kind's spare tag values tell the cases apart),
/// where a `Vec` alone is 24.
#[derive(Clone, Debug)]
enum Routes<V> {
    /// A free slot.
    None,
    One(Route<V>),
    /// At least two routes. Boxed on purpose: a thin pointer fits beside
    /// the inline route, a `Vec` would make every slot 8 bytes larger for
    /// the few prefixes that have several routes.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Route<V>>>),
}

impl<V> Routes<V> {
    fn none() -> Self {
        Routes::None
    }

    #[inline]
    fn as_slice(&self) -> &[Route<V>] {
        match self {
            Routes::None => &[],
            Routes::One(r) => core::slice::from_ref(r),
            Routes::Many(v) => v,
        }
    }

    #[inline]
    fn first(&self) -> Option<&Route<V>> {
        match self {
            Routes::None => None,
            Routes::One(r) => Some(r),
            Routes::Many(v) => v.first(),
        }
    }

    fn find(&self, metric: u32) -> Result<usize, usize> {
        self.as_slice().binary_search_by_key(&metric, |r| r.metric)
    }

    /// The kind of route `i` (which exists).
    fn kind_mut(&mut self, i: usize) -> &mut RouteKind<V> {
        match self {
            Routes::None => unreachable!("no route {i} in a free slot"),
            Routes::One(r) => &mut r.kind,
            Routes::Many(v) => &mut v[i].kind,
        }
    }

    fn into_vec(self) -> Vec<Route<V>> {
        match self {
            Routes::None => Vec::new(),
            Routes::One(r) => vec![r],
            Routes::Many(v) => *v,
        }
    }

    fn from_vec(mut v: Vec<Route<V>>) -> Self {
        match v.len() {
            0 => Routes::None,
            1 => Routes::One(v.pop().expect("one route")),
            _ => {
                v.shrink_to_fit();
                Routes::Many(Box::new(v))
            }
        }
    }

    fn insert(&mut self, at: usize, r: Route<V>) {
        let mut v = core::mem::replace(self, Routes::none()).into_vec();
        v.insert(at, r);
        *self = Self::from_vec(v);
    }

    fn remove(&mut self, i: usize) -> Route<V> {
        let mut v = core::mem::replace(self, Routes::none()).into_vec();
        let r = v.remove(i);
        *self = Self::from_vec(v);
        r
    }

    /// Heap bytes (the list of several routes).
    fn heap_bytes(&self) -> usize {
        match self {
            Routes::None | Routes::One(_) => 0,
            Routes::Many(v) => {
                core::mem::size_of::<Vec<Route<V>>>()
                    + v.capacity() * core::mem::size_of::<Route<V>>()
            }
        }
    }
}

/// The routing table: prefixes of one address family (`K` = [`Ipv4Addr`] or
/// [`Ipv6Addr`]) with their routes, carrying values `V`.
///
/// ```
/// use std::net::Ipv6Addr;
/// use htb::fib::{Fib, RouteKind};
/// let mut fib: Fib<Ipv6Addr, u32> = Fib::new();
/// fib.insert("2001:db8::/32".parse().unwrap(), 1024, RouteKind::Unicast(1)).unwrap();
/// fib.insert("2001:db8::/32".parse().unwrap(), 10, RouteKind::Unicast(2)).unwrap();
/// assert_eq!((fib.len(), fib.prefix_count()), (2, 1));
/// let m = fib.lookup("2001:db8::1".parse().unwrap()).unwrap();
/// assert_eq!(m.route.kind, RouteKind::Unicast(2));
/// assert!(fib.lookup("2001:db9::1".parse().unwrap()).is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Fib<K: FibKey, V> {
    trie: Trie<K::Bits>,
    slots: Vec<Slot<K, V>>,
    free: Vec<u32>,
    dir: Table<K::Bits>,
    routes: usize,
}

/// An IPv4 table.
pub type Fib4<V> = Fib<Ipv4Addr, V>;
/// An IPv6 table.
pub type Fib6<V> = Fib<Ipv6Addr, V>;

impl<K: FibKey, V> Default for Fib<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: FibKey, V> Fib<K, V> {
    /// An empty table with the kernel's resize thresholds.
    ///
    /// ```
    /// let fib: htb::fib::Fib4<u32> = htb::fib::Fib::new();
    /// assert!(fib.is_empty());
    /// ```
    pub fn new() -> Self {
        Fib {
            trie: Trie::default(),
            slots: Vec::new(),
            free: Vec::new(),
            dir: Table::default(),
            routes: 0,
        }
    }

    /// An empty table whose trie resizes at other thresholds.
    ///
    /// ```
    /// use htb::fib::{Fib4, Thresholds};
    /// let t = Thresholds { halve: 10, inflate: 40, halve_root: 10, inflate_root: 20 };
    /// let fib: Fib4<u8> = Fib4::with_thresholds(t);
    /// assert_eq!(fib.thresholds(), t);
    /// ```
    pub fn with_thresholds(t: Thresholds) -> Self {
        let mut f = Self::new();
        f.trie.thresholds = t;
        f
    }

    /// The trie's resize thresholds.
    ///
    /// ```
    /// assert_eq!(htb::fib::Fib4::<u8>::new().thresholds().inflate, 50);
    /// ```
    pub fn thresholds(&self) -> Thresholds {
        self.trie.thresholds
    }

    /// Number of routes (several per prefix count separately).
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// assert_eq!(fib.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.routes
    }

    /// Whether the table holds no route.
    ///
    /// ```
    /// assert!(htb::fib::Fib4::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Number of distinct prefixes.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// fib.insert(p, 1, RouteKind::Unicast(())).unwrap();
    /// fib.insert(p, 2, RouteKind::Blackhole).unwrap();
    /// assert_eq!(fib.prefix_count(), 1);
    /// ```
    pub fn prefix_count(&self) -> usize {
        self.trie.len()
    }

    fn slen(p: &Prefix<K>) -> u8 {
        K::Bits::BITS - p.len
    }

    fn id_of(&self, p: &Prefix<K>) -> Option<u32> {
        self.trie.get(p.addr.to_bits(), Self::slen(p))
    }

    /// Adds a route (`ip route add`). A route with the same prefix and
    /// metric already there is an error ([`FibError::Exists`]), whatever its
    /// type.
    ///
    /// ```
    /// use htb::fib::{Fib4, FibError, RouteKind};
    /// let mut fib = Fib4::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// fib.insert(p, 1, RouteKind::Unicast(1)).unwrap();
    /// assert!(matches!(fib.insert(p, 1, RouteKind::Unicast(2)), Err(FibError::Exists { .. })));
    /// ```
    pub fn insert(
        &mut self,
        prefix: Prefix<K>,
        metric: u32,
        kind: RouteKind<V>,
    ) -> Result<(), FibError> {
        let Err((id, route)) = self.add_prefix(prefix, Route { metric, kind })? else {
            return Ok(());
        };
        let routes = &mut self.slots[id as usize].routes;
        let Err(at) = routes.find(metric) else {
            return Err(FibError::Exists {
                prefix: prefix.to_string(),
                metric,
            });
        };
        routes.insert(at, route);
        self.routes += 1;
        Ok(())
    }

    /// Adds or overwrites the route of `prefix` with `metric`
    /// (`ip route replace`); returns the kind it replaced.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// assert_eq!(fib.replace(p, 1, RouteKind::Unicast(1)).unwrap(), None);
    /// assert_eq!(fib.replace(p, 1, RouteKind::Prohibit).unwrap(), Some(RouteKind::Unicast(1)));
    /// ```
    pub fn replace(
        &mut self,
        prefix: Prefix<K>,
        metric: u32,
        kind: RouteKind<V>,
    ) -> Result<Option<RouteKind<V>>, FibError> {
        let Err((id, route)) = self.add_prefix(prefix, Route { metric, kind })? else {
            return Ok(None);
        };
        let routes = &mut self.slots[id as usize].routes;
        Ok(match routes.find(metric) {
            Ok(i) => Some(core::mem::replace(routes.kind_mut(i), route.kind)),
            Err(at) => {
                routes.insert(at, route);
                self.routes += 1;
                None
            }
        })
    }

    /// Whether `prefix` could be added ([`FibError::Full`] otherwise).
    pub(crate) fn check_room(&self, prefix: &Prefix<K>) -> Result<(), FibError> {
        if self.id_of(prefix).is_none()
            && self.free.is_empty()
            && self.slots.len() >= MAX_TAG as usize
        {
            return Err(FibError::Full);
        }
        Ok(())
    }

    /// Adds `prefix` with its first route: `Ok(Ok(()))`; or, when the prefix
    /// is there already, hands the route back with the prefix's id. The
    /// trie finds out which in the same descent that places a new prefix.
    #[allow(clippy::type_complexity)]
    fn add_prefix(
        &mut self,
        prefix: Prefix<K>,
        route: Route<V>,
    ) -> Result<Result<(), (u32, Route<V>)>, FibError> {
        let reuse = self.free.last().copied();
        let id = match reuse {
            Some(id) => id,
            None if self.slots.len() >= MAX_TAG as usize => {
                // No id left for a new prefix: only an existing one can
                // take the route.
                return match self.id_of(&prefix) {
                    Some(id) => Ok(Err((id, route))),
                    None => Err(FibError::Full),
                };
            }
            None => self.slots.len() as u32,
        };
        let key = prefix.addr.to_bits();
        if let Err(old) = self.trie.insert(key, Self::slen(&prefix), id) {
            return Ok(Err((old, route)));
        }
        let slot = Slot {
            prefix,
            routes: Routes::One(route),
        };
        if reuse.is_some() {
            self.free.pop();
            self.slots[id as usize] = slot;
        } else {
            table::grow(&mut self.slots, 1);
            self.slots.push(slot);
        }
        let slots = &self.slots;
        let len_of = |tag: u32| slots[(tag - 1) as usize].prefix.len;
        self.dir.add(key, prefix.len, id + 1, &len_of);
        self.routes += 1;
        Ok(Ok(()))
    }

    /// Removes the route of `prefix` with `metric`; returns its kind.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// fib.insert(p, 1, RouteKind::Unicast(1)).unwrap();
    /// assert_eq!(fib.remove(&p, 2), None);
    /// assert_eq!(fib.remove(&p, 1), Some(RouteKind::Unicast(1)));
    /// assert!(fib.is_empty());
    /// ```
    pub fn remove(&mut self, prefix: &Prefix<K>, metric: u32) -> Option<RouteKind<V>> {
        let id = self.id_of(prefix)?;
        let routes = &mut self.slots[id as usize].routes;
        let i = routes.find(metric).ok()?;
        let r = routes.remove(i);
        self.routes -= 1;
        if routes.as_slice().is_empty() {
            self.drop_prefix(id);
        }
        Some(r.kind)
    }

    /// Removes every route of `prefix`; returns them, metric ascending.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// fib.insert(p, 2, RouteKind::Unicast(1)).unwrap();
    /// fib.insert(p, 1, RouteKind::Blackhole).unwrap();
    /// assert_eq!(fib.remove_prefix(&p).len(), 2);
    /// assert!(fib.is_empty());
    /// ```
    pub fn remove_prefix(&mut self, prefix: &Prefix<K>) -> Vec<Route<V>> {
        let Some(id) = self.id_of(prefix) else {
            return Vec::new();
        };
        let routes =
            core::mem::replace(&mut self.slots[id as usize].routes, Routes::none()).into_vec();
        self.routes -= routes.len();
        self.drop_prefix(id);
        routes
    }

    fn drop_prefix(&mut self, id: u32) {
        let prefix = self.slots[id as usize].prefix;
        let key = prefix.addr.to_bits();
        self.trie.remove(key, Self::slen(&prefix));
        // The table asks for the longest shorter prefix covering this one
        // (at the few lengths it cannot tell itself): one trie lookup
        // answers them all.
        let parent = self.trie.lookup_shorter(key, Self::slen(&prefix));
        let find = |l: u8| match parent {
            Some((pid, s)) if K::Bits::BITS - s == l => Some(pid + 1),
            _ => None,
        };
        self.dir.del(key, prefix.len, id + 1, &find);
        self.slots[id as usize].routes = Routes::none();
        self.free.push(id);
    }

    /// The routes of exactly `prefix`, metric ascending.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// let p = "10.0.0.0/8".parse().unwrap();
    /// fib.insert(p, 1, RouteKind::Unicast(1)).unwrap();
    /// assert_eq!(fib.get(&p).unwrap()[0].metric, 1);
    /// assert!(fib.get(&"10.0.0.0/9".parse().unwrap()).is_none());
    /// ```
    pub fn get(&self, prefix: &Prefix<K>) -> Option<&[Route<V>]> {
        self.id_of(prefix)
            .map(|id| self.slots[id as usize].routes.as_slice())
    }

    /// The entry of the longest prefix holding `addr`.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// assert!(fib.lookup_id(Ipv4Addr::new(10, 0, 0, 1)).is_some());
    /// assert!(fib.lookup_id(Ipv4Addr::new(11, 0, 0, 1)).is_none());
    /// ```
    #[inline]
    pub fn lookup_id(&self, addr: K) -> Option<EntryId> {
        let bits = addr.to_bits();
        crate::hint::with_popcnt(
            #[inline(always)]
            || EntryId::from_tag(self.dir.get(bits)),
        )
    }

    /// The matched prefix and best route of an entry.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(4)).unwrap();
    /// let id = fib.lookup_id(Ipv4Addr::new(10, 0, 0, 1)).unwrap();
    /// assert_eq!(fib.resolve(id).unwrap().prefix.to_string(), "10.0.0.0/8");
    /// ```
    #[inline]
    pub fn resolve(&self, id: EntryId) -> Option<Match<'_, K, V>> {
        let s = self.slots.get(id.index() as usize)?;
        let route = s.routes.first()?;
        Some(Match {
            prefix: s.prefix,
            route,
        })
    }

    /// Longest-prefix match: what `ip route get fibmatch ADDR` answers.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast('a')).unwrap();
    /// fib.insert("10.0.0.0/24".parse().unwrap(), 1, RouteKind::Unicast('b')).unwrap();
    /// assert_eq!(fib.lookup(Ipv4Addr::new(10, 0, 0, 9)).unwrap().route.kind, RouteKind::Unicast('b'));
    /// assert_eq!(fib.lookup(Ipv4Addr::new(10, 0, 1, 9)).unwrap().route.kind, RouteKind::Unicast('a'));
    /// ```
    #[inline]
    pub fn lookup(&self, addr: K) -> Option<Match<'_, K, V>> {
        self.resolve(self.lookup_id(addr)?)
    }

    /// The same answer as [`lookup`](Self::lookup), always from the trie
    /// (never the compiled table): for cross-checks.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// let a = Ipv4Addr::new(10, 1, 1, 1);
    /// assert_eq!(fib.lookup_trie(a), fib.lookup(a));
    /// ```
    pub fn lookup_trie(&self, addr: K) -> Option<Match<'_, K, V>> {
        self.resolve(EntryId::from_tag(self.trie.lookup(addr.to_bits())? + 1)?)
    }

    /// Looks up every address of `addrs` into `out` (same length), as
    /// [`lookup_id`](Self::lookup_id) would. Independent lookups overlap
    /// their memory accesses, so this is faster per address than a loop
    /// that uses each answer before asking the next.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// let addrs = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(11, 0, 0, 1)];
    /// let mut out = [None; 2];
    /// fib.lookup_batch(&addrs, &mut out).unwrap();
    /// assert!(out[0].is_some() && out[1].is_none());
    /// assert!(fib.lookup_batch(&addrs, &mut out[..1]).is_err());
    /// ```
    pub fn lookup_batch(&self, addrs: &[K], out: &mut [Option<EntryId>]) -> Result<(), FibError> {
        if addrs.len() != out.len() {
            return Err(FibError::LengthMismatch {
                addrs: addrs.len(),
                out: out.len(),
            });
        }
        // The table overlaps the cache misses of successive lookups
        // (`Table::get_each`); popcnt for the nodes' bit counts.
        crate::hint::with_popcnt(
            #[inline(always)]
            || {
                self.dir.get_each(addrs, K::to_bits, out, EntryId::from_tag);
            },
        );
        Ok(())
    }

    fn collect(&self, lo: K::Bits, hi: K::Bits) -> Vec<u32> {
        let mut ids = Vec::new();
        self.trie.walk_range(lo, hi, &mut |_, _, id| ids.push(id));
        ids
    }

    /// Every prefix with its routes, in prefix order (address, then length:
    /// a prefix before its more-specifics).
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// for p in ["10.0.0.0/24", "10.0.0.0/8", "9.0.0.0/8"] {
    ///     fib.insert(p.parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// }
    /// let order: Vec<String> = fib.iter().map(|(p, _)| p.to_string()).collect();
    /// assert_eq!(order, ["9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/24"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Prefix<K>, &[Route<V>])> + '_ {
        self.collect(K::Bits::ZERO, !K::Bits::ZERO)
            .into_iter()
            .map(move |id| {
                let s = &self.slots[id as usize];
                (s.prefix, s.routes.as_slice())
            })
    }

    /// The prefixes covering `prefix` (itself included if present), shortest
    /// first.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// for p in ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8"] {
    ///     fib.insert(p.parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// }
    /// let c: Vec<String> = fib.covering(&"10.1.2.0/24".parse().unwrap())
    ///     .map(|(p, _)| p.to_string()).collect();
    /// assert_eq!(c, ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16"]);
    /// ```
    pub fn covering(
        &self,
        prefix: &Prefix<K>,
    ) -> impl Iterator<Item = (Prefix<K>, &[Route<V>])> + '_ {
        let key = prefix.addr.to_bits();
        (0..=prefix.len).filter_map(move |l| {
            let id = self
                .trie
                .get(key.and(mask::<K::Bits>(l)), K::Bits::BITS - l)?;
            let s = &self.slots[id as usize];
            Some((s.prefix, s.routes.as_slice()))
        })
    }

    /// The prefixes inside `prefix` (itself included if present), in prefix
    /// order.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// for p in ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8"] {
    ///     fib.insert(p.parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// }
    /// let c: Vec<String> = fib.covered(&"10.0.0.0/8".parse().unwrap())
    ///     .map(|(p, _)| p.to_string()).collect();
    /// assert_eq!(c, ["10.0.0.0/8", "10.1.0.0/16"]);
    /// ```
    pub fn covered(
        &self,
        prefix: &Prefix<K>,
    ) -> impl Iterator<Item = (Prefix<K>, &[Route<V>])> + '_ {
        let p = *prefix;
        self.collect(p.addr.to_bits(), p.last().to_bits())
            .into_iter()
            .filter_map(move |id| {
                let s = &self.slots[id as usize];
                p.covers(&s.prefix)
                    .then_some((s.prefix, s.routes.as_slice()))
            })
    }

    /// Shape statistics of the trie, like `/proc/net/fib_triestat`.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// fib.insert("10.0.0.0/8".parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// let s = fib.stats();
    /// assert_eq!((s.leaves, s.prefixes, s.tnodes), (1, 1, 0));
    /// ```
    pub fn stats(&self) -> TrieStats {
        self.trie.stats()
    }

    /// Bytes allocated by the table: trie, compiled lookup table and route
    /// storage (not counting what values of `V` own on the heap).
    ///
    /// ```
    /// let fib = htb::fib::Fib4::<u32>::new();
    /// assert!(fib.memory_bytes() < 4096);
    /// ```
    pub fn memory_bytes(&self) -> usize {
        let slot = core::mem::size_of::<Slot<K, V>>();
        self.trie.stats().bytes
            + self.dir.bytes()
            + self.slots.capacity() * slot
            + self
                .slots
                .iter()
                .map(|s| s.routes.heap_bytes())
                .sum::<usize>()
            + self.free.capacity() * 4
    }

    /// Nodes the compiled lookup table uses below its /18 array.
    ///
    /// ```
    /// use htb::fib::{Fib4, RouteKind};
    /// let mut fib = Fib4::new();
    /// // One node for bits 18..24 and one for 24..30, where the /25 ends.
    /// fib.insert("10.0.0.0/25".parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// assert_eq!(fib.table_nodes(), 2);
    /// fib.insert("10.0.0.0/16".parse().unwrap(), 1, RouteKind::Unicast(())).unwrap();
    /// assert_eq!(fib.table_nodes(), 2);
    /// ```
    pub fn table_nodes(&self) -> usize {
        self.dir.nodes()
    }

    /// Checks the trie's invariants and the compiled table against the trie
    /// (tests only).
    #[cfg(test)]
    fn check(&self) -> Result<(), String> {
        self.trie.check()?;
        self.dir.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p4(s: &str) -> Prefix<Ipv4Addr> {
        s.parse().unwrap()
    }

    #[test]
    fn grows_and_shrinks_with_checks() {
        let mut fib: Fib4<u32> = Fib::new();
        let mut x = 0x1234_5678u32;
        let mut ps = Vec::new();
        for i in 0..20000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = [8, 16, 20, 22, 24, 24, 24, 28, 32][(x % 9) as usize];
            let p = Prefix::new_masked(Ipv4Addr::from(x), len).unwrap();
            if fib.insert(p, 1, RouteKind::Unicast(i)).is_ok() {
                ps.push(p);
            }
            if i % 2000 == 0 {
                fib.check().unwrap();
            }
        }
        fib.check().unwrap();
        let s = fib.stats();
        assert!(s.root_bits >= 8, "{s}");
        for (i, p) in ps.iter().enumerate() {
            assert!(fib.remove(p, 1).is_some());
            if i % 1000 == 0 {
                fib.check().unwrap();
                let a = Ipv4Addr::from(x.wrapping_mul(i as u32));
                assert_eq!(fib.lookup(a), fib.lookup_trie(a));
            }
        }
        fib.check().unwrap();
        assert!(fib.is_empty());
        assert_eq!(fib.stats().leaves, 0);
        assert_eq!(fib.table_nodes(), 0);
    }

    #[test]
    fn nested_prefix_fallbacks() {
        let mut fib: Fib4<u8> = Fib::new();
        fib.insert(p4("10.0.0.0/8"), 1, RouteKind::Unicast(1))
            .unwrap();
        fib.insert(p4("10.0.0.0/24"), 1, RouteKind::Unicast(2))
            .unwrap();
        fib.insert(p4("10.0.0.128/25"), 1, RouteKind::Unicast(3))
            .unwrap();
        fib.insert(p4("10.0.0.0/16"), 1, RouteKind::Unicast(4))
            .unwrap();
        fn look(fib: &Fib4<u8>, a: &str) -> Option<RouteKind<u8>> {
            fib.lookup(a.parse().unwrap()).map(|m| m.route.kind)
        }
        macro_rules! v {
            ($a:expr) => {
                look(&fib, $a)
            };
        }
        assert_eq!(v!("10.0.0.200"), Some(RouteKind::Unicast(3)));
        assert_eq!(v!("10.0.0.1"), Some(RouteKind::Unicast(2)));
        assert_eq!(v!("10.0.1.1"), Some(RouteKind::Unicast(4)));
        assert_eq!(v!("10.1.1.1"), Some(RouteKind::Unicast(1)));
        fib.remove(&p4("10.0.0.0/24"), 1);
        assert_eq!(v!("10.0.0.1"), Some(RouteKind::Unicast(4)));
        assert_eq!(v!("10.0.0.200"), Some(RouteKind::Unicast(3)));
        fib.remove(&p4("10.0.0.128/25"), 1);
        assert_eq!(v!("10.0.0.200"), Some(RouteKind::Unicast(4)));
        assert_eq!(fib.table_nodes(), 0);
        fib.check().unwrap();
    }
}
