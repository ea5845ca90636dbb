//! The teacher-forced attention decoder over a whole target sequence, forward and
//! backpropagation through time (the equations of `rnncore.reference.decoder`):
//!
//! ```text
//! x_t = [y_t; context_{t-1}]                  (N, E + M)  input feeding, context_{-1} = context0
//! h_t (, c_t) = cell(x_t, h_{t-1} (, c_{t-1}))  the cells of `crate::cells`
//! context_t, weights_t = attend(h_t, memory)    (N, M), (N, S)
//! output_t = [h_t; context_t]                  (N, H + M)
//! ```
//!
//! Cost: the `y` half of the input projection is one GEMM over all `T*N` rows and
//! the keys one GEMM over the memory, both before the loop; per step one product
//! with the context half of `w_ih`, one with `w_hh`, the pointwise cell and the
//! attention. The backward does the per-step products in reverse and `dy`,
//! `dw_ih` as single GEMMs after the loop. Saved for the backward: gates
//! `(T, N, G*H)`, states `(T+1, N, H)` (cells for LSTM, `hn` for GRU), the
//! attention weights `(T, N, S)` and, additive only, `tanh(.) (T, N, S, A)`.
//! Single-threaded: results do not depend on the thread count.
//!
//! With scheduled sampling ([`Sampling`], `p > 0`) the inputs of step `t >= 1`
//! are only known after step `t-1`, so the `y` half of the projection is one
//! GEMM per step instead, after [`Sampler::choose`] has fed some rows their own
//! prediction; the cache then holds the inputs actually fed, and the backward is
//! the same.

use super::attention::{attend, project_keys, AttnWeights, Kind, Sizes, StepOut};
use super::sampling::{Sampler, Sampling};
use crate::buffer::{with_capacity, zeros};
use crate::cells::{gru, lstm, rnn};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul_weights, MatRef};
use crate::mode::Mode;
use crate::panel::narrow::Narrow;
use crate::parallel;
use crate::real::Real;
use crate::sequence::check_finite;
use crate::sequence::recurrent::Recurrent;
use crate::simd;

/// Sizes and options of one decoder call.
#[derive(Debug, Clone, Copy)]
pub struct DecoderSpec<'a> {
    pub mode: Mode,
    pub kind: Kind,
    /// Target steps `T`, batch `N`, source steps `S`, input `E`, hidden `H`,
    /// memory `M`, attention units `A` (`H` for general, `M` for dot).
    pub t: usize,
    pub n: usize,
    pub s: usize,
    pub e: usize,
    pub h: usize,
    pub m: usize,
    pub a: usize,
    /// `(N,)` source lengths in `1..=S`; `None`: all `S`.
    pub lengths: Option<&'a [usize]>,
}

/// The decoder's weights: the cell's (`w_ih (G*H, E + M)`, `w_hh (G*H, H)`,
/// biases `(G*H,)`) and the attention's.
#[derive(Debug, Clone, Copy)]
pub struct DecoderWeights<'a, F> {
    pub w_ih: &'a [F],
    pub w_hh: &'a [F],
    pub b_ih: Option<&'a [F]>,
    pub b_hh: Option<&'a [F]>,
    pub attn: AttnWeights<'a, F>,
}

/// The decoder's weights packed once for calls that each run a few steps of a
/// few rows (a decoder stepped one call per symbol): panels of `w_ih[:, :E]`,
/// `w_ih[:, E:]` and `w_hh` for the per-step products, owned, so they outlive
/// the call. Valid for the weights they were made from, until those change.
pub struct Prepared<F> {
    y: Narrow<F>,
    ctx: Narrow<F>,
    hh: Narrow<F>,
    /// `(G*H, E, H, M)` of the weights.
    pub dims: [usize; 4],
}

