//! What `tune` searches: the settings that matter, each with its range, and a seeded
//! sampler that draws trial `n` the same way every time (so a resumed study continues
//! with the trials it would have run).
//!
//! Ranges follow the original's tuning (original-ml.md §3.3, §5) with its defects fixed:
//! the learning rate starts at 1e-4 (not 1e-10, which wasted trials) and the hidden size
//! is searched too.

use crate::config::{Config, SettingValue, SettingValues};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// How one setting is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Domain {
    /// One of these integers, each equally likely.
    Ints(&'static [i64]),
    /// Uniform on [low, high].
    Uniform(f64, f64),
    /// Uniform in log space on [low, high].
    LogUniform(f64, f64),
    Bool,
}

/// One searched setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    /// `section.key` of the settings.
    pub key: &'static str,
    pub domain: Domain,
}

const fn param(key: &'static str, domain: Domain) -> Param {
    Param { key, domain }
}

/// Bumped when [`PARAMS`] changes, so a study started with other ranges is not continued.
pub const SPACE_VERSION: u32 = 1;

/// Every setting `tune` may search (the list: architecture, dropout, optimiser,
/// batch, sample weighting, quantile-loss weights and the model's switches).
pub const PARAMS: &[Param] = &[
    param(
        "model.lags",
        Domain::Ints(&[3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ),
    param("model.hidden_size", Domain::Ints(&[32, 64, 128, 256])),
    param("model.num_encoder_layers", Domain::Ints(&[1, 2, 3, 4])),
    param("model.num_decoder_layers", Domain::Ints(&[1, 2, 3, 4])),
    param(
        "model.decoder_output_dim",
        Domain::Ints(&[16, 32, 64, 128, 256]),
    ),
    param("model.temporal_width_past", Domain::Ints(&[0, 1, 2, 3, 4])),
    param(
        "model.temporal_width_future",
        Domain::Ints(&[0, 1, 2, 3, 4]),
    ),
    param(
        "model.temporal_decoder_hidden",
        Domain::Ints(&[16, 32, 64, 128]),
    ),
    param("model.dropout", Domain::Uniform(0.1, 0.7)),
    param("model.shelf_covariate", Domain::Bool),
    param("model.blend_baseline", Domain::Bool),
    param("training.learning_rate", Domain::LogUniform(1e-4, 1e-2)),
    param("training.batch_size", Domain::Ints(&[64, 128, 256, 512])),
    param("training.sample_weight_alpha", Domain::Uniform(0.0, 7.0)),
    param("training.sigma_left", Domain::Uniform(0.4, 1.0)),
    param("training.sigma_right", Domain::Uniform(0.8, 3.0)),
];

/// The settings a study searches: [`PARAMS`] less those the user fixed in the settings
/// file or environment (which would override a tuned value anyway), with the lags
/// bounded by the months the backtest leaves to train on.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    pub params: Vec<Param>,
    pub max_lags: i64,
}

impl Space {
    pub fn new(fixed: impl Fn(&str) -> bool, max_lags: usize) -> Self {
        Self {
            params: PARAMS.iter().filter(|p| !fixed(p.key)).copied().collect(),
            max_lags: max_lags as i64,
        }
    }

    /// Trial `trial`'s settings, drawn from its own seeded stream: the same seed and
    /// number give the same settings whatever ran before.
    pub fn sample(&self, seed: u64, trial: usize) -> SettingValues {
        let mut rng =
            StdRng::seed_from_u64(seed ^ (trial as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.params
            .iter()
            .map(|p| {
                let value = match p.domain {
                    Domain::Ints(choices) => {
                        let allowed: Vec<i64> = if p.key == "model.lags" {
                            choices
                                .iter()
                                .copied()
                                .filter(|&l| l <= self.max_lags)
                                .collect()
                        } else {
                            choices.to_vec()
                        };
                        let allowed = if allowed.is_empty() {
                            vec![self.max_lags.max(1)]
                        } else {
                            allowed
                        };
                        SettingValue::Int(allowed[rng.random_range(0..allowed.len())])
                    }
                    Domain::Uniform(low, high) => {
                        SettingValue::Float(round4(rng.random_range(low..=high)))
                    }
                    Domain::LogUniform(low, high) => {
                        let x = rng.random_range(low.ln()..=high.ln()).exp();
                        SettingValue::Float(round4(x))
                    }
                    Domain::Bool => SettingValue::Bool(rng.random_bool(0.5)),
                };
                (p.key.to_string(), value)
            })
            .collect()
    }

    /// The searched settings' values in `config` (the current settings, for the table).
    pub fn current(&self, config: &Config) -> SettingValues {
        self.params
            .iter()
            .filter_map(|p| Some((p.key.to_string(), config.value(p.key)?)))
            .collect()
    }
}

/// Four significant digits: a stored trial reads as the settings a person would type.
fn round4(x: f64) -> f64 {
    crate::config::short_float(x).parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_searched_key_is_a_setting_and_every_draw_is_valid() {
        let space = Space::new(|_| false, 12);
        let base = Config::default();
        for trial in 0..200 {
            let values = space.sample(7, trial);
            assert_eq!(values.len(), PARAMS.len());
            let config = base.with_values(&values).unwrap();
            assert!(config.model.lags <= 12);
            assert!((1e-4..=1e-2).contains(&config.training.learning_rate));
        }
    }

    #[test]
    fn a_trial_is_drawn_the_same_way_every_time_and_differs_from_its_neighbours() {
        let space = Space::new(|_| false, 9);
        assert_eq!(space.sample(42, 3), space.sample(42, 3));
        assert_ne!(space.sample(42, 3), space.sample(42, 4));
        assert_ne!(space.sample(42, 3), space.sample(43, 3));
        for trial in 0..50 {
            match space.sample(42, trial)["model.lags"] {
                SettingValue::Int(l) => assert!((3..=9).contains(&l)),
                ref other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn settings_the_user_fixed_are_not_searched() {
        let space = Space::new(
            |key| key == "model.lags" || key == "training.batch_size",
            12,
        );
        let values = space.sample(1, 1);
        assert!(!values.contains_key("model.lags"));
        assert!(!values.contains_key("training.batch_size"));
        assert!(values.contains_key("model.hidden_size"));
        let current = space.current(&Config::default());
        assert_eq!(current["model.hidden_size"], SettingValue::Int(128));
        assert_eq!(current.len(), PARAMS.len() - 2);
    }
}
