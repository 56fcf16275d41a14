//! A rolling-origin backtest: for each of the last N complete months, train on the
//! months strictly before it exactly as `train` does (same settings, same seed), forecast
//! it, and score the model and every baseline against what sold, on the same products
//! (every product the model forecast). One month is noise; several, pooled, are a
//! yardstick.

use super::baselines::Baseline;
use super::history::History;
use super::metrics::{Evaluation, Outcome, evaluate};
use super::train::{self, EpochReport};
use crate::config::{ModelConfig, TrainingConfig};
use crate::error::InputError;
use crate::month::Month;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Bumped whenever [`BacktestRecord`]'s stored shape changes.
pub const FORMAT_VERSION: u32 = 1;

/// One method's scores: `model` or a baseline's name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MethodScore {
    pub method: String,
    pub evaluation: Evaluation,
}

/// The scores of one origin month.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MonthScores {
    pub month: Month,
    /// The model first, then the baselines in [`Baseline::ALL`]'s order.
    pub scores: Vec<MethodScore>,
}

/// A finished backtest: per month, and pooled over all of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Backtest {
    pub months: Vec<MonthScores>,
    pub pooled: Vec<MethodScore>,
}

impl Backtest {
    /// The baseline with the lowest pooled pinball.
    pub fn best_baseline(&self) -> Option<&MethodScore> {
        self.pooled
            .iter()
            .filter(|s| s.method != "model")
            .min_by(|a, b| a.evaluation.pinball.total_cmp(&b.evaluation.pinball))
    }

    pub fn model(&self) -> Option<&MethodScore> {
        self.pooled.iter().find(|s| s.method == "model")
    }
}

/// A stored backtest: what was run, on which data and settings, and its scores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BacktestRecord {
    pub format_version: u32,
    pub id: String,
    pub created_at: String,
    pub model: ModelConfig,
    pub training: TrainingConfig,
    pub result: Backtest,
}

/// One product's forecasts for one backtest month by every method, beside what sold.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductOutcomes {
    pub month: Month,
    pub product_id: i64,
    /// Copies on the shelf at the start of the month (the end of the month before).
    pub shelf: f64,
    pub actual: f64,
    /// Per method (the model first, then [`Baseline::ALL`]), the quantiles.
    pub quantiles: Vec<Vec<f64>>,
}

/// The method names in the order of [`ProductOutcomes::quantiles`].
pub fn methods() -> impl Iterator<Item = &'static str> {
    (0..=Baseline::ALL.len()).map(method_name)
}

/// Where a backtest is: origin `origin` of `origins` (its month), and the epoch inside.
pub struct Progress {
    pub origin: usize,
    pub origins: usize,
    pub month: Month,
    pub epoch: EpochReport,
}

/// Backtests the last `months` complete months of `history`; with `keep`, every
/// product's forecasts go there too.
pub fn run(
    history: &History,
    months: usize,
    model: &ModelConfig,
    training: &TrainingConfig,
    progress: &mut (dyn FnMut(Progress) + Send),
    mut keep: Option<&mut Vec<ProductOutcomes>>,
) -> Result<Backtest> {
    let history = history.complete_months();
    let t = history.months.len();
    let minimum = train::minimum_months(model);
    let origins = origins(&history, minimum, months);
    if months == 0 || origins.len() < months {
        return Err(InputError::new(format!(
            "a backtest of {months} month(s) needs {} complete stored months ({minimum} to train on before the first, months the shop was closed not counted); the store has {t}",
            minimum + months
        ))
        .into());
    }
    let levels = &model.quantiles;
    let mut per_month = Vec::new();
    let mut pooled: Vec<Vec<Outcome>> = vec![Vec::new(); Baseline::ALL.len() + 1];
    let mut scaler = None;
    for (k, &origin) in origins.iter().enumerate() {
        let month = history.months[origin];
        let past = history.first_months(origin);
        let mut report = |epoch: EpochReport| {
            progress(Progress {
                origin: k + 1,
                origins: months,
                month,
                epoch,
            })
        };
        let trained = train::train(&past, model, training, &mut report)?;
        let (products, outcomes) = origin_outcomes(&history, origin, &trained.forecasts, levels);
        if let Some(keep) = keep.as_deref_mut() {
            keep.extend(product_outcomes(month, &products, &outcomes));
        }
        let scores: Vec<MethodScore> = outcomes
            .iter()
            .enumerate()
            .map(|(m, o)| MethodScore {
                method: method_name(m).to_string(),
                evaluation: evaluate(o, levels, &trained.scaler),
            })
            .collect();
        for (all, o) in pooled.iter_mut().zip(outcomes) {
            all.extend(o);
        }
        per_month.push(MonthScores { month, scores });
        scaler = Some(trained.scaler);
    }
    // MIWS and MIC read scaled values: pooled ones use the newest origin's scaler.
    let scaler = scaler.ok_or_else(|| anyhow::anyhow!("no backtest month was run"))?;
    let pooled = pooled
        .iter()
        .enumerate()
        .map(|(m, o)| MethodScore {
            method: method_name(m).to_string(),
            evaluation: evaluate(o, levels, &scaler),
        })
        .collect();
    Ok(Backtest {
        months: per_month,
        pooled,
    })
}

/// The origin months (indices into the complete months of `history`): the newest
/// `months` months the shop was open with at least `minimum` months before them. A month
/// stored closed has no sales to score.
fn origins(history: &History, minimum: usize, months: usize) -> Vec<usize> {
    let mut origins: Vec<usize> = (minimum..history.months.len())
        .rev()
        .filter(|&m| !history.closed[m])
        .take(months)
        .collect();
    origins.reverse();
    origins
}

