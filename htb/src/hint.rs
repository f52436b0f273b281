//! Processor hints for the hot paths, and the only `unsafe` code in the
//! crate (two calls, each with its reason below).
//!
//! * [`prefetch`] asks for the cache line of a value that a later step will
//!   read. Unlike a plain load it does not wait for the line: a lookup or a
//!   packet that misses the cache would otherwise hold the processor's
//!   reorder window until memory answers, so that independent work behind it
//!   cannot start. The batch lookups of [`fib`](crate::fib), the shaper's
//!   `enqueue_burst` (class lines of a burst) and its round robin in large
//!   trees (the next leaf's queue head and buckets) use it to overlap the
//!   misses of many items.
//! * [`with_popcnt`] runs a closure in a function compiled with the `popcnt`
//!   instruction when the processor has it (every x86-64 processor since
//!   2008). The default x86-64 target lacks it, and the compressed nodes of
//!   the FIB's lookup table count bits on every step: a software count is
//!   about 14 instructions, the instruction one.
//!
//! Both are plain hints: without them (other architectures, or a processor
//! without `popcnt`) every answer is the same, only slower.

/// Starts loading the cache line holding `value` into every cache level,
/// without waiting for it.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p: *const T = value;
        // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 processor has
        // (it is part of the target's baseline, so the instruction is always
        // valid here). PREFETCHT0 never faults and has no architectural
        // effect: it reads no value into the program and writes nothing; and
        // the pointer comes from a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Runs `f`, compiled with the `popcnt` instruction when this processor has
/// it (checked once, then cached by the standard library), otherwise as it
/// is. `f` must be inlined into this function to benefit: the bit counts
/// it makes ([`u64::count_ones`]) are lowered to the instruction only in a
/// function compiled for it, so the hot path passed here is `#[inline]`.
#[cfg_attr(not(feature = "fib"), allow(dead_code))]
#[inline(always)]
pub(crate) fn with_popcnt<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(target_arch = "x86_64", not(target_feature = "popcnt")))]
    {
        #[target_feature(enable = "popcnt")]
        fn fast<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the only requirement of a `#[target_feature]` function
            // is that the processor running it has the feature, checked on
            // the line above.
            return unsafe { fast(f) };
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_change_no_answer() {
        let v: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .chain([0, 1, u64::MAX, 1 << 63])
            .collect();
        for x in &v {
            prefetch(x);
        }
        // Bit counts with and without the instruction, against a plain
        // loop over the bits.
        let naive = |x: u64| (0..64).filter(|b| x >> b & 1 == 1).count() as u32;
        let hinted: Vec<u32> = with_popcnt(|| v.iter().map(|x| x.count_ones()).collect());
        let plain: Vec<u32> = v.iter().map(|x| x.count_ones()).collect();
        let want: Vec<u32> = v.iter().map(|&x| naive(x)).collect();
        assert_eq!((hinted, plain), (want.clone(), want));
    }
}
