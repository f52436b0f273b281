/*! Lookups from many threads while one thread updates: no lock on the read path.

The kernel reads `fib_trie` under RCU: readers never wait, the writer
publishes new nodes atomically and frees old ones after a grace period.
[`shared`] gives the same contract with two copies of the [`Fib`] (the
left-right scheme, from the `left-right` crate): readers look up in the copy
that is published, the single writer changes the other one, then swaps them
with one atomic store and replays the change on the copy readers just left.

* Readers ([`FibReader`], one per thread; clone it or use a
  [`FibReaderFactory`]) take no lock and never wait for the writer. Each
  [`FibReader::read`] sees one consistent table: every update published
  before it, none published after.
* The writer ([`FibWriter`]) applies each update to both copies (each update
  is incremental, never a rebuild) and publishes it at once; errors are
  reported synchronously, as by [`Fib`] itself. Publishing waits until no
  reader is still inside the copy it is about to change, which is at most the
  length of one lookup.
* Memory is twice the table's.

```
use std::net::Ipv4Addr;
use htb::fib::{Fib4, RouteKind, shared};

let (mut w, r) = shared(Fib4::<u32>::new());
w.insert("10.0.0.0/8".parse().unwrap(), 0, RouteKind::Unicast(1)).unwrap();
let reader = r.clone();
let t = std::thread::spawn(move || {
    let table = reader.read().unwrap();
    table.lookup(Ipv4Addr::new(10, 1, 2, 3)).map(|m| m.route.kind)
});
assert_eq!(t.join().unwrap(), Some(RouteKind::Unicast(1)));
w.remove(&"10.0.0.0/8".parse().unwrap(), 0);
assert!(r.read().unwrap().lookup(Ipv4Addr::new(10, 1, 2, 3)).is_none());
```
*/

use core::ops::Deref;

use left_right::{Absorb, ReadGuard, ReadHandle, ReadHandleFactory, WriteHandle};

use super::{Fib, FibError, FibKey, Prefix, Route, RouteKind};

/// One change, applied to each copy in turn.
#[derive(Clone, Debug)]
#[doc(hidden)]
pub enum FibOp<K, V> {
    Insert(Prefix<K>, u32, RouteKind<V>),
    Replace(Prefix<K>, u32, RouteKind<V>),
    Remove(Prefix<K>, u32),
    RemovePrefix(Prefix<K>),
}

impl<K: FibKey, V: Clone> FibOp<K, V> {
    fn apply(self, fib: &mut Fib<K, V>) {
        // Every op was checked against an identical copy before it was
        // queued, so it cannot fail here; results are deliberately dropped.
        match self {
            FibOp::Insert(p, m, k) => {
                let _ = fib.insert(p, m, k);
            }
            FibOp::Replace(p, m, k) => {
                let _ = fib.replace(p, m, k);
            }
            FibOp::Remove(p, m) => {
                let _ = fib.remove(&p, m);
            }
            FibOp::RemovePrefix(p) => {
                let _ = fib.remove_prefix(&p);
            }
        }
    }
}

impl<K: FibKey, V: Clone> Absorb<FibOp<K, V>> for Fib<K, V> {
    fn absorb_first(&mut self, op: &mut FibOp<K, V>, _: &Self) {
        op.clone().apply(self);
    }

    fn absorb_second(&mut self, op: FibOp<K, V>, _: &Self) {
        op.apply(self);
    }

    fn drop_first(self: Box<Self>) {}

    fn sync_with(&mut self, first: &Self) {
        *self = first.clone();
    }
}

/// Splits `fib` into its single writer and a first reader.
pub fn shared<K, V>(fib: Fib<K, V>) -> (FibWriter<K, V>, FibReader<K, V>)
where
    K: FibKey,
    V: Clone,
{
    let (w, r) = left_right::new_from_empty::<Fib<K, V>, FibOp<K, V>>(fib);
    (FibWriter { w }, FibReader { r })
}

/// The single writer of a shared table. Every call publishes its change
/// before it returns.
pub struct FibWriter<K: FibKey, V: Clone> {
    w: WriteHandle<Fib<K, V>, FibOp<K, V>>,
}

