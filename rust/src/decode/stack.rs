//! A whole language model prepared for decoding: input, stacked cells, readout.
//!
//! [`Stack::new`] checks the weights once and repacks them into panels (see
//! [`panel`](super::panel)); [`Stack::step`] then advances `N` rows by one
//! symbol each and returns the next-symbol log-probabilities, one fused pass
//! per layer, no allocation but the caller's buffers.

use crate::error::{Result, RnnError};
use crate::mode::Mode;
use crate::parallel;
use crate::real::Real;
use crate::sequence::Weights;
use crate::shared::SharedMut;
use crate::simd::Level;

use super::kernel::{self, HeadTask, LayerTask, Source};
use crate::panel::stored::{self, Panels, Storage};
use crate::panel::Layout;

/// How symbols enter the first layer.
pub enum Input<'a, R> {
    /// One-hot vectors: layer 0's `W_ih` has `V` columns.
    OneHot,
    /// An embedding table `(V, E)`.
    Embedding(&'a [R]),
}

/// A model's parameters, borrowed for [`Stack::new`]; each recurrent layer's
/// are a [`sequence::Weights`](crate::sequence::Weights) (`w_ih (G*H, K)`, `K`
/// the input features: `V`, `E` or `H`).
pub struct ModelWeights<'a, R> {
    pub mode: Mode,
    pub hidden: usize,
    pub input: Input<'a, R>,
    pub layers: Vec<Weights<'a, R>>,
    /// Readout `(V, H)` and its bias `(V,)`.
    pub head_w: &'a [R],
    pub head_b: Option<&'a [R]>,
}

/// A packed layer.
struct Packed<R> {
    /// Input features `K` of `w_ih` (0 when layer 0 reads a table).
    k: usize,
    w_ih: Panels<R>,
    w_hh: Panels<R>,
    bias_x: Vec<R>,
    bias_h: Vec<R>,
}

/// A model ready to step. Immutable, so one `Stack` may serve several threads.
pub struct Stack<R> {
    mode: Mode,
    vocab: usize,
    hidden: usize,
    cell: Layout,
    head: Layout,
    /// Layer 0's projection of every symbol with its biases `(V, blocks, P)`,
    /// or empty when layer 0 multiplies an embedding row instead.
    table: Vec<R>,
    /// The embedding `(V, E)` when there is no table.
    embedding: Vec<R>,
    layers: Vec<Packed<R>>,
    head_w: Panels<R>,
    head_b: Vec<R>,
}

fn check<R: Real>(name: &str, data: &[R], shape: &[usize]) -> Result<()> {
    let want: usize = shape.iter().product();
    if data.len() != want {
        return Err(RnnError::shape(
            name,
            format!("must have shape {shape:?}, got {} elements", data.len()),
        ));
    }
    crate::sequence::check_finite(name, data)
}

