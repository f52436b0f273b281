//! Property tests of `htb::fib` against a naive longest-prefix match:
//! random route sets built by interleaved inserts, replaces and removes; after
//! every sequence each lookup (compiled table, trie and batch) must equal the
//! naive answer (the matching prefixes, the longest, its lowest metric),
//! iteration must be in prefix order, and the trie statistics must agree with
//! the contents.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use htb::fib::{Fib, FibError, FibKey, KeyBits, Prefix, RouteKind};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

/// A key generator for one address family.
trait Family: FibKey {
    fn arb_addr(g: &mut Gen) -> Self;
    fn arb_len(g: &mut Gen) -> u8;
}

fn pick<T: Copy>(g: &mut Gen, xs: &[T]) -> T {
    *g.choose(xs).unwrap()
}

/// `pick` over a list whose items may themselves draw from `g`.
macro_rules! pick {
    ($g:expr, [$($x:expr),* $(,)?]) => {{
        let xs = [$($x),*];
        pick($g, &xs)
    }};
}

impl Family for Ipv4Addr {
    fn arb_addr(g: &mut Gen) -> Self {
        // A few crowded regions so that prefixes nest and collide.
        let top = pick!(g, [0u32, 10, 10, 10, 192, 255, u32::arbitrary(g) >> 24]);
        let second = pick!(g, [0u32, 1, 168, u32::arbitrary(g) & 0xff]);
        let low = pick!(g, [0u32, 0x80, 0xff00, u32::arbitrary(g) & 0xffff]);
        Ipv4Addr::from((top << 24) | (second << 16) | low)
    }
    fn arb_len(g: &mut Gen) -> u8 {
        pick!(
            g,
            [
                0,
                1,
                7,
                8,
                9,
                12,
                16,
                16,
                20,
                23,
                24,
                24,
                24,
                25,
                28,
                31,
                32,
                u8::arbitrary(g) % 33
            ]
        )
    }
}

impl Family for Ipv6Addr {
    fn arb_addr(g: &mut Gen) -> Self {
        let top = pick!(
            g,
            [
                0u128,
                0x2001_0db8,
                0x2001_0db8,
                0xfe80_0000,
                u128::from(u32::arbitrary(g))
            ]
        );
        let mid = pick!(g, [0u128, 1, u128::from(u16::arbitrary(g))]);
        let low = pick!(g, [0u128, 1, u128::from(u64::arbitrary(g))]);
        Ipv6Addr::from((top << 96) | (mid << 64) | low)
    }
    fn arb_len(g: &mut Gen) -> u8 {
        pick!(
            g,
            [
                0,
                1,
                16,
                29,
                32,
                32,
                40,
                44,
                48,
                48,
                56,
                64,
                64,
                96,
                127,
                128,
                u8::arbitrary(g) % 129
            ]
        )
    }
}

#[derive(Clone, Debug)]
enum Op<K> {
    Insert(Prefix<K>, u32, RouteKind<u16>),
    Replace(Prefix<K>, u32, RouteKind<u16>),
    Remove(Prefix<K>, u32),
    RemovePrefix(Prefix<K>),
}

#[derive(Clone, Debug)]
struct Case<K> {
    ops: Vec<Op<K>>,
    probes: Vec<K>,
}

fn arb_kind(g: &mut Gen) -> RouteKind<u16> {
    match u8::arbitrary(g) % 8 {
        0 => RouteKind::Blackhole,
        1 => RouteKind::Unreachable,
        2 => RouteKind::Prohibit,
        _ => RouteKind::Unicast(u16::arbitrary(g)),
    }
}

