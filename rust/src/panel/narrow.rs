//! `dst (n, M) (+)= x (n, K) @ W^T` for a narrow batch (`n` up to a few rows),
//! over `W (M, K)` packed once into panels of `P` output columns.
//!
//! A general GEMM pays a set-up per call that dominates a product with one or
//! two rows, such as the recurrent product of each step of a few sequences.
//! Here each panel (contiguous) is read once per group of up to six rows with
//! the accumulators in registers. Every `(row, panel)` pair is computed by one
//! call in a fixed order, so how panels are shared among threads never changes
//! a result.

use crate::error::Result;
use crate::parallel;
use crate::real::Real;
use crate::shared::SharedMut;
use crate::simd::Level;

use super::{accumulate_cols, dispatch, row_groups, width, Layout, Rows};

/// `W (M, K)` as panels `(ceil(M / P), K, P)`.
pub struct Narrow<R> {
    layout: Layout,
    k: usize,
    panels: Vec<R>,
}

/// Features per pass over a panel: a `(KC, P)` slice of it (128 KiB of `f32`)
/// stays in L2 while the pass sweeps every row group of a tile.
const KC: usize = 512;

/// Rows per unit of work of a large product: units are `(tile, block)` pairs.
const ROW_TILE: usize = 256;

/// One call's arguments. Row `r`, feature `k` of the product's left operand
/// is `x` at `(r - r_shift, k - k_shift)` (a copied tile has shifts).
struct Task<'a, R> {
    w: &'a Narrow<R>,
    x: Rows<'a, R>,
    dst: &'a SharedMut<'a, R>,
    accumulate: bool,
    r_shift: usize,
    k_shift: usize,
}

impl<R: Real> Narrow<R> {
    /// Pack `w (m, k)` row-major.
    pub fn new(w: &[R], m: usize, k: usize) -> Result<Self> {
        assert_eq!(w.len(), m * k, "Narrow::new: w must be (m, k)");
        Self::strided(w, m, k, k)
    }

    /// Pack `w (m, k)` whose rows are `ld` elements apart.
    pub fn strided(w: &[R], m: usize, k: usize, ld: usize) -> Result<Self> {
        let layout = Layout::new::<R>(1, m);
        let mut panels = crate::buffer::zeros::<R>(layout.panel_len(k), "packed weights")?;
        layout.pack_strided_into(&mut panels, w, k, ld);
        Ok(Self { layout, k, panels })
    }

    /// The same product from `wt = W^T (k, m)` row-major (a cheaper packing).
    pub fn from_transposed(wt: &[R], k: usize, m: usize) -> Result<Self> {
        assert_eq!(
            wt.len(),
            m * k,
            "Narrow::from_transposed: wt must be (k, m)"
        );
        Self::from_transposed_strided(wt, k, m, m)
    }

    /// [`from_transposed`](Self::from_transposed) with rows of `wt` `ld` apart.
    pub fn from_transposed_strided(wt: &[R], k: usize, m: usize, ld: usize) -> Result<Self> {
        let layout = Layout::new::<R>(1, m);
        let mut panels = crate::buffer::zeros::<R>(layout.panel_len(k), "packed weights")?;
        layout.pack_transposed_into(&mut panels, wt, k, ld);
        Ok(Self { layout, k, panels })
    }

