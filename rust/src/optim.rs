//! Adam and AdamW over every parameter of a model in one call, and the sum of
//! squares of every gradient (the global norm that clipping reads).
//!
//! The update is `rnncore.optim.Adam._update` operation for operation, in the
//! parameters' float type, with each coefficient rounded to that type first (as
//! NumPy does with a Python float beside an array). Rust never fuses a multiply
//! and an add on its own, so the result is bitwise NumPy's. One pass over each
//! element instead of NumPy's nine, with no temporaries; the elements are cut
//! into pieces of a fixed size and updated in parallel (each element on its
//! own, so any thread count gives the same bits).

use crate::parallel;
use crate::real::Real;
use crate::simd::{self, multiversion};

/// Elements per piece of parallel work.
const PIECE: usize = 1 << 15;

/// One step's hyperparameters, as `Adam._update` computes them (in `f64`).
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    /// `lr / (1 - beta1^t)`.
    pub step_size: f64,
    /// `sqrt(1 - beta2^t)`.
    pub bias_correction2_sqrt: f64,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW: the decay scales the parameter, not the gradient.
    pub decoupled: bool,
}

/// [`Adam`]'s coefficients rounded to `R`, as the update uses them.
#[derive(Clone, Copy)]
pub struct Coefs<R> {
    /// `1 - lr * weight_decay` (AdamW), else 1 and unused.
    decay: R,
    /// `weight_decay` (Adam, L2), else 0 and unused.
    l2: R,
    decoupled: bool,
    decays: bool,
    /// `lerp_` of the first moment: `w = 1 - beta1`, and `1 - w` for its other form.
    w: R,
    one_minus_w: R,
    small_w: bool,
    beta2: R,
    one_minus_beta2: R,
    bias_correction2_sqrt: R,
    eps: R,
    step_size: R,
}

impl<R: Real> Coefs<R> {
    fn new(a: &Adam) -> Self {
        let w = 1.0 - a.beta1;
        Coefs {
            decay: R::from_f64(1.0 - a.lr * a.weight_decay),
            l2: R::from_f64(a.weight_decay),
            decoupled: a.decoupled,
            decays: a.weight_decay != 0.0,
            w: R::from_f64(w),
            one_minus_w: R::from_f64(1.0 - w),
            small_w: w.abs() < 0.5,
            beta2: R::from_f64(a.beta2),
            one_minus_beta2: R::from_f64(1.0 - a.beta2),
            bias_correction2_sqrt: R::from_f64(a.bias_correction2_sqrt),
            eps: R::from_f64(a.eps),
            step_size: R::from_f64(a.step_size),
        }
    }
}

multiversion! {
    /// One piece: `p`, `m` (`exp_avg`) and `v` (`exp_avg_sq`) updated in place
    /// from `g`, all of one length.
    fn update<R: Real>(p: &mut [R], g: &[R], m: &mut [R], v: &mut [R], k: &Coefs<R>) {
        let n = p.len().min(g.len()).min(m.len()).min(v.len());
        let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
        let k = *k;
        for i in 0..n {
            let mut gi = g[i];
            if k.decays {
                if k.decoupled {
                    p[i] *= k.decay;
                } else {
                    gi += k.l2 * p[i];
                }
            }
            m[i] = if k.small_w {
                m[i] + k.w * (gi - m[i])
            } else {
                gi - (gi - m[i]) * k.one_minus_w
            };
            v[i] = v[i] * k.beta2 + k.one_minus_beta2 * (gi * gi);
            let denom = v[i].sqrt() / k.bias_correction2_sqrt + k.eps;
            p[i] -= k.step_size * m[i] / denom;
        }
    }
}

/// One parameter's arrays: `(p, g, exp_avg, exp_avg_sq)`, all of one length.
pub type Slot<'a, R> = (&'a mut [R], &'a [R], &'a mut [R], &'a mut [R]);

/// One Adam (or AdamW) step over every parameter in `slots`.
pub fn adam<R: Real>(slots: Vec<Slot<'_, R>>, hp: &Adam) {
    let k = Coefs::<R>::new(hp);
    let level = simd::best_level();
    let mut pieces = Vec::new();
    for (p, g, m, v) in slots {
        let parts = p
            .chunks_mut(PIECE)
            .zip(g.chunks(PIECE))
            .zip(m.chunks_mut(PIECE))
            .zip(v.chunks_mut(PIECE));
        pieces.extend(parts.map(|(((p, g), m), v)| (p, g, m, v)));
    }
    parallel::for_each(pieces, |(p, g, m, v)| update(level, p, g, m, v, &k));
}

multiversion! {
    /// `Σ x²` of one piece, in `f64`, over [`LANES`] lanes in a fixed order.
    fn piece_squares<R: Real>(x: &[R]) -> f64 {
        let mut lanes = [0.0f64; LANES];
        let chunks = x.chunks_exact(LANES);
        let mut sum: f64 = chunks.remainder().iter().map(|&a| a.to_f64() * a.to_f64()).sum();
        for c in chunks {
            for l in 0..LANES {
                let a = c[l].to_f64();
                lanes[l] += a * a;
            }
        }
        for l in lanes {
            sum += l;
        }
        sum
    }
}

