//! Softmax cross-entropy over the rows of a logits matrix, turned into its
//! gradient in place: the one implementation behind
//! `rnncore.nn.functional.softmax_cross_entropy` (and so every model's loss)
//! and the min-char-rnn step.
//!
//! Per row `x (V,)` with target `t` and weight `w` (and a common `scale`):
//! `nll = ln Σ_j e^{x_j - max} - (x_t - max)`, and `x` becomes
//! `w · scale · (softmax(x) - onehot(t))`. Three passes over the row (max, sum of
//! exponentials, gradient), each vectorised, the exponentials and the sum in
//! `f64`; nothing of the size of the logits is allocated, so the probabilities
//! are never stored beside the logits. Rows run in parallel in pieces whose size
//! depends only on `V`, and the loss is summed over the rows in order, so the
//! result is bitwise the same at any thread count.

use crate::parallel;
use crate::real::Real;
use crate::simd::{self, multiversion};
use crate::vmath;

/// Lanes of the reductions (fixed, so the sums' order is too).
const LANES: usize = 8;

/// About this many logits per piece of parallel work.
const PIECE: usize = 1 << 14;

multiversion! {
    /// Row `x (V,)`, target `t < V`, `ws = w · scale > 0`: `x` becomes
    /// `ws · (softmax(x) - onehot(t))`; returns the row's `nll`. A row with a
    /// NaN or an infinity has no finite loss: it becomes NaN, and so does `nll`.
    pub fn row<R: Real>(x: &mut [R], t: usize, ws: f64) -> f64 {
        let mut lanes = [f64::NEG_INFINITY; LANES];
        let chunks = x.chunks_exact(LANES);
        let mut max = chunks
            .remainder()
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(v.to_f64()));
        for c in chunks {
            for l in 0..LANES {
                lanes[l] = lanes[l].max(c[l].to_f64());
            }
        }
        for l in lanes {
            max = max.max(l);
        }
        // the exponentials replace the logits; their sum is taken before rounding
        let picked = x[t].to_f64() - max;
        let mut sums = [0.0f64; LANES];
        let mut chunks = x.chunks_exact_mut(LANES);
        for c in chunks.by_ref() {
            for l in 0..LANES {
                let e = vmath::exp(c[l].to_f64() - max);
                sums[l] += e;
                c[l] = R::from_f64(e);
            }
        }
        let mut sum = 0.0f64;
        for v in chunks.into_remainder() {
            let e = vmath::exp(v.to_f64() - max);
            sum += e;
            *v = R::from_f64(e);
        }
        for s in sums {
            sum += s;
        }
        if !max.is_finite() || !sum.is_finite() {
            // +inf or a NaN in the row (f64::max skips NaN; the sum does not)
            x.iter_mut().for_each(|v| *v = R::from_f64(f64::NAN));
            return f64::NAN;
        }
        let k = ws / sum;
        let kr = R::from_f64(k);
        for v in x.iter_mut() {
            *v *= kr;
        }
        x[t] = R::from_f64(vmath::exp(picked) * k - ws);
        sum.ln() - picked
    }
}

