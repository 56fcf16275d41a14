//! Adam for weights kept in one flat buffer: the CPU training step's optimizer
//! (`forecast::native`), the same update as [`super::Adam`], spread over the workers.

use super::{Factors, sum_of_squares};
use crate::forecast::workers::on_each;

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
    ) {
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
            return;
        }
        self.time += 1;
        self.first.resize(len, 0.0);
        self.second.resize(len, 0.0);
        let pieces = pieces(segments);
        let groups = groups(&pieces, rayon::current_num_threads());
        let squares = summed(parts, &pieces, &groups);
        let mut norms = vec![0.0f32; segments.len()];
        for ((k, _), (square, _)) in pieces.iter().zip(&squares) {
            norms[*k] += square;
        }
        let factors = Factors::at(self.time, lr as f32, self.weight_decay, self.clip_norm);
        let state = split(params, &pieces)
            .into_iter()
            .zip(squares.into_iter().map(|(_, sum)| sum))
            .zip(split(&mut self.first, &pieces))
            .zip(split(&mut self.second, &pieces))
            .zip(&pieces);
        on_each(grouped(state, &groups), |group| {
            for ((((values, grad), first), second), (k, _)) in group {
                let clip = factors.clip(norms[*k].sqrt());
                factors.apply(values, grad, first, second, clip);
            }
        });
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

/// Every piece's gradient summed over the shards (`parts`), in shard order, each worker
/// taking its `groups` of pieces; each piece's sum of squares and the slice holding its sum.
fn summed<'a>(
    parts: &'a mut [Vec<f32>],
    pieces: &[(usize, std::ops::Range<usize>)],
    groups: &[usize],
) -> Vec<(f32, &'a mut [f32])> {
    // Each worker adds up its pieces of the gradient into the buffer of the shard it
    // computed itself (worker k ran shard k), so only the other shards' values cross
    // between cores (with every sum in shard 0's buffer, the other workers also had to
    // take shard 0's lines from its core before writing them).
    let shards = parts.len();
    let mut slices: Vec<_> = parts
        .iter_mut()
        .map(|part| split(part, pieces).into_iter())
        .collect();
    let owners = groups
        .iter()
        .enumerate()
        .flat_map(|(worker, &n)| std::iter::repeat_n(worker % shards, n));
    let mut sums = Vec::with_capacity(pieces.len());
    for owner in owners {
        // Every shard's slice of this piece, in shard order (`split` gives one per piece).
        let mut piece: Vec<&mut [f32]> = slices.iter_mut().filter_map(Iterator::next).collect();
        assert_eq!(piece.len(), shards, "a shard's gradient is missing a piece");
        let own = piece.remove(owner);
        let others: Vec<&[f32]> = piece.into_iter().map(|s| &*s).collect();
        sums.push((own, owner, others));
    }
    assert_eq!(sums.len(), pieces.len(), "a piece has no worker");
    on_each(grouped(sums.into_iter(), groups), |group| {
        group
            .into_iter()
            .map(|(own, owner, others)| {
                add_in_order(own, owner, &others);
                (sum_of_squares(own), own)
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
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

/// How many consecutive pieces each of `workers` workers takes: about equal weights.
fn groups(pieces: &[(usize, std::ops::Range<usize>)], workers: usize) -> Vec<usize> {
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
    sizes
}

/// `items` cut into consecutive groups of the given sizes.
fn grouped<T>(items: impl Iterator<Item = T>, sizes: &[usize]) -> Vec<Vec<T>> {
    let mut items = items;
    sizes
        .iter()
        .map(|&n| items.by_ref().take(n).collect())
        .collect()
}

/// `buffer` cut at the pieces' ranges (which tile it, in order).
fn split<'a>(
    mut buffer: &'a mut [f32],
    pieces: &[(usize, std::ops::Range<usize>)],
) -> Vec<&'a mut [f32]> {
    pieces
        .iter()
        .map(|(_, range)| {
            let (head, tail) = std::mem::take(&mut buffer).split_at_mut(range.len());
            buffer = tail;
            head
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
                    adam.step(1e-2, &mut params, &mut parts, &segments);
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