impl<K: FibKey, V: Clone> FibWriter<K, V> {
    fn current(&self) -> ReadGuard<'_, Fib<K, V>> {
        // The writer owns the handle, so the published copy is always there.
        self.w
            .enter()
            .expect("the writer keeps the table alive while it exists")
    }

    fn publish(&mut self, op: FibOp<K, V>) {
        self.w.append(op);
        self.w.publish();
    }

    /// [`Fib::insert`], published.
    pub fn insert(
        &mut self,
        prefix: Prefix<K>,
        metric: u32,
        kind: RouteKind<V>,
    ) -> Result<(), FibError> {
        {
            let fib = self.current();
            if let Some(routes) = fib.get(&prefix)
                && routes.iter().any(|r| r.metric == metric)
            {
                return Err(FibError::Exists {
                    prefix: prefix.to_string(),
                    metric,
                });
            }
            fib.check_room(&prefix)?;
        }
        self.publish(FibOp::Insert(prefix, metric, kind));
        Ok(())
    }

    /// [`Fib::replace`], published; returns the kind it replaced.
    pub fn replace(
        &mut self,
        prefix: Prefix<K>,
        metric: u32,
        kind: RouteKind<V>,
    ) -> Result<Option<RouteKind<V>>, FibError> {
        let old = {
            let fib = self.current();
            fib.check_room(&prefix)?;
            fib.get(&prefix)
                .and_then(|rs| rs.iter().find(|r| r.metric == metric))
                .map(|r| r.kind.clone())
        };
        self.publish(FibOp::Replace(prefix, metric, kind));
        Ok(old)
    }

    /// [`Fib::remove`], published; returns the kind removed.
    pub fn remove(&mut self, prefix: &Prefix<K>, metric: u32) -> Option<RouteKind<V>> {
        let old = self
            .current()
            .get(prefix)
            .and_then(|rs| rs.iter().find(|r| r.metric == metric))
            .map(|r| r.kind.clone())?;
        self.publish(FibOp::Remove(*prefix, metric));
        Some(old)
    }

    /// [`Fib::remove_prefix`], published; returns the routes removed.
    pub fn remove_prefix(&mut self, prefix: &Prefix<K>) -> Vec<Route<V>> {
        let old: Vec<Route<V>> = match self.current().get(prefix) {
            Some(rs) => rs.to_vec(),
            None => return Vec::new(),
        };
        self.publish(FibOp::RemovePrefix(*prefix));
        old
    }

    /// The table as readers see it now.
    pub fn read(&self) -> impl Deref<Target = Fib<K, V>> + '_ {
        self.current()
    }

    /// A new reader of this table.
    pub fn reader(&self) -> FibReader<K, V> {
        FibReader { r: self.w.clone() }
    }
}

/// A lock-free reader of a shared table. `Send` but not `Sync`: give each
/// thread its own (`clone` it, or hand out a [`FibReaderFactory`]).
pub struct FibReader<K: FibKey, V> {
    r: ReadHandle<Fib<K, V>>,
}

impl<K: FibKey, V> Clone for FibReader<K, V> {
    fn clone(&self) -> Self {
        FibReader { r: self.r.clone() }
    }
}

impl<K: FibKey, V> FibReader<K, V> {
    /// The table as published now, held consistent until the guard drops
    /// (keep guards short: the writer's next publish waits for them).
    /// `None` once the writer is gone.
    pub fn read(&self) -> Option<impl Deref<Target = Fib<K, V>> + '_> {
        self.r.enter()
    }

    /// A `Sync` factory that makes readers for other threads.
    pub fn factory(&self) -> FibReaderFactory<K, V> {
        FibReaderFactory {
            f: self.r.factory(),
        }
    }
}

/// Makes [`FibReader`]s; `Send + Sync`, so it can be shared by threads.
pub struct FibReaderFactory<K: FibKey, V> {
    f: ReadHandleFactory<Fib<K, V>>,
}

impl<K: FibKey, V> Clone for FibReaderFactory<K, V> {
    fn clone(&self) -> Self {
        FibReaderFactory { f: self.f.clone() }
    }
}

impl<K: FibKey, V> FibReaderFactory<K, V> {
    /// A new reader.
    pub fn reader(&self) -> FibReader<K, V> {
        FibReader { r: self.f.handle() }
    }
}
