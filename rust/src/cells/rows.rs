//! The row loops every cell with a cell state shares (the LSTM and its
//! variants): a step's `(N, G*H)` gate buffer and `(N, H)` states cut into
//! rows, each handed to the variant's own row function. In the backward,
//! inactive rows get zero gate gradients and pass `dh` through (`dh_direct`).

use crate::real::Real;

/// `gates` split into its `G` gate blocks of `h` (one row).
#[inline(always)]
pub fn blocks<F, const G: usize>(gates: &[F], h: usize) -> [&[F]; G] {
    std::array::from_fn(|k| &gates[k * h..(k + 1) * h])
}

/// [`blocks`] of a mutable row.
#[inline(always)]
pub fn blocks_mut<F, const G: usize>(gates: &mut [F], h: usize) -> [&mut [F]; G] {
    let mut rest = gates;
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(h);
        rest = tail;
        head
    })
}

/// Units a row function computes at a time, in local arrays: [`load`] copies
/// them in, the math runs on the copies, [`store`] writes them back. Written
/// over the row's slices directly, the loop reads and writes several blocks
/// of one buffer, and LLVM guards its vector form with a check that the
/// slices do not overlap; that check, hoisted over all rows, failed and sent
/// every row through the scalar loop. Local arrays cannot overlap.
pub const LANES: usize = 16;

/// Units `j .. j + w` of `s` (`w <= LANES`), zero past `w`.
#[inline(always)]
pub fn load<F: Real>(s: &[F], j: usize, w: usize) -> [F; LANES] {
    if w == LANES {
        s[j..j + LANES].try_into().expect("LANES units")
    } else {
        let mut a = [F::ZERO; LANES];
        a[..w].copy_from_slice(&s[j..j + w]);
        a
    }
}

/// Write the first `w` of `a` to units `j .. j + w` of `d`.
#[inline(always)]
pub fn store<F: Real>(d: &mut [F], j: usize, w: usize, a: &[F; LANES]) {
    if w == LANES {
        d[j..j + LANES].copy_from_slice(a);
    } else {
        d[j..j + w].copy_from_slice(&a[..w]);
    }
}

/// A cell's math on one row of `G` gate blocks of `h` units. The methods are
/// `#[inline(always)]` in every implementation, so they compile into the
/// caller's SIMD twin (a closure or a function passed as a value is compiled
/// on its own, without the twin's target features, and does not vectorise).
pub trait Row<F: Real, const G: usize> {
    /// Pre-activations in `gates`, activations out; writes `c_next`, `h_next`.
    fn forward(
        &self,
        h: usize,
        gates: [&mut [F]; G],
        c_prev: &[F],
        c_next: &mut [F],
        h_next: &mut [F],
    );
    /// The gradients of one active row.
    fn backward(&self, h: usize, r: BackRow<'_, F, G>);
}

/// Forward rows: `cell.forward` for each row of `gates (N, G*H)` and the
/// `(N, H)` states.
#[inline(always)]
pub fn forward<F: Real, const G: usize>(
    h: usize,
    gates: &mut [F],
    c_prev: &[F],
    c_next: &mut [F],
    h_next: &mut [F],
    cell: &impl Row<F, G>,
) {
    let rows = gates
        .chunks_exact_mut(G * h)
        .zip(c_prev.chunks_exact(h))
        .zip(c_next.chunks_exact_mut(h))
        .zip(h_next.chunks_exact_mut(h));
    for (((g, cp), cn), hn) in rows {
        cell.forward(h, blocks_mut(g, h), cp, cn, hn);
    }
}

/// What a backward row function is given: the activated gates, `c_prev`,
/// `c_next`, `dh` and `dc` (gradient of `c'` in, of `c` out), and the gate
/// gradients to write.
pub struct BackRow<'a, F, const G: usize> {
    pub gates: [&'a [F]; G],
    pub c_prev: &'a [F],
    pub c_next: &'a [F],
    pub dh: &'a [F],
    pub dc: &'a mut [F],
    pub dgates: [&'a mut [F]; G],
}

/// Backward rows over `(N, G*H)` gates and `(N, H)` states: `cell.backward`
/// for each active row; an inactive row's gate gradients are zero, its
/// `dh_direct` is `dh` and its `dc` passes unchanged. Active rows'
/// `dh_direct` is zero.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn backward<F: Real, const G: usize>(
    h: usize,
    active: &[bool],
    gates: &[F],
    c_prev: &[F],
    c_next: &[F],
    dh: &[F],
    dc: &mut [F],
    dgates: &mut [F],
    dh_direct: &mut [F],
    cell: &impl Row<F, G>,
) {
    let rows = gates
        .chunks_exact(G * h)
        .zip(c_prev.chunks_exact(h))
        .zip(c_next.chunks_exact(h))
        .zip(dh.chunks_exact(h))
        .zip(dc.chunks_exact_mut(h))
        .zip(dgates.chunks_exact_mut(G * h))
        .zip(dh_direct.chunks_exact_mut(h));
    for (((((((g, cp), cn), dhr), dcr), dg), dd), &on) in rows.zip(active) {
        if !on {
            dg.fill(F::ZERO);
            dd.copy_from_slice(dhr);
            continue;
        }
        let r = BackRow {
            gates: blocks(g, h),
            c_prev: cp,
            c_next: cn,
            dh: dhr,
            dc: dcr,
            dgates: blocks_mut(dg, h),
        };
        cell.backward(h, r);
        dd.fill(F::ZERO);
    }
}
