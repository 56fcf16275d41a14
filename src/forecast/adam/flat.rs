//! Adam for weights kept in one flat buffer: the CPU training step's optimizer
//! (`forecast::native`), the same update as [`super::Adam`], spread over the workers.

use super::{Factors, sum_of_squares};
use crate::forecast::workers::{Phased, lockstep};

/// The same update for parameters kept in one flat buffer (the CPU training step's,
/// `native`): `segments` are the parameter tensors, in order, each clipped on its own.
/// The work is cut into pieces of at most [`PIECE`] weights, so two workers share it
/// evenly even when two tensors hold two thirds of the weights.
pub struct FlatAdam {
    weight_decay: f32,
    clip_norm: f32,
    time: i32,
    first: Vec<f32>,
    second: Vec<f32>,
    /// Scratch for a step's per-piece sums of squares.
    squares: Vec<f32>,
}

/// Weights per piece of work: big enough that handing a piece to a worker costs little.
const PIECE: usize = 8192;

impl FlatAdam {
    pub fn new(weight_decay: f64, clip_norm: f64) -> Self {
        Self {
            weight_decay: weight_decay as f32,
            clip_norm: clip_norm as f32,
            time: 0,
            first: Vec::new(),
            second: Vec::new(),
            squares: Vec::new(),
        }
    }

    /// `params` moved one step at learning rate `lr` against the sum of `parts`, the
    /// gradients of a batch's shards, added in shard order. `segments` must tile the
    /// buffers, in order. The pieces are fixed by the segments alone, so the result does
    /// not depend on how many workers share them.
    pub fn step(
        &mut self,
        lr: f64,
        params: &mut [f32],
        parts: &mut [Vec<f32>],
        segments: &[std::ops::Range<usize>],
    ) -> anyhow::Result<()> {
        let workers = rayon::current_num_threads();
        let Some(step) = self.phases(lr, params, parts, segments, workers) else {
            return Ok(());
        };
        // SAFETY: `lockstep` runs each phase once per worker index, all workers at once,
        // with a barrier between the phases.
        let sum = |w| {
            unsafe { step.sum(w) };
            Ok(())
        };
        let apply = |w| {
            unsafe { step.apply(w) };
            Ok(())
        };
        lockstep(workers, &[&sum, &apply])?;
        step.finish();
        Ok(())
    }

    /// Starts a step shared by `workers` workers: each must call [`Step::sum`] with its
    /// index, then all wait at a barrier, then each calls [`Step::apply`]; then
    /// [`Step::finish`] counts the step (a step dropped unfinished leaves Adam's step count
    /// as it was). `None` when there is no gradient. The buffers stay borrowed until the
    /// step is finished or dropped.
    pub fn phases<'a>(
        &'a mut self,
        lr: f64,
        params: &'a mut [f32],
        parts: &'a mut [Vec<f32>],
        segments: &[std::ops::Range<usize>],
        workers: usize,
    ) -> Option<Step<'a>> {
        let len = params.len();
        let tiled = segments.first().is_none_or(|s| s.start == 0)
            && segments.iter().all(|s| s.start <= s.end)
            && segments.windows(2).all(|w| w[0].end == w[1].start)
            && segments.last().map_or(0, |s| s.end) == len;
        assert!(
            tiled && parts.iter().all(|p| p.len() == len),
            "the optimizer's segments must tile the weights and every gradient"
        );
        if parts.is_empty() {
            return None;
        }
        self.first.resize(len, 0.0);
        self.second.resize(len, 0.0);
        let pieces = pieces(segments);
        self.squares.clear();
        self.squares.resize(pieces.len(), 0.0);
        Some(Step {
            groups: groups(&pieces, workers.max(1)),
            pieces,
            segments: segments.len(),
            factors: Factors::at(self.time + 1, lr as f32, self.weight_decay, self.clip_norm),
            time: &mut self.time,
            params: Phased::new(params),
            parts: parts.iter_mut().map(|p| Phased::new(p)).collect(),
            first: Phased::new(&mut self.first),
            second: Phased::new(&mut self.second),
            squares: Phased::new(&mut self.squares),
        })
    }
}

/// One optimizer step in two phases spread over the workers (see [`FlatAdam::phases`]).
/// Worker `w` takes the consecutive pieces `groups[w]`, and holds their summed gradient in
/// shard `w mod shards`'s buffer, so it mostly works in lines its own core wrote.
pub struct Step<'a> {
    pieces: Vec<(usize, std::ops::Range<usize>)>,
    groups: Vec<std::ops::Range<usize>>,
    segments: usize,
    factors: Factors,
    params: Phased<'a>,
    parts: Vec<Phased<'a>>,
    first: Phased<'a>,
    second: Phased<'a>,
    /// Each piece's sum of squares of its summed gradient.
    squares: Phased<'a>,
    /// Adam's step count, moved on by [`Step::finish`].
    time: &'a mut i32,
}

