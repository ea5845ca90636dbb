//! rnncore: CPU kernels for recurrent neural networks.
//!
//! The kernels (forward and backpropagation through time for the Elman, LSTM
//! and GRU cells, in `f32` and `f64`) are plain Rust over slices and know nothing
//! of Python. The optional `python` feature adds the PyO3 binding that NumPy
//! arrays go through.
//!
//! The crate is the extension's inside, not a Rust library: its modules are
//! `pub(crate)`, and only the sequence kernels' entry points are re-exported
//! below. Without the binding (`--no-default-features`, the kernels' own tests)
//! much of it has no caller, hence the `dead_code` allowance there.
#![cfg_attr(not(feature = "python"), allow(dead_code, unused_imports))]

pub(crate) mod buffer;
pub(crate) mod cells;
pub(crate) mod decode;
pub(crate) mod embedding;
pub(crate) mod error;
pub(crate) mod linalg;
pub(crate) mod loss;
pub(crate) mod minchar;
pub(crate) mod mode;
pub(crate) mod optim;
pub(crate) mod panel;
pub(crate) mod parallel;
pub(crate) mod real;
pub(crate) mod seq2seq;
pub(crate) mod sequence;
mod shared;
pub(crate) mod simd;
pub(crate) mod vmath;

#[cfg(test)]
mod test_util;

#[cfg(feature = "python")]
mod python;

pub use error::{Result, RnnError};
pub use mode::Mode;
pub use real::Real;
pub use sequence::{backward, forward, Cache, CacheRef, Dims, Forward, Grads, Spec, Weights};
