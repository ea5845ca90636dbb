//! Handing disjoint parts of one buffer to several threads.
//!
//! A batch shard owns rows `b0..b1` of every step of a `(T, N, ...)` buffer:
//! `T` separate runs, interleaved with other shards' runs, which `split_at_mut`
//! cannot express. [`SharedMut`] lends out such runs; the shards' row ranges
//! are disjoint, which is what makes it sound.

use std::marker::PhantomData;

/// A mutable slice that several threads may carve disjoint pieces from.
pub struct SharedMut<'a, F> {
    ptr: *mut F,
    len: usize,
    _borrow: PhantomData<&'a mut [F]>,
}

// SAFETY: it only hands out `&mut [F]` to disjoint ranges (the caller's
// obligation in `piece`), which is as thread-safe as `split_at_mut`.
unsafe impl<F: Send> Send for SharedMut<'_, F> {}
// SAFETY: as above; shared access only creates disjoint exclusive pieces.
unsafe impl<F: Send> Sync for SharedMut<'_, F> {}

impl<'a, F> SharedMut<'a, F> {
    pub fn new(slice: &'a mut [F]) -> Self {
        Self {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _borrow: PhantomData,
        }
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements `start .. start + len`.
    ///
    /// # Safety
    /// No two pieces alive at the same time may overlap.
    ///
    /// # Panics
    /// If the range reaches past the end of the buffer.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn piece(&self, start: usize, len: usize) -> &'a mut [F] {
        assert!(
            start <= self.len && len <= self.len - start,
            "piece {start}+{len} of {}",
            self.len
        );
        // SAFETY: in bounds (asserted); exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}
