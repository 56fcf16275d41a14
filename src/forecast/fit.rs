//! One training run of a network: epochs of shuffled batches (Adam with coupled weight
//! decay, cosine warm restarts stepped per batch, gradient clipping, SWA in the
//! retraining phase), early stopping on a validation set when there is one. Each batch
//! is split over the training threads (see [`gradients`]).

use super::adam::Adam;
use super::dataset::{Features, Sample};
use super::dropout::Dropout;
use super::loss::{PinballLoss, quantile_weights};
use super::native;
use super::tide::{Tide, Widths};
use super::train::EpochReport;
use crate::config::{ModelConfig, TrainingConfig};
use anyhow::Result;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
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

/// What one run trains on and how.
pub struct Plan<'a> {
    pub features: &'a Features,
    pub samples: &'a [Sample],
    pub validation: Option<&'a [Sample]>,
    pub widths: Widths,
    pub model: &'a ModelConfig,
    pub training: &'a TrainingConfig,
    pub epochs: usize,
    pub phase: u8,
}

/// How the weights move. [`Engine::Native`], the hand-written CPU step, wherever it
/// computes the architecture (`native::supports`) on the CPU; burn's autodiff otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Autodiff,
    Native,
}

impl Engine {
    pub fn for_plan(plan: &Plan) -> Self {
        if plan.training.device == "cpu" && native::supports(plan.model) {
            Self::Native
        } else {
            Self::Autodiff
        }
    }
}

pub fn fit(
    plan: &Plan,
    plain: &Device,
    progress: &mut (dyn FnMut(EpochReport) + Send),
) -> Result<Fitted> {
    fit_with(plan, plain, progress, Engine::for_plan(plan))
}

