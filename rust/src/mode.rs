//! The four recurrent cells and what differs between them.

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
}

impl Mode {
    /// Parse the name the Python layer uses (`"rnn_tanh"`, `"rnn_relu"`, `"lstm"`,
    /// `"gru"`, `"gru_reset_before"`, `"lstm_cifg"`, `"lstm_peephole"`).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "rnn_tanh" => Ok(Self::RnnTanh),
            "rnn_relu" => Ok(Self::RnnRelu),
            "lstm" => Ok(Self::Lstm),
            "gru" => Ok(Self::Gru),
            "gru_reset_before" => Ok(Self::GruResetBefore),
            "lstm_cifg" => Ok(Self::LstmCifg),
            "lstm_peephole" => Ok(Self::LstmPeephole),
            other => Err(RnnError::argument(
                "mode",
                format!(
                    "unknown cell mode {other:?}; expected rnn_tanh, rnn_relu, lstm, gru, \
                     gru_reset_before, lstm_cifg or lstm_peephole"
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
        }
    }

    /// Number of gates `G`: the weights have `G * H` rows.
    pub fn gates(self) -> usize {
        match self {
            Self::RnnTanh | Self::RnnRelu => 1,
            Self::Lstm | Self::LstmPeephole => 4,
            Self::Gru | Self::GruResetBefore | Self::LstmCifg => 3,
        }
    }

    /// Whether the cell carries a cell state `c` besides `h`.
    pub fn has_cell_state(self) -> bool {
        matches!(self, Self::Lstm | Self::LstmCifg | Self::LstmPeephole)
    }

    /// Whether the cell has peephole weights `w_peep (3H,)`, ordered `p_i, p_f, p_o`.
    pub fn has_peepholes(self) -> bool {
        self == Self::LstmPeephole
    }

    /// Whether `W_hh h + b_hh` must be kept apart from the input projection
    /// (GRU: the reset gate multiplies its `n` block).
    pub fn separate_recurrent_projection(self) -> bool {
        self == Self::Gru
    }

    /// Whether the forward keeps a `(T, N, H)` buffer besides the gates: `W_hn h +
    /// b_hn` for [`Gru`](Self::Gru), `r * h` for [`GruResetBefore`](Self::GruResetBefore).
    pub fn keeps_hn(self) -> bool {
        matches!(self, Self::Gru | Self::GruResetBefore)
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
        ] {
            assert_eq!(Mode::from_name(m.name()), Ok(m));
        }
        assert!(matches!(
            Mode::from_name("LSTM"),
            Err(RnnError::Argument { .. })
        ));
    }
}
