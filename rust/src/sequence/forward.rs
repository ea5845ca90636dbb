//! Sequence forward: input projection as one GEMM, then the time loop.

use super::spec::{check_finite, check_len, read_write_slots, zeros, Cache, Spec, Weights};
use crate::cells::{gru, lstm, rnn};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul, MatMut, MatRef};
use crate::mode::Mode;
use crate::real::Real;
use crate::simd;

/// What a forward call returns.
#[derive(Debug)]
pub struct Forward<F> {
    /// `(T, N, H)`, zero at steps past a sequence's length.
    pub output: Vec<F>,
    /// `(N, H)` final hidden state.
    pub h_n: Vec<F>,
    /// `(N, H)` final cell state (LSTM only).
    pub c_n: Option<Vec<F>>,
    /// Saved for the backward.
    pub cache: Cache<F>,
}

/// Run one direction of one layer over `x (T, N, D)` from `h0 (N, H)` (and
/// `c0 (N, H)` for LSTM).
///
/// Errors name the argument: shapes that disagree with `spec.dims`, NaN or
/// infinity in any input or parameter. Values that overflow inside the
/// recurrence (a ReLU cell with large weights) are a result, not an error, as in
/// PyTorch.
pub fn forward<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    h0: &[F],
    c0: Option<&[F]>,
    w: &Weights<'_, F>,
) -> Result<Forward<F>> {
    spec.validate()?;
    let mode = spec.mode;
    let (t_len, n, d, h) = (spec.dims.t, spec.dims.n, spec.dims.d, spec.dims.h);
    let gh = spec.gh();
    let nh = n * h;
    check_len("x", x, t_len * n * d)?;
    check_len("h0", h0, nh)?;
    spec.check_weights(w)?;
    let c0 = match (mode.has_cell_state(), c0) {
        (true, Some(c0)) => {
            check_len("c0", c0, nh)?;
            Some(c0)
        }
        (true, None) => return Err(RnnError::argument("c0", "lstm needs an initial cell state")),
        (false, Some(_)) => {
            return Err(RnnError::argument(
                "c0",
                format!("{} has no cell state; pass None", mode.name()),
            ))
        }
        (false, None) => None,
    };
    check_finite("x", x)?;
    check_finite("h0", h0)?;
    if let Some(c0) = c0 {
        check_finite("c0", c0)?;
    }
    // One linear scan of the parameters: about 1/(T*N) of the kernel's work.
    check_finite("w_ih", w.w_ih)?;
    check_finite("w_hh", w.w_hh)?;
    if let (Some(b_ih), Some(b_hh)) = (w.b_ih, w.b_hh) {
        check_finite("b_ih", b_ih)?;
        check_finite("b_hh", b_hh)?;
    }

    // Input projection for every step at once: gates (T*N, G*H) = x @ w_ih^T + biases.
    let mut gates = zeros::<F>(t_len * n * gh, "gates")?;
    matmul(
        MatMut::row_major(&mut gates, t_len * n, gh),
        MatRef::row_major(x, t_len * n, d),
        MatRef::row_major(w.w_ih, gh, d).t(),
        false,
    );
    if let (Some(b_ih), Some(b_hh)) = (w.b_ih, w.b_hh) {
        let fold_hh = !mode.separate_recurrent_projection();
        for row in gates.chunks_exact_mut(gh) {
            for ((g, &bi), &bh) in row.iter_mut().zip(b_ih).zip(b_hh) {
                *g += if fold_hh { bi + bh } else { bi };
            }
        }
    }

    let mut states = zeros::<F>((t_len + 1) * nh, "states")?; // (T+1, N, H)
    let init = spec.initial_slot();
    states[init * nh..][..nh].copy_from_slice(h0);
    let mut cells = match c0 {
        Some(c0) => {
            let mut c = zeros::<F>((t_len + 1) * nh, "cells")?; // (T+1, N, H)
            c[init * nh..][..nh].copy_from_slice(c0);
            Some(c)
        }
        None => None,
    };
    let gru_mode = mode == Mode::Gru;
    let mut hn = if gru_mode {
        Some(zeros::<F>(t_len * nh, "hn")?)
    } else {
        None
    }; // (T, N, H)
    let mut hg = if gru_mode {
        zeros::<F>(n * gh, "hg")?
    } else {
        Vec::new()
    }; // (N, 3H)
    let mut output = zeros::<F>(t_len * nh, "output")?; // (T, N, H)
    let mut active = vec![true; n];
    let w_hh_t = MatRef::row_major(w.w_hh, gh, h).t(); // (H, G*H)
    let level = simd::best_level();

    for k in 0..t_len {
        let t = spec.time_of_step(k);
        let (prev, next) = (spec.prev_slot(t), spec.next_slot(t));
        let (h_prev, h_next) = read_write_slots(&mut states, prev, next, nh);
        let g_t = &mut gates[t * n * gh..][..n * gh]; // (N, G*H)
        let h_prev_m = MatRef::row_major(h_prev, n, h);
        match mode {
            Mode::RnnTanh | Mode::RnnRelu => {
                matmul(MatMut::row_major(g_t, n, gh), h_prev_m, w_hh_t, true);
                rnn::forward_step(level, mode == Mode::RnnRelu, g_t, h_next);
            }
            Mode::Lstm => {
                matmul(MatMut::row_major(g_t, n, gh), h_prev_m, w_hh_t, true);
                let cells = cells.as_mut().expect("lstm has a cell buffer");
                let (c_prev, c_next) = read_write_slots(cells, prev, next, nh);
                lstm::forward_step(level, h, g_t, c_prev, c_next, h_next);
            }
            Mode::Gru => {
                matmul(MatMut::row_major(&mut hg, n, gh), h_prev_m, w_hh_t, false);
                if let Some(b_hh) = w.b_hh {
                    for row in hg.chunks_exact_mut(gh) {
                        for (v, &b) in row.iter_mut().zip(b_hh) {
                            *v += b;
                        }
                    }
                }
                let hn_t = &mut hn.as_mut().expect("gru has an hn buffer")[t * nh..][..nh];
                gru::forward_step(level, h, g_t, &hg, h_prev, hn_t, h_next);
            }
        }

        // Sequences that have ended keep their state; their output stays zero.
        spec.fill_active(t, &mut active);
        let out_t = &mut output[t * nh..][..nh];
        for (b, &on) in active.iter().enumerate() {
            let row = b * h..(b + 1) * h;
            if on {
                out_t[row.clone()].copy_from_slice(&h_next[row]);
            } else {
                h_next[row.clone()].copy_from_slice(&h_prev[row.clone()]);
                if let Some(cells) = cells.as_mut() {
                    let (c_prev, c_next) = read_write_slots(cells, prev, next, nh);
                    c_next[row.clone()].copy_from_slice(&c_prev[row]);
                }
            }
        }
    }

    let fin = spec.final_slot();
    let h_n = states[fin * nh..][..nh].to_vec();
    let c_n = cells.as_ref().map(|c| c[fin * nh..][..nh].to_vec());
    Ok(Forward {
        output,
        h_n,
        c_n,
        cache: Cache {
            gates,
            states,
            cells,
            hn,
        },
    })
}
