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
    /// gradients of a batch's shards, added in order (into the first). `segments` must
    /// tile the buffers, in order. The pieces are fixed by the segments alone, so the
    /// result does not depend on how many workers share them.
    pub fn step(
        &mut self,
        lr: f64,
        params: &mut [f32],
        parts: &mut [Vec<f32>],
        segments: &[std::ops::Range<usize>],
    ) {
        let Some((sum, others)) = parts.split_first_mut() else {
            return;
        };
        self.time += 1;
        self.first.resize(params.len(), 0.0);
        self.second.resize(params.len(), 0.0);
        let pieces: Vec<(usize, std::ops::Range<usize>)> = segments
            .iter()
            .enumerate()
            .flat_map(|(k, s)| {
                (s.start..s.end)
                    .step_by(PIECE)
                    .map(move |at| (k, at..(at + PIECE).min(s.end)))
            })
            .collect();
        let groups = groups(&pieces, rayon::current_num_threads());
        // The summed gradient and each piece's share of its tensor's squared norm; each
        // worker keeps the same pieces from step to step.
        let others = &*others;
        let work = grouped(split(sum, &pieces).into_iter().zip(&pieces), &groups);
        let squares: Vec<f32> = on_each(work, |group| {
            group
                .into_iter()
                .map(|(grad, (_, range))| {
                    for other in others {
                        grad.iter_mut()
                            .zip(&other[range.clone()])
                            .for_each(|(g, o)| *g += o);
                    }
                    sum_of_squares(grad)
                })
                .collect::<Vec<f32>>()
        })
        .concat();
        let mut norms = vec![0.0f32; segments.len()];
        for ((k, _), square) in pieces.iter().zip(&squares) {
            norms[*k] += square;
        }
        let factors = Factors::at(self.time, lr as f32, self.weight_decay, self.clip_norm);
        let state = split(params, &pieces)
            .into_iter()
            .zip(split(sum, &pieces))
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
                    let mut parts = vec![wave(step as f32), wave(step as f32 + 1.0)];
                    adam.step(1e-2, &mut params, &mut parts, &segments);
                }
                params
            })
        };
        let mut want = wave(0.5);
        let mut moments: Vec<Moments> = (0..3).map(|_| Moments::default()).collect();
        for step in 0..3 {
            let factors = Factors::at(step + 1, 1e-2, 1e-3, 0.05);
            let (a, b) = (wave(step as f32), wave(step as f32 + 1.0));
            let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
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
        assert_eq!(one, run(3));
    }
}
