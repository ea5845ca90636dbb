//! Loops over many steps without returning to the caller: running given
//! symbols through the model (a prime, a text to score), and sampling.

use crate::buffer::{checked_len, filled, with_capacity, zeros};
use crate::error::{Result, RnnError};
use crate::real::Real;
use crate::simd::Level;

use super::draw::{Drawer, Knobs};
use super::stack::Stack;

/// A batch's recurrent state: `h (L, N, H)` and, for the LSTM, `c (L, N, H)`.
pub struct State<R> {
    pub h: Vec<R>,
    pub c: Option<Vec<R>>,
}

/// Two states and the step's buffers, swapped after each step.
struct Stepper<'a, R> {
    stack: &'a Stack<R>,
    level: Level,
    now: State<R>,
    next: State<R>,
    scratch: Vec<R>,
}

impl<'a, R: Real> Stepper<'a, R> {
    fn new(stack: &'a Stack<R>, level: Level, state: State<R>) -> Result<Self> {
        let next = State {
            h: zeros(state.h.len(), "h")?,
            c: state.c.as_ref().map(|c| zeros(c.len(), "c")).transpose()?,
        };
        let rows = state.h.len() / (stack.num_layers() * stack.hidden());
        let scratch = zeros(
            checked_len("logits", &[rows, stack.scratch_len(1)], 8)?,
            "logits",
        )?;
        Ok(Self {
            stack,
            level,
            now: state,
            next,
            scratch,
        })
    }

    /// Advance the `ids.len()` rows of the current state; log-probabilities to `out`.
    fn step(&mut self, ids: &[usize], out: &mut [R]) {
        let len = self.stack.state_len(ids.len());
        self.stack.step(
            self.level,
            ids,
            &self.now.h[..len],
            self.now.c.as_deref().map(|c| &c[..len]),
            &mut self.next.h[..len],
            self.next.c.as_deref_mut().map(|c| &mut c[..len]),
            out,
            &mut self.scratch,
        );
        std::mem::swap(&mut self.now, &mut self.next);
    }

    /// Keep only rows `keep` (increasing) of the `n` in the current state.
    fn keep_rows(&mut self, n: usize, keep: &[usize]) {
        let (layers, hsz) = (self.stack.num_layers(), self.stack.hidden());
        let parts = std::iter::once(&mut self.now.h).chain(self.now.c.as_mut());
        for s in parts {
            for l in 0..layers {
                for (i, &row) in keep.iter().enumerate() {
                    // Destinations never pass their sources: copying forward is safe.
                    s.copy_within(
                        (l * n + row) * hsz..(l * n + row + 1) * hsz,
                        (l * keep.len() + i) * hsz,
                    );
                }
            }
        }
    }

    fn into_state(self, rows: usize) -> State<R> {
        let len = self.stack.state_len(rows);
        let mut s = self.now;
        s.h.truncate(len);
        if let Some(c) = s.c.as_mut() {
            c.truncate(len);
        }
        s
    }
}

/// Check that `state` holds `n` rows for `stack`.
pub fn check_state<R: Real>(stack: &Stack<R>, state: &State<R>, n: usize) -> Result<()> {
    let len = stack.state_len(n);
    let want = format!("({}, {n}, {})", stack.num_layers(), stack.hidden());
    if state.h.len() != len {
        return Err(RnnError::shape("h", format!("must have shape {want}")));
    }
    match (&state.c, stack.mode().has_cell_state()) {
        (Some(c), true) if c.len() == len => Ok(()),
        (Some(_), true) => Err(RnnError::shape("c", format!("must have shape {want}"))),
        (None, true) => Err(RnnError::argument("c", "an LSTM state needs c")),
        (Some(_), false) => Err(RnnError::argument("c", "only an LSTM state has c")),
        (None, false) => Ok(()),
    }
}

/// Run `ids (N, T)` through the model from `state`: the log-probabilities
/// after each symbol `(N, T, V)` and the final state.
pub fn run<R: Real>(
    stack: &Stack<R>,
    level: Level,
    ids: &[usize],
    n: usize,
    state: State<R>,
) -> Result<(Vec<R>, State<R>)> {
    check_state(stack, &state, n)?;
    crate::parallel::install(|| run_checked(stack, level, ids, n, state))
}