    /// Bytes of the panels.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(self.panels.as_slice())
    }

    /// Output columns `M`.
    pub fn cols(&self) -> usize {
        self.layout.units
    }

    /// `dst (n, M) = x (n, K) @ W^T`, or `+=` with `accumulate`. With
    /// `parallel`, the panels are shared among the pool's threads.
    pub fn mul(
        &self,
        level: Level,
        dst: &mut [R],
        x: &[R],
        n: usize,
        accumulate: bool,
        parallel: bool,
    ) {
        assert!(x.len() >= n * self.k, "Narrow::mul: x too short");
        let x = Rows {
            data: x,
            rs: self.k,
            cs: 1,
        };
        self.mul_rows(level, dst, x, n, accumulate, parallel);
    }

    /// [`mul`](Self::mul) with `x` any strided `(n, K)` matrix. The work is cut
    /// into `(tile of rows, block)` units, each computed by one call whatever
    /// the split among threads, so the result does not depend on the thread
    /// count; nor does a row's result depend on the other rows.
    ///
    /// An `x` whose rows are not contiguous (a transposed view: the weight
    /// gradients' `dg^T`) is first copied tile by tile, `KC` features at a
    /// time, into rows that are; read in place, each step of the sums would
    /// touch a new cache line and page. The copy changes no sum's order.
    pub fn mul_rows(
        &self,
        level: Level,
        dst: &mut [R],
        x: Rows<'_, R>,
        n: usize,
        accumulate: bool,
        parallel: bool,
    ) {
        let (m, k) = (self.cols(), self.k);
        assert!(dst.len() >= n * m, "Narrow::mul: dst too short");
        if n == 0 || m == 0 {
            return;
        }
        let blocks = self.layout.blocks;
        let tiles = n.div_ceil(ROW_TILE);
        let shared = SharedMut::new(&mut dst[..n * m]);
        let task = Task {
            w: self,
            x,
            dst: &shared,
            accumulate,
            r_shift: 0,
            k_shift: 0,
        };
        let work = if parallel { n * m * k } else { 0 };
        if x.cs == 1 || k == 0 {
            // Block-major units: a thread's range reuses each panel over its tiles.
            parallel::for_block_ranges(blocks * tiles, work, |u0, u1| {
                for u in u0..u1 {
                    let (b, tile) = (u / tiles, u % tiles);
                    let r0 = tile * ROW_TILE;
                    run(level, &task, b, r0, ROW_TILE.min(n - r0), 0, k);
                }
            });
            return;
        }
        parallel::for_block_ranges(tiles, work, |t0, t1| {
            let mut buf = vec![R::ZERO; ROW_TILE.min(n) * KC.min(k)];
            for tile in t0..t1 {
                let r0 = tile * ROW_TILE;
                let rows = ROW_TILE.min(n - r0);
                for k0 in (0..k).step_by(KC) {
                    let kl = KC.min(k - k0);
                    copy_rows(&mut buf, x, r0, rows, k0, kl);
                    let local = Task {
                        x: Rows {
                            data: &buf,
                            rs: kl,
                            cs: 1,
                        },
                        r_shift: r0,
                        k_shift: k0,
                        ..task
                    };
                    for b in 0..blocks {
                        run(level, &local, b, r0, rows, k0, k0 + kl);
                    }
                }
            }
        });
    }
}

/// `buf (rows, kl) = x[r0.., k0..]`, row-major: 16 x 16 tiles when `x` is a
/// transposed view (`rs == 1`), element by element otherwise.
fn copy_rows<R: Real>(buf: &mut [R], x: Rows<'_, R>, r0: usize, rows: usize, k0: usize, kl: usize) {
    if x.rs == 1 {
        // x (r, k) at k * cs + r: the rows of the stored matrix are our features.
        super::transposed_into(&x.data[k0 * x.cs + r0..], x.cs, kl, rows, buf);
        return;
    }
    for r in 0..rows {
        for kk in 0..kl {
            buf[r * kl + kk] = x.data[(r0 + r) * x.rs + (k0 + kk) * x.cs];
        }
    }
}

/// Rows `r0..r0 + rows` of block `b`, features `k_lo..k_hi`.
#[allow(clippy::too_many_arguments)]
fn run<R: Real>(
    level: Level,
    t: &Task<'_, R>,
    b: usize,
    r0: usize,
    rows: usize,
    k_lo: usize,
    k_hi: usize,
) {
    let piece = (b, r0, rows, k_lo, k_hi);
    dispatch!(
        level,
        avx512 => body_avx512(t, piece),
        avx2 => body_avx2(t, piece),
        scalar => body::<R, 1, 1, false>(t, piece)
    )
}

/// `(block, first row, rows, first feature, end feature)`.
type Piece = (usize, usize, usize, usize, usize);

/// Six rows of four 512-bit vectors (a whole panel row): 24 of the 32
/// registers hold sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
unsafe fn body_avx512<R: Real>(t: &Task<'_, R>, piece: Piece) {
    body::<R, 6, 1, true>(t, piece)
}

/// Six rows of two 256-bit vectors (a quarter of a panel row per pass): 12 of
/// the 16 registers hold sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body_avx2<R: Real>(t: &Task<'_, R>, piece: Piece) {
    body::<R, 6, 4, true>(t, piece)
}

/// `SPLIT` passes of `P / SPLIT` columns over each panel.
#[inline(always)]
fn body<R: Real, const MAXR: usize, const SPLIT: usize, const FUSED: bool>(
    t: &Task<'_, R>,
    piece: Piece,
) {
    match (width::<R>(), SPLIT) {
        (64, 1) => block::<R, 64, 64, MAXR, FUSED>(t, piece),
        (64, _) => block::<R, 64, 16, MAXR, FUSED>(t, piece),
        (_, 1) => block::<R, 32, 32, MAXR, FUSED>(t, piece),
        _ => block::<R, 32, 8, MAXR, FUSED>(t, piece),
    }
}

/// A [`Piece`]: `KC` features at a time, each slice of the panel swept over
/// all the rows (the sums are stored and reloaded between slices, which
/// leaves every sum's order unchanged).
#[inline(always)]
fn block<R: Real, const P: usize, const Q: usize, const MAXR: usize, const FUSED: bool>(
    t: &Task<'_, R>,
    (b, r0, rows, k_lo, k_hi): Piece,
) {
    let mut k0 = k_lo;
    loop {
        let kl = KC.min(k_hi - k0);
        row_groups!(rows, MAXR, |NR, g0| group::<R, P, Q, NR, FUSED>(
            t,
            b,
            r0 + g0,
            k0,
            kl
        ));
        k0 += kl;
        if k0 >= k_hi {
            break;
        }
    }
}

