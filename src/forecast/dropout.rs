//! Dropout masks for training, drawn by a counter-based generator instead of burn's
//! `Dropout`. burn's draws every element through a `StdRng` behind one global lock: a
//! third of a training step went there (see the README's profile), and worker threads
//! taking turns on that lock could not give the same model twice.
//!
//! Here the mask of a block for one row depends only on (seed, step, block, the row's
//! place in the whole batch): a batch split over any number of threads gets the masks
//! it would get in one piece, and the same seed gives the same masks on any machine.

use burn::tensor::{Tensor, TensorData};

/// The masks of one training step for the rows `offset..offset + samples` of its batch.
pub struct Dropout {
    /// Probability that an element is kept, as a 16-bit threshold (`u16 < keep`).
    keep: u32,
    /// `1 / P(keep)`: kept elements are scaled so the expected sum is unchanged.
    scale: f32,
    key: u64,
    offset: usize,
    samples: usize,
    /// How many blocks have drawn a mask so far: a block's place in the forward pass.
    block: u64,
}

impl Dropout {
    /// Masks for step `step` of a run seeded `seed`, for the rows
    /// `offset..offset + samples` of the step's batch.
    pub fn new(probability: f64, seed: u64, step: u64, offset: usize, samples: usize) -> Self {
        let keep = ((1.0 - probability.clamp(0.0, 1.0)) * 65536.0).round() as u32;
        Self {
            keep,
            // The scale of the probability actually drawn, so the mean stays exact.
            scale: if keep == 0 {
                0.0
            } else {
                (65536.0 / keep as f64) as f32
            },
            key: mix(mix(seed) ^ step),
            offset,
            samples,
            block: 0,
        }
    }

    /// Applies the next block's mask to `x` (rows × width, rows a multiple of `samples`).
    pub fn apply(&mut self, x: Tensor<2>) -> Tensor<2> {
        let [rows, width] = x.dims();
        match self.next_mask(rows, width) {
            Some(mask) => {
                let device = x.device();
                x * Tensor::<2>::from_data(TensorData::new(mask, [rows, width]), &device)
            }
            None => x,
        }
    }

    /// The next block's mask for `rows × width` values (row-major), or none when
    /// nothing is dropped; either way the next call is the following block's.
    pub fn next_mask(&mut self, rows: usize, width: usize) -> Option<Vec<f32>> {
        let block = self.block;
        self.block += 1;
        (self.keep < 65536).then(|| self.mask(block, rows, width))
    }

    fn mask(&self, block: u64, rows: usize, width: usize) -> Vec<f32> {
        // A projection block sees `per` rows (time steps) for every sample.
        let per = rows / self.samples.max(1);
        let mut out = vec![0.0f32; rows * width];
        for (row, values) in out.chunks_exact_mut(width.max(1)).enumerate() {
            let global = (self.offset * per + row) as u64;
            let mut state = mix(self.key ^ mix((block << 40) ^ global));
            // Four 16-bit draws from each 64-bit number, without branches: a kept
            // element is a coin flip, which a branch would mispredict half the time.
            for quad in values.chunks_mut(4) {
                state = state.wrapping_add(GOLDEN);
                let bits = mix(state);
                for (k, value) in quad.iter_mut().enumerate() {
                    let draw = ((bits >> (16 * k)) & 0xffff) as u32;
                    *value = f32::from(u8::from(draw < self.keep)) * self.scale;
                }
            }
        }
        out
    }
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(dropout: &Dropout, block: u64, rows: usize, width: usize) -> Vec<f32> {
        dropout.mask(block, rows, width)
    }

    #[test]
    fn about_the_asked_share_is_kept_and_scaled() {
        let dropout = Dropout::new(0.498, 7, 3, 0, 256);
        let m = mask(&dropout, 0, 256, 128);
        let kept = m.iter().filter(|&&v| v > 0.0).count() as f64 / m.len() as f64;
        // 32,768 draws: the share kept is within 1.5 % of 0.502 (≈ 5.4 σ).
        assert!((kept - 0.502).abs() < 0.015, "{kept}");
        let keep = (0.502f64 * 65536.0).round();
        assert!(m.iter().all(|&v| v == 0.0 || v == (65536.0 / keep) as f32));
        let mean = m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64;
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
    }

    #[test]
    fn a_split_batch_gets_the_masks_of_the_whole() {
        let whole = Dropout::new(0.3, 1, 5, 0, 10);
        let first = Dropout::new(0.3, 1, 5, 0, 4);
        let second = Dropout::new(0.3, 1, 5, 4, 6);
        // A block of one row per sample, and a projection block of 3 rows per sample.
        for per in [1, 3] {
            let all = mask(&whole, 2, 10 * per, 7);
            let mut parts = mask(&first, 2, 4 * per, 7);
            parts.extend(mask(&second, 2, 6 * per, 7));
            assert_eq!(all, parts);
        }
    }

    #[test]
    fn steps_blocks_and_seeds_draw_different_masks() {
        let a = mask(&Dropout::new(0.5, 1, 5, 0, 8), 0, 8, 64);
        assert_eq!(a, mask(&Dropout::new(0.5, 1, 5, 0, 8), 0, 8, 64));
        assert_ne!(a, mask(&Dropout::new(0.5, 1, 6, 0, 8), 0, 8, 64));
        assert_ne!(a, mask(&Dropout::new(0.5, 2, 5, 0, 8), 0, 8, 64));
        assert_ne!(a, mask(&Dropout::new(0.5, 1, 5, 0, 8), 1, 8, 64));
    }

    #[test]
    fn no_dropout_leaves_the_input_alone() {
        let device = burn::tensor::Device::flex();
        let x = Tensor::<2>::ones([2, 3], &device);
        let y = Dropout::new(0.0, 1, 1, 0, 2).apply(x.clone());
        assert_eq!(y.into_data(), x.into_data());
    }
}
