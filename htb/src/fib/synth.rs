/*! Seeded synthetic routing tables shaped like the 2025 Internet tables
(`shared/docs/fib-anchors.md` §3), for tests, benchmarks and the kernel
comparison.

* IPv4: about 60 % /24, mean length ≈ 23, about half of the prefixes
  more-specifics of another one, addresses in 1.0.0.0–223.255.255.255.
* IPv6: /48 about half, /32 about 12 %, mean ≈ 43, about 57 % nested,
  addresses in 2000::/3.

The per-length histogram is an approximation calibrated on those summary
figures, not a copy of a real table.

```
use htb::fib::synth;
let t = synth::ipv4_prefixes(10_000, 1);
assert_eq!(t.len(), 10_000);
let mean = t.iter().map(|p| f64::from(p.len())).sum::<f64>() / t.len() as f64;
assert!((22.0..24.0).contains(&mean), "{mean}");
assert_eq!(t, synth::ipv4_prefixes(10_000, 1)); // seeded: the same every time
```
*/

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{FibKey, KeyBits, Prefix};

/// A small, fast, seeded generator (xorshift64*).
///
/// ```
/// let mut r = htb::fib::synth::Rng::new(7);
/// assert_ne!(r.next_u64(), r.next_u64());
/// assert!(r.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value).
    ///
    /// ```
    /// let _ = htb::fib::synth::Rng::new(0);
    /// ```
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    ///
    /// ```
    /// let _ = htb::fib::synth::Rng::new(1).next_u64();
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number below `n` (`n > 0`; 0 gives 0).
    ///
    /// ```
    /// assert_eq!(htb::fib::synth::Rng::new(1).below(1), 0);
    /// ```
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// `(length, weight)`: the IPv4 length mix (weights in 1/10000).
const V4_MIX: &[(u8, u32)] = &[
    (8, 2),
    (9, 2),
    (10, 5),
    (11, 10),
    (12, 25),
    (13, 45),
    (14, 80),
    (15, 120),
    (16, 350),
    (17, 160),
    (18, 260),
    (19, 380),
    (20, 560),
    (21, 540),
    (22, 1050),
    (23, 800),
    (24, 5560),
    (25, 8),
    (26, 7),
    (27, 6),
    (28, 5),
    (29, 2),
    (30, 1),
    (31, 1),
    (32, 20),
];

/// The IPv6 length mix (weights in 1/10000).
const V6_MIX: &[(u8, u32)] = &[
    (16, 2),
    (19, 2),
    (20, 8),
    (22, 5),
    (24, 30),
    (26, 5),
    (28, 150),
    (29, 400),
    (30, 40),
    (31, 30),
    (32, 1200),
    (33, 100),
    (34, 100),
    (35, 60),
    (36, 380),
    (37, 40),
    (38, 80),
    (39, 50),
    (40, 700),
    (41, 30),
    (42, 100),
    (43, 20),
    (44, 800),
    (45, 100),
    (46, 300),
    (47, 300),
    (48, 4900),
    (52, 20),
    (56, 150),
    (60, 10),
    (64, 150),
    (96, 4),
    (112, 4),
    (127, 3),
    (128, 17),
];

fn pick_len(r: &mut Rng, mix: &[(u8, u32)]) -> u8 {
    let total: u32 = mix.iter().map(|m| m.1).sum();
    let mut x = r.below(u64::from(total)) as u32;
    for &(l, w) in mix {
        if x < w {
            return l;
        }
        x -= w;
    }
    mix[mix.len() - 1].0
}

