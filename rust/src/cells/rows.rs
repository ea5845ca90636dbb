//! The loops every cell with a cell state shares (the LSTM and its
//! variants): a step's `(N, G*H)` gate buffer and `(N, H)` states cut into
//! rows, and each row into [`LANES`] units, copied into local arrays for the
//! variant's own math ([`Row`]) and back. In the backward, inactive rows get
//! zero gate gradients and pass `dh` through (`dh_direct`).

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

/// `LANES` units of one row, in registers or on the stack.
pub type Lanes<F> = [F; LANES];

/// [`load`] of units `j .. j + w` of each of `G` blocks.
#[inline(always)]
fn load_blocks<F: Real, S: AsRef<[F]>, const G: usize>(
    blocks: &[S; G],
    j: usize,
    w: usize,
) -> [Lanes<F>; G] {
    let mut a = [[F::ZERO; LANES]; G];
    for k in 0..G {
        a[k] = load(blocks[k].as_ref(), j, w);
    }
    a
}

/// [`store`] of `a[k]` to units `j .. j + w` of each block `k`.
#[inline(always)]
fn store_blocks<F: Real, const G: usize>(
    blocks: &mut [&mut [F]; G],
    j: usize,
    w: usize,
    a: &[Lanes<F>; G],
) {
    for k in 0..G {
        store(blocks[k], j, w, &a[k]);
    }
}

/// A cell's math on [`LANES`] units of one row: the drivers below load every
/// block into local arrays, call these, and store the results (`w` of the
/// lanes are real; the rest are zeros and their results are dropped). The
/// methods are `#[inline(always)]` in every implementation, so they compile
/// into the caller's SIMD twin (a closure or a function passed as a value is
/// compiled on its own, without the twin's target features, and does not
/// vectorise). `j` is the first unit, for per-unit weights a cell keeps.
pub trait Row<F: Real, const G: usize> {
    /// From the pre-activations `gates` and `c_prev`: the activated gates,
    /// `c_next` and `h_next`.
    fn forward(
        &self,
        j: usize,
        w: usize,
        gates: [Lanes<F>; G],
        c_prev: Lanes<F>,
    ) -> ([Lanes<F>; G], Lanes<F>, Lanes<F>);
    /// The gradients of active units, from the activated `gates`, `c_prev`,
    /// `c_next`, `dh` and `dc` (of `c'`): the gradients of the
    /// pre-activations, and of `c`.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        j: usize,
        w: usize,
        gates: [Lanes<F>; G],
        c_prev: Lanes<F>,
        c_next: Lanes<F>,
        dh: Lanes<F>,
        dc: Lanes<F>,
    ) -> ([Lanes<F>; G], Lanes<F>);
}

/// Forward rows: `cell.forward` over each row of `gates (N, G*H)` and the
/// `(N, H)` states, [`LANES`] units at a time.
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
        let mut g = blocks_mut::<F, G>(g, h);
        let mut j = 0;
        while j < h {
            let w = LANES.min(h - j);
            let (a, c, hv) = cell.forward(j, w, load_blocks(&g, j, w), load(cp, j, w));
            store_blocks(&mut g, j, w, &a);
            store(cn, j, w, &c);
            store(hn, j, w, &hv);
            j += w;
        }
    }
}

/// Backward rows over `(N, G*H)` gates and `(N, H)` states: `cell.backward`
/// for each active row, [`LANES`] units at a time; an inactive row's gate
/// gradients are zero, its `dh_direct` is `dh` and its `dc` passes unchanged.
/// Active rows' `dh_direct` is zero.
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
        let (g, mut dg) = (blocks::<F, G>(g, h), blocks_mut::<F, G>(dg, h));
        let mut j = 0;
        while j < h {
            let w = LANES.min(h - j);
            let (acp, acn, adh) = (load(cp, j, w), load(cn, j, w), load(dhr, j, w));
            let a = load_blocks(&g, j, w);
            let (x, adc) = cell.backward(j, w, a, acp, acn, adh, load(dcr, j, w));
            store_blocks(&mut dg, j, w, &x);
            store(dcr, j, w, &adc);
            j += w;
        }
        dd.fill(F::ZERO);
    }
}