impl<K: Family> Arbitrary for Case<K> {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % (g.size() * 2 + 1);
        let mut prefixes: Vec<Prefix<K>> = Vec::new();
        let mut ops = Vec::new();
        for _ in 0..n {
            // Reuse earlier prefixes half of the time (more routes per prefix,
            // removals that hit).
            let p = if !prefixes.is_empty() && bool::arbitrary(g) {
                pick(g, &prefixes)
            } else {
                let p = Prefix::new_masked(K::arb_addr(g), K::arb_len(g)).unwrap();
                prefixes.push(p);
                p
            };
            let metric = u32::from(u8::arbitrary(g) % 4);
            ops.push(match u8::arbitrary(g) % 10 {
                0..=4 => Op::Insert(p, metric, arb_kind(g)),
                5 => Op::Replace(p, metric, arb_kind(g)),
                6..=8 => Op::Remove(p, metric),
                _ => Op::RemovePrefix(p),
            });
        }
        let mut probes: Vec<K> = (0..g.size()).map(|_| K::arb_addr(g)).collect();
        // First and last addresses of the prefixes and just outside them.
        for p in &prefixes {
            let lo = p.addr().to_bits().to_u128();
            let hi = p.last().to_bits().to_u128();
            let max = if K::Bits::BITS == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            for a in [
                Some(lo),
                Some(hi),
                lo.checked_sub(1),
                hi.checked_add(1).filter(|&a| a <= max),
            ]
            .into_iter()
            .flatten()
            {
                probes.push(from_u128::<K>(a));
            }
        }
        Case { ops, probes }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let probes = self.probes.clone();
        let ops = self.ops.clone();
        Box::new((0..ops.len()).rev().map(move |i| {
            let mut o = ops.clone();
            o.remove(i);
            Case {
                ops: o,
                probes: probes.clone(),
            }
        }))
    }
}

fn from_u128<K: FibKey>(a: u128) -> K {
    if K::Bits::BITS == 32 {
        // `Prefix::new_masked` at full length is the identity: a safe way to
        // build the key from text without knowing the concrete type.
        format!("{}", Ipv4Addr::from(a as u32))
            .parse()
            .ok()
            .unwrap()
    } else {
        format!("{}", Ipv6Addr::from(a)).parse().ok().unwrap()
    }
}

type Model<K> = BTreeMap<Prefix<K>, BTreeMap<u32, RouteKind<u16>>>;

/// The naive longest-prefix match (smoltcp's routing-table style).
fn naive<K: FibKey>(m: &Model<K>, a: K) -> Option<(Prefix<K>, u32, RouteKind<u16>)> {
    m.iter()
        .filter(|(p, _)| p.contains(a))
        .max_by_key(|(p, _)| p.len())
        .map(|(p, r)| {
            let (metric, kind) = r.iter().next().unwrap();
            (*p, *metric, *kind)
        })
}

