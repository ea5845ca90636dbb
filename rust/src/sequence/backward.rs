//! Backpropagation through time for one [`forward`](super::forward) call: the
//! time loop per batch shard, then the weight and input gradients as tiled GEMMs.

use super::mut_grads::mut_grads;
use super::noise::{self, Noise};
use super::peephole_grad::peephole_grad;
use super::recurrent::{Recurrent, RecurrentWeights};
use super::spec::{check_finite, check_len, CacheRef, Spec, Weights};
use crate::buffer::zeros;
use crate::cells::lstm_ln::{self, CellNorm};
use crate::cells::{
    gru, gru_reset_before, layer_norm, lstm, lstm_cifg, lstm_peephole, mut_cells, rnn,
};
use crate::error::{Result, RnnError};
use crate::linalg::{matmul_tiled, MatRef};
use crate::mode::Mode;
use crate::parallel;
use crate::real::Real;
use crate::shared::SharedMut;
use crate::simd::{self, Level};

/// Gradients of one direction of one layer (owned, row-major).
#[derive(Debug)]
pub struct Grads<F> {
    /// `(T, N, D)`.
    pub dx: Vec<F>,
    /// `(N, H)` (`(N, P)` with a projection).
    pub dh0: Vec<F>,
    /// `(N, H)`, LSTM only.
    pub dc0: Option<Vec<F>>,
    /// `(G*H, D)`.
    pub dw_ih: Vec<F>,
    /// `(G*H, H)` (`(4H, P)` with a projection).
    pub dw_hh: Vec<F>,
    /// `(G*H,)`, `None` for a layer without bias.
    pub db_ih: Option<Vec<F>>,
    /// `(G*H,)`, `None` for a layer without bias.
    pub db_hh: Option<Vec<F>>,
    /// `(3H,)` gradient of the peephole weights, `lstm_peephole` only.
    pub dw_peep: Option<Vec<F>>,
    /// `(9H,)` gradients of the normalisations' gains and shifts, `lstm_ln` only.
    pub dw_ln: Option<Vec<F>>,
    pub db_ln: Option<Vec<F>>,
    /// `(P, H)` gradient of the projection, `None` without one.
    pub dw_hr: Option<Vec<F>>,
}

/// Check that a cache has the shapes the forward of `spec` produces.
fn check_cache<F>(spec: &Spec<'_>, cache: &CacheRef<'_, F>) -> Result<()> {
    let (t, nh) = (spec.dims.t, spec.dims.n * spec.dims.h);
    check_len("cache['gates']", cache.gates, t * spec.dims.n * spec.gh())?;
    let ns = spec.dims.n * spec.state_size();
    check_len("cache['states']", cache.states, (t + 1) * ns)?;
    match (spec.dims.p > 0, cache.proj) {
        (true, Some(proj)) => check_len("cache['proj']", proj, t * nh)?,
        (true, None) => {
            return Err(RnnError::argument(
                "cache",
                "the cache of an LSTM with a projection lacks 'proj'",
            ))
        }
        (false, _) => {}
    }
    let mode = spec.mode;
    match (mode.has_layer_norm(), cache.norm) {
        (true, Some(c)) => {
            let tn = t * spec.dims.n;
            check_len("cache['ln_x']", c.x_hat, tn * spec.gh())?;
            check_len("cache['ln_h']", c.h_hat, tn * spec.gh())?;
            let c_len = if mode.has_cell_state() { t * nh } else { 0 };
            check_len("cache['ln_c']", c.c_hat, c_len)?;
            check_len("cache['ln_rstd']", c.rstd, 3 * tn)?;
        }
        (true, None) => {
            return Err(RnnError::argument(
                "cache",
                format!("{} cache lacks its normalisations ('ln_*')", mode.name()),
            ))
        }
        _ => {}
    }
    match (cache.cells, cache.hn) {
        (Some(cells), _) if mode.has_cell_state() => {
            check_len("cache['cells']", cells, (t + 1) * nh)
        }
        (_, Some(hn)) if mode.keeps_hn() => check_len("cache['hn']", hn, t * nh),
        (None, _) if mode.has_cell_state() => Err(RnnError::argument(
            "cache",
            format!("{} cache lacks 'cells'", mode.name()),
        )),
        (_, None) if mode.keeps_hn() => Err(RnnError::argument(
            "cache",
            format!("{} cache lacks 'hn'", mode.name()),
        )),
        _ => Ok(()),
    }
}

