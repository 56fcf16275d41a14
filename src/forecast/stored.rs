//! A trained model as it is kept: everything needed to forecast again without training —
//! settings, input widths, static columns, scaler and weights — with a format version and
//! a checksum of the weights. `store::models` reads and writes it; remote training
//! returns it in this same form.

use super::covariates;
use super::dataset::Features;
use super::history::History;
use super::scaler::LogMinMax;
use super::tide::{Tide, Widths};
use super::train::Trained;
use crate::config::{ModelConfig, TrainingConfig};
use crate::error::InputError;
use crate::month::Month;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Bumped whenever a stored model's meaning changes (inputs, layout of the weights).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    pub format_version: u32,
    pub id: String,
    pub created_at: String,
    pub first_month: Month,
    /// The newest month trained on.
    pub last_month: Month,
    /// The month the training run forecast.
    pub forecast_month: Month,
    pub model: ModelConfig,
    pub training: TrainingConfig,
    pub widths: Widths,
    pub static_columns: Vec<String>,
    pub scaler: LogMinMax,
    /// burnpack bytes.
    #[serde(skip)]
    pub weights: Vec<u8>,
    pub weights_sha256: String,
    pub metrics: serde_json::Value,
    pub training_seconds: f64,
    /// The DataSphere job that trained it, for a remote run.
    pub remote_job_id: Option<String>,
    /// The blend with a classical method its forecasts use, if any.
    #[serde(default)]
    pub blend: Option<super::blend::Blend>,
    /// The whole-copy rounding its forecasts use, if any.
    #[serde(default)]
    pub whole_copies: Option<super::whole_copies::WholeCopies>,
}

/// One product's forecast: (quantile level, units), ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductForecast {
    pub product_id: i64,
    pub quantiles: Vec<(f64, f64)>,
}

/// Every product's stored forecast from the model's quantiles for `samples` (next
/// month's windows), blended with a classical method and in whole copies when the model
/// chose that — in one place, so a forecast made again from the stored weights is the
/// training run's.
pub fn product_forecasts(
    history: &History,
    samples: &[super::dataset::Sample],
    quantiles: Vec<Vec<f64>>,
    adjust: Adjustments<'_>,
    levels: &[f64],
) -> Vec<ProductForecast> {
    samples
        .iter()
        .zip(quantiles)
        .map(|(s, q)| {
            let (i, target) = (s.product as usize, s.target as usize);
            let q = adjust.apply(history, i, target, q, levels);
            ProductForecast {
                product_id: history.products[i].id,
                quantiles: levels
                    .iter()
                    .copied()
                    .zip(q.into_iter().map(round_units))
                    .collect(),
            }
        })
        .collect()
}

/// What a model chose on phase 1's held-out month to do to its quantiles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Adjustments<'a> {
    pub blend: Option<&'a super::blend::Blend>,
    pub whole_copies: Option<super::whole_copies::WholeCopies>,
}

impl Adjustments<'_> {
    /// The blend first, then whole copies (the offset was chosen on blended quantiles).
    pub fn apply(
        &self,
        history: &History,
        i: usize,
        target: usize,
        quantiles: Vec<f64>,
        levels: &[f64],
    ) -> Vec<f64> {
        let q = match self.blend {
            Some(blend) => blend.apply(history, i, target, &quantiles, levels),
            None => quantiles,
        };
        match self.whole_copies {
            Some(whole) => whole.apply(&q),
            None => q,
        }
    }
}

/// Forecasts are stored in units rounded to hundredths, in one place, so a forecast made
/// again from the stored weights is stored exactly as the training run stored it.
pub fn round_units(units: f64) -> f64 {
    (units * 100.0).round() / 100.0
}

