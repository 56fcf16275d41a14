//! `plastinka tune`: a seeded random search over [`space::PARAMS`], pruned by successive
//! halving on the epoch budget, scored by the pooled pinball of a rolling backtest (the
//! yardstick `plastinka backtest` shows a user).
//!
//! A study is everything one `tune` invocation continues: the same data, backtest months,
//! current settings, search space and seed. Each evaluation (a trial at an epoch budget)
//! is a [`TrialRecord`] stored the moment it finishes, so an interrupted study resumes
//! where it stopped. Trial 0 is the current settings, scored at the full budget beside
//! the candidates.

pub mod schedule;
pub mod space;

use super::backtest;
use super::history::History;
use crate::config::{Config, SettingValues};
use crate::month::Month;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// Bumped whenever [`StudyRecord`], [`TrialRecord`] or [`TunedSettings`] change shape.
pub const FORMAT_VERSION: u32 = 1;

/// The trial number of the current settings (the reference every candidate is
/// compared with).
pub const CURRENT: usize = 0;

/// What a study searches and on what: stored once, when its first trial is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    pub format_version: u32,
    pub id: String,
    pub created_at: String,
    /// The stored months' version the study scores on (an upload starts a new study).
    pub data_version: String,
    /// Backtest months per evaluation.
    pub months: usize,
    pub seed: u64,
    pub min_epochs: usize,
    pub max_epochs: usize,
    /// Every evaluation trains on this many threads, so trials compare like with like.
    pub threads: usize,
    /// The settings each trial's values are set on (the current ones).
    pub base: Config,
    /// The searched settings (`section.key`).
    pub searched: Vec<String>,
    /// Settings left out because the settings file or environment fixes them.
    pub fixed: Vec<String>,
}

impl StudyRecord {
    /// A study's identity: what its scores depend on. Trials and time budget are not part
    /// of it (re-running with more trials continues the study).
    pub fn identity(
        data_version: &str,
        months: usize,
        min_epochs: usize,
        base: &Config,
        searched: &[String],
    ) -> String {
        let key = serde_json::json!({
            // Another plastinka may train differently: its scores are not comparable.
            "plastinka": env!("CARGO_PKG_VERSION"),
            "space": space::SPACE_VERSION,
            "data": data_version,
            "months": months,
            "min_epochs": min_epochs,
            "model": base.model,
            "training": base.training,
            "searched": searched,
        });
        let hash = crate::digest::sha256_hex(key.to_string().as_bytes());
        format!("study-{}", &hash[..12])
    }
}

/// How one evaluation scored: the model's pooled backtest figures and the best
/// classical baseline's pinball on the same products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialScore {
    pub months: Vec<Month>,
    pub products: usize,
    pub pinball: f64,
    pub wape: Option<f64>,
    pub coverage: f64,
    pub coverage_inner: Option<f64>,
    pub best_baseline: String,
    pub best_baseline_pinball: f64,
}

/// A scored evaluation, or why its settings could not be trained on this data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Scored(TrialScore),
    Failed(String),
}

/// One trial evaluated at one epoch budget (a rung of the halving).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub format_version: u32,
    pub study_id: String,
    pub trial: usize,
    pub epochs: usize,
    /// The searched settings' values (the current ones for trial 0).
    pub values: SettingValues,
    pub outcome: Outcome,
    pub seconds: f64,
    pub threads: usize,
    pub created_at: String,
}

impl TrialRecord {
    pub fn pinball(&self) -> Option<f64> {
        match &self.outcome {
            Outcome::Scored(s) => Some(s.pinball),
            Outcome::Failed(_) => None,
        }
    }

    pub fn score(&self) -> Option<&TrialScore> {
        match &self.outcome {
            Outcome::Scored(s) => Some(s),
            Outcome::Failed(_) => None,
        }
    }
}

/// The settings `tune` activated, and where they came from: `train`, `forecast` and
/// `backtest` use them beneath the settings file and environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunedSettings {
    pub format_version: u32,
    pub activated_at: String,
    pub study_id: String,
    pub trial: usize,
    pub values: SettingValues,
    /// The trial's full-budget score and the current settings' one on the same months,
    /// when the study has them.
    pub score: Option<TrialScore>,
    pub reference: Option<TrialScore>,
}

impl TunedSettings {
    /// `study-… trial 7, activated 2026-11-28T…`.
    pub fn provenance(&self) -> String {
        format!(
            "{} trial {}, activated {}",
            self.study_id, self.trial, self.activated_at
        )
    }
}

/// Scores `values` set on `base`: a backtest of `months` months, training at most
/// `epochs` epochs per phase on `threads` threads.
pub fn evaluate(
    history: &History,
    months: usize,
    base: &Config,
    values: &SettingValues,
    epochs: usize,
    threads: usize,
) -> Result<TrialScore> {
    let mut config = base.with_values(values)?;
    config.training.max_epochs = epochs;
    config.training.threads = threads;
    let result = backtest::run(
        history,
        months,
        &config.model,
        &config.training,
        &mut |_| {},
        None,
    )?;
    let model = result
        .model()
        .ok_or_else(|| anyhow::anyhow!("a backtest without the model's scores"))?;
    let best = result
        .best_baseline()
        .ok_or_else(|| anyhow::anyhow!("a backtest without baselines"))?;
    let e = &model.evaluation;
    Ok(TrialScore {
        months: result.months.iter().map(|m| m.month).collect(),
        products: e.products,
        pinball: e.pinball,
        wape: e.wape,
        coverage: e.coverage,
        coverage_inner: e.coverage_inner,
        best_baseline: best.method.clone(),
        best_baseline_pinball: best.evaluation.pinball,
    })
}
