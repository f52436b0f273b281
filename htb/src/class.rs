//! Class identities and class configuration: what `tc class add ... htb`
//! carries, and how it becomes the numbers the scheduler runs on.

use core::fmt;
use core::str::FromStr;

use crate::error::HtbError;
use crate::rate::{self, LinkLayer, RateCfg};

/// A `major:minor` handle, as tc writes it in hex (`1:10` is `0x0001_0010`).
///
/// Minor 0 names the qdisc itself (`1:`). This is also the 32-bit value the
/// caller passes with each packet (the analogue of `skb->priority`).
///
/// ```
/// use htb::ClassId;
/// let id: ClassId = "1:10".parse().unwrap();
/// assert_eq!(id.raw(), 0x0001_0010);
/// assert_eq!(id.to_string(), "1:10");
/// assert_eq!(ClassId::new(1, 0).to_string(), "1:");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClassId(u32);

impl ClassId {
    /// `major:minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        ClassId(((major as u32) << 16) | minor as u32)
    }
    /// From the packed 32-bit form.
    pub const fn from_raw(raw: u32) -> Self {
        ClassId(raw)
    }
    /// The packed 32-bit form.
    pub const fn raw(self) -> u32 {
        self.0
    }
    /// The major (qdisc handle) part.
    pub const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// The minor (class) part.
    pub const fn minor(self) -> u16 {
        self.0 as u16
    }
    /// True for `X:` (the qdisc itself).
    pub const fn is_root(self) -> bool {
        self.minor() == 0
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor() == 0 {
            write!(f, "{:x}:", self.major())
        } else {
            write!(f, "{:x}:{:x}", self.major(), self.minor())
        }
    }
}

impl From<u32> for ClassId {
    fn from(raw: u32) -> Self {
        ClassId(raw)
    }
}

impl FromStr for ClassId {
    type Err = HtbError;
    /// Parses `1:10`, `1:` or `10:0` (hex parts below 0x10000).
    fn from_str(s: &str) -> Result<Self, HtbError> {
        let bad = || HtbError::BadClassId(s.to_string());
        let (maj, min) = s.split_once(':').ok_or_else(bad)?;
        let part = |p: &str| -> Result<u16, HtbError> {
            if p.is_empty() {
                return Ok(0);
            }
            let p = p
                .strip_prefix("0x")
                .or_else(|| p.strip_prefix("0X"))
                .unwrap_or(p);
            u16::from_str_radix(p, 16).map_err(|_| bad())
        };
        if maj.is_empty() {
            return Err(bad());
        }
        Ok(ClassId::new(part(maj)?, part(min)?))
    }
}

/// The throttling state of a class (the kernel's `cmode`), also known by its
/// colour in the HTB picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Red: over its ceil; it may not send at all.
    CantSend,
    /// Yellow: over its rate but under its ceil; it may borrow from an ancestor.
    MayBorrow,
    /// Green: under its rate; it sends on its own.
    CanSend,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::CantSend => "cant-send",
            Mode::MayBorrow => "may-borrow",
            Mode::CanSend => "can-send",
        })
    }
}

/// Configuration of one class, in the units `tc` uses: rates in bytes per
/// second, sizes in bytes. Build with [`ClassConfig::new`] and the setters;
/// unset fields take tc's defaults.
///
/// ```
/// use htb::{ClassConfig, rate::parse_rate};
/// let cfg = ClassConfig::new(parse_rate("5mbit").unwrap())
///     .ceil(parse_rate("30mbit").unwrap())
///     .prio(1);
/// assert_eq!(cfg.effective_ceil(), 3_750_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassConfig {
    /// Guaranteed rate, bytes per second. Required (non-zero).
    pub rate: u64,
    /// Maximum rate, bytes per second. Defaults to `rate`.
    pub ceil: Option<u64>,
    /// Rate bucket depth in bytes (`burst`/`buffer`/`maxburst`). Defaults to
    /// `mtu + rate / 1e9` (tc with high-resolution timers).
    pub burst: Option<u64>,
    /// Ceil bucket depth in bytes (`cburst`/`cbuffer`/`cmaxburst`). Defaults to
    /// `mtu + ceil / 1e9`.
    pub cburst: Option<u64>,
    /// DRR quantum in bytes. `None` (or 0) derives it as `rate / r2q`,
    /// clamped to [1000, 200000].
    pub quantum: Option<u32>,
    /// Priority 0..=7 (0 is served first); larger values are clamped to 7.
    pub prio: u32,
    /// MTU used for the default bursts (tc's `mtu`, default 1600).
    pub mtu: u32,
    /// Minimum packet unit in bytes.
    pub mpu: u16,
    /// Per-packet overhead in bytes, added before the mpu check.
    pub overhead: u16,
    /// Link layer for cell padding.
    pub linklayer: LinkLayer,
}

