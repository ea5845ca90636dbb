//! The work of one decoding step on a range of unit blocks: the products over
//! the panels and the cell update (the per-unit step of `cells`), fused,
//! compiled per SIMD level.
//!
//! Each `(row, block)` pair is computed by exactly one call, in a fixed order of
//! operations, so how blocks are spread over threads never changes a result.

use crate::cells::{gru, lstm, rnn};
use crate::mode::Mode;
use crate::real::Real;
use crate::shared::SharedMut;
use crate::simd::Level;

use crate::panel::stored::Panels;
use crate::panel::{row_groups, width, Layout};
use crate::simd::dispatch;

/// Where a layer's input comes from.
pub enum Source<'a, R> {
    /// Rows of a per-symbol table `(V, blocks, P)` that already hold the input
    /// projection and the biases; no input product.
    Table(&'a [R]),
    /// Embedding rows `(V, K)` picked by symbol, times the layer's `W_ih` panels.
    Embedding(&'a [R]),
    /// The previous layer's new state `(N, K)`, times the layer's `W_ih` panels.
    Rows(&'a [R]),
}

/// One layer of one step: what is read and where the new state goes.
pub struct LayerTask<'a, R> {
    pub mode: Mode,
    pub layout: Layout,
    pub ids: &'a [usize],
    pub source: Source<'a, R>,
    /// Input features `K` (0 with a table).
    pub k: usize,
    /// `W_ih` panels `(blocks, K, P)`; empty with a table.
    pub w_ih: &'a Panels<R>,
    /// `W_hh` panels `(blocks, H, P)`.
    pub w_hh: &'a Panels<R>,
    /// `(blocks, P)`: the biases added to the input side (unused with a table).
    pub bias_x: &'a [R],
    /// `(blocks, P)`: GRU's `b_hn` (zero for `r`, `z`); empty for other cells.
    pub bias_h: &'a [R],
    /// `h (N, H)` and, for the LSTM, `c (N, H)` before the step.
    pub h: &'a [R],
    pub c: Option<&'a [R]>,
    /// The same after the step; each call writes only its blocks' units.
    pub h_out: &'a SharedMut<'a, R>,
    pub c_out: Option<&'a SharedMut<'a, R>>,
}

/// The readout of one step: `logits (N, blocks * P) = h (N, H) W^T + b`.
pub struct HeadTask<'a, R> {
    pub layout: Layout,
    pub h: &'a [R],
    pub k: usize,
    /// Panels `(blocks, K, P)`.
    pub w: &'a Panels<R>,
    pub b: &'a [R],
    pub logits: &'a SharedMut<'a, R>,
    pub rows: usize,
}

/// Blocks `b0..b1` of a layer, for every row.
pub fn layer<R: Real>(level: Level, t: &LayerTask<'_, R>, b0: usize, b1: usize) {
    dispatch!(
        level,
        avx512 => layer_avx512(t, b0, b1),
        avx2 => layer_avx2(t, b0, b1),
        scalar => layer_body::<R, 1, 1, false>(t, b0, b1)
    )
}

