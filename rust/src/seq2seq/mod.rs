//! Sequence to sequence: attention over encoder outputs and the attention
//! decoder (teacher-forced, or with scheduled sampling of its inputs), forward and backpropagation through time, in `f32` and
//! `f64`. The equations are those of `rnncore.reference.attention` and
//! `rnncore.reference.decoder`; the cell step is that of [`crate::cells`].
//!
//! Layout: `y (T, N, E)` decoder inputs, `memory (N, S, M)` encoder outputs,
//! `h0`, `c0 (N, H)`, `w_ih (G*H, E + M)`, `w_hh (G*H, H)`, biases `(G*H,)`,
//! `w_query (A, H)`, `w_key (A, M)`, `v (A,)`; all row-major.

mod attention;
mod backward;
mod decoder;
mod sampling;

pub use attention::{project_keys, AttnWeights, Kind, Sizes as AttnSizes};
pub use backward::decoder_backward;
#[cfg(test)]
use decoder::DecoderForward;
pub use decoder::{decoder_forward, DecoderCache, DecoderSpec, DecoderWeights, Prepared};
pub use sampling::Sampling;

#[cfg(test)]
mod tests;
