//! A blend of the model with a classical method for intermittent demand, when that
//! helps: each quantile `(1 − w)·model + w·method` (both sorted, so the blend is too).
//! The method and `w` are chosen on phase 1's held-out month — which the model never
//! trained on — and used for the forecast; `plastinka backtest` measures whether the
//! choice pays off on months after it. `w = 0` (no blend) is always a candidate.

use super::baselines::Baseline;
use super::dataset::Sample;
use super::history::History;
use super::loss::pinball;
use serde::{Deserialize, Serialize};

/// The methods a blend may use (their Poisson quantiles).
const METHODS: [Baseline; 3] = [Baseline::CrostonSba, Baseline::Tsb, Baseline::Imapa];
/// The weights tried for the method.
const WEIGHTS: [f64; 6] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    /// The baseline's name ([`Baseline::name`]).
    pub method: String,
    /// Its weight in each quantile.
    pub weight: f64,
}

impl Blend {
    /// The blend with the lowest mean pinball on the held-out `samples` (the model's
    /// quantiles for them in `model`), if any beats the model alone.
    pub fn choose(
        history: &History,
        samples: &[Sample],
        model: &[Vec<f64>],
        levels: &[f64],
    ) -> Option<Blend> {
        let actual = |s: &Sample| history.units[history.at(s.product as usize, s.target as usize)];
        let loss = |forecasts: &mut dyn Iterator<Item = Vec<f64>>| -> f64 {
            let mut total = 0.0;
            for (q, s) in forecasts.zip(samples) {
                let y = actual(s);
                total += levels
                    .iter()
                    .zip(&q)
                    .map(|(&l, &f)| pinball(l, y, f))
                    .sum::<f64>();
            }
            total
        };
        let alone = loss(&mut model.iter().cloned());
        let mut best: Option<(f64, Blend)> = None;
        for method in METHODS {
            let theirs: Vec<Vec<f64>> = samples
                .iter()
                .map(|s| method.quantiles(history, s.product as usize, s.target as usize, levels))
                .collect();
            for weight in WEIGHTS {
                let blend = Blend {
                    method: method.name().to_string(),
                    weight,
                };
                let value = loss(&mut model.iter().zip(&theirs).map(|(m, b)| blend.mix(m, b)));
                if value < alone && best.as_ref().is_none_or(|(v, _)| value < *v) {
                    best = Some((value, blend));
                }
            }
        }
        best.map(|(_, blend)| blend)
    }

    /// `(1 − w)·model + w·method`, quantile by quantile.
    pub fn mix(&self, model: &[f64], method: &[f64]) -> Vec<f64> {
        model
            .iter()
            .zip(method)
            .map(|(&m, &b)| (1.0 - self.weight) * m + self.weight * b)
            .collect()
    }

    /// The model's quantiles for product `i` in month `target`, blended.
    pub fn apply(
        &self,
        history: &History,
        i: usize,
        target: usize,
        model: &[f64],
        levels: &[f64],
    ) -> Vec<f64> {
        match Baseline::ALL.iter().find(|b| b.name() == self.method) {
            Some(method) => self.mix(model, &method.quantiles(history, i, target, levels)),
            None => model.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_by_hand() {
        let blend = Blend {
            method: "imapa".into(),
            weight: 0.25,
        };
        assert_eq!(blend.mix(&[0.0, 4.0], &[4.0, 8.0]), vec![1.0, 5.0]);
    }

    /// A method that is exactly right on the held-out month takes the largest weight
    /// tried; a model that is exactly right takes none.
    #[test]
    fn the_held_out_month_chooses_the_weight() {
        let months = 14;
        let mut h = History {
            months: vec![crate::month::Month::new(2025, 1).unwrap(); months],
            closed: vec![false; months],
            present: vec![true; months],
            ..Default::default()
        };
        // Sells 2 every month: every method forecasts 2 for month 13.
        h.units = vec![2.0; months];
        let levels = [0.5];
        let samples = [Sample {
            product: 0,
            target: 13,
            weight: 1.0,
        }];
        let wrong = Blend::choose(&h, &samples, &[vec![10.0]], &levels).unwrap();
        assert_eq!(wrong.weight, 0.6);
        assert_eq!(Blend::choose(&h, &samples, &[vec![2.0]], &levels), None);
    }
}
