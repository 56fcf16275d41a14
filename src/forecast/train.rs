//! Two-phase training (original-ml.md §3.5–3.6): phase 1 holds out the last stored month
//! and stops early on its validation loss; phase 2 trains a fresh model on every month
//! for `retrain_epoch_factor` × the best epoch count and forecasts the next month.
//!
//! Adam with coupled weight decay, cosine annealing with warm restarts stepped per batch,
//! gradient clipping, a seeded device and a seeded shuffle: the same data, settings and
//! seed give the same forecast.

use super::dataset::{self, Features, Sample};
use super::loss::{PinballLoss, quantile_weights};
use super::metrics::Evaluation;
use super::scaler::LogMinMax;
use super::tide::{Tide, Widths};
use crate::config::{ModelConfig, TrainingConfig};
use crate::error::InputError;
use crate::forecast::history::History;
use crate::month::Month;
use anyhow::{Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, decay::WeightDecayConfig};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::time::Instant;

/// What a progress display is told after every epoch.
#[derive(Debug, Clone, Copy)]
pub struct EpochReport {
    pub phase: u8,
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub valid_loss: Option<f64>,
    pub seconds: f64,
}

/// Everything a training run produces.
pub use super::predict::BaselineEvaluation;
use super::predict::{predict, score_holdout};

pub struct Trained {
    pub widths: Widths,
    pub static_columns: Vec<String>,
    pub scaler: LogMinMax,
    pub weights: Vec<u8>,
    pub best_epoch: usize,
    pub retrain_epochs: usize,
    pub holdout_month: Month,
    /// The newest month trained on (the newest complete month of the history).
    pub last_month: Month,
    pub forecast_month: Month,
    pub validation: Evaluation,
    pub baselines: Vec<BaselineEvaluation>,
    pub validation_loss: f64,
    pub train_loss: f64,
    /// Every product's forecast for `forecast_month`: sorted, non-negative, rounded.
    pub forecasts: Vec<super::stored::ProductForecast>,
    pub windows_phase1: usize,
    pub windows_phase2: usize,
    pub seconds_per_epoch: f64,
    pub windows_per_second: f64,
    /// Wall time of both phases.
    pub seconds: f64,
}

impl Trained {
    /// The run's figures as stored with the model (and printed by `train --json`).
    pub fn metrics(&self) -> serde_json::Value {
        let beats = self
            .baselines
            .iter()
            .all(|b| self.validation.pinball < b.evaluation.pinball);
        serde_json::json!({
            "holdout_month": self.holdout_month,
            "validation": self.validation,
            "baselines": self.baselines,
            "beats_baselines_on_pinball": beats,
            "validation_loss": self.validation_loss,
            "train_loss": self.train_loss,
            "best_epoch": self.best_epoch,
            "retrain_epochs": self.retrain_epochs,
            "windows_phase1": self.windows_phase1,
            "windows_phase2": self.windows_phase2,
            "seconds_per_epoch": self.seconds_per_epoch,
            "windows_per_second": self.windows_per_second,
        })
    }
}

/// The smallest history a run needs: `lags` input months, one month to train on and the
/// held-out month.
pub fn minimum_months(model: &ModelConfig) -> usize {
    model.lags + 2
}

/// The compute device named by `training.device`: `cpu` (burn-flex, always there),
/// `cuda` and `wgpu` in builds with those cargo features.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        other => {
            let mut built = vec!["cpu"];
            if cfg!(feature = "cuda") {
                built.push("cuda");
            }
            if cfg!(feature = "wgpu") {
                built.push("wgpu");
            }
            Err(InputError::new(format!(
                "setting training.device: «{other}» is not available in this build (it has: {}); GPU backends need `cargo build --release --features cuda` or `--features wgpu`",
                built.join(", ")
            ))
            .into())
        }
    }
}

/// Trains on the complete months of `history` (a partial newest month is left out) and
/// forecasts the month after the newest complete one. `training.threads` workers (0: all
/// cores) run the tensor work.
pub fn train(
    history: &History,
    model: &ModelConfig,
    training: &TrainingConfig,
    progress: &mut (dyn FnMut(EpochReport) + Send),
) -> Result<Trained> {
    let threads = if training.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        training.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the training threads")?;
    pool.install(|| train_on(&history.complete_months(), model, training, progress))
}

