//! Two-phase training (original-ml.md §3.5–3.6): phase 1 holds out the last stored month
//! and stops early on its validation loss; phase 2 trains a fresh model on every month
//! for `retrain_epoch_factor` × the best epoch count and forecasts the next month.
//!
//! Adam with coupled weight decay, cosine annealing with warm restarts stepped per batch,
//! gradient clipping, a seeded device and a seeded shuffle: the same data, settings and
//! seed give the same forecast.

use super::covariates;
use super::dataset::{self, Features, Sample};
use super::metrics::Evaluation;
use super::scaler::LogMinMax;
use super::tide::Widths;
use crate::config::{ModelConfig, TrainingConfig};
use crate::error::InputError;
use crate::forecast::history::History;
use crate::month::Month;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;

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

use super::blend::Blend;
pub use super::fit::learning_rate;
use super::fit::{Fitted, Plan, fit};
/// Everything a training run produces.
pub use super::predict::BaselineEvaluation;
use super::predict::{predict, score_holdout};
use super::stored::Adjustments;
use super::whole_copies::WholeCopies;

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
    /// The blend with a classical method the forecasts use, if one helped on the
    /// held-out month.
    pub blend: Option<Blend>,
    /// The whole-copy rounding the forecasts use, if it helped on the held-out month.
    pub whole_copies: Option<WholeCopies>,
    pub windows_phase1: usize,
    pub windows_phase2: usize,
    pub seconds_per_epoch: f64,
    pub windows_per_second: f64,
    /// Wall time of both phases.
    pub seconds: f64,
    /// The worker threads it trained with (`training.threads`, 0 resolved): results
    /// depend on it, so the stored model records it.
    pub threads: usize,
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
            "blend": self.blend,
            "whole_copies": self.whole_copies,
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
        "cuda" => {
            // burn's CUDA runtime panics on a machine without the driver: ask first.
            if !cuda_driver_present() {
                return Err(InputError::new(
                    "setting training.device = cuda: this machine has no CUDA driver (libcuda.so.1 cannot be loaded); use cpu, or train on a GPU machine (`train --remote` with a g… configuration)",
                )
                .into());
            }
            Ok(Device::cuda(0))
        }
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

/// Whether the CUDA driver library can be loaded here (what burn's CUDA runtime needs).
#[cfg(feature = "cuda")]
fn cuda_driver_present() -> bool {
    #[cfg(unix)]
    {
        ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
            let Ok(name) = std::ffi::CString::new(*name) else {
                return false;
            };
            // SAFETY: dlopen with a valid C string; the handle is closed at once.
            unsafe {
                let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
                if handle.is_null() {
                    false
                } else {
                    libc::dlclose(handle);
                    true
                }
            }
        })
    }
    #[cfg(not(unix))]
    {
        true
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
    let training = TrainingConfig {
        threads,
        ..training.clone()
    };
    pool.install(|| train_on(&history.complete_months(), model, &training, progress))
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
    // The newest month with sales is held out; a month the shop was closed tells nothing.
    let holdout = (0..t)
        .rev()
        .find(|&m| !history.closed[m])
        .filter(|&m| m > model.lags)
        .ok_or_else(|| {
            InputError::new("no month with sales to hold out: every recent month is stored empty")
        })?;
    let one = phase_one(history, holdout, model, training, &device, progress)?;
    let two = phase_two(history, &one, model, training, &device, progress)?;
    let epochs = one.run.epochs_run + two.epochs;
    let seconds = one.run.seconds + two.run.seconds;
    Ok(Trained {
        widths: two.widths,
        static_columns: two.features.static_columns.clone(),
        scaler: two.features.scaler,
        weights: two.weights,
        best_epoch: one.run.best_epoch,
        retrain_epochs: two.epochs,
        holdout_month: history.months[holdout],
        last_month: history.months[t - 1],
        forecast_month: history.months[t - 1].next(),
        validation: one.validation,
        baselines: one.baselines,
        validation_loss: one.run.best_valid_loss,
        train_loss: two.run.last_train_loss,
        forecasts: two.forecasts,
        blend: one.blend.clone(),
        whole_copies: one.whole_copies,
        windows_phase1: one.windows,
        windows_phase2: two.windows,
        seconds_per_epoch: seconds / epochs.max(1) as f64,
        windows_per_second: (one.run.windows_seen + two.run.windows_seen) as f64
            / seconds.max(1e-9),
        seconds,
        threads: training.threads,
    })
}

struct PhaseOne {
    run: Fitted,
    validation: Evaluation,
    baselines: Vec<BaselineEvaluation>,
    /// The blend with a classical method chosen on the held-out month, if one helps.
    blend: Option<Blend>,
    /// Whole copies, the offset chosen on the held-out month, if they help.
    whole_copies: Option<WholeCopies>,
    windows: usize,
}

