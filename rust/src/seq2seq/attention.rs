//! Attention of `N` queries over their own encoder outputs, one decoder step at
//! a time, forward and backward (the equations of `rnncore.reference.attention`):
//!
//! ```text
//! keys    = memory @ w_key^T          (N, S, A)  once per sequence (dot: memory)
//! score_s = v . tanh(w_query q + k_s) (additive)   or   q . k_s (general, dot)
//! weights = softmax over the valid s < lengths[b]; exactly 0 elsewhere   (N, S)
//! context = sum_s weights_s memory_s  (N, M)
//! ```
//!
//! Shapes: `query (N, Q)`, `memory (N, S, M)`, `w_query (A, Q)`, `w_key (A, M)`
//! (general: `A = Q`), `v (A,)`; all row-major.

use crate::buffer::{checked_len, with_capacity, zeros};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul, matmul_tiled, matmul_weights, MatMut, MatRef};
use crate::parallel;
use crate::real::Real;
use crate::shared::SharedMut;
use crate::simd::multiversion;

/// The score function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bahdanau: `v . tanh(w_query q + w_key m_s)`.
    Additive,
    /// Luong general: `q . (w_key m_s)`.
    General,
    /// Luong dot: `q . m_s`.
    Dot,
}

impl Kind {
    /// Parse `"additive"`, `"general"` or `"dot"`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "additive" => Ok(Self::Additive),
            "general" => Ok(Self::General),
            "dot" => Ok(Self::Dot),
            _ => Err(RnnError::argument(
                "attention",
                format!("must be 'additive', 'general' or 'dot', got '{name}'"),
            )),
        }
    }
}

/// Sizes of one attention: `N` rows, `S` source steps, `M` memory width, `Q`
/// query width, `A` key width (`M` for dot, `Q` for general).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub n: usize,
    pub s: usize,
    pub m: usize,
    pub q: usize,
    pub a: usize,
}

/// The attention's own weights (`None` where the kind has none).
#[derive(Debug, Clone, Copy)]
pub struct AttnWeights<'a, F> {
    /// `(A, Q)`, additive.
    pub w_query: Option<&'a [F]>,
    /// `(A, M)`, additive and general.
    pub w_key: Option<&'a [F]>,
    /// `(A,)`, additive.
    pub v: Option<&'a [F]>,
}

/// `keys (N, S, A)` of `memory (N, S, M)` (an error, not an abort, when they
/// do not fit in memory).
pub fn project_keys<F: Real>(
    kind: Kind,
    z: Sizes,
    memory: &[F],
    w: &AttnWeights<'_, F>,
) -> Result<Vec<F>> {
    Ok(match (kind, w.w_key) {
        (Kind::Dot, _) | (_, None) => {
            let mut keys = with_capacity(memory.len(), "keys")?;
            keys.extend_from_slice(memory);
            keys
        }
        (_, Some(w_key)) => {
            let len = checked_len("keys", &[z.n, z.s, z.a], std::mem::size_of::<F>())?;
            let mut keys = zeros::<F>(len, "keys")?;
            matmul_weights(
                &mut keys,
                MatRef::row_major(memory, z.n * z.s, z.m),
                MatRef::row_major(w_key, z.a, z.m).t(),
                false,
            );
            keys
        }
    })
}

/// Backward of [`project_keys`]: `dmemory += dkeys @ w_key` (dot: `+= dkeys`),
/// `dw_key = dkeys^T @ memory` (`(A, M)`; empty for dot).
pub fn project_keys_backward<F: Real>(
    kind: Kind,
    z: Sizes,
    dkeys: &[F],
    memory: &[F],
    w: &AttnWeights<'_, F>,
    dmemory: &mut [F],
) -> Vec<F> {
    match (kind, w.w_key) {
        (Kind::Dot, _) | (_, None) => {
            for (d, &k) in dmemory.iter_mut().zip(dkeys) {
                *d += k;
            }
            Vec::new()
        }
        (_, Some(w_key)) => {
            let rows = z.n * z.s;
            matmul_tiled(
                dmemory,
                MatRef::row_major(dkeys, rows, z.a),
                MatRef::row_major(w_key, z.a, z.m),
                true,
            );
            let mut dw_key = vec![F::ZERO; z.a * z.m];
            matmul_tiled(
                &mut dw_key,
                MatRef::row_major(dkeys, rows, z.a).t(),
                MatRef::row_major(memory, rows, z.m),
                false,
            );
            dw_key
        }
    }
}

/// What one step writes: `context (N, M)` and `weights (N, S)`.
pub struct StepOut<'a, F> {
    pub context: &'a mut [F],
    pub weights: &'a mut [F],
    /// `(N, A)`, additive: room for one row of `e` per query (empty otherwise).
    pub scratch: &'a mut [F],
}

