//! One training run of a network: epochs of shuffled batches (Adam with coupled weight
//! decay, cosine warm restarts stepped per batch, gradient clipping, SWA in the
//! retraining phase), early stopping on a validation set when there is one.

use super::dataset::{Features, Sample};
use super::loss::{PinballLoss, quantile_weights};
use super::tide::{Tide, Widths};
use super::train::EpochReport;
use crate::config::{ModelConfig, TrainingConfig};
use anyhow::Result;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, decay::WeightDecayConfig};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::time::Instant;

pub struct Fitted {
    pub best_model: Tide,
    pub best_epoch: usize,
    pub best_valid_loss: f64,
    pub last_train_loss: f64,
    pub epochs_run: usize,
    pub windows_seen: usize,
    pub seconds: f64,
}

/// Cosine annealing with warm restarts: cycle k lasts `first · mult^k` steps.
pub fn learning_rate(base: f64, step: usize, first: usize, mult: usize) -> f64 {
    let (mut start, mut length) = (0usize, first.max(1));
    while step >= start + length {
        start += length;
        length = length.saturating_mul(mult.max(1));
    }
    let progress = (step - start) as f64 / length as f64;
    base * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
}

#[allow(clippy::too_many_arguments)]
pub fn fit(
    features: &Features,
    samples: &[Sample],
    validation: Option<&[Sample]>,
    widths: Widths,
    model_config: &ModelConfig,
    training: &TrainingConfig,
    epochs: usize,
    phase: u8,
    plain: &Device,
    progress: &mut (dyn FnMut(EpochReport) + Send),
) -> Result<Fitted> {
    let plain = plain.clone();
    let device = plain.clone().autodiff();
    device.seed(training.seed);
    plain.seed(training.seed);
    let mut rng = StdRng::seed_from_u64(training.seed);
    let mut model = Tide::new(model_config, widths, &device);
    let mut optimizer = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(training.weight_decay as f32)))
        .with_grad_clipping(Some(GradientClippingConfig::Norm(
            training.gradient_clip_norm as f32,
        )))
        .init();
    let weights = quantile_weights(
        &model_config.quantiles,
        training.sigma_left,
        training.sigma_right,
    );
    let loss_fn = PinballLoss::new(&model_config.quantiles, &weights, &device);
    let valid_loss_fn = PinballLoss::new(&model_config.quantiles, &weights, &plain);
    let lags = model_config.lags;
    let mut order: Vec<usize> = (0..samples.len()).collect();
    let mut step = 0usize;
    let mut best: Option<(f64, usize, Tide)> = None;
    let mut since_best = 0usize;
    let mut last_train_loss = f64::NAN;
    let mut windows_seen = 0usize;
    let started = Instant::now();
    let mut epochs_run = 0;
    let mut batch_samples = Vec::with_capacity(training.batch_size);
    // SWA in the retraining phase only: phase 1 stops early and keeps its raw weights,
    // as the original's did.
    let swa_start = (phase == 2 && training.swa)
        .then(|| (training.swa_epoch_start * epochs as f64).floor() as usize);
    let mut swa_from: Option<f64> = None;
    let mut averager = super::swa::Averager::default();
    for epoch in 1..=epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut loss_weight) = (0.0, 0.0);
        for chunk in order.chunks(training.batch_size) {
            batch_samples.clear();
            batch_samples.extend(chunk.iter().map(|&k| samples[k]));
            let batch = features.batch(&batch_samples, lags, &device);
            let output = model.forward(batch.inputs);
            let loss = loss_fn.forward(output, batch.target, batch.weight);
            let value = scalar(loss.clone())?;
            loss_sum += value * chunk.len() as f64;
            loss_weight += chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let scheduled = learning_rate(
                training.learning_rate,
                step,
                training.lr_restart_steps,
                training.lr_restart_mult,
            );
            let lr = match swa_start {
                Some(start) if epoch > start => {
                    let from = *swa_from.get_or_insert(scheduled);
                    super::swa::learning_rate(
                        from,
                        training.swa_lr,
                        epoch - start,
                        training.swa_annealing_epochs,
                    )
                }
                _ => scheduled,
            };
            model = optimizer.step(lr, model, grads);
            step += 1;
        }
        windows_seen += samples.len();
        epochs_run = epoch;
        if swa_start.is_some_and(|start| epoch > start) {
            averager.add(&model.valid())?;
        }
        last_train_loss = loss_sum / loss_weight.max(1.0);
        let valid_loss = match validation {
            Some(v) => {
                let frozen = model.valid();
                let batch = features.batch(v, lags, &plain);
                Some(scalar(valid_loss_fn.forward(
                    frozen.forward(batch.inputs),
                    batch.target,
                    batch.weight,
                ))?)
            }
            None => None,
        };
        progress(EpochReport {
            phase,
            epoch,
            epochs,
            train_loss: last_train_loss,
            valid_loss,
            seconds: started.elapsed().as_secs_f64(),
        });
        match valid_loss {
            Some(v) => {
                let improved = best
                    .as_ref()
                    .is_none_or(|(b, _, _)| v < b - training.min_delta);
                if improved {
                    best = Some((v, epoch, model.valid()));
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= training.patience {
                        break;
                    }
                }
            }
            None => best = Some((f64::NAN, epoch, model.valid())),
        }
    }
    let (best_valid_loss, best_epoch, mut best_model) =
        best.ok_or_else(|| anyhow::anyhow!("no epoch ran"))?;
    if averager.count() > 0 {
        best_model = averager.apply(best_model)?;
    }
    if !last_train_loss.is_finite() {
        anyhow::bail!("training diverged (loss {last_train_loss}); lower training.learning_rate");
    }
    Ok(Fitted {
        best_model,
        best_epoch,
        best_valid_loss,
        last_train_loss,
        epochs_run,
        windows_seen,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The value of a one-element tensor; a failed read is an error, never a silent NaN.
fn scalar(t: Tensor<1>) -> Result<f64> {
    let values = t
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the loss from the device: {e:?}"))?;
    values
        .first()
        .map(|&v| v as f64)
        .ok_or_else(|| anyhow::anyhow!("the loss tensor is empty"))
}
