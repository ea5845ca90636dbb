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

use super::{accumulate, dispatch, row_groups, width, Layout};

/// `W (M, K)` as panels `(ceil(M / P), K, P)`.
pub struct Narrow<R> {
    layout: Layout,
    k: usize,
    panels: Vec<R>,
}

/// One call's arguments.
struct Task<'a, R> {
    w: &'a Narrow<R>,
    x: &'a [R],
    dst: &'a SharedMut<'a, R>,
    rows: usize,
    accumulate: bool,
}

impl<R: Real> Narrow<R> {
    /// Pack `w (m, k)` row-major.
    pub fn new(w: &[R], m: usize, k: usize) -> Result<Self> {
        assert_eq!(w.len(), m * k, "Narrow::new: w must be (m, k)");
        let layout = Layout::new::<R>(1, m);
        let mut panels = crate::buffer::zeros::<R>(layout.panel_len(k), "packed weights")?;
        layout.pack_into(&mut panels, w, k);
        Ok(Self { layout, k, panels })
    }

    /// The same product from `wt = W^T (k, m)` row-major (a cheaper packing).
    pub fn from_transposed(wt: &[R], k: usize, m: usize) -> Result<Self> {
        assert_eq!(
            wt.len(),
            m * k,
            "Narrow::from_transposed: wt must be (k, m)"
        );
        let layout = Layout::new::<R>(1, m);
        let mut panels = crate::buffer::zeros::<R>(layout.panel_len(k), "packed weights")?;
        layout.pack_transposed_into(&mut panels, wt, k);
        Ok(Self { layout, k, panels })
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
        let (m, k) = (self.cols(), self.k);
        assert!(
            dst.len() >= n * m && x.len() >= n * k,
            "Narrow::mul: buffers too short"
        );
        let blocks = self.layout.blocks;
        let shared = SharedMut::new(&mut dst[..n * m]);
        let task = Task {
            w: self,
            x,
            dst: &shared,
            rows: n,
            accumulate,
        };
        let work = if parallel { n * m * k } else { 0 };
        parallel::for_block_ranges(blocks, work, |b0, b1| run(level, &task, b0, b1));
    }
}

fn run<R: Real>(level: Level, t: &Task<'_, R>, b0: usize, b1: usize) {
    dispatch!(level, body, body_avx512, body_avx2, (t, b0, b1))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
unsafe fn body_avx512<R: Real>(t: &Task<'_, R>, b0: usize, b1: usize) {
    body::<R, 6, true>(t, b0, b1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body_avx2<R: Real>(t: &Task<'_, R>, b0: usize, b1: usize) {
    body::<R, 2, true>(t, b0, b1)
}

#[inline(always)]
fn body<R: Real, const MAXR: usize, const FUSED: bool>(t: &Task<'_, R>, b0: usize, b1: usize) {
    if width::<R>() == 64 {
        blocks::<R, 64, MAXR, FUSED>(t, b0, b1)
    } else {
        blocks::<R, 32, MAXR, FUSED>(t, b0, b1)
    }
}

#[inline(always)]
fn blocks<R: Real, const P: usize, const MAXR: usize, const FUSED: bool>(
    t: &Task<'_, R>,
    b0: usize,
    b1: usize,
) {
    for b in b0..b1 {
        row_groups!(t.rows, MAXR, |NR, r0| group::<R, P, NR, FUSED>(t, b, r0));
    }
}

#[inline(always)]
fn group<R: Real, const P: usize, const NR: usize, const FUSED: bool>(
    t: &Task<'_, R>,
    b: usize,
    r0: usize,
) {
    let (k, m) = (t.w.k, t.w.cols());
    let (c0, count) = t.w.layout.block_units(b);
    let mut acc = [[R::ZERO; P]; NR];
    // SAFETY: each (row, block) piece is touched by this call only.
    let outs: [&mut [R]; NR] =
        std::array::from_fn(|r| unsafe { t.dst.piece((r0 + r) * m + c0, count) });
    if t.accumulate {
        for (a, out) in acc.iter_mut().zip(&outs) {
            a[..count].copy_from_slice(out);
        }
    }
    let xs: [&[R]; NR] = std::array::from_fn(|r| &t.x[(r0 + r) * k..][..k]);
    accumulate::<R, P, NR, FUSED>(&t.w.panels[b * k * P..], xs, &mut acc);
    for (a, out) in acc.iter().zip(outs) {
        out.copy_from_slice(&a[..count]);
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
