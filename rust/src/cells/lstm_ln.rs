//! Layer-normalised LSTM cell (Ba et al. 2016), gates `i, f, g, o`:
//!
//! ```text
//! a = LN_x(W_ih x) + LN_h(W_hh h) + b_ih + b_hh      (N, 4H), from the caller
//! i, f, o = sigmoid(.)   g = tanh(.)
//! c' = f * c + i * g
//! h' = o * tanh(LN_c(c'))
//! ```
//!
//! The gate arithmetic is the LSTM's ([`lstm::unit`]); what differs is the
//! output, which reads the normalised cell state, so the backward's path from
//! `h'` to `c'` passes through the normalisation of the whole row. The caller
//! normalises the two products ([`layer_norm`](super::layer_norm)).

use super::layer_norm::{normalize_back_row, normalize_row};
use super::lstm;
use crate::simd::multiversion;

/// The cell state's normalisation: gain and shift `(H,)` each.
#[derive(Clone, Copy, Debug)]
pub struct CellNorm<'a, F> {
    pub gain: &'a [F],
    pub shift: &'a [F],
}

multiversion! {
    /// Forward. `gates (N, 4H)`: pre-activations in, activations out;
    /// `c_prev (N, H)`; writes `c_next (N, H)`, `c_hat (N, H)` (the normalised
    /// `c'`), `rstd (N,)` and `h_next (N, H)`.
    pub fn forward_step<F: Real>(
        h: usize,
        gates: &mut [F],
        c_prev: &[F],
        norm: CellNorm<'_, F>,
        c_next: &mut [F],
        c_hat: &mut [F],
        rstd: &mut [F],
        h_next: &mut [F],
    ) {
        let rows = gates
            .chunks_exact_mut(4 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_next.chunks_exact_mut(h))
            .zip(c_hat.chunks_exact_mut(h))
            .zip(rstd.iter_mut())
            .zip(h_next.chunks_exact_mut(h));
        let (gain, shift) = (&norm.gain[..h], &norm.shift[..h]);
        for (((((g, cp), cn), ch), r), hn) in rows {
            for j in 0..h {
                let u = lstm::unit(g[j], g[h + j], g[2 * h + j], g[3 * h + j], cp[j]);
                [g[j], g[h + j], g[2 * h + j], g[3 * h + j]] = u.gates;
                cn[j] = u.c;
            }
            *r = normalize_row(cn, ch);
            for j in 0..h {
                hn[j] = g[3 * h + j] * (gain[j] * ch[j] + shift[j]).tanh_fast();
            }
        }
    }
}

multiversion! {
    /// Backward. `gates (N, 4H)` activations; `c_prev, c_hat (N, H)`, `rstd
    /// (N,)` from the forward; `dh (N, H)` gradient of `h'`; `dc (N, H)`
    /// gradient of `c'` (from the next step) in, of `c` out. Writes `dgates (N,
    /// 4H)` (gradient of the pre-activations), `dy (N, H)` (gradient of
    /// `LN_c(c')`, for the gain and shift) and `dh_direct (N, H)` (zero for
    /// active rows; inactive rows: `dh`, zero gradients, `dc` unchanged).
    pub fn backward_step<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        c_prev: &[F],
        c_hat: &[F],
        rstd: &[F],
        norm: CellNorm<'_, F>,
        dh: &[F],
        dc: &mut [F],
        dgates: &mut [F],
        dy: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(4 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c_hat.chunks_exact(h))
            .zip(rstd.iter())
            .zip(dh.chunks_exact(h))
            .zip(dc.chunks_exact_mut(h))
            .zip(dgates.chunks_exact_mut(4 * h))
            .zip(dy.chunks_exact_mut(h))
            .zip(dh_direct.chunks_exact_mut(h));
        let (gain, shift) = (&norm.gain[..h], &norm.shift[..h]);
        for (((((((((g, cp), ch), &r), dhr), dcr), dg), dyr), dd), &on) in rows.zip(active) {
            if !on {
                dg.fill(F::ZERO);
                dyr.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            let (gi, rest) = g.split_at(h); // (H,) each
            let (gf, rest) = rest.split_at(h);
            let (gg, go) = rest.split_at(h);
            let (di, rest) = dg.split_at_mut(h);
            let (df, rest) = rest.split_at_mut(h);
            let (dgg, d_o) = rest.split_at_mut(h);
            // h' = o * tanh(y), y = gain * c^ + shift: the o gradient, dy, and
            // in di (as scratch) the gradient of c^.
            for j in 0..h {
                let t = (gain[j] * ch[j] + shift[j]).tanh_fast();
                let ov = go[j];
                d_o[j] = dhr[j] * t * ov * (F::ONE - ov);
                dyr[j] = dhr[j] * ov * (F::ONE - t * t);
                di[j] = dyr[j] * gain[j];
            }
            normalize_back_row(&mut di[..h], ch, r); // now the gradient of c' through h'
            for j in 0..h {
                let (iv, fv, gv) = (gi[j], gf[j], gg[j]);
                let dc_next = dcr[j] + di[j];
                di[j] = dc_next * gv * iv * (F::ONE - iv);
                df[j] = dc_next * cp[j] * fv * (F::ONE - fv);
                dgg[j] = dc_next * iv * (F::ONE - gv * gv);
                dcr[j] = dc_next * fv;
            }
            dd.fill(F::ZERO);
        }
    }
}