impl ModelRecord {
    /// The record of a finished training run.
    pub fn from_trained(
        id: String,
        trained: &Trained,
        history: &History,
        model: &ModelConfig,
        training: &TrainingConfig,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            id,
            created_at: crate::clock::timestamp(),
            first_month: history.months[0],
            last_month: trained.last_month,
            forecast_month: trained.forecast_month,
            model: model.clone(),
            training: TrainingConfig {
                threads: trained.threads,
                ..training.clone()
            },
            widths: trained.widths,
            static_columns: trained.static_columns.clone(),
            scaler: trained.scaler,
            weights_sha256: crate::digest::sha256_hex(&trained.weights),
            weights: trained.weights.clone(),
            metrics: trained.metrics(),
            training_seconds: trained.seconds,
            remote_job_id: None,
            blend: trained.blend.clone(),
            whole_copies: trained.whole_copies,
        }
    }

    /// Refuses weights whose bytes are not the ones stored (a damaged database).
    pub fn verify(&self) -> Result<()> {
        if self.format_version != FORMAT_VERSION {
            return Err(InputError::new(format!(
                "model {} has format version {}, this plastinka reads version {FORMAT_VERSION}; train a new model",
                self.id, self.format_version
            ))
            .into());
        }
        let actual = crate::digest::sha256_hex(&self.weights);
        if actual != self.weights_sha256 {
            anyhow::bail!(
                "model {}: the stored weights are damaged (sha256 {actual}, stored {}); activate another model or train again",
                self.id,
                self.weights_sha256
            );
        }
        Ok(())
    }

    /// The network with the stored weights, checked.
    pub fn load(&self, device: &Device) -> Result<Tide> {
        self.verify()?;
        let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
            self.weights.clone(),
        ))
        .map_err(|e| anyhow::anyhow!("model {}: the weights cannot be read: {e:?}", self.id))?;
        Tide::new(&self.model, self.widths, device)
            .try_load_record(record)
            .map_err(|e| {
                anyhow::anyhow!(
                    "model {}: the weights do not fit its settings: {e:?}",
                    self.id
                )
            })
    }

    /// Whether the weights match their checksum and load into the network its settings
    /// describe (on the CPU, whatever device it trained on).
    pub fn check_loads(&self) -> Result<()> {
        self.load(&Device::flex()).map(|_| ())
    }

    /// The model's forecast for the month after the newest complete month of `history`.
    /// Refused, with the reason, when the model no longer fits the data.
    pub fn forecast(
        &self,
        history: &History,
        device: &Device,
    ) -> Result<(Month, Vec<ProductForecast>)> {
        let history = history.complete_months();
        let Some(newest) = history.newest_complete() else {
            return Err(
                InputError::new("no complete month stored: nothing to forecast from").into(),
            );
        };
        let lags = self.model.lags;
        let problems = self.misfits(&history);
        if !problems.is_empty() {
            return Err(InputError::new(format!(
                "model {} does not fit the stored data: {}; train a new model",
                self.id,
                problems.join("; ")
            ))
            .into());
        }
        let network = self.load(device)?;
        let features = Features::build_with_columns(
            &history,
            self.scaler,
            self.training.ewm_span,
            &self.static_columns,
            covariates::Optional::of(&self.model),
        );
        let samples = features.next_month_samples();
        let quantiles = super::predict::predict(&features, &samples, &network, lags, device)
            .context("forecasting")?;
        let forecasts = product_forecasts(
            &history,
            &samples,
            quantiles,
            Adjustments {
                blend: self.blend.as_ref(),
                whole_copies: self.whole_copies,
            },
            &self.model.quantiles,
        );
        Ok((newest.next(), forecasts))
    }

    /// Why the model cannot read this history, if it cannot.
    fn misfits(&self, history: &History) -> Vec<String> {
        let mut problems = Vec::new();
        if history.months.len() < self.model.lags {
            problems.push(format!(
                "it reads {} months of history and the store has {} complete",
                self.model.lags,
                history.months.len()
            ));
        }
        let optional = covariates::Optional::of(&self.model);
        let expected = (optional.past_width(), optional.future_width());
        if (self.widths.past, self.widths.future) != expected {
            problems.push(format!(
                "it was built for {} past and {} calendar covariates, this plastinka makes {} and {}",
                self.widths.past, self.widths.future, expected.0, expected.1
            ));
        }
        // Relabelled attributes (new price edges, say) match none of the classes it knows:
        // its static columns would silently stay empty.
        let current = covariates::static_columns(history);
        for attribute in covariates::STATIC_ATTRIBUTES {
            let of = |columns: &[String]| -> Vec<String> {
                columns
                    .iter()
                    .filter(|c| covariates::static_attribute(c) == Some(attribute))
                    .cloned()
                    .collect()
            };
            let (now, known) = (of(&current), of(&self.static_columns));
            if !now.is_empty() && !known.is_empty() && !now.iter().any(|c| known.contains(c)) {
                problems.push(format!(
                    "none of the stored products' {attribute} classes ({}) is one it was trained on ({}) — the [data] settings changed since",
                    now.join(", "),
                    known.join(", ")
                ));
            }
        }
        if self.widths.statics != self.static_columns.len()
            || self.widths.quantiles != self.model.quantiles.len()
            || self.widths.lags != self.model.lags
        {
            problems.push("its stored widths disagree with its settings".to_string());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::train::tests::{tiny_config, tiny_history};

    /// The stored weights are the trained weights, bit for bit: loading them and writing
    /// them again gives the same bytes (burn keeps the parameter ids), so a forecast from
    /// them is the training run's own, before any rounding.
    #[test]
    fn stored_weights_load_back_bit_for_bit() {
        let (model, training) = tiny_config();
        let training = TrainingConfig {
            max_epochs: 3,
            ..training
        };
        let history = tiny_history();
        let trained =
            crate::forecast::train::train(&history, &model, &training, &mut |_| {}).unwrap();
        let record = ModelRecord::from_trained("t".into(), &trained, &history, &model, &training);
        let device = Device::flex();
        let loaded = record.load(&device).unwrap();
        let again = loaded.into_record().into_bytes().unwrap().to_vec();
        assert_eq!(again, record.weights);
        let (month, forecasts) = record.forecast(&history, &device).unwrap();
        assert_eq!(month, trained.forecast_month);
        assert_eq!(forecasts, trained.forecasts);
        // A stored blend is applied when forecasting again: half-way to IMAPA's quantiles.
        let blend = crate::forecast::blend::Blend {
            method: "imapa".into(),
            weight: 0.5,
        };
        let blended = ModelRecord {
            blend: Some(blend.clone()),
            whole_copies: None,
            ..record.clone()
        };
        let (_, mixed) = blended.forecast(&history, &device).unwrap();
        let alone = ModelRecord {
            blend: None,
            whole_copies: None,
            ..record.clone()
        };
        let (_, alone) = alone.forecast(&history, &device).unwrap();
        let i = 0;
        let t = history.months.len();
        let imapa =
            crate::forecast::baselines::Baseline::Imapa.quantiles(&history, i, t, &model.quantiles);
        let model_q: Vec<f64> = alone[i].quantiles.iter().map(|&(_, u)| u).collect();
        for (k, &(_, units)) in mixed[i].quantiles.iter().enumerate() {
            let expected = round_units(0.5 * model_q[k] + 0.5 * imapa[k]);
            assert!((units - expected).abs() <= 0.011, "{units} vs {expected}");
        }
        // Stored whole copies are applied after the blend: ⌊blended + 0.5⌋.
        let whole = ModelRecord {
            whole_copies: Some(crate::forecast::whole_copies::WholeCopies { offset: 0.5 }),
            ..blended
        };
        let (_, rounded) = whole.forecast(&history, &device).unwrap();
        for (r, m) in rounded.iter().zip(&mixed) {
            for (&(_, whole), &(_, units)) in r.quantiles.iter().zip(&m.quantiles) {
                assert_eq!(whole.fract(), 0.0);
                assert!((whole - units).abs() <= 0.5 + 0.011, "{whole} vs {units}");
            }
        }
        // One flipped byte is found before anything is loaded.
        let mut damaged = record.clone();
        damaged.weights[100] ^= 1;
        assert!(
            damaged
                .load(&device)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }
}
