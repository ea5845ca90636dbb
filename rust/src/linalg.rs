//! Matrix products through the `gemm` crate, behind bounds-checked strided views.
//!
//! All `unsafe` that touches GEMM lives in this file: the views prove at
//! construction that every element they address lies inside their slice, so the
//! raw-pointer call below cannot read or write out of bounds.

use crate::panel::cache::{self, Form};
use crate::panel::narrow::Narrow;
use crate::panel::Rows;
use crate::real::Real;
use crate::simd::{self, Level};

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

    /// Rows `r0 .. r0 + len` as a view.
    pub fn row_block(self, r0: usize, len: usize) -> Self {
        assert!(
            r0 + len <= self.rows,
            "row block {r0}+{len} of {}",
            self.rows
        );
        let start = (r0 * self.rs).min(self.data.len());
        Self::strided(&self.data[start..], len, self.cols, self.rs, self.cs)
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

/// Height of the row tiles the large products are cut into; fixed, so the
/// result does not depend on how many threads share the tiles.
pub const TILE: usize = 256;

/// Multiply-adds below which a tiled product is not worth handing to the pool.
const SMALL_PRODUCT: usize = 1 << 20;

/// `dst (m, n) = a (m, k) @ b (k, n)` (or `+=`), `dst` row-major, computed in
/// tiles of [`TILE`] rows, in parallel on the kernel thread pool.
pub fn matmul_tiled<F: Real>(dst: &mut [F], a: MatRef<'_, F>, b: MatRef<'_, F>, accumulate: bool) {
    tiled(dst, a, b, accumulate, false);
}

/// [`matmul_tiled`] with `b` a layer's weights (`W^T`, the input
/// projections): their panels come from the cache of packed weights
/// ([`crate::panel::cache`]) when the weights have not changed since a call
/// packed them.
pub fn matmul_weights<F: Real>(
    dst: &mut [F],
    a: MatRef<'_, F>,
    w_t: MatRef<'_, F>,
    accumulate: bool,
) {
    tiled(dst, a, w_t, accumulate, true);
}

fn tiled<F: Real>(
    dst: &mut [F],
    a: MatRef<'_, F>,
    b: MatRef<'_, F>,
    accumulate: bool,
    weights: bool,
) {
    let (m, n) = (a.rows, b.cols);
    assert!(dst.len() >= m * n, "matmul_tiled: dst too short");
    assert_eq!(a.cols, b.rows, "matmul_tiled: a (m, k) @ b (k, n)");
    if n == 0 {
        return;
    }
    if panel_product(simd::best_level(), dst, a, b, accumulate, weights) {
        return;
    }
    let tile_product = |(i, tile): (usize, &mut [F])| {
        let rows = tile.len() / n;
        matmul(
            MatMut::row_major(tile, rows, n),
            a.row_block(i * TILE, rows),
            b,
            accumulate,
        );
    };
    let tiles = dst[..m * n].chunks_mut(TILE * n).enumerate();
    // Small products stay on the calling thread: the same tiles, so the same result.
    if m * n * a.cols < SMALL_PRODUCT {
        tiles.for_each(tile_product);
    } else {
        crate::parallel::for_each(tiles.collect(), tile_product);
    }
}

/// Rows of `a` from which [`matmul_tiled`] packs `b` into panels: below, the
/// packing (a read and a write of all of `b`) costs more than it saves.
pub const PANEL_MIN_ROWS: usize = 8;

/// [`matmul_tiled`] over panels ([`Narrow`]): `b` packed once, then register
/// tiles of six rows by 64 columns (`f32`) that reach 100-110 GFLOP/s per core
/// at our shapes where the `gemm` crate reaches 75 (AVX-512, same machine).
/// False, and nothing done, at the scalar level, for few rows, for other
/// layouts, or when the packed copy cannot be allocated.
fn panel_product<F: Real>(
    level: Level,
    dst: &mut [F],
    a: MatRef<'_, F>,
    b: MatRef<'_, F>,
    accumulate: bool,
    cached: bool,
) -> bool {
    let (k, n) = (b.rows, b.cols);
    if level == Level::Scalar || a.rows < PANEL_MIN_ROWS {
        return false;
    }
    // `a` with contiguous rows times `b = W^T` (the input projections), and a
    // transposed `a` (the weight gradients `dg^T @ x`), where the panels win.
    // The GEMM is as fast per thread on `a @ W` with `W` row-major (the input
    // gradients), but cuts the work into tiles of rows only: a product of one
    // tile (`T * N <= TILE`, e.g. one sequence) would run on one thread, where
    // the panels share their columns among all of them.
    let transposed_a = a.rs == 1 && a.cs > 1;
    let one_tile = a.cs == 1 && a.rows <= TILE;
    let (form, rows, cols, ld) = if (a.cs == 1 || transposed_a) && b.rs == 1 && b.cs >= k {
        (Form::Rows, n, k, b.cs) // W (n, k) with rows cs apart
    } else if (transposed_a || one_tile) && b.cs == 1 && b.rs >= n {
        (Form::Transposed, k, n, b.rs) // b row-major
    } else {
        return false;
    };
    let pack = || match form {
        Form::Rows => Narrow::strided(b.data, rows, cols, ld),
        Form::Transposed => Narrow::from_transposed_strided(b.data, rows, cols, ld),
    };
    let packed = if cached {
        cache::packed(b.data, form, rows, cols, ld, pack)
    } else {
        pack().map(std::sync::Arc::new)
    };
    let Ok(packed) = packed else {
        return false;
    };
    let rows = Rows {
        data: a.data,
        rs: a.rs,
        cs: a.cs,
    };
    packed.mul_rows(level, dst, rows, a.rows, accumulate, true);
    true
}

/// Rows of a packed matrix that one GEMM call of the per-step product covers
/// when the batch is wider than [`NARROW`]: 128 rows of a 512..1024-long row
/// span 256..512 KiB of `f32`, which stay in L2 while the call sweeps the batch.
pub const ROW_BLOCK: usize = 128;

/// Batch widths up to this are matrix-vector products: memory-bound, where the
/// cost of a GEMM call matters more than cache blocking, so they use blocks of
/// [`NARROW_ROW_BLOCK`] rows (fewer calls per step).
pub const NARROW: usize = 4;
pub const NARROW_ROW_BLOCK: usize = 512;

/// Block height of the per-step product for a batch of `n`: a function of the
/// problem only, so results never depend on how blocks are scheduled.
pub fn row_block(n: usize) -> usize {
    if n <= NARROW {
        NARROW_ROW_BLOCK
    } else {
        ROW_BLOCK
    }
}

/// A matrix `M (rows, cols)` as the per-step products read it: either copied
/// once, column-major with a padded leading dimension (the layout the GEMM
/// microkernels read in place, with no packing per call; the padding keeps the
/// column stride off powers of two, which would make the columns of a block
/// collide in the same cache sets), or borrowed as it is (for sequences too
/// short to repay the copy).
#[derive(Debug)]
pub struct Packed<'a, F> {
    store: Store<'a, F>,
    rows: usize,
    cols: usize,
}

