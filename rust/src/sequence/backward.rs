//! Backpropagation through time for one [`forward`](super::forward) call.

use super::spec::{check_finite, check_len, zeros, CacheRef, Spec, Weights};
use crate::cells::{gru, lstm, rnn};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul, MatMut, MatRef};
use crate::mode::Mode;
use crate::real::Real;
use crate::simd;

/// Gradients of one direction of one layer (owned, row-major).
#[derive(Debug)]
pub struct Grads<F> {
    /// `(T, N, D)`.
    pub dx: Vec<F>,
    /// `(N, H)`.
    pub dh0: Vec<F>,
    /// `(N, H)`, LSTM only.
    pub dc0: Option<Vec<F>>,
    /// `(G*H, D)`.
    pub dw_ih: Vec<F>,
    /// `(G*H, H)`.
    pub dw_hh: Vec<F>,
    /// `(G*H,)`, `None` for a layer without bias.
    pub db_ih: Option<Vec<F>>,
    /// `(G*H,)`, `None` for a layer without bias.
    pub db_hh: Option<Vec<F>>,
}

/// Check that a cache has the shapes the forward of `spec` produces.
fn check_cache<F>(spec: &Spec<'_>, cache: &CacheRef<'_, F>) -> Result<()> {
    let (t, nh) = (spec.dims.t, spec.dims.n * spec.dims.h);
    check_len("cache['gates']", cache.gates, t * spec.dims.n * spec.gh())?;
    check_len("cache['states']", cache.states, (t + 1) * nh)?;
    match (spec.mode, cache.cells, cache.hn) {
        (Mode::Lstm, Some(cells), _) => check_len("cache['cells']", cells, (t + 1) * nh),
        (Mode::Gru, _, Some(hn)) => check_len("cache['hn']", hn, t * nh),
        (Mode::Lstm, None, _) => Err(RnnError::argument("cache", "lstm cache lacks 'cells'")),
        (Mode::Gru, _, None) => Err(RnnError::argument("cache", "gru cache lacks 'hn'")),
        _ => Ok(()),
    }
}

