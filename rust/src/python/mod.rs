//! The Python extension module `rnncore._rnncore`: a thin layer that converts
//! and validates arguments, then runs the kernels with the GIL released.

mod arrays;
mod decoder;
mod embedding;
mod errors;
mod kernels;
mod loss;
mod minchar;
mod optim;
mod product;
mod seq2seq;

use pyo3::prelude::*;

use crate::error::RnnError;
use crate::simd;

/// Use `n` threads for the kernels (`None`: the default, `RNNCORE_NUM_THREADS` or
/// every core). Results are bitwise the same at any thread count.
#[pyfunction]
#[pyo3(signature = (n=None))]
fn set_num_threads(n: Option<i64>) -> PyResult<()> {
    let n = match n {
        Some(n) if !(1..=crate::parallel::MAX_THREADS as i64).contains(&n) => {
            return Err(RnnError::argument(
                "n",
                format!("must lie in 1..{}, got {n}", crate::parallel::MAX_THREADS),
            )
            .into())
        }
        Some(n) => Some(n as usize),
        None => None,
    };
    crate::parallel::set_num_threads(n);
    Ok(())
}

/// The number of threads the kernels use.
#[pyfunction]
fn get_num_threads() -> usize {
    crate::parallel::num_threads()
}

/// The SIMD instruction set the pointwise kernels run with on this CPU.
#[pyfunction]
fn simd_level() -> &'static str {
    simd::best_level().name()
}

/// The cache of packed weights: `(entries, bytes, limit, hits, misses)`.
#[pyfunction]
fn weight_cache_stats() -> (usize, usize, usize, u64, u64) {
    let s = crate::panel::cache::global().stats();
    (s.entries, s.bytes, s.limit, s.hits, s.misses)
}

/// Let the cache of packed weights hold `bytes` (0: nothing), dropping the
/// least recently used entries to fit.
#[pyfunction]
fn set_weight_cache_limit(bytes: usize) {
    crate::panel::cache::global().set_limit(bytes);
}

/// Empty the cache of packed weights and reset its counters.
#[pyfunction]
fn clear_weight_cache() {
    crate::panel::cache::global().clear();
}

#[pymodule]
#[pyo3(name = "_rnncore")]
fn rnncore_extension(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(kernels::gate_count, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::forward, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::backward, m)?)?;
    m.add_class::<decoder::Decoder>()?;
    m.add_function(wrap_pyfunction!(minchar::min_char_rnn_step, m)?)?;
    m.add_function(wrap_pyfunction!(seq2seq::decoder_forward, m)?)?;
    m.add_function(wrap_pyfunction!(seq2seq::decoder_backward, m)?)?;
    m.add_function(wrap_pyfunction!(seq2seq::decoder_keys, m)?)?;
    m.add_function(wrap_pyfunction!(product::matmul, m)?)?;
    m.add_function(wrap_pyfunction!(loss::cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(optim::adam_step, m)?)?;
    m.add_function(wrap_pyfunction!(embedding::embedding_backward, m)?)?;
    m.add_function(wrap_pyfunction!(optim::sum_squares, m)?)?;
    m.add_function(wrap_pyfunction!(seq2seq::decoder_prepare, m)?)?;
    m.add_class::<seq2seq::DecoderPrepared>()?;
    m.add_class::<seq2seq::AttentionDecoderCache>()?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(weight_cache_stats, m)?)?;
    m.add_function(wrap_pyfunction!(set_weight_cache_limit, m)?)?;
    m.add_function(wrap_pyfunction!(clear_weight_cache, m)?)?;
    Ok(())
}
