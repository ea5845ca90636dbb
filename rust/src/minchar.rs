//! Karpathy's min-char-rnn training step in one call: a one-layer tanh RNN on
//! one-hot symbols with a linear readout, the softmax cross-entropy summed over
//! the chunk, backpropagation through time, every gradient entry clipped to
//! `[-clip, clip]`, and Adagrad with `eps` inside the square root:
//!
//! ```text
//! h_t = tanh(W_ih[:, x_t] + b_ih + b_hh + W_hh h_{t-1}),  y_t = W_out h_t + b_out
//! s += g * g;  p -= lr * g / sqrt(s + eps)        (b_hh is not updated)
//! ```
//!
//! At `H = 100` and 25 steps the step is about a million multiply-adds: in
//! Python the calls between the pieces would cost more than the arithmetic.

use crate::cells::rnn;
use crate::error::{Result, RnnError};
use crate::panel::narrow::Narrow;
use crate::panel::{madd, transposed, transposed_into_rows};
use crate::real::Real;
use crate::simd::Level;

/// The model's arrays, row-major: `w_ih (H, V)`, `w_hh (H, H)`, `b_ih (H,)`,
/// `b_hh (H,)`, `w_out (V, H)`, `b_out (V,)`.
pub struct Arrays<'a, R> {
    pub w_ih: &'a mut [R],
    pub w_hh: &'a mut [R],
    pub b_ih: &'a mut [R],
    pub b_hh: &'a mut [R],
    pub w_out: &'a mut [R],
    pub b_out: &'a mut [R],
}

/// Adagrad's accumulators of the updated arrays (all but `b_hh`).
pub struct Sums<'a, R> {
    pub w_ih: &'a mut [R],
    pub w_hh: &'a mut [R],
    pub b_ih: &'a mut [R],
    pub w_out: &'a mut [R],
    pub b_out: &'a mut [R],
}

/// The update: learning rate, `eps` (inside the square root), clip value.
#[derive(Clone, Copy, Debug)]
pub struct Adagrad {
    pub lr: f64,
    pub eps: f64,
    pub clip: f64,
}

/// What a step returns.
#[derive(Debug)]
pub struct Outcome<R> {
    /// The summed cross-entropy (natural log), computed in `f64`.
    pub loss: f64,
    /// `(H,)` the state after the last step, for the next chunk.
    pub h: Vec<R>,
    /// False when the loss or a gradient was not finite (then the gradients
    /// are NaN), or when the update could leave a parameter or a sum
    /// non-finite (a learning rate near the float's limit; then the gradients
    /// are the clipped ones). Either way neither the parameters nor the sums
    /// were changed.
    pub updated: bool,
}

/// One chunk: `ids (T,)` the inputs, `targets (T,)` the next symbols, `h0 (H,)`.
/// Writes the clipped gradients to `grads` (shapes of `params`) and updates
/// `params` (all but `b_hh`) and `sums`. Slices must have the documented
/// lengths (the caller checks them); ids must lie in `0..V`. Runs the code
/// compiled for `level` (AVX-512, AVX2+FMA, or plain); the cell is the tanh
/// cell of `cells::rnn`.
#[allow(clippy::too_many_arguments)]
pub fn step<R: Real>(
    level: Level,
    ids: &[usize],
    targets: &[usize],
    h0: &[R],
    params: Arrays<'_, R>,
    grads: Arrays<'_, R>,
    sums: Sums<'_, R>,
    opt: Adagrad,
) -> Result<Outcome<R>> {
    step_at(level, level, ids, targets, h0, params, grads, sums, opt)
}

