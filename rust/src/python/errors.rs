//! The one place where kernel errors and panics become Python exceptions.
//!
//! The classes are defined in Python (`rnncore/errors.py`, so they can also
//! derive from `ValueError`/`TypeError`) and imported here.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

use crate::error::RnnError;

pyo3::import_exception!(rnncore.errors, RnnCoreError);
pyo3::import_exception!(rnncore.errors, ShapeError);
pyo3::import_exception!(rnncore.errors, DTypeError);
pyo3::import_exception!(rnncore.errors, NonFiniteError);
pyo3::import_exception!(rnncore.errors, ArgumentError);
pyo3::import_exception!(rnncore.errors, OutOfMemoryError);

impl From<RnnError> for PyErr {
    fn from(err: RnnError) -> PyErr {
        let msg = err.to_string();
        match err {
            RnnError::Shape { .. } => ShapeError::new_err(msg),
            RnnError::DType { .. } => DTypeError::new_err(msg),
            RnnError::NonFinite { .. } => NonFiniteError::new_err(msg),
            RnnError::Argument { .. } => ArgumentError::new_err(msg),
            RnnError::OutOfMemory { .. } => OutOfMemoryError::new_err(msg),
            RnnError::Internal(_) => RnnCoreError::new_err(msg),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Run a kernel with the GIL released. A kernel error becomes its exception
/// class; a panic (a bug, never expected) becomes `RnnCoreError` instead of
/// reaching Python as `PanicException`.
pub fn run_detached<T, K>(py: Python<'_>, kernel: K) -> PyResult<T>
where
    T: Send,
    K: FnOnce() -> Result<T, RnnError> + Send,
{
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(kernel)));
    match outcome {
        Ok(result) => result.map_err(PyErr::from),
        Err(payload) => Err(RnnCoreError::new_err(format!(
            "internal error in rnncore (please report it): {}",
            panic_message(payload.as_ref())
        ))),
    }
}
