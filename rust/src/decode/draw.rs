//! Choosing the next symbol from log-probabilities: argmax, or a draw after
//! temperature, top-k and top-p, by inverse CDF with one uniform number.
//!
//! The rule and its order of operations are those of
//! `rnncore.decode.sampling.pick`, so the same uniforms choose the same symbols
//! in the Python loop and in [`generate`](super::generate):
//!
//! 1. sort by log-probability, most likely first (ties: lower id first);
//! 2. keep the `top_k` first;
//! 3. `p ∝ exp((lp - lp_max) / temperature)`, normalised;
//! 4. top-p: keep a symbol while the mass before it is below `top_p` (the most
//!    likely always stays), renormalise;
//! 5. in id order, the first symbol whose cumulative mass exceeds `u * total`
//!    (never past the last symbol with mass).

use crate::error::{Result, RnnError};

/// The sampling knobs, checked: see [`Knobs::new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Knobs {
    pub temperature: f64,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    /// Top-p keeps a symbol while the mass before it is below `top_p` by more
    /// than this (`rnncore.decode.sampling.TOP_P_SLACK`, passed in by the caller).
    pub top_p_slack: f64,
}

impl Knobs {
    /// `temperature >= 0` (0: argmax), `top_k >= 1`, `top_p` in `(0, 1]`,
    /// `top_p_slack` finite and `>= 0`.
    pub fn new(
        temperature: f64,
        top_k: Option<usize>,
        top_p: Option<f64>,
        top_p_slack: f64,
    ) -> Result<Self> {
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(RnnError::argument(
                "temperature",
                format!("must be a finite number >= 0, got {temperature}"),
            ));
        }
        if top_k == Some(0) {
            return Err(RnnError::argument("top_k", "must be None or >= 1, got 0"));
        }
        if let Some(p) = top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(RnnError::argument(
                    "top_p",
                    format!("must be None or in (0, 1], got {p}"),
                ));
            }
        }
        if !(top_p_slack.is_finite() && top_p_slack >= 0.0) {
            return Err(RnnError::argument(
                "top_p_slack",
                format!("must be a finite number >= 0, got {top_p_slack}"),
            ));
        }
        Ok(Self {
            temperature,
            top_k,
            top_p,
            top_p_slack,
        })
    }

    /// Whether a draw needs a uniform number (everything but argmax).
    pub fn random(&self) -> bool {
        self.temperature > 0.0
    }
}

/// The first index of the largest value.
pub fn argmax(lp: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in lp.iter().enumerate() {
        if v > lp[best] {
            best = i;
        }
    }
    best
}

/// Scratch for [`Drawer::draw`], sized for one vocabulary.
pub struct Drawer {
    order: Vec<usize>,
    sorted: Vec<f64>,
    dist: Vec<f64>,
}

impl Drawer {
    pub fn new(vocab: usize) -> Self {
        Self {
            order: Vec::with_capacity(vocab),
            sorted: vec![0.0; vocab],
            dist: vec![0.0; vocab],
        }
    }

    /// One symbol from `lp (V,)` with the knobs; `u` in `[0, 1)` (unused at
    /// temperature 0).
    pub fn draw(&mut self, lp: &[f64], knobs: &Knobs, u: f64) -> usize {
        if !knobs.random() {
            return argmax(lp);
        }
        let v = lp.len();
        let tau = knobs.temperature;
        let truncated = knobs.top_k.is_some_and(|k| k < v) || knobs.top_p.is_some_and(|p| p < 1.0);
        if truncated {
            self.truncated(lp, knobs);
        } else {
            let max = lp.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            for (d, &x) in self.dist.iter_mut().zip(lp) {
                *d = ((x - max) / tau).exp();
            }
        }
        let dist = &self.dist[..v];
        let total: f64 = dist.iter().sum();
        let target = u * total;
        let mut cum = 0.0;
        let mut pick = v;
        for (i, &p) in dist.iter().enumerate() {
            cum += p;
            if cum > target {
                pick = i;
                break;
            }
        }
        let last = dist.iter().rposition(|&p| p > 0.0).unwrap_or(0);
        pick.min(last)
    }