impl<R: Real> Stack<R> {
    /// Check `w` and pack it, the weight matrices (`W_ih`, `W_hh`, the readout)
    /// kept as `storage` says ([`stored`](crate::panel::stored)); biases, the
    /// embedding and layer 0's table of symbols (the products of the kept
    /// `W_ih`) have the float type. Errors name the parameter as PyTorch does
    /// (`weight_hh_l1`, `head.weight`, ...).
    pub fn new(w: &ModelWeights<'_, R>, storage: Storage) -> Result<Self> {
        let (mode, hsz) = (w.mode, w.hidden);
        let g = mode.gates();
        if !mode.is_basic() {
            return Err(RnnError::argument(
                "mode",
                format!(
                    "the compiled decoder runs rnn_tanh, rnn_relu, lstm and gru cells, not {}",
                    mode.name()
                ),
            ));
        }
        if w.layers.iter().any(|l| l.w_hr.is_some()) {
            return Err(RnnError::argument(
                "weight_hr",
                "the compiled decoder has no LSTM with projections (proj_size > 0)",
            ));
        }
        if hsz == 0 || w.layers.is_empty() {
            return Err(RnnError::shape(
                "weights",
                "need at least one layer and hidden size >= 1",
            ));
        }
        if w.head_w.len() % hsz != 0 || w.head_w.is_empty() {
            return Err(RnnError::shape(
                "head.weight",
                format!(
                    "must be (V, H) with H = {hsz}, got {} elements",
                    w.head_w.len()
                ),
            ));
        }
        let vocab = w.head_w.len() / hsz;
        check("head.weight", w.head_w, &[vocab, hsz])?;
        if let Some(b) = w.head_b {
            check("head.bias", b, &[vocab])?;
        }
        let cell = Layout::new::<R>(g, hsz);
        let head = Layout::new::<R>(1, vocab);
        let k0 = match w.input {
            Input::OneHot => vocab,
            Input::Embedding(e) => {
                if e.is_empty() || e.len() % vocab != 0 {
                    return Err(RnnError::shape(
                        "embedding.weight",
                        format!("must be (V, E) with V = {vocab}, got {} elements", e.len()),
                    ));
                }
                check("embedding.weight", e, &[vocab, e.len() / vocab])?;
                e.len() / vocab
            }
        };
        let mut layers = Vec::with_capacity(w.layers.len());
        let mut table = Vec::new();
        let mut embedding = Vec::new();
        for (l, lw) in w.layers.iter().enumerate() {
            let k = if l == 0 { k0 } else { hsz };
            check(&format!("weight_ih_l{l}"), lw.w_ih, &[g * hsz, k])?;
            check(&format!("weight_hh_l{l}"), lw.w_hh, &[g * hsz, hsz])?;
            let zeros = vec![R::ZERO; g * hsz];
            let b_ih = lw.b_ih.unwrap_or(&zeros);
            let b_hh = lw.b_hh.unwrap_or(&zeros);
            check(&format!("bias_ih_l{l}"), b_ih, &[g * hsz])?;
            check(&format!("bias_hh_l{l}"), b_hh, &[g * hsz])?;
            // GRU keeps b_hn apart (the reset gate multiplies it); the rest is one bias.
            let split = if mode == Mode::Gru { 2 * hsz } else { g * hsz };
            let bias_x: Vec<R> = (0..g * hsz)
                .map(|i| {
                    if i < split {
                        b_ih[i] + b_hh[i]
                    } else {
                        b_ih[i]
                    }
                })
                .collect();
            let bias_h: Vec<R> = (0..g * hsz)
                .map(|i| if i < split { R::ZERO } else { b_hh[i] })
                .collect();
            let packed_bias_x = cell.pack_vector(&bias_x);
            let tabulate = l == 0 && (matches!(w.input, Input::OneHot) || vocab <= 4 * k0);
            let (k, w_ih) = if tabulate {
                // The table holds the products of the weights the panels would keep.
                let w_ih = stored::dequantized(storage, lw.w_ih, g * hsz, k0);
                table = symbol_table(&cell, &w.input, &w_ih, &bias_x, vocab, k0);
                (0, Panels::empty())
            } else {
                if let (0, Input::Embedding(e)) = (l, &w.input) {
                    embedding = e.to_vec();
                }
                (k, Panels::new(storage, &cell, lw.w_ih, k))
            };
            layers.push(Packed {
                k,
                w_ih,
                w_hh: Panels::new(storage, &cell, lw.w_hh, hsz),
                bias_x: packed_bias_x,
                bias_h: if mode == Mode::Gru {
                    cell.pack_vector(&bias_h)
                } else {
                    Vec::new()
                },
            });
        }
        let zeros = vec![R::ZERO; vocab];
        Ok(Self {
            mode,
            vocab,
            hidden: hsz,
            cell,
            head,
            table,
            embedding,
            layers,
            head_w: Panels::new(storage, &head, w.head_w, hsz),
            head_b: head.pack_vector(w.head_b.unwrap_or(&zeros)),
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// How the weight matrices are kept.
    pub fn storage(&self) -> Storage {
        self.head_w.storage() // every matrix is kept alike; the readout always has weights
    }
    /// Bytes of the packed weight matrices (`W_ih`, `W_hh`, readout, with
    /// any scales): what a step streams, besides the table row or embedding.
    pub fn weight_bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|p| p.w_ih.bytes() + p.w_hh.bytes())
            .sum();
        layers + self.head_w.bytes()
    }
    /// Symbols `V`.
    pub fn vocab(&self) -> usize {
        self.vocab
    }
    /// Units per layer `H`.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
    /// Layers `L`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
    /// Elements of one state array (`h`, and `c` for the LSTM) for `n` rows: `L*N*H`.
    pub fn state_len(&self, n: usize) -> usize {
        self.layers.len() * n * self.hidden
    }
    /// Elements of the logits scratch for `n` rows.
    pub fn scratch_len(&self, n: usize) -> usize {
        n * self.head.blocks * self.head.width
    }

    /// Advance `N = ids.len()` rows by one symbol each.
    ///
    /// `h, c (L, N, H)` the state before (`c` for the LSTM only), `h_out, c_out`
    /// the state after; `log_probs (N, V)` the next-symbol log-probabilities;
    /// `scratch` of [`scratch_len`](Self::scratch_len). Ids must be below `V` and
    /// the lengths as documented (the caller checks; a mismatch panics).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        level: Level,
        ids: &[usize],
        h: &[R],
        c: Option<&[R]>,
        h_out: &mut [R],
        mut c_out: Option<&mut [R]>,
        log_probs: &mut [R],
        scratch: &mut [R],
    ) {
        let (n, hsz) = (ids.len(), self.hidden);
        let len = self.state_len(n);
        assert!(h.len() == len && h_out.len() == len && log_probs.len() == n * self.vocab);
        assert!(ids.iter().all(|&i| i < self.vocab));
        assert_eq!(c.is_some(), self.mode == Mode::Lstm);
        assert_eq!(c_out.is_some(), c.is_some());
        let layer_len = n * hsz;
        for (l, p) in self.layers.iter().enumerate() {
            let (done, rest) = h_out.split_at_mut(l * layer_len);
            let h_new = SharedMut::new(&mut rest[..layer_len]);
            let c_new = c_out
                .as_deref_mut()
                .map(|c| SharedMut::new(&mut c[l * layer_len..][..layer_len]));
            let source = if l > 0 {
                Source::Rows(&done[(l - 1) * layer_len..])
            } else if self.table.is_empty() {
                Source::Embedding(&self.embedding)
            } else {
                Source::Table(&self.table)
            };
            let task = LayerTask {
                mode: self.mode,
                layout: self.cell,
                ids,
                source,
                k: p.k,
                w_ih: &p.w_ih,
                w_hh: &p.w_hh,
                bias_x: &p.bias_x,
                bias_h: &p.bias_h,
                h: &h[l * layer_len..][..layer_len],
                c: c.map(|c| &c[l * layer_len..][..layer_len]),
                h_out: &h_new,
                c_out: c_new.as_ref(),
            };
            let work = n * self.cell.gates * hsz * (p.k + hsz);
            parallel::for_block_ranges(self.cell.blocks, work, |b0, b1| {
                kernel::layer(level, &task, b0, b1)
            });
        }
        let top = &h_out[(self.layers.len() - 1) * layer_len..];
        let stride = self.head.blocks * self.head.width;
        let logits = SharedMut::new(&mut scratch[..n * stride]);
        let task = HeadTask {
            layout: self.head,
            h: top,
            k: hsz,
            w: &self.head_w,
            b: &self.head_b,
            logits: &logits,
            rows: n,
        };
        parallel::for_block_ranges(self.head.blocks, n * self.vocab * hsz, |b0, b1| {
            kernel::head(level, &task, b0, b1)
        });
        for (row, out) in scratch
            .chunks_exact(stride)
            .zip(log_probs.chunks_exact_mut(self.vocab))
        {
            log_softmax(&row[..self.vocab], out);
        }
    }
}

