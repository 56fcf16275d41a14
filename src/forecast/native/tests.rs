//! The hand-written step against burn's autodiff on the same weights, batch and masks.

use super::*;
use crate::forecast::loss::{PinballLoss, quantile_weights};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

fn widths() -> Widths {
    Widths {
        lags: 4,
        past: 6,
        future: 3,
        statics: 5,
        quantiles: 5,
    }
}

/// A batch of `rows` samples with varied values, the targets near the forecasts' scale.
fn values(rows: usize) -> BatchValues {
    let Widths {
        lags,
        past,
        future,
        statics,
        ..
    } = widths();
    let wave = |n: usize, shift: f32| -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.61 + shift).sin() * 0.8)
            .collect()
    };
    BatchValues {
        lookback: wave(rows * lags, 0.1),
        past: wave(rows * lags * past, 0.7),
        future: wave(rows * (lags + 1) * future, 1.3),
        statics: wave(rows * statics, 2.9),
        target: wave(rows, 0.4),
        weight: (0..rows).map(|i| 0.5 + (i % 3) as f32 * 0.25).collect(),
        past_width: past,
        future_width: future,
        static_width: statics,
    }
}

/// burn's loss share and gradients (layout order) for the rows `offset..offset + rows`
/// of a batch of `total`.
fn burns(
    model: &Tide,
    config: &ModelConfig,
    v: BatchValues,
    offset: usize,
    total: usize,
) -> (f64, Vec<f32>) {
    let device = Device::flex().autodiff();
    let rows = v.target.len();
    let batch = v.into_batch(widths().lags, &device);
    let (inputs, target, weight) = (batch.inputs, batch.target, batch.weight);
    let mut dropout = Dropout::new(config.dropout, 11, 7, offset, rows);
    let output = model.forward_train(inputs, &mut dropout);
    let lambda = quantile_weights(&config.quantiles, 0.754, 1.39);
    let loss =
        PinballLoss::new(&config.quantiles, &lambda, &device).share(output, target, weight, total);
    let value = loss.clone().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
    let mut grads = GradientsParams::from_grads(loss.backward(), model);
    struct Collect<'a>(&'a mut GradientsParams, Vec<f32>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = self
                .0
                .remove::<D>(param.id)
                .expect("every weight has a gradient");
            self.1.extend(g.into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut collect = Collect(&mut grads, Vec::new());
    model.visit(&mut collect);
    (value, collect.1)
}

fn ours(
    model: &Tide,
    config: &ModelConfig,
    v: BatchValues,
    offset: usize,
    total: usize,
) -> (f64, Vec<f32>) {
    let layout = Layout::new(config, widths());
    let params = layout.read(&model.valid()).unwrap();
    let lambda = quantile_weights(&config.quantiles, 0.754, 1.39);
    let loss = Loss::new(&config.quantiles, &lambda);
    let rows = v.target.len();
    let mut dropout = Dropout::new(config.dropout, 11, 7, offset, rows);
    let mut grads = vec![f32::NAN; layout.weights()];
    let value =
        shard_gradient(&layout, &params, v, &loss, total, &mut dropout, &mut grads).unwrap();
    (value, grads)
}

/// Each parameter tensor's gradient agrees with burn's to 1e-4 of its largest entry.
fn assert_same(config: &ModelConfig, offset: usize, rows: usize, total: usize) {
    let device = Device::flex().autodiff();
    let model = Tide::seeded(config, widths(), &device, 5);
    let (want_value, want) = burns(&model, config, values(rows), offset, total);
    let (value, got) = ours(&model, config, values(rows), offset, total);
    assert!(
        (value - want_value).abs() <= 1e-5 * want_value.abs().max(1e-3),
        "loss {value} vs burn's {want_value}"
    );
    let layout = Layout::new(config, widths());
    assert_eq!(got.len(), want.len());
    let mut moved = 0;
    for segment in &layout.segments {
        let (g, w) = (&got[segment.clone()], &want[segment.clone()]);
        let scale = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        moved += usize::from(scale > 0.0);
        for (a, b) in g.iter().zip(w) {
            assert!(
                (a - b).abs() <= 1e-4 * scale + 1e-7,
                "segment {segment:?}: {a} vs burn's {b} (scale {scale})"
            );
        }
    }
    assert!(
        moved * 10 >= layout.segments.len() * 9,
        "only {moved} tensors have a gradient"
    );
}

fn small() -> ModelConfig {
    ModelConfig {
        hidden_size: 16,
        decoder_output_dim: 4,
        temporal_decoder_hidden: 8,
        ..ModelConfig::default()
    }
}

/// The default architecture (past projection, dropout) on a shard that is not the
/// batch's first: the masks must be the rows' own.
#[test]
fn gradients_match_burns_autodiff() {
    assert_same(&small(), 3, 9, 20);
}

#[test]
fn gradients_match_without_dropout_or_past_projection_and_with_deeper_stacks() {
    let config = ModelConfig {
        dropout: 0.0,
        temporal_width_past: 0,
        num_encoder_layers: 2,
        num_decoder_layers: 2,
        ..small()
    };
    assert_same(&config, 0, 7, 7);
}

#[test]
fn layer_norm_and_the_other_options_are_left_to_autodiff() {
    assert!(supports(&ModelConfig::default()));
    assert!(supports(&ModelConfig::original()));
    for config in [
        ModelConfig {
            use_layer_norm: true,
            ..ModelConfig::default()
        },
        ModelConfig {
            use_reversible_instance_norm: true,
            ..ModelConfig::default()
        },
        ModelConfig {
            temporal_width_future: 2,
            ..ModelConfig::default()
        },
    ] {
        assert!(!supports(&config), "{config:?}");
    }
}

/// Loss by hand (as `loss.rs`'s test): y = 1, ŷ = (0, 1, 3), q = (0.1, 0.5, 0.9),
/// λ = (0.5, 1, 2), weight 2, batch of 2: ρ = (0.1, 0, 0.2) → (0.05 + 0 + 0.4)·2 / 2 =
/// 0.45. Slopes: e > 0 → −q·λ·w/n = −0.1·0.5·2/2 = −0.05; the tie e = 0 takes q's:
/// −0.5; e < 0 → (1 − q)·λ·w/n = 0.1·2·2/2 = 0.2.
#[test]
fn the_loss_and_its_slopes_by_hand() {
    let loss = Loss::new(&[0.1, 0.5, 0.9], &[0.5, 1.0, 2.0]);
    let (value, grad) = loss.share(&[0.0, 1.0, 3.0], &[1.0], &[2.0], 2);
    assert!((value - 0.45).abs() < 1e-6, "{value}");
    let want = [-0.05, -0.5, 0.2];
    for (g, w) in grad.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{grad:?}");
    }
}