/// Blocks `b0..b1` of the readout, for every row.
pub fn head<R: Real>(level: Level, t: &HeadTask<'_, R>, b0: usize, b1: usize) {
    dispatch!(
        level,
        avx512 => head_avx512(t, b0, b1),
        avx2 => head_avx2(t, b0, b1),
        scalar => head_body::<R, 1, 1, false>(t, b0, b1)
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
unsafe fn layer_avx512<R: Real>(t: &LayerTask<'_, R>, b0: usize, b1: usize) {
    // 6 rows x 4 zmm accumulators + 4 panel loads + 1 broadcast: 29 of 32 registers.
    layer_body::<R, 6, 1, true>(t, b0, b1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn layer_avx2<R: Real>(t: &LayerTask<'_, R>, b0: usize, b1: usize) {
    // 6 rows x 2 ymm accumulators per pass of a quarter panel: 12 of 16 registers.
    layer_body::<R, 6, 4, true>(t, b0, b1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
unsafe fn head_avx512<R: Real>(t: &HeadTask<'_, R>, b0: usize, b1: usize) {
    head_body::<R, 6, 1, true>(t, b0, b1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn head_avx2<R: Real>(t: &HeadTask<'_, R>, b0: usize, b1: usize) {
    head_body::<R, 6, 4, true>(t, b0, b1)
}

/// Units per pass of the pointwise code: fixed-length loops over `CHUNK`
/// lanes vectorise (a block's unit count is only known at run time).
const CHUNK: usize = 16;

/// `src[at..at + w]` in a `CHUNK`-lane array, zeros after `w`.
#[inline(always)]
fn chunk<R: Real>(src: &[R], at: usize, w: usize) -> [R; CHUNK] {
    let mut out = [R::ZERO; CHUNK];
    out[..w].copy_from_slice(&src[at..at + w]);
    out
}

#[inline(always)]
fn layer_body<R: Real, const MAXR: usize, const SPLIT: usize, const FUSED: bool>(
    t: &LayerTask<'_, R>,
    b0: usize,
    b1: usize,
) {
    match (width::<R>(), SPLIT) {
        (64, 1) => layer_blocks::<R, 64, 64, MAXR, FUSED>(t, b0, b1),
        (64, _) => layer_blocks::<R, 64, 16, MAXR, FUSED>(t, b0, b1),
        (_, 1) => layer_blocks::<R, 32, 32, MAXR, FUSED>(t, b0, b1),
        _ => layer_blocks::<R, 32, 8, MAXR, FUSED>(t, b0, b1),
    }
}

#[inline(always)]
fn head_body<R: Real, const MAXR: usize, const SPLIT: usize, const FUSED: bool>(
    t: &HeadTask<'_, R>,
    b0: usize,
    b1: usize,
) {
    match (width::<R>(), SPLIT) {
        (64, 1) => head_blocks::<R, 64, 64, MAXR, FUSED>(t, b0, b1),
        (64, _) => head_blocks::<R, 64, 16, MAXR, FUSED>(t, b0, b1),
        (_, 1) => head_blocks::<R, 32, 32, MAXR, FUSED>(t, b0, b1),
        _ => head_blocks::<R, 32, 8, MAXR, FUSED>(t, b0, b1),
    }
}

#[inline(always)]
fn layer_blocks<R: Real, const P: usize, const Q: usize, const MAXR: usize, const FUSED: bool>(
    t: &LayerTask<'_, R>,
    b0: usize,
    b1: usize,
) {
    for b in b0..b1 {
        row_groups!(
            t.ids.len(),
            MAXR,
            |NR, r0| layer_group::<R, P, Q, NR, FUSED>(t, b, r0)
        );
    }
}

#[inline(always)]
fn head_blocks<R: Real, const P: usize, const Q: usize, const MAXR: usize, const FUSED: bool>(
    t: &HeadTask<'_, R>,
    b0: usize,
    b1: usize,
) {
    for b in b0..b1 {
        row_groups!(t.rows, MAXR, |NR, r0| head_group::<R, P, Q, NR, FUSED>(
            t, b, r0
        ));
    }
}

#[inline(always)]
fn head_group<R: Real, const P: usize, const Q: usize, const NR: usize, const FUSED: bool>(
    t: &HeadTask<'_, R>,
    b: usize,
    r0: usize,
) {
    let k = t.k;
    let bias: &[R; P] = t.b[b * P..][..P].try_into().expect("P bias columns");
    let mut acc = [*bias; NR];
    let xs: [&[R]; NR] = std::array::from_fn(|r| &t.h[(r0 + r) * k..][..k]);
    t.w.accumulate::<P, Q, NR, FUSED>(b, xs, &mut acc);
    let stride = t.layout.blocks * P;
    for (r, a) in acc.iter().enumerate() {
        // SAFETY: each (row, block) is written by one call only.
        let out = unsafe { t.logits.piece((r0 + r) * stride + b * P, P) };
        out.copy_from_slice(a);
    }
}

#[inline(always)]
fn layer_group<R: Real, const P: usize, const Q: usize, const NR: usize, const FUSED: bool>(
    t: &LayerTask<'_, R>,
    b: usize,
    r0: usize,
) {
    let lay = t.layout;
    let hsz = lay.units;
    let rows: [usize; NR] = std::array::from_fn(|r| r0 + r);
    let mut acc = [[R::ZERO; P]; NR];
    match t.source {
        Source::Table(table) => {
            for (a, &row) in acc.iter_mut().zip(&rows) {
                a.copy_from_slice(&table[(t.ids[row] * lay.blocks + b) * P..][..P]);
            }
        }
        Source::Embedding(rows_of) | Source::Rows(rows_of) => {
            let by_symbol = matches!(t.source, Source::Embedding(_));
            for a in acc.iter_mut() {
                a.copy_from_slice(&t.bias_x[b * P..][..P]);
            }
            let xs: [&[R]; NR] = std::array::from_fn(|r| {
                let at = if by_symbol { t.ids[rows[r]] } else { rows[r] };
                &rows_of[at * t.k..][..t.k]
            });
            t.w_ih.accumulate::<P, Q, NR, FUSED>(b, xs, &mut acc);
        }
    }
    let hs: [&[R]; NR] = std::array::from_fn(|r| &t.h[rows[r] * hsz..][..hsz]);
    let (start, count) = lay.block_units(b);
    let u = lay.unit;
    if t.mode == Mode::Gru {
        let bias: &[R; P] = t.bias_h[b * P..][..P].try_into().expect("P bias columns");
        let mut acc_h = [*bias; NR];
        t.w_hh.accumulate::<P, Q, NR, FUSED>(b, hs, &mut acc_h);
        for r in 0..NR {
            let (ax, ah) = (&acc[r], &acc_h[r]);
            let hp = &hs[r][start..start + count];
            // SAFETY: each (row, block) is written by one call only.
            let out = unsafe { t.h_out.piece(rows[r] * hsz + start, count) };
            for j0 in (0..count).step_by(CHUNK) {
                let w = CHUNK.min(count - j0);
                let at = |src: &[R], off: usize| chunk(src, off + j0, w);
                let (xr, xz, xn) = (at(ax, 0), at(ax, u), at(ax, 2 * u));
                let (hr, hz, hn) = (at(ah, 0), at(ah, u), at(ah, 2 * u));
                let hprev = at(hp, 0);
                let mut res = [R::ZERO; CHUNK];
                for l in 0..CHUNK {
                    res[l] = gru::unit(xr[l], xz[l], xn[l], hr[l], hz[l], hn[l], hprev[l]).1;
                }
                out[j0..j0 + w].copy_from_slice(&res[..w]);
            }
        }
        return;
    }
    t.w_hh.accumulate::<P, Q, NR, FUSED>(b, hs, &mut acc);
    for r in 0..NR {
        let a = &acc[r];
        // SAFETY: each (row, block) is written by one call only.
        let out = unsafe { t.h_out.piece(rows[r] * hsz + start, count) };
        match t.mode {
            Mode::Lstm => {
                let (c, c_out) = match (t.c, t.c_out) {
                    (Some(c), Some(c_out)) => (c, c_out),
                    _ => unreachable!("an LSTM step has a cell state"),
                };
                let cp = &c[rows[r] * hsz + start..][..count];
                // SAFETY: as above.
                let cn = unsafe { c_out.piece(rows[r] * hsz + start, count) };
                for j0 in (0..count).step_by(CHUNK) {
                    let w = CHUNK.min(count - j0);
                    let at = |src: &[R], off: usize| chunk(src, off + j0, w);
                    let (ai, af, ag, ao) = (at(a, 0), at(a, u), at(a, 2 * u), at(a, 3 * u));
                    let cprev = at(cp, 0);
                    let (mut hres, mut cres) = ([R::ZERO; CHUNK], [R::ZERO; CHUNK]);
                    for l in 0..CHUNK {
                        let unit = lstm::unit(ai[l], af[l], ag[l], ao[l], cprev[l]);
                        (cres[l], hres[l]) = (unit.c, unit.h);
                    }
                    cn[j0..j0 + w].copy_from_slice(&cres[..w]);
                    out[j0..j0 + w].copy_from_slice(&hres[..w]);
                }
            }
            Mode::RnnTanh => {
                for j0 in (0..count).step_by(CHUNK) {
                    let w = CHUNK.min(count - j0);
                    let mut res = chunk(a, j0, w);
                    for v in res.iter_mut() {
                        *v = rnn::unit(false, *v);
                    }
                    out[j0..j0 + w].copy_from_slice(&res[..w]);
                }
            }
            Mode::RnnRelu => {
                for j in 0..count {
                    out[j] = rnn::unit(true, a[j]);
                }
            }
            Mode::Gru => unreachable!("handled above"),
            _ => {
                unreachable!("rejected by Stack::new")
            }
        }
    }
}
