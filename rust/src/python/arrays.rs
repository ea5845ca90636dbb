//! Turning Python arguments into checked, contiguous slices, and vectors back
//! into NumPy arrays without a copy.

use std::borrow::Cow;

use numpy::ndarray::{Array, IxDyn};
use numpy::{
    Element, IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::error::RnnError;
use crate::real::Real;

/// A shape as Python prints it: `(3, 4)`, `(5,)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A float argument borrowed from NumPy for the length of a call.
pub struct FloatArg<'py, F: Element> {
    name: Cow<'static, str>,
    array: PyReadonlyArrayDyn<'py, F>,
}

/// The NumPy array behind `obj`, or a `DTypeError` naming `name`.
pub fn ndarray<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    name: &str,
) -> Result<&'a Bound<'py, PyUntypedArray>, RnnError> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        let type_name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        RnnError::dtype(name, format!("must be a numpy.ndarray, got {type_name}"))
    })
}

/// The dtype name of an array (`"float32"`, `"int64"`, ...).
pub fn dtype_name(array: &Bound<'_, PyUntypedArray>) -> String {
    array
        .dtype()
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// The float type of a call. Every entry point takes it from its input weights
/// (`w_ih`; `weight_ih_l0`, the first layer's) through [`precision`]; every other
/// float array must then match it ([`FloatArg`], [`dtype_mismatch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

/// The [`Precision`] of the array `obj`, or a `DTypeError` naming `name`.
pub fn precision(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    name: &str,
) -> Result<Precision, RnnError> {
    let array = ndarray(obj, name)?;
    let dtype = array.dtype();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(Precision::F32)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(Precision::F64)
    } else {
        Err(RnnError::dtype(
            name,
            format!("must be float32 or float64, got {}", dtype_name(array)),
        ))
    }
}

/// `$body` once for the float type of `$precision` (a [`Precision`]), with the
/// name `$F` standing for that type: one generic call serves both dtypes.
///
/// ```ignore
/// with_float!(precision(py, w_ih, "w_ih")?, F => forward_typed::<F>(py, w_ih))
/// ```
macro_rules! with_float {
    ($precision:expr, $F:ident => $body:expr) => {
        match $precision {
            $crate::python::arrays::Precision::F32 => {
                type $F = f32;
                $body
            }
            $crate::python::arrays::Precision::F64 => {
                type $F = f64;
                $body
            }
        }
    };
}
pub(crate) use with_float;

/// `enum $name { F32($inner<f32>), F64($inner<f64>) }`: a value kept for a
/// later call in the float type it was made in. `From` wraps either type;
/// `TryFrom<&$name>` gives the `&$inner<F>` back if it holds that `F`.
macro_rules! float_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident($inner:ident)) => {
        $(#[$meta])*
        $vis enum $name {
            F32($inner<f32>),
            F64($inner<f64>),
        }
        $crate::python::arrays::float_enum!(@variant $name, $inner, F32, f32);
        $crate::python::arrays::float_enum!(@variant $name, $inner, F64, f64);
    };
    (@variant $name:ident, $inner:ident, $variant:ident, $f:ty) => {
        impl From<$inner<$f>> for $name {
            fn from(value: $inner<$f>) -> Self {
                Self::$variant(value)
            }
        }
        impl<'a> TryFrom<&'a $name> for &'a $inner<$f> {
            type Error = ();
            fn try_from(value: &'a $name) -> Result<Self, ()> {
                match value {
                    $name::$variant(inner) => Ok(inner),
                    _ => Err(()),
                }
            }
        }
    };
}
pub(crate) use float_enum;

/// `$body` on what a [`float_enum`] value holds, named `$x`, whichever float
/// type that is.
macro_rules! on_float {
    ($enum:ident, $value:expr, |$x:ident| $body:expr) => {
        match $value {
            $enum::F32($x) => $body,
            $enum::F64($x) => $body,
        }
    };
}
pub(crate) use on_float;

/// The error for an array `name` whose dtype is not the call's `F`: it names
/// the array too that set `F` (the same in every entry point, see [`Precision`]).
pub fn dtype_mismatch<F: Real>(name: &str, array: &Bound<'_, PyUntypedArray>) -> RnnError {
    RnnError::dtype(
        name,
        format!(
            "must have dtype {} like the input weights of this call \
             (w_ih, weight_ih_l0), got {}",
            F::NAME,
            dtype_name(array)
        ),
    )
}

impl<'py, F: Real + Element> FloatArg<'py, F> {
    /// Borrow `obj` as an array of `F` (no conversion: another dtype is an error).
    pub fn extract(
        obj: &Bound<'py, PyAny>,
        name: impl Into<Cow<'static, str>>,
    ) -> Result<Self, RnnError> {
        let name = name.into();
        let untyped = ndarray(obj, &name)?;
        let typed = untyped
            .cast::<PyArrayDyn<F>>()
            .map_err(|_| dtype_mismatch::<F>(&name, untyped))?;
        let array = typed.try_readonly().map_err(|_| {
            RnnError::argument(&name, "is being written elsewhere and cannot be read now")
        })?;
        Ok(Self { name, array })
    }

