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

use crate::real::Real;
use crate::simd::{dispatch_at, Level};

/// Forward. `gates (N, 3H)`: input projection in, `[r z n]` out; `hg (N, 3H)`
/// recurrent projection; `h_prev (N, H)`; writes `hn (N, H)` and `h_next (N, H)`.
pub fn forward_step<F: Real>(
    level: Level,
    h: usize,
    gates: &mut [F],
    hg: &[F],
    h_prev: &[F],
    hn: &mut [F],
    h_next: &mut [F],
) {
    dispatch_at(level, || {
        let rows = gates
            .chunks_exact_mut(3 * h)
            .zip(hg.chunks_exact(3 * h))
            .zip(h_prev.chunks_exact(h))
            .zip(hn.chunks_exact_mut(h))
            .zip(h_next.chunks_exact_mut(h));
        for ((((g, hgr), hp), hnr), hx) in rows {
            let (r, rest) = g.split_at_mut(h); // (H,) each
            let (z, n) = rest.split_at_mut(h);
            let (hr, rest) = hgr.split_at(h);
            let (hz, hnn) = rest.split_at(h);
            let gates = r.iter_mut().zip(z.iter_mut()).zip(n.iter_mut());
            let rec = hr.iter().zip(hz).zip(hnn);
            let outs = hp.iter().zip(hnr.iter_mut()).zip(hx.iter_mut());
            for ((((r, z), n), ((&hr, &hz), &hnv)), ((&hp, hn_out), hx)) in gates.zip(rec).zip(outs)
            {
                let rv = (*r + hr).sigmoid_fast();
                let zv = (*z + hz).sigmoid_fast();
                let nv = (*n + rv * hnv).tanh_fast();
                (*r, *z, *n) = (rv, zv, nv);
                *hn_out = hnv;
                *hx = (F::ONE - zv) * nv + zv * hp;
            }
        }
    })
}

/// Backward. `gates (N, 3H)` = `[r z n]`, `hn (N, H)`, `h_prev (N, H)`, `dh (N, H)`
/// gradient of `h'`. Writes `dgx (N, 3H)` (gradient of the input projection),
/// `dgh (N, 3H)` (of the recurrent projection) and `dh_direct (N, H)` = `z * dh`
/// for active rows (`dh` for inactive ones).
#[allow(clippy::too_many_arguments)]
pub fn backward_step<F: Real>(
    level: Level,
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
    dispatch_at(level, || {
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
            let acts = gr.iter().zip(gz).zip(gn);
            let ins = hnr.iter().zip(hp).zip(dhr).zip(dd.iter_mut());
            let outs = dxr.iter_mut().zip(dxz.iter_mut()).zip(dxn.iter_mut());
            let outs_h = dhgr.iter_mut().zip(dhgz.iter_mut()).zip(dhgn.iter_mut());
            for (
                ((((&rv, &zv), &nv), (((&hnv, &hp), &dh), dd)), ((dxr, dxz), dxn)),
                ((dhr, dhz), dhn),
            ) in acts.zip(ins).zip(outs).zip(outs_h)
            {
                let dn_pre = dh * (F::ONE - zv) * (F::ONE - nv * nv);
                let dz_pre = dh * (hp - nv) * zv * (F::ONE - zv);
                let dr_pre = dn_pre * hnv * rv * (F::ONE - rv);
                (*dxr, *dxz, *dxn) = (dr_pre, dz_pre, dn_pre);
                (*dhr, *dhz, *dhn) = (dr_pre, dz_pre, dn_pre * rv);
                *dd = dh * zv;
            }
        }
    })
}