crate::simd::multiversion! {
    /// [`step`] compiled for each level; `products` is the level of the
    /// products over panels it calls.
    fn step_at<R: Real>(
        products: Level,
        ids: &[usize],
        targets: &[usize],
        h0: &[R],
        params: Arrays<'_, R>,
        grads: Arrays<'_, R>,
        sums: Sums<'_, R>,
        opt: Adagrad,
    ) -> Result<Outcome<R>> {
        step_body(products, ids, targets, h0, params, grads, sums, opt)
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step_body<R: Real>(
    level: Level,
    ids: &[usize],
    targets: &[usize],
    h0: &[R],
    params: Arrays<'_, R>,
    grads: Arrays<'_, R>,
    sums: Sums<'_, R>,
    opt: Adagrad,
) -> Result<Outcome<R>> {
    let (h, t_len) = (h0.len(), ids.len());
    let v = params.b_out.len();
    if t_len == 0 || targets.len() != t_len {
        return Err(RnnError::shape(
            "targets",
            "must have the length of inputs, at least 1",
        ));
    }
    if let Some(&bad) = ids.iter().chain(targets).find(|&&i| i >= v) {
        return Err(RnnError::argument(
            "inputs",
            format!("ids must lie in 0..{}, got {bad}", v - 1),
        ));
    }
    let p = params;
    // The recurrent products read W_hh^T (forward) and W_hh (backward) as
    // rows padded to `hp` columns, with the sums in registers (`recurrent`).
    let hp = h.next_multiple_of(LANES);
    let mut rows = vec![R::ZERO; 2 * h * hp];
    let (w_t, w_rows) = rows.split_at_mut(h * hp); // W_hh^T (H, hp), W_hh (H, hp)
    for (i, row) in p.w_hh.chunks_exact(h).enumerate() {
        w_rows[i * hp..][..h].copy_from_slice(row);
    }
    transposed_into_rows(p.w_hh, h, h, h, w_t, hp); // in 16 x 16 tiles
    let (w_t, w_rows) = (&*w_t, &*w_rows);
    // Forward: hs (T+1, H) with hs[0] = h0.
    let mut hs = vec![R::ZERO; (t_len + 1) * h];
    hs[..h].copy_from_slice(h0);
    let mut acc = vec![R::ZERO; hp];
    for t in 0..t_len {
        let (past, now) = hs.split_at_mut((t + 1) * h);
        let (h_prev, h_t) = (&past[t * h..], &mut now[..h]);
        for (i, out) in acc[..h].iter_mut().enumerate() {
            *out = p.w_ih[i * v + ids[t]] + p.b_ih[i] + p.b_hh[i];
        }
        recurrent(level, &mut acc, h_prev, w_t, hp);
        for (y, &s) in h_t.iter_mut().zip(&acc) {
            *y = rnn::unit(false, s);
        }
    }
    // The readout of every step at once: logits (T, V), then the loss, with
    // the logits turned into dy (T, V) = softmax minus one-hot in place.
    let states = &hs[h..]; // (T, H) the states after each step
    let mut dy = vec![R::ZERO; t_len * v];
    for row in dy.chunks_exact_mut(v) {
        row.copy_from_slice(p.b_out);
    }
    Narrow::new(p.w_out, v, h)?.mul(level, &mut dy, states, t_len, true, false);
    let loss = crate::loss::cross_entropy(&mut dy, v, targets, None, 1.0);

    // Backward. Only dh_{t-1} = W_hh^T (1 - h_t^2) dh_t is sequential; each
    // weight gradient is one product over the steps after the loop.
    let g = grads;
    // draw (T, H): W_out^T dy_t, then, going back, the pre-activation gradients.
    let mut draw = vec![R::ZERO; t_len * h];
    let nt = |wt: &[R], k: usize, m: usize| Narrow::from_transposed(wt, k, m);
    nt(p.w_out, v, h)?.mul(level, &mut draw, &dy, t_len, false, false);
    let dh_next = &mut acc; // (hp,) W_hh^T d, zero past H
    dh_next.fill(R::ZERO);
    for t in (0..t_len).rev() {
        let d = &mut draw[t * h..][..h];
        for ((d, &x), &y) in d.iter_mut().zip(&*dh_next).zip(&states[t * h..][..h]) {
            *d = rnn::unit_grad(false, y, *d + x);
        }
        dh_next.fill(R::ZERO);
        recurrent(level, dh_next, d, w_rows, hp);
    }
    // dW_out = dy^T states, dW_hh = draw^T hs[..T], the biases, and the
    // columns of dW_ih of the symbols seen.
    let dy_t = transposed(&dy, t_len, v); // (V, T)
    nt(states, t_len, h)?.mul(level, g.w_out, &dy_t, v, false, false);
    let draw_t = transposed(&draw, t_len, h); // (H, T)
    nt(&hs[..t_len * h], t_len, h)?.mul(level, g.w_hh, &draw_t, h, false, false);
    for (b, row) in g.b_out.iter_mut().zip(dy_t.chunks_exact(t_len)) {
        *b = row.iter().fold(R::ZERO, |a, &x| a + x);
    }
    g.w_ih.fill(R::ZERO);
    for (i, (b, row)) in g
        .b_ih
        .iter_mut()
        .zip(draw_t.chunks_exact(t_len))
        .enumerate()
    {
        *b = row.iter().fold(R::ZERO, |a, &x| a + x);
        for (&x, &id) in row.iter().zip(ids) {
            g.w_ih[i * v + id] += x;
        }
    }
    g.b_hh.copy_from_slice(g.b_ih);

    let grads = [g.w_ih, g.w_hh, g.b_ih, g.b_hh, g.w_out, g.b_out];
    let finite = loss.is_finite()
        && grads
            .iter()
            .all(|a| crate::sequence::check_finite("grads", a).is_ok());
    let [gw_ih, gw_hh, gb_ih, gb_hh, gw_out, gb_out] = grads;
    if !finite {
        for a in [gw_ih, gw_hh, gb_ih, gb_hh, gw_out, gb_out] {
            a.fill(R::from_f64(f64::NAN));
        }
    } else {
        let (hi, lo) = (R::from_f64(opt.clip), R::from_f64(-opt.clip));
        let clip = |x: R| {
            if x > hi {
                hi
            } else if x < lo {
                lo
            } else {
                x
            }
        };
        for x in gb_hh.iter_mut() {
            *x = clip(*x);
        }
        let (lr, eps) = (R::from_f64(opt.lr), R::from_f64(opt.eps));
        let arrays = [
            (p.w_ih, gw_ih, sums.w_ih),
            (p.w_hh, gw_hh, sums.w_hh),
            (p.b_ih, gb_ih, sums.b_ih),
            (p.w_out, gw_out, sums.w_out),
            (p.b_out, gb_out, sums.b_out),
        ];
        // |lr * d / sqrt(s + d^2 + eps)| <= lr, so the update stays finite when
        // |x| + 2 lr and s + clip^2 + eps are: one pass of maxima, no sqrt. (A
        // plain loop: a closure given to `all` is compiled outside this SIMD
        // twin, and its maxima ran scalar.)
        let mut safe = (lr * hi).is_finite();
        for (x, _, s) in &arrays {
            safe &= (max_abs(x) + lr + lr).is_finite() && (max_abs(s) + hi * hi + eps).is_finite();
        }
        if !safe {
            for (_, grad, _) in arrays {
                grad.iter_mut().for_each(|d| *d = clip(*d));
            }
            return Ok(Outcome {
                loss,
                h: hs[t_len * h..].to_vec(),
                updated: false,
            });
        }
        for (param, grad, sum) in arrays {
            for ((x, d), s) in param.iter_mut().zip(grad.iter_mut()).zip(sum.iter_mut()) {
                *d = clip(*d);
                *s += *d * *d;
                *x -= lr * *d / (*s + eps).sqrt();
            }
        }
    }
    Ok(Outcome {
        loss,
        h: hs[t_len * h..].to_vec(),
        updated: finite,
    })
}

/// Lanes the padded rows of the recurrent products come in: one 512-bit
/// vector of `f32`, two of `f64`.
const LANES: usize = 16;

/// `sums (hp,) += x (K,) @ w`, `w (K, hp)` row-major: for each block of
/// columns, the sums stay in registers while the rows go by, each added in
/// the order of `k` (as the panel products add them: the same bits). `hp` is
/// a multiple of [`LANES`]; a block is as wide as the level's registers hold
/// (16 of 512 bits, 12 of 256).
#[inline(always)]
fn recurrent<R: Real>(level: Level, sums: &mut [R], x: &[R], w: &[R], hp: usize) {
    assert!(sums.len() == hp && hp % LANES == 0 && w.len() >= x.len() * hp);
    match level {
        Level::Avx512 => blocks::<R, true>(1024 / std::mem::size_of::<R>(), sums, x, w, hp),
        Level::Avx2 => blocks::<R, true>(384 / std::mem::size_of::<R>(), sums, x, w, hp),
        Level::Scalar => blocks::<R, false>(LANES, sums, x, w, hp),
    }
}

/// [`recurrent`] in blocks of at most `cap` columns, fused when `FUSED`.
#[inline(always)]
fn blocks<R: Real, const FUSED: bool>(cap: usize, sums: &mut [R], x: &[R], w: &[R], hp: usize) {
    let mut c0 = 0;
    while c0 < hp {
        let n = cap.min(hp - c0);
        let (s, w) = (&mut sums[c0..c0 + n], &w[c0..]);
        macro_rules! widths {
            ($($m:literal),*) => {
                match n / LANES {
                    $($m => columns::<R, { $m * LANES }, FUSED>(s, x, w, hp),)*
                    _ => unreachable!("a block holds at most 16 x LANES columns"),
                }
            };
        }
        widths!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
        c0 += n;
    }
}

/// One block of [`recurrent`]: `N` columns, `w` starting at the block.
#[inline(always)]
fn columns<R: Real, const N: usize, const FUSED: bool>(
    sums: &mut [R],
    x: &[R],
    w: &[R],
    hp: usize,
) {
    let mut acc: [R; N] = sums.try_into().expect("N sums");
    for (k, &xk) in x.iter().enumerate() {
        let row: &[R; N] = w[k * hp..][..N].try_into().expect("N weights");
        for j in 0..N {
            acc[j] = madd::<R, FUSED>(acc[j], xk, row[j]);
        }
    }
    sums.copy_from_slice(&acc);
}

/// The largest `|x|` of `a` (0 when empty; NaN elements are passed over), in
/// 16 lanes so that it vectorises; a maximum does not depend on the order.
#[inline(always)]
fn max_abs<R: Real>(a: &[R]) -> R {
    const L: usize = 16;
    let mut acc = [R::ZERO; L];
    let chunks = a.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            acc[i] = larger(acc[i], c[i]);
        }
    }
    for (m, &x) in acc.iter_mut().zip(tail) {
        *m = larger(*m, x);
    }
    let mut m = R::ZERO;
    for &x in &acc {
        m = larger(m, x);
    }
    m
}

