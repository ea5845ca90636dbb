//! Backpropagation through time for one [`decoder_forward`](super::decoder_forward)
//! call: the per-step attention and cell backward in reverse order, then `dy`,
//! `dw_ih`, the input bias and the key projection's gradients once.

use super::attention::{attend_backward, project_keys_backward, BackScratch, Kind, StepGrads};
use super::decoder::context_weights;
use super::decoder::{DecoderCache, DecoderGrads, DecoderSpec, DecoderWeights};
use crate::buffer::zeros;
use crate::cells::{gru, lstm, rnn};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul_tiled, MatRef};
use crate::mode::Mode;
use crate::parallel;
use crate::real::Real;
use crate::sequence::recurrent::Recurrent;
use crate::sequence::{check_finite, column_sums};
use crate::simd;

/// Gradients of `sum(d_output * output) + sum(d_weights * weights) +
/// sum(d_h_n * h_n) + sum(d_c_n * c_n)` for the forward call that produced
/// `cache`. `d_output (T, N, H + M)`; the others `None` (zero) or `d_weights
/// (T, N, S)`, `d_h_n`, `d_c_n (N, H)`.
///
/// The time loop runs on one of the pool's threads (see `decoder_forward`).
#[allow(clippy::too_many_arguments)]
pub fn decoder_backward<F: Real>(
    spec: &DecoderSpec<'_>,
    w: &DecoderWeights<'_, F>,
    cache: &DecoderCache<F>,
    d_output: &[F],
    d_weights: Option<&[F]>,
    d_h_n: Option<&[F]>,
    d_c_n: Option<&[F]>,
) -> Result<DecoderGrads<F>> {
    parallel::install(|| backward_in_pool(spec, w, cache, d_output, d_weights, d_h_n, d_c_n))
}