fn run<K: Family>(case: Case<K>) -> TestResult {
    let mut fib: Fib<K, u16> = Fib::new();
    let mut model: Model<K> = BTreeMap::new();
    for op in &case.ops {
        match *op {
            Op::Insert(p, m, k) => {
                let got = fib.insert(p, m, k);
                match model.entry(p).or_default().entry(m) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        if !matches!(got, Err(FibError::Exists { .. })) {
                            return TestResult::error(format!(
                                "insert {p} {m}: {got:?}, want Exists"
                            ));
                        }
                    }
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(k);
                        if got.is_err() {
                            return TestResult::error(format!("insert {p} {m}: {got:?}"));
                        }
                    }
                }
            }
            Op::Replace(p, m, k) => {
                let got = fib.replace(p, m, k).unwrap();
                let want = model.entry(p).or_default().insert(m, k);
                if got != want {
                    return TestResult::error(format!("replace {p} {m}: {got:?} vs {want:?}"));
                }
            }
            Op::Remove(p, m) => {
                let got = fib.remove(&p, m);
                let want = model.get_mut(&p).and_then(|r| r.remove(&m));
                if model.get(&p).is_some_and(|r| r.is_empty()) {
                    model.remove(&p);
                }
                if got != want {
                    return TestResult::error(format!("remove {p} {m}: {got:?} vs {want:?}"));
                }
            }
            Op::RemovePrefix(p) => {
                let got: Vec<u32> = fib.remove_prefix(&p).iter().map(|r| r.metric).collect();
                let want: Vec<u32> = model
                    .remove(&p)
                    .map(|r| r.keys().copied().collect())
                    .unwrap_or_default();
                if got != want {
                    return TestResult::error(format!("remove_prefix {p}: {got:?} vs {want:?}"));
                }
            }
        }
    }
    // Lookups: compiled table, trie, batch.
    let mut batch = vec![None; case.probes.len()];
    fib.lookup_batch(&case.probes, &mut batch).unwrap();
    for (a, b) in case.probes.iter().zip(&batch) {
        let want = naive(&model, *a);
        let got = fib
            .lookup(*a)
            .map(|m| (m.prefix, m.route.metric, m.route.kind));
        let trie = fib
            .lookup_trie(*a)
            .map(|m| (m.prefix, m.route.metric, m.route.kind));
        let bat = b
            .and_then(|id| fib.resolve(id))
            .map(|m| (m.prefix, m.route.metric, m.route.kind));
        if got != want || trie != want || bat != want {
            return TestResult::error(format!(
                "lookup {a}: table {got:?}, trie {trie:?}, batch {bat:?}, naive {want:?}"
            ));
        }
    }
    // Exact gets, iteration order, covering / covered.
    let listed: Vec<Prefix<K>> = fib.iter().map(|(p, _)| p).collect();
    let want: Vec<Prefix<K>> = model.keys().copied().collect();
    if listed != want {
        return TestResult::error(format!("iteration {listed:?} vs {want:?}"));
    }
    for (p, routes) in fib.iter() {
        let m: Vec<(u32, RouteKind<u16>)> = routes.iter().map(|r| (r.metric, r.kind)).collect();
        let w: Vec<(u32, RouteKind<u16>)> = model[&p].iter().map(|(a, b)| (*a, *b)).collect();
        if m != w || fib.get(&p).map(|r| r.len()) != Some(w.len()) {
            return TestResult::error(format!("routes of {p}: {m:?} vs {w:?}"));
        }
    }
    for p in model.keys().take(8) {
        let cov: Vec<Prefix<K>> = fib.covering(p).map(|(q, _)| q).collect();
        let wcov: Vec<Prefix<K>> = model
            .keys()
            .filter(|q| q.covers(p))
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut wcov_by_len = wcov.clone();
        wcov_by_len.sort_by_key(|q| q.len());
        if cov != wcov_by_len {
            return TestResult::error(format!("covering {p}: {cov:?} vs {wcov_by_len:?}"));
        }
        let sub: Vec<Prefix<K>> = fib.covered(p).map(|(q, _)| q).collect();
        let wsub: Vec<Prefix<K>> = model.keys().filter(|q| p.covers(q)).copied().collect();
        if sub != wsub {
            return TestResult::error(format!("covered {p}: {sub:?} vs {wsub:?}"));
        }
    }
    // Statistics consistent with the contents.
    let s = fib.stats();
    let leaves: BTreeSet<K> = model.keys().map(|p| p.addr()).collect();
    let routes: usize = model.values().map(|r| r.len()).sum();
    let ok = s.prefixes == model.len()
        && fib.prefix_count() == model.len()
        && fib.len() == routes
        && s.leaves == leaves.len()
        && s.tnodes == s.tnodes_by_bits.iter().sum::<usize>()
        && s.pointers - s.null_pointers == (s.tnodes + s.leaves).saturating_sub(1)
        && (s.leaves <= 1 || s.max_depth >= 1);
    if !ok {
        return TestResult::error(format!(
            "stats {s:?} for {} prefixes, {} leaves",
            model.len(),
            leaves.len()
        ));
    }
    TestResult::passed()
}