/// Column sums of a `(rows, cols)` row-major matrix.
fn column_sums<F: Real>(m: &[F], cols: usize, out: &mut [F]) {
    for row in m.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// Gradients of `sum(d_output * output) + sum(d_h_n * h_n) + sum(d_c_n * c_n)`
/// with respect to the inputs and parameters of the forward call described by
/// `spec`, `x` and `w`. `d_output (T, N, H)` is ignored at padded steps;
/// `d_h_n`/`d_c_n (N, H)` default to zero.
#[allow(clippy::too_many_arguments)]
pub fn backward<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    w: &Weights<'_, F>,
    cache: &CacheRef<'_, F>,
    d_output: &[F],
    d_h_n: Option<&[F]>,
    d_c_n: Option<&[F]>,
) -> Result<Grads<F>> {
    spec.validate()?;
    let mode = spec.mode;
    let (t_len, n, d, h) = (spec.dims.t, spec.dims.n, spec.dims.d, spec.dims.h);
    let (gh, nh) = (spec.gh(), n * h);
    check_len("x", x, t_len * n * d)?;
    spec.check_weights(w)?;
    check_cache(spec, cache)?;
    check_len("d_output", d_output, t_len * nh)?;
    check_finite("d_output", d_output)?;
    let mut dh = match d_h_n {
        Some(g) => {
            check_len("d_h_n", g, nh)?;
            check_finite("d_h_n", g)?;
            g.to_vec()
        }
        None => zeros::<F>(nh, "d_h_n")?,
    }; // (N, H) gradient of the state the current step writes
    let mut dc = match (mode.has_cell_state(), d_c_n) {
        (true, Some(g)) => {
            check_len("d_c_n", g, nh)?;
            check_finite("d_c_n", g)?;
            g.to_vec()
        }
        (true, None) => zeros::<F>(nh, "d_c_n")?,
        (false, Some(_)) => {
            return Err(RnnError::argument(
                "d_c_n",
                format!("{} has no cell state; pass None", mode.name()),
            ))
        }
        (false, None) => Vec::new(),
    }; // (N, H), LSTM only

    let separate = mode.separate_recurrent_projection();
    let mut dgx = zeros::<F>(t_len * n * gh, "dgates")?; // (T, N, G*H) input side
    let mut dgh = if separate {
        zeros::<F>(t_len * n * gh, "dgates")?
    } else {
        Vec::new()
    }; // GRU: recurrent side
    let mut dh_prev = zeros::<F>(nh, "dh")?; // (N, H)
    let mut active = vec![true; n];
    let w_hh = MatRef::row_major(w.w_hh, gh, h); // (G*H, H)
    let level = simd::best_level();

    for k in (0..t_len).rev() {
        let t = spec.time_of_step(k);
        let (prev, next) = (spec.prev_slot(t), spec.next_slot(t));
        spec.fill_active(t, &mut active);
        let dy_t = &d_output[t * nh..][..nh];
        for (b, &on) in active.iter().enumerate() {
            if on {
                for (g, &v) in dh[b * h..(b + 1) * h]
                    .iter_mut()
                    .zip(&dy_t[b * h..(b + 1) * h])
                {
                    *g += v;
                }
            }
        }
        let gates_t = &cache.gates[t * n * gh..][..n * gh]; // (N, G*H)
        let dgx_t = &mut dgx[t * n * gh..][..n * gh];
        match mode {
            Mode::RnnTanh | Mode::RnnRelu => {
                let relu = mode == Mode::RnnRelu;
                rnn::backward_step(level, h, relu, &active, gates_t, &dh, dgx_t, &mut dh_prev);
            }
            Mode::Lstm => {
                let cells = cache.cells.expect("checked by check_cache");
                let c_prev = &cells[prev * nh..][..nh];
                let c_next = &cells[next * nh..][..nh];
                lstm::backward_step(
                    level,
                    h,
                    &active,
                    gates_t,
                    c_prev,
                    c_next,
                    &dh,
                    &mut dc,
                    dgx_t,
                    &mut dh_prev,
                );
            }
            Mode::Gru => {
                let hn_t = &cache.hn.expect("checked by check_cache")[t * nh..][..nh];
                let h_prev = &cache.states[prev * nh..][..nh];
                let dgh_t = &mut dgh[t * n * gh..][..n * gh];
                gru::backward_step(
                    level,
                    h,
                    &active,
                    gates_t,
                    hn_t,
                    h_prev,
                    &dh,
                    dgx_t,
                    dgh_t,
                    &mut dh_prev,
                );
            }
        }
        // dh_prev = dh_direct + d(recurrent projection) @ w_hh
        let dgr_t = if separate {
            &dgh[t * n * gh..][..n * gh]
        } else {
            &dgx[t * n * gh..][..n * gh]
        };
        matmul(
            MatMut::row_major(&mut dh_prev, n, h),
            MatRef::row_major(dgr_t, n, gh),
            w_hh,
            true,
        );
        std::mem::swap(&mut dh, &mut dh_prev);
    }

    // Everything that does not depend on the step order: one GEMM each over T*N rows.
    let rows = t_len * n;
    let dg_in = MatRef::row_major(&dgx, rows, gh); // (T*N, G*H)
    let dg_rec = if separate {
        MatRef::row_major(&dgh, rows, gh)
    } else {
        dg_in
    };
    let mut dx = zeros::<F>(rows * d, "dx")?;
    matmul(
        MatMut::row_major(&mut dx, rows, d),
        dg_in,
        MatRef::row_major(w.w_ih, gh, d),
        false,
    );
    let mut dw_ih = zeros::<F>(gh * d, "dw_ih")?;
    matmul(
        MatMut::row_major(&mut dw_ih, gh, d),
        dg_in.t(),
        MatRef::row_major(x, rows, d),
        false,
    );
    // The states each step read, in time order: slots 0..T forward, 1..T+1 reverse.
    let first_prev = if spec.reverse { 1 } else { 0 };
    let h_prevs = &cache.states[first_prev * nh..][..rows * h]; // (T*N, H)
    let mut dw_hh = zeros::<F>(gh * h, "dw_hh")?;
    matmul(
        MatMut::row_major(&mut dw_hh, gh, h),
        dg_rec.t(),
        MatRef::row_major(h_prevs, rows, h),
        false,
    );
    let (db_ih, db_hh) = if w.b_ih.is_some() {
        let mut db_ih = zeros::<F>(gh, "db_ih")?;
        column_sums(&dgx, gh, &mut db_ih);
        let db_hh = if separate {
            let mut db_hh = zeros::<F>(gh, "db_hh")?;
            column_sums(&dgh, gh, &mut db_hh);
            db_hh
        } else {
            db_ih.clone()
        };
        (Some(db_ih), Some(db_hh))
    } else {
        (None, None)
    };
    Ok(Grads {
        dx,
        dh0: dh,
        dc0: if mode.has_cell_state() {
            Some(dc)
        } else {
            None
        },
        dw_ih,
        dw_hh,
        db_ih,
        db_hh,
    })
}
