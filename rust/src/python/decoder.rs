//! `Decoder`: a language model's weights checked and packed once, stepped and
//! sampled from Python with the GIL released.
//!
//! Signatures and shapes are documented in `python/rnncore/_rnncore.pyi`.

use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::arrays::{
    float_enum, int_arg, ndarray, on_float, precision, to_numpy, with_float, FloatArg,
};
use super::errors::run_detached;
use crate::buffer;
use crate::decode::{self, Input, Knobs, ModelWeights, Sampling, Stack, State};
use crate::error::RnnError;
use crate::mode::Mode;
use crate::panel::stored::Storage;
use crate::real::Real;
use crate::sequence;
use crate::simd;

/// One layer's arrays as Python passes them: `(w_ih, w_hh, b_ih, b_hh)`.
type LayerArgs<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
);

float_enum!(enum Typed(Stack));

/// A stacked recurrent language model prepared for decoding.
#[pyclass(module = "rnncore._rnncore", frozen)]
pub struct Decoder {
    typed: Typed,
}

fn build<F: Real + Element>(
    py: Python<'_>,
    mode: Mode,
    layers: &[LayerArgs<'_>],
    head_weight: &Bound<'_, PyAny>,
    head_bias: Option<&Bound<'_, PyAny>>,
    embedding: Option<&Bound<'_, PyAny>>,
    storage: Storage,
) -> PyResult<Stack<F>> {
    let head_w = FloatArg::<F>::extract(head_weight, "head_weight")?;
    let hs = head_w.dims(2, "(V, H)")?.to_vec();
    let (v, h) = (hs[0], hs[1]);
    if v == 0 || h == 0 {
        return Err(RnnError::shape("head_weight", "must have V >= 1 and H >= 1").into());
    }
    let head_b = FloatArg::<F>::extract_opt(head_bias, "head_bias")?;
    if let Some(b) = &head_b {
        b.expect(&[v], "(V,)")?;
    }
    let emb = FloatArg::<F>::extract_opt(embedding, "embedding")?;
    let k0 = match &emb {
        Some(e) => {
            let es = e.dims(2, "(V, E)")?.to_vec();
            e.expect(&[v, es[1]], "(V, E) with V from head_weight")?;
            if es[1] == 0 {
                return Err(RnnError::shape("embedding", "must have E >= 1").into());
            }
            es[1]
        }
        None => v,
    };
    if layers.is_empty() {
        return Err(RnnError::argument("layers", "must hold at least one layer").into());
    }
    let gh = mode.gates() * h;
    let mut args = Vec::with_capacity(layers.len());
    for (l, (w_ih, w_hh, b_ih, b_hh)) in layers.iter().enumerate() {
        let k = if l == 0 { k0 } else { h };
        let w_ih = FloatArg::<F>::extract(w_ih, format!("weight_ih_l{l}"))?;
        w_ih.expect(&[gh, k], "(G*H, K)")?;
        let w_hh = FloatArg::<F>::extract(w_hh, format!("weight_hh_l{l}"))?;
        w_hh.expect(&[gh, h], "(G*H, H)")?;
        let b_ih = FloatArg::<F>::extract_opt(b_ih.as_ref(), format!("bias_ih_l{l}"))?;
        let b_hh = FloatArg::<F>::extract_opt(b_hh.as_ref(), format!("bias_hh_l{l}"))?;
        for b in b_ih.iter().chain(b_hh.iter()) {
            b.expect(&[gh], "(G*H,)")?;
        }
        args.push((w_ih, w_hh, b_ih, b_hh));
    }
    let data: Vec<_> = args
        .iter()
        .map(|(a, b, c, d)| {
            (
                a.data(),
                b.data(),
                c.as_ref().map(|x| x.data()),
                d.as_ref().map(|x| x.data()),
            )
        })
        .collect();
    let (head_w_d, head_b_d, emb_d) = (
        head_w.data(),
        head_b.as_ref().map(|b| b.data()),
        emb.as_ref().map(|e| e.data()),
    );
    let weights = ModelWeights {
        mode,
        hidden: h,
        input: match &emb_d {
            Some(e) => Input::Embedding(e),
            None => Input::OneHot,
        },
        layers: data
            .iter()
            .map(|(a, b, c, d)| sequence::Weights {
                w_ih: a,
                w_hh: b,
                b_ih: c.as_deref(),
                b_hh: d.as_deref(),
                w_peep: None,
                w_ln: None,
                b_ln: None,
                w_hr: None,
            })
            .collect(),
        head_w: &head_w_d,
        head_b: head_b_d.as_deref(),
    };
    run_detached(py, || Stack::new(&weights, storage))
}

/// The state arrays `h` and `c` of `n` rows, checked and copied; with `rows`,
/// the arrays hold any number `M` of rows and row `i` of the state is their
/// row `rows[i]` (`rows (n,)` in `0..M`, repeats allowed).
fn state_arg<F: Real + Element>(
    stack: &Stack<F>,
    n: usize,
    h: &Bound<'_, PyAny>,
    c: Option<&Bound<'_, PyAny>>,
    rows: Option<&[usize]>,
) -> Result<State<F>, RnnError> {
    let h = FloatArg::<F>::extract(h, "h")?;
    let m = match rows {
        Some(_) => h.dims(3, "(L, M, H)")?[1],
        None => n,
    };
    let want = [stack.num_layers(), m, stack.hidden()];
    h.expect(&want, "(L, N, H)")?;
    let c = FloatArg::<F>::extract_opt(c, "c")?;
    match (&c, stack.mode().has_cell_state()) {
        (Some(c), true) => c.expect(&want, "(L, N, H)")?,
        (None, true) => return Err(RnnError::argument("c", "an LSTM state needs c")),
        (Some(_), false) => {
            return Err(RnnError::argument(
                "c",
                "must be None: only an LSTM has a cell state",
            ))
        }
        (None, false) => {}
    }
    let take = |a: &FloatArg<'_, F>, name: &str| -> Result<Vec<F>, RnnError> {
        let data = a.data();
        let out = match rows {
            None => data.into_owned(),
            Some(rows) => gather(&data, rows, stack.num_layers(), m, stack.hidden(), name)?,
        };
        crate::sequence::check_finite(name, &out)?;
        Ok(out)
    };
    let h = take(&h, "h")?;
    let c = c.as_ref().map(|c| take(c, "c")).transpose()?;
    Ok(State { h, c })
}

