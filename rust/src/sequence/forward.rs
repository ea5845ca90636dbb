//! Sequence forward: the input projection as tiled GEMMs, then the time loop,
//! one batch shard per task.

use super::noise::{self, Noise};
use super::recurrent::{Recurrent, RecurrentWeights};
use super::spec::{check_finite, check_len, Cache, NormCache, Spec, Weights};
use super::steps::{step_projection, Places, StepInput};
use crate::buffer::zeros;
use crate::cells::lstm_ln::{self, CellNorm};
use crate::cells::{
    gru, gru_reset_before, layer_norm, lstm, lstm_cifg, lstm_peephole, mut_cells, rnn,
};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul_weights, MatRef};
use crate::mode::Mode;
use crate::parallel;
use crate::real::Real;
use crate::shared::SharedMut;
use crate::simd::{self, Level};

/// What a forward call returns.
#[derive(Debug)]
pub struct Forward<F> {
    /// `(T, N, H)` (`(T, N, P)` with a projection), zero at steps past a
    /// sequence's length.
    pub output: Vec<F>,
    /// `(N, H)` (`(N, P)`) final hidden state.
    pub h_n: Vec<F>,
    /// `(N, H)` final cell state (LSTM only).
    pub c_n: Option<Vec<F>>,
    /// Saved for the backward.
    pub cache: Cache<F>,
}

/// The buffers every shard writes its own rows of.
struct Shared<'a, F> {
    gates: SharedMut<'a, F>,             // (T, N, G*H)
    states: SharedMut<'a, F>,            // (T+1, N, H), (T+1, N, P) with a projection
    cells: Option<SharedMut<'a, F>>,     // (T+1, N, H), LSTM
    hn: Option<SharedMut<'a, F>>,        // (T, N, H), GRU: W_hn h + b_hn, or r * h
    proj: Option<SharedMut<'a, F>>,      // (T, N, H), o * tanh(c) before the projection
    output: SharedMut<'a, F>,            // (T, N, H), (T, N, P) with a projection
    cells_new: Option<SharedMut<'a, F>>, // (T, N, H), c~ before the cell's zoneout
    norm: Option<NormShared<'a, F>>,     // layer normalisation
}

/// The layer-normalised cell's buffers that the time loop writes.
struct NormShared<'a, F> {
    h_hat: SharedMut<'a, F>, // (T, N, G*H)
    c_hat: SharedMut<'a, F>, // (T, N, H)
    rstd: SharedMut<'a, F>,  // (3, T, N)
}

/// Run one direction of one layer over `x (T, N, D)` from `h0 (N, H)` (and
/// `c0 (N, H)` for LSTM). With a projection (`spec.dims.p = P > 0`, LSTM
/// only) `h0` is `(N, P)`, and each step's `h = (o * tanh(c)) @ W_hr^T` is
/// what the recurrent product of the next step reads.
///
/// Errors name the argument: shapes that disagree with `spec.dims`, NaN or
/// infinity in any input or parameter. Values that overflow inside the
/// recurrence (a ReLU cell with large weights) are a result, not an error, as in
/// PyTorch.
pub fn forward<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    h0: &[F],
    c0: Option<&[F]>,
    w: &Weights<'_, F>,
) -> Result<Forward<F>> {
    forward_with(spec, x, h0, c0, w, &Noise::none())
}

/// [`forward`] with dropout inside the recurrence ([`Noise`]); the backward
/// must be given the same `noise`.
///
/// The whole call runs on the pool ([`parallel::install`]): its parallel
/// passes (scans, fills, the products, the shards) are then handed among the
/// pool's threads, not each to the pool and back to the caller's thread.
pub fn forward_with<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    h0: &[F],
    c0: Option<&[F]>,
    w: &Weights<'_, F>,
    noise: &Noise<'_, F>,
) -> Result<Forward<F>> {
    parallel::install(|| forward_on_pool(spec, x, h0, c0, w, noise, true))
}

/// What an inference call returns: [`Forward`] without the cache.
#[derive(Debug)]
pub struct Inference<F> {
    /// `(T, N, H)` (`(T, N, P)` with a projection), zero at steps past a
    /// sequence's length.
    pub output: Vec<F>,
    /// `(N, H)` (`(N, P)`) final hidden state.
    pub h_n: Vec<F>,
    /// `(N, H)` final cell state (LSTM only).
    pub c_n: Option<Vec<F>>,
}