    /// `Some` of [`extract`](Self::extract) unless `obj` is `None`.
    pub fn extract_opt(
        obj: Option<&Bound<'py, PyAny>>,
        name: impl Into<Cow<'static, str>>,
    ) -> Result<Option<Self>, RnnError> {
        obj.filter(|o| !o.is_none())
            .map(|o| Self::extract(o, name))
            .transpose()
    }

    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    /// Error unless the array has `ndim` dimensions; returns the shape.
    pub fn dims(&self, ndim: usize, meaning: &str) -> Result<&[usize], RnnError> {
        let shape = self.shape();
        if shape.len() == ndim {
            Ok(shape)
        } else {
            Err(RnnError::shape(
                &self.name,
                format!(
                    "must be {ndim}-D {meaning}, got a {}-D array of shape {}",
                    shape.len(),
                    fmt_shape(shape)
                ),
            ))
        }
    }

    /// Error unless the shape is exactly `want`; `meaning` names the axes.
    pub fn expect(&self, want: &[usize], meaning: &str) -> Result<(), RnnError> {
        if self.shape() == want {
            Ok(())
        } else {
            Err(RnnError::shape(
                &self.name,
                format!(
                    "must have shape {} = {meaning}, got {}",
                    fmt_shape(want),
                    fmt_shape(self.shape())
                ),
            ))
        }
    }

    /// The elements in C order: borrowed when the array is C-contiguous,
    /// copied otherwise.
    pub fn data(&self) -> Cow<'_, [F]> {
        // `as_slice` also accepts Fortran order, whose memory order is not ours.
        if self.array.is_c_contiguous() {
            if let Ok(slice) = self.array.as_slice() {
                return Cow::Borrowed(slice);
            }
        }
        Cow::Owned(self.array.as_array().iter().copied().collect())
    }
}

/// An integer array (any integer dtype) of `ndim` dimensions, as `usize` in C
/// order with its shape; every value must lie in `0..bound` (`usize::MAX`: any
/// value >= 0). The one reader of integer arguments: ids, rows, lengths.
pub fn int_arg(
    obj: &Bound<'_, PyAny>,
    name: &str,
    ndim: usize,
    bound: usize,
) -> Result<(Vec<usize>, Vec<usize>), RnnError> {
    let untyped = ndarray(obj, name)?;
    let kind = untyped.dtype().kind();
    if kind != b'i' && kind != b'u' {
        return Err(RnnError::dtype(
            name,
            format!("must hold integers, got dtype {}", dtype_name(untyped)),
        ));
    }
    if untyped.ndim() != ndim {
        return Err(RnnError::shape(
            name,
            format!("must be {ndim}-D, got shape {}", fmt_shape(untyped.shape())),
        ));
    }
    let shape = untyped.shape().to_vec();
    let as_i64 = untyped.call_method1("astype", ("int64",)).map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyMemoryError>(untyped.py()) {
            RnnError::out_of_memory(name, e.to_string())
        } else {
            RnnError::dtype(name, e.to_string())
        }
    })?;
    let typed = as_i64
        .cast::<PyArrayDyn<i64>>()
        .map_err(|_| RnnError::dtype(name, "could not be read as int64"))?;
    let readonly = typed
        .try_readonly()
        .map_err(|_| RnnError::argument(name, "cannot be read now"))?;
    let len = crate::buffer::checked_len(name, &shape, std::mem::size_of::<usize>())?;
    let mut out = crate::buffer::with_capacity(len, name)?;
    for (i, &v) in readonly.as_array().iter().enumerate() {
        match usize::try_from(v) {
            Ok(u) if u < bound => out.push(u),
            _ if bound == usize::MAX => {
                return Err(RnnError::argument(
                    name,
                    format!("{name}[{i}] = {v} is negative (flat index {i})"),
                ))
            }
            _ => {
                return Err(RnnError::argument(
                    name,
                    format!(
                        "must lie in 0..{}, got {v} (flat index {i})",
                        bound.saturating_sub(1)
                    ),
                ))
            }
        }
    }
    Ok((out, shape))
}

/// Sequence lengths `(N,)`, or `None`: [`int_arg`] with values >= 0 (the
/// kernels check them against `T`).
pub fn lengths_arg(obj: Option<&Bound<'_, PyAny>>) -> Result<Option<Vec<usize>>, RnnError> {
    obj.filter(|o| !o.is_none())
        .map(|o| int_arg(o, "lengths", 1, usize::MAX).map(|(values, _)| values))
        .transpose()
}

/// Hand a vector to NumPy as an array of `shape`, without copying.
pub fn to_numpy<'py, F: Element>(
    py: Python<'py>,
    data: Vec<F>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<F>>> {
    let array = Array::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| RnnError::Internal(format!("result shape {shape:?}: {e}")))?;
    Ok(array.into_pyarray(py))
}

/// Borrow `obj` for writing as a C-contiguous array of `F` with `shape`.
pub fn writable<'py, F: Real + Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    shape: &[usize],
) -> Result<PyReadwriteArrayDyn<'py, F>, RnnError> {
    let untyped = ndarray(obj, name)?;
    let typed = untyped
        .cast::<PyArrayDyn<F>>()
        .map_err(|_| dtype_mismatch::<F>(name, untyped))?;
    if typed.shape() != shape {
        return Err(RnnError::shape(
            name,
            format!(
                "must have shape {}, got {}",
                fmt_shape(shape),
                fmt_shape(typed.shape())
            ),
        ));
    }
    if !typed.is_c_contiguous() {
        return Err(RnnError::argument(
            name,
            "must be C-contiguous (it is updated in place)",
        ));
    }
    if (typed.data() as usize) % std::mem::align_of::<F>() != 0 {
        return Err(RnnError::argument(
            name,
            "must be aligned to its dtype (it is updated in place)",
        ));
    }
    typed.try_readwrite().map_err(|_| {
        RnnError::argument(
            name,
            "must be writeable and passed once (it is updated in place)",
        )
    })
}