impl Step<'_> {
    /// Counts the step, once every worker has applied it.
    pub fn finish(self) {
        *self.time += 1;
    }

    /// The weights, to read (the shards' phase, before [`Step::sum`]).
    ///
    /// # Safety
    /// Not during [`Step::apply`].
    pub unsafe fn params(&self) -> &[f32] {
        // SAFETY: only `apply` writes the weights.
        unsafe { self.params.read() }
    }

    /// Shard `shard`'s gradient buffer, to write (the shards' phase).
    ///
    /// # Safety
    /// Only by the worker that computes that shard, and not during [`Step::sum`] or
    /// [`Step::apply`].
    #[allow(clippy::mut_from_ref)] // each shard's buffer has one writer: see the safety note
    pub unsafe fn part(&self, shard: usize) -> &mut [f32] {
        let part = &self.parts[shard];
        // SAFETY: one writer per shard, and no other phase runs (the caller's promise).
        unsafe { part.write(0..part.len()) }
    }

    /// Worker `worker`'s pieces summed over the shards, in shard order, and their sums
    /// of squares.
    ///
    /// # Safety
    /// Called once per worker index, all at once, after the shards' phase and before
    /// any worker calls [`Step::apply`].
    pub unsafe fn sum(&self, worker: usize) {
        let Some(group) = self.groups.get(worker) else {
            return;
        };
        let owner = worker % self.parts.len();
        for index in group.clone() {
            let range = self.pieces[index].1.clone();
            // SAFETY: a piece belongs to one worker; its sum is written only in the
            // owner's buffer, and the other shards' slices of it are only read, by that
            // worker. Each piece's square has one writer.
            unsafe {
                let others: Vec<&[f32]> = (0..self.parts.len())
                    .filter(|&k| k != owner)
                    .map(|k| self.parts[k].read_range(range.clone()))
                    .collect();
                let own = self.parts[owner].write(range);
                add_in_order(own, owner, &others);
                self.squares.write(index..index + 1)[0] = sum_of_squares(own);
            }
        }
    }

    /// Worker `worker`'s pieces moved by Adam, each tensor clipped by its whole norm.
    ///
    /// # Safety
    /// Called once per worker index, all at once, after every worker's [`Step::sum`]
    /// has returned (a barrier between).
    pub unsafe fn apply(&self, worker: usize) {
        let Some(group) = self.groups.get(worker) else {
            return;
        };
        // SAFETY: the squares were all written in the sum phase, which is over.
        let squares = unsafe { self.squares.read() };
        let mut norms = vec![0.0f32; self.segments];
        for ((k, _), square) in self.pieces.iter().zip(squares) {
            norms[*k] += square;
        }
        let owner = worker % self.parts.len();
        for (k, range) in &self.pieces[group.clone()] {
            let clip = self.factors.clip(norms[*k].sqrt());
            // SAFETY: this worker's pieces: nobody else reads or writes them now.
            unsafe {
                self.factors.apply(
                    self.params.write(range.clone()),
                    self.parts[owner].read_range(range.clone()),
                    self.first.write(range.clone()),
                    self.second.write(range.clone()),
                    clip,
                );
            }
        }
    }
}

/// The pieces: each segment cut into runs of at most [`PIECE`] weights, with the index of
/// the segment (tensor) each belongs to.
fn pieces(segments: &[std::ops::Range<usize>]) -> Vec<(usize, std::ops::Range<usize>)> {
    segments
        .iter()
        .enumerate()
        .flat_map(|(k, s)| {
            (s.start..s.end)
                .step_by(PIECE)
                .map(move |at| (k, at..(at + PIECE).min(s.end)))
        })
        .collect()
}