/// Lanes of [`piece_squares`].
const LANES: usize = 8;

/// `Σ x²` over every array, in `f64`: pieces of a fixed size summed in
/// parallel, their sums added in order (the same bits at any thread count).
pub fn sum_squares<R: Real>(arrays: &[&[R]]) -> f64 {
    let level = simd::best_level();
    let pieces: Vec<&[R]> = arrays.iter().flat_map(|a| a.chunks(PIECE)).collect();
    let mut sums = vec![0.0f64; pieces.len()];
    let work: Vec<_> = pieces.into_iter().zip(sums.iter_mut()).collect();
    parallel::for_each(work, |(x, s)| *s = piece_squares(level, x));
    sums.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Level;

    fn hp(weight_decay: f64, decoupled: bool, beta1: f64) -> Adam {
        let (beta2, t) = (0.999, 3);
        Adam {
            step_size: 1e-2 / (1.0 - f64::powi(beta1, t)),
            bias_correction2_sqrt: (1.0 - f64::powi(beta2, t)).sqrt(),
            lr: 1e-2,
            beta1,
            beta2,
            eps: 1e-8,
            weight_decay,
            decoupled,
        }
    }

    #[test]
    fn sum_squares_is_the_same_at_every_thread_count() {
        let a: Vec<f32> = (0..PIECE * 3 + 5)
            .map(|i| (i as f32 * 0.01).sin())
            .collect();
        let b: Vec<f32> = vec![2.0; 3];
        let want: f64 = a.iter().chain(&b).map(|&x| (x as f64) * (x as f64)).sum();
        let mut first = None;
        for threads in [1, 2, 3] {
            parallel::set_num_threads(Some(threads));
            let got = sum_squares(&[&a[..], &b[..], &[]]);
            assert!((got - want).abs() <= 1e-12 * want);
            assert_eq!(*first.get_or_insert(got), got);
        }
        parallel::set_num_threads(None);
        assert_eq!(sum_squares::<f64>(&[]), 0.0);
    }

    /// The update written out per element in f64 from the formulas.
    fn oracle(p: f64, g: f64, m: f64, v: f64, a: &Adam) -> (f64, f64, f64) {
        let (mut p, mut g) = (p, g);
        if a.weight_decay != 0.0 {
            if a.decoupled {
                p *= 1.0 - a.lr * a.weight_decay;
            } else {
                g += a.weight_decay * p;
            }
        }
        let m = m + (1.0 - a.beta1) * (g - m);
        let v = a.beta2 * v + (1.0 - a.beta2) * g * g;
        let p = p - a.step_size * m / (v.sqrt() / a.bias_correction2_sqrt + a.eps);
        (p, m, v)
    }

    #[test]
    fn matches_the_formulas_and_is_the_same_at_every_level_and_thread_count() {
        let n = PIECE * 2 + 37;
        let f = |i: usize, s: f64| (i as f64 * s).sin() * 3.0;
        for a in [hp(0.0, false, 0.9), hp(0.1, false, 0.9), hp(0.1, true, 0.3)] {
            let mut first: Option<Vec<f64>> = None;
            for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
                if !level.supported() {
                    continue;
                }
                for threads in [1, 2, 3] {
                    parallel::set_num_threads(Some(threads));
                    let mut p: Vec<f64> = (0..n).map(|i| f(i, 0.37)).collect();
                    let g: Vec<f64> = (0..n).map(|i| f(i, 1.13)).collect();
                    let mut m: Vec<f64> = (0..n).map(|i| f(i, 0.71) * 0.1).collect();
                    let mut v: Vec<f64> = (0..n).map(|i| f(i, 0.53).abs()).collect();
                    let want: Vec<_> = (0..n).map(|i| oracle(p[i], g[i], m[i], v[i], &a)).collect();
                    if level == simd::best_level() {
                        adam(vec![(&mut p[..], &g[..], &mut m[..], &mut v[..])], &a);
                    } else {
                        update(level, &mut p, &g, &mut m, &mut v, &Coefs::new(&a));
                    }
                    for i in 0..n {
                        let (wp, wm, wv) = want[i];
                        assert!((p[i] - wp).abs() <= 1e-12 * wp.abs().max(1.0), "{i}");
                        assert!((m[i] - wm).abs() <= 1e-12 * wm.abs().max(1.0), "{i}");
                        assert!((v[i] - wv).abs() <= 1e-12 * wv.abs().max(1.0), "{i}");
                    }
                    match &first {
                        None => first = Some(p.clone()),
                        Some(p0) => {
                            assert!(p.iter().zip(p0).all(|(a, b)| a.to_bits() == b.to_bits()))
                        }
                    }
                }
            }
            parallel::set_num_threads(None);
        }
    }
}
