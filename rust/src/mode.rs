//! The recurrent cells and what differs between them.

use crate::error::{Result, RnnError};

/// A recurrent cell, named as in PyTorch (`RNN_TANH`, `RNN_RELU`, `LSTM`, `GRU`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Elman cell, `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnTanh,
    /// Elman cell with ReLU.
    RnnRelu,
    /// LSTM, gates `i, f, g, o`.
    Lstm,
    /// GRU, gates `r, z, n`, PyTorch's "reset after" form.
    Gru,
    /// GRU with the reset gate applied before the recurrent product,
    /// `n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)` (Cho et al. 2014).
    GruResetBefore,
    /// LSTM with a coupled input-forget gate (input gate `1 - f`), gates `f, g, o`.
    LstmCifg,
    /// LSTM with peephole connections (Gers & Schmidhuber 2000), gates `i, f, g, o`:
    /// `i` and `f` also see `c`, `o` sees `c'`, through per-unit weights `p_i, p_f, p_o`.
    LstmPeephole,
    /// Layer-normalised LSTM (Ba et al. 2016), gates `i, f, g, o`:
    /// `a = LN(W_ih x) + LN(W_hh h) + b_ih + b_hh`, `c' = f * c + i * g`,
    /// `h' = o * tanh(LN(c'))`, each `LN` with its own gain and shift
    /// (`w_ln`, `b_ln`).
    LstmLayerNorm,
    /// Layer-normalised GRU (PyTorch's "reset after" form): the products
    /// normalised as in [`LstmLayerNorm`](Self::LstmLayerNorm),
    /// `[xr xz xn] = LN_x(W_ih x) + b_ih`, `[hr hz hn] = LN_h(W_hh h) + b_hh`,
    /// then the GRU's gates and update.
    GruLayerNorm,
    /// MUT1 (Jozefowicz, Zaremba & Sutskever 2015), gate buffer `z, r, n`:
    /// `z = sigm(W_xz x + b_z)`, `r = sigm(W_xr x + W_hr h + b_r)`,
    /// `h' = tanh(W_hh (r * h) + tanh(x) + b_h) * z + h * (1 - z)`; needs `D == H`.
    /// `w_ih (2H, D) = W_xz|W_xr`, `w_hh (2H, H) = W_hr|W_hh`.
    Mut1,
    /// MUT2: `z = sigm(W_xz x + W_hz h + b_z)`, `r = sigm(x + W_hr h + b_r)`,
    /// `h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)`; needs `D == H`.
    /// `w_ih (2H, D) = W_xz|W_xh`, `w_hh (3H, H) = W_hz|W_hr|W_hh`.
    Mut2,
    /// MUT3: `z = sigm(W_xz x + W_hz tanh(h) + b_z)`, `r = sigm(W_xr x + W_hr h + b_r)`,
    /// `h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)`.
    /// `w_ih (3H, D) = W_xz|W_xr|W_xh`, `w_hh (3H, H) = W_hz|W_hr|W_hh`.
    Mut3,
}

impl Mode {
    /// Parse the name the Python layer uses (`"rnn_tanh"`, `"rnn_relu"`, `"lstm"`,
    /// `"gru"`, `"gru_reset_before"`, `"lstm_cifg"`, `"lstm_peephole"`, `"lstm_ln"`, `"mut1"`,
    /// `"mut2"`, `"mut3"`).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "rnn_tanh" => Ok(Self::RnnTanh),
            "rnn_relu" => Ok(Self::RnnRelu),
            "lstm" => Ok(Self::Lstm),
            "gru" => Ok(Self::Gru),
            "gru_reset_before" => Ok(Self::GruResetBefore),
            "lstm_cifg" => Ok(Self::LstmCifg),
            "lstm_peephole" => Ok(Self::LstmPeephole),
            "lstm_ln" => Ok(Self::LstmLayerNorm),
            "gru_ln" => Ok(Self::GruLayerNorm),
            "mut1" => Ok(Self::Mut1),
            "mut2" => Ok(Self::Mut2),
            "mut3" => Ok(Self::Mut3),
            other => Err(RnnError::argument(
                "mode",
                format!(
                    "unknown cell mode {other:?}; expected rnn_tanh, rnn_relu, lstm, gru, \
                     gru_reset_before, lstm_cifg, lstm_peephole, lstm_ln, gru_ln, mut1, mut2 or mut3"
                ),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RnnTanh => "rnn_tanh",
            Self::RnnRelu => "rnn_relu",
            Self::Lstm => "lstm",
            Self::Gru => "gru",
            Self::GruResetBefore => "gru_reset_before",
            Self::LstmCifg => "lstm_cifg",
            Self::LstmPeephole => "lstm_peephole",
            Self::LstmLayerNorm => "lstm_ln",
            Self::GruLayerNorm => "gru_ln",
            Self::Mut1 => "mut1",
            Self::Mut2 => "mut2",
            Self::Mut3 => "mut3",
        }
    }

