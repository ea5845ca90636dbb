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
//! `c` and `c'` that is all the backward needs.

use crate::real::Real;

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
        for j in 0..h {
            let (iv, fv, gv, ov) = (i[j].sigmoid(), f[j].sigmoid(), gg[j].tanh(), o[j].sigmoid());
            i[j] = iv;
            f[j] = fv;
            gg[j] = gv;
            o[j] = ov;
            let c = fv * cp[j] + iv * gv;
            cn[j] = c;
            hn[j] = ov * c.tanh();
        }
    }
}

/// Backward. `gates (N, 4H)` activations; `c_prev, c_next (N, H)`; `dh (N, H)`
/// gradient of `h'`; `dc (N, H)` gradient of `c'` in, of `c` out. Writes
/// `dgates (N, 4H)` (gradient of the pre-activations) and `dh_direct (N, H)`
/// (zero for active rows, `dh` for inactive ones, whose `dc` passes unchanged).
#[allow(clippy::too_many_arguments)]
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
        let (di, rest) = dg.split_at_mut(h); // (H,) each
        let (df, rest) = rest.split_at_mut(h);
        let (dgg, d_o) = rest.split_at_mut(h);
        for j in 0..h {
            let (iv, fv, gv, ov) = (g[j], g[h + j], g[2 * h + j], g[3 * h + j]);
            let tc = cn[j].tanh();
            let dc_next = dcr[j] + dhr[j] * ov * (F::ONE - tc * tc);
            di[j] = dc_next * gv * iv * (F::ONE - iv);
            df[j] = dc_next * cp[j] * fv * (F::ONE - fv);
            dgg[j] = dc_next * iv * (F::ONE - gv * gv);
            d_o[j] = dhr[j] * tc * ov * (F::ONE - ov);
            dcr[j] = dc_next * fv;
        }
        dd.fill(F::ZERO);
    }
}