/// One forward step. `lengths[b]` in `1..=S` (checked by the caller). Additive:
/// writes `qp (N, A) = query @ w_query^T`, which the backward takes to
/// recompute `e = tanh(qp + k)` (the same operations, so the same bits) rather
/// than keep `(T, N, S, A)` of it.
#[allow(clippy::too_many_arguments)]
pub fn attend<F: Real>(
    kind: Kind,
    z: Sizes,
    query: &[F],
    keys: &[F],
    memory: &[F],
    lengths: &[usize],
    w: &AttnWeights<'_, F>,
    qp: &mut [F],
    out: StepOut<'_, F>,
) {
    if let (Kind::Additive, Some(w_query)) = (kind, w.w_query) {
        matmul(
            MatMut::row_major(qp, z.n, z.a),
            MatRef::row_major(query, z.n, z.q),
            MatRef::row_major(w_query, z.a, z.q).t(),
            false,
        );
    }
    let level = crate::simd::best_level();
    let (s_len, a, m) = (z.s, z.a, z.m);
    let e_row = if kind == Kind::Additive { a } else { 0 };
    let (weights, context, scratch) = (
        SharedMut::new(out.weights),
        SharedMut::new(out.context),
        SharedMut::new(out.scratch),
    );
    let v = w.v.unwrap_or(&[]);
    let qp: &[F] = qp;
    // Rows are independent, and each is computed the same way whichever
    // range holds it: the split does not change a number.
    parallel::for_block_ranges(z.n, z.n * s_len * (a + m), |b0, b1| {
        let rows = b1 - b0;
        // SAFETY: the ranges are disjoint, so are the rows they cut.
        let (wo, co, eo) = unsafe {
            (
                weights.piece(b0 * s_len, rows * s_len),
                context.piece(b0 * m, rows * m),
                scratch.piece(b0 * e_row, e_row.min(rows * e_row)),
            )
        };
        let rz = Sizes { n: rows, ..z };
        let q_rows = if kind == Kind::Additive {
            &[][..]
        } else {
            &query[b0 * a..b1 * a]
        };
        let qp_rows = if kind == Kind::Additive {
            &qp[b0 * a..b1 * a]
        } else {
            &[][..]
        };
        scores_and_context(
            level,
            kind,
            rz,
            q_rows,
            &keys[b0 * s_len * a..b1 * s_len * a],
            &memory[b0 * s_len * m..b1 * s_len * m],
            &lengths[b0..b1],
            v,
            qp_rows,
            wo,
            co,
            eo,
        );
    });
}

multiversion! {
    /// The per-row work of [`attend`] after the query projection: scores, their
    /// softmax over the valid steps, and the context, in SIMD twins.
    #[allow(clippy::too_many_arguments)]
    fn scores_and_context<F: Real>(
        kind: Kind,
        z: Sizes,
        query: &[F],
        keys: &[F],
        memory: &[F],
        lengths: &[usize],
        v: &[F],
        qp: &[F],
        weights_out: &mut [F],
        context_out: &mut [F],
        e: &mut [F],
    ) {
        let (s_len, a, m) = (z.s, z.a, z.m);
    for b in 0..z.n {
        let len = lengths[b];
        let weights = &mut weights_out[b * s_len..][..s_len];
        for s in 0..len {
            let k = &keys[(b * s_len + s) * a..][..a];
            weights[s] = match kind {
                Kind::Additive => {
                    additive_e(&qp[b * a..][..a], k, e);
                    dot(v, e)
                }
                _ => dot(&query[b * a..][..a], k),
            };
        }
        let max = weights[..len]
            .iter()
            .fold(weights[0], |acc, &x| if x > acc { x } else { acc });
        let mut total = F::ZERO;
        for x in &mut weights[..len] {
            *x = (*x - max).exp();
            total += *x;
        }
        for x in &mut weights[..len] {
            *x = *x / total;
        }
        weights[len..].fill(F::ZERO);
        let context = &mut context_out[b * m..][..m];
        context.fill(F::ZERO);
        for (s, &p) in weights[..len].iter().enumerate() {
            for (c, &x) in context.iter_mut().zip(&memory[(b * s_len + s) * m..][..m]) {
                *c += p * x;
            }
        }
    }
    }
}

