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
use super::rows::{self, load, store, LANES};
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
            // LANES units at a time in local arrays (see `rows::LANES`)
            let [i, f, gg, o] = rows::blocks_mut::<F, 4>(g, h);
            let mut j = 0;
            while j < h {
                let w = LANES.min(h - j);
                let (mut ai, mut af, mut ag, mut ao) =
                    (load(i, j, w), load(f, j, w), load(gg, j, w), load(o, j, w));
                let ac = load(cp, j, w);
                let mut c = [F::ZERO; LANES];
                for l in 0..LANES {
                    let u = lstm::unit(ai[l], af[l], ag[l], ao[l], ac[l]);
                    [ai[l], af[l], ag[l], ao[l]] = u.gates;
                    c[l] = u.c;
                }
                store(i, j, w, &ai);
                store(f, j, w, &af);
                store(gg, j, w, &ag);
                store(o, j, w, &ao);
                store(cn, j, w, &c);
                j += w;
            }
            *r = normalize_row(cn, ch);
            let mut j = 0;
            while j < h {
                let w = LANES.min(h - j);
                let (ao, ah) = (load(o, j, w), load(ch, j, w));
                let (ga, sh) = (load(gain, j, w), load(shift, j, w));
                let mut hv = [F::ZERO; LANES];
                for l in 0..LANES {
                    hv[l] = ao[l] * (ga[l] * ah[l] + sh[l]).tanh_fast();
                }
                store(hn, j, w, &hv);
                j += w;
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
            // in di (as scratch) the gradient of c^. LANES units at a time.
            let mut j = 0;
            while j < h {
                let w = LANES.min(h - j);
                let (ga, sh, ah) = (load(gain, j, w), load(shift, j, w), load(ch, j, w));
                let (ao, adh) = (load(go, j, w), load(dhr, j, w));
                let (mut o_, mut y_, mut c_) = ([F::ZERO; LANES], [F::ZERO; LANES], [F::ZERO; LANES]);
                for l in 0..LANES {
                    let t = (ga[l] * ah[l] + sh[l]).tanh_fast();
                    let ov = ao[l];
                    o_[l] = adh[l] * t * ov * (F::ONE - ov);
                    y_[l] = adh[l] * ov * (F::ONE - t * t);
                    c_[l] = y_[l] * ga[l];
                }
                store(d_o, j, w, &o_);
                store(dyr, j, w, &y_);
                store(di, j, w, &c_);
                j += w;
            }
            normalize_back_row(&mut di[..h], ch, r); // now the gradient of c' through h'
            let mut j = 0;
            while j < h {
                let w = LANES.min(h - j);
                let (ai, af, ag) = (load(gi, j, w), load(gf, j, w), load(gg, j, w));
                let (adc, adi, acp) = (load(dcr, j, w), load(di, j, w), load(cp, j, w));
                let (mut i_, mut f_, mut g_, mut c_) =
                    ([F::ZERO; LANES], [F::ZERO; LANES], [F::ZERO; LANES], [F::ZERO; LANES]);
                for l in 0..LANES {
                    let (iv, fv, gv) = (ai[l], af[l], ag[l]);
                    let dc_next = adc[l] + adi[l];
                    i_[l] = dc_next * gv * iv * (F::ONE - iv);
                    f_[l] = dc_next * acp[l] * fv * (F::ONE - fv);
                    g_[l] = dc_next * iv * (F::ONE - gv * gv);
                    c_[l] = dc_next * fv;
                }
                store(di, j, w, &i_);
                store(df, j, w, &f_);
                store(dgg, j, w, &g_);
                store(dcr, j, w, &c_);
                j += w;
            }
            dd.fill(F::ZERO);
        }
    }
}