/// Reproducible runs: the seed comes from `HTB_PROP_SEED` (printed).
fn qc(prop: u64) -> QuickCheck {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let base: u64 = std::env::var("HTB_PROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xf1b);
    println!("HTB_PROP_SEED={base} (fib property {prop})");
    let seed = base.wrapping_add(prop.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    QuickCheck::new()
        .tests(tests)
        .max_tests(tests * 10)
        .rng(Gen::from_size_and_seed(60, seed))
}

#[test]
fn ipv4_matches_naive_lpm() {
    qc(1).quickcheck(run::<Ipv4Addr> as fn(Case<Ipv4Addr>) -> TestResult);
}

#[test]
fn ipv6_matches_naive_lpm() {
    qc(2).quickcheck(run::<Ipv6Addr> as fn(Case<Ipv6Addr>) -> TestResult);
}

/// Many routes under one /16 force inflates (and, on removal, halves and
/// collapses); lookups stay exact at every step.
#[test]
fn dense_region_resizes_stay_exact() {
    let mut fib: Fib<Ipv4Addr, u32> = Fib::new();
    let mut model: Model<Ipv4Addr> = BTreeMap::new();
    let mut x = 0x9e37_79b9u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for round in 0..4000u32 {
        let r = next();
        let len = [16, 20, 24, 24, 26, 30, 32][(r % 7) as usize];
        let p = Prefix::new_masked(Ipv4Addr::from(0x0a0a_0000 | (r >> 16)), len).unwrap();
        if round % 3 == 2 {
            fib.remove_prefix(&p);
            model.remove(&p);
        } else if fib.insert(p, 1, RouteKind::Unicast(round)).is_ok() {
            model
                .entry(p)
                .or_default()
                .insert(1, RouteKind::Unicast(round as u16));
        }
    }
    let s = fib.stats();
    assert!(s.tnodes_by_bits.len() > 3, "expected multi-bit nodes: {s}");
    for i in 0..20000u32 {
        let a = Ipv4Addr::from(0x0a0a_0000 | (next() & 0xffff));
        let want = naive(&model, a).map(|w| w.0);
        assert_eq!(fib.lookup(a).map(|m| m.prefix), want, "{a} after round {i}");
        assert_eq!(fib.lookup_trie(a).map(|m| m.prefix), want, "{a}");
    }
}

/// The compiled IPv6 table against the trie and the naive LPM after *every*
/// operation of a random sequence (not only at its end), through the single
/// and the batch lookup (batches of every length, so that the lockstep
/// groups and their remainder both run).
fn run_v6_stepwise(case: Case<Ipv6Addr>) -> TestResult {
    let mut fib: Fib<Ipv6Addr, u16> = Fib::new();
    let mut model: Model<Ipv6Addr> = BTreeMap::new();
    let probes = &case.probes[..case.probes.len().min(40)];
    let mut batch = vec![None; probes.len()];
    for (step, op) in case.ops.iter().enumerate() {
        match *op {
            Op::Insert(p, m, k) | Op::Replace(p, m, k) => {
                let _ = fib.replace(p, m, k);
                model.entry(p).or_default().insert(m, k);
            }
            Op::Remove(p, m) => {
                fib.remove(&p, m);
                if let Some(r) = model.get_mut(&p) {
                    r.remove(&m);
                    if r.is_empty() {
                        model.remove(&p);
                    }
                }
            }
            Op::RemovePrefix(p) => {
                fib.remove_prefix(&p);
                model.remove(&p);
            }
        }
        let n = step % (probes.len() + 1);
        fib.lookup_batch(&probes[..n], &mut batch[..n]).unwrap();
        for (i, a) in probes.iter().enumerate() {
            let want = naive(&model, *a).map(|w| w.0);
            let table = fib.lookup(*a).map(|m| m.prefix);
            let trie = fib.lookup_trie(*a).map(|m| m.prefix);
            let bat = (i < n).then(|| batch[i].and_then(|id| fib.resolve(id)).map(|m| m.prefix));
            if table != want || trie != want || bat.is_some_and(|b| b != want) {
                return TestResult::error(format!(
                    "after op {step} ({op:?}): lookup {a}: table {table:?}, trie {trie:?}, \
                     batch {bat:?}, naive {want:?}"
                ));
            }
        }
    }
    TestResult::passed()
}

#[test]
fn ipv6_compiled_table_tracks_every_update() {
    qc(3).quickcheck(run_v6_stepwise as fn(Case<Ipv6Addr>) -> TestResult);
}

/// Lengths at and around the compiled table's stride edges (a /18 root,
/// then 6-bit strides: 24, 30, 36, 42, 48, … 126), the default route and
/// host routes, all nested inside two crowded /32s.
#[test]
fn ipv6_compiled_table_stride_edges_under_churn() {
    let mut r = htb::fib::synth::Rng::new(0x6);
    let lens: Vec<u8> = [
        0u8, 1, 17, 18, 19, 23, 24, 25, 29, 30, 31, 32, 47, 48, 49, 64,
    ]
    .into_iter()
    .chain([96, 120, 125, 126, 127, 128])
    .collect();
    let bases = [0x2001_0db8u128 << 96, 0x2a00_1450u128 << 96];
    let mut fib: Fib<Ipv6Addr, u32> = Fib::new();
    let mut model: Model<Ipv6Addr> = BTreeMap::new();
    let mut live: Vec<Prefix<Ipv6Addr>> = Vec::new();
    for step in 0..6000u32 {
        if !live.is_empty() && r.below(5) < 2 {
            let p = live.swap_remove(r.below(live.len() as u64) as usize);
            assert!(!fib.remove_prefix(&p).is_empty(), "{p} was in the table");
            model.remove(&p);
        } else {
            let base = bases[r.below(2) as usize];
            // Few distinct low bits, so that prefixes share paths.
            let low = u128::from(r.below(4)) << 90
                | u128::from(r.below(4)) << 64
                | u128::from(r.below(4));
            let len = lens[r.below(lens.len() as u64) as usize];
            let p = Prefix::new_masked(Ipv6Addr::from(base | low), len).unwrap();
            if fib.insert(p, 7, RouteKind::Unicast(step)).is_ok() {
                model
                    .entry(p)
                    .or_default()
                    .insert(7, RouteKind::Unicast(step as u16));
                live.push(p);
            }
        }
        if step % 97 == 0 {
            let mut probes: Vec<Ipv6Addr> = Vec::new();
            for p in live.iter().take(64) {
                let lo = u128::from(p.addr());
                let hi = u128::from(p.last());
                probes.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)].map(Ipv6Addr::from));
            }
            probes.extend((0..32).map(|_| {
                let base = bases[r.below(2) as usize];
                Ipv6Addr::from(base | u128::from(r.next_u64()) << 32 | u128::from(r.below(8)))
            }));
            let mut out = vec![None; probes.len()];
            fib.lookup_batch(&probes, &mut out).unwrap();
            for (a, b) in probes.iter().zip(&out) {
                let want = naive(&model, *a).map(|w| w.0);
                assert_eq!(fib.lookup(*a).map(|m| m.prefix), want, "{a} at step {step}");
                assert_eq!(fib.lookup_trie(*a).map(|m| m.prefix), want, "{a}");
                assert_eq!(b.and_then(|id| fib.resolve(id)).map(|m| m.prefix), want);
            }
        }
    }
    // Emptying the table leaves a compiled table that answers nothing.
    for p in live.drain(..) {
        fib.remove_prefix(&p);
    }
    assert!(fib.is_empty());
    let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(fib.lookup(a), None);
}

