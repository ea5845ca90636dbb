//! Layer normalisation of one row of units (Ba et al. 2016):
//!
//! ```text
//! mean = sum(v) / n    var = sum((v - mean)^2) / n    rstd = 1 / sqrt(var + EPS)
//! v^ = (v - mean) * rstd           LN(v) = gain * v^ + shift
//! ```
//!
//! and its backward. Every sum runs over the row in order, so a row's result
//! does not depend on how the rows are shared among threads.

use crate::real::Real;
use crate::simd::multiversion;

/// Added to the variance (PyTorch's `LayerNorm` default).
pub const EPS: f64 = 1e-5;

/// Write `v^` of `v (n,)` into `hat (n,)`; returns `rstd`.
#[inline(always)]
pub fn normalize_row<F: Real>(v: &[F], hat: &mut [F]) -> F {
    let n = v.len();
    let inv_n = F::ONE / F::from_f64(n as f64);
    let mut sum = F::ZERO;
    for &x in v {
        sum += x;
    }
    let mean = sum * inv_n;
    let mut sq = F::ZERO;
    for &x in v {
        let d = x - mean;
        sq += d * d;
    }
    let rstd = F::ONE / (sq * inv_n + F::from_f64(EPS)).sqrt();
    for (o, &x) in hat[..n].iter_mut().zip(v) {
        *o = (x - mean) * rstd;
    }
    rstd
}

/// Backward of [`normalize_row`], in place: `g (n,)` holds the gradient of
/// `v^` (the gradient of `LN(v)` times `gain`) and receives the gradient of
/// `v`, `rstd * (g - mean(g) - v^ * mean(g * v^))`.
#[inline(always)]
pub fn normalize_back_row<F: Real>(g: &mut [F], hat: &[F], rstd: F) {
    let n = g.len();
    let inv_n = F::ONE / F::from_f64(n as f64);
    let (mut sg, mut sgx) = (F::ZERO, F::ZERO);
    for (&gv, &xv) in g.iter().zip(&hat[..n]) {
        sg += gv;
        sgx += gv * xv;
    }
    let (mg, mgx) = (sg * inv_n, sgx * inv_n);
    for (gv, &xv) in g.iter_mut().zip(&hat[..n]) {
        *gv = rstd * (*gv - mg - xv * mgx);
    }
}

multiversion! {
    /// Normalise every row of `v (rows, width)` in place into `hat` and
    /// `rstd (rows,)`, then overwrite `v` with `gain * v^ + shift` (`gain`,
    /// `shift` `(width,)`).
    pub fn normalize_rows<F: Real>(
        width: usize,
        v: &mut [F],
        hat: &mut [F],
        rstd: &mut [F],
        gain: &[F],
        shift: &[F],
    ) {
        let rows = v
            .chunks_exact_mut(width)
            .zip(hat.chunks_exact_mut(width))
            .zip(rstd.iter_mut());
        for ((row, hr), r) in rows {
            *r = normalize_row(row, hr);
            for ((o, &x), (&a, &b)) in row.iter_mut().zip(hr.iter()).zip(gain.iter().zip(shift)) {
                *o = a * x + b;
            }
        }
    }
}

multiversion! {
    /// Normalise every row of `v (rows, width)` into `hat`, `rstd (rows,)` and
    /// add `gain * v^ + shift` to the same row of `out (rows, width)`.
    pub fn add_normalized<F: Real>(
        width: usize,
        v: &[F],
        hat: &mut [F],
        rstd: &mut [F],
        gain: &[F],
        shift: &[F],
        out: &mut [F],
    ) {
        let rows = v
            .chunks_exact(width)
            .zip(hat.chunks_exact_mut(width))
            .zip(rstd.iter_mut())
            .zip(out.chunks_exact_mut(width));
        for (((row, hr), r), o) in rows {
            *r = normalize_row(row, hr);
            for ((o, &x), (&a, &b)) in o.iter_mut().zip(hr.iter()).zip(gain.iter().zip(shift)) {
                *o += a * x + b;
            }
        }
    }
}

multiversion! {
    /// Backward of [`normalize_rows`] for every row: `d (rows, width)` the
    /// gradient of `LN(v)`, written over with the gradient of `v`.
    pub fn normalize_back_rows<F: Real>(
        width: usize,
        d: &[F],
        hat: &[F],
        rstd: &[F],
        gain: &[F],
        dv: &mut [F],
    ) {
        let rows = d
            .chunks_exact(width)
            .zip(hat.chunks_exact(width))
            .zip(rstd.iter())
            .zip(dv.chunks_exact_mut(width));
        for (((dr, hr), &r), o) in rows {
            for ((g, &x), &a) in o.iter_mut().zip(dr).zip(gain) {
                *g = x * a;
            }
            normalize_back_row(o, hr, r);
        }
    }
}

/// Add to `d_gain (width,)` and `d_shift (width,)` the gradients of the gain
/// and shift over every row of `d (rows, width)` (the gradient of `LN(v)`)
/// and `hat (rows, width)`, in row order.
pub fn param_grads<F: Real>(width: usize, d: &[F], hat: &[F], d_gain: &mut [F], d_shift: &mut [F]) {
    for (dr, hr) in d.chunks_exact(width).zip(hat.chunks_exact(width)) {
        for j in 0..width {
            d_gain[j] += dr[j] * hr[j];
            d_shift[j] += dr[j];
        }
    }
}
