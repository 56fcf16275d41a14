//! Weighted pinball loss (original-ml.md §3.4).

use burn::tensor::{Device, Tensor};

/// Asymmetric Gaussian quantile weights peaking at the median:
/// `q ≤ 0.5: exp(−(q−0.5)² / (2(0.5σL)²))`, `q > 0.5: 0.5 + 0.5·exp(−(q−0.5)² / (2(0.5σR)²))`.
pub fn quantile_weights(quantiles: &[f64], sigma_left: f64, sigma_right: f64) -> Vec<f64> {
    quantiles
        .iter()
        .map(|&q| {
            let d2 = (q - 0.5) * (q - 0.5);
            if q <= 0.5 {
                (-d2 / (2.0 * (0.5 * sigma_left).powi(2))).exp()
            } else {
                0.5 + 0.5 * (-d2 / (2.0 * (0.5 * sigma_right).powi(2))).exp()
            }
        })
        .collect()
}

/// Pinball loss of one quantile forecast: `max(q·e, (q−1)·e)`, `e = y − ŷ`.
pub fn pinball(q: f64, y: f64, forecast: f64) -> f64 {
    let e = y - forecast;
    (q * e).max((q - 1.0) * e)
}

/// The training loss on tensors: `mean_b( w_b · Σ_q λ_q ρ_q(y_b − ŷ_bq) )`.
pub struct PinballLoss {
    quantiles: Tensor<2>,
    weights: Tensor<2>,
}

impl PinballLoss {
    pub fn new(quantiles: &[f64], weights: &[f64], device: &Device) -> Self {
        let row = |v: &[f64]| {
            let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            Tensor::<1>::from_floats(data.as_slice(), device).reshape([1, v.len()])
        };
        Self {
            quantiles: row(quantiles),
            weights: row(weights),
        }
    }

    /// `forecast` (B, Q), `target` (B, 1), `sample_weight` (B, 1) → scalar.
    pub fn forward(
        &self,
        forecast: Tensor<2>,
        target: Tensor<2>,
        sample_weight: Tensor<2>,
    ) -> Tensor<1> {
        let [rows, _] = forecast.dims();
        self.share(forecast, target, sample_weight, rows)
    }

    /// This part's share of the loss of a batch of `batch` samples: its weighted sum
    /// over `batch`, so the shares of a split batch add up to the batch's loss.
    pub fn share(
        &self,
        forecast: Tensor<2>,
        target: Tensor<2>,
        sample_weight: Tensor<2>,
        batch: usize,
    ) -> Tensor<1> {
        let e = target - forecast;
        let q = self.quantiles.clone();
        let rho = (e.clone() * q.clone()).max_pair(e * q.sub_scalar(1.0));
        let per_sample = (rho * self.weights.clone()).sum_dim(1);
        (per_sample * sample_weight)
            .sum()
            .div_scalar(batch.max(1) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_weights_match_the_original() {
        let w = quantile_weights(&[0.05, 0.25, 0.5, 0.75, 0.95], 0.754, 1.39);
        let expected = [0.490475, 0.802623, 1.0, 0.968676, 0.905448];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 5e-7, "{got} vs {want}");
        }
        // σL = 0.4 lets the lowest quantile nearly vanish, as the spec notes.
        assert!((quantile_weights(&[0.05], 0.4, 1.0)[0] - 0.080).abs() < 5e-4);
    }

    #[test]
    fn pinball_by_hand() {
        // Under-forecast by 2 at q = 0.9: 0.9·2 = 1.8; over-forecast by 2: 0.1·2 = 0.2.
        assert!((pinball(0.9, 5.0, 3.0) - 1.8).abs() < 1e-12);
        assert!((pinball(0.9, 3.0, 5.0) - 0.2).abs() < 1e-12);
        assert_eq!(pinball(0.5, 4.0, 4.0), 0.0);
    }

    #[test]
    fn tensor_loss_matches_the_hand_computed_value() {
        let device = Device::flex();
        let quantiles = [0.1, 0.5, 0.9];
        let weights = [0.5, 1.0, 2.0];
        let loss = PinballLoss::new(&quantiles, &weights, &device);
        // Sample 1: y = 1, ŷ = (0, 1, 3) → ρ = (0.1, 0, 0.2) → 0.05 + 0 + 0.4 = 0.45, weight 2.
        // Sample 2: y = 0, ŷ = (1, 1, 1) → ρ = (0.9, 0.5, 0.1) → 0.45 + 0.5 + 0.2 = 1.15, weight 1.
        let forecast =
            Tensor::<1>::from_floats([0.0f32, 1.0, 3.0, 1.0, 1.0, 1.0].as_slice(), &device)
                .reshape([2, 3]);
        let target = Tensor::<1>::from_floats([1.0f32, 0.0].as_slice(), &device).reshape([2, 1]);
        let w = Tensor::<1>::from_floats([2.0f32, 1.0].as_slice(), &device).reshape([2, 1]);
        let value: Vec<f32> = loss
            .forward(forecast, target, w)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!((value[0] - (0.9 + 1.15) / 2.0).abs() < 1e-6, "{value:?}");
        // Each sample alone, as its share of the batch of two: 0.9 / 2 and 1.15 / 2.
        let share = |forecast: [f32; 3], target: f32, weight: f32| -> f32 {
            let f = Tensor::<1>::from_floats(forecast.as_slice(), &device).reshape([1, 3]);
            let t = Tensor::<1>::from_floats([target].as_slice(), &device).reshape([1, 1]);
            let w = Tensor::<1>::from_floats([weight].as_slice(), &device).reshape([1, 1]);
            loss.share(f, t, w, 2)
                .into_data()
                .try_into_vec::<f32>()
                .unwrap()[0]
        };
        assert!((share([0.0, 1.0, 3.0], 1.0, 2.0) - 0.45).abs() < 1e-6);
        assert!((share([1.0, 1.0, 1.0], 0.0, 1.0) - 0.575).abs() < 1e-6);
    }
}
