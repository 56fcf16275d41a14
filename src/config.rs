//! Settings: built-in defaults ← settings `plastinka tune` activated (stored in the
//! database) ← `plastinka.toml` ← `PLASTINKA_<SECTION>_<KEY>` environment.
//!
//! Every setting is documented, with its default, in the `plastinka.toml` at the
//! repository root; a test keeps that file and [`Config::default`] in step.

use crate::error::InputError;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub training: TrainingConfig,
    pub report: ReportConfig,
    pub health: HealthConfig,
    pub remote: RemoteConfig,
}

/// Yandex DataSphere, for `train --remote` and `plastinka jobs`. Credentials never live
/// here: they come from the environment (`YC_SERVICE_ACCOUNT_KEY_FILE`, `YC_OAUTH_TOKEN`
/// or `YC_IAM_TOKEN`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    pub project_id: String,
    pub folder_id: String,
    /// The DataSphere configuration a job runs on.
    pub instance_type: String,
    /// Days DataSphere keeps a job's files.
    pub data_ttl_days: u32,
    /// How often a waiting command asks how the job is doing.
    pub poll_interval_seconds: u64,
    /// How long `train --remote` / `jobs wait` wait before they give up waiting (the job
    /// runs on).
    pub max_wait_hours: u64,
    pub jobs_endpoint: String,
    pub operation_endpoint: String,
    pub iam_endpoint: String,
    /// Each network call's timeout (the IAM exchange, every gRPC call).
    pub timeout_seconds: u64,
    /// Each file transfer's timeout (the binary and the input go up, the model comes down).
    pub transfer_timeout_seconds: u64,
    /// Attempts of a call that fails for a passing reason (UNAVAILABLE, a 5xx, a dropped
    /// connection) before giving up.
    pub retry_attempts: u32,
    /// The binary a job runs ("" = this one).
    pub binary: String,
}

/// DataSphere configurations (`remote.instance_type`): CPU ones, and GPU ones for builds
/// made with `--features cuda`.
pub const CPU_INSTANCE_TYPES: [&str; 4] = ["c1.4", "c1.8", "c1.32", "c1.80"];
pub const GPU_INSTANCE_TYPES: [&str; 7] = ["g1.1", "g1.2", "g1.4", "g2.1", "g2.2", "g2.4", "g2.8"];

/// The vCPUs of a CPU configuration (`c1.N` has N), which a job's `training.threads = 0`
/// resolves to; None for GPU configurations, which train on their GPU.
pub fn instance_vcpus(instance_type: &str) -> Option<usize> {
    CPU_INSTANCE_TYPES
        .contains(&instance_type)
        .then(|| instance_type.strip_prefix("c1.")?.parse().ok())
        .flatten()
}

/// Whether a DataSphere configuration has a GPU (the job then trains on `cuda`).
pub fn is_gpu_instance(instance_type: &str) -> bool {
    GPU_INSTANCE_TYPES.contains(&instance_type)
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            project_id: String::new(),
            folder_id: String::new(),
            instance_type: "c1.4".to_string(),
            data_ttl_days: 14,
            poll_interval_seconds: 10,
            max_wait_hours: 12,
            jobs_endpoint: "https://datasphere.api.cloud.yandex.net:443".to_string(),
            operation_endpoint: "https://operation.api.cloud.yandex.net:443".to_string(),
            iam_endpoint: "https://iam.api.cloud.yandex.net/iam/v1/tokens".to_string(),
            timeout_seconds: 30,
            transfer_timeout_seconds: 900,
            retry_attempts: 6,
            binary: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Probability that the suggested reorder covers next month's demand.
    pub service_level: f64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self { service_level: 0.9 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// The active model is degraded when its held-out MIWS_MIC_Ratio reaches this (lower is better).
    pub metric_threshold: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            metric_threshold: 1.2,
        }
    }
}

