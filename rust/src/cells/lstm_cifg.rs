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

use super::rows;
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

/// One row of the forward over `H` units, every slice its own argument.
#[inline(always)]
fn forward_row<F: Real>(h: usize, [f, gg, o]: [&mut [F]; 3], cp: &[F], cn: &mut [F], hn: &mut [F]) {
    let (f, gg, o) = (&mut f[..h], &mut gg[..h], &mut o[..h]);
    let (cp, cn, hn) = (&cp[..h], &mut cn[..h], &mut hn[..h]);
    for j in 0..h {
        let fv = f[j].sigmoid_fast();
        let gv = gg[j].tanh_fast();
        let ov = o[j].sigmoid_fast();
        (f[j], gg[j], o[j]) = (fv, gv, ov);
        let c = fv * cp[j] + (F::ONE - fv) * gv;
        cn[j] = c;
        hn[j] = ov * c.tanh_fast();
    }
}

/// One row of the backward: gates `f g o`, states, and the three gate gradients.
#[inline(always)]
fn backward_row<F: Real>(h: usize, r: rows::BackRow<'_, F, 3>) {
    let ([gf, gg, go], [df, dgg, d_o]) = (r.gates, r.dgates);
    let (cp, cn, dhr, dcr) = (r.c_prev, r.c_next, r.dh, r.dc);
    let (gf, gg, go) = (&gf[..h], &gg[..h], &go[..h]);
    let (df, dgg, d_o) = (&mut df[..h], &mut dgg[..h], &mut d_o[..h]);
    let (cp, cn, dhr, dcr) = (&cp[..h], &cn[..h], &dhr[..h], &mut dcr[..h]);
    for j in 0..h {
        let (fv, gv, ov) = (gf[j], gg[j], go[j]);
        let tc = cn[j].tanh_fast();
        let dc_next = dcr[j] + dhr[j] * ov * (F::ONE - tc * tc);
        df[j] = dc_next * (cp[j] - gv) * fv * (F::ONE - fv);
        dgg[j] = dc_next * (F::ONE - fv) * (F::ONE - gv * gv);
        d_o[j] = dhr[j] * tc * ov * (F::ONE - ov);
        dcr[j] = dc_next * fv;
    }
}