/// [`fit`] with the engine named.
pub fn fit_with(
    plan: &Plan,
    plain: &Device,
    progress: &mut (dyn FnMut(EpochReport) + Send),
    engine: Engine,
) -> Result<Fitted> {
    let Plan {
        training,
        epochs,
        phase,
        ..
    } = *plan;
    let plain = plain.clone();
    let device = plain.clone().autodiff();
    let initial = Tide::seeded(plan.model, plan.widths, &device, training.seed);
    let mut run = Epochs {
        stepper: Stepper::new(plan, engine, initial, device)?,
        schedule: Schedule::new(training, epochs, phase),
        rng: StdRng::seed_from_u64(training.seed),
        order: (0..plan.samples.len()).collect(),
        batch: Vec::with_capacity(training.batch_size),
        step: 0,
    };
    let mut stopping = EarlyStopping::new(training);
    let mut averager = super::swa::Averager::default();
    let mut last_train_loss = f64::NAN;
    let mut epochs_run = 0;
    let started = Instant::now();
    for epoch in 1..=epochs {
        last_train_loss = run.epoch(plan, epoch)?;
        epochs_run = epoch;
        let current = run.stepper.model()?;
        if run.schedule.averaging(epoch) {
            averager.add(&current)?;
        }
        let valid_loss = match plan.validation {
            Some(v) => Some(validation_loss(plan, &current, v, &plain)?),
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
        if stopping.stop_after(epoch, valid_loss, current) {
            break;
        }
    }
    let (best_valid_loss, best_epoch, mut best_model) = stopping
        .best
        .ok_or_else(|| anyhow::anyhow!("no epoch ran"))?;
    if averager.count() > 0 {
        best_model = averager.apply(best_model)?;
    }
    if !last_train_loss.is_finite() {
        // The settings' fault, not the machine's: `tune` records such a trial as failed.
        return Err(crate::error::InputError::new(format!(
            "training diverged (loss {last_train_loss}); lower training.learning_rate"
        ))
        .into());
    }
    Ok(Fitted {
        best_model,
        best_epoch,
        best_valid_loss,
        last_train_loss,
        epochs_run,
        windows_seen: epochs_run * plan.samples.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The state that runs from epoch to epoch: the weights, the learning-rate schedule,
/// the shuffle and the step count (which the schedule and the dropout masks follow).
struct Epochs<'a> {
    stepper: Stepper,
    schedule: Schedule<'a>,
    rng: StdRng,
    order: Vec<usize>,
    batch: Vec<Sample>,
    step: usize,
}

impl Epochs<'_> {
    /// One pass over the shuffled samples in batches; the mean training loss per window.
    fn epoch(&mut self, plan: &Plan, epoch: usize) -> Result<f64> {
        self.order.shuffle(&mut self.rng);
        let (mut loss_sum, mut loss_weight) = (0.0, 0.0);
        for chunk in self.order.chunks(plan.training.batch_size) {
            self.batch.clear();
            self.batch.extend(chunk.iter().map(|&k| plan.samples[k]));
            let rate = self.schedule.rate(self.step, epoch);
            let value = self.stepper.step(plan, &self.batch, self.step, rate)?;
            loss_sum += value * chunk.len() as f64;
            loss_weight += chunk.len() as f64;
            self.step += 1;
        }
        Ok(loss_sum / f64::max(loss_weight, 1.0))
    }
}

/// The best epoch by validation loss (the latest, without a validation set), and when
/// to stop: `patience` epochs in a row that did not beat it by `min_delta`. `M` is what
/// is kept of the best epoch (the model).
struct EarlyStopping<M> {
    best: Option<(f64, usize, M)>,
    since_best: usize,
    min_delta: f64,
    patience: usize,
}

impl<M> EarlyStopping<M> {
    fn new(training: &TrainingConfig) -> Self {
        Self {
            best: None,
            since_best: 0,
            min_delta: training.min_delta,
            patience: training.patience,
        }
    }

    /// Records `epoch`'s model; true when training should stop.
    fn stop_after(&mut self, epoch: usize, valid_loss: Option<f64>, model: M) -> bool {
        let Some(v) = valid_loss else {
            self.best = Some((f64::NAN, epoch, model));
            return false;
        };
        let improved = self
            .best
            .as_ref()
            .is_none_or(|(b, _, _)| v < b - self.min_delta);
        if improved {
            self.best = Some((v, epoch, model));
            self.since_best = 0;
            return false;
        }
        self.since_best += 1;
        self.since_best >= self.patience
    }
}

/// How a run moves its weights: burn's autodiff with [`Adam`] (any architecture, any
/// device), or the hand-written CPU step ([`native`]) for the architectures it
/// supports on the CPU — the same model up to the order of float additions, faster, and
/// split over threads with less overhead.
enum Stepper {
    Autodiff(Box<AutodiffStep>),
    Native(Box<native::Trainer>),
}

struct AutodiffStep {
    /// Taken out during a step (the optimizer consumes the module).
    model: Option<Tide>,
    optimizer: Adam,
    device: Device,
}

impl Stepper {
    /// `initial`: the freshly initialised model on the autodiff `device`.
    fn new(plan: &Plan, engine: Engine, initial: Tide, device: Device) -> Result<Self> {
        let training = plan.training;
        if engine == Engine::Native {
            let loss = native::Loss::new(&plan.model.quantiles, &loss_weights(plan));
            let trainer =
                native::Trainer::new(initial.valid(), plan.model, plan.widths, training, loss)?;
            return Ok(Self::Native(Box::new(trainer)));
        }
        Ok(Self::Autodiff(Box::new(AutodiffStep {
            model: Some(initial),
            optimizer: Adam::new(training.weight_decay, training.gradient_clip_norm),
            device,
        })))
    }

    /// One optimizer step on `batch` at learning rate `rate`; the batch's loss.
    fn step(&mut self, plan: &Plan, batch: &[Sample], step: usize, rate: f64) -> Result<f64> {
        match self {
            Self::Autodiff(run) => {
                let current = run
                    .model
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("the model was lost in a failed step"))?;
                let (value, grads) = gradients(plan, &current, batch, step, &run.device)?;
                run.model = Some(run.optimizer.step(rate, current, grads)?);
                Ok(value)
            }
            Self::Native(trainer) => {
                let masks = native::Masks {
                    probability: plan.model.dropout,
                    seed: plan.training.seed,
                    step: step as u64,
                };
                trainer.step(plan.features, batch, masks, rate)
            }
        }
    }

    /// The current weights as a model on the plain device.
    fn model(&self) -> Result<Tide> {
        match self {
            Self::Autodiff(run) => run
                .model
                .as_ref()
                .map(|m| m.valid())
                .ok_or_else(|| anyhow::anyhow!("the model was lost in a failed step")),
            Self::Native(trainer) => Ok(trainer.model()),
        }
    }
}

/// The learning rate of each step: cosine warm restarts, then, in the retraining phase
/// with SWA from `swa_epoch_start × epochs` on, SWALR's anneal from the rate reached.
/// Phase 1 stops early and keeps its raw weights, as the original's did.
struct Schedule<'a> {
    training: &'a TrainingConfig,
    swa_start: Option<usize>,
    swa_from: Option<f64>,
}