/// TiDE architecture (original-ml.md §3.2–3.3) and the model's switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub lags: usize,
    pub quantiles: Vec<f64>,
    pub hidden_size: usize,
    pub num_encoder_layers: usize,
    pub num_decoder_layers: usize,
    pub decoder_output_dim: usize,
    pub temporal_width_past: usize,
    pub temporal_width_future: usize,
    pub temporal_hidden_size_past: usize,
    pub temporal_hidden_size_future: usize,
    pub temporal_decoder_hidden: usize,
    pub dropout: f64,
    pub use_layer_norm: bool,
    pub use_reversible_instance_norm: bool,
    /// Give the model the copies on the shelf at the start of the month it forecasts (a
    /// future covariate: the snapshot, for next month). Models stored before it existed
    /// read as false.
    pub shelf_covariate: bool,
    /// Blend the forecast with Croston SBA, TSB or IMAPA when that lowers the pinball
    /// loss of phase 1's held-out month (method and weight chosen there, stored with the
    /// model).
    pub blend_baseline: bool,
    /// Forecast whole copies: each quantile rounded down after an offset chosen on phase
    /// 1's held-out month, when that lowers its pinball (src/forecast/whole_copies.rs).
    /// Models stored before it existed read as false.
    pub whole_copies: bool,
    /// Give the model two past covariates over each product's whole history up to each
    /// month: copies sold per month in stock (its demand with sold-out days taken out)
    /// and its mean restock lot. Models stored before it existed read as false.
    pub demand_covariates: bool,
}

impl ModelConfig {
    /// Switches added after the first stored models, off for a record that predates them:
    /// a model stored without the shelf covariate never read one.
    const LATER_SWITCHES: [&'static str; 4] = [
        "shelf_covariate",
        "blend_baseline",
        "whole_copies",
        "demand_covariates",
    ];

    /// Model settings as a stored record (a model, a backtest) holds them: a switch the
    /// record does not name reads as it was before the switch existed (off), not as
    /// today's default.
    pub fn from_stored(raw: &serde_json::Value) -> serde_json::Result<Self> {
        let mut raw = raw.clone();
        if let Some(fields) = raw.as_object_mut() {
            for switch in Self::LATER_SWITCHES {
                fields
                    .entry(switch)
                    .or_insert(serde_json::Value::Bool(false));
            }
        }
        serde_json::from_value(raw)
    }
}

impl ModelConfig {
    /// The original system's model (original-ml.md §3.2), the defaults before tuning
    /// replaced them: the widths darts' TiDE was verified against, and none of the
    /// switches added since (no shelf or demand covariates, no whole copies, no blend).
    pub fn original() -> Self {
        Self {
            lags: 9,
            hidden_size: 128,
            num_encoder_layers: 2,
            num_decoder_layers: 4,
            temporal_decoder_hidden: 32,
            dropout: 0.498,
            shelf_covariate: false,
            blend_baseline: false,
            whole_copies: false,
            demand_covariates: false,
            ..Self::default()
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        // The widths, depth and dropout are `plastinka tune`'s best of 20 trials on the
        // generated 5,000 × 36 shop; with them the 3-month backtest's pinball is 1.3 %
        // lower on that shop and 1.6 % lower on a second shop never tuned on, and
        // training is faster, than with the original's (lags 9, hidden 128, 2 encoder and
        // 4 decoder layers, temporal decoder 32, dropout 0.498, batch 256; README,
        // "Default settings"). `ModelConfig::original()` keeps those.
        Self {
            lags: 10,
            quantiles: vec![0.05, 0.25, 0.5, 0.75, 0.95],
            hidden_size: 64,
            num_encoder_layers: 1,
            num_decoder_layers: 3,
            decoder_output_dim: 256,
            temporal_width_past: 1,
            temporal_width_future: 0,
            temporal_hidden_size_past: 4,
            temporal_hidden_size_future: 32,
            temporal_decoder_hidden: 16,
            dropout: 0.4587,
            use_layer_norm: false,
            use_reversible_instance_norm: false,
            shelf_covariate: true,
            // Measured by `plastinka backtest` on two generated shops: no gain out of
            // sample (README, `plastinka backtest`), so off.
            blend_baseline: false,
            // Measured by `plastinka backtest` on two generated shops (README).
            whole_copies: true,
            // On: with the tuned widths the backtests of two generated shops gained 0.9 %
            // and 1.3 % of pinball (0.1 % and 0.8 % with the original's), for 12 % more
            // training time (README, `plastinka backtest`).
            demand_covariates: true,
        }
    }
}

/// Optimisation, the dataset's weighting and the loss (original-ml.md §2.9, §3.4–3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    pub seed: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub lr_restart_steps: usize,
    pub lr_restart_mult: usize,
    pub gradient_clip_norm: f64,
    pub max_epochs: usize,
    pub patience: usize,
    pub min_delta: f64,
    pub retrain_epoch_factor: f64,
    pub ewm_span: usize,
    pub sample_weight_alpha: f64,
    pub sigma_left: f64,
    pub sigma_right: f64,
    pub min_sales_months: usize,
    pub threads: usize,
    pub device: String,
    pub swa: bool,
    pub swa_lr: f64,
    pub swa_epoch_start: f64,
    pub swa_annealing_epochs: usize,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            // Tuned with the model's widths (see `ModelConfig::default`); the original's 256.
            batch_size: 128,
            learning_rate: 1e-3,
            weight_decay: 1e-6,
            lr_restart_steps: 130,
            lr_restart_mult: 3,
            gradient_clip_norm: 0.5,
            max_epochs: 200,
            patience: 15,
            min_delta: 0.0001,
            retrain_epoch_factor: 1.1,
            ewm_span: 7,
            sample_weight_alpha: 2.556,
            sigma_left: 0.754,
            sigma_right: 1.39,
            min_sales_months: 2,
            threads: 0,
            device: "cpu".to_string(),
            swa: true,
            swa_lr: 1e-4,
            swa_epoch_start: 0.6,
            swa_annealing_epochs: 45,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// SQLite file used when neither `--db` nor `PLASTINKA_DB` is given.
    pub path: PathBuf,
    /// How long a writing command waits for another writer before it refuses.
    pub lock_timeout_seconds: u64,
    /// Largest size the database may grow to, in MB (0: no limit but the disk).
    pub max_size_mb: f64,
}

