//! Matrix products through the `gemm` crate, behind bounds-checked strided views.
//!
//! All `unsafe` that touches GEMM lives in this file: the views prove at
//! construction that every element they address lies inside their slice, so the
//! raw-pointer call below cannot read or write out of bounds.

use crate::real::Real;

/// A read-only `(rows, cols)` matrix inside a slice, element `(i, j)` at
/// `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, F> {
    data: &'a [F],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A writable `(rows, cols)` matrix inside a slice (same addressing as [`MatRef`]).
#[derive(Debug)]
pub struct MatMut<'a, F> {
    data: &'a mut [F],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// Index one past the last element a `(rows, cols)` view with strides `(rs, cs)`
/// touches; 0 for an empty view.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

impl<'a, F> MatRef<'a, F> {
    /// Row-major `(rows, cols)` view of the start of `data`.
    ///
    /// # Panics
    /// If `data` holds fewer than `rows * cols` elements (a bug in the caller: the
    /// kernels validate every shape before they build views).
    pub fn row_major(data: &'a [F], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// Strided view; panics if it would reach past the end of `data`.
    pub fn strided(data: &'a [F], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            extent(rows, cols, rs, cs) <= data.len(),
            "matrix view ({rows}, {cols}) with strides ({rs}, {cs}) exceeds a slice of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

impl<'a, F: Real> MatMut<'a, F> {
    /// Row-major `(rows, cols)` view of the start of `data`; panics if too short.
    pub fn row_major(data: &'a mut [F], rows: usize, cols: usize) -> Self {
        assert!(
            rows * cols <= data.len(),
            "matrix ({rows}, {cols}) exceeds a slice of {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    fn fill_zero(&mut self) {
        for i in 0..self.rows {
            for j in 0..self.cols {
                self.data[i * self.rs + j * self.cs] = F::ZERO;
            }
        }
    }
}

/// `dst = a @ b`, or `dst += a @ b` when `accumulate`. Single-threaded and
/// deterministic: the same inputs give bitwise the same result.
///
/// Shapes: `dst (m, n)`, `a (m, k)`, `b (k, n)`; a mismatch panics (a bug in
/// the caller, never user input).
pub fn matmul<F: Real>(
    mut dst: MatMut<'_, F>,
    a: MatRef<'_, F>,
    b: MatRef<'_, F>,
    accumulate: bool,
) {
    let (m, n, k) = (dst.rows, dst.cols, a.cols);
    assert!(
        a.rows == m && b.rows == k && b.cols == n,
        "matmul shapes: dst ({m}, {n}) = a ({}, {}) @ b ({}, {})",
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill_zero();
        }
        return;
    }
    // SAFETY: the three views were bounds-checked when built (`extent` of each lies
    // inside its slice), the shapes agree (asserted above), `dst` is borrowed
    // mutably so it cannot alias `a` or `b`, and `F` is f32 or f64, the types
    // `gemm` dispatches on. Strides fit in isize because they index real slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            F::ONE,
            F::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn ramp(len: usize, seed: f64) -> Vec<f64> {
        (0..len).map(|i| ((i as f64 + seed) * 0.37).sin()).collect()
    }

    #[test]
    fn matches_naive_product_for_awkward_sizes() {
        for &(m, n, k) in &[(1, 1, 1), (7, 9, 33), (8, 8, 8), (33, 1, 7), (3, 17, 0)] {
            let a = ramp(m * k, 1.0);
            let b = ramp(k * n, 2.0);
            let mut c = vec![5.0; m * n];
            matmul(
                MatMut::row_major(&mut c, m, n),
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                false,
            );
            let want = naive(m, n, k, &a, &b);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-12, "({m},{n},{k}): {x} vs {y}");
            }
        }
    }

    #[test]
    fn transposed_views_and_accumulation() {
        let (m, n, k) = (5, 4, 3);
        let a = ramp(m * k, 0.5);
        let bt = ramp(n * k, 1.5); // b stored transposed: (n, k)
        let mut b = vec![0.0; k * n];
        for p in 0..k {
            for j in 0..n {
                b[p * n + j] = bt[j * k + p];
            }
        }
        let mut c = vec![1.0; m * n];
        matmul(
            MatMut::row_major(&mut c, m, n),
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&bt, n, k).t(),
            true,
        );
        let want = naive(m, n, k, &a, &b);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - (y + 1.0)).abs() < 1e-12);
        }
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn view_past_the_end_is_refused() {
        let a = [0.0f32; 5];
        let _ = MatRef::row_major(&a, 2, 3);
    }
}
