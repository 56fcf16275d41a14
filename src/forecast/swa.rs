//! Stochastic weight averaging for the retraining phase (original-ml.md §3.5): from
//! `swa_epoch_start × epochs` on, the learning rate anneals (cosine, per epoch) to
//! `swa_lr` over `swa_annealing_epochs`, the weights at the end of each of those epochs
//! are averaged, and the average is the final model.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Running mean of a module's float parameters, in the module's visiting order.
#[derive(Default)]
pub struct Averager {
    means: Vec<Vec<f32>>,
    count: usize,
}

struct Collect<'a>(&'a mut Vec<Vec<f32>>, &'a mut Option<String>);

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match param.val().into_data().try_into_vec::<f32>() {
            Ok(values) => self.0.push(values),
            Err(e) => {
                self.1.get_or_insert_with(|| format!("{e:?}"));
                self.0.push(Vec::new());
            }
        }
    }
}

struct Replace<'a> {
    values: &'a [Vec<f32>],
    next: usize,
    /// The first parameter whose shape does not match the averaged one.
    mismatch: Option<String>,
}

impl ModuleMapper for Replace<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.next;
        self.next += 1;
        let Some(values) = self.values.get(index) else {
            self.mismatch
                .get_or_insert_with(|| format!("parameter {index} has no average"));
            return param;
        };
        let dims = param.val().dims();
        if values.len() != dims.iter().product::<usize>() {
            self.mismatch.get_or_insert_with(|| {
                format!(
                    "parameter {index} has shape {dims:?} but its average has {} values",
                    values.len()
                )
            });
            return param;
        }
        param.map(|tensor| {
            let device = tensor.device();
            Tensor::<1>::from_floats(values.as_slice(), &device).reshape(dims)
        })
    }
}

impl Averager {
    pub fn count(&self) -> usize {
        self.count
    }

    /// Adds a snapshot of `model`'s weights to the mean.
    pub fn add<M: Module>(&mut self, model: &M) -> anyhow::Result<()> {
        let mut current = Vec::new();
        let mut failed = None;
        model.visit(&mut Collect(&mut current, &mut failed));
        if let Some(e) = failed {
            anyhow::bail!("stochastic weight averaging cannot read a parameter: {e}");
        }
        self.count += 1;
        if self.count == 1 {
            self.means = current;
            return Ok(());
        }
        anyhow::ensure!(
            current.len() == self.means.len()
                && current
                    .iter()
                    .zip(&self.means)
                    .all(|(a, b)| a.len() == b.len()),
            "stochastic weight averaging: the model's parameters changed shape between epochs"
        );
        let n = self.count as f32;
        for (mean, values) in self.means.iter_mut().zip(current) {
            for (m, v) in mean.iter_mut().zip(values) {
                *m += (v - *m) / n;
            }
        }
        Ok(())
    }

    /// `model` with the averaged weights; an error if they do not fit it.
    pub fn apply<M: Module>(&self, model: M) -> anyhow::Result<M> {
        let mut replace = Replace {
            values: &self.means,
            next: 0,
            mismatch: None,
        };
        let model = model.map(&mut replace);
        if let Some(problem) = replace.mismatch {
            anyhow::bail!("stochastic weight averaging does not fit the model: {problem}");
        }
        anyhow::ensure!(
            replace.next == self.means.len(),
            "stochastic weight averaging: {} averaged parameters for a model with {}",
            self.means.len(),
            replace.next
        );
        Ok(model)
    }
}

/// SWALR's cosine anneal: in the k-th SWA epoch (from 1) the rate has moved
/// `(1 − cos(π·min(k, A)/A)) / 2` of the way from `from` to `to`.
pub fn learning_rate(from: f64, to: f64, k: usize, annealing_epochs: usize) -> f64 {
    let a = annealing_epochs.max(1) as f64;
    let alpha = (1.0 - (std::f64::consts::PI * (k as f64).min(a) / a).cos()) / 2.0;
    (1.0 - alpha) * from + alpha * to
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    fn weights(linear: &Linear) -> Vec<f32> {
        linear
            .weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    }

    /// A layer of constant weights: drawing random ones would take numbers from burn's
    /// process-wide generator while other tests create seeded models.
    fn fixed(input: usize, output: usize, value: f64, device: &Device) -> Linear {
        LinearConfig::new(input, output)
            .with_initializer(burn::nn::Initializer::Constant { value })
            .init(device)
    }

    #[test]
    fn averages_parameters() {
        let device = Device::flex();
        let a: Linear = fixed(2, 2, 0.5, &device);
        let b: Linear = fixed(2, 2, -0.25, &device);
        let mut avg = Averager::default();
        avg.add(&a).unwrap();
        avg.add(&b).unwrap();
        assert_eq!(avg.count(), 2);
        let mean = weights(&avg.apply(a.clone()).unwrap());
        for ((m, x), y) in mean.iter().zip(weights(&a)).zip(weights(&b)) {
            assert!((m - (x + y) / 2.0).abs() < 1e-6);
        }
    }

    #[test]
    fn an_average_that_does_not_fit_is_an_error() {
        let device = Device::flex();
        let small: Linear = fixed(2, 2, 0.5, &device);
        let big: Linear = fixed(3, 2, 0.5, &device);
        let mut avg = Averager::default();
        avg.add(&small).unwrap();
        let err = avg.apply(big).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn anneals_to_the_swa_rate() {
        assert!((learning_rate(1.0, 0.0, 0, 10) - 1.0).abs() < 1e-12);
        assert!((learning_rate(1.0, 0.0, 5, 10) - 0.5).abs() < 1e-12);
        assert!(learning_rate(1.0, 0.0, 10, 10).abs() < 1e-12);
        assert!(learning_rate(1.0, 0.0, 50, 10).abs() < 1e-12);
    }
}
