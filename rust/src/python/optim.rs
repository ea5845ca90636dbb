//! `adam_step`: one Adam or AdamW step over every parameter in one call,
//! updating the caller's arrays in place; `sum_squares`: the squares of every
//! gradient summed for the global norm. Both release the GIL.
//!
//! Signature and shapes are documented in `python/rnncore/_rnncore.pyi`.

use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::arrays::{fmt_shape, ndarray, precision, with_float, writable, FloatArg};
use super::errors::run_detached;
use crate::error::RnnError;
use crate::optim::{self, Adam};
use crate::real::Real;

fn typed<'py, F: Real + Element>(
    py: Python<'py>,
    arrays: [&[Bound<'py, PyAny>]; 4],
    hp: Adam,
) -> PyResult<()> {
    let [params, grads, exp_avg, exp_avg_sq] = arrays;
    let n = params.len();
    if grads.len() != n || exp_avg.len() != n || exp_avg_sq.len() != n {
        return Err(RnnError::shape(
            "grads",
            format!("params, grads, exp_avg and exp_avg_sq must be lists of one length ({n})"),
        )
        .into());
    }
    let mut gs = Vec::with_capacity(n);
    let mut rw = Vec::with_capacity(3 * n);
    for i in 0..n {
        let shape = ndarray(&params[i], &format!("params[{i}]"))?
            .shape()
            .to_vec();
        let g = FloatArg::<F>::extract(&grads[i], format!("grads[{i}]"))?;
        if g.shape() != shape {
            return Err(RnnError::shape(
                &format!("grads[{i}]"),
                format!(
                    "must have its parameter's shape {}, got {}",
                    fmt_shape(&shape),
                    fmt_shape(g.shape())
                ),
            )
            .into());
        }
        rw.push(writable::<F>(&params[i], &format!("params[{i}]"), &shape)?);
        rw.push(writable::<F>(
            &exp_avg[i],
            &format!("exp_avg[{i}]"),
            &shape,
        )?);
        rw.push(writable::<F>(
            &exp_avg_sq[i],
            &format!("exp_avg_sq[{i}]"),
            &shape,
        )?);
        gs.push(g);
    }
    let g_data: Vec<_> = gs.iter().map(|g| g.data()).collect();
    let mut slices = Vec::with_capacity(3 * n);
    for a in rw.iter_mut() {
        slices.push(
            a.as_slice_mut()
                .map_err(|_| RnnError::Internal("a checked array is not contiguous".into()))?,
        );
    }
    run_detached(py, move || {
        let mut slots = Vec::with_capacity(n);
        let mut it = slices.into_iter();
        for g in &g_data {
            let (p, m, v) = match (it.next(), it.next(), it.next()) {
                (Some(p), Some(m), Some(v)) => (p, m, v),
                _ => return Err(RnnError::Internal("adam_step lost an array".into())),
            };
            slots.push((p, &g[..], m, v));
        }
        optim::adam(slots, &hp);
        Ok(())
    })
}

/// One Adam (AdamW with `decoupled`) step over every parameter (see the stub).
#[pyfunction]
#[pyo3(signature = (params, grads, exp_avg, exp_avg_sq, *, step_size, bias_correction2_sqrt, lr, beta1, beta2, eps, weight_decay, decoupled))]
#[allow(clippy::too_many_arguments)]
pub fn adam_step<'py>(
    py: Python<'py>,
    params: Vec<Bound<'py, PyAny>>,
    grads: Vec<Bound<'py, PyAny>>,
    exp_avg: Vec<Bound<'py, PyAny>>,
    exp_avg_sq: Vec<Bound<'py, PyAny>>,
    step_size: f64,
    bias_correction2_sqrt: f64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
) -> PyResult<()> {
    // NaN or negative is refused; an infinite step (a learning rate near the
    // largest float) is computed, as NumPy computes it, for the caller's guard.
    let knobs = [
        ("step_size", step_size),
        ("bias_correction2_sqrt", bias_correction2_sqrt),
        ("lr", lr),
        ("eps", eps),
        ("weight_decay", weight_decay),
    ];
    for (name, v) in knobs {
        if v.is_nan() || v < 0.0 {
            return Err(
                RnnError::argument(name, format!("must be >= 0 (not NaN), got {v}")).into(),
            );
        }
    }
    for (name, v) in [("beta1", beta1), ("beta2", beta2)] {
        if !(0.0..1.0).contains(&v) {
            return Err(RnnError::argument(name, format!("must be in [0, 1), got {v}")).into());
        }
    }
    if params.is_empty() {
        return Ok(());
    }
    let hp = Adam {
        step_size,
        bias_correction2_sqrt,
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled,
    };
    let arrays = [&params[..], &grads[..], &exp_avg[..], &exp_avg_sq[..]];
    with_float!(precision(py, &params[0], "params[0]")?, F => typed::<F>(py, arrays, hp))
}

fn squares_typed<'py, F: Real + Element>(
    py: Python<'py>,
    arrays: &[Bound<'py, PyAny>],
) -> PyResult<f64> {
    let args = arrays
        .iter()
        .enumerate()
        .map(|(i, a)| FloatArg::<F>::extract(a, format!("arrays[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let data: Vec<_> = args.iter().map(|a| a.data()).collect();
    run_detached(py, move || {
        let slices: Vec<&[F]> = data.iter().map(|d| &d[..]).collect();
        Ok(optim::sum_squares(&slices))
    })
}

/// `Σ x²` over every element of every array (one float dtype), in float64.
#[pyfunction]
pub fn sum_squares<'py>(py: Python<'py>, arrays: Vec<Bound<'py, PyAny>>) -> PyResult<f64> {
    if arrays.is_empty() {
        return Ok(0.0);
    }
    with_float!(precision(py, &arrays[0], "arrays[0]")?, F => squares_typed::<F>(py, &arrays))
}
