//! The pointwise part of one time step of each cell: gate activations and the
//! state update (forward), and the gradients of the gate pre-activations
//! (backward). The matrix products around them live in `sequence`.
//!
//! Every function works on the `N` rows of one step at once, row-major:
//! `(N, G*H)` gate buffers with the gates side by side in PyTorch's order, and
//! `(N, H)` state buffers. In the backward, `active[row]` says whether the row's
//! sequence is still running at this step; inactive rows get zero gate
//! gradients and pass the state gradient through unchanged (`dh_direct = dh`).

pub mod gru;
pub mod gru_reset_before;
pub mod layer_norm;
pub mod lstm;
pub mod lstm_cifg;
pub mod lstm_ln;
pub mod lstm_peephole;
pub mod mut_cells;
pub mod rnn;
pub mod rows;

#[cfg(test)]
mod tests;
