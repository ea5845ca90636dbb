//! Packed weights kept across calls, keyed by where the weights are and
//! verified by what they hold.
//!
//! Packing a layer's `W_ih` and `W_hh` into panels reads all of them and
//! writes the panels on every call: 0.6-1.7 ms for a 2048 × 512 `f32` matrix
//! in a Rust-only timing, against a few ms for an inference call of one
//! sequence at H = 512. A forward here looks its weights up by address, shape
//! and layout, and reuses the panels only if the weights are bitwise what they
//! were when packed: the entry holds a copy of them, compared with `memcmp`
//! (contiguous reads of both). Nothing but content decides, so an in-place
//! edit, a reload, an optimizer step or a new array at a freed address can
//! never be served stale panels. (Comparing against the panels themselves,
//! with no copy, read as slowly as packing: the transposed reads cost.)
//!
//! Weights that change between any two calls (training) would pay for a copy
//! per call and never reuse it. A slot whose entry was replaced before any hit
//! stops keeping copies for 1, 2, 4, ... up to [`MAX_BACKOFF`] misses, and keeps
//! them again after; one hit resets it. Entries are dropped least recently used
//! first beyond the limit's bytes (copies and panels together), 512 MiB unless
//! `RNNCORE_WEIGHT_CACHE_MB` or [`Shared::set_limit`] says otherwise; 0 turns
//! it off.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Result;
use crate::parallel;
use crate::real::Real;

use super::narrow::Narrow;

/// Misses a slot skips keeping copies for, at most.
pub const MAX_BACKOFF: u32 = 64;

/// Default bytes the cache may hold.
const DEFAULT_LIMIT: usize = 512 << 20;

/// How the source is read: `W (m, k)` row-major, or `W^T (k, m)` row-major,
/// with rows `ld` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Form {
    Rows,
    Transposed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    addr: usize,
    len: usize,
    rows: usize,
    cols: usize,
    ld: usize,
    form: Form,
    elem: TypeId,
}

/// A packing and the weights it was packed from (`Entry<R>`, behind `Any`).
struct Entry<R> {
    source: Vec<R>,
    packed: Arc<Narrow<R>>,
}

struct Slot {
    entry: Option<Arc<dyn Any + Send + Sync>>,
    bytes: usize,
    hits_since_store: u64,
    skip: u32,
    backoff: u32,
    last_use: u64,
}

impl Slot {
    fn new(now: u64) -> Self {
        Slot {
            entry: None,
            bytes: 0,
            hits_since_store: 0,
            skip: 0,
            backoff: 0,
            last_use: now,
        }
    }
}

struct Cache {
    slots: HashMap<Key, Slot>,
    bytes: usize,
    clock: u64,
    limit: usize,
    hits: u64,
    misses: u64,
}

/// Counters since the cache was made (or last cleared).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: usize,
    pub bytes: usize,
    pub limit: usize,
    pub hits: u64,
    pub misses: u64,
}

/// A cache: the process has one ([`global`]); tests make their own.
pub struct Shared(Mutex<Cache>);

