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

use super::rows::{self, Lanes};
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

/// This cell's math on [`rows::LANES`] units, for [`rows`].
struct Cell;

impl<F: Real> rows::Row<F, 3> for Cell {
    #[inline(always)]
    fn forward(
        &self,
        _j: usize,
        _w: usize,
        [mut af, mut ag, mut ao]: [Lanes<F>; 3],
        acp: Lanes<F>,
    ) -> ([Lanes<F>; 3], Lanes<F>, Lanes<F>) {
        let (mut c, mut hv) = ([F::ZERO; rows::LANES], [F::ZERO; rows::LANES]);
        for l in 0..rows::LANES {
            let fv = af[l].sigmoid_fast();
            let gv = ag[l].tanh_fast();
            let ov = ao[l].sigmoid_fast();
            (af[l], ag[l], ao[l]) = (fv, gv, ov);
            c[l] = fv * acp[l] + (F::ONE - fv) * gv;
            hv[l] = ov * c[l].tanh_fast();
        }
        ([af, ag, ao], c, hv)
    }

    #[inline(always)]
    fn backward(
        &self,
        _j: usize,
        _w: usize,
        [af, ag, ao]: [Lanes<F>; 3],
        acp: Lanes<F>,
        acn: Lanes<F>,
        adh: Lanes<F>,
        mut adc: Lanes<F>,
    ) -> ([Lanes<F>; 3], Lanes<F>) {
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
        ([xf, xg, xo], adc)
    }
}