#[derive(Debug)]
enum Store<'a, F> {
    Owned { data: Vec<F>, ld: usize },
    View(MatRef<'a, F>),
}

/// Sequences shorter than this use [`Packed::view`]: the copy costs about as
/// much as one step's product.
pub const PACK_MIN_STEPS: usize = 4;

impl<'a, F: Real> Packed<'a, F> {
    /// Copy `m` (any strides) into the packed layout, in cache-sized tiles.
    pub fn pack(m: MatRef<'_, F>) -> crate::error::Result<Self> {
        const TILE: usize = 32;
        let ld = m.rows.div_ceil(16) * 16 + 16;
        let mut data = crate::buffer::zeros::<F>(ld * m.cols, "packed weights")?;
        for r0 in (0..m.rows).step_by(TILE) {
            for c0 in (0..m.cols).step_by(TILE) {
                for c in c0..(c0 + TILE).min(m.cols) {
                    for r in r0..(r0 + TILE).min(m.rows) {
                        data[c * ld + r] = m.data[r * m.rs + c * m.cs];
                    }
                }
            }
        }
        Ok(Self {
            store: Store::Owned { data, ld },
            rows: m.rows,
            cols: m.cols,
        })
    }

    /// Use `m` in place (the GEMM then packs what it needs on every call).
    pub fn view(m: MatRef<'a, F>) -> Self {
        Self {
            store: Store::View(m),
            rows: m.rows,
            cols: m.cols,
        }
    }