fn gen_table<K: FibKey>(
    n: usize,
    seed: u64,
    mix: &[(u8, u32)],
    nested_pct: u64,
    random_addr: &dyn Fn(&mut Rng) -> K::Bits,
) -> Vec<Prefix<K>> {
    let mut r = Rng::new(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out: Vec<Prefix<K>> = Vec::with_capacity(n);
    let bits = K::Bits::BITS;
    let mut guard = 0usize;
    while out.len() < n && guard < n * 50 + 1000 {
        guard += 1;
        let len = pick_len(&mut r, mix);
        let mut addr = random_addr(&mut r);
        if !out.is_empty() && r.below(100) < nested_pct {
            // A more-specific of an existing, shorter prefix.
            let base = out[r.below(out.len() as u64) as usize];
            if base.len() < len {
                let low =
                    K::Bits::from_u128(u128::from(r.next_u64()) << 64 | u128::from(r.next_u64()));
                let keep = K::Bits::high_mask(bits - base.len());
                addr = base.addr().to_bits().or(low.and(!keep));
            }
        }
        let Ok(p) = Prefix::new_masked(K::from_bits(addr), len) else {
            continue;
        };
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// `n` distinct IPv4 prefixes (see the module docs), the same for a seed.
///
/// ```
/// let t = htb::fib::synth::ipv4_prefixes(1000, 3);
/// let s24 = t.iter().filter(|p| p.len() == 24).count();
/// assert!((500..700).contains(&s24), "{s24}");
/// ```
pub fn ipv4_prefixes(n: usize, seed: u64) -> Vec<Prefix<Ipv4Addr>> {
    gen_table::<Ipv4Addr>(n, seed, V4_MIX, 50, &|r| {
        0x0100_0000 + r.below(0xdf00_0000) as u32
    })
}

/// `n` distinct IPv6 prefixes (see the module docs), the same for a seed.
///
/// ```
/// let t = htb::fib::synth::ipv6_prefixes(1000, 3);
/// assert!(t.iter().all(|p| p.addr().segments()[0] >> 13 == 1));
/// ```
pub fn ipv6_prefixes(n: usize, seed: u64) -> Vec<Prefix<Ipv6Addr>> {
    gen_table::<Ipv6Addr>(n, seed, V6_MIX, 57, &|r| {
        let hi = (r.next_u64() & !(0xe000_0000_0000_0000)) | 0x2000_0000_0000_0000;
        // Allocated space is crowded: keep the top 16 bits in 2000–2c0f.
        let hi = (hi & 0x0000_ffff_ffff_ffff) | ((0x2000 + r.below(0xc10)) << 48);
        u128::from(hi) << 64 | u128::from(r.next_u64())
    })
}

/// Lookup addresses for a table: for each of `n`, at random one of a random
/// address (drawn by `random`), an address inside a prefix, the first or last
/// address of a prefix, or the address just outside one. Never the
/// unspecified address (the kernel does not look it up).
///
/// ```
/// use htb::fib::synth;
/// let t = synth::ipv4_prefixes(100, 1);
/// let a = synth::probes(&t, 1000, 2, &mut |r| std::net::Ipv4Addr::from(r.next_u64() as u32));
/// assert_eq!(a.len(), 1000);
/// ```
pub fn probes<K: FibKey>(
    table: &[Prefix<K>],
    n: usize,
    seed: u64,
    random: &mut dyn FnMut(&mut Rng) -> K,
) -> Vec<K> {
    let mut r = Rng::new(seed ^ 0x5eed);
    let mut out = Vec::with_capacity(n);
    let zero = K::from_bits(K::Bits::ZERO);
    while out.len() < n {
        let a = if table.is_empty() || r.below(4) == 0 {
            random(&mut r)
        } else {
            let p = table[r.below(table.len() as u64) as usize];
            let lo = p.addr().to_bits().to_u128();
            let hi = p.last().to_bits().to_u128();
            let inside = lo + (u128::from(r.next_u64()) % (hi - lo).saturating_add(1).max(1));
            let x = match r.below(5) {
                0 => lo,
                1 => hi,
                2 => lo.wrapping_sub(1),
                3 => hi.wrapping_add(1),
                _ => inside,
            };
            let max = if K::Bits::BITS == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            let x = x & max;
            from_u128::<K>(x)
        };
        if a != zero {
            out.push(a);
        }
    }
    out
}

fn from_u128<K: FibKey>(x: u128) -> K {
    K::from_bits(K::Bits::from_u128(x))
}
