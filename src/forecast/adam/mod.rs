//! Adam exactly as burn's `AdamConfig` with coupled weight decay and per-tensor
//! gradient-norm clipping computes it (burn-optim 0.22: `grad_clipping`, `decay`, `adam`),
//! but in one pass per parameter over plain `f32` buffers, the parameters spread over the
//! workers. burn's takes about ten tensor operations per parameter, each a full pass and
//! an allocation: a fifth of a training step, all of it on one thread while the others
//! waited. A test checks the two give the same weights.

use anyhow::Result;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::collections::HashMap;

mod flat;
pub use flat::FlatAdam;

/// burn's defaults, kept so models train as they did with burn's optimizer.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

pub struct Adam {
    weight_decay: f32,
    clip_norm: f32,
    /// Steps taken (every parameter is updated at every step).
    time: i32,
    moments: HashMap<ParamId, Moments>,
}

#[derive(Default)]
struct Moments {
    first: Vec<f32>,
    second: Vec<f32>,
}

/// One parameter on its way through a step.
/// A parameter's weights and gradient as read from the device, updated in place (a
/// `TensorData` is not copied into a `Vec` and back: that copy was 2 % of training).
struct Slot {
    id: ParamId,
    values: TensorData,
    grad: Option<TensorData>,
    moments: Moments,
}

impl Adam {
    /// `weight_decay` is added to the gradient as `penalty · θ` (coupled); each
    /// parameter's gradient is scaled down to an L2 norm of at most `clip_norm`.
    pub fn new(weight_decay: f64, clip_norm: f64) -> Self {
        Self {
            weight_decay: weight_decay as f32,
            clip_norm: clip_norm as f32,
            time: 0,
            moments: HashMap::new(),
        }
    }

    /// `module` moved one step against `grads` at learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> Result<M> {
        self.time += 1;
        let mut gather = Gather {
            grads: &mut grads,
            moments: &mut self.moments,
            slots: Vec::new(),
            error: None,
        };
        module.visit(&mut gather);
        let (mut slots, error) = (gather.slots, gather.error);
        if let Some(e) = error {
            anyhow::bail!("cannot read a parameter for the optimizer: {e}");
        }
        let factors = Factors::at(self.time, lr as f32, self.weight_decay, self.clip_norm);
        slots
            .par_iter_mut()
            .map(|slot| -> Result<(), String> {
                if let Some(grad) = &slot.grad {
                    let grad = grad.as_slice::<f32>().map_err(|e| format!("{e:?}"))?;
                    let values = slot
                        .values
                        .as_mut_slice::<f32>()
                        .map_err(|e| format!("{e:?}"))?;
                    factors.update(values, grad, &mut slot.moments);
                }
                Ok(())
            })
            .collect::<Result<(), String>>()
            .map_err(|e| anyhow::anyhow!("cannot update a parameter: {e}"))?;
        let mut scatter = Scatter {
            slots: slots.iter_mut().map(|s| {
                let empty = TensorData::new(Vec::<f32>::new(), [0]);
                (s.id, std::mem::replace(&mut s.values, empty))
            }),
        };
        let module = module.map(&mut scatter);
        for slot in slots {
            if slot.grad.is_some() {
                self.moments.insert(slot.id, slot.moments);
            }
        }
        Ok(module)
    }
}