/// [`forward_with`] for a call no backward follows: the same time loop and
/// the same results, bit for bit, but the buffers the backward would read are
/// one step deep (the gates, `hn`, `proj`) or two slots (the states and
/// cells), reused from step to step, instead of `T` steps deep. The input
/// projection is made step by step where that gives the same sums
/// ([`step_projection`]), so a call then allocates little more than its output.
pub fn infer_with<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    h0: &[F],
    c0: Option<&[F]>,
    w: &Weights<'_, F>,
    noise: &Noise<'_, F>,
) -> Result<Inference<F>> {
    let f = parallel::install(|| forward_on_pool(spec, x, h0, c0, w, noise, false))?;
    Ok(Inference {
        output: f.output,
        h_n: f.h_n,
        c_n: f.c_n,
    })
}

#[allow(clippy::too_many_arguments)]
fn forward_on_pool<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    h0: &[F],
    c0: Option<&[F]>,
    w: &Weights<'_, F>,
    noise: &Noise<'_, F>,
    keep: bool,
) -> Result<Forward<F>> {
    spec.validate()?;
    let mode = spec.mode;
    let (t_len, n, d, h) = (spec.dims.t, spec.dims.n, spec.dims.d, spec.dims.h);
    let gh = spec.gh();
    let (nh, ns) = (n * h, n * spec.state_size()); // elements of a c and of an h
    check_len("x", x, t_len * n * d)?;
    check_len("h0", h0, ns)?;
    spec.check_weights(w)?;
    let c0 = match (mode.has_cell_state(), c0) {
        (true, Some(c0)) => {
            check_len("c0", c0, nh)?;
            Some(c0)
        }
        (true, None) => {
            return Err(RnnError::argument(
                "c0",
                format!("{} needs an initial cell state", mode.name()),
            ))
        }
        (false, Some(_)) => {
            return Err(RnnError::argument(
                "c0",
                format!("{} has no cell state; pass None", mode.name()),
            ))
        }
        (false, None) => None,
    };
    check_finite("x", x)?;
    check_finite("h0", h0)?;
    if let Some(c0) = c0 {
        check_finite("c0", c0)?;
    }
    // One linear scan of the parameters: about 1/(T*N) of the kernel's work.
    check_finite("w_ih", w.w_ih)?;
    check_finite("w_hh", w.w_hh)?;
    if let (Some(b_ih), Some(b_hh)) = (w.b_ih, w.b_hh) {
        check_finite("b_ih", b_ih)?;
        check_finite("b_hh", b_hh)?;
    }
    if let Some(p) = w.w_peep {
        check_finite("w_peep", p)?;
    }
    if let (Some(g), Some(b)) = (w.w_ln, w.b_ln) {
        check_finite("w_ln", g)?;
        check_finite("b_ln", b)?;
    }
    noise.check(spec)?;
    if let Some(w_hr) = w.w_hr {
        check_finite("w_hr", w_hr)?;
    }

    let level = simd::best_level();
    // A training forward projects all steps at once: per step, the products'
    // extra hand-offs among threads cost more than the cache gains there.
    let w_ih = if keep {
        None
    } else {
        step_projection(spec, level, w)
    };
    let places = Places::new(t_len, keep, keep || w_ih.is_none());
    let bias: Vec<F> = match (mode.is_mut(), w.b_ih, w.b_hh) {
        (false, Some(b_ih), Some(b_hh)) => {
            let fold_hh = !mode.separate_recurrent_projection();
            b_ih.iter()
                .zip(b_hh)
                .map(|(&bi, &bh)| if fold_hh { bi + bh } else { bi })
                .collect()
        }
        _ => Vec::new(),
    };
    // Input projection: in the time loop, step by step, or here for every step
    // at once, gates (T*N, G*H) = x @ w_ih^T + biases.
    let mut gates = zeros::<F>(places.gate_steps * n * gh, "gates")?;
    if w_ih.is_some() {
        // Each step's own, in `run_shard`.
    } else if mode.is_mut() {
        // proj (T*N, IH) in w_ih's block order, placed into the gates [xz xr xn].
        let ih = spec.ih_rows();
        let mut proj = zeros::<F>(t_len * n * ih, "gates")?;
        matmul_weights(
            &mut proj,
            MatRef::row_major(x, t_len * n, d),
            MatRef::row_major(w.w_ih, ih, d).t(),
            false,
        );
        let bias = match (w.b_ih, w.b_hh) {
            (Some(b_ih), Some(b_hh)) => mut_cells::gate_bias(mode, h, b_ih, b_hh),
            _ => Vec::new(),
        };
        mut_cells::input_step(simd::best_level(), h, d, mode, &proj, x, &bias, &mut gates);
    } else {
        matmul_weights(
            &mut gates,
            MatRef::row_major(x, t_len * n, d),
            MatRef::row_major(w.w_ih, gh, d).t(),
            false,
        );
    }
    let tn = t_len * n;
    let mut norm = match (w.w_ln, w.b_ln) {
        (Some(gain), Some(shift)) => {
            // LN_x(W_ih x) for every step at once: gain * x^ + shift over the gates.
            let mut c = NormCache {
                x_hat: zeros::<F>(tn * gh, "gates")?,
                h_hat: zeros::<F>(tn * gh, "gates")?,
                c_hat: zeros::<F>(if mode.has_cell_state() { tn * h } else { 0 }, "cells")?,
                rstd: zeros::<F>(3 * tn, "states")?,
            };
            let (g, b) = (&gain[..gh], &shift[..gh]);
            let rstd = &mut c.rstd[..tn];
            let level = simd::best_level();
            parallel::install(|| {
                layer_norm::normalize_all(level, gh, &mut gates, &mut c.x_hat, rstd, g, b);
            });
            Some(c)
        }
        _ => None,
    };
    if w_ih.is_none() && !bias.is_empty() {
        add_rows(&mut gates, &bias);
    }

    let (slots, steps) = (places.slots, places.steps);
    let mut states = zeros::<F>(slots * ns, "states")?;
    let init = places.slot(spec.initial_slot());
    states[init * ns..][..ns].copy_from_slice(h0);
    let mut cells = match c0 {
        Some(c0) => {
            let mut c = zeros::<F>(slots * nh, "cells")?;
            c[init * nh..][..nh].copy_from_slice(c0);
            Some(c)
        }
        None => None,
    };
    let mut hn = if mode.keeps_hn() {
        Some(zeros::<F>(steps * nh, "hn")?)
    } else {
        None
    };
    let mut proj = match w.w_hr {
        Some(_) => Some(zeros::<F>(steps * nh, "proj")?),
        None => None,
    };
    let mut output = zeros::<F>(t_len * ns, "output")?;
    let mut cells_new = match noise.zoneout_c {
        Some(_) => Some(zeros::<F>(steps * nh, "cells")?),
        None => None,
    };
    let (shards, wide) = parallel::plan(n, h);
    let widest = shards.iter().map(|&(b0, b1)| b1 - b0).max().unwrap_or(0);
    let hs = spec.state_size();
    let w_hh = RecurrentWeights::new(mode, w.w_hh, hs, t_len, widest, false)?;
    let w_hr = w
        .w_hr
        .map(|w_hr| Recurrent::new(w_hr, hs, h, t_len, widest))
        .transpose()?; // (P, H), for r (S, H) @ W_hr^T
    let input = w_ih.as_deref().map(|w_ih| StepInput {
        w_ih,
        x,
        bias: &bias,
    });
    {
        let shared = Shared {
            gates: SharedMut::new(&mut gates),
            states: SharedMut::new(&mut states),
            cells: cells.as_deref_mut().map(SharedMut::new),
            hn: hn.as_deref_mut().map(SharedMut::new),
            proj: proj.as_deref_mut().map(SharedMut::new),
            output: SharedMut::new(&mut output),
            cells_new: cells_new.as_deref_mut().map(SharedMut::new),
            norm: norm.as_mut().map(|c| NormShared {
                h_hat: SharedMut::new(&mut c.h_hat),
                c_hat: SharedMut::new(&mut c.c_hat),
                rstd: SharedMut::new(&mut c.rstd),
            }),
        };
        // Inside the pool: each step's parallel work is handed among its
        // threads, not to and from the caller's.
        parallel::install(|| {
            parallel::for_each(shards, |(b0, b1)| {
                let w_rec = (&w_hh, w_hr.as_ref());
                let loop_ = Loop {
                    places,
                    input: input.as_ref(),
                    wide,
                };
                run_shard(spec, level, w_rec, w, noise, &shared, loop_, b0, b1);
            })
        });
    }

    let fin = places.slot(spec.final_slot());
    let h_n = states[fin * ns..][..ns].to_vec();
    let c_n = cells.as_ref().map(|c| c[fin * nh..][..nh].to_vec());
    Ok(Forward {
        output,
        h_n,
        c_n,
        cache: Cache {
            gates,
            states,
            cells,
            hn,
            cells_new,
            norm,
            proj,
        },
    })
}

