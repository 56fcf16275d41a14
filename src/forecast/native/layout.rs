//! Where each of TiDE's weights lies in one flat `f32` buffer: the parameters in the
//! order burn visits a [`Tide`]'s (each `Linear`'s weight, input × output row-major,
//! then its bias), so the buffer is read from and written back to a burn model by
//! walking both in step.

use super::super::tide::{Tide, Widths};
use crate::config::ModelConfig;
use anyhow::{Result, bail};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use std::ops::Range;

/// A linear layer's place: weight at `weight..bias()`, bias at `bias()..end()`.
#[derive(Debug, Clone, Copy)]
pub struct Dense {
    pub weight: usize,
    pub input: usize,
    pub output: usize,
}

impl Dense {
    pub fn at(weight: usize, input: usize, output: usize) -> Self {
        Self {
            weight,
            input,
            output,
        }
    }

    pub fn bias(&self) -> usize {
        self.weight + self.input * self.output
    }

    pub fn end(&self) -> usize {
        self.bias() + self.output
    }
}

/// A residual block's three layers, in `ResidualBlock`'s field order.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    pub dense: Dense,
    pub out: Dense,
    pub skip: Dense,
}

/// The whole model's layout and the input widths it expects.
#[derive(Debug, Clone)]
pub struct Layout {
    pub widths: Widths,
    /// Width of each month's projected past covariates (the raw width without a
    /// projection).
    pub past_width: usize,
    pub past_projection: Option<Block>,
    /// The encoder's blocks, then the decoder's.
    pub blocks: Vec<Block>,
    pub temporal_decoder: Block,
    pub lookback_skip: Dense,
    /// One range per parameter tensor, in order: what the optimizer clips one by one.
    pub segments: Vec<Range<usize>>,
    /// Each parameter tensor's shape: `[input, output]` for a weight, `[output]` for a bias.
    shapes: Vec<Vec<usize>>,
}

/// Whether the hand-written step computes this architecture: the one the defaults use,
/// with or without the past projection. Layer norm, reversible instance norm and the
/// future projection train through burn's autodiff instead.
pub fn supports(config: &ModelConfig) -> bool {
    !config.use_layer_norm
        && !config.use_reversible_instance_norm
        && config.temporal_width_future == 0
}

struct Builder {
    next: usize,
    segments: Vec<Range<usize>>,
    shapes: Vec<Vec<usize>>,
}

impl Builder {
    fn dense(&mut self, input: usize, output: usize) -> Dense {
        let dense = Dense::at(self.next, input, output);
        self.segments.push(dense.weight..dense.bias());
        self.segments.push(dense.bias()..dense.end());
        self.shapes.push(vec![input, output]);
        self.shapes.push(vec![output]);
        self.next = dense.end();
        dense
    }

    fn block(&mut self, input: usize, hidden: usize, output: usize) -> Block {
        Block {
            dense: self.dense(input, hidden),
            out: self.dense(hidden, output),
            skip: self.dense(input, output),
        }
    }
}

impl Layout {
    /// The layout of `Tide::new(config, widths)`, block for block.
    pub fn new(config: &ModelConfig, widths: Widths) -> Self {
        let Widths {
            lags,
            past,
            future,
            quantiles,
            ..
        } = widths;
        let mut at = Builder {
            next: 0,
            segments: Vec::new(),
            shapes: Vec::new(),
        };
        let past_projection = (config.temporal_width_past > 0).then(|| {
            at.block(
                past,
                config.temporal_hidden_size_past,
                config.temporal_width_past,
            )
        });
        let past_width = widths.past_seen(config);
        let encoder_input = widths.encoder_input(config);
        let h = config.hidden_size;
        let mut blocks = vec![at.block(encoder_input, h, h)];
        // As `Tide::new`: the first encoder block and the last decoder block always exist.
        let middle = config.num_encoder_layers.max(1) - 1 + config.num_decoder_layers.max(1) - 1;
        for _ in 0..middle {
            blocks.push(at.block(h, h, h));
        }
        let decoded = config.decoder_output_dim * quantiles;
        blocks.push(at.block(h, h, decoded));
        let temporal_decoder =
            at.block(decoded + future, config.temporal_decoder_hidden, quantiles);
        let lookback_skip = at.dense(lags, quantiles);
        Self {
            widths,
            past_width,
            past_projection,
            blocks,
            temporal_decoder,
            lookback_skip,
            segments: at.segments,
            shapes: at.shapes,
        }
    }