impl<'a> Schedule<'a> {
    fn new(training: &'a TrainingConfig, epochs: usize, phase: u8) -> Self {
        Self {
            training,
            swa_start: (phase == 2 && training.swa)
                .then(|| (training.swa_epoch_start * epochs as f64).floor() as usize),
            swa_from: None,
        }
    }

    fn averaging(&self, epoch: usize) -> bool {
        self.swa_start.is_some_and(|start| epoch > start)
    }

    fn rate(&mut self, step: usize, epoch: usize) -> f64 {
        let t = self.training;
        let scheduled = learning_rate(t.learning_rate, step, t.lr_restart_steps, t.lr_restart_mult);
        match self.swa_start {
            Some(start) if epoch > start => {
                let from = *self.swa_from.get_or_insert(scheduled);
                super::swa::learning_rate(from, t.swa_lr, epoch - start, t.swa_annealing_epochs)
            }
            _ => scheduled,
        }
    }
}

/// The fewest samples a worker is given: below this a split costs more than it saves.
const MIN_SHARD: usize = 32;

/// The rows of a batch of `len` samples each of `workers` workers takes: contiguous,
/// in order, sizes differing by at most one.
pub fn shards(len: usize, workers: usize) -> Vec<std::ops::Range<usize>> {
    let n = workers.min(len.div_ceil(MIN_SHARD)).max(1);
    let (size, extra) = (len / n, len % n);
    let mut start = 0;
    (0..n)
        .map(|k| {
            let end = start + size + usize::from(k < extra);
            let range = start..end;
            start = end;
            range
        })
        .collect()
}

/// The loss and gradients of one batch, split over the thread pool's workers. Each
/// worker runs forward and backward on its rows with its own copy of the weights — its
/// own autodiff leaves, so the workers' graphs never meet — and the gradients are summed
/// in row order: the same seed and thread count give the same model. Dropout masks
/// depend on a row's place in the batch, not on the worker, so the thread count changes
/// only the order of float additions.
fn gradients(
    plan: &Plan,
    model: &Tide,
    batch: &[Sample],
    step: usize,
    device: &Device,
) -> Result<(f64, GradientsParams)> {
    let parts: Vec<_> = shards(batch.len(), rayon::current_num_threads())
        .into_iter()
        .map(|rows| (rows, model.clone().map(&mut Fork)))
        .collect();
    let results: Vec<Result<(f64, GradientsParams)>> = parts
        .into_par_iter()
        .map(|(rows, replica)| {
            let offset = rows.start;
            let part = &batch[rows];
            let inputs = plan.features.batch(part, plan.model.lags, device);
            let mut dropout = Dropout::new(
                plan.model.dropout,
                plan.training.seed,
                step as u64,
                offset,
                part.len(),
            );
            let output = replica.forward_train(inputs.inputs, &mut dropout);
            let loss = loss_function(plan, device).share(
                output,
                inputs.target,
                inputs.weight,
                batch.len(),
            );
            let value = scalar(loss.clone())?;
            Ok((
                value,
                GradientsParams::from_grads(loss.backward(), &replica),
            ))
        })
        .collect();
    let mut total = 0.0;
    let mut grads = Vec::with_capacity(results.len());
    for result in results {
        let (value, g) = result?;
        total += value;
        grads.push(g);
    }
    Ok((total, sum_gradients(model, grads)))
}