#[allow(clippy::too_many_arguments)]
fn backward_in_pool<F: Real>(
    spec: &DecoderSpec<'_>,
    w: &DecoderWeights<'_, F>,
    cache: &DecoderCache<F>,
    d_output: &[F],
    d_weights: Option<&[F]>,
    d_h_n: Option<&[F]>,
    d_c_n: Option<&[F]>,
) -> Result<DecoderGrads<F>> {
    let lengths = spec.check(w)?;
    let (t_len, n, s, e, h, m, a) = (spec.t, spec.n, spec.s, spec.e, spec.h, spec.m, spec.a);
    let (gh, nh, em) = (spec.mode.gates() * h, n * h, e + m);
    let mode = spec.mode;
    let separate = mode.separate_recurrent_projection();
    let additive = spec.kind == Kind::Additive;
    if lengths != cache.lengths
        || cache.gates.len() != t_len * n * gh
        || cache.memory.len() != n * s * m
        || cache.y.len() != t_len * n * e
        || cache.qp.len() != if additive { t_len * n * a } else { 0 }
    {
        return Err(RnnError::argument(
            "cache",
            "was made by a call of other sizes",
        ));
    }
    super::decoder::len("d_output", d_output, t_len * n * (h + m))?;
    check_finite("d_output", d_output)?;
    for (name, arr, want) in [
        ("d_weights", d_weights, t_len * n * s),
        ("d_h_n", d_h_n, nh),
        ("d_c_n", d_c_n, nh),
    ] {
        if let Some(arr) = arr {
            super::decoder::len(name, arr, want)?;
            check_finite(name, arr)?;
        }
    }
    if d_c_n.is_some() && !mode.has_cell_state() {
        return Err(RnnError::argument("d_c_n", "only lstm has a cell state"));
    }
    let level = simd::best_level();
    let z = spec.sizes();
    let active = vec![true; n];

    let mut dh = match d_h_n {
        Some(g) => g.to_vec(),
        None => zeros::<F>(nh, "dh")?,
    }; // (N, H)
    let mut dc = if mode.has_cell_state() {
        Some(match d_c_n {
            Some(g) => g.to_vec(),
            None => zeros::<F>(nh, "dc")?,
        })
    } else {
        None
    }; // (N, H)
    let mut dctx = zeros::<F>(n * m, "dcontext")?; // (N, M)
    let mut dgates = zeros::<F>(t_len * n * gh, "dgates")?; // (T, N, G*H) of the input projection
                                                            // (T, N, 3H), GRU: the gradients of the recurrent projection, kept apart.
    let mut dgh_all = zeros::<F>(if separate { t_len * n * gh } else { 0 }, "dgates")?;
    let mut dh_t = zeros::<F>(nh, "dh")?;
    let mut dh_direct = zeros::<F>(nh, "dh")?;
    let mut dquery = zeros::<F>(nh, "dquery")?;
    let mut dscore = zeros::<F>(n * s, "dscore")?;
    let mut dqp = zeros::<F>(n * a, "dquery")?;
    let mut e_rows = zeros::<F>(if additive { n * a } else { 0 }, "attention")?; // (N, A)
    let mut dv_rows = zeros::<F>(if additive { n * a } else { 0 }, "dv")?; // (N, A)
    let mut dkeys = zeros::<F>(n * s * a, "dkeys")?;
    let mut dmemory = zeros::<F>(n * s * m, "dmemory")?;
    let mut dw_query = zeros::<F>(if additive { a * h } else { 0 }, "dw_query")?;
    let mut dv = zeros::<F>(if additive { a } else { 0 }, "dv")?;
    // The per-step products `dg @ W_hh` and `dg @ W_ctx` over weights prepared
    // once for all T steps, as in the forward.
    let w_ctx = context_weights(w.w_ih, gh, e, m)?; // (G*H, M)
    let ctx_t = Recurrent::transposed(&w_ctx, gh, m, t_len, n)?;
    let hh_t = Recurrent::transposed(w.w_hh, gh, h, t_len, n)?;
    let wide = parallel::plan(n, h).1;

    for t in (0..t_len).rev() {
        let d_out = &d_output[t * n * (h + m)..][..n * (h + m)];
        for (b, row) in d_out.chunks_exact(h + m).enumerate() {
            for (d, &g) in dctx[b * m..][..m].iter_mut().zip(&row[h..]) {
                *d += g;
            }
        }
        let h_next = &cache.states[(t + 1) * nh..][..nh];
        let grads = StepGrads {
            dquery: &mut dquery,
            dkeys: &mut dkeys,
            dmemory: &mut dmemory,
            dw_query: &mut dw_query,
            dv: &mut dv,
        };
        attend_backward(
            spec.kind,
            z,
            &dctx,
            d_weights.map(|d| &d[t * n * s..][..n * s]),
            h_next,
            &cache.keys,
            &cache.memory,
            &lengths,
            &cache.weights[t * n * s..][..n * s],
            if additive {
                &cache.qp[t * n * a..][..n * a]
            } else {
                &[]
            },
            &w.attn,
            BackScratch {
                dscore: &mut dscore,
                dqp: &mut dqp,
                e: &mut e_rows,
                dv: &mut dv_rows,
            },
            grads,
        );
        for (b, row) in d_out.chunks_exact(h + m).enumerate() {
            for j in 0..h {
                dh_t[b * h + j] = dh[b * h + j] + row[j] + dquery[b * h + j];
            }
        }
        let g_t = &cache.gates[t * n * gh..][..n * gh];
        let dg_t = &mut dgates[t * n * gh..][..n * gh];
        let h_prev = &cache.states[t * nh..][..nh];
        let dgh = if separate {
            &mut dgh_all[t * n * gh..][..n * gh]
        } else {
            &mut [][..]
        };
        match mode {
            Mode::RnnTanh | Mode::RnnRelu => rnn::backward_step(
                level,
                h,
                mode == Mode::RnnRelu,
                &active,
                g_t,
                &dh_t,
                dg_t,
                &mut dh_direct,
            ),
            Mode::Lstm => {
                let cells = cache.cells.as_deref().unwrap_or(&[]);
                super::decoder::len("cache", cells, (t_len + 1) * nh)?;
                let (c_prev, c_next) = (&cells[t * nh..][..nh], &cells[(t + 1) * nh..][..nh]);
                let dc = dc.as_mut().expect("lstm has a cell gradient");
                lstm::backward_step(
                    level,
                    h,
                    &active,
                    g_t,
                    c_prev,
                    c_next,
                    &dh_t,
                    dc,
                    dg_t,
                    &mut dh_direct,
                );
            }
            Mode::Gru => {
                let hn = cache.hn.as_deref().unwrap_or(&[]);
                super::decoder::len("cache", hn, t_len * nh)?;
                let hn_t = &hn[t * nh..][..nh];
                gru::backward_step(
                    level,
                    h,
                    &active,
                    g_t,
                    hn_t,
                    h_prev,
                    &dh_t,
                    dg_t,
                    dgh,
                    &mut dh_direct,
                );
            }
            _ => {
                unreachable!("rejected by DecoderSpec::check")
            }
        }
        let dg_h: &[F] = if separate { dgh } else { dg_t };
        // dh_prev = dh_direct + dg_h @ w_hh (dw_hh after the loop, for all steps).
        dh.copy_from_slice(&dh_direct);
        hh_t.mul(level, &mut dh, dg_h, n, true, wide);
        // The context half of this step's input goes to context_{t-1}.
        ctx_t.mul(level, &mut dctx, dg_t, n, false, wide);
    }

    // The products over all steps at once, in parallel: each output tile is
    // one call over all T * N rows, whatever the thread count.
    let rows = t_len * n;
    let dg_h_all: &[F] = if separate { &dgh_all } else { &dgates };
    let mut dw_hh = zeros::<F>(gh * h, "dw_hh")?; // (G*H, H), against h_{t-1}
    matmul_tiled(
        &mut dw_hh,
        MatRef::row_major(dg_h_all, rows, gh).t(),
        MatRef::row_major(&cache.states[..rows * h], rows, h),
        false,
    );
    let mut dy = zeros::<F>(rows * e, "dy")?; // (T, N, E)
    matmul_tiled(
        &mut dy,
        MatRef::row_major(&dgates, rows, gh),
        MatRef::strided(w.w_ih, gh, e, em, 1),
        false,
    );
    let mut dw_y = zeros::<F>(gh * e, "dw_ih")?; // (G*H, E)
    matmul_tiled(
        &mut dw_y,
        MatRef::row_major(&dgates, rows, gh).t(),
        MatRef::row_major(&cache.y, rows, e),
        false,
    );
    let mut dw_c = zeros::<F>(gh * m, "dw_ih")?; // (G*H, M), against context_{t-1}
    matmul_tiled(
        &mut dw_c,
        MatRef::row_major(&dgates, rows, gh).t(),
        MatRef::row_major(&cache.contexts[..rows * m], rows, m),
        false,
    );
    let mut dw_ih = zeros::<F>(gh * em, "dw_ih")?; // (G*H, E + M)
    for (j, row) in dw_ih.chunks_exact_mut(em).enumerate() {
        row[..e].copy_from_slice(&dw_y[j * e..][..e]);
        row[e..].copy_from_slice(&dw_c[j * m..][..m]);
    }
    let (db_ih, db_hh) = if w.b_ih.is_some() {
        let (mut db_ih, mut db_hh) = (zeros::<F>(gh, "db_ih")?, zeros::<F>(gh, "db_hh")?);
        column_sums(&dgates, gh, &mut db_ih);
        column_sums(dg_h_all, gh, &mut db_hh);
        (Some(db_ih), Some(db_hh))
    } else {
        (None, None)
    };
    let dw_key = project_keys_backward(spec.kind, z, &dkeys, &cache.memory, &w.attn, &mut dmemory);
    let some = |v: Vec<F>| if v.is_empty() { None } else { Some(v) };
    Ok(DecoderGrads {
        dy,
        dmemory,
        dh0: dh,
        dcontext0: dctx,
        dc0: dc,
        dw_ih,
        dw_hh,
        db_ih,
        db_hh,
        dw_query: some(dw_query),
        dw_key: some(dw_key),
        dv: some(dv),
    })
}
