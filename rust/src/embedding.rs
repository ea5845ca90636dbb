//! The embedding's backward: `grad[ids[m]] += d[m]` for every row `m`, in the
//! order of `m` (so bitwise `numpy.add.at`), with the columns cut into blocks
//! that threads take whole: every element is summed by one thread, in order.

use crate::parallel;
use crate::real::Real;
use crate::shared::SharedMut;

/// Columns per block of parallel work.
const COLS: usize = 64;

/// `grad (V, E)` row-major, `ids (M,)` each `< V`, `d (M, E)` row-major.
pub fn scatter_add<R: Real>(grad: &mut [R], e: usize, ids: &[usize], d: &[R]) {
    if e == 0 || ids.is_empty() {
        return;
    }
    debug_assert_eq!(d.len(), ids.len() * e);
    let blocks = e.div_ceil(COLS);
    let shared = SharedMut::new(grad);
    parallel::for_each_index(blocks, |b| {
        let (c0, c1) = (b * COLS, ((b + 1) * COLS).min(e));
        for (m, &id) in ids.iter().enumerate() {
            let src = &d[m * e + c0..m * e + c1];
            // SAFETY: block b alone touches columns c0..c1, and one row's
            // piece is dropped before the next is made (`piece` checks bounds).
            let dst = unsafe { shared.piece(id * e + c0, c1 - c0) };
            for (g, &x) in dst.iter_mut().zip(src) {
                *g += x;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_in_row_order_at_any_thread_count() {
        let (v, e) = (7, 150);
        let ids: Vec<usize> = (0..40).map(|m| (m * 5 + m / 3) % v).collect();
        let d: Vec<f64> = (0..40 * e)
            .map(|i| ((i as f64) * 0.37).sin() * 1e3)
            .collect();
        let mut want = vec![0.5f64; v * e];
        for (m, &id) in ids.iter().enumerate() {
            for c in 0..e {
                want[id * e + c] += d[m * e + c];
            }
        }
        for threads in [1, 2, 3] {
            parallel::set_num_threads(Some(threads));
            let mut g = vec![0.5f64; v * e];
            scatter_add(&mut g, e, &ids, &d);
            assert!(g.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        parallel::set_num_threads(None);
    }
}
