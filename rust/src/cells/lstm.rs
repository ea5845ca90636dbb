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
        let rows = gates
            .chunks_exact_mut(4 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_next.chunks_exact_mut(h))
            .zip(h_next.chunks_exact_mut(h));
        for (((g, cp), cn), hn) in rows {
            let (i, rest) = g.split_at_mut(h); // (H,) each
            let (f, rest) = rest.split_at_mut(h);
            let (gg, o) = rest.split_at_mut(h);
            forward_row(h, i, f, gg, o, cp, cn, hn);
        }
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
        let rows = gates
            .chunks_exact(4 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_next.chunks_exact(h))
            .zip(dh.chunks_exact(h))
            .zip(dc.chunks_exact_mut(h))
            .zip(dgates.chunks_exact_mut(4 * h))
            .zip(dh_direct.chunks_exact_mut(h));
        for (((((((g, cp), cn), dhr), dcr), dg), dd), &on) in rows.zip(active) {
            if !on {
                dg.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            let (gi, rest) = g.split_at(h); // (H,) each
            let (gf, rest) = rest.split_at(h);
            let (gg, go) = rest.split_at(h);
            let (di, rest) = dg.split_at_mut(h);
            let (df, rest) = rest.split_at_mut(h);
            let (dgg, d_o) = rest.split_at_mut(h);
            backward_row(h, gi, gf, gg, go, cp, cn, dhr, dcr, di, df, dgg, d_o);
            dd.fill(F::ZERO);
        }
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

/// One row of the forward over `H` units. Every slice is a separate argument,
/// so LLVM knows they do not overlap and vectorises the loop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_row<F: Real>(
    h: usize,
    i: &mut [F],
    f: &mut [F],
    gg: &mut [F],
    o: &mut [F],
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
#[allow(clippy::too_many_arguments)]
fn backward_row<F: Real>(
    h: usize,
    gi: &[F],
    gf: &[F],
    gg: &[F],
    go: &[F],
    cp: &[F],
    cn: &[F],
    dhr: &[F],
    dcr: &mut [F],
    di: &mut [F],
    df: &mut [F],
    dgg: &mut [F],
    d_o: &mut [F],
) {
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
