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

use super::rows::{self, load, Lanes};
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

/// This cell's math on [`rows::LANES`] units, for [`rows`], with the peephole
/// weights `p_i p_f p_o` (`(H,)` each).
struct Cell<'a, F>([&'a [F]; 3]);

impl<F: Real> Cell<'_, F> {
    /// The peephole weights of units `j .. j + w`.
    #[inline(always)]
    fn peep(&self, j: usize, w: usize) -> [Lanes<F>; 3] {
        let [pi, pf, po] = self.0;
        [load(pi, j, w), load(pf, j, w), load(po, j, w)]
    }
}

impl<F: Real> rows::Row<F, 4> for Cell<'_, F> {
    #[inline(always)]
    fn forward(
        &self,
        j: usize,
        w: usize,
        [mut ai, mut af, mut ag, mut ao]: [Lanes<F>; 4],
        acp: Lanes<F>,
    ) -> ([Lanes<F>; 4], Lanes<F>, Lanes<F>) {
        let (mut ac, mut hv) = ([F::ZERO; rows::LANES], [F::ZERO; rows::LANES]);
        let [qi, qf, qo] = self.peep(j, w);
        for l in 0..rows::LANES {
            let c_prev = acp[l];
            let iv = (ai[l] + qi[l] * c_prev).sigmoid_fast();
            let fv = (af[l] + qf[l] * c_prev).sigmoid_fast();
            let gv = ag[l].tanh_fast();
            let c = fv * c_prev + iv * gv;
            let ov = (ao[l] + qo[l] * c).sigmoid_fast();
            (ai[l], af[l], ag[l], ao[l]) = (iv, fv, gv, ov);
            ac[l] = c;
            hv[l] = ov * c.tanh_fast();
        }
        ([ai, af, ag, ao], ac, hv)
    }

    #[inline(always)]
    fn backward(
        &self,
        j: usize,
        w: usize,
        [ai, af, ag, ao]: [Lanes<F>; 4],
        acp: Lanes<F>,
        acn: Lanes<F>,
        adh: Lanes<F>,
        mut adc: Lanes<F>,
    ) -> ([Lanes<F>; 4], Lanes<F>) {
        let z = [F::ZERO; rows::LANES];
        let (mut xi, mut xf, mut xg, mut xo) = (z, z, z, z);
        let [qi, qf, qo] = self.peep(j, w);
        for l in 0..rows::LANES {
            let (iv, fv, gv, ov) = (ai[l], af[l], ag[l], ao[l]);
            let tc = acn[l].tanh_fast();
            let da_o = adh[l] * tc * ov * (F::ONE - ov);
            // c' reaches the loss through h', through o's peephole, and through dc.
            let dc_next = adc[l] + adh[l] * ov * (F::ONE - tc * tc) + da_o * qo[l];
            let da_i = dc_next * gv * iv * (F::ONE - iv);
            let da_f = dc_next * acp[l] * fv * (F::ONE - fv);
            xi[l] = da_i;
            xf[l] = da_f;
            xg[l] = dc_next * iv * (F::ONE - gv * gv);
            xo[l] = da_o;
            // c reaches c' through f, and i and f through their peepholes.
            adc[l] = dc_next * fv + da_i * qi[l] + da_f * qf[l];
        }
        ([xi, xf, xg, xo], adc)
    }
}
