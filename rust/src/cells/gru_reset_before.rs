//! GRU cell with the reset gate applied before the recurrent product (Cho et
//! al. 2014; Keras's `reset_after=False`), gates `r, z, n`:
//!
//! ```text
//! [xr xz xn] = W_ih x + b_ih + b_hh                (N, 3H), from the caller
//! [hr hz]    = W_hr|W_hz h                         (N, 2H), from the caller
//! r = sigmoid(xr + hr)   z = sigmoid(xz + hz)
//! hn = W_hn (r * h)                                (N, H), from the caller
//! n = tanh(xn + hn)
//! h' = (1 - z) * n + z * h
//! ```
//!
//! The step therefore runs in two halves around the second product: `gates_step`
//! (r, z and `r * h`), then `update_step` (n and `h'`). The backward likewise:
//! `backward_update` (the gradients of the z and n pre-activations), then, once
//! the caller has formed `d(r * h) = dn_pre @ W_hn`, `backward_reset`. Since
//! every bias is additive, both biases are folded into the input projection.

use super::rows::{load, store, LANES};
use crate::real::Real;
use crate::simd::multiversion;

multiversion! {
    /// First half of the forward. `gates (N, 3H)`: input projection in, `[r z]`
    /// written over its first `2H` columns; `hg (N, 2H)` = `W_hr|W_hz h_prev`;
    /// `h_prev (N, H)`; writes `rh (N, H)` = `r * h_prev`.
    pub fn gates_step<F: Real>(h: usize, gates: &mut [F], hg: &[F], h_prev: &[F], rh: &mut [F]) {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hg.chunks_exact(2 * h))
            .zip(h_prev.chunks_exact(h))
            .zip(rh.chunks_exact_mut(h));
        for (((g, hgr), hp), rh) in rows {
            let (r, rest) = g.split_at_mut(h); // (H,) each
            let z = &mut rest[..h];
            let (hr, hz) = hgr.split_at(h);
            gates_row(h, r, z, hr, hz, hp, rh);
        }
    }
}

multiversion! {
    /// Second half of the forward. `gates (N, 3H)`: `[r z xn]` in, `[r z n]`
    /// out; `hn (N, H)` = `W_hn (r * h_prev)`; `h_prev (N, H)`; writes `h_next (N, H)`.
    pub fn update_step<F: Real>(h: usize, gates: &mut [F], hn: &[F], h_prev: &[F], h_next: &mut [F]) {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hn.chunks_exact(h))
            .zip(h_prev.chunks_exact(h))
            .zip(h_next.chunks_exact_mut(h));
        for (((g, hnr), hp), hx) in rows {
            let (z, n) = g[h..].split_at_mut(h); // (H,) each
            update_row::<F, false>(h, z, n, hnr, hp, hx);
        }
    }
}

multiversion! {
    /// First half of the backward. `gates (N, 3H)` = `[r z n]`, `h_prev (N, H)`,
    /// `dh (N, H)` gradient of `h'`. Writes the z and n blocks of `dgx (N, 3H)`
    /// (gradient of the input projection), the z block of `drz (N, 2H)`,
    /// `dn (N, H)` (a contiguous copy of the n block, for the product with
    /// `W_hn`) and `dh_direct (N, H)` = `z * dh`. Inactive rows: zeros, and
    /// `dh_direct = dh`.
    pub fn backward_update<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        h_prev: &[F],
        dh: &[F],
        dgx: &mut [F],
        drz: &mut [F],
        dn: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(3 * h)
            .zip(h_prev.chunks_exact(h))
            .zip(dh.chunks_exact(h))
            .zip(dgx.chunks_exact_mut(3 * h))
            .zip(drz.chunks_exact_mut(2 * h))
            .zip(dn.chunks_exact_mut(h))
            .zip(dh_direct.chunks_exact_mut(h));
        for (((((((g, hp), dhr), dx), drz), dn), dd), &on) in rows.zip(active) {
            if !on {
                dx.fill(F::ZERO);
                drz.fill(F::ZERO);
                dn.fill(F::ZERO);
                dd.copy_from_slice(dhr);
                continue;
            }
            let (gz, gn) = g[h..].split_at(h); // (H,) each
            let (dxz, dxn) = dx[h..].split_at_mut(h);
            let dz2 = &mut drz[h..];
            update_back_row::<F, false>(h, gz, gn, hp, dhr, dxz, dxn, dz2, dn, dd);
        }
    }
}

multiversion! {
    /// Second half of the backward. `gates (N, 3H)` = `[r z n]`, `h_prev (N, H)`,
    /// `drh (N, H)` = `dn @ W_hn`, the gradient of `r * h_prev`. Writes the r
    /// blocks of `dgx (N, 3H)` and `drz (N, 2H)`, and adds `r * drh` to
    /// `dh_direct (N, H)`. Inactive rows: zero r gradient, `dh_direct` unchanged.
    pub fn backward_reset<F: Real>(
        h: usize,
        active: &[bool],
        gates: &[F],
        h_prev: &[F],
        drh: &[F],
        dgx: &mut [F],
        drz: &mut [F],
        dh_direct: &mut [F],
    ) {
        let rows = gates
            .chunks_exact(3 * h)
            .zip(h_prev.chunks_exact(h))
            .zip(drh.chunks_exact(h))
            .zip(dgx.chunks_exact_mut(3 * h))
            .zip(drz.chunks_exact_mut(2 * h))
            .zip(dh_direct.chunks_exact_mut(h));
        for ((((((g, hp), drh), dx), drz), dd), &on) in rows.zip(active) {
            if !on {
                dx[..h].fill(F::ZERO);
                drz[..h].fill(F::ZERO);
                continue;
            }
            reset_back_row(h, &g[..h], hp, drh, &mut dx[..h], &mut drz[..h], dd);
        }
    }
}