/// Phase 1: fit on the months before the held-out one, stop early on it, score it.
fn phase_one(
    history: &History,
    holdout: usize,
    model: &ModelConfig,
    training: &TrainingConfig,
    device: &Device,
    progress: &mut (dyn FnMut(EpochReport) + Send),
) -> Result<PhaseOne> {
    let (lags, alpha) = (model.lags, training.sample_weight_alpha);
    let features = dataset::build(
        history,
        fit_scaler(history, holdout),
        training.ewm_span,
        covariates::Optional::of(model),
    );
    let train =
        features.training_samples(history, lags, holdout - 1, training.min_sales_months, alpha);
    let valid = features.holdout_samples(history, lags, holdout, alpha);
    if train.is_empty() || valid.is_empty() {
        return Err(InputError::new(
            "no training windows: no product had stock in the held-out month, or none sold in enough input months",
        )
        .into());
    }
    let widths = features.widths(model);
    let plan = Plan {
        features: &features,
        samples: &train,
        validation: Some(&valid),
        widths,
        model,
        training,
        epochs: training.max_epochs,
        phase: 1,
    };
    let run = fit(&plan, device, progress)?;
    let (validation, baselines, forecasts) = score_holdout(
        history,
        &features,
        &valid,
        &run.best_model,
        model,
        lags,
        device,
    )?;
    let blend = if model.blend_baseline {
        Blend::choose(history, &valid, &forecasts, &model.quantiles)
    } else {
        None
    };
    let whole_copies = if model.whole_copies {
        choose_whole_copies(history, &valid, forecasts, blend.as_ref(), &model.quantiles)
    } else {
        None
    };
    Ok(PhaseOne {
        run,
        validation,
        baselines,
        blend,
        whole_copies,
        windows: train.len(),
    })
}

/// Whole copies for the held-out month's forecasts (`forecasts`, one row of quantiles
/// per sample of `valid`) after the blend, if they score better there.
fn choose_whole_copies(
    history: &History,
    valid: &[Sample],
    forecasts: Vec<Vec<f64>>,
    blend: Option<&Blend>,
    quantiles: &[f64],
) -> Option<WholeCopies> {
    let blended: Vec<Vec<f64>> = valid
        .iter()
        .zip(forecasts)
        .map(|(s, q)| {
            let (i, target) = (s.product as usize, s.target as usize);
            Adjustments {
                blend,
                whole_copies: None,
            }
            .apply(history, i, target, q, quantiles)
        })
        .collect();
    let actuals: Vec<f64> = valid
        .iter()
        .map(|s| history.units[history.at(s.product as usize, s.target as usize)])
        .collect();
    WholeCopies::choose(&actuals, &blended, quantiles)
}

struct PhaseTwo {
    features: Features,
    widths: Widths,
    run: Fitted,
    epochs: usize,
    windows: usize,
    weights: Vec<u8>,
    forecasts: Vec<super::stored::ProductForecast>,
}

/// Phase 2: a fresh model on every month for `retrain_epoch_factor` × phase 1's best
/// epoch count, and its forecast of the month after the history.
fn phase_two(
    history: &History,
    one: &PhaseOne,
    model: &ModelConfig,
    training: &TrainingConfig,
    device: &Device,
    progress: &mut (dyn FnMut(EpochReport) + Send),
) -> Result<PhaseTwo> {
    let t = history.months.len();
    let epochs = ((one.run.best_epoch as f64) * training.retrain_epoch_factor)
        .round()
        .max(1.0) as usize;
    let features = dataset::build(
        history,
        fit_scaler(history, t),
        training.ewm_span,
        covariates::Optional::of(model),
    );
    let widths = features.widths(model);
    let train = features.training_samples(
        history,
        model.lags,
        t - 1,
        training.min_sales_months,
        training.sample_weight_alpha,
    );
    let plan = Plan {
        features: &features,
        samples: &train,
        validation: None,
        widths,
        model,
        training,
        epochs,
        phase: 2,
    };
    let run = fit(&plan, device, progress)?;
    let next = features.next_month_samples();
    let forecasts = predict(&features, &next, &run.best_model, model.lags, device)?;
    let forecasts = super::stored::product_forecasts(
        history,
        &next,
        forecasts,
        Adjustments {
            blend: one.blend.as_ref(),
            whole_copies: one.whole_copies,
        },
        &model.quantiles,
    );
    let weights = run
        .best_model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the model: {e:?}"))?
        .to_vec();
    Ok(PhaseTwo {
        features,
        widths,
        run,
        epochs,
        windows: train.len(),
        weights,
        forecasts,
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
            stock_end: (0..n * t).map(|k| (k % 3) as f64).collect(),
            arrivals: (0..n * t).map(|k| ((k * 7) % 4) as f64).collect(),
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

    /// Batches split over two workers: the same seed and thread count give the same
    /// model, and one thread gives the same model up to the order of float additions.
    #[test]
    fn split_batches_train_the_same_model_every_time() {
        let (model, training) = tiny_config();
        let model = ModelConfig {
            dropout: 0.3,
            ..model
        };
        let run = |threads: usize| {
            let training = TrainingConfig {
                max_epochs: 5,
                batch_size: 64, // two shards of the ~40 windows (fit::shards)
                threads,
                ..training.clone()
            };
            train(&tiny_history(), &model, &training, &mut |_| {}).unwrap()
        };
        let (a, b, one) = (run(2), run(2), run(1));
        assert_eq!(a.forecasts, b.forecasts);
        assert_eq!(a.validation_loss, b.validation_loss);
        assert!(
            (a.validation_loss - one.validation_loss).abs() < 1e-4 * one.validation_loss.abs(),
            "{} vs {}",
            a.validation_loss,
            one.validation_loss
        );
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
