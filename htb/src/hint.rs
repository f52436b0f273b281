//! Processor hints for the hot paths, and the only `unsafe` code in the
//! crate (three calls, each with its reason below).
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
//! * [`huge_pages`] asks the kernel to back a large buffer with 2 MiB pages
//!   (`madvise(MADV_HUGEPAGE)`), for systems whose transparent huge pages
//!   are set to `madvise` (the common default). A 65 281-class tree is
//!   25 MB of classes: with 4 KiB pages each packet's random class misses the
//!   TLB as well as the caches, and the page walk adds a memory access of
//!   its own.
//!
//! All are plain hints: without them (other architectures, or a processor
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

/// Advises the kernel that the allocation of `buf` (its whole capacity,
/// written or not) is worth backing with huge pages. Best before the memory
/// is first written: pages faulted in afterwards come as huge pages, while
/// already present ones wait for the kernel's background collapse. Errors
/// are ignored (a kernel without transparent huge pages refuses the advice;
/// the memory works the same).
pub(crate) fn huge_pages<T>(buf: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buf.as_ptr() as usize;
        let end = start + buf.capacity() * size_of::<T>();
        // Only whole huge pages inside the allocation: advice on the
        // neighbours' memory would be harmless but is not ours to give.
        let (lo, hi) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if hi > lo {
            // SAFETY: [lo, hi) lies inside `buf`'s live allocation, and
            // MADV_HUGEPAGE changes no byte of it (only how the kernel backs
            // it); the call touches no memory of this program.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
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

    /// The advice reaches the kernel: the memory area holding the buffer is
    /// marked for huge pages (`hg` in its `VmFlags`), whatever the system's
    /// setting, and the buffer reads back what was written.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_page_advice_marks_the_area() {
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            // A kernel built without them refuses the advice (EINVAL).
            eprintln!("skipped: this kernel has no transparent huge pages");
            return;
        }
        let mut v: Vec<u64> = Vec::with_capacity(3 << 20); // 24 MiB
        huge_pages(&v);
        v.extend(0..v.capacity() as u64);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
        let Ok(maps) = std::fs::read_to_string("/proc/self/smaps") else {
            eprintln!("skipped: /proc/self/smaps unreadable");
            return;
        };
        let addr = v.as_ptr() as usize + (8 << 20);
        let mut inside = false;
        let mut flags = None;
        for line in maps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = (a..b).contains(&addr);
            } else if inside && let Some(f) = line.strip_prefix("VmFlags:") {
                flags = Some(f.to_string());
            }
        }
        let flags = flags.expect("the buffer's area is in smaps");
        assert!(
            flags.split_whitespace().any(|f| f == "hg"),
            "VmFlags:{flags}"
        );
    }
}
