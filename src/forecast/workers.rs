//! Work pinned to the training pool's threads.

use anyhow::Result;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `f` on every item of `work`, item `i` on worker `i mod n` of the current rayon
/// pool (n workers), all workers at once, and returns the results in item order. A
/// single item runs on the calling thread.
///
/// Why not a parallel iterator: work stealing hands the same piece to a different core
/// from one call to the next, so the buffers a training step writes (a shard's gradient,
/// a slice of the optimizer's state) moved between cores every step. Adam over 249,429
/// weights took 288 µs a step on two threads with stealing against 226 µs on one.
pub fn on_each<T: Send, R: Send>(work: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let count = work.len();
    if count <= 1 {
        return work.into_iter().map(f).collect();
    }
    let slots: Vec<Mutex<Option<T>>> = work.into_iter().map(|w| Mutex::new(Some(w))).collect();
    let done: Vec<Vec<(usize, R)>> = rayon::broadcast(|context| {
        let (me, workers) = (context.index(), context.num_threads());
        (me..count)
            .step_by(workers)
            .filter_map(|i| {
                let item = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
                item.map(|item| (i, f(item)))
            })
            .collect()
    });
    let mut results: Vec<(usize, R)> = done.into_iter().flatten().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Runs `phases` in lockstep on workers `0..active` of the current rayon pool (the
/// others return at once): each worker runs phase 0 with its index, all meet at a
/// barrier, each runs phase 1, and so on. A phase that returns an error or panics on any
/// worker ends the run for every worker at the next barrier, so no later phase runs;
/// the first panic (in worker order) is resumed here, else the first error is returned.
///
/// Why not one rayon call per phase: rayon's workers fall asleep between calls and take
/// tens of µs to wake; with three calls a training step two threads reached a median 1.55×
/// one, and 1.835× in lockstep (README, "One dispatch per step").
///
/// The phases must not start rayon work themselves: a worker waiting on it could pick up
/// another broadcast's job and spin at that one's barrier while holding this one up.
pub fn lockstep(active: usize, phases: &[&(dyn Fn(usize) -> Result<()> + Sync)]) -> Result<()> {
    let workers = rayon::current_num_threads();
    let active = active.clamp(1, workers);
    let barrier = SpinBarrier::new(active);
    let failed = AtomicBool::new(false);
    let outcomes = rayon::broadcast(|context| {
        debug_assert_eq!(context.num_threads(), workers);
        let me = context.index();
        if me >= active {
            return None;
        }
        let mut outcome = None;
        for (k, phase) in phases.iter().enumerate() {
            if k > 0 {
                barrier.wait();
                // Read by every worker after the same barrier: all stop, or none.
                if failed.load(Ordering::Relaxed) {
                    break;
                }
            }
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| phase(me)));
            if !matches!(result, Ok(Ok(()))) {
                failed.store(true, Ordering::Relaxed);
                outcome = Some(result);
            }
        }
        outcome
    });
    let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();
    let mut error = None;
    for outcome in outcomes {
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Err(e)) => error = error.or(Some(e)),
            Ok(Ok(())) => {}
        }
    }
    error.map_or(Ok(()), Err)
}

/// Makes the workers of one [`lockstep`] run wait for each other between phases. It
/// spins [`SPINS`] rounds, then yields until the last worker arrives: the phases last
/// 0.1–2 ms, and waking a sleeping thread takes longer than most waits. With more workers
/// than cores it yields at once, since a spinning worker would keep the one it waits for
/// off the core (4 threads on 2 cores: 28,960 windows/s spinning, 57,701 with rayon's
/// hand-offs, 59,886 yielding).
pub struct SpinBarrier {
    count: usize,
    spins: u32,
    arrived: AtomicUsize,
    /// On a cache line of its own: the waiters read it in a loop while the others arrive.
    generation: Padded,
}

#[repr(align(128))]
struct Padded(AtomicUsize);

/// About 0.2–1 ms of `spin_loop` hints, depending on the CPU.
const SPINS: u32 = 1 << 14;