impl<F: Real> Prepared<F> {
    /// Pack `w` for a decoder with input width `e` and memory width `m`.
    pub fn new(w: &DecoderWeights<'_, F>, gh: usize, e: usize, h: usize, m: usize) -> Result<Self> {
        len("w_ih", w.w_ih, gh * (e + m))?;
        len("w_hh", w.w_hh, gh * h)?;
        let mut w_y = with_capacity(gh * e, "packed weights")?;
        for row in w.w_ih.chunks_exact(e + m) {
            w_y.extend_from_slice(&row[..e]);
        }
        let w_ctx = context_weights(w.w_ih, gh, e, m)?;
        Ok(Self {
            y: Narrow::new(&w_y, gh, e)?,
            ctx: Narrow::new(&w_ctx, gh, m)?,
            hh: Narrow::new(w.w_hh, gh, h)?,
            dims: [gh, e, h, m],
        })
    }
}

/// What the forward saves for the backward (owned).
#[derive(Debug)]
pub struct DecoderCache<F> {
    pub memory: Vec<F>,        // (N, S, M)
    pub keys: Vec<F>,          // (N, S, A)
    pub y: Vec<F>,             // (T, N, E) the inputs fed
    pub gates: Vec<F>,         // (T, N, G*H) activated
    pub states: Vec<F>,        // (T+1, N, H)
    pub cells: Option<Vec<F>>, // (T+1, N, H), LSTM
    pub hn: Option<Vec<F>>,    // (T, N, H), GRU
    pub contexts: Vec<F>,      // (T+1, N, M), slot 0 is zero
    pub weights: Vec<F>,       // (T, N, S)
    pub qp: Vec<F>,            // (T, N, A) query @ w_query^T, additive
    pub lengths: Vec<usize>,   // (N,)
}

/// What a forward call returns.
#[derive(Debug)]
pub struct DecoderForward<F> {
    pub output: Vec<F>,  // (T, N, H + M)
    pub weights: Vec<F>, // (T, N, S)
    pub h_n: Vec<F>,     // (N, H)
    pub c_n: Option<Vec<F>>,
    /// `(T, N)` the ids fed at every step, when sampling was given.
    pub fed: Option<Vec<usize>>,
    pub cache: DecoderCache<F>,
}

/// Gradients of one decoder call.
#[derive(Debug)]
pub struct DecoderGrads<F> {
    pub dy: Vec<F>,               // (T, N, E)
    pub dmemory: Vec<F>,          // (N, S, M)
    pub dh0: Vec<F>,              // (N, H)
    pub dcontext0: Vec<F>,        // (N, M)
    pub dc0: Option<Vec<F>>,      // (N, H), LSTM
    pub dw_ih: Vec<F>,            // (G*H, E + M)
    pub dw_hh: Vec<F>,            // (G*H, H)
    pub db_ih: Option<Vec<F>>,    // (G*H,)
    pub db_hh: Option<Vec<F>>,    // (G*H,)
    pub dw_query: Option<Vec<F>>, // (A, H)
    pub dw_key: Option<Vec<F>>,   // (A, M)
    pub dv: Option<Vec<F>>,       // (A,)
}