// Each row function runs [`LANES`] units at a time in local arrays (see
// `cells::rows::LANES`: over the slices, LLVM's overlap check can send a row
// to its scalar loop).

/// `r, z` in place over `xr, xz`, and `r * h_prev`, over one row of `H` units.
#[inline(always)]
fn gates_row<F: Real>(
    h: usize,
    r: &mut [F],
    z: &mut [F],
    hr: &[F],
    hz: &[F],
    hp: &[F],
    rh: &mut [F],
) {
    let mut j = 0;
    while j < h {
        let w = LANES.min(h - j);
        let (mut ar, mut az, br, bz, ap) = (
            load(r, j, w),
            load(z, j, w),
            load(hr, j, w),
            load(hz, j, w),
            load(hp, j, w),
        );
        let mut arh = [F::ZERO; LANES];
        for l in 0..LANES {
            let rv = (ar[l] + br[l]).sigmoid_fast();
            (ar[l], az[l]) = (rv, (az[l] + bz[l]).sigmoid_fast());
            arh[l] = rv * ap[l];
        }
        store(r, j, w, &ar);
        store(z, j, w, &az);
        store(rh, j, w, &arh);
        j += w;
    }
}

/// `n` in place over `xn`, and `h'`, over one row: `h' = (1 - z) * n + z * h`
/// (this GRU), or with `Z_ON_N` `h' = n * z + h * (1 - z)` (the MUTs).
#[inline(always)]
pub(super) fn update_row<F: Real, const Z_ON_N: bool>(
    h: usize,
    z: &[F],
    n: &mut [F],
    hn: &[F],
    hp: &[F],
    hx: &mut [F],
) {
    let mut j = 0;
    while j < h {
        let w = LANES.min(h - j);
        let (az, mut an, bn, ap) = (load(z, j, w), load(n, j, w), load(hn, j, w), load(hp, j, w));
        let mut ax = [F::ZERO; LANES];
        for l in 0..LANES {
            let (on_n, on_h) = weights::<F, Z_ON_N>(az[l]);
            let nv = (an[l] + bn[l]).tanh_fast();
            an[l] = nv;
            ax[l] = on_n * nv + on_h * ap[l];
        }
        store(n, j, w, &an);
        store(hx, j, w, &ax);
        j += w;
    }
}

/// The weights of `n` and of `h_prev` in `h'`: `(1 - z, z)`, or `(z, 1 - z)`
/// with `Z_ON_N`.
#[inline(always)]
fn weights<F: Real, const Z_ON_N: bool>(z: F) -> (F, F) {
    if Z_ON_N {
        (z, F::ONE - z)
    } else {
        (F::ONE - z, z)
    }
}

/// Gradients of the z and n pre-activations and the direct path, one row
/// (`Z_ON_N` as in [`update_row`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn update_back_row<F: Real, const Z_ON_N: bool>(
    h: usize,
    gz: &[F],
    gn: &[F],
    hp: &[F],
    dhr: &[F],
    dxz: &mut [F],
    dxn: &mut [F],
    dz2: &mut [F],
    dn: &mut [F],
    dd: &mut [F],
) {
    let mut j = 0;
    while j < h {
        let w = LANES.min(h - j);
        let (az, an, ap, adh) = (
            load(gz, j, w),
            load(gn, j, w),
            load(hp, j, w),
            load(dhr, j, w),
        );
        let zero = [F::ZERO; LANES];
        let (mut xz, mut xn, mut ad) = (zero, zero, zero);
        for l in 0..LANES {
            let (zv, nv, dh) = (az[l], an[l], adh[l]);
            let (on_n, on_h) = weights::<F, Z_ON_N>(zv);
            // d h' / d z: n - h with z on n, h - n with z on h.
            let gap = if Z_ON_N { nv - ap[l] } else { ap[l] - nv };
            xn[l] = dh * on_n * (F::ONE - nv * nv);
            xz[l] = dh * gap * zv * (F::ONE - zv);
            ad[l] = dh * on_h;
        }
        store(dxz, j, w, &xz);
        store(dxn, j, w, &xn);
        store(dz2, j, w, &xz);
        store(dn, j, w, &xn);
        store(dd, j, w, &ad);
        j += w;
    }
}

/// Gradient of the r pre-activation from `d(r * h_prev)`, one row.
#[inline(always)]
pub(super) fn reset_back_row<F: Real>(
    h: usize,
    gr: &[F],
    hp: &[F],
    drh: &[F],
    dxr: &mut [F],
    dr2: &mut [F],
    dd: &mut [F],
) {
    let mut j = 0;
    while j < h {
        let w = LANES.min(h - j);
        let (ar, ap, arh, mut ad) = (
            load(gr, j, w),
            load(hp, j, w),
            load(drh, j, w),
            load(dd, j, w),
        );
        let mut xr = [F::ZERO; LANES];
        for l in 0..LANES {
            let rv = ar[l];
            xr[l] = arh[l] * ap[l] * rv * (F::ONE - rv);
            ad[l] += rv * arh[l];
        }
        store(dxr, j, w, &xr);
        store(dr2, j, w, &xr);
        store(dd, j, w, &ad);
        j += w;
    }
}
