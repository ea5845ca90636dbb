//! `embedding_backward`: the embedding's scatter-add into its gradient, in
//! place, with the GIL released.
//!
//! Signature and shapes are documented in `python/rnncore/_rnncore.pyi`.

use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::arrays::{fmt_shape, int_arg, ndarray, precision, with_float, writable, FloatArg};
use super::errors::run_detached;
use crate::embedding;
use crate::error::RnnError;
use crate::real::Real;

fn typed<'py, F: Real + Element>(
    py: Python<'py>,
    grad: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    d_out: &Bound<'py, PyAny>,
) -> PyResult<()> {
    let shape = ndarray(grad, "grad")?.shape().to_vec();
    if shape.len() != 2 {
        return Err(
            RnnError::shape("grad", format!("must be (V, E), got {}", fmt_shape(&shape))).into(),
        );
    }
    let (v, e) = (shape[0], shape[1]);
    let (rows, _) = int_arg(ids, "ids", 1, v)?;
    let d = FloatArg::<F>::extract(d_out, "d_out")?;
    if d.shape() != [rows.len(), e] {
        return Err(RnnError::shape(
            "d_out",
            format!(
                "must be ({}, {e}), one row per id, got {}",
                rows.len(),
                fmt_shape(d.shape())
            ),
        )
        .into());
    }
    let data = d.data();
    let mut g = writable::<F>(grad, "grad", &shape)?;
    let g = g
        .as_slice_mut()
        .map_err(|_| RnnError::Internal("a checked array is not contiguous".into()))?;
    run_detached(py, || {
        embedding::scatter_add(g, e, &rows, &data);
        Ok(())
    })
}

/// `grad[ids[m]] += d_out[m]` for every `m`, in order (see the stub).
#[pyfunction]
pub fn embedding_backward<'py>(
    py: Python<'py>,
    grad: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    d_out: &Bound<'py, PyAny>,
) -> PyResult<()> {
    with_float!(precision(py, grad, "grad")?, F => typed::<F>(py, grad, ids, d_out))
}