fn train_on(
    history: &History,
    model: &ModelConfig,
    training: &TrainingConfig,
    progress: &mut (dyn FnMut(EpochReport) + Send),
) -> Result<Trained> {
    let t = history.months.len();
    if t < minimum_months(model) {
        return Err(InputError::new(format!(
            "training needs at least {} complete stored months (lags {} + one to learn from + one to hold out); the store has {t}",
            minimum_months(model),
            model.lags
        ))
        .into());
    }
    let device = device(&training.device)?;
    let lags = model.lags;
    // The newest month with sales is held out; a month the shop was closed tells nothing.
    let holdout = (0..t)
        .rev()
        .find(|&m| !history.closed[m])
        .filter(|&m| m > lags)
        .ok_or_else(|| {
            InputError::new("no month with sales to hold out: every recent month is stored empty")
        })?;
    let alpha = training.sample_weight_alpha;

    // Phase 1: fit on months before the held-out one, stop early on it.
    let scaler1 = fit_scaler(history, holdout);
    let features1 = dataset::build(history, scaler1, training.ewm_span);
    let train1 =
        features1.training_samples(history, lags, holdout - 1, training.min_sales_months, alpha);
    let valid1 = features1.holdout_samples(history, lags, holdout, alpha);
    if train1.is_empty() || valid1.is_empty() {
        return Err(InputError::new(
            "no training windows: no product had stock in the held-out month, or none sold in enough input months",
        )
        .into());
    }
    let widths = Widths {
        lags,
        past: dataset::PAST,
        future: dataset::FUTURE,
        statics: features1.static_width(),
        quantiles: model.quantiles.len(),
    };
    let run1 = fit(
        &features1,
        &train1,
        Some(&valid1),
        widths,
        model,
        training,
        training.max_epochs,
        1,
        &device,
        progress,
    )?;
    let (validation, baselines) = score_holdout(
        history,
        &features1,
        &valid1,
        &run1.best_model,
        model,
        lags,
        &device,
    )?;

    // Phase 2: a fresh model on every month, for 1.1 × the best epoch count.
    let retrain_epochs = ((run1.best_epoch as f64) * training.retrain_epoch_factor)
        .round()
        .max(1.0) as usize;
    let scaler2 = fit_scaler(history, t);
    let features2 = dataset::build(history, scaler2, training.ewm_span);
    let widths2 = Widths {
        statics: features2.static_width(),
        ..widths
    };
    let train2 = features2.training_samples(history, lags, t - 1, training.min_sales_months, alpha);
    let run2 = fit(
        &features2,
        &train2,
        None,
        widths2,
        model,
        training,
        retrain_epochs,
        2,
        &device,
        progress,
    )?;
    let next = features2.next_month_samples();
    let forecasts = predict(&features2, &next, &run2.best_model, lags, &device)?
        .into_iter()
        .zip(&next)
        .map(|(q, sample)| super::stored::ProductForecast {
            product_id: history.products[sample.product as usize].id,
            quantiles: model
                .quantiles
                .iter()
                .copied()
                .zip(q.into_iter().map(super::stored::round_units))
                .collect(),
        })
        .collect();
    let weights = run2
        .best_model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the model: {e:?}"))?
        .to_vec();
    let epochs = run1.epochs_run + retrain_epochs;
    let seconds = run1.seconds + run2.seconds;
    Ok(Trained {
        widths: widths2,
        static_columns: features2.static_columns.clone(),
        scaler: scaler2,
        weights,
        best_epoch: run1.best_epoch,
        retrain_epochs,
        holdout_month: history.months[holdout],
        last_month: history.months[t - 1],
        forecast_month: history.months[t - 1].next(),
        validation,
        baselines,
        validation_loss: run1.best_valid_loss,
        train_loss: run2.last_train_loss,
        forecasts,
        windows_phase1: train1.len(),
        windows_phase2: train2.len(),
        seconds_per_epoch: seconds / epochs.max(1) as f64,
        windows_per_second: (run1.windows_seen + run2.windows_seen) as f64 / seconds.max(1e-9),
        seconds,
    })
}

/// The scaler sees the units of every stored product-month before `until`.
fn fit_scaler(history: &History, until: usize) -> LogMinMax {
    let t = history.months.len();
    LogMinMax::fit(
        (0..history.products.len())
            .flat_map(|i| (0..until).map(move |m| i * t + m))
            .filter(|&at| history.present[at])
            .map(|at| history.units[at]),
    )
}