/// The cores this process may use, read once (it reads cgroup files on Linux).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl SpinBarrier {
    pub fn new(count: usize) -> Self {
        Self {
            count,
            spins: if count <= cores() { SPINS } else { 0 },
            arrived: AtomicUsize::new(0),
            generation: Padded(AtomicUsize::new(0)),
        }
    }

    /// Returns once all `count` workers have called it (this round). Everything a worker
    /// wrote before calling it is visible to every worker after it returns.
    pub fn wait(&self) {
        if self.count <= 1 {
            return;
        }
        let generation = self.generation.0.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.count {
            // The last to arrive opens the next round; nobody can arrive at it before
            // seeing the new generation, which is published after this reset.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.0.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.0.load(Ordering::Acquire) == generation {
            if spins < self.spins {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// A buffer that the workers of one training step share through its phases: in each
/// phase (the span between two [`SpinBarrier::wait`]s) either every worker only reads it,
/// or each worker writes its own ranges and nobody else touches them. The borrow checker
/// cannot see phases, so the callers promise it (`unsafe`); the buffer stays borrowed
/// mutably for the lifetime `'a`, so nothing outside the step can touch it.
pub struct Phased<'a> {
    start: *mut f32,
    len: usize,
    buffer: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: a `Phased` is a `&mut [f32]` handed to several threads; the disjointness that
// makes that sound is the callers' promise at each access (`read`, `write`).
unsafe impl Send for Phased<'_> {}
unsafe impl Sync for Phased<'_> {}

impl<'a> Phased<'a> {
    pub fn new(buffer: &'a mut [f32]) -> Self {
        Self {
            start: buffer.as_mut_ptr(),
            len: buffer.len(),
            buffer: std::marker::PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole buffer, to read.
    ///
    /// # Safety
    /// No worker writes any of it in this phase.
    pub unsafe fn read(&self) -> &[f32] {
        // SAFETY: `start..start + len` is the buffer borrowed for `'a`; no writer now.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }

    /// `range` of the buffer, to write.
    ///
    /// # Safety
    /// No other worker reads or writes any of `range` in this phase, and this worker
    /// holds no other slice overlapping it.
    #[allow(clippy::mut_from_ref)] // the point of the type: see its documentation
    pub unsafe fn write(&self, range: std::ops::Range<usize>) -> &mut [f32] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "a phase wrote outside its buffer"
        );
        // SAFETY: in bounds (checked); exclusive for this phase by the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.start.add(range.start), range.len()) }
    }

    /// `range` of the buffer, to read.
    ///
    /// # Safety
    /// No worker writes any of `range` in this phase.
    pub unsafe fn read_range(&self, range: std::ops::Range<usize>) -> &[f32] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "a phase read outside its buffer"
        );
        // SAFETY: in bounds (checked); nobody writes it in this phase (the caller's promise).
        unsafe { std::slice::from_raw_parts(self.start.add(range.start), range.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three workers, many rounds: nobody passes a round before all have written their
    /// slot of it, and each sees the others' writes after the barrier.
    #[test]
    fn the_barrier_holds_every_worker_until_all_arrive() {
        let (workers, rounds) = (3, 2000);
        let barrier = SpinBarrier::new(workers);
        let slots: Vec<AtomicUsize> = (0..workers).map(|_| AtomicUsize::new(0)).collect();
        std::thread::scope(|scope| {
            for me in 0..workers {
                let (barrier, slots) = (&barrier, &slots);
                scope.spawn(move || {
                    for round in 1..=rounds {
                        slots[me].store(round, Ordering::Relaxed);
                        barrier.wait();
                        for slot in slots {
                            assert!(slot.load(Ordering::Relaxed) >= round, "round {round}");
                        }
                        barrier.wait();
                    }
                });
            }
        });
    }

    #[test]
    fn every_item_runs_once_on_its_own_worker_and_comes_back_in_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let out = pool.install(|| {
            on_each((0..7).collect(), |i: usize| {
                (i, rayon::current_thread_index().unwrap())
            })
        });
        let items: Vec<usize> = out.iter().map(|(i, _)| *i).collect();
        assert_eq!(items, (0..7).collect::<Vec<_>>());
        for (i, worker) in out {
            assert_eq!(worker, i % 3, "item {i}");
        }
        // Fewer items than workers: the idle worker takes none.
        let two = pool.install(|| on_each(vec![10, 20], |x: i32| x + 1));
        assert_eq!(two, [11, 21]);
    }
}
