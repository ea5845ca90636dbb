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
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_next.chunks_exact_mut(h))
            .zip(h_next.chunks_exact_mut(h));
        for (((g, cp), cn), hn) in rows {
            let (f, rest) = g.split_at_mut(h); // (H,) each
            let (gg, o) = rest.split_at_mut(h);
            forward_row(h, f, gg, o, cp, cn, hn);
        }
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
        let rows = gates
            .chunks_exact(3 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_next.chunks_exact(h))
            .zip(dh.chunks_exact(h))
            .zip(dc.chunks_exact_mut(h))
            .zip(dgates.chunks_exact_mut(3 * h))
            .zip(dh_direct.chunks_exact_mut(h));
        for (((((((g, cp), cn), dhr), dcr), dg), dd), &on) in rows.zip(active) {
            if !on {
                dg.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            let (gf, rest) = g.split_at(h); // (H,) each
            let (gg, go) = rest.split_at(h);
            let (df, rest) = dg.split_at_mut(h);
            let (dgg, d_o) = rest.split_at_mut(h);
            backward_row(h, gf, gg, go, cp, cn, dhr, dcr, df, dgg, d_o);
            dd.fill(F::ZERO);
        }
    }
}

/// One row of the forward over `H` units, every slice its own argument.
#[inline(always)]
fn forward_row<F: Real>(
    h: usize,
    f: &mut [F],
    gg: &mut [F],
    o: &mut [F],
    cp: &[F],
    cn: &mut [F],
    hn: &mut [F],
) {
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
#[allow(clippy::too_many_arguments)]
fn backward_row<F: Real>(
    h: usize,
    gf: &[F],
    gg: &[F],
    go: &[F],
    cp: &[F],
    cn: &[F],
    dhr: &[F],
    dcr: &mut [F],
    df: &mut [F],
    dgg: &mut [F],
    d_o: &mut [F],
) {
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