/// Gradients one backward step accumulates into.
pub struct StepGrads<'a, F> {
    /// `(N, Q)`, written.
    pub dquery: &'a mut [F],
    /// `(N, S, A)`, accumulated.
    pub dkeys: &'a mut [F],
    /// `(N, S, M)`, accumulated (the values' share).
    pub dmemory: &'a mut [F],
    /// `(A, Q)`, accumulated (additive).
    pub dw_query: &'a mut [F],
    /// `(A,)`, accumulated (additive).
    pub dv: &'a mut [F],
}

/// Room one backward step works in, held by the caller across steps:
/// `dscore (N, S)`, `dqp (N, A)`; additive, `e (N, A)` for one recomputed row
/// of `e` per query and `dv (N, A)` for each row's share of `dv` (empty
/// otherwise).
pub struct BackScratch<'a, F> {
    pub dscore: &'a mut [F],
    pub dqp: &'a mut [F],
    pub e: &'a mut [F],
    pub dv: &'a mut [F],
}

/// Backward of [`attend`]: `dcontext (N, M)`, `dweights (N, S)` or `None`;
/// `weights` and `qp` as the forward left them, `lengths` as it was given.
#[allow(clippy::too_many_arguments)]
pub fn attend_backward<F: Real>(
    kind: Kind,
    z: Sizes,
    dcontext: &[F],
    dweights: Option<&[F]>,
    query: &[F],
    keys: &[F],
    memory: &[F],
    lengths: &[usize],
    weights: &[F],
    qp: &[F],
    w: &AttnWeights<'_, F>,
    scratch: BackScratch<'_, F>,
    g: StepGrads<'_, F>,
) {
    let BackScratch {
        dscore,
        dqp,
        e: e_rows,
        dv: dv_rows,
    } = scratch;
    let level = crate::simd::best_level();
    let StepGrads {
        dquery,
        dkeys,
        dmemory,
        dw_query,
        dv,
    } = g;
    let dw = dweights.unwrap_or(&[]);
    let v = w.v.unwrap_or(&[]);
    let (s_len, a, m) = (z.s, z.a, z.m);
    let additive = kind == Kind::Additive && !v.is_empty();
    // Each row's share of dv, summed over the rows in order after the
    // parallel part: the same sums whatever the split.
    dv_rows.fill(F::ZERO);
    let e_row = if additive { a } else { 0 };
    let e_rows = SharedMut::new(e_rows);
    let out = [
        SharedMut::new(dscore),
        SharedMut::new(dqp),
        SharedMut::new(if additive { &mut [][..] } else { &mut *dquery }),
        SharedMut::new(dkeys),
        SharedMut::new(dmemory),
        SharedMut::new(dv_rows),
    ];
    parallel::for_block_ranges(z.n, z.n * s_len * (a + m), |b0, b1| {
        let rows = b1 - b0;
        let per_row = [s_len, a, a, s_len * a, s_len * m, a];
        // SAFETY: the ranges are disjoint, so are the rows they cut.
        let [ds, dq, dqy, dk, dm, dvr] = std::array::from_fn(|i| {
            if out[i].is_empty() {
                &mut [][..]
            } else {
                unsafe { out[i].piece(b0 * per_row[i], rows * per_row[i]) }
            }
        });
        // SAFETY: as above; one row of room per range, at its first row.
        let er = unsafe { e_rows.piece(b0 * e_row, e_row) };
        let (qr, qpr) = if kind == Kind::Additive {
            (&[][..], &qp[b0 * a..b1 * a])
        } else {
            (&query[b0 * a..b1 * a], &[][..])
        };
        score_grads(
            level,
            kind,
            Sizes { n: rows, ..z },
            &dcontext[b0 * m..b1 * m],
            if dw.is_empty() {
                dw
            } else {
                &dw[b0 * s_len..b1 * s_len]
            },
            qr,
            &keys[b0 * s_len * a..b1 * s_len * a],
            &memory[b0 * s_len * m..b1 * s_len * m],
            &lengths[b0..b1],
            &weights[b0 * s_len..b1 * s_len],
            qpr,
            v,
            er,
            ds,
            dq,
            dqy,
            dk,
            dm,
            dvr,
        );
    });
    for row in dv_rows.chunks_exact(a.max(1)) {
        for (d, &x) in dv.iter_mut().zip(row) {
            *d += x;
        }
    }
    if let (Kind::Additive, Some(w_query), Some(_)) = (kind, w.w_query, w.v) {
        matmul(
            MatMut::row_major(dquery, z.n, z.q),
            MatRef::row_major(dqp, z.n, z.a),
            MatRef::row_major(w_query, z.a, z.q),
            false,
        );
        matmul(
            MatMut::row_major(dw_query, z.a, z.q),
            MatRef::row_major(dqp, z.n, z.a).t(),
            MatRef::row_major(query, z.n, z.q),
            true,
        );
    }
}

