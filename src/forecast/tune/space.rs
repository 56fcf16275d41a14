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
pub const SPACE_VERSION: u32 = 3;

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
    param("model.whole_copies", Domain::Bool),
    param("model.demand_covariates", Domain::Bool),
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

    /// Trial `trial`'s settings, drawn from its own seeded stream: the same seed, number
    /// and start give the same settings whatever ran before. Odd trials explore the whole
    /// space; even ones are neighbours of `start` (the settings the study starts from —
    /// the defaults are an earlier study's best, a strong point to search around).
    pub fn sample(&self, seed: u64, trial: usize, start: &SettingValues) -> SettingValues {
        let mut rng =
            StdRng::seed_from_u64(seed ^ (trial as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        if trial % 2 == 1 || start.is_empty() {
            return self
                .params
                .iter()
                .map(|p| (p.key.to_string(), self.draw(p, &mut rng)))
                .collect();
        }
        self.neighbour(start, &mut rng)
    }

    /// Any value of `p`'s range.
    fn draw(&self, p: &Param, rng: &mut StdRng) -> SettingValue {
        match p.domain {
            Domain::Ints(choices) => {
                let allowed = self.allowed(p, choices);
                SettingValue::Int(allowed[rng.random_range(0..allowed.len())])
            }
            Domain::Uniform(low, high) => SettingValue::Float(round4(rng.random_range(low..=high))),
            Domain::LogUniform(low, high) => {
                SettingValue::Float(round4(rng.random_range(low.ln()..=high.ln()).exp()))
            }
            Domain::Bool => SettingValue::Bool(rng.random_bool(0.5)),
        }
    }

    /// `start` with each setting moved one step with probability 1/3 (at least one
    /// moved): the next choice up or down, a float by up to a fifth of its range (a
    /// log-range one by up to ×/÷2), a switch flipped.
    fn neighbour(&self, start: &SettingValues, rng: &mut StdRng) -> SettingValues {
        let forced = rng.random_range(0..self.params.len().max(1));
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let from = start.get(p.key);
                let moved = i == forced || rng.random_bool(1.0 / 3.0);
                let value = match (from, moved) {
                    (None, _) => self.draw(p, rng),
                    (Some(v), false) => self.snap(p, v),
                    (Some(v), true) => self.step(p, v, rng),
                };
                (p.key.to_string(), value)
            })
            .collect()
    }

    fn step(&self, p: &Param, value: &SettingValue, rng: &mut StdRng) -> SettingValue {
        match (p.domain, value) {
            (Domain::Ints(choices), SettingValue::Int(v)) => {
                let allowed = self.allowed(p, choices);
                // The nearest allowed value, then one step either way.
                let at = (0..allowed.len())
                    .min_by_key(|&k| (allowed[k] - v).abs())
                    .unwrap_or(0);
                // At an end of the range the only step is inward.
                let down = at.checked_sub(1);
                let up = (at + 1 < allowed.len()).then_some(at + 1);
                let to = match (down, up) {
                    (Some(d), Some(u)) => match rng.random_bool(0.5) {
                        true => d,
                        false => u,
                    },
                    (Some(d), None) => d,
                    (None, Some(u)) => u,
                    (None, None) => at,
                };
                SettingValue::Int(allowed[to])
            }
            (Domain::Uniform(low, high), SettingValue::Float(x)) => {
                let reach = (high - low) / 5.0;
                let moved = (x + rng.random_range(-reach..=reach)).clamp(low, high);
                SettingValue::Float(round4(moved))
            }
            (Domain::LogUniform(low, high), SettingValue::Float(x)) => {
                let factor = rng.random_range(-std::f64::consts::LN_2..=std::f64::consts::LN_2);
                SettingValue::Float(round4((x * factor.exp()).clamp(low, high)))
            }
            (Domain::Bool, SettingValue::Bool(b)) => SettingValue::Bool(!b),
            // A start value of another type than the range (a hand-written setting): draw.
            _ => self.draw(p, rng),
        }
    }

    /// `value` inside what this study allows: an integer at its nearest allowed choice
    /// (the starting lags may be more than the months leave), a float within its range.
    fn snap(&self, p: &Param, value: &SettingValue) -> SettingValue {
        match (p.domain, value) {
            (Domain::Ints(choices), SettingValue::Int(v)) => {
                let allowed = self.allowed(p, choices);
                let nearest = allowed.iter().min_by_key(|&&a| (a - v).abs());
                SettingValue::Int(nearest.copied().unwrap_or(*v))
            }
            (
                Domain::Uniform(low, high) | Domain::LogUniform(low, high),
                SettingValue::Float(x),
            ) => SettingValue::Float(x.clamp(low, high)),
            _ => value.clone(),
        }
    }

    /// The choices of an integer setting this study allows (lags bounded by the months).
    fn allowed(&self, p: &Param, choices: &[i64]) -> Vec<i64> {
        let allowed: Vec<i64> = match p.key {
            "model.lags" => choices
                .iter()
                .copied()
                .filter(|&l| l <= self.max_lags)
                .collect(),
            _ => choices.to_vec(),
        };
        match allowed.is_empty() {
            true => vec![self.max_lags.max(1)],
            false => allowed,
        }
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
        let start = space.current(&base);
        for trial in 0..200 {
            let values = space.sample(7, trial, &start);
            assert_eq!(values.len(), PARAMS.len());
            let config = base.with_values(&values).unwrap();
            assert!(config.model.lags <= 12);
            assert!((1e-4..=1e-2).contains(&config.training.learning_rate));
        }
    }

    #[test]
    fn a_trial_is_drawn_the_same_way_every_time_and_differs_from_its_neighbours() {
        let space = Space::new(|_| false, 9);
        let start = space.current(&Config::default());
        let sample = |seed, trial| space.sample(seed, trial, &start);
        assert_eq!(sample(42, 3), sample(42, 3));
        assert_ne!(sample(42, 3), sample(42, 4));
        assert_ne!(sample(42, 3), sample(43, 3));
        for trial in 0..50 {
            match sample(42, trial)["model.lags"] {
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
        let values = space.sample(1, 1, &SettingValues::new());
        assert!(!values.contains_key("model.lags"));
        assert!(!values.contains_key("training.batch_size"));
        assert!(values.contains_key("model.hidden_size"));
        let current = space.current(&Config::default());
        assert_eq!(current["model.hidden_size"], SettingValue::Int(64));
        assert_eq!(current.len(), PARAMS.len() - 2);
    }

    /// Starting lags the months cannot afford are brought within them, moved or not.
    #[test]
    fn neighbours_keep_the_lags_the_months_allow() {
        let space = Space::new(|_| false, 6);
        let start = space.current(&Config::default());
        for trial in (2..60).step_by(2) {
            match space.sample(3, trial, &start)["model.lags"] {
                SettingValue::Int(l) => assert!((5..=6).contains(&l), "{l}"),
                ref other => panic!("{other:?}"),
            }
        }
    }

    /// Even trials stay near the start: a few settings moved one step, the rest kept.
    #[test]
    fn even_trials_are_neighbours_of_the_start() {
        let space = Space::new(|_| false, 12);
        let start = space.current(&Config::default());
        for trial in (2..100).step_by(2) {
            let values = space.sample(5, trial, &start);
            let moved: Vec<&String> = values.keys().filter(|k| values[*k] != start[*k]).collect();
            assert!(!moved.is_empty() && moved.len() <= 12, "{moved:?}");
            if let SettingValue::Int(lags) = values["model.lags"] {
                assert!([9, 10, 11].contains(&lags), "{lags}");
            }
            if let SettingValue::Float(rate) = values["training.learning_rate"] {
                assert!((0.0005..=0.002).contains(&rate), "{rate}");
            }
            if let SettingValue::Int(hidden) = values["model.hidden_size"] {
                assert!([32, 64, 128].contains(&hidden), "{hidden}");
            }
        }
        // On average about a third of the settings move.
        let moved: usize = (2..200)
            .step_by(2)
            .map(|t| {
                let v = space.sample(5, t, &start);
                v.keys().filter(|k| v[*k] != start[*k]).count()
            })
            .sum();
        let mean = moved as f64 / 99.0;
        assert!((4.0..8.0).contains(&mean), "{mean}");
    }
}