/// Column sums of a `(rows, cols)` row-major matrix, in row order.
pub(crate) fn column_sums<F: Real>(m: &[F], cols: usize, out: &mut [F]) {
    for row in m.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// The buffers every shard writes its own rows of.
struct Shared<'a, F> {
    dgx: SharedMut<'a, F>,         // (T, N, G*H) gradient of the input projection
    dgh: Option<SharedMut<'a, F>>, // (T, N, G*H) of the recurrent projection (GRU)
    dh0: SharedMut<'a, F>,         // (N, H), (N, P) with a projection
    dc0: Option<SharedMut<'a, F>>, // (N, H), LSTM
    dyc: Option<SharedMut<'a, F>>, // (T, N, H) gradient of LN_c(c'), lstm_ln
    dgr: Option<SharedMut<'a, F>>, // (T, N, G*H) of W_hh h before LN_h, gru_ln
    dy: Option<SharedMut<'a, F>>,  // (T, N, P) gradient of each step's projected h
}

/// What every shard reads.
struct Inputs<'a, F> {
    spec: &'a Spec<'a>,
    level: Level,
    cache: &'a CacheRef<'a, F>,
    /// `W_hh^T`, or for a reset before the product `(W_hr|W_hz)^T` (GRU),
    /// `W_hr^T` (MUTs).
    w_hh_t: &'a Recurrent<'a, F>,
    /// `W_hn^T` (GRU) or `W_hh^T` (MUTs), with the reset before the product only.
    w_n_t: Option<&'a Recurrent<'a, F>>,
    /// `W_hz^T`, MUT2 and MUT3 only.
    w_z_t: Option<&'a Recurrent<'a, F>>,
    /// `(3H,)` peephole weights, `lstm_peephole` only.
    w_peep: Option<&'a [F]>,
    /// `W_hr (P, H)` for the products `dy (S, P) @ W_hr`, with a projection only.
    w_hr: Option<&'a Recurrent<'a, F>>,
    d_output: &'a [F],
    d_h_n: Option<&'a [F]>,
    d_c_n: Option<&'a [F]>,
    noise: &'a Noise<'a, F>,
    /// `(9H,)` gains and shifts of the normalisations, `lstm_ln` only.
    w_ln: Option<&'a [F]>,
    b_ln: Option<&'a [F]>,
}

/// Gradients of `sum(d_output * output) + sum(d_h_n * h_n) + sum(d_c_n * c_n)`
/// with respect to the inputs and parameters of the forward call described by
/// `spec`, `x` and `w`. `d_output (T, N, H)` is ignored at padded steps;
/// `d_h_n`/`d_c_n (N, H)` default to zero. With a projection `d_output` is
/// `(T, N, P)` and `d_h_n` `(N, P)`; each step's `dr = dh @ W_hr` enters the
/// LSTM's backward in place of `dh`, and `dW_hr = sum dh^T r` is one GEMM
/// after the loop.
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
    backward_with(spec, x, w, cache, d_output, d_h_n, d_c_n, &Noise::none())
}

/// [`backward`] of a [`forward_with`](super::forward_with) call, given the
/// same `noise`.
///
/// Like the forward, the whole call runs on the pool.
#[allow(clippy::too_many_arguments)]
pub fn backward_with<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    w: &Weights<'_, F>,
    cache: &CacheRef<'_, F>,
    d_output: &[F],
    d_h_n: Option<&[F]>,
    d_c_n: Option<&[F]>,
    noise: &Noise<'_, F>,
) -> Result<Grads<F>> {
    parallel::install(|| backward_on_pool(spec, x, w, cache, d_output, d_h_n, d_c_n, noise))
}

