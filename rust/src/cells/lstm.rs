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

use super::rows;
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

/// This cell's row math, for [`rows`].
struct Cell;

impl<F: Real> rows::Row<F, 4> for Cell {
    #[inline(always)]
    fn forward(&self, h: usize, g: [&mut [F]; 4], cp: &[F], cn: &mut [F], hn: &mut [F]) {
        forward_row(h, g, cp, cn, hn)
    }
    #[inline(always)]
    fn backward(&self, h: usize, r: rows::BackRow<'_, F, 4>) {
        backward_row(h, r)
    }
}

/// One row of the forward over `H` units. Every slice is a separate argument,
/// so LLVM knows they do not overlap and vectorises the loop.
#[inline(always)]
fn forward_row<F: Real>(
    h: usize,
    [i, f, gg, o]: [&mut [F]; 4],
    cp: &[F],
    cn: &mut [F],
    hn: &mut [F],
) {
    let (i, f, gg, o) = (&mut i[..h], &mut f[..h], &mut gg[..h], &mut o[..h]);
    let (cp, cn, hn) = (&cp[..h], &mut cn[..h], &mut hn[..h]);
    for j in 0..h {
        let u = unit(i[j], f[j], gg[j], o[j], cp[j]);
        [i[j], f[j], gg[j], o[j]] = u.gates;
        cn[j] = u.c;
        hn[j] = u.h;
    }
}

/// One row of the backward: gates `i f g o`, states, and the four gate
/// gradients, each `(H,)` and each its own argument (see `forward_row`).
#[inline(always)]
fn backward_row<F: Real>(h: usize, r: rows::BackRow<'_, F, 4>) {
    let ([gi, gf, gg, go], [di, df, dgg, d_o]) = (r.gates, r.dgates);
    let (cp, cn, dhr, dcr) = (r.c_prev, r.c_next, r.dh, r.dc);
    let (gi, gf, gg, go) = (&gi[..h], &gf[..h], &gg[..h], &go[..h]);
    let (di, df, dgg, d_o) = (&mut di[..h], &mut df[..h], &mut dgg[..h], &mut d_o[..h]);
    let (cp, cn, dhr, dcr) = (&cp[..h], &cn[..h], &dhr[..h], &mut dcr[..h]);
    for j in 0..h {
        let (iv, fv, gv, ov) = (gi[j], gf[j], gg[j], go[j]);
        let tc = cn[j].tanh_fast();
        let dc_next = dcr[j] + dhr[j] * ov * (F::ONE - tc * tc);
        di[j] = dc_next * gv * iv * (F::ONE - iv);
        df[j] = dc_next * cp[j] * fv * (F::ONE - fv);
        dgg[j] = dc_next * iv * (F::ONE - gv * gv);
        d_o[j] = dhr[j] * tc * ov * (F::ONE - ov);
        dcr[j] = dc_next * fv;
    }
}
