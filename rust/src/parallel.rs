//! The thread pool the kernels run on, and how work is cut for it.
//!
//! Results never depend on the number of threads: work is cut into pieces whose
//! size depends only on the problem (batch shards of at most [`SHARD`] sequences,
//! GEMM tiles of fixed height), every piece is computed the same way whichever
//! thread runs it, and nothing is summed across pieces in an order that threads
//! could change. So 1, 2 or 16 threads give bitwise the same numbers.
//!
//! The pool is rnncore's own (never rayon's global one, which the host program
//! may size differently), rebuilt when the thread count changes and after a
//! `fork` (a child inherits no threads).

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rayon::ThreadPool;

/// Most sequences one shard carries through the recurrence.
pub const SHARD: usize = 16;

/// Most threads the kernels use: larger requests (the binding refuses them) and
/// larger `RNNCORE_NUM_THREADS` values are cut to this.
pub const MAX_THREADS: usize = 1024;

struct PoolState {
    threads: usize,
    pid: u32,
    /// `None` when the pool could not be built: the failure is remembered (no
    /// retry at every parallel section) and the work runs on the caller's thread.
    pool: Option<Arc<ThreadPool>>,
}

static POOL: Mutex<Option<PoolState>> = Mutex::new(None);
static REQUESTED: Mutex<Option<usize>> = Mutex::new(None);

/// Threads used when none were requested: `RNNCORE_NUM_THREADS` if set to a
/// positive integer, else the cores this process may use, at most
/// [`MAX_THREADS`]. Read once, at first use (finding the cores reads cgroup
/// files: too slow for every step).
fn default_threads() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        std::env::var("RNNCORE_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(MAX_THREADS)
    })
}

/// Use `n` threads from now on (`1..=MAX_THREADS`, clamped); `None` restores the default.
pub fn set_num_threads(n: Option<usize>) {
    *REQUESTED.lock().unwrap_or_else(|e| e.into_inner()) = n.map(|n| n.clamp(1, MAX_THREADS));
}

/// The number of threads the kernels use.
pub fn num_threads() -> usize {
    REQUESTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_else(default_threads)
}

/// The pool, built on first use and rebuilt after a change of thread count or a fork.
fn pool() -> Option<Arc<ThreadPool>> {
    let threads = num_threads();
    if threads <= 1 {
        return None;
    }
    let pid = std::process::id();
    let mut state = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let stale = state
        .as_ref()
        .is_none_or(|s| s.threads != threads || s.pid != pid);
    if stale {
        let built = build_pool(threads).map(Arc::new);
        *state = Some(PoolState {
            threads,
            pid,
            pool: built,
        });
    }
    state.as_ref().and_then(|s| s.pool.clone())
}

/// A pool of `threads` threads, or `None` when they cannot all be started (a
/// limit on processes, or on memory): the failure is remembered by the caller,
/// so the sections that follow run on the caller's thread at once.
///
/// The threads that did start are joined before this returns, so their stacks
/// are unmapped: under a memory limit the work that follows on the caller's
/// thread gets back the room they took.
fn build_pool(threads: usize) -> Option<ThreadPool> {
    let started: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>> = Arc::default();
    let handles = Arc::clone(&started);
    let cpus = Arc::new(pinning(threads));
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rnncore-{i}"))
        .spawn_handler(move |thread| {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                builder = builder.name(name.to_owned());
            }
            if let Some(size) = thread.stack_size() {
                builder = builder.stack_size(size);
            }
            let cpu = cpus.get(thread.index()).copied();
            let handle = builder.spawn(move || {
                if let Some(cpu) = cpu {
                    pin_to(cpu);
                }
                thread.run()
            })?;
            handles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
            Ok(())
        })
        .build();
    let handles = std::mem::take(&mut *started.lock().unwrap_or_else(|e| e.into_inner()));
    match built {
        // The pool owns its threads from here; the handles only detach them.
        Ok(pool) => Some(pool),
        // rayon has told the threads it started to stop: wait until they have.
        Err(_) => {
            for handle in handles {
                let _ = handle.join();
            }
            None
        }
    }
}