/// Rows `rows` of every layer of `a (L, M, H)`: `(L, rows.len(), H)` (an
/// error, not an abort, when that does not fit in memory).
fn gather<F: Copy>(
    a: &[F],
    rows: &[usize],
    layers: usize,
    m: usize,
    hsz: usize,
    name: &str,
) -> Result<Vec<F>, RnnError> {
    let len = buffer::checked_len(name, &[layers, rows.len(), hsz], std::mem::size_of::<F>())?;
    let mut out = buffer::with_capacity(len, name)?;
    for l in 0..layers {
        for &r in rows {
            out.extend_from_slice(&a[(l * m + r) * hsz..][..hsz]);
        }
    }
    Ok(out)
}

fn state_out<'py, F: Real + Element>(
    py: Python<'py>,
    stack: &Stack<F>,
    n: usize,
    state: State<F>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let shape = [stack.num_layers(), n, stack.hidden()];
    let h = to_numpy(py, state.h, &shape)?.into_any();
    let c = match state.c {
        Some(c) => to_numpy(py, c, &shape)?.into_any(),
        None => py.None().into_bound(py),
    };
    Ok((h, c))
}

fn run_typed<'py, F: Real + Element>(
    py: Python<'py>,
    stack: &Stack<F>,
    ids: &Bound<'py, PyAny>,
    h: &Bound<'py, PyAny>,
    c: Option<&Bound<'py, PyAny>>,
    ndim: usize,
    rows: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (ids, shape) = int_arg(ids, "ids", ndim, stack.vocab())?;
    let n = shape[0];
    if ids.is_empty() {
        return Err(RnnError::shape("ids", "must hold at least one id").into());
    }
    let rows = match rows.filter(|r| !r.is_none()) {
        Some(r) => {
            let m = ndarray(h, "h")?.shape().get(1).copied().unwrap_or(0);
            let (rows, shape) = int_arg(r, "rows", 1, m)?;
            if shape[0] != n {
                return Err(RnnError::shape(
                    "rows",
                    format!("must hold one row per id ({n}), got {}", shape[0]),
                )
                .into());
            }
            Some(rows)
        }
        None => None,
    };
    let state = state_arg(stack, n, h, c, rows.as_deref())?;
    let level = simd::best_level();
    let (lp, state) = run_detached(py, || decode::run(stack, level, &ids, n, state))?;
    let mut lp_shape = shape.clone();
    lp_shape.push(stack.vocab());
    let lp = to_numpy(py, lp, &lp_shape)?.into_any();
    let (h, c) = state_out(py, stack, n, state)?;
    PyTuple::new(py, [lp, h, c])
}

