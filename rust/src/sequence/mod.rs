//! One direction of one recurrent layer over a whole sequence: forward and
//! backpropagation through time, for every [`Mode`](crate::mode::Mode).
//!
//! Layout (PyTorch's): `x (T, N, D)`, states `(N, H)`, `w_ih (G*H, D)`,
//! `w_hh (G*H, H)`, biases `(G*H,)`, all row-major (the MUTs: fewer rows,
//! [`Mode::ih_blocks`](crate::mode::Mode::ih_blocks) and `hh_blocks`).
//!
//! Cost and structure of the forward:
//! 1. one product for the input projection of all steps, `x (T*N, D) @
//!    w_ih^T`, biases added once (`b_hh` too, except for GRU);
//! 2. per step one product `h_prev (N, H) @ w_hh^T` (a GEMM, or over packed
//!    panels for shards of up to 32 rows: [`recurrent`]) accumulated into that step's
//!    `(N, G*H)` slice (GRU: into a scratch buffer, since `r` multiplies its `n`
//!    block), then the fused pointwise cell update of `cells`; the GRU with the
//!    reset before the product takes two products per step, `h_prev @
//!    (W_hr|W_hz)^T`, then `(r * h_prev) @ W_hn^T`, each followed by half of
//!    its pointwise update; the MUT cells likewise, with `W_hr` (and MUT2's
//!    `W_hz` on `h_prev`, MUT3's on `tanh(h_prev)`) before the reset and
//!    `W_hh` after it. Their input projection has fewer rows than `G*H`
//!    (`cells::mut_cells`), so it goes through a scratch buffer that places
//!    each block in its gate's columns and adds `x` or `tanh(x)`;
//! 3. no allocation inside the time loop.
//!
//! The backward walks the steps in the opposite order, computing per step only
//! the gate gradients and `dh_prev` (one GEMM with `w_hh`); `dx`, `dw_ih`,
//! `dw_hh` are single GEMMs over all `T*N` rows after the loop.
//!
//! [`infer_with`] runs the same loop for a call that no backward follows, with
//! one step of the per-step buffers and two slots of the states, reused; at a
//! SIMD level with 8 or more rows per step, each step makes its own input
//! projection over the same packed `W_ih`, which gives the same sums (a row's
//! sums over the panels do not depend on the other rows).
//!
//! Memory saved for the backward: `gates (T, N, G*H)` (activated),
//! `states (T+1, N, H)`, plus `cells (T+1, N, H)` for LSTM and `hn (T, N, H)`
//! for GRU (`W_hn h + b_hn`, or `r * h` with the reset before the product, as
//! for the MUTs).
//!
//! LSTM with projections (PyTorch's `proj_size`, `Dims::p = P > 0`): each step
//! ends with a second product, `h (N, P) = r (N, H) @ W_hr^T` with `r = o *
//! tanh(c)`, so the states, the output and `W_hh (4H, P)` have `P` columns and
//! the cell states `H`. The forward also keeps `proj = r (T, N, H)`; the
//! backward starts each step with `dr = dh @ W_hr` and adds `dW_hr = dy^T r`
//! over all steps after the loop, `dy (T, N, P)` the gradients of the projected
//! `h` (zero at padded steps).

mod backward;
mod forward;
mod mut_grads;
mod noise;
mod peephole_grad;
pub(crate) mod recurrent;
mod spec;
mod steps;

pub(crate) use backward::column_sums;
pub use backward::{backward, backward_with, Grads};
pub use forward::{forward, forward_with, infer_with, Forward};
pub use noise::Noise;
pub(crate) use spec::check_finite;
pub use spec::{Cache, CacheRef, Dims, NormRef, Spec, Weights};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_infer;
#[cfg(test)]
mod tests_proj;