/// The CPUs the pool's threads are pinned to, one each, when the pool has a
/// thread for every CPU the process may run on (the default thread count) and
/// `RNNCORE_PIN_THREADS` is not `0`; else none (the threads go where the
/// system puts them). A smaller pool is not pinned: several processes, each
/// with a few threads, would all be pinned to the same first CPUs.
///
/// Unpinned, a woken worker is often queued on its waker's CPU while another
/// CPU idles: on a 2-core VM, in 4 of 12 two-thread LSTM calls (H = 128,
/// N = 32) after a pause, one worker ran both batch shards while the other
/// waited on the same CPU, and the call took the one-thread time.
fn pinning(threads: usize) -> Vec<usize> {
    if std::env::var("RNNCORE_PIN_THREADS").is_ok_and(|v| v.trim() == "0") {
        return Vec::new();
    }
    let cpus = allowed_cpus();
    if cpus.len() == threads {
        cpus
    } else {
        Vec::new()
    }
}

/// The CPUs this process may run on, in order (Linux; none elsewhere).
fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bit set, zeroed then filled by the call.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// Pin the calling thread to `cpu` (only advice: a refusal changes nothing).
fn pin_to(cpu: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: as in `allowed_cpus`; the call only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// Run `f` on every item, in parallel on the pool when there is more than one
/// thread and more than one item (otherwise on the calling thread, which
/// spares the pool's hand-off for small problems); items are independent.
pub fn for_each<T: Send>(items: Vec<T>, f: impl Fn(T) + Send + Sync) {
    if items.len() <= 1 {
        items.into_iter().for_each(f);
        return;
    }
    match pool() {
        Some(pool) => pool.install(|| items.into_par_iter().for_each(f)),
        None => items.into_iter().for_each(f),
    }
}

/// Run `f` on one of the pool's threads (on the caller's with one thread).
/// Loops of many small parallel steps run inside it, so that each step's
/// hand-off stays among the pool's threads instead of waking the caller.
pub fn install<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Run `f(i)` for `i` in `0..count`, like [`for_each`] but without building a
/// list first: used inside time loops, which must not allocate.
pub fn for_each_index(count: usize, f: impl Fn(usize) + Send + Sync) {
    if count <= 1 {
        (0..count).for_each(f);
        return;
    }
    match pool() {
        Some(pool) => pool.install(|| (0..count).into_par_iter().for_each(f)),
        None => (0..count).for_each(f),
    }
}

/// Elements from which [`all_pieces`] reads a slice on every thread: a scan
/// of 1 MiB of `f32` from L3 takes about 40 µs, against a few µs to hand it out.
pub const PIECES_PARALLEL_MIN: usize = 1 << 18;

/// Whether `f(lo, hi)` holds for every piece of `0..len`, cut into one piece
/// per thread when `len` reaches [`PIECES_PARALLEL_MIN`]: for the linear
/// scans of a call's weights (finiteness, the cache's comparison), which would
/// otherwise leave the other cores idle. Every piece is read whatever the
/// others find, so the answer is the same at any thread count.
pub fn all_pieces(len: usize, f: impl Fn(usize, usize) -> bool + Send + Sync) -> bool {
    let threads = num_threads();
    if threads <= 1 || len < PIECES_PARALLEL_MIN {
        return f(0, len);
    }
    let pieces = threads.min(len.div_ceil(PIECES_PARALLEL_MIN / 2));
    let ok = std::sync::atomic::AtomicBool::new(true);
    for_each_index(pieces, |i| {
        if !f(i * len / pieces, (i + 1) * len / pieces) {
            ok.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    });
    ok.into_inner()
}

/// Below this many multiply-adds a step's product runs on one thread.
pub const BLOCKS_PARALLEL_MIN: usize = 1 << 16;

/// Run `f(b0, b1)` over `0..blocks`: one call, or contiguous ranges on the
/// pool's threads when there are `work >= BLOCKS_PARALLEL_MIN` multiply-adds to
/// share. Each block is computed by one call whatever the split, so results do
/// not depend on the thread count.
pub fn for_block_ranges(blocks: usize, work: usize, f: impl Fn(usize, usize) + Send + Sync) {
    let threads = num_threads();
    let chunks = if threads > 1 && work >= BLOCKS_PARALLEL_MIN {
        threads.min(blocks)
    } else {
        1
    };
    for_each_index(chunks, |i| {
        f(i * blocks / chunks, (i + 1) * blocks / chunks)
    });
}

/// Hidden sizes from which one step's products are split across threads by
/// weight blocks (each core keeps its blocks of `W_hh` in its cache) instead of
/// running batch shards side by side.
pub const WIDE_H: usize = 256;

/// How a sequence call is cut, from its sizes alone: batch shards of at most
/// [`SHARD`] sequences that run concurrently (small `H`), or one shard whose
/// steps are parallel inside (`wide`, `H >= WIDE_H`).
pub fn plan(n: usize, h: usize) -> (Vec<(usize, usize)>, bool) {
    if h >= WIDE_H {
        (vec![(0, n)], true)
    } else {
        (shards(n), false)
    }
}

/// Row groups of a step's pointwise work when it runs in parallel.
pub const ROW_GROUP: usize = 4;

/// Run `f(r0, r1)` over row groups of [`ROW_GROUP`] rows covering `0..rows`: in
/// parallel when `wide`, else as one call. The groups only split independent
/// rows, so the result is the same either way.
pub fn for_row_groups(rows: usize, wide: bool, f: impl Fn(usize, usize) + Send + Sync) {
    if wide && rows > ROW_GROUP {
        for_each_index(rows.div_ceil(ROW_GROUP), |g| {
            let r0 = g * ROW_GROUP;
            f(r0, (r0 + ROW_GROUP).min(rows));
        });
    } else {
        f(0, rows);
    }
}

/// Batch shards `[b0, b1)` covering `0..n`: `ceil(n / SHARD)` shards of nearly
/// equal size. Depends on `n` only.
pub fn shards(n: usize) -> Vec<(usize, usize)> {
    let count = n.div_ceil(SHARD).max(1);
    (0..count)
        .map(|s| (s * n / count, (s + 1) * n / count))
        .filter(|(a, b)| a < b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_evenly() {
        for n in [1, 2, 15, 16, 17, 32, 50, 128, 1000] {
            let s = shards(n);
            assert_eq!(s.first().unwrap().0, 0);
            assert_eq!(s.last().unwrap().1, n);
            assert!(s.windows(2).all(|w| w[0].1 == w[1].0));
            assert!(s.iter().all(|(a, b)| b - a <= SHARD && b > a));
        }
        assert_eq!(shards(50), vec![(0, 12), (12, 25), (25, 37), (37, 50)]);
    }

    #[test]
    fn every_piece_is_read_at_any_thread_count() {
        for threads in [1, 2, 3] {
            set_num_threads(Some(threads));
            for len in [
                0,
                1,
                PIECES_PARALLEL_MIN - 1,
                PIECES_PARALLEL_MIN,
                3 * PIECES_PARALLEL_MIN + 7,
            ] {
                let seen = std::sync::atomic::AtomicUsize::new(0);
                assert!(all_pieces(len, |lo, hi| {
                    seen.fetch_add(hi - lo, std::sync::atomic::Ordering::Relaxed);
                    lo <= hi
                }));
                assert_eq!(seen.into_inner(), len, "{threads} threads, {len}");
                let bad = len / 2;
                assert_eq!(all_pieces(len, |lo, hi| !(lo..hi).contains(&bad)), len == 0);
            }
        }
        set_num_threads(None);
    }

    #[test]
    fn threads_are_pinned_only_when_each_can_have_its_own_cpu() {
        let cpus = allowed_cpus();
        if cfg!(target_os = "linux") {
            assert!(!cpus.is_empty());
        }
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
        if std::env::var_os("RNNCORE_PIN_THREADS").is_none() {
            assert_eq!(pinning(cpus.len()), cpus);
        }
        assert!(pinning(cpus.len() + 1).is_empty());
        if cpus.len() > 1 {
            assert!(pinning(cpus.len() - 1).is_empty());
        }
    }

    #[test]
    fn thread_count_can_be_set_and_reset() {
        set_num_threads(Some(3));
        assert_eq!(num_threads(), 3);
        let sum = std::sync::atomic::AtomicUsize::new(0);
        for_each((0..100usize).collect(), |i| {
            sum.fetch_add(i, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 4950);
        set_num_threads(Some(0));
        assert_eq!(num_threads(), 1);
        set_num_threads(None);
        assert!(num_threads() >= 1);
    }
}
