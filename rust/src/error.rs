//! Errors the kernels return. The Python binding maps each variant to one
//! exception class (see `python/errors.rs`); nothing here knows about Python.

use thiserror::Error;

/// Everything that can go wrong in a kernel call, each naming the argument at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RnnError {
    /// Wrong number of dimensions, wrong, empty or mismatched shape.
    #[error("{arg}: {msg}")]
    Shape { arg: String, msg: String },
    /// A dtype the operation does not take, or dtypes that disagree.
    #[error("{arg}: {msg}")]
    DType { arg: String, msg: String },
    /// NaN or infinity where finite values are required.
    #[error("{arg} contains NaN or infinity")]
    NonFinite { arg: String },
    /// A value outside its allowed range.
    #[error("{arg}: {msg}")]
    Argument { arg: String, msg: String },
    /// A buffer that does not fit in memory, or whose size overflows.
    #[error("{what}: {msg}")]
    OutOfMemory { what: String, msg: String },
    /// A broken invariant inside rnncore (a bug, never the user's input).
    #[error("internal error in rnncore: {0}")]
    Internal(String),
}

impl RnnError {
    pub fn shape(arg: &str, msg: impl Into<String>) -> Self {
        Self::Shape {
            arg: arg.to_owned(),
            msg: msg.into(),
        }
    }
    pub fn dtype(arg: &str, msg: impl Into<String>) -> Self {
        Self::DType {
            arg: arg.to_owned(),
            msg: msg.into(),
        }
    }
    pub fn non_finite(arg: &str) -> Self {
        Self::NonFinite {
            arg: arg.to_owned(),
        }
    }
    pub fn out_of_memory(what: &str, msg: impl Into<String>) -> Self {
        Self::OutOfMemory {
            what: what.to_owned(),
            msg: msg.into(),
        }
    }
    pub fn argument(arg: &str, msg: impl Into<String>) -> Self {
        Self::Argument {
            arg: arg.to_owned(),
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, RnnError>;
