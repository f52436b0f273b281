//! Readers hammer a shared FIB while one writer updates it: every answer a
//! reader gets must be one the table held at some moment.
//!
//! The writer runs numbered steps. Step `v` first replaces the default route
//! with value `v` (so a reader that sees default `d` knows steps before `d`
//! are complete), then moves bucket `v % K`: removes its old more-specific
//! prefix and inserts a new one carrying `v`. Inside one read guard a reader
//! checks the whole table against the state that default value implies:
//! every other bucket holds exactly the prefix of its latest earlier step,
//! and bucket `d % K` is old, empty or new (step `d` may be half published).
//! Defaults seen by one reader never go backwards.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use htb::fib::{Fib, FibKey, Prefix, RouteKind, shared};

const BUCKETS: u64 = 16;
const STEPS: u64 = 600;
const READERS: usize = 3;

/// The more-specific prefix step `s` inserts in bucket `s % BUCKETS`, and an
/// address inside it; plus an address of the same bucket outside it.
trait Family: FibKey {
    fn bucket_prefix(s: u64) -> Prefix<Self>;
    fn inside(s: u64) -> Self;
    fn default_prefix() -> Prefix<Self>;
}

impl Family for Ipv4Addr {
    fn bucket_prefix(s: u64) -> Prefix<Self> {
        let j = (s % BUCKETS) as u8;
        let k = (s / BUCKETS % 256) as u8;
        Prefix::new(Ipv4Addr::new(10, j, k, 0), 24).unwrap()
    }
    fn inside(s: u64) -> Self {
        let p = Self::bucket_prefix(s).addr().octets();
        Ipv4Addr::new(p[0], p[1], p[2], 77)
    }
    fn default_prefix() -> Prefix<Self> {
        "0.0.0.0/0".parse().unwrap()
    }
}

impl Family for Ipv6Addr {
    fn bucket_prefix(s: u64) -> Prefix<Self> {
        let j = (s % BUCKETS) as u16;
        let k = (s / BUCKETS % 65536) as u16;
        Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, j, k, 0, 0, 0, 0), 64).unwrap()
    }
    fn inside(s: u64) -> Self {
        let mut seg = Self::bucket_prefix(s).addr().segments();
        seg[7] = 77;
        Ipv6Addr::from(seg)
    }
    fn default_prefix() -> Prefix<Self> {
        "::/0".parse().unwrap()
    }
}

/// The latest step before `d` that used bucket `j`, if any (steps start at 1).
fn latest_before(d: u64, j: u64) -> Option<u64> {
    (1..d).rev().find(|s| s % BUCKETS == j)
}

fn check_snapshot<K: Family>(fib: &Fib<K, u64>) -> u64 {
    let d = match fib.get(&K::default_prefix()) {
        Some(rs) => *rs[0].kind.value().unwrap(),
        None => return 0,
    };
    let value_at = |a: K| {
        fib.lookup(a)
            .map(|m| (m.prefix, *m.route.kind.value().unwrap()))
    };
    for j in 0..BUCKETS {
        let old = latest_before(d, j);
        if j == d % BUCKETS {
            // Step d is in flight here: its old prefix may be gone, its new
            // one may be there.
            let new = value_at(K::inside(d));
            assert!(
                new == Some((K::bucket_prefix(d), d)) || new == Some((K::default_prefix(), d)),
                "bucket {j} at default {d}: {new:?}"
            );
            if let Some(s) = old {
                let got = value_at(K::inside(s));
                assert!(
                    got == Some((K::bucket_prefix(s), s)) || got == Some((K::default_prefix(), d)),
                    "bucket {j} old step {s} at default {d}: {got:?}"
                );
            }
        } else {
            if let Some(s) = old {
                assert_eq!(
                    value_at(K::inside(s)),
                    Some((K::bucket_prefix(s), s)),
                    "bucket {j} at {d}"
                );
            }
            // The step after d in this bucket has not been published.
            let next = (d + 1..).find(|s| s % BUCKETS == j).unwrap();
            if K::bucket_prefix(next) != K::bucket_prefix(old.unwrap_or(0)) {
                assert_eq!(value_at(K::inside(next)), Some((K::default_prefix(), d)));
            }
        }
    }
    d
}

fn hammer<K: Family>() {
    let (mut w, r) = shared(Fib::<K, u64>::new());
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let r = r.clone();
            let done = done.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let (mut last, mut snapshots) = (0, 0u64);
                while !done.load(Ordering::Acquire) {
                    let fib = r.read().expect("writer alive");
                    let d = check_snapshot(&*fib);
                    drop(fib);
                    assert!(d >= last, "went back from {last} to {d}");
                    last = d;
                    snapshots += 1;
                }
                (last, snapshots)
            })
        })
        .collect();
    start.wait();
    for v in 1..=STEPS {
        w.replace(K::default_prefix(), 0, RouteKind::Unicast(v))
            .unwrap();
        if let Some(s) = latest_before(v, v % BUCKETS) {
            assert_eq!(
                w.remove(&K::bucket_prefix(s), 0),
                Some(RouteKind::Unicast(s))
            );
        }
        w.insert(K::bucket_prefix(v), 0, RouteKind::Unicast(v))
            .unwrap();
        // A duplicate insert is refused synchronously and changes nothing.
        assert!(
            w.insert(K::bucket_prefix(v), 0, RouteKind::Unicast(0))
                .is_err()
        );
    }
    done.store(true, Ordering::Release);
    let mut total = 0;
    for t in readers {
        let (last, n) = t.join().expect("a reader saw an impossible table");
        assert!(last <= STEPS);
        total += n;
    }
    assert!(total > 0, "readers never ran");
    // The final table, through a fresh reader and through the writer.
    assert_eq!(check_snapshot(&*r.read().unwrap()), STEPS);
    assert_eq!(w.read().len(), BUCKETS as usize + 1);
    println!(
        "{}: {total} consistent snapshots checked",
        std::any::type_name::<K>()
    );
}

#[test]
fn ipv4_readers_see_only_published_tables() {
    hammer::<Ipv4Addr>();
}

#[test]
fn ipv6_readers_see_only_published_tables() {
    hammer::<Ipv6Addr>();
}

#[test]
fn reader_outliving_writer_gets_none() {
    let (w, r) = shared(Fib::<Ipv4Addr, u8>::new());
    let factory = r.factory();
    drop(w);
    assert!(r.read().is_none());
    assert!(factory.reader().read().is_none());
}

/// The checker itself must catch a table no step produced: here bucket 3's
/// latest prefix is missing although later steps were published.
#[test]
#[should_panic(expected = "bucket 3")]
fn checker_rejects_a_table_never_held() {
    let mut fib = Fib::<Ipv4Addr, u64>::new();
    let d = 40;
    fib.insert(Ipv4Addr::default_prefix(), 0, RouteKind::Unicast(d))
        .unwrap();
    for j in 0..BUCKETS {
        if let Some(s) = latest_before(d, j)
            && j != 3
        {
            fib.insert(Ipv4Addr::bucket_prefix(s), 0, RouteKind::Unicast(s))
                .unwrap();
        }
    }
    check_snapshot(&fib);
}
