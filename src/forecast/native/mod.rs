//! TiDE's training step written out by hand for the CPU: forward, pinball loss and
//! backward on plain `f32` buffers, with every matrix product one `gemm` call on the
//! worker's own thread.
//!
//! Why: through burn's autodiff a step is some hundred small tensor operations, each
//! with a fixed cost (a graph node, an allocation, a kernel launch on the pool). With
//! the default widths that fixed cost was a third of a step, and it does not shrink when
//! a batch is split over threads, so two threads gained only 1.13–1.47× (README,
//! "Benchmarks"). Here a step is a dozen products per block and the rest is loops.
//!
//! It computes exactly what [`Tide::forward_train`] and `PinballLoss::share` compute
//! for the architectures [`supports`] accepts — the same dropout masks, the same ReLU
//! and tie rules — up to the order of float additions; a test holds the gradients to
//! burn's. Other architectures (layer norm, reversible instance norm, the future
//! projection) and the GPU backends train through burn's autodiff.

mod kernels;
pub mod layout;

use super::adam::FlatAdam;
use super::dataset::{BatchValues, Features, Sample};
use super::dropout::Dropout;
use super::fit::shards;
use super::tide::{Tide, Widths};
use super::workers::lockstep;
use crate::config::{ModelConfig, TrainingConfig};
use anyhow::{Result, bail};
use kernels::{block_backward, block_forward, linear, linear_grads};
pub use layout::{Layout, supports};
use std::sync::Mutex;

/// The training loss's constants, in `f32` as burn's tensors hold them.
pub struct Loss {
    quantiles: Vec<f32>,
    weights: Vec<f32>,
}

impl Loss {
    pub fn new(quantiles: &[f64], weights: &[f64]) -> Self {
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
        Self {
            quantiles: f32s(quantiles),
            weights: f32s(weights),
        }
    }

    /// `Σ_b w_b Σ_q λ_q ρ_q(y_b − ŷ_bq) / batch` (the shard's share of the batch loss),
    /// and its gradient with respect to the forecast.
    fn share(
        &self,
        forecast: &[f32],
        target: &[f32],
        weight: &[f32],
        total: usize,
    ) -> (f64, Vec<f32>) {
        let q = self.quantiles.len();
        let n = total.max(1) as f32;
        let mut value = 0.0f64;
        let mut grad = vec![0.0; forecast.len()];
        let rows = forecast.chunks_exact(q).zip(grad.chunks_exact_mut(q));
        for ((row, d), (&target, &weight)) in rows.zip(target.iter().zip(weight)) {
            let mut per_sample = 0.0f32;
            for k in 0..q {
                let (level, lambda) = (self.quantiles[k], self.weights[k]);
                let e = target - row[k];
                // burn's `max_pair` takes the second only when the first is lower, so a
                // tie has the slope of `q·e`.
                let (above, below) = (e * level, e * (level - 1.0));
                let (rho, slope) = if above < below {
                    (below, level - 1.0)
                } else {
                    (above, level)
                };
                per_sample += rho * lambda;
                d[k] = -slope * lambda * weight / n;
            }
            value += f64::from(per_sample * weight);
        }
        (value / f64::from(n), grad)
    }
}