/// `rows (R, G) += bias (G,)` for every row, the rows shared among the threads.
fn add_rows<F: Real>(rows: &mut [F], bias: &[F]) {
    let width = bias.len();
    let count = rows.len() / width;
    let shared = SharedMut::new(rows);
    parallel::for_block_ranges(count, count * width, |r0, r1| {
        // SAFETY: the ranges of rows are disjoint.
        let part = unsafe { shared.piece(r0 * width, (r1 - r0) * width) };
        for row in part.chunks_exact_mut(width) {
            for (g, &b) in row.iter_mut().zip(bias) {
                *g += b;
            }
        }
    });
}

/// How the shards' time loops run: where each step's rows are, the input
/// projection when each step makes its own, and whether each step's products
/// and pointwise work are spread over the thread pool (`wide`).
struct Loop<'a, F> {
    places: Places,
    input: Option<&'a StepInput<'a, F>>,
    wide: bool,
}

/// The time loop for sequences `b0..b1`. Touches only those rows of every
/// buffer in `shared`, so shards run concurrently. `w_rec` is `W_hh` prepared
/// for the per-step products, and `W_hr` with a projection.
#[allow(clippy::too_many_arguments)]
fn run_shard<F: Real>(
    spec: &Spec<'_>,
    level: Level,
    w_rec: (&RecurrentWeights<'_, F>, Option<&Recurrent<'_, F>>),
    w: &Weights<'_, F>,
    noise: &Noise<'_, F>,
    shared: &Shared<'_, F>,
    loop_: Loop<'_, F>,
    b0: usize,
    b1: usize,
) {
    let Loop {
        places,
        input,
        wide,
    } = loop_;
    let mode = spec.mode;
    let (w_hh, w_hr) = w_rec;
    let (b_hh, w_peep) = (w.b_hh, w.w_peep);
    let (n, h, gh) = (spec.dims.n, spec.dims.h, spec.gh());
    let hs = spec.state_size(); // width of h: P with a projection, else H
    let s = b1 - b0; // rows of this shard
    let mut active = vec![true; n];
    let mut hg = match mode {
        Mode::Gru | Mode::GruLayerNorm | Mode::LstmLayerNorm => vec![F::ZERO; s * gh], // (S, G*H)
        Mode::GruResetBefore => vec![F::ZERO; s * 2 * h],                              // (S, 2H)
        Mode::Mut1 | Mode::Mut2 | Mode::Mut3 => vec![F::ZERO; s * h], // (S, H) W_hr h_prev
        _ => Vec::new(),
    };
    let scratch = |on: bool| if on { vec![F::ZERO; s * h] } else { Vec::new() };
    let mut hn_rb = scratch(mode.reset_before_product()); // (S, H) W_hn (r * h_prev)
    let mut hz = scratch(w_hh.z.is_some()); // (S, H) W_hz h_prev or W_hz tanh(h_prev)
    let mut th = scratch(mode == Mode::Mut3); // (S, H) tanh(h_prev)
    let mut hm = scratch(noise.recurrent.is_some()); // (S, H) h_prev * recurrent mask
    let row = |slot: usize, width: usize| (slot * n + b0) * width; // first element of our rows
    let recurrent = |dst: &mut [F], h_prev: &[F], accumulate: bool| {
        w_hh.main.mul(level, dst, h_prev, s, accumulate, wide);
    };

    for k in 0..spec.dims.t {
        let t = spec.time_of_step(k);
        let (prev, next) = (
            places.slot(spec.prev_slot(t)),
            places.slot(spec.next_slot(t)),
        );
        let (gate, step) = (places.gate(t), places.step(t)); // of the gates, of hn, proj
        if let Some(input) = input {
            // This step's input projection: the gates of our rows, x_t @ W_ih^T + bias.
            // SAFETY: only this shard touches rows b0..b1 of the gates.
            let g_t = unsafe { shared.gates.piece(row(gate, gh), s * gh) };
            let d = spec.dims.d;
            let x_t = &input.x[(t * n + b0) * d..][..s * d];
            input.w_ih.mul(level, g_t, x_t, s, false, wide);
            if !input.bias.is_empty() {
                // Shared among the threads only for a wide step: a batch shard's
                // (S <= 16, G*H < 4 * WIDE_H) is below `add_rows`' threshold.
                add_rows(g_t, input.bias);
            }
        }
        {
            // SAFETY: this shard is the only one touching rows b0..b1 of any step
            // or slot, and `prev != next`, so the pieces are disjoint.
            let (h_state, g_t) = unsafe {
                (
                    &*shared.states.piece(row(prev, hs), s * hs),
                    shared.gates.piece(row(gate, gh), s * gh),
                )
            };
            // What the products read: the state, or the state times its dropout mask.
            let h_prev = match noise.recurrent {
                Some(m) => {
                    noise::masked(h_state, &m[b0 * h..b1 * h], &mut hm);
                    &hm[..]
                }
                None => h_state,
            };
            match mode {
                Mode::Gru | Mode::GruLayerNorm => {
                    recurrent(&mut hg, h_prev, false); // h_prev @ W_hh^T
                    if let Some(nb) = shared.norm.as_ref() {
                        // LN_h over each row, in place: gain * h^ + shift.
                        let (gain, shift) = (w.w_ln.expect("checked"), w.b_ln.expect("checked"));
                        let rstd_at = spec.dims.t * n + t * n + b0;
                        // SAFETY: only this shard touches rows b0..b1 of step t.
                        let (h_hat, rstd) = unsafe {
                            (
                                nb.h_hat.piece(row(t, gh), s * gh),
                                nb.rstd.piece(rstd_at, s),
                            )
                        };
                        let (g, b) = (&gain[gh..2 * gh], &shift[gh..2 * gh]);
                        layer_norm::normalize_rows(level, gh, &mut hg, h_hat, rstd, g, b);
                    }
                    if let Some(b_hh) = b_hh {
                        for r in hg.chunks_exact_mut(gh) {
                            for (v, &b) in r.iter_mut().zip(b_hh) {
                                *v += b;
                            }
                        }
                    }
                }
                Mode::GruResetBefore => recurrent(&mut hg, h_prev, false), // h_prev @ W_hr|W_hz^T
                Mode::LstmLayerNorm => recurrent(&mut hg, h_prev, false),  // normalised below
                Mode::Mut1 | Mode::Mut2 | Mode::Mut3 => {
                    recurrent(&mut hg, h_prev, false); // h_prev @ W_hr^T
                    if let Some(w_z) = &w_hh.z {
                        let src = if mode == Mode::Mut3 {
                            mut_cells::tanh_step(level, h_prev, &mut th);
                            &th[..]
                        } else {
                            h_prev
                        };
                        w_z.mul(level, &mut hz, src, s, false, wide); // f(h_prev) @ W_hz^T
                    }
                }
                _ => recurrent(g_t, h_prev, true), // += h_prev @ W_hh^T
            }
        }
        if let Some(w_n) = &w_hh.n {
            // Reset before the product: r, z and r * h_prev, then W_hn (r * h_prev).
            let rh = shared
                .hn
                .as_ref()
                .expect("a reset before the product keeps r * h");
            let (hg, hz, hm) = (&hg, &hz, &hm);
            parallel::for_row_groups(s, wide, |r0, r1| {
                let m = r1 - r0;
                let at = |slot: usize, width: usize| row(slot, width) + r0 * width;
                // SAFETY: as below: rows b0..b1 are this shard's, row groups disjoint.
                let (h_state, g_t, rh_t) = unsafe {
                    (
                        &*shared.states.piece(at(prev, h), m * h),
                        shared.gates.piece(at(gate, gh), m * gh),
                        rh.piece(at(step, h), m * h),
                    )
                };
                // r * h feeds a product: with recurrent dropout, the masked state.
                let h_prev = if hm.is_empty() {
                    h_state
                } else {
                    &hm[r0 * h..r1 * h]
                };
                if mode == Mode::GruResetBefore {
                    let hg = &hg[r0 * 2 * h..r1 * 2 * h];
                    gru_reset_before::gates_step(level, h, g_t, hg, h_prev, rh_t);
                } else {
                    let hz = if hz.is_empty() {
                        &hz[..]
                    } else {
                        &hz[r0 * h..r1 * h]
                    };
                    let hr = &hg[r0 * h..r1 * h];
                    mut_cells::gates_step(level, h, g_t, hz, hr, h_prev, rh_t);
                }
            });
            // SAFETY: the row groups are done; only this shard touches these rows.
            let rh_t = unsafe { &*rh.piece(row(step, h), s * h) };
            w_n.mul(level, &mut hn_rb, rh_t, s, false, wide); // (S, H)
        }
        spec.fill_active(t, &mut active);
        let (active, hg, hn_rb) = (&active[b0..b1], &hg, &hn_rb);

        parallel::for_row_groups(s, wide, |r0, r1| {
            let m = r1 - r0;
            // Rows r0..r1 of this shard at step t; disjoint across groups.
            let at = |slot: usize, width: usize| row(slot, width) + r0 * width;
            // SAFETY: as above, and row groups do not overlap.
            let (h_prev, h_next, g_t, out_t) = unsafe {
                (
                    &*shared.states.piece(at(prev, hs), m * hs),
                    shared.states.piece(at(next, hs), m * hs),
                    shared.gates.piece(at(gate, gh), m * gh),
                    shared.output.piece(at(t, hs), m * hs),
                )
            };
            // SAFETY: as above.
            let mut cells = shared
                .cells
                .as_ref()
                .map(|c| unsafe { (&*c.piece(at(prev, h), m * h), c.piece(at(next, h), m * h)) });
            match mode {
                Mode::RnnTanh | Mode::RnnRelu => {
                    rnn::forward_step(level, mode == Mode::RnnRelu, g_t, h_next);
                }
                Mode::Lstm => {
                    let (c_prev, c_next) = cells.as_mut().expect("lstm has a cell buffer");
                    // With a projection the cell writes r = o * tanh(c) (m, H), projected below.
                    let r_out: &mut [F] = match &shared.proj {
                        // SAFETY: as above.
                        Some(r) => unsafe { r.piece(at(step, h), m * h) },
                        None => &mut *h_next,
                    };
                    lstm::forward_step(level, h, g_t, c_prev, c_next, r_out);
                }
                Mode::LstmCifg => {
                    let (c_prev, c_next) = cells.as_mut().expect("lstm has a cell buffer");
                    lstm_cifg::forward_step(level, h, g_t, c_prev, c_next, h_next);
                }
                Mode::LstmPeephole => {
                    let (c_prev, c_next) = cells.as_mut().expect("lstm has a cell buffer");
                    let p = w_peep.expect("checked by check_weights");
                    lstm_peephole::forward_step(level, h, g_t, p, c_prev, c_next, h_next);
                }
                Mode::Gru | Mode::GruLayerNorm => {
                    let hn = shared.hn.as_ref().expect("gru has an hn buffer");
                    // SAFETY: as above.
                    let hn_t = unsafe { hn.piece(at(step, h), m * h) };
                    let hg = &hg[r0 * gh..r1 * gh];
                    gru::forward_step(level, h, g_t, hg, h_prev, hn_t, h_next);
                }
                Mode::GruResetBefore => {
                    let hn = &hn_rb[r0 * h..r1 * h];
                    gru_reset_before::update_step(level, h, g_t, hn, h_prev, h_next);
                }
                Mode::LstmLayerNorm => {
                    let (c_prev, c_next) = cells.as_mut().expect("lstm has a cell buffer");
                    let nb = shared.norm.as_ref().expect("kept by a normalised cell");
                    let (gain, shift) = (w.w_ln.expect("checked"), w.b_ln.expect("checked"));
                    let tn = spec.dims.t * n;
                    let first = t * n + b0 + r0; // of our rows in a (T, N) array
                                                 // SAFETY: as above.
                    let (h_hat, c_hat, rstd_h, rstd_c) = unsafe {
                        (
                            nb.h_hat.piece(at(t, gh), m * gh),
                            nb.c_hat.piece(at(t, h), m * h),
                            nb.rstd.piece(tn + first, m),
                            nb.rstd.piece(2 * tn + first, m),
                        )
                    };
                    let hg = &hg[r0 * gh..r1 * gh];
                    let (g, b) = (&gain[gh..2 * gh], &shift[gh..2 * gh]);
                    layer_norm::add_normalized(level, gh, hg, h_hat, rstd_h, g, b, g_t);
                    let norm = CellNorm {
                        gain: &gain[2 * gh..],
                        shift: &shift[2 * gh..],
                    };
                    lstm_ln::forward_step(
                        level, h, g_t, c_prev, norm, c_next, c_hat, rstd_c, h_next,
                    );
                }
                Mode::Mut1 | Mode::Mut2 | Mode::Mut3 => {
                    let hn = &hn_rb[r0 * h..r1 * h];
                    mut_cells::update_step(level, h, g_t, hn, h_prev, h_next);
                }
            }
            if let Some(z) = noise.zoneout_c {
                let (c_prev, c_next) = cells.as_mut().expect("zoneout_c is for the lstm modes");
                let c_new = shared.cells_new.as_ref().expect("kept with zoneout_c");
                // SAFETY: as above.
                unsafe { c_new.piece(at(step, h), m * h) }.copy_from_slice(c_next);
                noise::zone(c_next, c_prev, &z[at(t, h)..][..m * h]);
            }
            if let Some(z) = noise.zoneout_h {
                noise::zone(h_next, h_prev, &z[at(t, h)..][..m * h]);
            }
            // Sequences that have ended keep their state; their output stays zero.
            // With a projection, h is not computed yet: `freeze` below.
            for (b, &on) in active[r0..r1].iter().enumerate() {
                if on {
                    continue;
                }
                if let Some((c_prev, c_next)) = cells.as_mut() {
                    let r = b * h..(b + 1) * h;
                    c_next[r.clone()].copy_from_slice(&c_prev[r]);
                }
            }
            if w_hr.is_none() {
                freeze(hs, &active[r0..r1], h_prev, h_next, out_t);
            }
        });
        if let (Some(w_hr), Some(proj)) = (w_hr, shared.proj.as_ref()) {
            // h (S, P) = r (S, H) @ W_hr^T, over all our rows.
            // SAFETY: the row groups are done; only this shard touches these rows,
            // and `prev != next`.
            let (r_t, h_prev, h_next, out_t) = unsafe {
                (
                    &*proj.piece(row(step, h), s * h),
                    &*shared.states.piece(row(prev, hs), s * hs),
                    shared.states.piece(row(next, hs), s * hs),
                    shared.output.piece(row(t, hs), s * hs),
                )
            };
            w_hr.mul(level, h_next, r_t, s, false, wide);
            freeze(hs, active, h_prev, h_next, out_t);
        }
    }
}

/// The output of one step from its new states `h_next (M, HS)`: copied to
/// `out (M, HS)` for the rows still running; for the rows whose sequence has
/// ended, `h_next` is set back to `h_prev` and the output stays zero.
fn freeze<F: Real>(hs: usize, active: &[bool], h_prev: &[F], h_next: &mut [F], out: &mut [F]) {
    for (b, &on) in active.iter().enumerate() {
        let r = b * hs..(b + 1) * hs;
        if on {
            out[r.clone()].copy_from_slice(&h_next[r]);
        } else {
            h_next[r.clone()].copy_from_slice(&h_prev[r]);
        }
    }
}