/// The train module's tiny shop with dropout: its settings, features, the 44 training
/// windows (one batch of 64, two shards of 22 on two threads) and the held-out ones.
fn tiny_run() -> (
    ModelConfig,
    TrainingConfig,
    Features,
    Vec<Sample>,
    Vec<Sample>,
) {
    use crate::forecast::{covariates, dataset, scaler::LogMinMax, train::tests};
    let history = tests::tiny_history();
    let (model, training) = tests::tiny_config();
    let model = ModelConfig {
        dropout: 0.3,
        ..model
    };
    let training = TrainingConfig {
        max_epochs: 12,
        batch_size: 64,
        ..training
    };
    let scaler = LogMinMax::fit(history.units.iter().copied());
    let optional = covariates::Optional::of(&model);
    let features = dataset::build(&history, scaler, training.ewm_span, optional);
    let t = history.months.len();
    let samples = features.training_samples(&history, model.lags, t - 2, 0, 0.0);
    let valid = features.holdout_samples(&history, model.lags, t - 1, 0.0);
    (model, training, features, samples, valid)
}

/// Runs `test` on its own thread and fails if it has not finished within a minute: a
/// step whose workers wait for each other for ever fails instead of hanging the suite.
fn within_a_minute(test: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(()) => runner.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the step hung"),
    }
}

fn masks(step: u64) -> Masks {
    Masks {
        probability: 0.3,
        seed: 1,
        step,
    }
}

/// A shard that fails (an error in both, a panic in one) fails the step on two threads,
/// without hanging at the step's barriers, without moving a weight and without counting
/// the step: the next good step is a fresh trainer's first, bit for bit.
#[test]
fn a_failing_shard_fails_the_step_and_moves_no_weight() {
    within_a_minute(|| {
        let (model, training, features, mut samples, _) = tiny_run();
        let widths = features.widths(&model);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let initial = Tide::seeded(&model, widths, &Device::flex(), 5);
        let layout = Layout::new(&model, widths);
        let before = layout.read(&initial).unwrap();
        let trainer = |quantiles: &[f64]| {
            let loss = Loss::new(quantiles, &vec![1.0; quantiles.len()]);
            Trainer::new(initial.clone(), &model, widths, &training, loss).unwrap()
        };
        pool.install(|| {
            let mut fresh = trainer(&model.quantiles);
            fresh.step(&features, &samples, masks(0), 1e-2).unwrap();
            let once = layout.read(&fresh.model()).unwrap();
            assert_ne!(once, before, "a step moves the weights");
            // Both shards refuse a loss with the wrong number of quantiles.
            let mut wrong = trainer(&[0.1, 0.5]);
            let error = wrong.step(&features, &samples, masks(0), 1e-2).unwrap_err();
            assert!(error.to_string().contains("widths"), "{error}");
            assert_eq!(layout.read(&wrong.model()).unwrap(), before);
            // A product the features do not hold panics in the second shard only.
            let mut trainer = trainer(&model.quantiles);
            let last = samples.len() - 1;
            let product = samples[last].product;
            samples[last].product = u32::MAX;
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                trainer.step(&features, &samples, masks(0), 1e-2)
            }));
            assert!(step.is_err(), "the shard's panic reaches the caller");
            assert_eq!(layout.read(&trainer.model()).unwrap(), before);
            samples[last].product = product;
            trainer.step(&features, &samples, masks(0), 1e-2).unwrap();
            assert_eq!(layout.read(&trainer.model()).unwrap(), once);
        });
    });
}