impl Shared {
    pub fn new(limit: usize) -> Self {
        Shared(Mutex::new(Cache {
            slots: HashMap::new(),
            bytes: 0,
            clock: 0,
            limit,
            hits: 0,
            misses: 0,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic elsewhere while holding the lock leaves only counters
        // behind: every entry is whole, so the cache stays usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Set the bytes the cache may hold (0: keep nothing), dropping entries to fit.
    pub fn set_limit(&self, bytes: usize) {
        let mut c = self.lock();
        c.limit = bytes;
        c.evict_to(bytes);
    }

    /// Drop every entry and reset the counters.
    pub fn clear(&self) {
        let mut c = self.lock();
        c.slots.clear();
        c.bytes = 0;
        c.hits = 0;
        c.misses = 0;
    }

    /// What the cache holds and has done.
    pub fn stats(&self) -> Stats {
        let c = self.lock();
        Stats {
            entries: c.slots.values().filter(|s| s.entry.is_some()).count(),
            bytes: c.bytes,
            limit: c.limit,
            hits: c.hits,
            misses: c.misses,
        }
    }
}

/// The process's cache, its limit from `RNNCORE_WEIGHT_CACHE_MB` (in MiB).
pub fn global() -> &'static Shared {
    static GLOBAL: OnceLock<Shared> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let mb = std::env::var("RNNCORE_WEIGHT_CACHE_MB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok());
        Shared::new(mb.map_or(DEFAULT_LIMIT, |mb| mb.saturating_mul(1 << 20)))
    })
}

impl Cache {
    fn evict_to(&mut self, limit: usize) {
        while self.bytes > limit {
            let oldest = self
                .slots
                .iter()
                .filter(|(_, s)| s.entry.is_some())
                .min_by_key(|(_, s)| s.last_use)
                .map(|(k, _)| *k);
            let Some(key) = oldest else { break };
            if let Some(slot) = self.slots.remove(&key) {
                self.bytes -= slot.bytes;
            }
        }
    }
}

/// The same bytes: the weights are plain `f32`/`f64`, so bitwise equality is
/// equality of what a packing reads (`-0.0` and `0.0` differ, which only costs
/// a repack).
/// Large weights are compared a piece per thread ([`parallel::all_pieces`]).
fn same<R: Real>(a: &[R], b: &[R]) -> bool {
    let bytes = |s: &[R]| {
        // SAFETY: `R` is `f32` or `f64`, which have no padding and any bit
        // pattern; the view covers exactly the slice's memory.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
    };
    a.len() == b.len()
        && parallel::all_pieces(a.len(), |lo, hi| bytes(&a[lo..hi]) == bytes(&b[lo..hi]))
}

/// `w` packed as `pack` packs it: from the cache when an entry for the same
/// place, shape and layout holds the same values, else packed now (and kept,
/// within the limit and the backoff). `w` is `(rows, cols)` read with rows `ld`
/// apart, in `form`.
pub fn packed<R: Real>(
    w: &[R],
    form: Form,
    rows: usize,
    cols: usize,
    ld: usize,
    pack: impl FnOnce() -> Result<Narrow<R>>,
) -> Result<Arc<Narrow<R>>> {
    global().packed(w, form, rows, cols, ld, pack)
}

impl Shared {
    /// [`packed`] in this cache.
    pub fn packed<R: Real>(
        &self,
        w: &[R],
        form: Form,
        rows: usize,
        cols: usize,
        ld: usize,
        pack: impl FnOnce() -> Result<Narrow<R>>,
    ) -> Result<Arc<Narrow<R>>> {
        let limit = self.lock().limit;
        if limit == 0 || w.is_empty() {
            return pack().map(Arc::new);
        }
        let key = Key {
            addr: w.as_ptr() as usize,
            len: w.len(),
            rows,
            cols,
            ld,
            form,
            elem: TypeId::of::<R>(),
        };
        let held = self.lock().slots.get(&key).and_then(|s| s.entry.clone());
        // Compared outside the lock: other threads' calls do not wait on it.
        let hit = held
            .as_ref()
            .and_then(|e| e.downcast_ref::<Entry<R>>())
            .filter(|e| same(&e.source, w))
            .map(|e| Arc::clone(&e.packed));
        let mut c = self.lock();
        c.clock += 1;
        let now = c.clock;
        if let Some(packed) = hit {
            c.hits += 1;
            if let Some(slot) = c.slots.get_mut(&key) {
                slot.hits_since_store += 1;
                slot.backoff = 0;
                slot.last_use = now;
            }
            return Ok(packed);
        }
        c.misses += 1;
        let slot = c.slots.entry(key).or_insert_with(|| Slot::new(now));
        slot.last_use = now;
        let keep = if slot.entry.is_some() && slot.hits_since_store == 0 {
            // Replaced before any reuse: the weights change between calls.
            slot.backoff = (slot.backoff * 2).clamp(1, MAX_BACKOFF);
            slot.skip = slot.backoff;
            false
        } else if slot.skip > 0 {
            slot.skip -= 1;
            false
        } else {
            true
        };
        let freed = slot.bytes;
        slot.entry = None;
        slot.bytes = 0;
        c.bytes -= freed;
        drop(c);

        let packed = Arc::new(pack()?);
        let bytes = std::mem::size_of_val(w) + packed.bytes();
        if !keep || bytes > limit {
            return Ok(packed);
        }
        let entry: Arc<dyn Any + Send + Sync> = Arc::new(Entry {
            source: w.to_vec(),
            packed: Arc::clone(&packed),
        });
        let mut c = self.lock();
        c.evict_to(limit.saturating_sub(bytes));
        let slot = c.slots.entry(key).or_insert_with(|| Slot::new(now));
        let freed = slot.bytes;
        slot.entry = Some(entry);
        slot.bytes = bytes;
        slot.hits_since_store = 0;
        c.bytes = c.bytes - freed + bytes;
        Ok(packed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn pack_count(c: &Shared, w: &[f64], calls: &Cell<usize>) -> Arc<Narrow<f64>> {
        c.packed(w, Form::Rows, 3, 4, 4, || {
            calls.set(calls.get() + 1);
            Narrow::new(w, 3, 4)
        })
        .unwrap()
    }

    #[test]
    fn reuses_only_the_same_values_and_backs_off_when_they_keep_changing() {
        let c = Shared::new(DEFAULT_LIMIT);
        let calls = Cell::new(0);
        let mut w: Vec<f64> = (0..12).map(|i| i as f64 * 0.5).collect();
        let first = pack_count(&c, &w, &calls);
        let again = pack_count(&c, &w, &calls);
        assert_eq!(calls.get(), 1, "the same values are not packed twice");
        assert!(Arc::ptr_eq(&first, &again));
        w[7] = -1.25; // an in-place edit at the same address
        let edited = pack_count(&c, &w, &calls);
        assert_eq!(calls.get(), 2);
        let fresh = Narrow::new(&w, 3, 4).unwrap();
        let (x, mut a, mut b) = ([0.3, -0.7, 1.1, 0.2], [0.0; 3], [0.0; 3]);
        let level = crate::simd::best_level();
        edited.mul(level, &mut a, &x, 1, false, false);
        fresh.mul(level, &mut b, &x, 1, false, false);
        assert_eq!(a, b, "an edit is always seen");
        // Another shape or layout of the same memory is another entry.
        let t = c.packed(&w, Form::Transposed, 4, 3, 3, || {
            Narrow::from_transposed(&w, 4, 3)
        });
        assert!(!Arc::ptr_eq(&t.unwrap(), &edited));

        // Values that change on every call: copies stop after a miss with no
        // hit before it, and come back after the backoff.
        c.clear();
        let mut kept = Vec::new();
        for step in 0..40 {
            w[0] = step as f64;
            pack_count(&c, &w, &calls);
            kept.push(c.stats().entries);
        }
        let copies = kept.windows(2).filter(|p| p[1] > p[0]).count() + usize::from(kept[0] > 0);
        assert_eq!(copies, 5, "{kept:?}");
        // Once they stop changing, the cache serves them again.
        for _ in 0..(MAX_BACKOFF as usize + 3) {
            pack_count(&c, &w, &calls);
        }
        assert!(c.stats().hits > 0);
    }

    #[test]
    fn the_limit_bounds_what_is_kept() {
        let c = Shared::new(0);
        let calls = Cell::new(0);
        let w: Vec<f64> = (0..12).map(|i| i as f64).collect();
        pack_count(&c, &w, &calls);
        pack_count(&c, &w, &calls);
        assert_eq!((calls.get(), c.stats().entries), (2, 0), "0 keeps nothing");
        c.set_limit(DEFAULT_LIMIT);
        let ws: Vec<Vec<f64>> = (0..4).map(|i| vec![i as f64; 12]).collect();
        for w in &ws {
            pack_count(&c, w, &calls);
        }
        let one = c.stats().bytes / 4;
        c.set_limit(2 * one);
        assert_eq!(c.stats().entries, 2, "the oldest go first");
        pack_count(&c, &ws[3], &calls);
        assert_eq!(
            (c.stats().hits, c.stats().misses),
            (1, 4),
            "the newest stay"
        );
        pack_count(&c, &ws[0], &calls);
        assert_eq!(c.stats().bytes, 2 * one, "a new entry evicts the oldest");
    }
}