/// One shard's share of the batch loss, and its gradient written into `grads` (layout
/// order; every weight is written).
pub fn shard_gradient(
    layout: &Layout,
    params: &[f32],
    mut batch: BatchValues,
    loss: &Loss,
    total: usize,
    dropout: &mut Dropout,
    grads: &mut [f32],
) -> Result<f64> {
    let Widths {
        lags,
        past,
        future,
        statics,
        quantiles,
    } = layout.widths;
    let rows = batch.target.len();
    if (batch.past_width, batch.future_width, batch.static_width) != (past, future, statics)
        || batch.lookback.len() != rows * lags
        || batch.weight.len() != rows
        || loss.quantiles.len() != quantiles
        || grads.len() != layout.weights()
        || params.len() != layout.weights()
    {
        bail!("the batch or the weights do not have the widths the model was built for");
    }
    // The past covariates, projected month by month: one row per (sample, month).
    let (past_tape, projected) = match &layout.past_projection {
        Some(block) => {
            let past = std::mem::take(&mut batch.past);
            let (tape, y) = block_forward(params, block, past, rows * lags, dropout);
            (Some(tape), y)
        }
        None => (None, std::mem::take(&mut batch.past)),
    };
    let mut x = encoder_input(layout, &batch, &projected);
    let mut tapes = Vec::with_capacity(layout.blocks.len());
    for block in &layout.blocks {
        let (tape, y) = block_forward(params, block, x, rows, dropout);
        tapes.push(tape);
        x = y;
    }
    let decoded = layout.temporal_decoder.dense.input - future;
    let temporal = &layout.temporal_decoder;
    let (temporal_tape, mut forecast) = block_forward(
        params,
        temporal,
        temporal_input(&x, decoded, &batch, lags, future),
        rows,
        dropout,
    );
    let skip = layout.lookback_skip;
    linear(params, skip, &batch.lookback, rows, &mut forecast, true);
    debug_assert_eq!(forecast.len(), rows * quantiles);

    let (value, d_forecast) = loss.share(&forecast, &batch.target, &batch.weight, total);
    linear_grads(grads, skip, &batch.lookback, &d_forecast, rows);
    let d_temporal = block_backward(params, grads, temporal, temporal_tape, &d_forecast, true);
    let d_temporal = d_temporal.unwrap_or_default();
    let mut d = columns(&d_temporal, decoded + future, 0..decoded);
    for (k, (block, tape)) in layout.blocks.iter().zip(tapes).enumerate().rev() {
        let wanted = k > 0 || past_tape.is_some();
        match block_backward(params, grads, block, tape, &d, wanted) {
            Some(dx) => d = dx,
            None => break,
        }
    }
    if let (Some(block), Some(tape)) = (&layout.past_projection, past_tape) {
        let past_cols = lags * layout.past_width;
        let d_projected = columns(&d, layout.encoder_input(), lags..lags + past_cols);
        block_backward(params, grads, block, tape, &d_projected, false);
    }
    Ok(value)
}

/// The encoder's input, row by row: the lookback, the projected past covariates, the
/// future covariates of every month and the static columns.
fn encoder_input(layout: &Layout, batch: &BatchValues, projected: &[f32]) -> Vec<f32> {
    let Widths {
        lags,
        future,
        statics,
        ..
    } = layout.widths;
    let (past_cols, future_cols) = (lags * layout.past_width, (lags + 1) * future);
    let rows = batch.target.len();
    let mut x = Vec::with_capacity(rows * layout.encoder_input());
    for r in 0..rows {
        x.extend_from_slice(&batch.lookback[r * lags..][..lags]);
        x.extend_from_slice(&projected[r * past_cols..][..past_cols]);
        x.extend_from_slice(&batch.future[r * future_cols..][..future_cols]);
        x.extend_from_slice(&batch.statics[r * statics..][..statics]);
    }
    x
}

/// The temporal decoder's input: each row's decoding (`decodings`, row-major, `width`
/// wide) and the target month's future covariates.
fn temporal_input(
    decodings: &[f32],
    width: usize,
    batch: &BatchValues,
    lags: usize,
    future: usize,
) -> Vec<f32> {
    let rows = batch.target.len();
    debug_assert_eq!(decodings.len(), rows * width);
    let future_cols = (lags + 1) * future;
    let mut input = Vec::with_capacity(rows * (width + future));
    for r in 0..rows {
        input.extend_from_slice(&decodings[r * width..][..width]);
        input.extend_from_slice(&batch.future[r * future_cols + lags * future..][..future]);
    }
    input
}

/// The columns `keep` of a row-major matrix `width` wide.
fn columns(matrix: &[f32], width: usize, keep: std::ops::Range<usize>) -> Vec<f32> {
    let mut out = Vec::with_capacity(matrix.len() / width.max(1) * keep.len());
    for row in matrix.chunks_exact(width) {
        out.extend_from_slice(&row[keep.clone()]);
    }
    out
}