/// Two, three and four threads split the 44 windows into the same two shards; the idle
/// workers stay out, and the optimizer's fixed pieces give the same weights bit for bit.
#[test]
fn idle_workers_change_nothing() {
    within_a_minute(|| {
        let (model, training, features, samples, _) = tiny_run();
        let widths = features.widths(&model);
        let initial = Tide::seeded(&model, widths, &Device::flex(), 5);
        let layout = Layout::new(&model, widths);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let loss = Loss::new(&model.quantiles, &vec![1.0; model.quantiles.len()]);
                let mut trainer =
                    Trainer::new(initial.clone(), &model, widths, &training, loss).unwrap();
                let losses: Vec<f64> = (0..3)
                    .map(|k| trainer.step(&features, &samples, masks(k), 1e-2).unwrap())
                    .collect();
                (losses, layout.read(&trainer.model()).unwrap())
            })
        };
        assert_eq!(shards(samples.len(), 4).len(), 2);
        let two = run(2);
        assert_eq!(two, run(3));
        assert_eq!(two, run(4));
    });
}

/// Whole runs: twelve epochs with dropout through each engine on two threads (each
/// batch in two shards), from the same seed, end at the same model (up to float
/// rounding: both pass the same masks and batches).
#[test]
fn a_run_trains_the_model_autodiff_trains() {
    use crate::forecast::fit::{Engine, Plan, fit_with};
    let (model, training, features, samples, valid) = tiny_run();
    let plan = Plan {
        features: &features,
        samples: &samples,
        validation: Some(&valid),
        widths: features.widths(&model),
        model: &model,
        training: &training,
        epochs: training.max_epochs,
        phase: 1,
    };
    assert_eq!(samples.len(), 44);
    assert_eq!(Engine::for_plan(&plan), Engine::Native);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let run = |engine| {
        pool.install(|| {
            let mut losses = Vec::new();
            let fitted = fit_with(
                &plan,
                &Device::flex(),
                &mut |r| losses.push(r.train_loss),
                engine,
            )
            .unwrap();
            (fitted, losses)
        })
    };
    let ((native, native_losses), (autodiff, autodiff_losses)) =
        (run(Engine::Native), run(Engine::Autodiff));
    assert!(
        native_losses[11] < native_losses[0] * 0.9,
        "{native_losses:?}"
    );
    for (a, b) in native_losses.iter().zip(&autodiff_losses) {
        assert!(
            (a - b).abs() <= 1e-4 * b,
            "{native_losses:?} vs {autodiff_losses:?}"
        );
    }
    let layout = Layout::new(&model, plan.widths);
    let (a, b) = (
        layout.read(&native.best_model).unwrap(),
        layout.read(&autodiff.best_model).unwrap(),
    );
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
    }
    assert_eq!(native.best_epoch, autodiff.best_epoch);
}

/// GPU devices and the options the hand-written step does not compute go to autodiff.
#[test]
fn other_devices_and_architectures_train_through_autodiff() {
    use crate::forecast::fit::{Engine, Plan};
    use crate::forecast::{covariates, dataset, scaler::LogMinMax, train::tests};
    let history = tests::tiny_history();
    let (model, training) = tests::tiny_config();
    let scaler = LogMinMax::fit(history.units.iter().copied());
    let optional = covariates::Optional::of(&model);
    let features = dataset::build(&history, scaler, training.ewm_span, optional);
    let engine = |model: &ModelConfig, training: &TrainingConfig| {
        let plan = Plan {
            features: &features,
            samples: &[],
            validation: None,
            widths: widths(),
            model,
            training,
            epochs: 1,
            phase: 2,
        };
        Engine::for_plan(&plan)
    };
    assert_eq!(engine(&model, &training), Engine::Native);
    let gpu = TrainingConfig {
        device: "cuda".into(),
        ..training.clone()
    };
    assert_eq!(engine(&model, &gpu), Engine::Autodiff);
    let normed = ModelConfig {
        use_layer_norm: true,
        ..model.clone()
    };
    assert_eq!(engine(&normed, &training), Engine::Autodiff);
}

/// A weight gone NaN makes the loss NaN, as through burn, so a diverged run is caught
/// (ReLU keeps NaN; `f32::max` would have turned it into 0).
#[test]
fn a_nan_weight_shows_in_the_loss() {
    let config = small();
    let layout = Layout::new(&config, widths());
    let device = Device::flex();
    let mut params = layout
        .read(&Tide::seeded(&config, widths(), &device, 5))
        .unwrap();
    let first = layout.blocks[0].dense;
    params[first.weight] = f32::NAN;
    let lambda = quantile_weights(&config.quantiles, 0.754, 1.39);
    let loss = Loss::new(&config.quantiles, &lambda);
    let mut dropout = Dropout::new(0.0, 1, 0, 0, 4);
    let mut grads = vec![0.0; layout.weights()];
    let value = shard_gradient(
        &layout,
        &params,
        values(4),
        &loss,
        4,
        &mut dropout,
        &mut grads,
    )
    .unwrap();
    assert!(value.is_nan(), "{value}");
}
