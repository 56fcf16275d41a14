//! Using a trained model: next month's forecast, and scoring it on the held-out month
//! beside the baselines.

use super::baselines::Baseline;
use super::dataset::{Features, Sample};
use super::metrics::{Evaluation, Outcome, evaluate};
use super::tide::Tide;
use crate::config::ModelConfig;
use crate::forecast::history::History;
use anyhow::Result;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineEvaluation {
    pub name: String,
    pub evaluation: Evaluation,
}

/// Quantile forecasts in units, sorted (never crossing) and clipped at 0. Samples go
/// through the model in chunks, so memory stays bounded for any number of products.
pub fn predict(
    features: &Features,
    samples: &[Sample],
    model: &Tide,
    lags: usize,
    device: &Device,
) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(1024) {
        let batch = features.batch(chunk, lags, device);
        let y = model.forward(batch.inputs);
        let [b, q] = y.dims();
        let values = y
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("cannot read the forecasts from the device: {e:?}"))?;
        anyhow::ensure!(
            values.len() == b * q,
            "the model returned {} values for {b} products × {q} quantiles",
            values.len()
        );
        for row in 0..b {
            let mut scaled: Vec<f64> = values[row * q..(row + 1) * q]
                .iter()
                .map(|&v| v as f64)
                .collect();
            scaled.sort_by(|a, b| a.total_cmp(b));
            out.push(
                scaled
                    .into_iter()
                    .map(|z| features.scaler.inverse(z).max(0.0))
                    .collect(),
            );
        }
    }
    Ok(out)
}

pub fn score_holdout(
    history: &History,
    features: &Features,
    samples: &[Sample],
    model: &Tide,
    config: &ModelConfig,
    lags: usize,
    device: &Device,
) -> Result<(Evaluation, Vec<BaselineEvaluation>, Vec<Vec<f64>>)> {
    let actual = |s: &Sample| history.units[history.at(s.product as usize, s.target as usize)];
    let forecasts = predict(features, samples, model, lags, device)?;
    let outcomes: Vec<Outcome> = samples
        .iter()
        .zip(&forecasts)
        .map(|(s, quantiles)| Outcome {
            quantiles: quantiles.clone(),
            actual: actual(s),
        })
        .collect();
    let model_eval = evaluate(&outcomes, &config.quantiles, &features.scaler);
    let baselines = Baseline::ALL
        .iter()
        .map(|b| {
            let outcomes: Vec<Outcome> = samples
                .iter()
                .map(|s| Outcome {
                    quantiles: b.quantiles(
                        history,
                        s.product as usize,
                        s.target as usize,
                        &config.quantiles,
                    ),
                    actual: actual(s),
                })
                .collect();
            BaselineEvaluation {
                name: b.name().to_string(),
                evaluation: evaluate(&outcomes, &config.quantiles, &features.scaler),
            }
        })
        .collect();
    Ok((model_eval, baselines, forecasts))
}