    /// Number of weights.
    pub fn weights(&self) -> usize {
        self.segments.last().map_or(0, |s| s.end)
    }

    /// The encoder's input width.
    pub fn encoder_input(&self) -> usize {
        self.blocks[0].dense.input
    }

    /// `model`'s weights in this layout; an error if its parameters do not have the
    /// layout's shapes in the layout's order.
    pub fn read(&self, model: &Tide) -> Result<Vec<f32>> {
        struct Read {
            values: Vec<f32>,
            shapes: Vec<Vec<usize>>,
            error: Option<String>,
        }
        impl ModuleVisitor for Read {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let tensor = param.val();
                self.shapes.push(tensor.dims().to_vec());
                match tensor.into_data().try_into_vec::<f32>() {
                    Ok(values) => self.values.extend(values),
                    Err(e) => {
                        self.error.get_or_insert(format!("{e:?}"));
                    }
                }
            }
        }
        let mut read = Read {
            values: Vec::with_capacity(self.weights()),
            shapes: Vec::new(),
            error: None,
        };
        model.visit(&mut read);
        if let Some(e) = read.error {
            bail!("cannot read the model's weights: {e}");
        }
        if read.shapes != self.shapes {
            bail!(
                "the model's parameters ({:?}) do not match the training step's layout ({:?})",
                read.shapes,
                self.shapes
            );
        }
        Ok(read.values)
    }

    /// `template` with its weights replaced by `values` (in this layout), on the
    /// template's device.
    pub fn write(&self, template: Tide, values: &[f32]) -> Tide {
        struct Write<'a> {
            values: &'a [f32],
            segments: std::slice::Iter<'a, Range<usize>>,
        }
        impl ModuleMapper for Write<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let Some(segment) = self.segments.next() else {
                    return param;
                };
                let values = self.values[segment.clone()].to_vec();
                param.map(|tensor| {
                    let (shape, device) = (tensor.shape(), tensor.device());
                    Tensor::from_data(TensorData::new(values, shape), &device)
                })
            }
        }
        template.map(&mut Write {
            values,
            segments: self.segments.iter(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn widths() -> Widths {
        Widths {
            lags: 3,
            past: 5,
            future: 2,
            statics: 4,
            quantiles: 3,
        }
    }

    /// The layout's blocks have the model's widths, and reading then writing the weights
    /// gives back the same model.
    #[test]
    fn the_layout_is_the_models() {
        let config = ModelConfig {
            hidden_size: 8,
            decoder_output_dim: 2,
            temporal_decoder_hidden: 4,
            num_encoder_layers: 2,
            num_decoder_layers: 2,
            ..ModelConfig::default()
        };
        let device = Device::flex();
        let model = Tide::new(&config, widths(), &device);
        let layout = Layout::new(&config, widths());
        let described: Vec<(usize, usize, usize)> =
            model.describe().into_iter().map(|(_, w)| w).collect();
        let mut ours = vec![];
        for b in layout.past_projection.iter().chain(&layout.blocks) {
            ours.push((b.dense.input, b.dense.output, b.out.output));
        }
        let t = layout.temporal_decoder;
        ours.push((t.dense.input, t.dense.output, t.out.output));
        ours.push((layout.lookback_skip.input, 0, layout.lookback_skip.output));
        assert_eq!(described, ours);
        // 3 + 3·1 + 4·2 + 4 = 18
        assert_eq!(layout.encoder_input(), 18);
        let values = layout.read(&model).unwrap();
        assert_eq!(values.len(), layout.weights());
        let doubled: Vec<f32> = values.iter().map(|v| v * 2.0).collect();
        let written = layout.write(model, &doubled);
        assert_eq!(layout.read(&written).unwrap(), doubled);
    }

    #[test]
    fn a_model_of_another_shape_is_refused() {
        let config = ModelConfig {
            hidden_size: 8,
            ..ModelConfig::default()
        };
        let model = Tide::new(&config, widths(), &Device::flex());
        let other = Layout::new(
            &ModelConfig {
                hidden_size: 9,
                ..config
            },
            widths(),
        );
        let error = other.read(&model).unwrap_err().to_string();
        assert!(error.contains("do not match"), "{error}");
    }
}