/// The loss of `logits (M, V)` row-major against `targets (M,)` (each `< V`),
/// with optional `weights (M,)` (finite, `>= 0`), times `scale`; `logits`
/// becomes the gradient of that loss. A row of weight 0 becomes exactly 0 and
/// adds nothing, whatever it holds. Returns `scale · Σ_m w_m nll_m`, summed in
/// row order (NaN or infinite if a counted row is not finite).
pub fn cross_entropy<R: Real>(
    logits: &mut [R],
    v: usize,
    targets: &[usize],
    weights: Option<&[f64]>,
    scale: f64,
) -> f64 {
    let m = targets.len();
    debug_assert_eq!(logits.len(), m * v);
    if m == 0 || v == 0 {
        return 0.0;
    }
    let level = simd::best_level();
    let rows = (PIECE / v).max(1);
    let mut nll = vec![0.0f64; m];
    let pieces: Vec<_> = logits
        .chunks_mut(rows * v)
        .zip(nll.chunks_mut(rows))
        .enumerate()
        .collect();
    parallel::for_each(pieces, |(p, (xs, out))| {
        for (i, (x, o)) in xs.chunks_exact_mut(v).zip(out.iter_mut()).enumerate() {
            let r = p * rows + i;
            let w = weights.map_or(1.0, |w| w[r]);
            if w == 0.0 {
                x.iter_mut().for_each(|v| *v = R::ZERO);
                *o = 0.0;
            } else {
                *o = w * row(level, x, targets[r], w * scale);
            }
        }
    });
    nll.iter().sum::<f64>() * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Level;

    /// The loss and gradient as the formulas say, in f64, row by row.
    fn oracle(x: &[f64], v: usize, t: &[usize], w: &[f64], scale: f64) -> (f64, Vec<f64>) {
        let mut g = vec![0.0; x.len()];
        let mut loss = 0.0;
        for (r, row) in x.chunks(v).enumerate() {
            if w[r] == 0.0 {
                continue;
            }
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|&a| (a - max).exp()).sum();
            loss += w[r] * (z.ln() - (row[t[r]] - max));
            for j in 0..v {
                let p = (row[j] - max).exp() / z;
                g[r * v + j] = w[r] * scale * (p - if j == t[r] { 1.0 } else { 0.0 });
            }
        }
        (loss * scale, g)
    }

    fn case(m: usize, v: usize, seed: u64) -> (Vec<f64>, Vec<usize>, Vec<f64>) {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let x = (0..m * v).map(|_| (next() - 0.5) * 20.0).collect();
        let t = (0..m)
            .map(|_| ((next() * v as f64) as usize).min(v - 1))
            .collect();
        let w = (0..m)
            .map(|i| if i % 5 == 3 { 0.0 } else { next() * 2.0 })
            .collect();
        (x, t, w)
    }

    #[test]
    fn matches_the_formulas_at_every_level_and_thread_count() {
        for &(m, v) in &[
            (1, 1),
            (1, 7),
            (3, 8),
            (5, 17),
            (40, 65),
            (3, 5000),
            (700, 31),
        ] {
            let (x, t, w) = case(m, v, (m * 31 + v) as u64);
            let (want, want_g) = oracle(&x, v, &t, &w, 0.25);
            let mut first: Option<(f64, Vec<f64>)> = None;
            for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
                if !level.supported() {
                    continue;
                }
                for threads in [1, 2, 3] {
                    parallel::set_num_threads(Some(threads));
                    let mut g = x.clone();
                    let loss = if level == simd::best_level() {
                        cross_entropy(&mut g, v, &t, Some(&w), 0.25)
                    } else {
                        // the same rows through one level's twin
                        let mut loss = 0.0;
                        for (r, row_x) in g.chunks_mut(v).enumerate() {
                            if w[r] == 0.0 {
                                row_x.iter_mut().for_each(|a| *a = 0.0);
                            } else {
                                loss += w[r] * row(level, row_x, t[r], w[r] * 0.25);
                            }
                        }
                        loss * 0.25
                    };
                    assert!(
                        (loss - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "{m}x{v}"
                    );
                    for (a, b) in g.iter().zip(&want_g) {
                        assert!((a - b).abs() <= 1e-14, "{m}x{v}: {a} vs {b}");
                    }
                    match &first {
                        None => first = Some((loss, g)),
                        Some((l0, g0)) => {
                            assert_eq!(loss.to_bits(), l0.to_bits(), "{m}x{v} {level:?}");
                            assert!(g.iter().zip(g0).all(|(a, b)| a.to_bits() == b.to_bits()));
                        }
                    }
                }
            }
            parallel::set_num_threads(None);
        }
    }

    #[test]
    fn float32_rows_and_huge_logits() {
        let x: Vec<f32> = vec![3e38, 3e38, -3e38, 0.0];
        let mut g = x.clone();
        let loss = cross_entropy(&mut g, 4, &[0], None, 1.0);
        assert!((loss - 2f64.ln()).abs() < 1e-6, "{loss}");
        assert!((g[0] + 0.5).abs() < 1e-7 && (g[1] - 0.5).abs() < 1e-7);
        assert_eq!((g[2], g[3]), (0.0, 0.0));
    }

    #[test]
    fn non_finite_rows_give_nan_unless_their_weight_is_zero() {
        for bad in [f64::NAN, f64::INFINITY] {
            let x = vec![0.0, bad, 1.0, 2.0, 0.5, 0.5];
            let mut g = x.clone();
            let loss = cross_entropy(&mut g, 3, &[0, 1], None, 1.0);
            assert!(loss.is_nan());
            assert!(g[..3].iter().all(|a| a.is_nan()));
            assert!(g[3..].iter().all(|a| a.is_finite()));
            let mut g = x.clone();
            let loss = cross_entropy(&mut g, 3, &[0, 1], Some(&[0.0, 1.0]), 1.0);
            assert!(loss.is_finite());
            assert_eq!(&g[..3], &[0.0, 0.0, 0.0]);
        }
        // -inf entries take no mass; a -inf target makes the loss infinite
        let mut g = vec![f64::NEG_INFINITY, 0.0, 0.0];
        assert!((cross_entropy(&mut g, 3, &[1], None, 1.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(g[0], 0.0);
        let mut g = vec![f64::NEG_INFINITY, 0.0, 0.0];
        assert_eq!(cross_entropy(&mut g, 3, &[0], None, 1.0), f64::INFINITY);
    }
}
