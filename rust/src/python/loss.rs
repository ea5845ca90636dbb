//! `cross_entropy`: the softmax cross-entropy of a logits matrix, which becomes
//! the loss's gradient in place, with the GIL released.
//!
//! Signature and shapes are documented in `python/rnncore/_rnncore.pyi`.

use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::arrays::{fmt_shape, int_arg, ndarray, precision, with_float, writable, FloatArg};
use super::errors::run_detached;
use crate::error::RnnError;
use crate::loss;
use crate::real::Real;

fn typed<'py, F: Real + Element>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
    scale: f64,
) -> PyResult<f64> {
    let shape = ndarray(logits, "logits")?.shape().to_vec();
    if shape.len() != 2 || shape[1] == 0 {
        return Err(RnnError::shape(
            "logits",
            format!("must be (M, V) with V >= 1, got {}", fmt_shape(&shape)),
        )
        .into());
    }
    let (m, v) = (shape[0], shape[1]);
    let (t, t_shape) = int_arg(targets, "targets", 1, v)?;
    if t_shape[0] != m {
        return Err(RnnError::shape(
            "targets",
            format!(
                "must be ({m},), one per row of logits, got ({},)",
                t_shape[0]
            ),
        )
        .into());
    }
    let w = match weights {
        None => None,
        Some(obj) => {
            let arg = FloatArg::<f64>::extract(obj, "weights")?;
            if arg.dims(1, "(M,)")?[0] != m {
                return Err(RnnError::shape("weights", format!("must be ({m},)")).into());
            }
            let w = arg.data().into_owned();
            if w.iter().any(|&x| !(x.is_finite() && x >= 0.0)) {
                return Err(RnnError::argument("weights", "must be finite and >= 0").into());
            }
            Some(w)
        }
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(
            RnnError::argument("scale", format!("must be finite and > 0, got {scale}")).into(),
        );
    }
    let mut x = writable::<F>(logits, "logits", &shape)?;
    let data = x
        .as_slice_mut()
        .map_err(|_| RnnError::Internal("a checked array is not contiguous".into()))?;
    run_detached(py, || {
        Ok(loss::cross_entropy(data, v, &t, w.as_deref(), scale))
    })
}

/// Softmax cross-entropy of `logits (M, V)`, overwritten by its gradient (see the stub).
#[pyfunction]
#[pyo3(signature = (logits, targets, weights=None, scale=1.0))]
pub fn cross_entropy<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    targets: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
    scale: f64,
) -> PyResult<f64> {
    with_float!(precision(py, logits, "logits")?, F => {
        typed::<F>(py, logits, targets, weights, scale)
    })
}