/// The most lags a backtest of `months` months can train with on `history` (0: none).
pub fn max_lags(history: &History, months: usize) -> usize {
    let history = history.complete_months();
    (1..history.months.len())
        .rev()
        .find(|&lags| {
            let model = ModelConfig {
                lags,
                ..ModelConfig::default()
            };
            origins(&history, train::minimum_months(&model), months).len() >= months
        })
        .unwrap_or(0)
}

/// `model` for 0, then the baselines.
fn method_name(index: usize) -> &'static str {
    match index {
        0 => "model",
        i => Baseline::ALL[i - 1].name(),
    }
}

/// For each method (the model, then every baseline), the forecasts of month `origin`
/// beside what sold, over every product the model forecast — the products the accuracy
/// report scores, so a one-month backtest agrees with it. Also the products, in order,
/// with the copies on their shelf at the start of the month.
fn origin_outcomes(
    history: &History,
    origin: usize,
    forecasts: &[super::stored::ProductForecast],
    levels: &[f64],
) -> (Vec<(i64, f64)>, Vec<Vec<Outcome>>) {
    let index: HashMap<i64, usize> = history
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();
    let mut outcomes = vec![Vec::new(); Baseline::ALL.len() + 1];
    let mut products = Vec::new();
    for forecast in forecasts {
        let Some(&i) = index.get(&forecast.product_id) else {
            continue;
        };
        let shelf = origin
            .checked_sub(1)
            .map_or(0.0, |before| history.stock_end[history.at(i, before)]);
        products.push((forecast.product_id, shelf));
        // A product without a row that month sold nothing (it was not on the shelf), as
        // in the accuracy report.
        let actual = history.units[history.at(i, origin)];
        outcomes[0].push(Outcome {
            quantiles: forecast.quantiles.iter().map(|&(_, units)| units).collect(),
            actual,
        });
        for (b, baseline) in Baseline::ALL.iter().enumerate() {
            outcomes[b + 1].push(Outcome {
                quantiles: baseline.quantiles(history, i, origin, levels),
                actual,
            });
        }
    }
    (products, outcomes)
}

/// `outcomes` (per method, per product of `products`) turned around: per product, per
/// method.
fn product_outcomes<'a>(
    month: Month,
    products: &'a [(i64, f64)],
    outcomes: &'a [Vec<Outcome>],
) -> impl Iterator<Item = ProductOutcomes> + 'a {
    products
        .iter()
        .enumerate()
        .map(move |(k, &(product_id, shelf))| ProductOutcomes {
            month,
            product_id,
            shelf,
            actual: outcomes[0][k].actual,
            quantiles: outcomes.iter().map(|o| o[k].quantiles.clone()).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::train::tests::{tiny_config, tiny_history};

    /// Origins are the newest months the shop was open, each scored with every method,
    /// and the pooled products are the sum of the months'.
    #[test]
    fn a_closed_month_is_never_an_origin() {
        let (model, training) = tiny_config();
        let training = TrainingConfig {
            max_epochs: 2,
            ..training
        };
        let mut history = tiny_history();
        let t = history.months.len();
        history.closed[t - 2] = true;
        let mut kept = Vec::new();
        let result = run(&history, 2, &model, &training, &mut |_| {}, Some(&mut kept)).unwrap();
        let months: Vec<Month> = result.months.iter().map(|m| m.month).collect();
        assert_eq!(months, vec![history.months[t - 3], history.months[t - 1]]);
        for month in &result.months {
            assert_eq!(month.scores.len(), Baseline::ALL.len() + 1);
        }
        let products = |scores: &[MethodScore]| scores[0].evaluation.products;
        assert_eq!(
            products(&result.pooled),
            result
                .months
                .iter()
                .map(|m| products(&m.scores))
                .sum::<usize>()
        );
        // Every product's forecasts are kept, and they are what was scored.
        assert_eq!(kept.len(), products(&result.pooled));
        for month in &result.months {
            let here: Vec<&ProductOutcomes> =
                kept.iter().filter(|p| p.month == month.month).collect();
            for (k, method) in methods().enumerate() {
                assert_eq!(month.scores[k].method, method);
                let losses: Vec<f64> = here
                    .iter()
                    .flat_map(|p| {
                        model
                            .quantiles
                            .iter()
                            .zip(&p.quantiles[k])
                            .map(|(&l, &q)| crate::forecast::loss::pinball(l, p.actual, q))
                    })
                    .collect();
                let pinball = losses.iter().sum::<f64>() / losses.len() as f64;
                let scored = month.scores[k].evaluation.pinball;
                assert!(
                    (pinball - scored).abs() < 1e-12,
                    "{method}: {pinball} vs {scored}"
                );
            }
        }
    }

    /// 16 months: a 2-month backtest needs lags + 2 months before its first origin
    /// (month 14), so 12 lags; a closed month among the newest pushes the origins back.
    #[test]
    fn the_most_lags_a_backtest_leaves() {
        let mut history = tiny_history();
        assert_eq!(history.months.len(), 16);
        assert_eq!(max_lags(&history, 2), 12);
        assert_eq!(max_lags(&history, 1), 13);
        assert_eq!(max_lags(&history, 14), 0);
        history.closed[15] = true;
        assert_eq!(max_lags(&history, 2), 11);
    }
}