impl DatabaseConfig {
    pub fn limits(&self) -> crate::store::Limits {
        crate::store::Limits {
            wait: std::time::Duration::from_secs(self.lock_timeout_seconds),
            max_bytes: (self.max_size_mb.max(0.0) * 1e6) as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Upper edges of the price categories in rubles, intervals closed on the right;
    /// a price above the last edge falls in an open-ended top category.
    pub price_category_edges: Vec<f64>,
    /// Copies on hand at which the confidence feature saturates at 1.
    pub confidence_saturation_copies: u32,
    /// Years before this are clipped to it (recording and release years).
    pub min_year: i32,
    /// Release year gap (re-issue minus recording) used when an upload has no dated re-issue.
    pub default_release_gap_years: i32,
    /// Input files larger than this (MB) are refused before they are read.
    pub max_file_mb: u64,
    /// Address space (MB) the child process that parses a workbook may use: a damaged
    /// file whose header asks for a huge sheet is refused instead of exhausting memory.
    pub workbook_memory_mb: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("plastinka.db"),
            lock_timeout_seconds: 30,
            max_size_mb: 0.0,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            // The original's bins (0, 689.999], (689.999, 2490], … (11990, ∞).
            price_category_edges: vec![689.999, 2490.0, 3990.0, 5590.0, 7390.0, 8590.0, 11990.0],
            confidence_saturation_copies: 5,
            min_year: 1950,
            default_release_gap_years: 15,
            max_file_mb: 512,
            workbook_memory_mb: 4096,
        }
    }
}

const ENV_PREFIX: &str = "PLASTINKA_";

/// One setting's value, as a tuned setting or a trial stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::Int(i) => write!(f, "{i}"),
            SettingValue::Float(x) => write!(f, "{}", short_float(*x)),
        }
    }
}

