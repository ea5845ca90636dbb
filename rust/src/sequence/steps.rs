//! What an inference call changes in the forward's time loop: where each
//! step's rows are in buffers reused from step to step ([`Places`]), and each
//! step's own input projection ([`step_projection`]).

use super::spec::{Spec, Weights};
use crate::linalg::PANEL_MIN_ROWS;
use crate::panel::cache::{self, Form};
use crate::panel::narrow::Narrow;
use crate::real::Real;
use crate::simd::Level;
use std::sync::Arc;

/// Where step `t`'s rows are in a call's buffers: slot `s` of the states and
/// cells at `s % slots`, step `t` of the per-step buffers at `t % steps` and
/// of the gates at `t % gate_steps`. A forward that keeps its buffers for the
/// backward has every slot and step (`T + 1` and `T`, so each index is
/// itself); an inference call has two slots (`prev_slot(t)` and
/// `next_slot(t)` are consecutive, so they differ modulo 2) and one step (of
/// the gates too when they are projected step by step).
#[derive(Clone, Copy)]
pub(super) struct Places {
    pub(super) slots: usize,
    pub(super) steps: usize,
    pub(super) gate_steps: usize,
}

impl Places {
    /// The places of a call over `t_len` steps; `gates_kept` when the gates
    /// of every step are made (and kept) before the time loop.
    pub(super) fn new(t_len: usize, keep: bool, gates_kept: bool) -> Self {
        Self {
            slots: if keep { t_len + 1 } else { 2 },
            steps: if keep { t_len } else { 1 },
            gate_steps: if gates_kept { t_len } else { 1 },
        }
    }
    pub(super) fn slot(&self, slot: usize) -> usize {
        slot % self.slots
    }
    pub(super) fn step(&self, t: usize) -> usize {
        t % self.steps
    }
    pub(super) fn gate(&self, t: usize) -> usize {
        t % self.gate_steps
    }
}

/// `W_ih` packed for an input projection made step by step, inside the time
/// loop, when that gives the sums of the product over all steps at once bit
/// for bit: that product then runs over the same cached panels
/// ([`crate::linalg::matmul_weights`] at a SIMD level with at least
/// [`PANEL_MIN_ROWS`] rows), and the panels' sums for a row do not depend on
/// the other rows. Not for the cells whose gates take more than the plain
/// projection (the MUTs' mixed blocks, layer normalisation over all steps).
/// Each step's gates are then made while the step's rows are in cache, and an
/// inference call needs no `(T, N, G*H)` buffer. A step needs
/// [`STEP_PROJECTION_MIN_ROWS`] rows to repay reading all of `W_ih` each step,
/// and `W_ih` and `W_hh` must stay in the cache from step to step
/// ([`STEP_PROJECTION_MAX_BYTES`]).
pub(super) fn step_projection<F: Real>(
    spec: &Spec<'_>,
    level: Level,
    w: &Weights<'_, F>,
) -> Option<Arc<Narrow<F>>> {
    let (t, n, d) = (spec.dims.t, spec.dims.n, spec.dims.d);
    let gh = spec.gh();
    let few = n < STEP_PROJECTION_MIN_ROWS || t * n < PANEL_MIN_ROWS;
    let bytes = (w.w_ih.len() + w.w_hh.len()) * std::mem::size_of::<F>();
    let large = bytes > STEP_PROJECTION_MAX_BYTES;
    if level == Level::Scalar || spec.mode.is_mut() || w.w_ln.is_some() || few || large {
        return None;
    }
    cache::packed(w.w_ih, Form::Rows, gh, d, d, || Narrow::new(w.w_ih, gh, d)).ok()
}

/// Rows per step from which the input projection is made step by step. With
/// fewer, each step's product reads all of `W_ih` for a few rows, which is
/// bound by the cache's bandwidth: at `N = 1`, `H = 512` an LSTM call took
/// 1.27x the time of one product over all steps at once; at `N = 8`, 0.95x.
const STEP_PROJECTION_MIN_ROWS: usize = 8;

/// Bytes of `W_ih` and `W_hh` up to which the input projection is made step
/// by step: half of a 32 MiB L3. At `H = 1024` (32 MiB of `f32`), each step read
/// both from memory, and a call with `N = 32` took 1.03x-1.06x the time of
/// one product over all steps; at `H = 512` (8 MiB), 0.82x-0.99x.
const STEP_PROJECTION_MAX_BYTES: usize = 16 << 20;

/// The input projection of each step: `x (T, N, D)`, `W_ih` packed, and the
/// bias added to every row after the product (empty without biases).
pub(super) struct StepInput<'a, F> {
    pub(super) w_ih: &'a Narrow<F>,
    pub(super) x: &'a [F],
    pub(super) bias: &'a [F],
}