fn run_checked<R: Real>(
    stack: &Stack<R>,
    level: Level,
    ids: &[usize],
    n: usize,
    state: State<R>,
) -> Result<(Vec<R>, State<R>)> {
    let t_len = ids.len().checked_div(n).unwrap_or(0);
    let v = stack.vocab();
    let mut out = zeros::<R>(checked_len("log_probs", &[n, t_len, v], 8)?, "log_probs")?;
    let mut stepper = Stepper::new(stack, level, state)?;
    let mut col = filled(n, 0usize, "ids")?;
    let mut lp = zeros::<R>(checked_len("log_probs", &[n, v], 8)?, "log_probs")?;
    for t in 0..t_len {
        for (i, c) in col.iter_mut().enumerate() {
            *c = ids[i * t_len + t];
        }
        stepper.step(&col, &mut lp);
        for i in 0..n {
            out[(i * t_len + t) * v..][..v].copy_from_slice(&lp[i * v..][..v]);
        }
    }
    Ok((out, stepper.into_state(n)))
}

/// What [`sample`] draws.
pub struct Sampling<'a> {
    /// The most symbols per row.
    pub length: usize,
    pub knobs: Knobs,
    /// A row ends after drawing this symbol (it is kept as the row's last).
    pub stop: Option<usize>,
    /// Uniform numbers in `[0, 1)`, taken in order: at each step one per row
    /// still running, in row order. `length * N` always suffice.
    pub uniforms: &'a [f64],
}

/// Rows of drawn symbols: `ids (N, length)`, and how many of each row count.
pub struct Samples {
    pub ids: Vec<i64>,
    pub ends: Vec<usize>,
}

/// Draw up to `length` symbols for each of `N` rows, starting from the
/// next-symbol log-probabilities `first (N, V)` and the state that produced
/// them. Rows that draw the stop symbol leave the batch.
pub fn sample<R: Real>(
    stack: &Stack<R>,
    level: Level,
    first: &[f64],
    state: State<R>,
    s: &Sampling<'_>,
) -> Result<Samples> {
    let v = stack.vocab();
    let n = first.len() / v;
    check_state(stack, &state, n)?;
    if let Some(id) = s.stop.filter(|&id| id >= v) {
        return Err(RnnError::argument(
            "stop_id",
            format!("must lie in 0..{}, got {id}", v - 1),
        ));
    }
    let draw = move || -> Result<Samples> {
        let mut ids = filled(
            checked_len("length * N", &[s.length, n], 8)?,
            0i64,
            "length * N",
        )?;
        let mut ends = filled(n, s.length, "ends")?;
        let mut rows = with_capacity::<usize>(n, "rows")?;
        rows.extend(0..n);
        let mut lp = with_capacity::<f64>(first.len(), "log_probs")?;
        lp.extend_from_slice(first);
        let mut lp_r = zeros::<R>(first.len(), "log_probs")?;
        let mut next = filled(n, 0usize, "ids")?;
        let mut keep = with_capacity(n, "rows")?;
        let mut drawer = Drawer::new(v);
        let mut stepper = Stepper::new(stack, level, state)?;
        let mut cursor = 0;
        for t in 0..s.length {
            let m = rows.len();
            for i in 0..m {
                let u = if s.knobs.random() {
                    let u = *s.uniforms.get(cursor).ok_or_else(|| {
                        RnnError::argument("uniforms", "ran out of uniform numbers")
                    })?;
                    cursor += 1;
                    u
                } else {
                    0.0
                };
                next[i] = drawer.draw(&lp[i * v..][..v], &s.knobs, u);
                ids[rows[i] * s.length + t] = next[i] as i64;
            }
            let mut m_next = m;
            if let Some(stop) = s.stop {
                keep.clear();
                keep.extend((0..m).filter(|&i| next[i] != stop));
                if keep.len() < m {
                    for i in (0..m).filter(|&i| next[i] == stop) {
                        ends[rows[i]] = t + 1;
                    }
                    stepper.keep_rows(m, &keep);
                    for (j, &i) in keep.iter().enumerate() {
                        rows[j] = rows[i];
                        next[j] = next[i];
                    }
                    m_next = keep.len();
                    rows.truncate(m_next);
                    if m_next == 0 {
                        break;
                    }
                }
            }
            if t + 1 < s.length {
                stepper.step(&next[..m_next], &mut lp_r[..m_next * v]);
                for (d, &x) in lp.iter_mut().zip(&lp_r[..m_next * v]) {
                    *d = x.to_f64();
                }
            }
        }
        Ok(Samples { ids, ends })
    };
    // A row or two runs its loop inside the pool, so that each step's blocks
    // are handed among the pool's threads rather than to and from the caller's
    // (batch 1: 10-30% faster in same-process A/Bs); wider batches gained
    // nothing there or lost, and stay outside.
    if n <= POOLED_ROWS {
        crate::parallel::install(draw)
    } else {
        draw()
    }
}

/// Most rows whose sampling loop runs inside the thread pool.
const POOLED_ROWS: usize = 2;