/// tc's default `mtu` for HTB classes.
pub const DEFAULT_MTU: u32 = 1600;

impl ClassConfig {
    /// A class with guaranteed `rate` (bytes per second) and tc defaults for
    /// everything else.
    pub fn new(rate: u64) -> Self {
        ClassConfig {
            rate,
            ceil: None,
            burst: None,
            cburst: None,
            quantum: None,
            prio: 0,
            mtu: DEFAULT_MTU,
            mpu: 0,
            overhead: 0,
            linklayer: LinkLayer::Ethernet,
        }
    }
    /// Sets the ceil (bytes per second).
    pub fn ceil(mut self, ceil: u64) -> Self {
        self.ceil = Some(ceil);
        self
    }
    /// Sets the rate bucket depth (bytes).
    pub fn burst(mut self, bytes: u64) -> Self {
        self.burst = Some(bytes);
        self
    }
    /// Sets the ceil bucket depth (bytes).
    pub fn cburst(mut self, bytes: u64) -> Self {
        self.cburst = Some(bytes);
        self
    }
    /// Sets an explicit quantum (bytes); it is not clamped.
    pub fn quantum(mut self, bytes: u32) -> Self {
        self.quantum = Some(bytes);
        self
    }
    /// Sets the priority.
    pub fn prio(mut self, prio: u32) -> Self {
        self.prio = prio;
        self
    }
    /// Sets the MTU used for default bursts.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }
    /// Sets the minimum packet unit.
    pub fn mpu(mut self, mpu: u16) -> Self {
        self.mpu = mpu;
        self
    }
    /// Sets the per-packet overhead.
    pub fn overhead(mut self, overhead: u16) -> Self {
        self.overhead = overhead;
        self
    }
    /// Sets the link layer.
    pub fn linklayer(mut self, ll: LinkLayer) -> Self {
        self.linklayer = ll;
        self
    }

    /// The ceil in bytes per second (`rate` when unset).
    pub fn effective_ceil(&self) -> u64 {
        self.ceil.unwrap_or(self.rate)
    }

    /// The rate bucket depth in bytes, tc's default applied.
    pub fn effective_burst(&self) -> u64 {
        self.burst
            .unwrap_or(self.mtu as u64 + self.rate / rate::NSEC_PER_SEC)
    }

    /// The ceil bucket depth in bytes, tc's default applied.
    pub fn effective_cburst(&self) -> u64 {
        self.cburst
            .unwrap_or(self.mtu as u64 + self.effective_ceil() / rate::NSEC_PER_SEC)
    }

    /// Validates and converts to the scheduler's parameters (what the kernel
    /// stores after `tc` and `htb_change_class` have done their work).
    pub(crate) fn resolve(&self, id: ClassId, r2q: u32) -> Result<Resolved, HtbError> {
        if self.rate == 0 {
            return Err(HtbError::ZeroRate(id));
        }
        let ceil = self.effective_ceil();
        if ceil == 0 {
            return Err(HtbError::ZeroCeil(id));
        }
        let buffer_ticks = rate::tc_xmittime_ticks(self.rate, self.effective_burst())
            .ok_or(HtbError::BurstOutOfRange(id))?;
        let cbuffer_ticks = rate::tc_xmittime_ticks(ceil, self.effective_cburst())
            .ok_or(HtbError::BurstOutOfRange(id))?;
        let mut warning = None;
        let quantum = match self.quantum {
            Some(q) if q > 0 => q.min(i32::MAX as u32) as i32,
            _ => {
                let q = (self.rate / r2q.max(1) as u64).min(i32::MAX as u64) as i32;
                if q < 1000 {
                    warning = Some(QuantumWarning::Small(id));
                    1000
                } else if q > 200_000 {
                    warning = Some(QuantumWarning::Big(id));
                    200_000
                } else {
                    q
                }
            }
        };
        Ok(Resolved {
            rate: RateCfg::new(self.rate, self.overhead, self.mpu, self.linklayer),
            ceil: RateCfg::new(ceil, self.overhead, self.mpu, self.linklayer),
            buffer_ticks,
            cbuffer_ticks,
            quantum,
            prio: self.prio.min(7) as u8,
            warning,
        })
    }
}