impl DecoderSpec<'_> {
    pub(super) fn gh(&self) -> usize {
        self.mode.gates() * self.h
    }

    pub(super) fn sizes(&self) -> Sizes {
        Sizes {
            n: self.n,
            s: self.s,
            m: self.m,
            q: self.h,
            a: self.a,
        }
    }

    /// Check every size and weight against the spec; the source lengths, all `S`
    /// when none were given.
    pub(super) fn check(&self, w: &DecoderWeights<'_, impl Real>) -> Result<Vec<usize>> {
        let (t, n, s, e, h, m, a) = (self.t, self.n, self.s, self.e, self.h, self.m, self.a);
        if !self.mode.is_basic() {
            return Err(RnnError::argument(
                "mode",
                format!("the attention decoder does not run {}", self.mode.name()),
            ));
        }
        for (name, size) in [("T", t), ("N", n), ("S", s), ("H", h), ("M", m), ("A", a)] {
            if size == 0 {
                return Err(RnnError::shape(name, "must be at least 1"));
            }
        }
        let total = [t, n, s, e + m, h, m, a]
            .iter()
            .try_fold(1usize, |acc, &x| acc.checked_mul(x.max(1)));
        let gh = self.mode.gates().checked_mul(h);
        if total.is_none() || gh.and_then(|gh| gh.checked_mul(e + m)).is_none() {
            return Err(RnnError::shape("decoder", "sizes are too large"));
        }
        let gh = self.gh();
        len("w_ih", w.w_ih, gh * (e + m))?;
        len("w_hh", w.w_hh, gh * h)?;
        match (w.b_ih, w.b_hh) {
            (Some(bi), Some(bh)) => {
                len("b_ih", bi, gh)?;
                len("b_hh", bh, gh)?;
            }
            (None, None) => {}
            _ => return Err(RnnError::argument("b_ih", "give both biases or neither")),
        }
        let (wq, wk, v) = (w.attn.w_query, w.attn.w_key, w.attn.v);
        match self.kind {
            Kind::Additive => {
                let (Some(wq), Some(wk), Some(v)) = (wq, wk, v) else {
                    return Err(RnnError::argument(
                        "w_query",
                        "additive needs w_query, w_key, v",
                    ));
                };
                len("w_query", wq, a * h)?;
                len("w_key", wk, a * m)?;
                len("v", v, a)?;
            }
            Kind::General => {
                let (None, Some(wk), None) = (wq, wk, v) else {
                    return Err(RnnError::argument("w_key", "general takes w_key only"));
                };
                if a != h {
                    return Err(RnnError::shape("w_key", "general needs A == H"));
                }
                len("w_key", wk, a * m)?;
            }
            Kind::Dot => {
                if wq.is_some() || wk.is_some() || v.is_some() {
                    return Err(RnnError::argument("w_key", "dot attention has no weights"));
                }
                if a != m || h != m {
                    return Err(RnnError::shape(
                        "memory",
                        "dot needs hidden size == memory size",
                    ));
                }
            }
        }
        for (name, arr) in [
            ("w_ih", Some(w.w_ih)),
            ("w_hh", Some(w.w_hh)),
            ("b_ih", w.b_ih),
        ]
        .into_iter()
        .chain([("b_hh", w.b_hh), ("w_query", wq), ("w_key", wk), ("v", v)])
        {
            if let Some(arr) = arr {
                check_finite(name, arr)?;
            }
        }
        match self.lengths {
            None => Ok(vec![s; n]),
            Some(l) if l.len() != n => Err(RnnError::shape("lengths", format!("expected ({n},)"))),
            Some(l) if l.iter().any(|&x| x < 1 || x > s) => Err(RnnError::argument(
                "lengths",
                format!("source lengths must lie in 1..{s}"),
            )),
            Some(l) => Ok(l.to_vec()),
        }
    }
}

pub(super) fn len<F>(arg: &str, slice: &[F], want: usize) -> Result<()> {
    if slice.len() == want {
        Ok(())
    } else {
        Err(RnnError::shape(
            arg,
            format!("expected {want} elements, got {}", slice.len()),
        ))
    }
}

