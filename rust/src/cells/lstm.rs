//! LSTM cell, gates `i, f, g, o` (PyTorch's order):
//!
//! ```text
//! [i f g o] = W_ih x + b_ih + W_hh h + b_hh        (N, 4H), summed by the caller
//! i, f, o = sigmoid(.)   g = tanh(.)
//! c' = f * c + i * g
//! h' = o * tanh(c')
//! ```
//!
//! The forward overwrites the pre-activations with the activated gates; with
//! `c` and `c'` that is all the backward needs. Inner loops run over slices cut
//! to exactly `H`, so they have no bounds checks and vectorise.

use super::rows::{self, Lanes};
use crate::real::Real;
use crate::simd::multiversion;

multiversion! {
    /// Forward. `gates (N, 4H)`: pre-activations in, activations out;
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
    /// Backward. `gates (N, 4H)` activations; `c_prev, c_next (N, H)`;
    /// `dh (N, H)` gradient of `h'`; `dc (N, H)` gradient of `c'` in, of `c`
    /// out. Writes `dgates (N, 4H)` (gradient of the pre-activations) and
    /// `dh_direct (N, H)` (zero for active rows, `dh` for inactive ones, whose
    /// `dc` passes unchanged).
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

/// One unit of the forward, from the pre-activations of its gates `i f g o`
/// and its previous cell state `c_prev`.
#[derive(Clone, Copy, Debug)]
pub struct Unit<F> {
    /// The activated gates `i f g o`.
    pub gates: [F; 4],
    /// The new cell state `c'`.
    pub c: F,
    /// The new output `h'`.
    pub h: F,
}

/// One unit of the forward (see the module's equations).
#[inline(always)]
pub fn unit<F: Real>(i: F, f: F, g: F, o: F, c_prev: F) -> Unit<F> {
    let iv = i.sigmoid_fast();
    let fv = f.sigmoid_fast();
    let gv = g.tanh_fast();
    let ov = o.sigmoid_fast();
    let c = fv * c_prev + iv * gv;
    Unit {
        gates: [iv, fv, gv, ov],
        c,
        h: ov * c.tanh_fast(),
    }
}

/// This cell's math on [`rows::LANES`] units, for [`rows`].
struct Cell;

impl<F: Real> rows::Row<F, 4> for Cell {
    #[inline(always)]
    fn forward(
        &self,
        _j: usize,
        _w: usize,
        [mut ai, mut af, mut ag, mut ao]: [Lanes<F>; 4],
        acp: Lanes<F>,
    ) -> ([Lanes<F>; 4], Lanes<F>, Lanes<F>) {
        let (mut c, mut hv) = ([F::ZERO; rows::LANES], [F::ZERO; rows::LANES]);
        for l in 0..rows::LANES {
            let u = unit(ai[l], af[l], ag[l], ao[l], acp[l]);
            [ai[l], af[l], ag[l], ao[l]] = u.gates;
            c[l] = u.c;
            hv[l] = u.h;
        }
        ([ai, af, ag, ao], c, hv)
    }

    #[inline(always)]
    fn backward(
        &self,
        _j: usize,
        _w: usize,
        [ai, af, ag, ao]: [Lanes<F>; 4],
        acp: Lanes<F>,
        acn: Lanes<F>,
        adh: Lanes<F>,
        mut adc: Lanes<F>,
    ) -> ([Lanes<F>; 4], Lanes<F>) {
        let z = [F::ZERO; rows::LANES];
        let (mut xi, mut xf, mut xg, mut xo) = (z, z, z, z);
        for l in 0..rows::LANES {
            let (iv, fv, gv, ov) = (ai[l], af[l], ag[l], ao[l]);
            let tc = acn[l].tanh_fast();
            let dc_next = adc[l] + adh[l] * ov * (F::ONE - tc * tc);
            xi[l] = dc_next * gv * iv * (F::ONE - iv);
            xf[l] = dc_next * acp[l] * fv * (F::ONE - fv);
            xg[l] = dc_next * iv * (F::ONE - gv * gv);
            xo[l] = adh[l] * tc * ov * (F::ONE - ov);
            adc[l] = dc_next * fv;
        }
        ([xi, xf, xg, xo], adc)
    }
}
