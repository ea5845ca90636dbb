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
use crate::simd::{dispatch_at, Level};

/// Forward. `gates (N, 4H)`: pre-activations in, activations out;
/// `c_prev (N, H)`; writes `c_next (N, H)` and `h_next (N, H)`.
pub fn forward_step<F: Real>(
    level: Level,
    h: usize,
    gates: &mut [F],
    c_prev: &[F],
    c_next: &mut [F],
    h_next: &mut [F],
) {
    dispatch_at(level, || {
        let rows = gates
            .chunks_exact_mut(4 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_next.chunks_exact_mut(h))
            .zip(h_next.chunks_exact_mut(h));
        for (((g, cp), cn), hn) in rows {
            let (i, rest) = g.split_at_mut(h); // (H,) each
            let (f, rest) = rest.split_at_mut(h);
            let (gg, o) = rest.split_at_mut(h);
            let lanes = i
                .iter_mut()
                .zip(f.iter_mut())
                .zip(gg.iter_mut())
                .zip(o.iter_mut());
            for ((((((i, f), g), o), &cp), cn), hn) in lanes.zip(cp).zip(cn.iter_mut()).zip(hn) {
                let (iv, fv, gv, ov) = (
                    i.sigmoid_fast(),
                    f.sigmoid_fast(),
                    g.tanh_fast(),
                    o.sigmoid_fast(),
                );
                (*i, *f, *g, *o) = (iv, fv, gv, ov);
                let c = fv * cp + iv * gv;
                *cn = c;
                *hn = ov * c.tanh_fast();
            }
        }
    })
}

/// Backward. `gates (N, 4H)` activations; `c_prev, c_next (N, H)`; `dh (N, H)`
/// gradient of `h'`; `dc (N, H)` gradient of `c'` in, of `c` out. Writes
/// `dgates (N, 4H)` (gradient of the pre-activations) and `dh_direct (N, H)`
/// (zero for active rows, `dh` for inactive ones, whose `dc` passes unchanged).
#[allow(clippy::too_many_arguments)]
pub fn backward_step<F: Real>(
    level: Level,
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
    dispatch_at(level, || {
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
            let acts = gi.iter().zip(gf).zip(gg).zip(go);
            let states = cp.iter().zip(cn).zip(dhr).zip(dcr.iter_mut());
            let outs = di
                .iter_mut()
                .zip(df.iter_mut())
                .zip(dgg.iter_mut())
                .zip(d_o.iter_mut());
            for (((((&iv, &fv), &gv), &ov), (((&cp, &cn), &dh), dc)), (((di, df), dg), d_o)) in
                acts.zip(states).zip(outs)
            {
                let tc = cn.tanh_fast();
                let dc_next = *dc + dh * ov * (F::ONE - tc * tc);
                *di = dc_next * gv * iv * (F::ONE - iv);
                *df = dc_next * cp * fv * (F::ONE - fv);
                *dg = dc_next * iv * (F::ONE - gv * gv);
                *d_o = dh * tc * ov * (F::ONE - ov);
                *dc = dc_next * fv;
            }
            dd.fill(F::ZERO);
        }
    })
}
