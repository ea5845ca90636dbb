//! GRU cell in PyTorch's "reset after" form, gates `r, z, n`:
//!
//! ```text
//! [xr xz xn] = W_ih x + b_ih                       (N, 3H), from the caller
//! [hr hz hn] = W_hh h + b_hh                       (N, 3H), from the caller
//! r = sigmoid(xr + hr)   z = sigmoid(xz + hz)
//! n = tanh(xn + r * hn)
//! h' = (1 - z) * n + z * h
//! ```
//!
//! The forward overwrites the input projection with `r, z, n` and keeps `hn`
//! (the reset gate multiplies it, so the backward needs it).

use super::rows::{load, store, LANES};
use crate::real::Real;
use crate::simd::multiversion;

multiversion! {
    /// Forward. `gates (N, 3H)`: input projection in, `[r z n]` out;
    /// `hg (N, 3H)` recurrent projection; `h_prev (N, H)`; writes `hn (N, H)`
    /// and `h_next (N, H)`.
    pub fn forward_step<F: Real>(
        h: usize,
        gates: &mut [F],
        hg: &[F],
        h_prev: &[F],
        hn: &mut [F],
        h_next: &mut [F],
    ) {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hg.chunks_exact(3 * h))
            .zip(h_prev.chunks_exact(h))
            .zip(hn.chunks_exact_mut(h))
            .zip(h_next.chunks_exact_mut(h));
        for ((((g, hgr), hp), hn_out), hx) in rows {
            let (r, rest) = g.split_at_mut(h); // (H,) each
            let (z, n) = rest.split_at_mut(h);
            let (hr, rest) = hgr.split_at(h);
            let (hz, hnn) = rest.split_at(h);
            forward_row(h, r, z, n, hr, hz, hnn, hp, hn_out, hx);
        }
    }
}

multiversion! {
    /// Backward. `gates (N, 3H)` = `[r z n]`, `hn (N, H)`, `h_prev (N, H)`,
    /// `dh (N, H)` gradient of `h'`. Writes `dgx (N, 3H)` (gradient of the input
    /// projection), `dgh (N, 3H)` (of the recurrent projection) and
    /// `dh_direct (N, H)` = `z * dh` for active rows (`dh` for inactive ones).
    pub fn backward_step<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        hn: &[F],
        h_prev: &[F],
        dh: &[F],
        dgx: &mut [F],
        dgh: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(3 * h)
            .zip(hn.chunks_exact(h))
            .zip(h_prev.chunks_exact(h))
            .zip(dh.chunks_exact(h))
            .zip(dgx.chunks_exact_mut(3 * h))
            .zip(dgh.chunks_exact_mut(3 * h))
            .zip(dh_direct.chunks_exact_mut(h));
        for (((((((g, hnr), hp), dhr), dx), dhg), dd), &on) in rows.zip(active) {
            if !on {
                dx.fill(F::ZERO);
                dhg.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            let (gr, rest) = g.split_at(h); // (H,) each
            let (gz, gn) = rest.split_at(h);
            let (dxr, rest) = dx.split_at_mut(h);
            let (dxz, dxn) = rest.split_at_mut(h);
            let (dhgr, rest) = dhg.split_at_mut(h);
            let (dhgz, dhgn) = rest.split_at_mut(h);
            backward_row(h, gr, gz, gn, hnr, hp, dhr, dxr, dxz, dxn, dhgr, dhgz, dhgn, dd);
        }
    }
}

/// One unit of the forward, from the input projections `xr, xz, xn`, the
/// recurrent projections `hr, hz, hn` (with their biases) and the previous
/// state `h_prev`: returns the activated gates `[r z n]` and `h'`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn unit<F: Real>(xr: F, xz: F, xn: F, hr: F, hz: F, hn: F, h_prev: F) -> ([F; 3], F) {
    let rv = (xr + hr).sigmoid_fast();
    let zv = (xz + hz).sigmoid_fast();
    let nv = (xn + rv * hn).tanh_fast();
    ([rv, zv, nv], (F::ONE - zv) * nv + zv * h_prev)
}

/// One row of the forward over `H` units, [`LANES`] at a time in local arrays
/// (see `cells::rows::LANES`: over the slices themselves, LLVM's overlap
/// check can send the row to its scalar loop).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_row<F: Real>(
    h: usize,
    r: &mut [F],
    z: &mut [F],
    n: &mut [F],
    hr: &[F],
    hz: &[F],
    hnn: &[F],
    hp: &[F],
    hn_out: &mut [F],
    hx: &mut [F],
) {
    let mut j = 0;
    while j < h {
        let w = LANES.min(h - j);
        let (mut ar, mut az, mut an) = (load(r, j, w), load(z, j, w), load(n, j, w));
        let (br, bz, bn, ap) = (
            load(hr, j, w),
            load(hz, j, w),
            load(hnn, j, w),
            load(hp, j, w),
        );
        let mut ax = [F::ZERO; LANES];
        for l in 0..LANES {
            let (gates, h_next) = unit(ar[l], az[l], an[l], br[l], bz[l], bn[l], ap[l]);
            [ar[l], az[l], an[l]] = gates;
            ax[l] = h_next;
        }
        store(r, j, w, &ar);
        store(z, j, w, &az);
        store(n, j, w, &an);
        store(hn_out, j, w, &bn);
        store(hx, j, w, &ax);
        j += w;
    }
}

/// One row of the backward: gates `[r z n]`, `hn`, `h_prev`, `dh`, and the
/// input-side and recurrent-side gate gradients, each `(H,)`, [`LANES`] units
/// at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<F: Real>(
    h: usize,
    gr: &[F],
    gz: &[F],
    gn: &[F],
    hnr: &[F],
    hp: &[F],
    dhr: &[F],
    dxr: &mut [F],
    dxz: &mut [F],
    dxn: &mut [F],
    dhgr: &mut [F],
    dhgz: &mut [F],
    dhgn: &mut [F],
    dd: &mut [F],
) {
    let mut j = 0;
    while j < h {
        let w = LANES.min(h - j);
        let (ar, az, an) = (load(gr, j, w), load(gz, j, w), load(gn, j, w));
        let (bn, ap, adh) = (load(hnr, j, w), load(hp, j, w), load(dhr, j, w));
        let zero = [F::ZERO; LANES];
        let (mut xr, mut xz, mut xn, mut yn, mut ad) = (zero, zero, zero, zero, zero);
        for l in 0..LANES {
            let (rv, zv, nv, dh) = (ar[l], az[l], an[l], adh[l]);
            let dn_pre = dh * (F::ONE - zv) * (F::ONE - nv * nv);
            let dz_pre = dh * (ap[l] - nv) * zv * (F::ONE - zv);
            let dr_pre = dn_pre * bn[l] * rv * (F::ONE - rv);
            (xr[l], xz[l], xn[l]) = (dr_pre, dz_pre, dn_pre);
            yn[l] = dn_pre * rv;
            ad[l] = dh * zv;
        }
        store(dxr, j, w, &xr);
        store(dxz, j, w, &xz);
        store(dxn, j, w, &xn);
        store(dhgr, j, w, &xr);
        store(dhgz, j, w, &xz);
        store(dhgn, j, w, &yn);
        store(dd, j, w, &ad);
        j += w;
    }
}