/// What a step's dropout masks are drawn from ([`Dropout::new`]).
#[derive(Debug, Clone, Copy)]
pub struct Masks {
    pub probability: f64,
    pub seed: u64,
    pub step: u64,
}

/// A network trained by the hand-written step: its weights in one buffer, Adam's state,
/// and a burn model of the same shape to hand the weights out in.
pub struct Trainer {
    layout: Layout,
    params: Vec<f32>,
    /// One gradient buffer per shard, kept from step to step.
    grads: Vec<Vec<f32>>,
    optimizer: FlatAdam,
    loss: Loss,
    template: Tide,
}

impl Trainer {
    /// Starts from `initial`'s weights (a plain, non-autodiff model).
    pub fn new(
        initial: Tide,
        model: &ModelConfig,
        widths: Widths,
        training: &TrainingConfig,
        loss: Loss,
    ) -> Result<Self> {
        let layout = Layout::new(model, widths);
        let params = layout.read(&initial)?;
        Ok(Self {
            layout,
            params,
            grads: Vec::new(),
            optimizer: FlatAdam::new(training.weight_decay, training.gradient_clip_norm),
            loss,
            template: initial,
        })
    }

    /// One optimizer step on `batch`, split over the pool's workers as
    /// [`super::fit`]'s autodiff step splits it; returns the batch's loss.
    pub fn step(
        &mut self,
        features: &Features,
        batch: &[Sample],
        masks: Masks,
        lr: f64,
    ) -> Result<f64> {
        let Masks {
            probability,
            seed,
            step,
        } = masks;
        let workers = rayon::current_num_threads();
        let parts = shards(batch.len(), workers);
        let (n, width) = (parts.len(), self.layout.weights());
        if self.grads.len() < n {
            self.grads.resize_with(n, || vec![0.0; width]);
        }
        let (layout, loss) = (&self.layout, &self.loss);
        let lags = layout.widths.lags;
        // Only the shards' workers take part, so idle workers of a large pool sleep; the
        // optimizer's pieces are fixed, so its result does not depend on how many share it.
        let Some(optimizer) = self.optimizer.phases(
            lr,
            &mut self.params,
            &mut self.grads[..n],
            &layout.segments,
            n,
        ) else {
            return Ok(0.0);
        };
        // One dispatch a step: shard k on worker k (its gradient buffer stays in that
        // core's cache), then the optimizer's two phases, in lockstep.
        let values: Vec<Mutex<f64>> = (0..n).map(|_| Mutex::new(0.0)).collect();
        let shard = |me: usize| -> Result<()> {
            let rows = parts[me].clone();
            let part = &batch[rows.clone()];
            let values_in = features.batch_values(part, lags);
            let mut dropout = Dropout::new(probability, seed, step, rows.start, part.len());
            // SAFETY: the shards' phase: every worker reads the weights and worker `me`
            // alone writes shard `me`'s gradient.
            let (params, grads) = unsafe { (optimizer.params(), optimizer.part(me)) };
            let value = shard_gradient(
                layout,
                params,
                values_in,
                loss,
                batch.len(),
                &mut dropout,
                grads,
            )?;
            *values[me].lock().unwrap_or_else(|e| e.into_inner()) = value;
            Ok(())
        };
        // SAFETY: each phase once per worker index, all at once, barriers between.
        let sum = |me| {
            unsafe { optimizer.sum(me) };
            Ok(())
        };
        let apply = |me| {
            unsafe { optimizer.apply(me) };
            Ok(())
        };
        lockstep(n, &[&shard, &sum, &apply])?;
        optimizer.finish();
        // The batch's loss: the shards' shares added in shard order.
        Ok(values
            .into_iter()
            .map(|v| v.into_inner().unwrap_or_else(|e| e.into_inner()))
            .sum())
    }

    /// The current weights as a burn model on the plain device, for validation,
    /// averaging and storing.
    pub fn model(&self) -> Tide {
        self.layout.write(self.template.clone(), &self.params)
    }
}

#[cfg(test)]
mod tests;