/// Run the decoder over `y (T, N, E)` with attention over `memory (N, S, M)`,
/// from `h0 (N, H)` (and `c0 (N, H)` for LSTM) and `context0 (N, M)` (zero when
/// `None`); with `sampling`, scheduled sampling of the inputs of steps `t >= 1`
/// (teacher forcing, bitwise, when its `p` is 0). `keys (N, S, A)`, when given,
/// must be [`project_keys`] of `memory`: a decoder stepped one call at a time
/// computes them once instead of at every call.
///
/// The time loop runs on one of the pool's threads, so that each step's
/// parallel products and attention hand off among the pool's threads.
#[allow(clippy::too_many_arguments)]
pub fn decoder_forward<F: Real>(
    spec: &DecoderSpec<'_>,
    y: &[F],
    memory: &[F],
    h0: &[F],
    c0: Option<&[F]>,
    context0: Option<&[F]>,
    w: &DecoderWeights<'_, F>,
    keys: Option<&[F]>,
    prepared: Option<&Prepared<F>>,
    sampling: Option<&Sampling<'_, F>>,
) -> Result<DecoderForward<F>> {
    parallel::install(|| {
        forward_in_pool(
            spec, y, memory, h0, c0, context0, w, keys, prepared, sampling,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn forward_in_pool<F: Real>(
    spec: &DecoderSpec<'_>,
    y: &[F],
    memory: &[F],
    h0: &[F],
    c0: Option<&[F]>,
    context0: Option<&[F]>,
    w: &DecoderWeights<'_, F>,
    keys: Option<&[F]>,
    prepared: Option<&Prepared<F>>,
    sampling: Option<&Sampling<'_, F>>,
) -> Result<DecoderForward<F>> {
    let lengths = spec.check(w)?;
    let (t_len, n, s, e, h, m, a) = (spec.t, spec.n, spec.s, spec.e, spec.h, spec.m, spec.a);
    let (gh, nh) = (spec.gh(), n * h);
    let mode = spec.mode;
    len("y", y, t_len * n * e)?;
    len("memory", memory, n * s * m)?;
    len("h0", h0, nh)?;
    match (mode.has_cell_state(), c0) {
        (true, Some(c0)) => len("c0", c0, nh)?,
        (false, None) => {}
        _ => {
            return Err(RnnError::argument(
                "c0",
                "give c0 for lstm and only for lstm",
            ))
        }
    }
    for (name, arr) in [
        ("y", Some(y)),
        ("memory", Some(memory)),
        ("h0", Some(h0)),
        ("c0", c0),
    ] {
        if let Some(arr) = arr {
            check_finite(name, arr)?;
        }
    }
    if let Some(smp) = sampling {
        smp.check(t_len, n, e, h + m, y)?;
    }
    let fed_given = sampling.map(|smp| smp.ids);
    let mut sampler = match sampling {
        Some(smp) if smp.p > 0.0 => Some(Sampler::new(*smp, n, e, h + m)?),
        _ => None,
    };
    let mut y_fed = with_capacity(y.len(), "y")?; // (T, N, E)
    y_fed.extend_from_slice(y);
    let level = simd::best_level();
    let z = spec.sizes();
    let keys = match keys {
        // `project_keys` of this memory, computed once by a caller that decodes
        // one step per call (a copy is much less than the product)
        Some(given) => {
            len("keys", given, n * s * a)?;
            check_finite("keys", given)?;
            let mut copy = with_capacity(given.len(), "keys")?;
            copy.extend_from_slice(given);
            copy
        }
        None => project_keys(spec.kind, z, memory, &w.attn)?, // (N, S, A)
    };
    let separate = mode.separate_recurrent_projection();

    // The y half of the input projection, biases folded in: for every step at
    // once, or step by step when sampling chooses the inputs as it goes.
    if let Some(p) = prepared {
        if p.dims != [gh, e, h, m] {
            return Err(RnnError::shape(
                "prepared",
                format!(
                    "was made for (G*H, E, H, M) = {:?}, not {:?}",
                    p.dims,
                    [gh, e, h, m]
                ),
            ));
        }
    }
    let wide = parallel::plan(n, h).1;
    let project = |gates: &mut [F], y: &[F]| match prepared {
        Some(p) => {
            p.y.mul(level, gates, y, gates.len() / gh, false, wide);
            add_input_biases(spec, gates, w);
        }
        None => input_projection(spec, gates, y, w),
    };
    let mut gates = zeros::<F>(t_len * n * gh, "gates")?; // (T, N, G*H)
    if sampler.is_none() {
        project(&mut gates, &y_fed);
    }
    // The per-step products over weights prepared once for all T steps (packed,
    // or panels for a few rows), or by the caller once for many calls:
    // `context_{t-1} @ W_ctx^T` and `h_{t-1} @ W_hh^T`.
    let own = match prepared {
        Some(_) => None,
        None => Some(context_weights(w.w_ih, gh, e, m)?), // (G*H, M)
    };
    let built = match &own {
        Some(w_ctx) => Some((
            Recurrent::new(w_ctx, gh, m, t_len, n)?,
            Recurrent::new(w.w_hh, gh, h, t_len, n)?,
        )),
        None => None,
    };
    // `dst (N, G*H) (+)= x @ W^T` over the context (`ctx`) or recurrent weights
    let mul = |ctx: bool, dst: &mut [F], x: &[F], acc: bool| match (&built, prepared) {
        (Some((c, hh)), _) => (if ctx { c } else { hh }).mul(level, dst, x, n, acc, wide),
        (None, Some(p)) => (if ctx { &p.ctx } else { &p.hh }).mul(level, dst, x, n, acc, wide),
        (None, None) => unreachable!("built when not prepared"),
    };
    let mut states = zeros::<F>((t_len + 1) * nh, "states")?;
    states[..nh].copy_from_slice(h0);
    let mut cells = match c0 {
        Some(c0) => {
            let mut c = zeros::<F>((t_len + 1) * nh, "cells")?;
            c[..nh].copy_from_slice(c0);
            Some(c)
        }
        None => None,
    };
    let mut hn = if separate {
        Some(zeros::<F>(t_len * nh, "hn")?)
    } else {
        None
    };
    let mut hg = if separate {
        zeros::<F>(n * gh, "hg")?
    } else {
        Vec::new()
    };
    let mut contexts = zeros::<F>((t_len + 1) * n * m, "contexts")?;
    if let Some(c) = context0 {
        contexts[..n * m].copy_from_slice(c);
    }
    let mut weights = zeros::<F>(t_len * n * s, "weights")?;
    let additive = spec.kind == Kind::Additive;
    let mut qp = zeros::<F>(if additive { t_len * n * a } else { 0 }, "query projection")?;
    let mut e_rows = zeros::<F>(if additive { n * a } else { 0 }, "attention")?; // (N, A)
    let mut output = zeros::<F>(t_len * n * (h + m), "output")?;

    for t in 0..t_len {
        let g_t = &mut gates[t * n * gh..][..n * gh];
        if let Some(smp) = sampler.as_mut() {
            let y_t = &mut y_fed[t * n * e..][..n * e];
            if t >= 1 {
                smp.choose(t, &output[(t - 1) * n * (h + m)..][..n * (h + m)], y_t);
            }
            project(g_t, y_t);
        }
        let (done, rest) = contexts.split_at_mut((t + 1) * n * m);
        let ctx_prev = &done[t * n * m..][..n * m];
        mul(true, g_t, ctx_prev, true);
        let (before, after) = states.split_at_mut((t + 1) * nh);
        let (h_prev, h_next) = (&before[t * nh..], &mut after[..nh]);
        if separate {
            mul(false, &mut hg, h_prev, false);
            if let Some(b_hh) = w.b_hh {
                for row in hg.chunks_exact_mut(gh) {
                    for (v, &b) in row.iter_mut().zip(b_hh) {
                        *v += b;
                    }
                }
            }
        } else {
            mul(false, g_t, h_prev, true);
        }
        match mode {
            Mode::RnnTanh | Mode::RnnRelu => {
                rnn::forward_step(level, mode == Mode::RnnRelu, g_t, h_next)
            }
            Mode::Lstm => {
                let c = cells.as_mut().expect("lstm keeps cell states");
                let (cb, ca) = c.split_at_mut((t + 1) * nh);
                lstm::forward_step(level, h, g_t, &cb[t * nh..], &mut ca[..nh], h_next);
            }
            Mode::Gru => {
                let hn_t = &mut hn.as_mut().expect("gru keeps hn")[t * nh..][..nh];
                gru::forward_step(level, h, g_t, &hg, h_prev, hn_t, h_next);
            }
            _ => {
                unreachable!("rejected by DecoderSpec::check")
            }
        }
        let ctx_t = &mut rest[..n * m];
        let out = StepOut {
            context: ctx_t,
            weights: &mut weights[t * n * s..][..n * s],
            scratch: &mut e_rows,
        };
        let qp_t = if additive {
            &mut qp[t * n * a..][..n * a]
        } else {
            &mut []
        };
        attend(
            spec.kind, z, h_next, &keys, memory, &lengths, &w.attn, qp_t, out,
        );
        let out_t = &mut output[t * n * (h + m)..][..n * (h + m)];
        for (b, row) in out_t.chunks_exact_mut(h + m).enumerate() {
            row[..h].copy_from_slice(&h_next[b * h..][..h]);
            row[h..].copy_from_slice(&ctx_t[b * m..][..m]);
        }
    }
    let h_n = states[t_len * nh..].to_vec();
    let c_n = cells.as_ref().map(|c| c[t_len * nh..].to_vec());
    let fed = match (sampler, fed_given) {
        (Some(smp), _) => Some(smp.fed),
        (None, Some(ids)) => Some(ids.to_vec()),
        (None, None) => None,
    };
    Ok(DecoderForward {
        output,
        weights: weights.clone(),
        h_n,
        c_n,
        fed,
        cache: DecoderCache {
            memory: memory.to_vec(),
            keys,
            y: y_fed,
            gates,
            states,
            cells,
            hn,
            contexts,
            weights,
            qp,
            lengths,
        },
    })
}

/// `gates = y @ w_ih[:, :E]^T` plus the input biases (`b_ih + b_hh` unless the
/// recurrent projection is kept apart) over the rows of `y (R, E)`, `gates (R, G*H)`.
fn input_projection<F: Real>(
    spec: &DecoderSpec<'_>,
    gates: &mut [F],
    y: &[F],
    w: &DecoderWeights<'_, F>,
) {
    let (gh, e) = (spec.gh(), spec.e);
    let rows = gates.len() / gh;
    matmul_weights(
        gates,
        MatRef::row_major(y, rows, e),
        MatRef::strided(w.w_ih, gh, e, e + spec.m, 1).t(), // (E, G*H)
        false,
    );
    add_input_biases(spec, gates, w);
}

/// `gates (R, G*H) += b_ih + b_hh` (`b_ih` alone when the recurrent projection
/// is kept apart).
fn add_input_biases<F: Real>(spec: &DecoderSpec<'_>, gates: &mut [F], w: &DecoderWeights<'_, F>) {
    let gh = spec.gh();
    let separate = spec.mode.separate_recurrent_projection();
    if let (Some(b_ih), Some(b_hh)) = (w.b_ih, w.b_hh) {
        for row in gates.chunks_exact_mut(gh) {
            for (j, g) in row.iter_mut().enumerate() {
                *g += if separate { b_ih[j] } else { b_ih[j] + b_hh[j] };
            }
        }
    }
}

/// The context columns `w_ih[:, E..]` as a row-major `(G*H, M)` copy, for the
/// per-step products (once per call).
pub(super) fn context_weights<F: Real>(
    w_ih: &[F],
    gh: usize,
    e: usize,
    m: usize,
) -> Result<Vec<F>> {
    let mut out = with_capacity(gh * m, "context weights")?;
    for row in w_ih.chunks_exact(e + m).take(gh) {
        out.extend_from_slice(&row[e..]);
    }
    len("w_ih", &out, gh * m)?;
    Ok(out)
}