/// Layer 0's input projection of each symbol plus `bias (G*H,)`, as `(V, blocks, P)`.
fn symbol_table<R: Real>(
    cell: &Layout,
    input: &Input<'_, R>,
    w_ih: &[R],
    bias: &[R],
    vocab: usize,
    k: usize,
) -> Vec<R> {
    let gh = bias.len();
    let mut out = Vec::with_capacity(vocab * cell.blocks * cell.width);
    let mut column = vec![R::ZERO; gh];
    for v in 0..vocab {
        for (row, (col, &b)) in column.iter_mut().zip(bias).enumerate() {
            let w_row = &w_ih[row * k..][..k];
            *col = match input {
                Input::OneHot => w_row[v] + b,
                Input::Embedding(e) => {
                    let e_row = &e[v * k..][..k];
                    R::from_f64(dot_f64(w_row, e_row) + b.to_f64())
                }
            };
        }
        out.extend(cell.pack_vector(&column));
    }
    out
}

/// `sum_i a[i] * b[i]` in `f64`, over eight interleaved partial sums (a
/// dependent chain of adds would make building a table for a large model slow).
fn dot_f64<R: Real>(a: &[R], b: &[R]) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let (a8, b8) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(&x, &y)| x.to_f64() * y.to_f64())
        .sum();
    for (x, y) in a8.zip(b8) {
        for l in 0..LANES {
            acc[l] += x[l].to_f64() * y[l].to_f64();
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `out = x - logsumexp(x)`, the sum taken in `f64`, as `(x - max) - ln(sum)`
/// so that huge logits (up to the largest float) keep their differences.
/// Entries equal to `+inf` share all the mass equally (`-ln count`, the rest
/// `-inf`); a row of `-inf` only, or with a NaN, has no distribution: all NaN.
/// The same rule as `rnncore.nn.functional.log_softmax`.
pub(crate) fn log_softmax<R: Real>(x: &[R], out: &mut [R]) {
    let mut max = f64::NEG_INFINITY;
    let mut nan = false;
    for &v in x {
        let v = v.to_f64();
        nan |= v.is_nan();
        max = max.max(v);
    }
    if nan || max == f64::NEG_INFINITY {
        out.iter_mut().for_each(|o| *o = R::from_f64(f64::NAN));
        return;
    }
    if max == f64::INFINITY {
        let count = x.iter().filter(|&&v| v.to_f64() == f64::INFINITY).count();
        let share = -(count as f64).ln();
        for (o, &v) in out.iter_mut().zip(x) {
            let top = v.to_f64() == f64::INFINITY;
            *o = R::from_f64(if top { share } else { f64::NEG_INFINITY });
        }
        return;
    }
    let sum: f64 = x.iter().map(|&v| (v.to_f64() - max).exp()).sum();
    let log_sum = sum.ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = R::from_f64((v.to_f64() - max) - log_sum);
    }
}

#[cfg(test)]
mod log_softmax_tests {
    use super::log_softmax;

    fn run(x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        log_softmax(x, &mut out);
        out
    }

    #[test]
    fn huge_equal_logits_stay_uniform() {
        for big in [3e38, 1e300, f64::MAX] {
            let out = run(&[big; 10]);
            for o in out {
                assert!((o + 10f64.ln()).abs() < 1e-12, "{big}: {o}");
            }
        }
    }

    #[test]
    fn huge_logits_keep_their_differences() {
        let out = run(&[3e38, 3e38 - 1.0, -3e38]);
        assert!((out[0] + 2f64.ln()).abs() < 1e-12);
        assert!((out[1] + 2f64.ln()).abs() < 1e-12); // 1 is below the precision of 3e38
        assert!(out[2] < -5e38 && out[2].is_finite());
        let f = {
            let x = [3e38f32, 3e38f32, -3e38f32];
            let mut o = [0f32; 3];
            log_softmax(&x, &mut o);
            o
        };
        assert!((f[0] + 2f32.ln()).abs() < 1e-6 && f[2] == f32::NEG_INFINITY);
    }

    #[test]
    fn infinite_logits_share_the_mass() {
        let out = run(&[f64::INFINITY, 1.0, f64::INFINITY, f64::NEG_INFINITY]);
        assert_eq!(out[1], f64::NEG_INFINITY);
        assert_eq!(out[3], f64::NEG_INFINITY);
        assert!((out[0] + 2f64.ln()).abs() < 1e-15 && out[0] == out[2]);
        assert_eq!(run(&[f64::INFINITY, 0.0])[0], 0.0);
    }

    #[test]
    fn no_mass_or_nan_gives_nan() {
        assert!(run(&[f64::NEG_INFINITY; 3]).iter().all(|o| o.is_nan()));
        assert!(run(&[1.0, f64::NAN]).iter().all(|o| o.is_nan()));
    }

    #[test]
    fn ordinary_logits_match_the_direct_formula() {
        let x = [0.5, -1.25, 2.0, 0.0];
        let lse = x.iter().map(|v: &f64| v.exp()).sum::<f64>().ln();
        for (o, v) in run(&x).iter().zip(x) {
            assert!((o - (v - lse)).abs() < 1e-15);
        }
    }
}