/// A float with four significant digits (0.000123, 2.556, 0.4981).
pub fn short_float(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Settings by dotted key (`model.hidden_size`): a tuned set or a trial's.
pub type SettingValues = BTreeMap<String, SettingValue>;

/// The settings file and environment, kept apart so that the settings `tune` activated
/// can be slotted in beneath them once the database is known.
#[derive(Debug, Clone)]
pub struct Layers {
    file: Option<(PathBuf, toml::Table)>,
    env: Vec<(String, String)>,
}

impl Layers {
    /// Reads the layers. `explicit` is `--config`/`PLASTINKA_CONFIG`: that file must exist.
    /// Without it `./plastinka.toml` is read when present.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let default_path = Path::new("plastinka.toml");
        let file = match explicit {
            Some(path) => Some(read_file(path)?),
            None if default_path.is_file() => Some(read_file(default_path)?),
            None => None,
        };
        Ok(Self {
            file: file.map(|(path, table)| (path, without_defaults(table))),
            env: std::env::vars().collect(),
        })
    }

    /// The settings: defaults ← `tuned` ← file ← environment.
    pub fn resolve(&self, tuned: Option<&SettingValues>) -> Result<Config> {
        let mut merged = toml::Table::try_from(Config::default())?;
        let mut sources = vec!["built-in defaults".to_string()];
        if let Some(tuned) = tuned {
            set_values(&mut merged, tuned)?;
            sources.push("tuned settings".to_string());
        }
        if let Some((path, table)) = &self.file {
            merge(&mut merged, table.clone());
            sources.push(path.display().to_string());
        }
        apply_env(&mut merged, &self.env)?;
        sources.push("environment".to_string());
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| InputError::new(format!("settings ({}): {e}", sources.join(" + "))))?;
        config.validate()?;
        Ok(config)
    }

    /// Where `key` (`model.lags`) is set above the tuned level: the file's path or the
    /// environment variable, None when neither sets it.
    pub fn set_above_tuned(&self, key: &str) -> Option<String> {
        let (section, name) = key.split_once('.')?;
        if let Some((variable, _)) = self.env.iter().find(|(variable, _)| {
            env_setting(variable).is_some_and(|(s, k)| s == section && k == name)
        }) {
            return Some(variable.clone());
        }
        let (path, table) = self.file.as_ref()?;
        match table.get(section) {
            Some(toml::Value::Table(t)) if t.contains_key(name) => Some(path.display().to_string()),
            _ => None,
        }
    }
}