#[allow(clippy::too_many_arguments)]
fn backward_on_pool<F: Real>(
    spec: &Spec<'_>,
    x: &[F],
    w: &Weights<'_, F>,
    cache: &CacheRef<'_, F>,
    d_output: &[F],
    d_h_n: Option<&[F]>,
    d_c_n: Option<&[F]>,
    noise: &Noise<'_, F>,
) -> Result<Grads<F>> {
    spec.validate()?;
    let mode = spec.mode;
    let (t_len, n, d, h) = (spec.dims.t, spec.dims.n, spec.dims.d, spec.dims.h);
    let (gh, nh) = (spec.gh(), n * h);
    let (hs, p) = (spec.state_size(), spec.dims.p);
    let ns = n * hs;
    check_len("x", x, t_len * n * d)?;
    spec.check_weights(w)?;
    check_cache(spec, cache)?;
    noise.check(spec)?;
    if noise.zoneout_c.is_some() {
        let kept = cache.cells_new.ok_or_else(|| {
            RnnError::argument("cache", "lacks 'cells_new' (the forward had no zoneout_c)")
        })?;
        check_len("cache['cells_new']", kept, t_len * nh)?;
    }
    check_len("d_output", d_output, t_len * ns)?;
    check_finite("d_output", d_output)?;
    if let Some(g) = d_h_n {
        check_len("d_h_n", g, ns)?;
        check_finite("d_h_n", g)?;
    }
    match (mode.has_cell_state(), d_c_n) {
        (true, Some(g)) => {
            check_len("d_c_n", g, nh)?;
            check_finite("d_c_n", g)?;
        }
        (false, Some(_)) => {
            return Err(RnnError::argument(
                "d_c_n",
                format!("{} has no cell state; pass None", mode.name()),
            ))
        }
        _ => {}
    }

    let separate = mode.separate_recurrent_projection();
    let norm = mode.has_layer_norm();
    let mut dgx = zeros::<F>(t_len * n * gh, "dgates")?;
    // The layer-normalised cell keeps the gradient of its recurrent product
    // (before the normalisation) apart, and that of its normalised cell state.
    let mut dyc = if norm && mode.has_cell_state() {
        Some(zeros::<F>(t_len * nh, "dgates")?)
    } else {
        None
    };
    // gru_ln: dgh is the gradient of LN_h(W_hh h) + b_hh, dgr that of W_hh h.
    let mut dgr = if separate && norm {
        Some(zeros::<F>(t_len * n * gh, "dgates")?)
    } else {
        None
    };
    let mut dgh = if separate || norm {
        Some(zeros::<F>(t_len * n * gh, "dgates")?)
    } else {
        None
    };
    let mut dh0 = zeros::<F>(ns, "dh0")?;
    let mut dc0 = if mode.has_cell_state() {
        Some(zeros::<F>(nh, "dc0")?)
    } else {
        None
    };
    let (shards, wide) = parallel::plan(n, h);
    let widest = shards.iter().map(|&(b0, b1)| b1 - b0).max().unwrap_or(0);
    let before = mode == Mode::GruResetBefore;
    let w_hh_t = RecurrentWeights::new(mode, w.w_hh, hs, t_len, widest, true)?;
    let w_hr = w
        .w_hr
        .map(|w_hr| Recurrent::transposed(w_hr, p, h, t_len, widest))
        .transpose()?;
    let mut dy = match w.w_hr {
        Some(_) => Some(zeros::<F>(t_len * ns, "dy")?),
        None => None,
    };
    let inputs = Inputs {
        spec,
        level: simd::best_level(),
        cache,
        w_hh_t: &w_hh_t.main,
        w_n_t: w_hh_t.n.as_ref(),
        w_z_t: w_hh_t.z.as_ref(),
        w_peep: w.w_peep,
        w_hr: w_hr.as_ref(),
        d_output,
        d_h_n,
        d_c_n,
        noise,
        w_ln: w.w_ln,
        b_ln: w.b_ln,
    };
    {
        let shared = Shared {
            dgx: SharedMut::new(&mut dgx),
            dgh: dgh.as_deref_mut().map(SharedMut::new),
            dh0: SharedMut::new(&mut dh0),
            dc0: dc0.as_deref_mut().map(SharedMut::new),
            dyc: dyc.as_deref_mut().map(SharedMut::new),
            dgr: dgr.as_deref_mut().map(SharedMut::new),
            dy: dy.as_deref_mut().map(SharedMut::new),
        };
        parallel::install(|| {
            parallel::for_each(shards, |(b0, b1)| {
                run_shard(&inputs, &shared, b0, b1, wide);
            })
        });
    }

    // Everything that does not depend on the step order: tiled GEMMs over T*N rows.
    if mode.is_mut() {
        let (dx, dw_ih, dw_hh, db_ih, db_hh) = mut_grads(spec, x, w, cache, &dgx)?;
        return Ok(Grads {
            dx,
            dh0,
            dc0,
            dw_ih,
            dw_hh,
            db_ih,
            db_hh,
            dw_peep: None,
            dw_ln: None,
            db_ln: None,
            dw_hr: None,
        });
    }
    let rows = t_len * n;
    // The normalised cell: the gradient of W_ih x before LN_x, and of the gains
    // and shifts of the three normalisations.
    let mut dvx = Vec::new();
    let (mut dw_ln, mut db_ln) = (None, None);
    if let (Some(c), Some(gain)) = (cache.norm, w.w_ln) {
        dvx = zeros::<F>(rows * gh, "dgates")?;
        let rstd = &c.rstd[..rows];
        parallel::install(|| {
            let gain_x = &gain[..gh];
            let level = simd::best_level();
            layer_norm::normalize_back_all(level, gh, &dgx, c.x_hat, rstd, gain_x, &mut dvx);
        });
        let len = mode.layer_norm_blocks() * h;
        let (mut dg, mut db) = (zeros::<F>(len, "w_ln")?, zeros::<F>(len, "b_ln")?);
        let (dg_x, rest) = dg.split_at_mut(gh);
        let (dg_h, dg_c) = rest.split_at_mut(gh);
        let (db_x, rest) = db.split_at_mut(gh);
        let (db_h, db_c) = rest.split_at_mut(gh);
        parallel::install(|| layer_norm::param_grads_all(gh, &dgx, c.x_hat, dg_x, db_x));
        // The gradient of LN_h's output: the gates' (LSTM), the recurrent term's (GRU).
        let d_rec = if separate {
            dgh.as_deref().expect("kept")
        } else {
            &dgx
        };
        parallel::install(|| layer_norm::param_grads_all(gh, d_rec, c.h_hat, dg_h, db_h));
        if let Some(dyc) = dyc.as_deref() {
            parallel::install(|| layer_norm::param_grads_all(h, dyc, c.c_hat, dg_c, db_c));
        }
        (dw_ln, db_ln) = (Some(dg), Some(db));
    }
    let dg_in = if norm {
        MatRef::row_major(&dvx, rows, gh)
    } else {
        MatRef::row_major(&dgx, rows, gh) // (T*N, G*H)
    };
    let dg_rec = dgr
        .as_deref()
        .or(dgh.as_deref())
        .map_or(dg_in, |g| MatRef::row_major(g, rows, gh));
    let mut dx = zeros::<F>(rows * d, "dx")?;
    matmul_tiled(&mut dx, dg_in, MatRef::row_major(w.w_ih, gh, d), false);
    let mut dw_ih = zeros::<F>(gh * d, "dw_ih")?;
    matmul_tiled(&mut dw_ih, dg_in.t(), MatRef::row_major(x, rows, d), false);
    // The states each step read, in time order: slots 0..T forward, 1..T+1 reverse.
    let first_prev = if spec.reverse { 1 } else { 0 };
    let mut h_prevs = &cache.states[first_prev * ns..][..rows * hs]; // (T*N, H), (T*N, P)
    let masked_prevs; // what the products read, with recurrent dropout (never with P)
    if let Some(m) = noise.recurrent {
        let mut v = zeros::<F>(rows * h, "states")?;
        for (dst, src) in v.chunks_exact_mut(nh).zip(h_prevs.chunks_exact(nh)) {
            noise::masked(src, m, dst);
        }
        masked_prevs = v;
        h_prevs = &masked_prevs;
    }
    let mut dw_hh = zeros::<F>(gh * hs, "dw_hh")?;
    if before {
        // dW_hr|dW_hz = d[r z]^T h_prev, dW_hn = dn^T (r * h_prev).
        let rh = cache.hn.expect("checked by check_cache"); // (T*N, H)
        let (dw_rz, dw_n) = dw_hh.split_at_mut(2 * h * h);
        let h_prevs = MatRef::row_major(h_prevs, rows, h);
        matmul_tiled(
            dw_rz,
            MatRef::strided(&dgx, rows, 2 * h, gh, 1).t(),
            h_prevs,
            false,
        );
        let dn = MatRef::strided(&dgx[2 * h..], rows, h, gh, 1); // (T*N, H)
        matmul_tiled(dw_n, dn.t(), MatRef::row_major(rh, rows, h), false);
    } else {
        matmul_tiled(
            &mut dw_hh,
            dg_rec.t(),
            MatRef::row_major(h_prevs, rows, hs),
            false,
        );
    }
    let dw_hr = match (dy.as_deref(), cache.proj) {
        (Some(dy), Some(proj)) => {
            // dW_hr (P, H) = dy^T r over every step and row (dy is zero at padded steps).
            let mut dw_hr = zeros::<F>(p * h, "dw_hr")?;
            let r = MatRef::row_major(proj, rows, h); // (T*N, H)
            matmul_tiled(&mut dw_hr, MatRef::row_major(dy, rows, p).t(), r, false);
            Some(dw_hr)
        }
        _ => None,
    };
    let (db_ih, db_hh) = if w.b_ih.is_some() {
        let mut db_ih = zeros::<F>(gh, "db_ih")?;
        column_sums(&dgx, gh, &mut db_ih);
        let db_hh = match dgh.as_deref() {
            Some(g) if separate => {
                let mut db_hh = zeros::<F>(gh, "db_hh")?;
                column_sums(g, gh, &mut db_hh);
                db_hh
            }
            _ => db_ih.clone(),
        };
        (Some(db_ih), Some(db_hh))
    } else {
        (None, None)
    };
    let dw_peep = if mode.has_peepholes() {
        let cells = cache.cells.expect("checked by check_cache");
        Some(peephole_grad(spec, &dgx, cells, cache.cells_new)?)
    } else {
        None
    };
    Ok(Grads {
        dx,
        dh0,
        dc0,
        dw_ih,
        dw_hh,
        db_ih,
        db_hh,
        dw_peep,
        dw_ln,
        db_ln,
        dw_hr,
    })
}
/// The reversed time loop for sequences `b0..b1`: gate gradients of every step
/// and the gradient of the initial state. Touches only those rows of `shared`.
/// With `wide`, each step's work is itself spread over the thread pool.
fn run_shard<F: Real>(
    inp: &Inputs<'_, F>,
    shared: &Shared<'_, F>,
    b0: usize,
    b1: usize,
    wide: bool,
) {
    let spec = inp.spec;
    let mode = spec.mode;
    let (n, h, gh) = (spec.dims.n, spec.dims.h, spec.gh());
    let s = b1 - b0;
    let hs = spec.state_size(); // width of h: P with a projection, else H
    let ours = b0 * h..b1 * h; // our rows of an (N, H) array
    let mut dh = inp
        .d_h_n
        .map_or_else(|| vec![F::ZERO; s * hs], |g| g[b0 * hs..b1 * hs].to_vec()); // (S, HS)
    let mut dc = match (mode.has_cell_state(), inp.d_c_n) {
        (true, Some(g)) => g[ours.clone()].to_vec(),
        (true, None) => vec![F::ZERO; s * h],
        (false, _) => Vec::new(),
    }; // (S, H), LSTM
    let mut dh_prev = vec![F::ZERO; s * hs];
    let mut active = vec![true; n];
    // With a projection: (S, H) dr = dy @ W_hr, the gradient the LSTM step takes
    // for h, and (S, H) the step's own dh_direct, unused (dh_prev is set before).
    let projected = inp.w_hr.is_some();
    let proj_scratch = || vec![F::ZERO; if projected { s * h } else { 0 }];
    let (mut dr, mut dr_direct) = (proj_scratch(), proj_scratch());
    // GRU with the reset before the product: (S, 2H) d[r z], (S, H) dn and d(r * h).
    let before = mode == Mode::GruResetBefore;
    let scratch = |width: usize| vec![F::ZERO; if before { s * width } else { 0 }];
    let (mut drz, mut dn, mut drh) = (scratch(2 * h), scratch(h), scratch(h));
    // The MUTs: (S, H) each, d z and d r (for W_hz and W_hr), dn and d(r * h)
    // (for W_hh), and MUT3's dz @ W_hz (the gradient of tanh(h_prev)).
    let mut_scratch = |on: bool| vec![F::ZERO; if on { s * h } else { 0 }];
    let is_mut = mode.is_mut();
    let (mut dzs, mut drs) = (mut_scratch(is_mut), mut_scratch(is_mut));
    let mut dtz = mut_scratch(mode == Mode::Mut3);
    if is_mut {
        (dn, drh) = (mut_scratch(true), mut_scratch(true));
    }
    let noise = inp.noise;
    // Zoneout: the gradient that reaches the previous state directly, (S, H) each.
    let mut keep_h = mut_scratch(noise.zoneout_h.is_some());
    let mut keep_c = mut_scratch(noise.zoneout_c.is_some());
    // Recurrent dropout: the masked state the products read, and its gradient.
    let (mut hm, mut dhm) = (
        mut_scratch(noise.recurrent.is_some()),
        mut_scratch(noise.recurrent.is_some()),
    );
    let mask = noise.recurrent.map(|m| &m[ours.clone()]); // (S, H) our rows

    for k in (0..spec.dims.t).rev() {
        let t = spec.time_of_step(k);
        let (prev, next) = (spec.prev_slot(t), spec.next_slot(t));
        spec.fill_active(t, &mut active);
        let active = &active[b0..b1];
        if let (Some(w_hr), Some(dy)) = (inp.w_hr, shared.dy.as_ref()) {
            // SAFETY: rows b0..b1 of step t belong to this shard alone.
            let dy_t = unsafe { dy.piece((t * n + b0) * hs, s * hs) }; // (S, P)
            let d_out_t = &inp.d_output[(t * n + b0) * hs..][..s * hs];
            project_back(hs, active, d_out_t, &mut dh, dy_t, &mut dh_prev);
            w_hr.mul(inp.level, &mut dr, dy_t, s, false, wide); // (S, H) = dy @ W_hr
        }
        let (dr_s, drd_s) = (SharedMut::new(&mut dr), SharedMut::new(&mut dr_direct));
        let (dh_s, dc_s, dhp_s) = (
            SharedMut::new(&mut dh),
            SharedMut::new(&mut dc),
            SharedMut::new(&mut dh_prev),
        );
        let (drz_s, dn_s) = (SharedMut::new(&mut drz), SharedMut::new(&mut dn));
        let dzs_s = SharedMut::new(&mut dzs);
        let (kh_s, kc_s) = (SharedMut::new(&mut keep_h), SharedMut::new(&mut keep_c));
        let step = (t * n + b0) * gh; // first element of our rows of a (T, N, G*H) buffer

        parallel::for_row_groups(s, wide, |r0, r1| {
            let m = r1 - r0;
            let g0 = r0 * h; // where our group starts in an (S, H) array
            let gs = r0 * hs; // and in an (S, HS) array
            let rows = (t * n + b0 + r0) * hs..(t * n + b0 + r1) * hs; // of a (T, N, HS) array
                                                                       // SAFETY: row groups are disjoint, and only this shard touches rows
                                                                       // b0..b1 of the shared buffers.
            let (dh, dh_direct, dgx_t) = unsafe {
                (
                    dh_s.piece(gs, m * hs),
                    dhp_s.piece(gs, m * hs),
                    shared.dgx.piece(step + r0 * gh, m * gh),
                )
            };
            if !projected {
                add_output_grad(hs, &active[r0..r1], &inp.d_output[rows.clone()], dh);
            }
            // Zoneout: split off the part of each gradient that skips the cell.
            let split = |z: &[F], keep: &SharedMut<'_, F>, d: &mut [F]| {
                // SAFETY: as above.
                let keep = unsafe { keep.piece(g0, m * h) };
                let z = &z[rows.clone()];
                for (b, &on) in active[r0..r1].iter().enumerate() {
                    let r = b * h..(b + 1) * h;
                    if on {
                        noise::split(&mut d[r.clone()], &z[r.clone()], &mut keep[r]);
                    } else {
                        keep[r].fill(F::ZERO);
                    }
                }
            };
            if let Some(z) = noise.zoneout_h {
                split(z, &kh_s, dh);
            }
            if let Some(z) = noise.zoneout_c {
                // SAFETY: as above; this piece is dropped before the cell takes its own.
                split(z, &kc_s, unsafe { dc_s.piece(g0, m * h) });
            }
            let gates_t = &inp.cache.gates[step + r0 * gh..][..m * gh]; // (m, G*H)
            let act = &active[r0..r1];
            let slot = |sl: usize| (sl * n + b0 + r0) * h..(sl * n + b0 + r1) * h;
            // The c' the cell computed: before the zoneout of the cell state.
            let c_new = || match (inp.cache.cells_new, inp.cache.cells) {
                (Some(c), _) => &c[rows.clone()],
                (None, Some(c)) => &c[slot(next)],
                (None, None) => unreachable!("only the lstm modes read the cell state"),
            };
            match mode {
                Mode::RnnTanh | Mode::RnnRelu => {
                    let relu = mode == Mode::RnnRelu;
                    rnn::backward_step(inp.level, h, relu, act, gates_t, dh, dgx_t, dh_direct);
                }
                Mode::LstmPeephole => {
                    let cells = inp.cache.cells.expect("checked by check_cache");
                    let p = inp.w_peep.expect("checked by check_weights");
                    // SAFETY: as above.
                    let dc = unsafe { dc_s.piece(g0, m * h) };
                    lstm_peephole::backward_step(
                        inp.level,
                        h,
                        act,
                        gates_t,
                        p,
                        &cells[slot(prev)],
                        c_new(),
                        dh,
                        dc,
                        dgx_t,
                        dh_direct,
                    );
                }
                Mode::Lstm | Mode::LstmCifg => {
                    let cells = inp.cache.cells.expect("checked by check_cache");
                    // SAFETY: as above.
                    let dc = unsafe { dc_s.piece(g0, m * h) };
                    // With a projection the step takes dr, and dh_prev is already set.
                    let (dh, dh_direct) = if projected {
                        // SAFETY: as above.
                        unsafe { (&mut *dr_s.piece(g0, m * h), drd_s.piece(g0, m * h)) }
                    } else {
                        (&mut *dh, &mut *dh_direct)
                    };
                    let step = if mode == Mode::Lstm {
                        lstm::backward_step::<F>
                    } else {
                        lstm_cifg::backward_step::<F>
                    };
                    step(
                        inp.level,
                        h,
                        act,
                        gates_t,
                        &cells[slot(prev)],
                        c_new(),
                        dh,
                        dc,
                        dgx_t,
                        dh_direct,
                    );
                }
                Mode::LstmLayerNorm => {
                    let cells = inp.cache.cells.expect("checked by check_cache");
                    let norm = inp.cache.norm.expect("checked by check_cache");
                    let (gain, shift) = (inp.w_ln.expect("checked"), inp.b_ln.expect("checked"));
                    let tn = spec.dims.t * n;
                    let first = t * n + b0 + r0; // of our rows in a (T, N) array
                    let dyc = shared.dyc.as_ref().expect("kept by a normalised cell");
                    let dgh = shared.dgh.as_ref().expect("kept by a normalised cell");
                    // SAFETY: as above.
                    let (dc, dyc_t, dgh_t) = unsafe {
                        (
                            dc_s.piece(g0, m * h),
                            dyc.piece(rows.start, m * h),
                            dgh.piece(step + r0 * gh, m * gh),
                        )
                    };
                    let cn = CellNorm {
                        gain: &gain[2 * gh..],
                        shift: &shift[2 * gh..],
                    };
                    lstm_ln::backward_step(
                        inp.level,
                        h,
                        act,
                        gates_t,
                        &cells[slot(prev)],
                        &norm.c_hat[rows.clone()],
                        &norm.rstd[2 * tn + first..][..m],
                        cn,
                        dh,
                        dc,
                        dgx_t,
                        dyc_t,
                        dh_direct,
                    );
                    // The gradient of W_hh h, back through LN_h.
                    layer_norm::normalize_back_rows(
                        inp.level,
                        gh,
                        dgx_t,
                        &norm.h_hat[step + r0 * gh..][..m * gh],
                        &norm.rstd[tn + first..][..m],
                        &gain[gh..2 * gh],
                        dgh_t,
                    );
                }
                Mode::Gru | Mode::GruLayerNorm => {
                    let hn_t = &inp.cache.hn.expect("checked by check_cache")[rows.clone()];
                    let h_prev = &inp.cache.states[slot(prev)];
                    let dgh = shared
                        .dgh
                        .as_ref()
                        .expect("gru has a recurrent-gradient buffer");
                    // SAFETY: as above.
                    let dgh_t = unsafe { dgh.piece(step + r0 * gh, m * gh) };
                    gru::backward_step(
                        inp.level, h, act, gates_t, hn_t, h_prev, dh, dgx_t, dgh_t, dh_direct,
                    );
                    if let Some(dgr) = shared.dgr.as_ref() {
                        // The gradient of W_hh h, back through LN_h.
                        let norm = inp.cache.norm.expect("checked by check_cache");
                        let gain = inp.w_ln.expect("checked");
                        let first = spec.dims.t * n + t * n + b0 + r0;
                        // SAFETY: as above.
                        let dgr_t = unsafe { dgr.piece(step + r0 * gh, m * gh) };
                        layer_norm::normalize_back_rows(
                            inp.level,
                            gh,
                            dgh_t,
                            &norm.h_hat[step + r0 * gh..][..m * gh],
                            &norm.rstd[first..][..m],
                            &gain[gh..2 * gh],
                            dgr_t,
                        );
                    }
                }
                Mode::GruResetBefore => {
                    let h_prev = &inp.cache.states[slot(prev)];
                    // SAFETY: as above.
                    let (drz, dn) =
                        unsafe { (drz_s.piece(2 * g0, 2 * m * h), dn_s.piece(g0, m * h)) };
                    gru_reset_before::backward_update(
                        inp.level, h, act, gates_t, h_prev, dh, dgx_t, drz, dn, dh_direct,
                    );
                }
                Mode::Mut1 | Mode::Mut2 | Mode::Mut3 => {
                    let h_prev = &inp.cache.states[slot(prev)];
                    // SAFETY: as above.
                    let (dz, dn) = unsafe { (dzs_s.piece(g0, m * h), dn_s.piece(g0, m * h)) };
                    mut_cells::backward_update(
                        inp.level, h, act, gates_t, h_prev, dh, dgx_t, dz, dn, dh_direct,
                    );
                }
            }
            // SAFETY (both): as above; the cell's pieces are no longer used.
            if noise.zoneout_h.is_some() {
                noise::add(dh_direct, unsafe { kh_s.piece(g0, m * h) });
            }
            if noise.zoneout_c.is_some() {
                let dc = unsafe { dc_s.piece(g0, m * h) };
                noise::add(dc, unsafe { kc_s.piece(g0, m * h) });
            }
        });

        // Recurrent dropout: the products read h_prev * mask; their gradients
        // gather in dhm and reach dh_prev through the mask.
        if let Some(mask) = mask {
            let h_state = &inp.cache.states[(prev * n + b0) * h..][..s * h];
            noise::masked(h_state, mask, &mut hm);
            dhm.fill(F::ZERO);
        }

        if let Some(w_n_t) = inp.w_n_t {
            // d(r * h_prev) = dn @ W_hn, then the r gradient and the path through r * h.
            w_n_t.mul(inp.level, &mut drh, &dn, s, false, wide);
            let (drh, drz_s) = (&drh, SharedMut::new(&mut drz));
            let drs_s = SharedMut::new(&mut drs);
            let (hm, dhm_s) = (&hm, SharedMut::new(&mut dhm));
            parallel::for_row_groups(s, wide, |r0, r1| {
                let (m, g0) = (r1 - r0, r0 * h);
                let slot = |sl: usize| (sl * n + b0 + r0) * h..(sl * n + b0 + r1) * h;
                let gates_t = &inp.cache.gates[step + r0 * gh..][..m * gh]; // (m, 3H)
                                                                            // SAFETY: row groups are disjoint, and only this shard touches rows
                                                                            // b0..b1 of the shared buffers.
                let (dgx_t, dh_direct) = unsafe {
                    (
                        shared.dgx.piece(step + r0 * gh, m * gh),
                        dhp_s.piece(g0, m * h),
                    )
                };
                if is_mut {
                    // SAFETY: as above.
                    let dr = unsafe { drs_s.piece(g0, m * h) };
                    mut_cells::backward_reset(
                        inp.level,
                        h,
                        &active[r0..r1],
                        gates_t,
                        &inp.cache.states[slot(prev)],
                        &drh[g0..g0 + m * h],
                        dgx_t,
                        dr,
                        dh_direct,
                    );
                    return;
                }
                // SAFETY: as above.
                let drz = unsafe { drz_s.piece(2 * g0, 2 * m * h) };
                // With recurrent dropout r multiplied the masked state, and the
                // gradient of that product goes to dhm.
                let (h_rec, d_rec) = if hm.is_empty() {
                    (&inp.cache.states[slot(prev)], dh_direct)
                } else {
                    // SAFETY: as above.
                    (&hm[g0..g0 + m * h], unsafe { dhm_s.piece(g0, m * h) })
                };
                gru_reset_before::backward_reset(
                    inp.level,
                    h,
                    &active[r0..r1],
                    gates_t,
                    h_rec,
                    &drh[g0..g0 + m * h],
                    dgx_t,
                    drz,
                    d_rec,
                );
            });
        }

        // dh_prev = dh_direct + d(recurrent projection) @ W_hh, over all our rows.
        let grads = shared
            .dgr
            .as_ref()
            .or(shared.dgh.as_ref())
            .unwrap_or(&shared.dgx);
        // SAFETY: the row-group pieces of this step are gone; read-only now.
        let dgr_t = if before {
            &drz[..]
        } else if is_mut {
            &drs[..]
        } else {
            unsafe { &*grads.piece(step, s * gh) }
        };
        match mask {
            Some(mask) => {
                inp.w_hh_t.mul(inp.level, &mut dhm, dgr_t, s, true, wide);
                noise::add_masked(&mut dh_prev, &dhm, mask);
            }
            None => inp
                .w_hh_t
                .mul(inp.level, &mut dh_prev, dgr_t, s, true, wide),
        }
        if let Some(w_z_t) = inp.w_z_t {
            if mode == Mode::Mut3 {
                // z sees tanh(h_prev): dh_prev += (dz @ W_hz) * (1 - tanh(h_prev)^2).
                w_z_t.mul(inp.level, &mut dtz, &dzs, s, false, wide);
                let h_prev = &inp.cache.states[(prev * n + b0) * h..][..s * h];
                mut_cells::tanh_backward(inp.level, h_prev, &dtz, &mut dh_prev);
            } else {
                w_z_t.mul(inp.level, &mut dh_prev, &dzs, s, true, wide); // += dz @ W_hz
            }
        }
        std::mem::swap(&mut dh, &mut dh_prev);
    }

    // SAFETY: rows b0..b1 of dh0/dc0 belong to this shard alone.
    unsafe {
        shared.dh0.piece(b0 * hs, s * hs).copy_from_slice(&dh);
        if let Some(dc0) = shared.dc0.as_ref() {
            dc0.piece(b0 * h, s * h).copy_from_slice(&dc);
        }
    }
}