struct Fitted {
    best_model: Tide,
    best_epoch: usize,
    best_valid_loss: f64,
    last_train_loss: f64,
    epochs_run: usize,
    windows_seen: usize,
    seconds: f64,
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
fn fit(
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::forecast::history::ProductAttributes;

    /// Four products with a fixed repeating pattern over 16 months.
    pub(crate) fn tiny_history() -> History {
        let (n, t) = (4, 16);
        let first = Month::new(2025, 1).unwrap();
        let products = (0..n)
            .map(|i| ProductAttributes {
                id: i as i64 + 1,
                condition: if i % 2 == 0 {
                    "sealed".into()
                } else {
                    "opened".into()
                },
                release_type: "Оригинал".into(),
                style: "Rock/Pop".into(),
                price_category: "(689.999, 2490]".into(),
                recording_year: 1980 + i as i32,
                recording_decade: 1980,
                release_decade: 1980,
            })
            .collect();
        let units = (0..n)
            .flat_map(|i| (0..t).map(move |m| ((m + i) % 4 + 1) as f64))
            .collect();
        History {
            months: (0..t as i32).map(|k| first.plus(k)).collect(),
            complete: vec![true; t],
            closed: vec![false; t],
            products,
            units,
            availability: vec![1.0; n * t],
            confidence: vec![1.0; n * t],
            present: vec![true; n * t],
        }
    }

    pub(crate) fn tiny_config() -> (ModelConfig, TrainingConfig) {
        let model = ModelConfig {
            lags: 4,
            hidden_size: 32,
            num_encoder_layers: 1,
            num_decoder_layers: 1,
            decoder_output_dim: 8,
            temporal_decoder_hidden: 8,
            dropout: 0.0,
            ..ModelConfig::default()
        };
        let training = TrainingConfig {
            batch_size: 16,
            learning_rate: 0.01,
            lr_restart_steps: 10_000,
            max_epochs: 300,
            patience: 300,
            min_sales_months: 0,
            sample_weight_alpha: 0.0,
            ..TrainingConfig::default()
        };
        (model, training)
    }

    #[test]
    fn a_tiny_model_overfits_a_tiny_data_set() {
        let (model, training) = tiny_config();
        let mut losses = Vec::new();
        let trained = train(&tiny_history(), &model, &training, &mut |r| {
            if r.phase == 1 {
                losses.push(r.train_loss)
            }
        })
        .unwrap();
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < 0.05 && last < first / 20.0, "loss {first} → {last}");
        assert_eq!(trained.forecasts.len(), 4);
        for f in &trained.forecasts {
            let q: Vec<f64> = f.quantiles.iter().map(|&(_, u)| u).collect();
            assert!(q.windows(2).all(|w| w[0] <= w[1]) && q[0] >= 0.0, "{q:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_forecast() {
        let (model, training) = tiny_config();
        let training = TrainingConfig {
            max_epochs: 5,
            ..training
        };
        let a = train(&tiny_history(), &model, &training, &mut |_| {}).unwrap();
        let b = train(&tiny_history(), &model, &training, &mut |_| {}).unwrap();
        // (the weight bytes differ: burn gives every parameter a fresh random id)
        assert_eq!(a.forecasts, b.forecasts);
        assert_eq!(a.best_epoch, b.best_epoch);
    }

    /// `training.threads` used to be ignored once any thread pool existed in the process:
    /// the first run's `build_global` won and later ones silently kept its size. Here a
    /// global pool of one thread exists first, as in a process that ran anything with
    /// rayon before; every run must still work on its own count (burn-flex's kernels run
    /// on the pool `rayon::current_num_threads` reports where they are called).
    #[test]
    fn every_run_uses_its_own_thread_count() {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
        let (model, training) = tiny_config();
        for threads in [1, 2, 1] {
            let training = TrainingConfig {
                max_epochs: 1,
                threads,
                ..training.clone()
            };
            let mut seen = Vec::new();
            train(&tiny_history(), &model, &training, &mut |_| {
                seen.push(rayon::current_num_threads())
            })
            .unwrap();
            assert!(seen.iter().all(|&n| n == threads), "{threads}: {seen:?}");
        }
    }

    #[test]
    fn warm_restarts() {
        assert_eq!(learning_rate(1.0, 0, 10, 2), 1.0);
        assert!((learning_rate(1.0, 5, 10, 2) - 0.5).abs() < 1e-12);
        // second cycle starts at step 10 and lasts 20
        assert_eq!(learning_rate(1.0, 10, 10, 2), 1.0);
        assert!((learning_rate(1.0, 20, 10, 2) - 0.5).abs() < 1e-12);
        assert_eq!(learning_rate(1.0, 30, 10, 2), 1.0);
    }
}
