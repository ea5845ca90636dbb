//! LSTM with peephole connections (Gers & Schmidhuber, "Recurrent nets that
//! time and count", 2000), gates `i, f, g, o` (PyTorch's order) and per-unit
//! peephole weights `p = [p_i p_f p_o]` (`3H`):
//!
//! ```text
//! [i f g o] = W_ih x + b_ih + W_hh h + b_hh        (N, 4H), summed by the caller
//! i = sigmoid(i + p_i * c)   f = sigmoid(f + p_f * c)   g = tanh(g)
//! c' = f * c + i * g
//! o = sigmoid(o + p_o * c')
//! h' = o * tanh(c')
//! ```
//!
//! As in `lstm`, the forward overwrites the pre-activations with the activated
//! gates; with `c`, `c'` and `p` that is all the backward needs. The gradient
//! of `p` is not formed here: it is a sum over every row and step, which the
//! sequence backward takes after its time loop in a fixed order (so it does not
//! depend on how the batch is sharded).

use super::rows;
use crate::real::Real;
use crate::simd::multiversion;

multiversion! {
    /// Forward. `gates (N, 4H)`: pre-activations in, activations out;
    /// `peep (3H,)`; `c_prev (N, H)`; writes `c_next (N, H)` and `h_next (N, H)`.
    pub fn forward_step<F: Real>(
        h: usize,
        gates: &mut [F],
        peep: &[F],
        c_prev: &[F],
        c_next: &mut [F],
        h_next: &mut [F],
    ) {
        let (pi, rest) = peep.split_at(h); // (H,) each
        let (pf, po) = rest.split_at(h);
        rows::forward(h, gates, c_prev, c_next, h_next, &Cell([pi, pf, po]));
    }
}

multiversion! {
    /// Backward. `gates (N, 4H)` activations; `peep (3H,)`; `c_prev, c_next
    /// (N, H)`; `dh (N, H)` gradient of `h'`; `dc (N, H)` gradient of `c'` in,
    /// of `c` out. Writes `dgates (N, 4H)` (gradient of the pre-activations, the
    /// peephole terms excluded) and `dh_direct (N, H)` (zero for active rows,
    /// `dh` for inactive ones, whose `dc` passes unchanged).
    pub fn backward_step<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        peep: &[F],
        c_prev: &[F],
        c_next: &[F],
        dh: &[F],
        dc: &mut [F],
        dgates: &mut [F],
        dh_direct: &mut [F],
    ) {
        let (pi, rest) = peep.split_at(h); // (H,) each
        let (pf, po) = rest.split_at(h);
        let (c, n, cell) = (c_prev, c_next, Cell([pi, pf, po]));
        rows::backward(h, active, gates, c, n, dh, dc, dgates, dh_direct, &cell);
    }
}

/// This cell's row math, for [`rows`], with the peephole weights `p_i p_f p_o`.
struct Cell<'a, F>([&'a [F]; 3]);

impl<F: Real> rows::Row<F, 4> for Cell<'_, F> {
    #[inline(always)]
    fn forward(&self, h: usize, g: [&mut [F]; 4], cp: &[F], cn: &mut [F], hn: &mut [F]) {
        forward_row(h, self.0, g, cp, cn, hn)
    }
    #[inline(always)]
    fn backward(&self, h: usize, r: rows::BackRow<'_, F, 4>) {
        backward_row(h, self.0, r)
    }
}

/// One row of the forward over `H` units. Every slice is a separate argument,
/// so LLVM knows they do not overlap and vectorises the loop.
#[inline(always)]
fn forward_row<F: Real>(
    h: usize,
    [pi, pf, po]: [&[F]; 3],
    [i, f, gg, o]: [&mut [F]; 4],
    cp: &[F],
    cn: &mut [F],
    hn: &mut [F],
) {
    let (i, f, gg, o) = (&mut i[..h], &mut f[..h], &mut gg[..h], &mut o[..h]);
    let (pi, pf, po) = (&pi[..h], &pf[..h], &po[..h]);
    let (cp, cn, hn) = (&cp[..h], &mut cn[..h], &mut hn[..h]);
    for j in 0..h {
        let c_prev = cp[j];
        let iv = (i[j] + pi[j] * c_prev).sigmoid_fast();
        let fv = (f[j] + pf[j] * c_prev).sigmoid_fast();
        let gv = gg[j].tanh_fast();
        let c = fv * c_prev + iv * gv;
        let ov = (o[j] + po[j] * c).sigmoid_fast();
        (i[j], f[j], gg[j], o[j]) = (iv, fv, gv, ov);
        cn[j] = c;
        hn[j] = ov * c.tanh_fast();
    }
}

/// One row of the backward: the activated gates `i f g o`, the peephole
/// weights `p_i p_f p_o`, the states, and the four gate gradients, each `(H,)`.
#[inline(always)]
fn backward_row<F: Real>(h: usize, [pi, pf, po]: [&[F]; 3], r: rows::BackRow<'_, F, 4>) {
    let ([gi, gf, gg, go], [di, df, dgg, d_o]) = (r.gates, r.dgates);
    let (cp, cn, dhr, dcr) = (r.c_prev, r.c_next, r.dh, r.dc);
    let (gi, gf, gg, go) = (&gi[..h], &gf[..h], &gg[..h], &go[..h]);
    let (pi, pf, po) = (&pi[..h], &pf[..h], &po[..h]);
    let (di, df, dgg, d_o) = (&mut di[..h], &mut df[..h], &mut dgg[..h], &mut d_o[..h]);
    let (cp, cn, dhr, dcr) = (&cp[..h], &cn[..h], &dhr[..h], &mut dcr[..h]);
    for j in 0..h {
        let (iv, fv, gv, ov) = (gi[j], gf[j], gg[j], go[j]);
        let tc = cn[j].tanh_fast();
        let da_o = dhr[j] * tc * ov * (F::ONE - ov);
        // c' reaches the loss through h', through o's peephole, and through dc.
        let dc_next = dcr[j] + dhr[j] * ov * (F::ONE - tc * tc) + da_o * po[j];
        let da_i = dc_next * gv * iv * (F::ONE - iv);
        let da_f = dc_next * cp[j] * fv * (F::ONE - fv);
        di[j] = da_i;
        df[j] = da_f;
        dgg[j] = dc_next * iv * (F::ONE - gv * gv);
        d_o[j] = da_o;
        // c reaches c' through f, and i and f through their peepholes.
        dcr[j] = dc_next * fv + da_i * pi[j] + da_f * pf[j];
    }
}