multiversion! {
    /// The per-row work of [`attend_backward`] but the two query products, in SIMD
    /// twins, over a range of rows: `dscore`, the values' share of `dmemory`,
    /// `dkeys`, each row's share of `dv` (`(N, A)`, additive) and `dqp`
    /// (additive) or `dquery` (general, dot).
    #[allow(clippy::too_many_arguments)]
    fn score_grads<F: Real>(
        kind: Kind,
        z: Sizes,
        dcontext: &[F],
        dweights_in: &[F],
        query: &[F],
        keys: &[F],
        memory: &[F],
        lengths: &[usize],
        weights: &[F],
        qp: &[F],
        v: &[F],
        er: &mut [F],
        dscore: &mut [F],
        dqp: &mut [F],
        dquery: &mut [F],
        dkeys: &mut [F],
        dmemory: &mut [F],
        dv: &mut [F],
    ) {
    let dweights = if dweights_in.is_empty() { None } else { Some(dweights_in) };
    let (s_len, a, m) = (z.s, z.a, z.m);
    for b in 0..z.n {
        let dc = &dcontext[b * m..][..m];
        let p = &weights[b * s_len..][..s_len];
        let ds = &mut dscore[b * s_len..][..s_len];
        let mut weighted = F::ZERO;
        for s in 0..s_len {
            let row = (b * s_len + s) * m;
            for (dmem, &d) in dmemory[row..][..m].iter_mut().zip(dc) {
                *dmem += p[s] * d;
            }
            let mut dw = dot(&memory[row..][..m], dc);
            if let Some(dweights) = dweights {
                dw += dweights[b * s_len + s];
            }
            ds[s] = dw;
            weighted += p[s] * dw;
        }
        for s in 0..s_len {
            ds[s] = p[s] * (ds[s] - weighted);
        }
    }
    if kind == Kind::Additive && !v.is_empty() {
            dqp.fill(F::ZERO);
            for b in 0..z.n {
                let dq = &mut dqp[b * a..][..a];
                let dvb = &mut dv[b * a..][..a];
                for s in 0..s_len {
                    let d = dscore[b * s_len + s];
                    let row = (b * s_len + s) * a;
                    // e as the forward computed it; 0 at padded steps, which
                    // the forward left out (so tanh(qp + k) there, say of
                    // inf - inf, cannot reach the gradients).
                    if s < lengths[b] {
                        additive_e(&qp[b * a..][..a], &keys[row..][..a], er);
                    } else {
                        er.fill(F::ZERO);
                    }
                    let dk = &mut dkeys[row..][..a];
                    for j in 0..a {
                        dvb[j] += d * er[j];
                        let dpre = d * v[j] * (F::ONE - er[j] * er[j]);
                        dk[j] += dpre;
                        dq[j] += dpre;
                    }
                }
            }
    } else if kind != Kind::Additive {
            for b in 0..z.n {
                let q = &query[b * a..][..a];
                let dq = &mut dquery[b * a..][..a];
                dq.fill(F::ZERO);
                for s in 0..s_len {
                    let d = dscore[b * s_len + s];
                    let row = (b * s_len + s) * a;
                    let (k, dk) = (&keys[row..][..a], &mut dkeys[row..][..a]);
                    for j in 0..a {
                        dq[j] += d * k[j];
                        dk[j] += d * q[j];
                    }
                }
            }
    }
    }
}

/// `e = tanh(qp + k)`, one source step of the additive score (`(A,)` each):
/// the forward's and, recomputed, the backward's.
#[inline(always)]
fn additive_e<F: Real>(qp: &[F], k: &[F], e: &mut [F]) {
    for ((e, &q), &k) in e.iter_mut().zip(qp).zip(k) {
        *e = (q + k).tanh_fast(); // exact for f64
    }
}

/// `sum_i x[i] * y[i]` in a fixed order that vectorises: 16 running sums (one per
/// lane, each in index order), a tail, then a fixed tree. The same operations in
/// every SIMD twin, so the same bits.
#[inline(always)]
fn dot<F: Real>(x: &[F], y: &[F]) -> F {
    const L: usize = 16;
    let n = x.len().min(y.len());
    let body = n - n % L;
    let mut acc = [F::ZERO; L];
    for (a, b) in x[..body].chunks_exact(L).zip(y[..body].chunks_exact(L)) {
        for l in 0..L {
            acc[l] += a[l] * b[l];
        }
    }
    let mut tail = F::ZERO;
    for (&a, &b) in x[body..n].iter().zip(&y[body..n]) {
        tail += a * b;
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            let upper = acc[l + width];
            acc[l] += upper;
        }
    }
    acc[0] + tail
}
