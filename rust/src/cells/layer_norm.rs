//! Layer normalisation of one row of units (Ba et al. 2016):
//!
//! ```text
//! mean = sum(v) / n    var = sum((v - mean)^2) / n    rstd = 1 / sqrt(var + EPS)
//! v^ = (v - mean) * rstd           LN(v) = gain * v^ + shift
//! ```
//!
//! and its backward. Every sum over a row runs in 16 fixed lanes (entry `j`
//! into lane `j % 16`, the lanes then added in order), so it vectorises and
//! its result depends neither on how the rows are shared among threads nor on
//! the SIMD level.

use crate::parallel;
use crate::real::Real;
use crate::shared::SharedMut;
use crate::simd::{multiversion, Level};

/// Added to the variance (PyTorch's `LayerNorm` default).
pub const EPS: f64 = 1e-5;

const LANES: usize = 16;

/// `(sum(a), sum(a * b))` over `a`, `b (n,)` in fixed lanes (see the module).
#[inline(always)]
fn sums<F: Real>(a: &[F], b: &[F]) -> (F, F) {
    let (mut s, mut p) = ([F::ZERO; LANES], [F::ZERO; LANES]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            s[l] += x[l];
            p[l] += x[l] * y[l];
        }
    }
    for (l, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        s[l] += x;
        p[l] += x * y;
    }
    let total = |v: [F; LANES]| v.iter().fold(F::ZERO, |acc, &x| acc + x);
    (total(s), total(p))
}

/// `sum((v - mean)^2)` over `v (n,)` in fixed lanes.
#[inline(always)]
fn squares<F: Real>(v: &[F], mean: F) -> F {
    let mut s = [F::ZERO; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for x in chunks {
        for l in 0..LANES {
            let d = x[l] - mean;
            s[l] += d * d;
        }
    }
    for (l, &x) in rest.iter().enumerate() {
        let d = x - mean;
        s[l] += d * d;
    }
    s.iter().fold(F::ZERO, |acc, &x| acc + x)
}

/// Write `v^` of `v (n,)` into `hat (n,)`; returns `rstd`.
#[inline(always)]
pub fn normalize_row<F: Real>(v: &[F], hat: &mut [F]) -> F {
    let n = v.len();
    let inv_n = F::ONE / F::from_f64(n as f64);
    let (sum, _) = sums(v, v);
    let mean = sum * inv_n;
    let sq = squares(v, mean);
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
    let (sg, sgx) = sums(g, &hat[..n]);
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
fn param_grads<F: Real>(width: usize, d: &[F], hat: &[F], d_gain: &mut [F], d_shift: &mut [F]) {
    for (dr, hr) in d.chunks_exact(width).zip(hat.chunks_exact(width)) {
        for j in 0..width {
            d_gain[j] += dr[j] * hr[j];
            d_shift[j] += dr[j];
        }
    }
}

/// Rows per task of the whole-matrix passes below; fixed, so that their
/// results do not depend on the thread count.
const CHUNK_ROWS: usize = 32;

/// [`normalize_rows`] over every row of `v (rows, width)`, in chunks of rows on
/// the thread pool.
pub fn normalize_all<F: Real>(
    level: Level,
    width: usize,
    v: &mut [F],
    hat: &mut [F],
    rstd: &mut [F],
    gain: &[F],
    shift: &[F],
) {
    let rows = rstd.len();
    let (vs, hs, rs) = (SharedMut::new(v), SharedMut::new(hat), SharedMut::new(rstd));
    parallel::for_each_index(rows.div_ceil(CHUNK_ROWS), |c| {
        let (r0, r1) = (c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(rows));
        let m = r1 - r0;
        // SAFETY: the chunks' rows are disjoint.
        let (v, hat, rstd) = unsafe {
            (
                vs.piece(r0 * width, m * width),
                hs.piece(r0 * width, m * width),
                rs.piece(r0, m),
            )
        };
        normalize_rows(level, width, v, hat, rstd, gain, shift);
    });
}

/// [`normalize_back_rows`] over every row, in chunks of rows on the thread pool.
pub fn normalize_back_all<F: Real>(
    level: Level,
    width: usize,
    d: &[F],
    hat: &[F],
    rstd: &[F],
    gain: &[F],
    dv: &mut [F],
) {
    let rows = rstd.len();
    let out = SharedMut::new(dv);
    parallel::for_each_index(rows.div_ceil(CHUNK_ROWS), |c| {
        let (r0, r1) = (c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(rows));
        let span = r0 * width..r1 * width;
        // SAFETY: the chunks' rows are disjoint.
        let dv = unsafe { out.piece(r0 * width, (r1 - r0) * width) };
        let (d, hat) = (&d[span.clone()], &hat[span]);
        normalize_back_rows(level, width, d, hat, &rstd[r0..r1], gain, dv);
    });
}

/// [`param_grads`] over every row: one partial sum per fixed chunk of rows on
/// the thread pool, then the partials added in chunk order.
pub fn param_grads_all<F: Real>(
    width: usize,
    d: &[F],
    hat: &[F],
    d_gain: &mut [F],
    d_shift: &mut [F],
) {
    let rows = d.len() / width;
    let chunks = rows.div_ceil(CHUNK_ROWS);
    let mut partial = vec![F::ZERO; chunks * 2 * width];
    {
        let ps = SharedMut::new(&mut partial);
        parallel::for_each_index(chunks, |c| {
            let (r0, r1) = (c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(rows));
            let span = r0 * width..r1 * width;
            // SAFETY: each chunk writes its own partial.
            let p = unsafe { ps.piece(c * 2 * width, 2 * width) };
            let (g, s) = p.split_at_mut(width);
            param_grads(width, &d[span.clone()], &hat[span], g, s);
        });
    }
    for p in partial.chunks_exact(2 * width) {
        let (g, s) = p.split_at(width);
        for j in 0..width {
            d_gain[j] += g[j];
            d_shift[j] += s[j];
        }
    }
}