/// The numbers a step shares across parameters.
struct Factors {
    lr: f32,
    weight_decay: f32,
    clip_norm: f32,
    /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`, burn's combined bias correction.
    combined: f32,
    /// `ε · √(1 − β₂ᵗ)`.
    epsilon: f32,
}

impl Factors {
    fn at(time: i32, lr: f32, weight_decay: f32, clip_norm: f32) -> Self {
        let correction_2 = (1.0 - BETA_2.powi(time)).sqrt();
        Self {
            lr,
            weight_decay,
            clip_norm,
            combined: correction_2 / (1.0 - BETA_1.powi(time)),
            epsilon: EPSILON * correction_2,
        }
    }

    fn update(&self, values: &mut [f32], grad: &[f32], moments: &mut Moments) {
        if moments.first.len() != values.len() {
            moments.first = vec![0.0; values.len()];
            moments.second = vec![0.0; values.len()];
        }
        let clip = self.clip(sum_of_squares(grad).sqrt());
        self.apply(values, grad, &mut moments.first, &mut moments.second, clip);
    }

    /// The factor that scales a gradient of L2 norm `norm` down to `clip_norm`.
    fn clip(&self, norm: f32) -> f32 {
        (self.clip_norm / (norm + f32::MIN_POSITIVE)).min(1.0)
    }

    fn apply(
        &self,
        values: &mut [f32],
        grad: &[f32],
        first: &mut [f32],
        second: &mut [f32],
        clip: f32,
    ) {
        let n = values
            .len()
            .min(grad.len())
            .min(first.len())
            .min(second.len());
        let (first, second) = (&mut first[..n], &mut second[..n]);
        let (values, grad) = (&mut values[..n], &grad[..n]);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { self.apply_avx2(values, grad, first, second, clip) };
            return;
        }
        self.apply_lanes(values, grad, first, second, clip);
    }

    /// [`Factors::apply_lanes`] compiled for 8-wide vectors: the build targets baseline
    /// x86-64 (4-wide), and this loop's square root and division were a tenth of a
    /// training step. The same operations in the same order, so the same weights.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn apply_avx2(
        &self,
        values: &mut [f32],
        grad: &[f32],
        first: &mut [f32],
        second: &mut [f32],
        clip: f32,
    ) {
        self.apply_lanes(values, grad, first, second, clip);
    }

    #[inline(always)]
    fn apply_lanes(
        &self,
        values: &mut [f32],
        grad: &[f32],
        first: &mut [f32],
        second: &mut [f32],
        clip: f32,
    ) {
        // Indexing equal-length slices lets the compiler drop bounds checks and vectorise.
        let n = values.len();
        let (grad, first, second) = (&grad[..n], &mut first[..n], &mut second[..n]);
        for i in 0..n {
            let g = grad[i] * clip + self.weight_decay * values[i];
            first[i] = BETA_1 * first[i] + (1.0 - BETA_1) * g;
            second[i] = BETA_2 * second[i] + (1.0 - BETA_2) * g * g;
            values[i] -= self.lr * (first[i] * self.combined / (second[i].sqrt() + self.epsilon));
        }
    }
}

/// `Σ x²` in 16 independent lanes, so the additions do not wait on one another.
fn sum_of_squares(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v * v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

struct Gather<'a> {
    grads: &'a mut GradientsParams,
    moments: &'a mut HashMap<ParamId, Moments>,
    slots: Vec<Slot>,
    error: Option<String>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param.val().into_data();
        let grad = self.grads.remove::<D>(param.id).map(|g| g.into_data());
        // Checked here so that a weight that is not f32 is an error, not a skipped step.
        if let Some(Err(e)) = std::iter::once(&values)
            .chain(&grad)
            .map(|d| d.as_slice::<f32>().map(|_| ()))
            .find(Result::is_err)
        {
            self.error.get_or_insert(format!("{e:?}"));
            return;
        }
        self.slots.push(Slot {
            id: param.id,
            values,
            grad,
            moments: self.moments.remove(&param.id).unwrap_or_default(),
        });
    }
}

struct Scatter<I> {
    slots: I,
}

impl<I: Iterator<Item = (ParamId, TensorData)>> ModuleMapper for Scatter<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.slots.next() {
            Some((id, values)) if id == param.id => param.map(|tensor| {
                let device = tensor.device();
                Tensor::from_data(values, &device).require_grad()
            }),
            // Visiting and mapping walk the same parameters in the same order; should
            // they not, the parameter keeps its weights rather than take another's.
            _ => param,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::forecast::tide::{Batch, Tide, Widths};
    use burn::grad_clipping::GradientClippingConfig;
    use burn::optim::{AdamConfig, decay::WeightDecayConfig};
    use burn::tensor::Device;

    /// One parameter, by hand: θ = 1, g = 3 (norm 3, clipped to 1.5: g = 1.5), weight
    /// decay 0.1 → g = 1.6; m = 0.16, v = 0.00256; with t = 1 the corrections give
    /// m̂ = 1.6, √v̂ = 1.6, so θ ← 1 − 0.1 · 1.6 / (1.6 + 1e-5) = 0.9000010.
    #[test]
    fn one_step_by_hand() {
        let factors = Factors::at(1, 0.1, 0.1, 1.5);
        let mut values = vec![1.0f32];
        let mut moments = Moments::default();
        factors.update(&mut values, &[3.0], &mut moments);
        assert!((moments.first[0] - 0.16).abs() < 1e-7);
        assert!((moments.second[0] - 0.00256).abs() < 1e-7); // 1 − 0.999 in f32
        let want = 1.0 - 0.1 * 1.6 / (1.6 + 1e-5);
        assert!((values[0] as f64 - want).abs() < 1e-6, "{}", values[0]);
    }

    fn tiny() -> (ModelConfig, Widths) {
        let config = ModelConfig {
            hidden_size: 8,
            decoder_output_dim: 4,
            temporal_decoder_hidden: 4,
            ..ModelConfig::default()
        };
        let widths = Widths {
            lags: 3,
            past: 11,
            future: 4,
            statics: 2,
            quantiles: 3,
        };
        (config, widths)
    }

    fn batch(device: &Device, shift: f32) -> Batch {
        let ramp = |n: usize| {
            let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + shift).sin()).collect();
            Tensor::<1>::from_floats(v.as_slice(), device)
        };
        Batch {
            lookback: ramp(6).reshape([2, 3]),
            past: ramp(66).reshape([2, 3, 11]),
            future: ramp(32).reshape([2, 4, 4]),
            statics: ramp(4).reshape([2, 2]),
        }
    }

    fn weights(model: &Tide) -> Vec<f32> {
        struct All(Vec<f32>);
        impl ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                self.0
                    .extend(p.val().into_data().try_into_vec::<f32>().unwrap());
            }
        }
        let mut all = All(Vec::new());
        model.visit(&mut all);
        all.0
    }

    /// The 8-wide loop rounds exactly as the portable one (no fused multiply-adds), so a
    /// model does not depend on the CPU's vector width.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_wide_loop_gives_the_same_weights() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let factors = Factors::at(3, 1e-2, 1e-3, 0.05);
        let wave = |shift: f32| -> Vec<f32> {
            (0..1001)
                .map(|i| ((i as f32) * 0.37 + shift).sin() * 0.3)
                .collect()
        };
        let (grad, mut v1, mut f1, mut s1) = (wave(0.1), wave(0.2), wave(0.3), wave(0.4));
        for s in &mut s1 {
            *s = s.abs();
        }
        let (mut v2, mut f2, mut s2) = (v1.clone(), f1.clone(), s1.clone());
        factors.apply_lanes(&mut v1, &grad, &mut f1, &mut s1, 0.7);
        // SAFETY: AVX2 checked above.
        unsafe { factors.apply_avx2(&mut v2, &grad, &mut f2, &mut s2, 0.7) };
        assert_eq!((v1, f1, s1), (v2, f2, s2));
    }

    /// Five steps of this optimizer and of burn's, from the same weights on the same
    /// batches, end at the same weights.
    #[test]
    fn steps_like_burns_adam() {
        let device = Device::flex().autodiff();
        let (config, widths) = tiny();
        let start = Tide::seeded(&config, widths, &device, 3);
        let initial = weights(&start);
        let grads_of = |model: &Tide, k: usize| {
            let loss = model
                .forward(batch(&device, k as f32))
                .powf_scalar(2.0)
                .sum();
            GradientsParams::from_grads(loss.backward(), model)
        };
        let mut ours = start.clone();
        let mut theirs = start;
        let mut adam = Adam::new(1e-3, 0.05);
        let mut burns = AdamConfig::new()
            .with_weight_decay(Some(WeightDecayConfig::new(1e-3)))
            .with_grad_clipping(Some(GradientClippingConfig::Norm(0.05)))
            .init();
        for k in 0..5 {
            let g = grads_of(&ours, k);
            ours = adam.step(1e-2, ours, g).unwrap();
            let g = grads_of(&theirs, k);
            theirs = burns.step(1e-2, theirs, g);
        }
        let (a, b) = (weights(&ours), weights(&theirs));
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&initial).any(|(x, y)| x != y), "nothing moved");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}
