//! LSTM with a coupled input-forget gate (CIFG; Greff et al., "LSTM: A Search
//! Space Odyssey", 2017), gates `f, g, o`, the input gate being `1 - f`:
//!
//! ```text
//! [f g o] = W_ih x + b_ih + W_hh h + b_hh          (N, 3H), summed by the caller
//! f, o = sigmoid(.)   g = tanh(.)
//! c' = f * c + (1 - f) * g
//! h' = o * tanh(c')
//! ```
//!
//! As in `lstm`, the forward overwrites the pre-activations with the activated
//! gates, which with `c` and `c'` is all the backward needs.

use super::rows::{self, load, store};
use crate::real::Real;
use crate::simd::multiversion;

multiversion! {
    /// Forward. `gates (N, 3H)`: pre-activations in, activations out;
    /// `c_prev (N, H)`; writes `c_next (N, H)` and `h_next (N, H)`.
    pub fn forward_step<F: Real>(
        h: usize,
        gates: &mut [F],
        c_prev: &[F],
        c_next: &mut [F],
        h_next: &mut [F],
    ) {
        rows::forward(h, gates, c_prev, c_next, h_next, &Cell);
    }
}

multiversion! {
    /// Backward. `gates (N, 3H)` activations; `c_prev, c_next (N, H)`;
    /// `dh (N, H)` gradient of `h'`; `dc (N, H)` gradient of `c'` in, of `c`
    /// out. Writes `dgates (N, 3H)` and `dh_direct (N, H)` (zero for active
    /// rows, `dh` for inactive ones, whose `dc` passes unchanged).
    pub fn backward_step<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        c_prev: &[F],
        c_next: &[F],
        dh: &[F],
        dc: &mut [F],
        dgates: &mut [F],
        dh_direct: &mut [F],
    ) {
        let (c, n) = (c_prev, c_next);
        rows::backward(h, active, gates, c, n, dh, dc, dgates, dh_direct, &Cell);
    }
}

/// This cell's row math, for [`rows`].
struct Cell;

impl<F: Real> rows::Row<F, 3> for Cell {
    #[inline(always)]
    fn forward(&self, h: usize, g: [&mut [F]; 3], cp: &[F], cn: &mut [F], hn: &mut [F]) {
        forward_row(h, g, cp, cn, hn)
    }
    #[inline(always)]
    fn backward(&self, h: usize, r: rows::BackRow<'_, F, 3>) {
        backward_row(h, r)
    }
}

/// One row of the forward over `H` units, [`rows::LANES`] at a time.
#[inline(always)]
fn forward_row<F: Real>(h: usize, [f, gg, o]: [&mut [F]; 3], cp: &[F], cn: &mut [F], hn: &mut [F]) {
    let mut j = 0;
    while j < h {
        let w = rows::LANES.min(h - j);
        let (mut af, mut ag, mut ao, acp) =
            (load(f, j, w), load(gg, j, w), load(o, j, w), load(cp, j, w));
        let (mut c, mut hv) = ([F::ZERO; rows::LANES], [F::ZERO; rows::LANES]);
        for l in 0..rows::LANES {
            let fv = af[l].sigmoid_fast();
            let gv = ag[l].tanh_fast();
            let ov = ao[l].sigmoid_fast();
            (af[l], ag[l], ao[l]) = (fv, gv, ov);
            c[l] = fv * acp[l] + (F::ONE - fv) * gv;
            hv[l] = ov * c[l].tanh_fast();
        }
        store(f, j, w, &af);
        store(gg, j, w, &ag);
        store(o, j, w, &ao);
        store(cn, j, w, &c);
        store(hn, j, w, &hv);
        j += w;
    }
}

/// One row of the backward: gates `f g o`, states, and the three gate
/// gradients, [`rows::LANES`] units at a time.
#[inline(always)]
fn backward_row<F: Real>(h: usize, r: rows::BackRow<'_, F, 3>) {
    let ([gf, gg, go], [df, dgg, d_o]) = (r.gates, r.dgates);
    let (cp, cn, dhr, dcr) = (r.c_prev, r.c_next, r.dh, r.dc);
    let mut j = 0;
    while j < h {
        let w = rows::LANES.min(h - j);
        let (af, ag, ao) = (load(gf, j, w), load(gg, j, w), load(go, j, w));
        let (acp, acn, adh, mut adc) = (
            load(cp, j, w),
            load(cn, j, w),
            load(dhr, j, w),
            load(dcr, j, w),
        );
        let z = [F::ZERO; rows::LANES];
        let (mut xf, mut xg, mut xo) = (z, z, z);
        for l in 0..rows::LANES {
            let (fv, gv, ov) = (af[l], ag[l], ao[l]);
            let tc = acn[l].tanh_fast();
            let dc_next = adc[l] + adh[l] * ov * (F::ONE - tc * tc);
            xf[l] = dc_next * (acp[l] - gv) * fv * (F::ONE - fv);
            xg[l] = dc_next * (F::ONE - fv) * (F::ONE - gv * gv);
            xo[l] = adh[l] * tc * ov * (F::ONE - ov);
            adc[l] = dc_next * fv;
        }
        store(df, j, w, &xf);
        store(dgg, j, w, &xg);
        store(d_o, j, w, &xo);
        store(dcr, j, w, &adc);
        j += w;
    }
}