/// A realistic table (the benchmark's generator at 20k prefixes): remove a
/// third, look up, put them back, look up; the compiled table agrees with
/// the trie on the generator's probes (inside, first, last and just
/// outside prefixes, and random addresses).
#[test]
fn ipv6_compiled_table_matches_trie_on_synthetic_table() {
    use htb::fib::synth;
    let t = synth::ipv6_prefixes(20_000, 11);
    let probes = synth::probes(&t, 40_000, 12, &mut |r| {
        Ipv6Addr::from(u128::from(r.next_u64() | 1 << 61) << 64 | u128::from(r.next_u64()))
    });
    let mut fib: Fib<Ipv6Addr, u32> = Fib::new();
    for (i, p) in t.iter().enumerate() {
        fib.insert(*p, 0, RouteKind::Unicast(i as u32)).unwrap();
    }
    let check = |fib: &Fib<Ipv6Addr, u32>, what: &str| {
        let mut out = vec![None; probes.len()];
        fib.lookup_batch(&probes, &mut out).unwrap();
        let mut hits = 0;
        for (a, b) in probes.iter().zip(&out) {
            let trie = fib.lookup_trie(*a).map(|m| m.prefix);
            assert_eq!(fib.lookup(*a).map(|m| m.prefix), trie, "{what}: {a}");
            assert_eq!(
                b.and_then(|id| fib.resolve(id)).map(|m| m.prefix),
                trie,
                "{what}"
            );
            hits += usize::from(trie.is_some());
        }
        // The probes must exercise matches, not only misses.
        assert!(hits > probes.len() / 4, "{what}: only {hits} hits");
    };
    check(&fib, "built");
    let gone: Vec<Prefix<Ipv6Addr>> = t.iter().step_by(3).copied().collect();
    for p in &gone {
        assert!(fib.remove(p, 0).is_some());
    }
    check(&fib, "a third removed");
    for p in &gone {
        fib.insert(*p, 0, RouteKind::Unicast(0)).unwrap();
    }
    check(&fib, "restored");
}