impl Config {
    /// Loads the settings without tuned ones (see [`Layers`]).
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        Layers::load(explicit)?.resolve(None)
    }

    /// These settings with `values` set (a trial's): an error names a value the
    /// settings refuse.
    pub fn with_values(&self, values: &SettingValues) -> Result<Self> {
        let mut merged = toml::Table::try_from(self)?;
        set_values(&mut merged, values)?;
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| InputError::new(format!("settings with {values:?}: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// The value of `key` (`model.lags`) in these settings.
    pub fn value(&self, key: &str) -> Option<SettingValue> {
        let table = toml::Table::try_from(self).ok()?;
        let (section, name) = key.split_once('.')?;
        match table.get(section)?.get(name)? {
            toml::Value::Boolean(b) => Some(SettingValue::Bool(*b)),
            toml::Value::Integer(i) => Some(SettingValue::Int(*i)),
            toml::Value::Float(x) => Some(SettingValue::Float(*x)),
            _ => None,
        }
    }

    #[cfg(test)]
    fn from_parts(file: Option<(PathBuf, toml::Table)>, env: &[(String, String)]) -> Result<Self> {
        Layers {
            file,
            env: env.to_vec(),
        }
        .resolve(None)
    }

    fn validate(&self) -> Result<()> {
        let problem = self
            .settings_problem()
            .map(str::to_string)
            .or_else(|| self.remote_problem())
            .or_else(|| self.data_problem());
        match problem {
            Some(problem) => Err(InputError::new(format!("setting {problem}")).into()),
            None => Ok(()),
        }
    }

    /// The first impossible value among the price categories, the model, training and
    /// the report.
    fn settings_problem(&self) -> Option<&'static str> {
        let edges = &self.data.price_category_edges;
        let model = &self.model;
        let q = &model.quantiles;
        if edges.is_empty() || edges[0] <= 0.0 || edges.windows(2).any(|w| w[0] >= w[1]) {
            Some("data.price_category_edges: must be positive and strictly increasing")
        } else if model.lags == 0 {
            Some("model.lags: must be at least 1")
        } else if q.len() < 2
            || q.iter().any(|&x| !(0.0 < x && x < 1.0))
            || q.windows(2).any(|w| w[0] >= w[1])
        {
            Some("model.quantiles: at least two, strictly increasing, inside (0, 1)")
        } else if !q.iter().any(|&x| (x - 0.5).abs() < 1e-12) {
            Some("model.quantiles: must include the median 0.5")
        } else if model.hidden_size == 0
            || model.decoder_output_dim == 0
            || model.temporal_decoder_hidden == 0
            || model.num_encoder_layers == 0
            || model.num_decoder_layers == 0
            || (model.temporal_width_past > 0 && model.temporal_hidden_size_past == 0)
            || (model.temporal_width_future > 0 && model.temporal_hidden_size_future == 0)
        {
            Some("model: widths and layer counts must be at least 1")
        } else if !(0.0..1.0).contains(&model.dropout) {
            Some("model.dropout: must be in [0, 1)")
        } else if self.training.batch_size == 0
            || self.training.max_epochs == 0
            || self.training.lr_restart_steps == 0
            || self.training.lr_restart_mult == 0
        {
            Some(
                "training: batch_size, max_epochs, lr_restart_steps and lr_restart_mult must be at least 1",
            )
        } else if !(0.0..1.0).contains(&self.training.swa_epoch_start)
            || self.training.swa_lr <= 0.0
        {
            Some("training.swa_epoch_start must be in [0, 1) and training.swa_lr positive")
        } else if !(self.report.service_level > 0.0 && self.report.service_level < 1.0) {
            Some("report.service_level: must be in (0, 1)")
        } else if !(self.training.learning_rate > 0.0 && self.training.learning_rate < 1.0) {
            Some("training.learning_rate: must be in (0, 1)")
        } else {
            None
        }
    }

    fn remote_problem(&self) -> Option<String> {
        let remote = &self.remote;
        if !CPU_INSTANCE_TYPES.contains(&remote.instance_type.as_str())
            && !GPU_INSTANCE_TYPES.contains(&remote.instance_type.as_str())
        {
            Some(format!(
                "remote.instance_type: «{}» is not a DataSphere configuration; CPU: {}; GPU (builds with --features cuda): {}",
                remote.instance_type,
                CPU_INSTANCE_TYPES.join(", "),
                GPU_INSTANCE_TYPES.join(", ")
            ))
        } else if remote.poll_interval_seconds == 0
            || remote.timeout_seconds == 0
            || remote.retry_attempts == 0
            || remote.data_ttl_days == 0
        {
            Some("remote: poll_interval_seconds, timeout_seconds, retry_attempts and data_ttl_days must be at least 1".into())
        } else if !(1..=168).contains(&remote.max_wait_hours) {
            Some("remote.max_wait_hours: between 1 and 168 (a week); `plastinka jobs wait` picks a job up later".into())
        } else {
            None
        }
    }

    fn data_problem(&self) -> Option<String> {
        let data = &self.data;
        let problem = if data.workbook_memory_mb < 64 {
            "data.workbook_memory_mb: must be at least 64"
        } else if data.max_file_mb == 0 {
            "data.max_file_mb: must be at least 1"
        } else if data.confidence_saturation_copies == 0 {
            "data.confidence_saturation_copies: must be at least 1"
        } else {
            return None;
        };
        Some(problem.into())
    }
}

fn read_file(path: &Path) -> Result<(PathBuf, toml::Table)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::in_file(path, format!("cannot read settings: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| InputError::in_file(path, format!("not valid TOML: {e}")))?;
    Ok((path.to_path_buf(), table))
}

/// The file's settings less those that restate the built-in default: a file listing every
/// setting (as the shipped `plastinka.toml` does) neither fixes them against `tune` nor
/// overrides tuned values with the defaults. Settings are the same without tuned ones.
fn without_defaults(mut file: toml::Table) -> toml::Table {
    let Ok(defaults) = toml::Table::try_from(Config::default()) else {
        return file;
    };
    for (section, value) in file.iter_mut() {
        if let (toml::Value::Table(keys), Some(toml::Value::Table(default))) =
            (value, defaults.get(section))
        {
            keys.retain(|key, v| default.get(key) != Some(v));
        }
    }
    file
}

/// Sets `section.key` values; a key that is no setting is an error (a stored set from
/// a newer plastinka, say).
fn set_values(merged: &mut toml::Table, values: &SettingValues) -> Result<()> {
    for (key, value) in values {
        let slot = key
            .split_once('.')
            .and_then(|(section, name)| match merged.get_mut(section) {
                Some(toml::Value::Table(t)) if t.contains_key(name) => Some((t, name)),
                _ => None,
            });
        let Some((table, name)) = slot else {
            return Err(InputError::new(format!("no setting «{key}»")).into());
        };
        let value = match value {
            SettingValue::Bool(b) => toml::Value::Boolean(*b),
            SettingValue::Int(i) => toml::Value::Integer(*i),
            SettingValue::Float(x) => toml::Value::Float(*x),
        };
        table.insert(name.to_string(), value);
    }
    Ok(())
}

/// Overlays `overlay` on `base`, table by table.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => merge(inner, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `PLASTINKA_DATA_MIN_YEAR=1960` sets `[data] min_year`. The value is read as a TOML
/// value (`[1, 2]`, `3.5`, `true`), falling back to a plain string.
fn apply_env(merged: &mut toml::Table, env: &[(String, String)]) -> Result<()> {
    for (name, raw) in env {
        let Some((section, key)) = env_setting(name) else {
            continue;
        };
        // Other PLASTINKA_* variables (PLASTINKA_DB, PLASTINKA_CONFIG) are not settings.
        let Some(toml::Value::Table(table)) = merged.get_mut(&section) else {
            continue;
        };
        if !table.contains_key(&key) {
            return Err(InputError::new(format!(
                "environment variable {name}: [{section}] has no setting «{key}»"
            ))
            .into());
        }
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        table.insert(key, value);
    }
    Ok(())
}

/// `PLASTINKA_DATA_MIN_YEAR` → (`data`, `min_year`); None for a variable without the
/// prefix or a section.
fn env_setting(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
    let (section, key) = rest.split_once('_')?;
    Some((section.to_string(), key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored record from before a switch existed reads it as off, whatever today's
    /// default; a switch it names keeps its value.
    #[test]
    fn stored_settings_without_a_later_switch_read_it_as_off() {
        let mut raw = serde_json::to_value(ModelConfig::default()).unwrap();
        let fields = raw.as_object_mut().unwrap();
        for switch in ModelConfig::LATER_SWITCHES {
            fields.remove(switch);
        }
        fields.insert("lags".into(), 7.into());
        let old = ModelConfig::from_stored(&raw).unwrap();
        assert_eq!(old.lags, 7);
        assert!(!old.shelf_covariate && !old.blend_baseline);
        assert!(!old.whole_copies && !old.demand_covariates);
        let new = ModelConfig::from_stored(&serde_json::to_value(ModelConfig::default()).unwrap());
        assert_eq!(new.unwrap(), ModelConfig::default());
    }

    /// Every model setting is either one of the first stored models' or a later switch
    /// `from_stored` knows: a setting added without a thought for older records fails here.
    #[test]
    fn every_later_model_setting_says_how_older_records_read_it() {
        const FIRST: [&str; 14] = [
            "lags",
            "quantiles",
            "hidden_size",
            "num_encoder_layers",
            "num_decoder_layers",
            "decoder_output_dim",
            "temporal_width_past",
            "temporal_width_future",
            "temporal_hidden_size_past",
            "temporal_hidden_size_future",
            "temporal_decoder_hidden",
            "dropout",
            "use_layer_norm",
            "use_reversible_instance_norm",
        ];
        let raw = serde_json::to_value(ModelConfig::default()).unwrap();
        let mut keys: Vec<&str> = raw
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut known: Vec<&str> = FIRST
            .into_iter()
            .chain(ModelConfig::LATER_SWITCHES)
            .collect();
        keys.sort_unstable();
        known.sort_unstable();
        assert_eq!(keys, known);
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let file: toml::Table = "[data]\nmin_year = 1940\nconfidence_saturation_copies = 3\n"
            .parse()
            .unwrap();
        let env = vec![
            ("PLASTINKA_DATA_MIN_YEAR".to_string(), "1960".to_string()),
            ("PLASTINKA_DB".to_string(), "x.db".to_string()),
        ];
        let config = Config::from_parts(Some(("f.toml".into(), file)), &env).unwrap();
        assert_eq!(config.data.min_year, 1960);
        assert_eq!(config.data.confidence_saturation_copies, 3);
        assert_eq!(config.data.default_release_gap_years, 15);
    }

    /// Tuned settings sit above the defaults and below the file and the environment,
    /// and the layers say who overrides a tuned key.
    #[test]
    fn tuned_settings_sit_between_defaults_and_the_file() {
        let file: toml::Table = "[model]\nlags = 6\n".parse().unwrap();
        let layers = Layers {
            file: Some(("f.toml".into(), file)),
            env: vec![("PLASTINKA_TRAINING_BATCH_SIZE".into(), "64".into())],
        };
        let tuned: SettingValues = [
            ("model.lags".to_string(), SettingValue::Int(12)),
            ("model.hidden_size".to_string(), SettingValue::Int(32)),
            ("training.batch_size".to_string(), SettingValue::Int(512)),
            (
                "training.learning_rate".to_string(),
                SettingValue::Float(0.003),
            ),
        ]
        .into();
        let config = layers.resolve(Some(&tuned)).unwrap();
        assert_eq!(config.model.lags, 6);
        assert_eq!(config.model.hidden_size, 32);
        assert_eq!(config.training.batch_size, 64);
        assert_eq!(config.training.learning_rate, 0.003);
        assert_eq!(
            layers.set_above_tuned("model.lags").as_deref(),
            Some("f.toml")
        );
        assert_eq!(
            layers.set_above_tuned("training.batch_size").as_deref(),
            Some("PLASTINKA_TRAINING_BATCH_SIZE")
        );
        assert_eq!(layers.set_above_tuned("model.hidden_size"), None);
        // A file value that restates the default neither fixes nor overrides.
        let restating: toml::Table = "[model]\nlags = 10\nhidden_size = 48\n".parse().unwrap();
        let restated = Layers {
            file: Some(("f.toml".into(), without_defaults(restating))),
            env: vec![],
        };
        let from_restated = restated.resolve(Some(&tuned)).unwrap();
        assert_eq!(
            (from_restated.model.lags, from_restated.model.hidden_size),
            (12, 48)
        );
        assert_eq!(restated.set_above_tuned("model.lags"), None);
        assert!(restated.set_above_tuned("model.hidden_size").is_some());
        // What is not applied is not reported as overriding either.
        let lower = Layers {
            file: None,
            env: vec![("plastinka_model_hidden_size".into(), "64".into())],
        };
        assert_eq!(lower.set_above_tuned("model.hidden_size"), None);
        assert_eq!(lower.resolve(Some(&tuned)).unwrap().model.hidden_size, 32);
        let unknown: SettingValues = [("model.nope".to_string(), SettingValue::Int(1))].into();
        assert!(layers.resolve(Some(&unknown)).is_err());
        assert_eq!(
            config.value("model.hidden_size"),
            Some(SettingValue::Int(32))
        );
        assert_eq!(short_float(0.000123456), "0.0001235");
        assert_eq!(short_float(2.556), "2.556");
        assert_eq!(short_float(128.0), "128");
    }

    #[test]
    fn cpu_configurations_name_their_vcpus() {
        assert_eq!(instance_vcpus("c1.4"), Some(4));
        assert_eq!(instance_vcpus("c1.80"), Some(80));
        assert_eq!(instance_vcpus("g1.1"), None);
        assert_eq!(instance_vcpus("c1.5"), None);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let file: toml::Table = "[data]\nmin_yaer = 1940\n".parse().unwrap();
        let err = Config::from_parts(Some(("f.toml".into(), file)), &[]).unwrap_err();
        assert!(err.to_string().contains("min_yaer"), "{err}");
        let env = vec![("PLASTINKA_DATA_NOPE".to_string(), "1".to_string())];
        assert!(Config::from_parts(None, &env).is_err());
    }

    /// A projection of width 1 through a hidden layer of width 0 would train nothing
    /// (and the CPU step cannot lay out a layer with no columns).
    #[test]
    fn a_projection_without_a_hidden_layer_is_refused() {
        let env = vec![(
            "PLASTINKA_MODEL_TEMPORAL_HIDDEN_SIZE_PAST".to_string(),
            "0".to_string(),
        )];
        let err = Config::from_parts(None, &env).unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{err}");
    }

    #[test]
    fn shipped_plastinka_toml_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plastinka.toml");
        let (_, table) = read_file(&path).unwrap();
        let shipped: Config = toml::Value::Table(table).try_into().unwrap();
        assert_eq!(shipped, Config::default());
    }
}
