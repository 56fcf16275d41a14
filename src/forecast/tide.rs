//! TiDE (Das et al. 2023) with darts semantics (original-ml.md §3.2), in burn 0.22.
//!
//! Horizon 1, one target. Shapes, for a batch of B samples with L = lags months of input:
//! `lookback` (B, L) scaled sales; `past` (B, L, P) past covariates; `future` (B, L+1, F)
//! calendar covariates of the input months and the target month; `statics` (B, S).
//! Output (B, Q): one value per quantile, in scaled space.

use super::dropout::Dropout;
use crate::config::ModelConfig;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// `y = Dropout(W2·ReLU(W1·x)) + Ws·x`, then LayerNorm if enabled. Dropout is applied
/// in training only, by the masks the training step passes in ([`Dropout`]).
#[derive(Module, Debug)]
pub struct ResidualBlock {
    dense: Linear,
    out: Linear,
    skip: Linear,
    norm: Option<LayerNorm>,
}

impl ResidualBlock {
    pub fn new(
        input: usize,
        hidden: usize,
        output: usize,
        config: &ModelConfig,
        device: &Device,
    ) -> Self {
        Self {
            dense: LinearConfig::new(input, hidden).init(device),
            out: LinearConfig::new(hidden, output).init(device),
            skip: LinearConfig::new(input, output).init(device),
            norm: config
                .use_layer_norm
                .then(|| LayerNormConfig::new(output).init(device)),
        }
    }

    pub fn forward(&self, x: Tensor<2>, dropout: Option<&mut Dropout>) -> Tensor<2> {
        let h = relu(self.dense.forward(x.clone()));
        let mut y = self.out.forward(h);
        if let Some(dropout) = dropout {
            y = dropout.apply(y);
        }
        let y = y + self.skip.forward(x);
        match &self.norm {
            Some(norm) => norm.forward(y),
            None => y,
        }
    }

    /// (input, hidden, output) widths, for shape checks.
    pub fn widths(&self) -> (usize, usize, usize) {
        let [input, hidden] = self.dense.weight.dims();
        let [_, output] = self.out.weight.dims();
        (input, hidden, output)
    }
}

/// Input widths the model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Widths {
    pub lags: usize,
    pub past: usize,
    pub future: usize,
    pub statics: usize,
    pub quantiles: usize,
}

impl Widths {
    /// Width of a month's past covariates as the encoder sees them: projected, or raw.
    pub fn past_seen(&self, config: &ModelConfig) -> usize {
        match config.temporal_width_past {
            0 => self.past,
            projected => projected,
        }
    }

    /// Width of a month's calendar covariates as the encoder sees them.
    pub fn future_seen(&self, config: &ModelConfig) -> usize {
        match config.temporal_width_future {
            0 => self.future,
            projected => projected,
        }
    }

    /// The encoder's input: lookback, past months, input and target months' calendar,
    /// statics.
    pub fn encoder_input(&self, config: &ModelConfig) -> usize {
        let lags = self.lags;
        lags + lags * self.past_seen(config) + (lags + 1) * self.future_seen(config) + self.statics
    }
}

#[derive(Module, Debug)]
pub struct Tide {
    past_projection: Option<ResidualBlock>,
    future_projection: Option<ResidualBlock>,
    encoder: Vec<ResidualBlock>,
    decoder: Vec<ResidualBlock>,
    temporal_decoder: ResidualBlock,
    lookback_skip: Linear,
    /// Reversible instance norm's affine pair (γ, β) on the target, when enabled.
    rin: Option<Linear>,
    #[module(skip)]
    decoder_output_dim: usize,
    #[module(skip)]
    quantiles: usize,
}

pub struct Batch {
    pub lookback: Tensor<2>,
    pub past: Tensor<3>,
    pub future: Tensor<3>,
    pub statics: Tensor<2>,
}