/// `dh (M, HS) += d_output (M, HS)` for the rows still running at this step.
fn add_output_grad<F: Real>(hs: usize, active: &[bool], d_output: &[F], dh: &mut [F]) {
    for (b, &on) in active.iter().enumerate() {
        if on {
            let r = b * hs..(b + 1) * hs;
            for (g, &v) in dh[r.clone()].iter_mut().zip(&d_output[r]) {
                *g += v;
            }
        }
    }
}

/// The first half of a step's backward with a projection, over `(S, P)` rows:
/// `dh += d_output` where running; `dy = dh` there (the gradient of the
/// projected `h`, for `dr = dy @ W_hr` and `dW_hr`) and `dh_prev = 0` (the
/// recurrent product adds to it); where the sequence has ended, `dy = 0` and
/// `dh_prev = dh` (the state was carried through unchanged).
fn project_back<F: Real>(
    p: usize,
    active: &[bool],
    d_output: &[F],
    dh: &mut [F],
    dy: &mut [F],
    dh_prev: &mut [F],
) {
    add_output_grad(p, active, d_output, dh);
    for (b, &on) in active.iter().enumerate() {
        let r = b * p..(b + 1) * p;
        if on {
            dy[r.clone()].copy_from_slice(&dh[r.clone()]);
            dh_prev[r].fill(F::ZERO);
        } else {
            dy[r.clone()].fill(F::ZERO);
            dh_prev[r.clone()].copy_from_slice(&dh[r]);
        }
    }
}
