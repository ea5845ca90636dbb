//! Decoding: a whole stacked language model advanced one symbol at a time.
//!
//! [`Stack`] holds a model's weights, checked and repacked once, and steps a
//! batch of rows (one sample, many samples, the hypotheses of a beam) by one
//! symbol per call, returning next-symbol log-probabilities. [`generate`] runs
//! many steps in one call: a prime or a text to score, or a sampling loop with
//! temperature, top-k, top-p and a stop symbol ([`draw`]).

pub mod draw;
pub mod generate;
mod kernel;
pub mod stack;

#[cfg(test)]
use draw::Drawer;
pub use draw::Knobs;
pub use generate::{run, sample, Sampling, State};
pub use stack::{Input, ModelWeights, Stack};

#[cfg(test)]
mod tests;