    /// Number of gates `G`: the gate buffers have `G * H` columns, and so do the
    /// weights and biases of every cell but the MUTs (see [`ih_blocks`](Self::ih_blocks)).
    pub fn gates(self) -> usize {
        match self {
            Self::RnnTanh | Self::RnnRelu => 1,
            Self::Lstm | Self::LstmPeephole | Self::LstmLayerNorm => 4,
            Self::Gru | Self::GruResetBefore | Self::GruLayerNorm | Self::LstmCifg => 3,
            Self::Mut1 | Self::Mut2 | Self::Mut3 => 3,
        }
    }

    /// Blocks of `H` rows of `w_ih` and `b_ih`: `G`, but 2 for MUT1 and MUT2
    /// (one of their gates adds `x` itself, or `tanh(x)`, instead of a product).
    pub fn ih_blocks(self) -> usize {
        match self {
            Self::Mut1 | Self::Mut2 => 2,
            other => other.gates(),
        }
    }

    /// Blocks of `H` rows of `w_hh` and `b_hh`: `G`, but 2 for MUT1 (its `z`
    /// does not see `h`).
    pub fn hh_blocks(self) -> usize {
        match self {
            Self::Mut1 => 2,
            other => other.gates(),
        }
    }

    /// Whether this is one of PyTorch's four cells (`rnn_tanh`, `rnn_relu`,
    /// `lstm`, `gru`): the ones the compiled decoders have kernels for.
    pub fn is_basic(self) -> bool {
        matches!(self, Self::RnnTanh | Self::RnnRelu | Self::Lstm | Self::Gru)
    }

    /// Whether this is one of the MUT cells (Jozefowicz et al. 2015).
    pub fn is_mut(self) -> bool {
        matches!(self, Self::Mut1 | Self::Mut2 | Self::Mut3)
    }

    /// Whether the cell adds `x` itself to a gate, so needs `D == H` (MUT1, MUT2).
    pub fn needs_square_input(self) -> bool {
        matches!(self, Self::Mut1 | Self::Mut2)
    }

    /// Whether the cell carries a cell state `c` besides `h`.
    pub fn has_cell_state(self) -> bool {
        matches!(
            self,
            Self::Lstm | Self::LstmCifg | Self::LstmPeephole | Self::LstmLayerNorm
        )
    }

    /// Whether the cell normalises its two products (and the LSTM its cell
    /// state): weights `w_ln` and `b_ln` of [`layer_norm_len`](Self::layer_norm_len).
    pub fn has_layer_norm(self) -> bool {
        matches!(self, Self::LstmLayerNorm | Self::GruLayerNorm)
    }

    /// Blocks of `H` entries of `w_ln` and `b_ln`: the input term's `G`, the
    /// recurrent term's `G`, and 1 for the LSTM's cell state (9, 6 for the GRU);
    /// 0 without layer normalisation.
    pub fn layer_norm_blocks(self) -> usize {
        match self {
            Self::LstmLayerNorm => 9,
            Self::GruLayerNorm => 6,
            _ => 0,
        }
    }

    /// Whether the cell has peephole weights `w_peep (3H,)`, ordered `p_i, p_f, p_o`.
    pub fn has_peepholes(self) -> bool {
        self == Self::LstmPeephole
    }

    /// Whether `W_hh h + b_hh` must be kept apart from the input projection
    /// (GRU: the reset gate multiplies its `n` block).
    pub fn separate_recurrent_projection(self) -> bool {
        matches!(self, Self::Gru | Self::GruLayerNorm)
    }

    /// Whether the forward keeps a `(T, N, H)` buffer besides the gates: `W_hn h +
    /// b_hn` for [`Gru`](Self::Gru), `r * h` for [`GruResetBefore`](Self::GruResetBefore)
    /// and the MUTs.
    pub fn keeps_hn(self) -> bool {
        matches!(self, Self::Gru | Self::GruResetBefore | Self::GruLayerNorm) || self.is_mut()
    }

    /// Whether the reset gate multiplies `h` before a last `(H, H)` block of
    /// `w_hh` (GRU with the reset before the product, the MUTs).
    pub fn reset_before_product(self) -> bool {
        self == Self::GruResetBefore || self.is_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in [
            Mode::RnnTanh,
            Mode::RnnRelu,
            Mode::Lstm,
            Mode::Gru,
            Mode::GruResetBefore,
            Mode::LstmCifg,
            Mode::LstmPeephole,
            Mode::LstmLayerNorm,
            Mode::GruLayerNorm,
            Mode::Mut1,
            Mode::Mut2,
            Mode::Mut3,
        ] {
            assert_eq!(Mode::from_name(m.name()), Ok(m));
        }
        assert!(matches!(
            Mode::from_name("LSTM"),
            Err(RnnError::Argument { .. })
        ));
    }
}