/// burn's CPU (and GPU) backends draw every initial weight from one process-wide generator, and burn draws
/// a parameter's weights lazily, when it is first read. So seeding, drawing and reading
/// must not interleave with another model's: `tune` trains several at once, and a
/// model's first weights depended on what the others drew meanwhile.
static INITIALISING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Tide {
    /// A model with freshly drawn weights (for a stored model, what its record replaces).
    pub fn new(config: &ModelConfig, widths: Widths, device: &Device) -> Self {
        let _alone = INITIALISING.lock().unwrap_or_else(|e| e.into_inner());
        Self::build(config, widths, device).drawn()
    }

    /// A model whose initial weights depend on `seed` alone, whatever else the process
    /// is drawing at the same time.
    pub fn seeded(config: &ModelConfig, widths: Widths, device: &Device, seed: u64) -> Self {
        let _alone = INITIALISING.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        Self::build(config, widths, device).drawn()
    }

    /// Every parameter read once, in visit order, so that its weights are drawn now.
    fn drawn(self) -> Self {
        struct Draw;
        impl burn::module::ModuleVisitor for Draw {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let _ = param.val();
            }
        }
        self.visit(&mut Draw);
        self
    }

    fn build(config: &ModelConfig, widths: Widths, device: &Device) -> Self {
        let Widths {
            lags,
            past,
            future,
            quantiles,
            ..
        } = widths;
        let future_width = widths.future_seen(config);
        let encoder_input = widths.encoder_input(config);
        let h = config.hidden_size;
        let mut encoder = vec![ResidualBlock::new(encoder_input, h, h, config, device)];
        for _ in 1..config.num_encoder_layers {
            encoder.push(ResidualBlock::new(h, h, h, config, device));
        }
        let mut decoder = Vec::new();
        for _ in 1..config.num_decoder_layers {
            decoder.push(ResidualBlock::new(h, h, h, config, device));
        }
        decoder.push(ResidualBlock::new(
            h,
            h,
            config.decoder_output_dim * quantiles,
            config,
            device,
        ));
        Self {
            past_projection: (config.temporal_width_past > 0).then(|| {
                ResidualBlock::new(
                    past,
                    config.temporal_hidden_size_past,
                    config.temporal_width_past,
                    config,
                    device,
                )
            }),
            future_projection: (config.temporal_width_future > 0).then(|| {
                ResidualBlock::new(
                    future,
                    config.temporal_hidden_size_future,
                    config.temporal_width_future,
                    config,
                    device,
                )
            }),
            encoder,
            decoder,
            temporal_decoder: ResidualBlock::new(
                config.decoder_output_dim * quantiles + future_width,
                config.temporal_decoder_hidden,
                quantiles,
                config,
                device,
            ),
            lookback_skip: LinearConfig::new(lags, quantiles).init(device),
            rin: config
                .use_reversible_instance_norm
                .then(|| LinearConfig::new(1, 1).init(device)),
            decoder_output_dim: config.decoder_output_dim,
            quantiles,
        }
    }

    /// Width of the encoder's input and of every block, for shape checks.
    pub fn describe(&self) -> Vec<(String, (usize, usize, usize))> {
        let mut out = Vec::new();
        if let Some(b) = &self.past_projection {
            out.push(("past_projection".to_string(), b.widths()));
        }
        if let Some(b) = &self.future_projection {
            out.push(("future_projection".to_string(), b.widths()));
        }
        for (i, b) in self.encoder.iter().enumerate() {
            out.push((format!("encoder.{i}"), b.widths()));
        }
        for (i, b) in self.decoder.iter().enumerate() {
            out.push((format!("decoder.{i}"), b.widths()));
        }
        out.push((
            "temporal_decoder".to_string(),
            self.temporal_decoder.widths(),
        ));
        let [lags, q] = self.lookback_skip.weight.dims();
        out.push(("lookback_skip".to_string(), (lags, 0, q)));
        out
    }

    /// The forecast, as used after training: no dropout.
    pub fn forward(&self, batch: Batch) -> Tensor<2> {
        self.run(batch, None)
    }

    /// The forecast in a training step, with that step's dropout masks.
    pub fn forward_train(&self, batch: Batch, dropout: &mut Dropout) -> Tensor<2> {
        self.run(batch, Some(dropout))
    }

    fn run(&self, batch: Batch, mut dropout: Option<&mut Dropout>) -> Tensor<2> {
        let Batch {
            lookback,
            past,
            future,
            statics,
        } = batch;
        let [b, lags] = lookback.dims();
        // Reversible instance norm on the target channel (darts RINorm).
        let (lookback, norm) = match &self.rin {
            Some(affine) => {
                let mean = lookback.clone().mean_dim(1);
                let std = lookback.clone().var_bias(1).add_scalar(1e-5).sqrt();
                let x = (lookback - mean.clone()) / std.clone();
                let x = affine_apply(affine, x);
                (x, Some((mean, std)))
            }
            None => (lookback, None),
        };
        let past = project(&self.past_projection, past, dropout.as_deref_mut());
        let future = project(&self.future_projection, future, dropout.as_deref_mut());
        let [_, steps, future_width] = future.dims();
        let future_last = future
            .clone()
            .narrow(1, steps - 1, 1)
            .reshape([b, future_width]);
        let encoder_input = Tensor::cat(
            vec![lookback.clone(), flatten(past), flatten(future), statics],
            1,
        );
        let mut e = encoder_input;
        for block in self.encoder.iter().chain(&self.decoder) {
            e = block.forward(e, dropout.as_deref_mut());
        }
        let temporal = self
            .temporal_decoder
            .forward(Tensor::cat(vec![e, future_last], 1), dropout);
        let y = temporal + self.lookback_skip.forward(lookback);
        debug_assert_eq!(y.dims(), [b, self.quantiles]);
        let _ = (lags, self.decoder_output_dim);
        match (&self.rin, norm) {
            (Some(affine), Some((mean, std))) => affine_invert(affine, y) * std + mean,
            _ => y,
        }
    }
}

