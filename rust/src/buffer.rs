//! Buffer allocation that reports running out of memory as an error.
//!
//! Every buffer whose size a caller controls (rows, lengths, vocabulary, batch)
//! is allocated here: the size is a checked product, and the allocation is
//! tried first, so a request too large for the machine is
//! [`RnnError::OutOfMemory`] (Python's `MemoryError`), never an abort.

use crate::error::{Result, RnnError};
use crate::real::Real;

/// The product of `dims`, or an error naming `what` when it overflows `usize`
/// (or the byte count of `elem` bytes each does).
pub fn checked_len(what: &str, dims: &[usize], elem: usize) -> Result<usize> {
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|len| {
            len.checked_mul(elem.max(1))
                .is_some_and(|b| b <= isize::MAX as usize)
        });
    len.ok_or_else(|| {
        let shown: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        RnnError::out_of_memory(
            what,
            format!("{} elements cannot be held in memory", shown.join(" x ")),
        )
    })
}

fn reserve<T>(len: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        RnnError::out_of_memory(
            what,
            format!(
                "cannot allocate {len} elements ({} bytes): out of memory",
                len.saturating_mul(std::mem::size_of::<T>())
            ),
        )
    })?;
    Ok(v)
}

/// A zeroed buffer, or an error (not an abort) when memory runs out.
///
/// The size is first tried with `try_reserve_exact`. A small buffer, or any
/// buffer on one thread, comes from `vec!`, which asks the allocator for
/// zeroed memory (`calloc`). A buffer of [`SHARED_FILL_MIN`] bytes or more is
/// zeroed a piece per thread: the allocator reuses freed memory for the
/// buffers of the next call, and `calloc` then clears them on the caller's
/// thread alone, with the other cores idle (6-8% of an LSTM call at H = 128).
pub fn zeros<F: Real>(len: usize, what: &str) -> Result<Vec<F>> {
    let mut v = reserve::<F>(len, what)?;
    if std::mem::size_of::<F>() * len < SHARED_FILL_MIN || crate::parallel::num_threads() <= 1 {
        drop(v);
        let v = vec![F::ZERO; len];
        huge_pages(&v);
        return Ok(v);
    }
    huge_pages(v.spare_capacity_mut());
    let spare = crate::shared::SharedMut::new(&mut v.spare_capacity_mut()[..len]);
    crate::parallel::all_pieces(len, |lo, hi| {
        // SAFETY: the pieces of `0..len` are disjoint.
        let part = unsafe { spare.piece(lo, hi - lo) };
        part.fill(std::mem::MaybeUninit::new(F::ZERO));
        true
    });
    // SAFETY: every element of `0..len` was written just above.
    unsafe { v.set_len(len) };
    Ok(v)
}

/// Bytes from which [`zeros`] fills a buffer on every thread.
const SHARED_FILL_MIN: usize = 1 << 20;

/// Bytes from which a buffer asks for huge pages.
const HUGE_MIN: usize = 4 << 20;

/// Ask the kernel to back the 2 MiB-aligned interior of a large buffer with
/// huge pages (Linux's transparent huge pages in `madvise` mode), before it is
/// first written: the buffers of a sequence call (tens of MiB) then fault in
/// 2 MiB at a time instead of 4 KiB, which took about a tenth of an LSTM
/// layer's forward in page faults. Only advice: without it, or where the
/// kernel declines, nothing changes.
fn huge_pages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = std::mem::size_of_val(v);
        if bytes < HUGE_MIN {
            return;
        }
        let start = v.as_ptr() as usize;
        let (first, end) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
        if end > first {
            // SAFETY: [first, end) lies inside `v`'s allocation, and
            // MADV_HUGEPAGE changes no contents, only how pages are backed.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (v, HUGE_MIN);
}

/// `len` copies of `value`, or an error when memory runs out.
pub fn filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = reserve(len, what)?;
    v.resize(len, value);
    Ok(v)
}

/// An empty vector with room for `len` elements, or an error when memory runs out.
pub fn with_capacity<T>(len: usize, what: &str) -> Result<Vec<T>> {
    reserve(len, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_or_error() {
        assert!(zeros::<f32>(1000, "x").unwrap().iter().all(|&v| v == 0.0));
        assert!(zeros::<f64>(0, "x").unwrap().is_empty());
        assert!(matches!(
            zeros::<f64>(usize::MAX / 4, "gates"),
            Err(RnnError::OutOfMemory { what, .. }) if what == "gates"
        ));
        assert!(matches!(
            filled(usize::MAX / 2, 0u32, "ids"),
            Err(RnnError::OutOfMemory { what, .. }) if what == "ids"
        ));
        assert_eq!(filled(3, 7u8, "x").unwrap(), vec![7, 7, 7]);
        assert!(with_capacity::<u64>(usize::MAX / 4, "rows").is_err());
    }

    #[test]
    fn products_are_checked() {
        assert_eq!(checked_len("x", &[3, 4, 5], 8).unwrap(), 60);
        assert_eq!(checked_len("x", &[], 8).unwrap(), 1);
        assert_eq!(checked_len("x", &[0, usize::MAX], 8).unwrap(), 0);
        let err = checked_len("length * N", &[2, 1 << 63], 8).unwrap_err();
        assert!(err.to_string().contains("length * N"), "{err}");
        assert!(checked_len("x", &[1 << 61], 8).is_err()); // fits in usize, not in bytes
    }
}