#[allow(clippy::too_many_arguments)]
fn sample_typed<'py, F: Real + Element>(
    py: Python<'py>,
    stack: &Stack<F>,
    first: &Bound<'py, PyAny>,
    h: &Bound<'py, PyAny>,
    c: Option<&Bound<'py, PyAny>>,
    uniforms: &Bound<'py, PyAny>,
    length: usize,
    knobs: Knobs,
    stop_id: Option<usize>,
) -> PyResult<Bound<'py, PyTuple>> {
    let first = FloatArg::<f64>::extract(first, "log_probs")?;
    let n = first.dims(2, "(N, V)")?[0];
    first.expect(&[n, stack.vocab()], "(N, V)")?;
    if n == 0 {
        return Err(RnnError::shape("log_probs", "must have at least one row").into());
    }
    let first = first.data();
    if first.iter().any(|x| x.is_nan() || *x == f64::INFINITY) {
        return Err(RnnError::non_finite("log_probs").into());
    }
    let state = state_arg(stack, n, h, c, None)?;
    let uniforms = FloatArg::<f64>::extract(uniforms, "uniforms")?;
    uniforms.dims(1, "(M,)")?;
    let uniforms = uniforms.data();
    let draws = buffer::checked_len("length * N", &[length, n], 8)?;
    if knobs.random() && uniforms.len() < draws {
        return Err(RnnError::shape(
            "uniforms",
            format!("must hold length * N = {draws} numbers"),
        )
        .into());
    }
    if uniforms.iter().any(|u| !(0.0..1.0).contains(u)) {
        return Err(RnnError::argument("uniforms", "must lie in [0, 1)").into());
    }
    let level = simd::best_level();
    let sampling = Sampling {
        length,
        knobs,
        stop: stop_id,
        uniforms: &uniforms,
    };
    let out = run_detached(py, || {
        decode::sample(stack, level, &first, state, &sampling)
    })?;
    let ids = to_numpy(py, out.ids, &[n, length])?.into_any();
    let ends: Vec<i64> = out.ends.iter().map(|&e| e as i64).collect();
    let ends = to_numpy(py, ends, &[n])?.into_any();
    PyTuple::new(py, [ids, ends])
}

#[pymethods]
impl Decoder {
    #[new]
    #[pyo3(signature = (mode, layers, head_weight, head_bias=None, embedding=None, *, weights="full"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        mode: &str,
        layers: Vec<LayerArgs<'_>>,
        head_weight: &Bound<'_, PyAny>,
        head_bias: Option<&Bound<'_, PyAny>>,
        embedding: Option<&Bound<'_, PyAny>>,
        weights: &str,
    ) -> PyResult<Self> {
        let mode = Mode::from_name(mode)?;
        let storage = Storage::from_name(weights)?;
        let first = layers
            .first()
            .ok_or_else(|| RnnError::argument("layers", "must hold at least one layer"))?;
        let typed = with_float!(precision(py, &first.0, "layers[0].w_ih")?, F => {
            let stack = build::<F>(py, mode, &layers, head_weight, head_bias, embedding, storage)?;
            Typed::from(stack)
        });
        Ok(Self { typed })
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        on_float!(Typed, &self.typed, |s| s.vocab())
    }
    #[getter]
    fn hidden_size(&self) -> usize {
        on_float!(Typed, &self.typed, |s| s.hidden())
    }
    #[getter]
    fn num_layers(&self) -> usize {
        on_float!(Typed, &self.typed, |s| s.num_layers())
    }
    #[getter]
    fn mode(&self) -> &'static str {
        on_float!(Typed, &self.typed, |s| s.mode().name())
    }
    /// How the weight matrices are kept: `"full"`, `"bfloat16"` or `"int8"`.
    #[getter]
    fn weights(&self) -> &'static str {
        on_float!(Typed, &self.typed, |s| s.storage().name())
    }
    /// Bytes of the packed weight matrices.
    #[getter]
    fn weight_bytes(&self) -> usize {
        on_float!(Typed, &self.typed, |s| s.weight_bytes())
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        match self.typed {
            Typed::F32(_) => f32::NAME,
            Typed::F64(_) => f64::NAME,
        }
    }

    /// One symbol per row: `ids (N,)` -> `(log_probs (N, V), h, c)`; with
    /// `rows (N,)`, row `i` continues row `rows[i]` of `h`/`c` (`(L, M, H)`).
    #[pyo3(signature = (ids, h, c=None, rows=None))]
    fn step<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        h: &Bound<'py, PyAny>,
        c: Option<&Bound<'py, PyAny>>,
        rows: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        on_float!(Typed, &self.typed, |s| run_typed(py, s, ids, h, c, 1, rows))
    }

    /// `ids (N, T)` in one call -> `(log_probs (N, T, V), h, c)`.
    #[pyo3(signature = (ids, h, c=None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        h: &Bound<'py, PyAny>,
        c: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        on_float!(Typed, &self.typed, |s| run_typed(py, s, ids, h, c, 2, None))
    }

    /// The sampling loop: `(ids (N, length) int64, ends (N,) int64)`.
    #[pyo3(signature = (log_probs, h, c, uniforms, length, temperature=1.0, top_k=None, top_p=None, stop_id=None, *, top_p_slack))]
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        log_probs: &Bound<'py, PyAny>,
        h: &Bound<'py, PyAny>,
        c: Option<&Bound<'py, PyAny>>,
        uniforms: &Bound<'py, PyAny>,
        length: usize,
        temperature: f64,
        top_k: Option<usize>,
        top_p: Option<f64>,
        stop_id: Option<usize>,
        top_p_slack: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let knobs = Knobs::new(temperature, top_k, top_p, top_p_slack)?;
        on_float!(Typed, &self.typed, |s| sample_typed(
            py, s, log_probs, h, c, uniforms, length, knobs, stop_id
        ))
    }
}