fn affine_apply(affine: &Linear, x: Tensor<2>) -> Tensor<2> {
    let gamma = affine.weight.val().reshape([1, 1]);
    let beta = affine.bias.as_ref().map(|b| b.val().reshape([1, 1]));
    let x = x * gamma;
    match beta {
        Some(beta) => x + beta,
        None => x,
    }
}

fn affine_invert(affine: &Linear, y: Tensor<2>) -> Tensor<2> {
    let gamma = affine.weight.val().reshape([1, 1]);
    let y = match affine.bias.as_ref().map(|b| b.val().reshape([1, 1])) {
        Some(beta) => y - beta,
        None => y,
    };
    y / gamma.add_scalar(1e-10)
}

/// Applies a per-time-step projection (or none) to (B, T, W).
fn project(
    block: &Option<ResidualBlock>,
    x: Tensor<3>,
    dropout: Option<&mut Dropout>,
) -> Tensor<3> {
    match block {
        Some(block) => {
            let [b, t, w] = x.dims();
            let y = block.forward(x.reshape([b * t, w]), dropout);
            let [_, out] = y.dims();
            y.reshape([b, t, out])
        }
        None => x,
    }
}

fn flatten(x: Tensor<3>) -> Tensor<2> {
    let [b, t, w] = x.dims();
    x.reshape([b, t * w])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widths original-ml.md §3.2 verified for darts with the original's settings
    /// (lags 9; 11 past and 4 calendar covariates, as its switches give) and 55 static
    /// columns.
    #[test]
    fn original_layer_shapes_match_darts() {
        let config = ModelConfig::original();
        let optional = crate::forecast::covariates::Optional::of(&config);
        let widths = Widths {
            lags: config.lags,
            past: optional.past_width(),
            future: optional.future_width(),
            statics: 55,
            quantiles: config.quantiles.len(),
        };
        let model = Tide::new(&config, widths, &Device::flex());
        let shapes: std::collections::HashMap<String, (usize, usize, usize)> =
            model.describe().into_iter().collect();
        assert_eq!(shapes["past_projection"], (11, 4, 1));
        assert!(
            !shapes.contains_key("future_projection"),
            "temporal_width_future 0 uses raw covariates"
        );
        // 9 lookback + 9·1 projected past + 10·4 raw future + 55 static = 113
        assert_eq!(shapes["encoder.0"], (113, 128, 128));
        assert_eq!(shapes["encoder.1"], (128, 128, 128));
        assert_eq!(shapes["decoder.0"], (128, 128, 128));
        assert_eq!(shapes["decoder.3"], (128, 128, 1280));
        assert_eq!(
            shapes.keys().filter(|k| k.starts_with("decoder.")).count(),
            4
        );
        assert_eq!(shapes["temporal_decoder"], (1284, 32, 5));
        assert_eq!(shapes["lookback_skip"], (9, 0, 5));
        let device = Device::flex();
        let batch = Batch {
            lookback: Tensor::zeros([3, 9], &device),
            past: Tensor::zeros([3, 9, 11], &device),
            future: Tensor::zeros([3, 10, 4], &device),
            statics: Tensor::zeros([3, 55], &device),
        };
        assert_eq!(model.forward(batch).dims(), [3, 5]);
    }

    /// Models initialised from the same seed on several threads at once all get the
    /// weights a lone one gets (burn-flex's generator is one for the whole process).
    #[test]
    fn a_seed_gives_the_same_weights_while_other_threads_draw() {
        let config = ModelConfig {
            hidden_size: 8,
            decoder_output_dim: 2,
            ..ModelConfig::default()
        };
        let widths = Widths {
            lags: 3,
            past: 4,
            future: 2,
            statics: 3,
            quantiles: 3,
        };
        let device = Device::flex();
        let layout = crate::forecast::native::Layout::new(&config, widths);
        let want = layout
            .read(&Tide::seeded(&config, widths, &device, 7))
            .unwrap();
        // Deterministically: the generator reseeded between creating a model and first
        // reading its weights (burn draws them lazily) changes nothing.
        let model = Tide::seeded(&config, widths, &device, 7);
        device.seed(99);
        assert_eq!(layout.read(&model).unwrap(), want);
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|k| {
                    let (config, device, want, layout) = (&config, &device, &want, &layout);
                    let start = &start;
                    scope.spawn(move || {
                        for round in 0..25 {
                            start.wait();
                            let seed = if k % 2 == 0 { 7 } else { 1000 + round };
                            let got = layout
                                .read(&Tide::seeded(config, widths, device, seed))
                                .unwrap();
                            if seed == 7 {
                                assert_eq!(&got, want, "thread {k}, round {round}");
                            }
                        }
                    })
                })
                .collect();
            for racer in racers {
                racer.join().unwrap();
            }
        });
    }

    #[test]
    fn optional_parts_change_the_shape_of_the_model_not_of_its_output() {
        let config = ModelConfig {
            temporal_width_future: 2,
            use_layer_norm: true,
            use_reversible_instance_norm: true,
            hidden_size: 8,
            decoder_output_dim: 4,
            ..ModelConfig::default()
        };
        let widths = Widths {
            lags: 3,
            past: 11,
            future: 4,
            statics: 2,
            quantiles: 3,
        };
        let device = Device::flex();
        let model = Tide::new(&config, widths, &device);
        let shapes: std::collections::HashMap<String, (usize, usize, usize)> =
            model.describe().into_iter().collect();
        assert_eq!(shapes["future_projection"], (4, 32, 2));
        // 3 + 3·1 + 4·2 + 2 = 16
        assert_eq!(shapes["encoder.0"], (16, 8, 8));
        let batch = Batch {
            lookback: Tensor::ones([2, 3], &device),
            past: Tensor::zeros([2, 3, 11], &device),
            future: Tensor::zeros([2, 4, 4], &device),
            statics: Tensor::zeros([2, 2], &device),
        };
        assert_eq!(model.forward(batch).dims(), [2, 3]);
    }
}
