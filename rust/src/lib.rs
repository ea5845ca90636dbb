//! rnncore: CPU kernels for recurrent neural networks.
//!
//! The kernels (forward and backpropagation through time for the Elman, LSTM
//! and GRU cells, in `f32` and `f64`) are plain Rust over slices and know nothing
//! of Python. The optional `python` feature adds the PyO3 binding that NumPy
//! arrays go through.

pub mod buffer;
pub mod cells;
pub mod decode;
pub mod error;
pub mod linalg;
pub mod minchar;
pub mod mode;
pub mod panel;
pub mod parallel;
pub mod real;
pub mod seq2seq;
pub mod sequence;
mod shared;
pub mod simd;
pub mod vmath;

#[cfg(test)]
mod test_util;

#[cfg(feature = "python")]
mod python;

pub use error::{Result, RnnError};
pub use mode::Mode;
pub use real::Real;
pub use sequence::{backward, forward, Cache, CacheRef, Dims, Forward, Grads, Spec, Weights};