fn loss_function(plan: &Plan, device: &Device) -> PinballLoss {
    PinballLoss::new(&plan.model.quantiles, &loss_weights(plan), device)
}

/// The loss's weight of each quantile.
fn loss_weights(plan: &Plan) -> Vec<f64> {
    let t = plan.training;
    quantile_weights(&plan.model.quantiles, t.sigma_left, t.sigma_right)
}

/// A copy of the weights on fresh autodiff leaves with the same parameter ids, so its
/// gradients are found under the ids the optimizer knows.
struct Fork;

impl ModuleMapper for Fork {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| tensor.detach().require_grad())
    }
}

/// The workers' gradients added up parameter by parameter, in worker order.
fn sum_gradients(model: &Tide, mut parts: Vec<GradientsParams>) -> GradientsParams {
    if parts.len() == 1 {
        return parts.remove(0);
    }
    struct Sum<'a> {
        parts: &'a mut [GradientsParams],
        total: GradientsParams,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let mut sum: Option<Tensor<D>> = None;
            for part in self.parts.iter_mut() {
                if let Some(g) = part.remove::<D>(param.id) {
                    sum = Some(match sum {
                        Some(s) => s + g,
                        None => g,
                    });
                }
            }
            if let Some(sum) = sum {
                self.total.register(param.id, sum);
            }
        }
    }
    let mut sum = Sum {
        parts: &mut parts,
        total: GradientsParams::new(),
    };
    model.visit(&mut sum);
    sum.total
}

/// Samples per validation chunk: bounded memory for any number of products.
const VALIDATION_CHUNK: usize = 2048;

/// The validation loss, in chunks spread over the workers and added in order.
fn validation_loss(plan: &Plan, model: &Tide, samples: &[Sample], device: &Device) -> Result<f64> {
    let loss = loss_function(plan, device);
    let shares: Vec<Result<f64>> = samples
        .par_chunks(VALIDATION_CHUNK)
        .map(|chunk| {
            let batch = plan.features.batch(chunk, plan.model.lags, device);
            scalar(loss.share(
                model.forward(batch.inputs),
                batch.target,
                batch.weight,
                samples.len(),
            ))
        })
        .collect();
    shares.into_iter().sum()
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
mod tests {
    use super::*;

    fn stopping(patience: usize, min_delta: f64) -> EarlyStopping<&'static str> {
        EarlyStopping::new(&TrainingConfig {
            patience,
            min_delta,
            ..TrainingConfig::default()
        })
    }

    /// Keeps the best epoch, counts epochs that do not beat it by more than `min_delta`
    /// (0.30 after 0.31 is not enough) and stops at `patience` of them in a row.
    #[test]
    fn stops_after_patience_epochs_without_a_real_improvement() {
        let mut s = stopping(2, 0.02);
        assert!(!s.stop_after(1, Some(0.40), "one"));
        assert!(!s.stop_after(2, Some(0.31), "two"));
        assert!(!s.stop_after(3, Some(0.30), "three"), "first miss");
        assert!(!s.stop_after(4, Some(0.28), "four"), "0.03 better: counts");
        assert!(!s.stop_after(5, Some(0.27), "five"), "first miss again");
        assert!(
            s.stop_after(6, Some(f64::NAN), "six"),
            "a NaN loss never improves"
        );
        let (loss, epoch, model) = s.best.unwrap();
        assert_eq!((loss, epoch, model), (0.28, 4, "four"));
    }

    /// Without a validation set every epoch is the best so far and training never stops
    /// early; with a patience of 0 the first epoch that does not improve stops it.
    #[test]
    fn without_validation_the_last_epoch_is_kept() {
        let mut s = stopping(1, 0.0);
        for epoch in 1..=3 {
            assert!(!s.stop_after(epoch, None, "m"));
        }
        assert_eq!(s.best.as_ref().map(|b| b.1), Some(3));
        let mut s = stopping(0, 0.0);
        assert!(!s.stop_after(1, Some(0.5), "a"));
        assert!(s.stop_after(2, Some(0.5), "b"));
    }
}