    /// [`pack`](Self::pack) for sequences of at least [`PACK_MIN_STEPS`]
    /// steps, else [`view`](Self::view): a rule on the problem's size only.
    pub fn for_steps(m: MatRef<'a, F>, steps: usize) -> crate::error::Result<Self> {
        if steps >= PACK_MIN_STEPS {
            Self::pack(m)
        } else {
            Ok(Self::view(m))
        }
    }

    /// Rows `r0 .. r0 + len` as a view.
    fn block(&self, r0: usize, len: usize) -> MatRef<'_, F> {
        match &self.store {
            Store::Owned { data, ld } => MatRef::strided(&data[r0..], len, self.cols, 1, *ld),
            Store::View(m) => m.row_block(r0, len),
        }
    }
}

/// `dst (+)= x @ M^T` for row-major `dst (n, m)` and `x (n, k)` and a packed
/// `M (m, k)`: the per-step recurrent product (`h_prev @ W_hh^T` forward,
/// `dgates @ W_hh` backward). Computed as `dst^T = M @ x^T` in blocks of
/// [`row_block`] rows of `M`, each block one GEMM call; with `parallel` the
/// blocks are spread over the kernel thread pool (worth it when one step's
/// product is large; each core then keeps its blocks of `M` in its own cache
/// from step to step). Each block is the same call either way, so the result
/// does not depend on `parallel` or on the number of threads.
pub fn mul_packed_t<F: Real>(
    dst: &mut [F],
    x: &[F],
    w: &Packed<'_, F>,
    n: usize,
    accumulate: bool,
    parallel: bool,
) {
    let (m, k) = (w.rows, w.cols);
    assert!(
        dst.len() >= n * m && x.len() >= n * k,
        "mul_packed_t: buffers too short"
    );
    if n == 0 || m == 0 {
        return;
    }
    if let Store::View(view) = w.store {
        // Unpacked: `dst = x @ M^T` with `M^T` as the right-hand side, which the
        // GEMM reads in place for a narrow `x`; one call, no blocks.
        matmul(
            MatMut::row_major(dst, n, m),
            MatRef::row_major(x, n, k),
            view.t(),
            accumulate,
        );
        return;
    }
    let xt = MatRef::strided(x, k, n, 1, k); // (k, n)
    let dst_ptr = SendPtr(dst.as_mut_ptr());
    let rb = row_block(n);
    let block = |b: usize| {
        let r0 = b * rb;
        let len = rb.min(m - r0);
        let lhs = w.block(r0, len);
        // SAFETY: block `b` writes elements (r, col) of dst^T with r in
        // r0..r0+len, i.e. dst[col * m + r]: inside `dst` (asserted above) and
        // disjoint from every other block's rows; `x` and `w` are only read.
        // The views were bounds-checked; `F` is f32 or f64.
        unsafe {
            gemm::gemm(
                len,
                n,
                k,
                dst_ptr.get().add(r0),
                m as isize,
                1,
                accumulate,
                lhs.data.as_ptr(),
                lhs.cs as isize,
                lhs.rs as isize,
                xt.data.as_ptr(),
                xt.cs as isize,
                xt.rs as isize,
                F::ONE,
                F::ONE,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    if parallel {
        crate::parallel::for_each_index(m.div_ceil(rb), block);
    } else {
        (0..m.div_ceil(rb)).for_each(block);
    }
}

/// A raw pointer that may cross threads; see the SAFETY note at its use.
#[derive(Clone, Copy)]
struct SendPtr<F>(*mut F);
// SAFETY: only used to write disjoint blocks of one buffer from several threads.
unsafe impl<F> Send for SendPtr<F> {}
// SAFETY: as above.
unsafe impl<F> Sync for SendPtr<F> {}

impl<F> SendPtr<F> {
    fn get(self) -> *mut F {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd;

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
    fn packed_product_matches_plain_product() {
        for &(n, m, k) in &[
            (1, 1, 1),
            (3, 130, 7),
            (5, 257, 33),
            (2, 128, 16),
            (2, 1030, 5),
            (6, 300, 3),
        ] {
            let x = ramp(n * k, 0.3);
            let w = ramp(m * k, 0.9); // (m, k) row-major
            let packed = Packed::pack(MatRef::row_major(&w, m, k)).unwrap();
            let mut got = vec![1.0; n * m];
            mul_packed_t(&mut got, &x, &packed, n, true, false);
            let mut want = vec![1.0; n * m];
            matmul(
                MatMut::row_major(&mut want, n, m),
                MatRef::row_major(&x, n, k),
                MatRef::row_major(&w, m, k).t(),
                true,
            );
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "({n},{m},{k})");
            }
            let mut par = vec![1.0; n * m];
            crate::parallel::set_num_threads(Some(3));
            mul_packed_t(&mut par, &x, &packed, n, true, true);
            crate::parallel::set_num_threads(None);
            assert_eq!(par, got);
            let viewed = Packed::view(MatRef::row_major(&w, m, k));
            let mut via_view = vec![1.0; n * m];
            mul_packed_t(&mut via_view, &x, &viewed, n, true, false);
            assert!(via_view
                .iter()
                .zip(&got)
                .all(|(a, b)| (a - b).abs() < 1e-12));
            // a transposed view packs to the transposed product
            let packed_t = Packed::pack(MatRef::row_major(&w, m, k).t()).unwrap(); // (k, m)
            let y = ramp(n * m, 0.1);
            let mut got_t = vec![0.0; n * k];
            mul_packed_t(&mut got_t, &y, &packed_t, n, false, false);
            for b in 0..n {
                for c in 0..k {
                    let want: f64 = (0..m).map(|r| y[b * m + r] * w[r * k + c]).sum();
                    assert!((got_t[b * k + c] - want).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn tiled_product_is_the_same_at_any_thread_count() {
        let (m, n, k) = (700, 9, 13);
        let a = ramp(m * k, 0.2);
        let b = ramp(k * n, 0.7);
        let mut want = vec![0.0; m * n];
        matmul(
            MatMut::row_major(&mut want, m, n),
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            false,
        );
        for threads in [1, 2, 5] {
            crate::parallel::set_num_threads(Some(threads));
            let mut got = vec![0.0; m * n];
            matmul_tiled(
                &mut got,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                false,
            );
            assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12));
        }
        crate::parallel::set_num_threads(None);
    }

    #[test]
    fn panel_products_match_the_gemm_at_every_level() {
        // Tails of the 6-row groups, the 64-column panels, the 512-feature
        // slices and the 256-row tiles; a and b transposed or strided.
        for &(m, n, k) in &[
            (8, 1, 1),
            (9, 65, 3),
            (13, 64, 512),
            (300, 70, 1030),
            (31, 130, 33),
        ] {
            let a = ramp(m * (k + 3), 0.2); // rows k + 3 apart
            let b = ramp(n * (k + 5), 0.7); // W (n, k) with rows k + 5 apart
            let init = ramp(m * n, 0.9);
            let bt = ramp(k * (n + 2), 0.4); // (k, n) with rows n + 2 apart
            let at: Vec<f64> = (0..k * (m + 1)).map(|i| (i as f64 * 0.37).sin()).collect();
            let a_t = MatRef::strided(&at, k, m, m + 1, 1).t(); // transposed, rows m + 1 apart
            let views = [
                (
                    MatRef::strided(&a, m, k, k + 3, 1),
                    MatRef::strided(&b, k, n, 1, k + 5),
                ),
                (a_t, MatRef::strided(&bt, k, n, n + 2, 1)),
                (a_t, MatRef::strided(&b, k, n, 1, k + 5)),
                (
                    MatRef::strided(&a, m, k, k + 3, 1),
                    MatRef::strided(&bt, k, n, n + 2, 1),
                ),
            ];
            for (v, (av, bv)) in views.into_iter().enumerate() {
                if v == 3 && m > TILE {
                    continue; // row-major b beyond one tile of rows: the GEMM
                }
                for accumulate in [false, true] {
                    let mut want = init.clone();
                    matmul(MatMut::row_major(&mut want, m, n), av, bv, accumulate);
                    let mut seen: Vec<Vec<f64>> = Vec::new();
                    for level in [Level::Avx2, Level::Avx512] {
                        if simd::effective(level) != level {
                            continue;
                        }
                        // Packed on the first call as weights, from the cache after.
                        for (threads, cached) in [(1, false), (2, true), (3, true), (1, true)] {
                            crate::parallel::set_num_threads(Some(threads));
                            let mut got = init.clone();
                            assert!(panel_product(level, &mut got, av, bv, accumulate, cached));
                            let err = got.iter().zip(&want).map(|(x, y)| (x - y).abs());
                            assert!(err.fold(0.0, f64::max) < 1e-9, "{m} {n} {k}");
                            seen.push(got);
                        }
                    }
                    crate::parallel::set_num_threads(None);
                    // Bitwise the same at every thread count and both SIMD levels.
                    assert!(seen.windows(2).all(|p| p[0] == p[1]), "{m} {n} {k}");
                }
            }
        }
    }

    #[test]
    fn panel_products_leave_small_and_scalar_cases_to_the_gemm() {
        let a = ramp(7 * 4, 0.1);
        let b = ramp(4 * 3, 0.3);
        let mut dst = vec![0.0; 21];
        let (av, bv) = (MatRef::row_major(&a, 7, 4), MatRef::row_major(&b, 4, 3));
        assert!(!panel_product(
            Level::Avx512,
            &mut dst,
            av,
            bv,
            false,
            false
        ));
        let a = ramp(9 * 4, 0.1);
        let av = MatRef::row_major(&a, 9, 4);
        let w = ramp(3 * 4, 0.3);
        assert!(!panel_product(
            Level::Scalar,
            &mut dst,
            av,
            MatRef::row_major(&w, 3, 4).t(),
            false,
            true
        ));
        // Row-major b with a's rows contiguous: the GEMM beyond one tile of
        // rows, the panels within one.
        let tall = ramp((TILE + 1) * 4, 0.1);
        let mut big = vec![0.0; (TILE + 1) * 3];
        let tv = MatRef::row_major(&tall, TILE + 1, 4);
        assert!(!panel_product(
            Level::Avx512,
            &mut big,
            tv,
            bv,
            false,
            false
        ));
        if simd::effective(Level::Avx512) == Level::Avx512 {
            let mut dst = vec![0.0; 27];
            assert!(panel_product(Level::Avx512, &mut dst, av, bv, false, false));
        }
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn view_past_the_end_is_refused() {
        let a = [0.0f32; 5];
        let _ = MatRef::row_major(&a, 2, 3);
    }
}