    /// Steps 1-4 into `self.dist`, in id order.
    fn truncated(&mut self, lp: &[f64], knobs: &Knobs) {
        let v = lp.len();
        self.order.clear();
        self.order.extend(0..v);
        // Stable, so equal log-probabilities keep the lower id first.
        self.order.sort_by(|&a, &b| {
            lp[b]
                .partial_cmp(&lp[a])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let keep = knobs.top_k.unwrap_or(v).min(v);
        let top = lp[self.order[0]];
        let sorted = &mut self.sorted[..v];
        for (j, s) in sorted.iter_mut().enumerate() {
            *s = if j < keep {
                ((lp[self.order[j]] - top) / knobs.temperature).exp()
            } else {
                0.0
            };
        }
        normalise(sorted);
        if let Some(p) = knobs.top_p.filter(|&p| p < 1.0) {
            let mut cum = 0.0;
            for (j, s) in sorted.iter_mut().enumerate() {
                cum += *s;
                let before = cum - *s;
                if j > 0 && before >= p - knobs.top_p_slack {
                    *s = 0.0;
                }
            }
            normalise(sorted);
        }
        for (j, &i) in self.order.iter().enumerate() {
            self.dist[i] = sorted[j];
        }
    }
}

fn normalise(p: &mut [f64]) {
    let sum: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value `rnncore.decode.sampling` passes in.
    const SLACK: f64 = 1e-9;

    fn logs(p: &[f64]) -> Vec<f64> {
        p.iter().map(|x| x.ln()).collect()
    }

    /// The symbol drawn for each of many evenly spaced uniforms, as frequencies.
    fn frequencies(lp: &[f64], knobs: &Knobs) -> Vec<f64> {
        let mut d = Drawer::new(lp.len());
        let mut count = vec![0.0; lp.len()];
        let m = 100_000;
        for i in 0..m {
            count[d.draw(lp, knobs, (i as f64 + 0.5) / m as f64)] += 1.0 / m as f64;
        }
        count
    }

    #[test]
    fn plain_draws_follow_the_distribution() {
        let lp = logs(&[0.1, 0.2, 0.3, 0.4]);
        let f = frequencies(&lp, &Knobs::new(1.0, None, None, SLACK).unwrap());
        for (got, want) in f.iter().zip([0.1, 0.2, 0.3, 0.4]) {
            assert!((got - want).abs() < 1e-4, "{f:?}");
        }
    }

    #[test]
    fn temperature_top_k_and_top_p_truncate_and_sharpen() {
        let lp = logs(&[0.1, 0.4, 0.2, 0.3]);
        let f = frequencies(&lp, &Knobs::new(1.0, Some(2), None, SLACK).unwrap());
        assert!((f[1] - 4.0 / 7.0).abs() < 1e-4 && (f[3] - 3.0 / 7.0).abs() < 1e-4);
        assert_eq!(f[0] + f[2], 0.0);
        // top-p 0.6: 0.4 then 0.3 (mass before it 0.4 < 0.6), not 0.2 (0.7 before).
        let f = frequencies(&lp, &Knobs::new(1.0, None, Some(0.6), SLACK).unwrap());
        assert!((f[1] - 4.0 / 7.0).abs() < 1e-4 && f[0] + f[2] == 0.0);
        // top-p exactly reached by the first two keeps only those two.
        let f = frequencies(&lp, &Knobs::new(1.0, None, Some(0.7), SLACK).unwrap());
        assert!(f[0] + f[2] == 0.0);
        // temperature 0.5 squares the probabilities.
        let f = frequencies(&lp, &Knobs::new(0.5, None, None, SLACK).unwrap());
        let z: f64 = [0.01, 0.16, 0.04, 0.09].iter().sum();
        assert!((f[1] - 0.16 / z).abs() < 1e-4, "{f:?}");
    }

    #[test]
    fn argmax_takes_the_lower_id_on_ties() {
        assert_eq!(argmax(&[0.0, 1.0, 1.0, -1.0]), 1);
        let mut d = Drawer::new(3);
        let knobs = Knobs::new(0.0, None, None, SLACK).unwrap();
        assert_eq!(d.draw(&[-1.0, -0.5, -0.5], &knobs, 0.99), 1);
        // Ties under top-k keep the lower id.
        let knobs = Knobs::new(1.0, Some(1), None, SLACK).unwrap();
        assert_eq!(d.draw(&[-1.0, -0.5, -0.5], &knobs, 0.99), 1);
    }

    #[test]
    fn bad_knobs_are_refused() {
        assert!(Knobs::new(-1.0, None, None, SLACK).is_err());
        assert!(Knobs::new(f64::NAN, None, None, SLACK).is_err());
        assert!(Knobs::new(1.0, Some(0), None, SLACK).is_err());
        assert!(Knobs::new(1.0, None, Some(0.0), SLACK).is_err());
        assert!(Knobs::new(1.0, None, Some(1.5), SLACK).is_err());
        assert!(Knobs::new(1.0, None, None, -1.0).is_err());
    }
}