/// Rows `r0..r0 + NR` of block `b` over features `k0..k0 + kl`, in passes of
/// `Q` columns; the columns past the block's last unit are zero in the panel
/// and skipped.
#[inline(always)]
fn group<R: Real, const P: usize, const Q: usize, const NR: usize, const FUSED: bool>(
    t: &Task<'_, R>,
    b: usize,
    r0: usize,
    k0: usize,
    kl: usize,
) {
    if NR == 1 && Q != P {
        // One row streams the panel (as in `accumulate`): one pass.
        return group::<R, P, P, NR, FUSED>(t, b, r0, k0, kl);
    }
    let accumulate = t.accumulate || k0 > 0;
    let (xr, xk) = (r0 - t.r_shift, k0 - t.k_shift);
    let (k, m) = (t.w.k, t.w.cols());
    let (c0, count) = t.w.layout.block_units(b);
    // SAFETY: each (row, block) piece is touched by this call only.
    let mut outs: [&mut [R]; NR] =
        std::array::from_fn(|r| unsafe { t.dst.piece((r0 + r) * m + c0, count) });
    let panel = &t.w.panels[(b * k + k0) * P..];
    for q0 in (0..count).step_by(Q) {
        let cols = Q.min(count - q0);
        let mut acc = [[R::ZERO; Q]; NR];
        // Whole passes move fixed-size arrays (register stores, not a memcpy call).
        if accumulate {
            for (a, out) in acc.iter_mut().zip(&outs) {
                match <&[R; Q]>::try_from(&out[q0..q0 + cols]) {
                    Ok(full) => *a = *full,
                    Err(_) => a[..cols].copy_from_slice(&out[q0..q0 + cols]),
                }
            }
        }
        accumulate_cols::<R, P, Q, NR, FUSED>(panel, q0, t.x, xr, xk, kl, &mut acc);
        for (a, out) in acc.iter().zip(outs.iter_mut()) {
            match <&mut [R; Q]>::try_from(&mut out[q0..q0 + cols]) {
                Ok(full) => *full = *a,
                Err(_) => out[q0..q0 + cols].copy_from_slice(&a[..cols]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd;

    fn product(w: &[f64], x: &[f64], init: &[f64], n: usize, m: usize, k: usize) -> Vec<f64> {
        (0..n * m)
            .map(|i| {
                let (r, c) = (i / m, i % m);
                init[i] + (0..k).map(|j| x[r * k + j] * w[c * k + j]).sum::<f64>()
            })
            .collect()
    }

    #[test]
    fn matches_the_plain_product_at_every_level_and_thread_count() {
        for &(n, m, k) in &[
            (1, 1, 1),
            (1, 2048, 512),
            (3, 70, 9),
            (7, 33, 40),
            (13, 5, 3),
        ] {
            let w: Vec<f64> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f64 - 6.0) * 0.1)
                .collect();
            let x: Vec<f64> = (0..n * k)
                .map(|i| ((i * 5 % 11) as f64 - 5.0) * 0.3)
                .collect();
            let init: Vec<f64> = (0..n * m).map(|i| i as f64 * 0.01).collect();
            let packed = Narrow::new(&w, m, k).unwrap();
            let wt: Vec<f64> = (0..k * m).map(|i| w[(i % m) * k + i / m]).collect();
            assert_eq!(
                Narrow::from_transposed(&wt, k, m).unwrap().panels,
                packed.panels
            );
            let zero = vec![0.0; n * m];
            let mut results = Vec::new();
            for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
                for threads in [1, 2, 3] {
                    parallel::set_num_threads(Some(threads));
                    let mut dst = init.clone();
                    packed.mul(level, &mut dst, &x, n, true, true);
                    let want = product(&w, &x, &init, n, m, k);
                    let err = dst.iter().zip(&want).map(|(a, b)| (a - b).abs());
                    assert!(err.fold(0.0, f64::max) < 1e-10, "{n} {m} {k} {level:?}");
                    let mut fresh = vec![f64::NAN; n * m];
                    packed.mul(level, &mut fresh, &x, n, false, threads > 1);
                    let want = product(&w, &x, &zero, n, m, k);
                    let err = fresh.iter().zip(&want).map(|(a, b)| (a - b).abs());
                    assert!(err.fold(0.0, f64::max) < 1e-10);
                    if simd::effective(level) == level {
                        results.push((level, dst));
                    }
                }
            }
            parallel::set_num_threads(None);
            for pair in results.windows(2) {
                if pair[0].0 == pair[1].0 {
                    assert_eq!(pair[0].1, pair[1].1, "bitwise across thread counts");
                }
            }
        }
    }
}