/// Scheduler parameters derived from a [`ClassConfig`].
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub rate: RateCfg,
    pub ceil: RateCfg,
    pub buffer_ticks: u32,
    pub cbuffer_ticks: u32,
    pub quantum: i32,
    pub prio: u8,
    pub warning: Option<QuantumWarning>,
}

/// The kernel's "quantum of class X is small/big. Consider r2q change."
/// warning, returned to the caller instead of being printed. The derived
/// quantum was clamped to 1000 (small) or 200000 (big) bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantumWarning {
    /// `rate / r2q` was below 1000 and was raised to 1000.
    Small(ClassId),
    /// `rate / r2q` was above 200000 and was lowered to 200000.
    Big(ClassId),
}

impl fmt::Display for QuantumWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, what) = match self {
            QuantumWarning::Small(id) => (id, "small"),
            QuantumWarning::Big(id) => (id, "big"),
        };
        write!(
            f,
            "quantum of class {:X} is {what}. Consider r2q change.",
            id.raw()
        )
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn classid_parse_and_print() {
        assert_eq!("1:10".parse::<ClassId>().unwrap(), ClassId::new(1, 0x10));
        assert_eq!("ffff:ffff".parse::<ClassId>().unwrap().raw(), u32::MAX);
        assert_eq!("1:".parse::<ClassId>().unwrap(), ClassId::new(1, 0));
        assert!("10".parse::<ClassId>().is_err());
        assert!("1:10000".parse::<ClassId>().is_err());
        assert!(":1".parse::<ClassId>().is_err());
        assert!("1:g".parse::<ClassId>().is_err());
        assert_eq!(ClassId::new(0xa, 0xbc).to_string(), "a:bc");
    }

    #[test]
    fn quantum_derivation_and_warnings() {
        let id = ClassId::new(1, 0x10);
        // 5 mbit / 10 = 62500.
        let r = ClassConfig::new(625_000).resolve(id, 10).unwrap();
        assert_eq!((r.quantum, r.warning), (62_500, None));
        // 79 kbit / 10 = 987 bytes: raised to 1000 with a "small" warning.
        let r = ClassConfig::new(9_875).resolve(id, 10).unwrap();
        assert_eq!(
            (r.quantum, r.warning),
            (1000, Some(QuantumWarning::Small(id)))
        );
        // 30 mbit / 10 = 375000 → clamped big.
        let r = ClassConfig::new(3_750_000).resolve(id, 10).unwrap();
        assert_eq!(
            (r.quantum, r.warning),
            (200_000, Some(QuantumWarning::Big(id)))
        );
        // Explicit quantum wins, unclamped.
        let r = ClassConfig::new(3_750_000)
            .quantum(1500)
            .resolve(id, 10)
            .unwrap();
        assert_eq!((r.quantum, r.warning), (1500, None));
        assert_eq!(
            QuantumWarning::Big(id).to_string(),
            "quantum of class 10010 is big. Consider r2q change."
        );
    }

    #[test]
    fn defaults_follow_tc() {
        let c = ClassConfig::new(375_000);
        assert_eq!(c.effective_burst(), 1600);
        assert_eq!(c.effective_ceil(), 375_000);
        let r = c.resolve(ClassId::new(1, 1), 10).unwrap();
        assert_eq!(r.buffer_ticks, 66656);
        assert_eq!(r.prio, 0);
        assert_eq!(
            ClassConfig::new(1000)
                .prio(99)
                .resolve(ClassId::new(1, 1), 10)
                .unwrap()
                .prio,
            7
        );
        // tc's "burst out of range": 1601 bytes at 1 B/s overflow 32-bit µs.
        assert!(matches!(
            ClassConfig::new(1).resolve(ClassId::new(1, 1), 10),
            Err(HtbError::BurstOutOfRange(_))
        ));
        assert!(matches!(
            ClassConfig::new(0).resolve(ClassId::new(1, 1), 10),
            Err(HtbError::ZeroRate(_))
        ));
        assert!(matches!(
            ClassConfig::new(10).ceil(0).resolve(ClassId::new(1, 1), 10),
            Err(HtbError::ZeroCeil(_))
        ));
    }
}