/// `max(m, |x|)`, passing over a NaN `x`.
#[inline(always)]
fn larger<R: Real>(m: R, x: R) -> R {
    let v = if x < R::ZERO { R::ZERO - x } else { x };
    if v > m {
        v
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Lcg;

    #[test]
    fn max_abs_is_the_plain_maximum_at_every_length() {
        let mut rng = Lcg(3);
        for len in [0, 1, 2, 15, 16, 17, 31, 33, 100] {
            let mut a = rng.vec(len, 4.0);
            let want = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert_eq!(max_abs(&a), want, "len {len}");
            if len > 0 {
                a[len / 2] = f64::NAN; // passed over, as before
                let want = a
                    .iter()
                    .filter(|x| !x.is_nan())
                    .fold(0.0f64, |m, x| m.max(x.abs()));
                assert_eq!(max_abs(&a), want, "len {len} with a NaN");
            }
        }
    }

    /// [`step`] on six parameter, six gradient and six sum arrays (the sum of
    /// `b_hh`, index 3, is not used).
    #[allow(clippy::too_many_arguments)]
    fn run(
        level: Level,
        ids: &[usize],
        tg: &[usize],
        h0: &[f64],
        p: &mut [Vec<f64>; 6],
        g: &mut [Vec<f64>; 6],
        s: &mut [Vec<f64>; 6],
        opt: Adagrad,
    ) -> Result<Outcome<f64>> {
        let [p0, p1, p2, p3, p4, p5] = p;
        let [g0, g1, g2, g3, g4, g5] = g;
        let [s0, s1, s2, _, s4, s5] = s;
        step(
            level,
            ids,
            tg,
            h0,
            Arrays {
                w_ih: p0,
                w_hh: p1,
                b_ih: p2,
                b_hh: p3,
                w_out: p4,
                b_out: p5,
            },
            Arrays {
                w_ih: g0,
                w_hh: g1,
                b_ih: g2,
                b_hh: g3,
                w_out: g4,
                b_out: g5,
            },
            Sums {
                w_ih: s0,
                w_hh: s1,
                b_ih: s2,
                w_out: s4,
                b_out: s5,
            },
            opt,
        )
    }

    /// min-char-rnn's `lossFun` and update, written out plainly in f64.
    #[allow(clippy::type_complexity)]
    fn plain(
        ids: &[usize],
        tg: &[usize],
        h0: &[f64],
        w: &[Vec<f64>; 6],
        v: usize,
    ) -> (f64, Vec<f64>, [Vec<f64>; 6]) {
        let h = h0.len();
        let [wih, whh, bih, bhh, wout, bout] = w;
        let mut hs = vec![h0.to_vec()];
        let mut ps = Vec::new();
        let mut loss = 0.0;
        for (t, &x) in ids.iter().enumerate() {
            let hn: Vec<f64> = (0..h)
                .map(|i| {
                    let r: f64 = (0..h).map(|j| whh[i * h + j] * hs[t][j]).sum();
                    (wih[i * v + x] + bih[i] + bhh[i] + r).tanh()
                })
                .collect();
            let y: Vec<f64> = (0..v)
                .map(|k| bout[k] + (0..h).map(|j| wout[k * h + j] * hn[j]).sum::<f64>())
                .collect();
            let z: f64 = y.iter().map(|a| a.exp()).sum();
            let p: Vec<f64> = y.iter().map(|a| a.exp() / z).collect();
            loss -= p[tg[t]].ln();
            ps.push(p);
            hs.push(hn);
        }
        let mut g: [Vec<f64>; 6] = std::array::from_fn(|i| vec![0.0; w[i].len()]);
        let mut dnext = vec![0.0; h];
        for t in (0..ids.len()).rev() {
            let mut dy = ps[t].clone();
            dy[tg[t]] -= 1.0;
            let mut dh = dnext.clone();
            for k in 0..v {
                for j in 0..h {
                    g[4][k * h + j] += dy[k] * hs[t + 1][j];
                    dh[j] += wout[k * h + j] * dy[k];
                }
                g[5][k] += dy[k];
            }
            let raw: Vec<f64> = (0..h)
                .map(|i| (1.0 - hs[t + 1][i].powi(2)) * dh[i])
                .collect();
            dnext = vec![0.0; h];
            for i in 0..h {
                g[2][i] += raw[i];
                g[3][i] += raw[i];
                g[0][i * v + ids[t]] += raw[i];
                for j in 0..h {
                    g[1][i * h + j] += raw[i] * hs[t][j];
                    dnext[j] += whh[i * h + j] * raw[i];
                }
            }
        }
        (loss, hs.last().unwrap().clone(), g)
    }

    #[test]
    fn matches_the_plain_step_then_updates_with_adagrad_at_every_level() {
        let cases = [(1, 1, 1), (3, 2, 4), (17, 9, 25), (100, 65, 25)];
        for (&(h, v, t), level) in cases
            .iter()
            .flat_map(|c| [Level::Scalar, Level::Avx2, Level::Avx512].map(|l| (c, l)))
        {
            let mut rng = Lcg((h * 31 + v * 7 + t) as u64);
            let sizes = [h * v, h * h, h, h, v * h, v];
            let w: [Vec<f64>; 6] = std::array::from_fn(|i| rng.vec(sizes[i], 0.3));
            let h0 = rng.vec(h, 0.3);
            let ids: Vec<usize> = (0..t).map(|i| (i * 5 + 1) % v).collect();
            let tg: Vec<usize> = (0..t).map(|i| (i * 3 + 2) % v).collect();
            let (want_loss, want_h, want_g) = plain(&ids, &tg, &h0, &w, v);

            let mut p = w.clone();
            let mut g: [Vec<f64>; 6] = std::array::from_fn(|i| vec![7.0; sizes[i]]);
            let mut s: [Vec<f64>; 6] = std::array::from_fn(|i| vec![0.5; sizes[i]]);
            let opt = Adagrad {
                lr: 0.1,
                eps: 1e-8,
                clip: 0.05,
            };
            let out = run(level, &ids, &tg, &h0, &mut p, &mut g, &mut s, opt).unwrap();
            assert!(out.updated);
            assert!((out.loss - want_loss).abs() < 1e-10 * want_loss.abs().max(1.0));
            for (a, b) in out.h.iter().zip(&want_h) {
                assert!((a - b).abs() < 1e-12);
            }
            for i in 0..6 {
                for (j, (&got, &raw)) in g[i].iter().zip(&want_g[i]).enumerate() {
                    let clipped = raw.clamp(-opt.clip, opt.clip);
                    assert!((got - clipped).abs() < 1e-12, "grad {i}[{j}]");
                    if i == 3 {
                        assert_eq!(p[i][j], w[i][j], "b_hh is not updated");
                        continue;
                    }
                    let sum = 0.5 + clipped * clipped;
                    assert!((s[i][j] - sum).abs() < 1e-12);
                    let want = w[i][j] - opt.lr * clipped / (sum + opt.eps).sqrt();
                    assert!((p[i][j] - want).abs() < 1e-12);
                }
            }
        }
    }

    /// One step of the H = 2, V = 3 model whose readout weights are `w_out`,
    /// from zero sums: `(params before, params after, grads, sums, outcome)`.
    #[allow(clippy::type_complexity)]
    fn tiny_step(
        w_out: f64,
        lr: f64,
    ) -> (
        [Vec<f64>; 6],
        [Vec<f64>; 6],
        [Vec<f64>; 6],
        [Vec<f64>; 6],
        Outcome<f64>,
    ) {
        let mut p: [Vec<f64>; 6] = [
            vec![0.1; 6],
            vec![0.1; 4],
            vec![0.0; 2],
            vec![0.0; 2],
            vec![w_out; 6],
            vec![0.0; 3],
        ];
        let before = p.clone();
        let mut g: [Vec<f64>; 6] = std::array::from_fn(|i| vec![0.0; p[i].len()]);
        let mut s: [Vec<f64>; 6] = std::array::from_fn(|i| vec![0.0; p[i].len()]);
        let opt = Adagrad {
            lr,
            eps: 1e-8,
            clip: 5.0,
        };
        let out = run(
            Level::Scalar,
            &[0, 1],
            &[1, 2],
            &[0.0; 2],
            &mut p,
            &mut g,
            &mut s,
            opt,
        )
        .unwrap();
        (before, p, g, s, out)
    }

    #[test]
    fn an_update_that_could_overflow_changes_nothing() {
        for lr in [1e308, f64::MAX, f64::INFINITY] {
            let (before, p, g, s, out) = tiny_step(0.2, lr);
            assert!(!out.updated && out.loss.is_finite(), "lr {lr}");
            assert_eq!(p, before);
            assert!(s.iter().all(|a| a.iter().all(|&x| x == 0.0)));
            assert!(g
                .iter()
                .all(|a| a.iter().all(|x| x.is_finite() && x.abs() <= 5.0)));
            assert!(g[4].iter().any(|&x| x != 0.0));
        }
    }

    #[test]
    fn a_non_finite_loss_changes_nothing() {
        // W_out infinite: the logits are not finite.
        let (before, p, g, s, out) = tiny_step(f64::INFINITY, 0.1);
        assert!(!out.updated);
        assert!(g.iter().all(|a| a.iter().all(|x| x.is_nan())));
        assert!(s.iter().all(|a| a.iter().all(|&x| x == 0.0)));
        for (a, b) in p.iter().zip(&before) {
            assert!(a
                .iter()
                .zip(b)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan())));
        }
    }
}