/// `own`, which holds shard `position`'s gradient, replaced by the sum of all shards'
/// (`others`: the rest, in shard order), added in shard order, ((g₀ + g₁) + g₂) + …,
/// whichever shard's buffer holds it. Done in blocks, so `own` is read before it is
/// overwritten.
fn add_in_order(own: &mut [f32], position: usize, others: &[&[f32]]) {
    if position == 0 {
        // Shard 0's buffer: add the rest in place, in order.
        for other in others {
            own.iter_mut().zip(*other).for_each(|(g, o)| *g += o);
        }
        return;
    }
    const BLOCK: usize = 256;
    let mut block = [0.0f32; BLOCK];
    for start in (0..own.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(own.len());
        let sum = &mut block[..end - start];
        for shard in 0..=others.len() {
            let part: &[f32] = match shard.cmp(&position) {
                std::cmp::Ordering::Equal => &own[start..end],
                std::cmp::Ordering::Less => &others[shard][start..end],
                std::cmp::Ordering::Greater => &others[shard - 1][start..end],
            };
            if shard == 0 {
                sum.copy_from_slice(part);
            } else {
                sum.iter_mut().zip(part).for_each(|(s, v)| *s += v);
            }
        }
        own[start..end].copy_from_slice(sum);
    }
}

/// The consecutive pieces each of `workers` workers takes: about equal weights.
fn groups(
    pieces: &[(usize, std::ops::Range<usize>)],
    workers: usize,
) -> Vec<std::ops::Range<usize>> {
    let total: usize = pieces.iter().map(|(_, r)| r.len()).sum();
    let workers = workers.max(1);
    let mut sizes = vec![0usize; workers];
    let mut done = 0;
    for (_, range) in pieces {
        // The worker whose share of the weights this piece's middle falls in.
        let middle = done + range.len() / 2;
        sizes[(middle * workers / total.max(1)).min(workers - 1)] += 1;
        done += range.len();
    }
    let mut start = 0;
    sizes
        .into_iter()
        .map(|n| {
            start += n;
            start - n..start
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Moments;
    use super::*;

    /// Sums in shard order whichever buffer holds them: with g₀ = 1e8, g₁ = −1e8,
    /// g₂ = 1 the order matters ((g₀ + g₁) + g₂ = 1, (g₀ + g₂) + g₁ = 0).
    #[test]
    fn shards_are_added_in_order_whoever_holds_the_sum() {
        let values = [1e8f32, -1e8, 1.0, 3.0, -7.5];
        for shards in 1..=5 {
            let parts: Vec<Vec<f32>> = (0..shards).map(|k| vec![values[k]; 300]).collect();
            let want = (1..shards).fold(values[0], |s, k| s + values[k]);
            for position in 0..shards {
                let mut own = parts[position].clone();
                let others: Vec<&[f32]> = (0..shards)
                    .filter(|&k| k != position)
                    .map(|k| parts[k].as_slice())
                    .collect();
                add_in_order(&mut own, position, &others);
                assert!(
                    own.iter().all(|v| v.to_bits() == want.to_bits()),
                    "{shards} shards, sum in {position}: {} vs {want}",
                    own[0]
                );
            }
        }
    }

    /// The flat optimizer: the shards' gradients summed, each tensor clipped on its own,
    /// as `Factors::update` per tensor; and the same weights on any number of workers.
    #[test]
    fn the_flat_optimizer_steps_tensor_by_tensor() {
        let segments = [0..20_000, 20_000..20_003, 20_003..29_003];
        let wave = |shift: f32| -> Vec<f32> {
            (0..29_003)
                .map(|i| ((i as f32) * 0.37 + shift).sin() * 0.01)
                .collect()
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut adam = FlatAdam::new(1e-3, 0.05);
                let mut params = wave(0.5);
                for step in 0..3 {
                    let s = step as f32;
                    let mut parts = vec![wave(s), wave(s + 1.0), wave(s + 2.0)];
                    adam.step(1e-2, &mut params, &mut parts, &segments).unwrap();
                }
                params
            })
        };
        let mut want = wave(0.5);
        let mut moments: Vec<Moments> = (0..3).map(|_| Moments::default()).collect();
        for step in 0..3 {
            let factors = Factors::at(step + 1, 1e-2, 1e-3, 0.05);
            let s = step as f32;
            let (a, b, c) = (wave(s), wave(s + 1.0), wave(s + 2.0));
            let sum: Vec<f32> = (0..a.len()).map(|i| (a[i] + b[i]) + c[i]).collect();
            for (segment, m) in segments.iter().zip(&mut moments) {
                factors.update(&mut want[segment.clone()], &sum[segment.clone()], m);
            }
        }
        let one = run(1);
        assert!(
            one.iter().zip(wave(0.5)).any(|(x, y)| *x != y),
            "nothing moved"
        );
        for (x, y) in one.iter().zip(&want) {
            assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{x} vs {y}");
        }
        // Pieces summed in shard 1's and 2's buffers, and more workers than shards.
        for threads in [2, 3, 4, 5] {
            assert_eq!(one, run(threads), "{threads} threads");
        }
    }
}
