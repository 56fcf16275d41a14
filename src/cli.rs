//! The command tree.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "plastinka",
    version,
    about = "Forecast next month's sales of every record a vinyl shop stocks"
)]
pub struct Cli {
    /// SQLite file holding all state (created on first use) [default: database.path of the settings]
    #[arg(long, global = true, env = "PLASTINKA_DB")]
    pub db: Option<PathBuf>,
    /// Settings file [default: ./plastinka.toml when present, else built-in defaults]
    #[arg(long, global = true, env = "PLASTINKA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print a machine-readable JSON document instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// Act as if today were DATE: dates after it are refused, freshness is judged by it
    /// (for tests and back-fills) [default: today]
    #[arg(long, global = true, value_name = "DATE", env = "PLASTINKA_AS_OF", value_parser = parse_date)]
    pub as_of: Option<chrono::NaiveDate>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a month (or several) of sales exports and the stock snapshot taken after them
    Upload(UploadArgs),
    /// Train the forecasting model on the stored months and forecast the next month
    Train(TrainArgs),
    /// Search model and training settings by backtest, and make the best the ones `train` uses
    Tune(TuneArgs),
    /// Rolling-origin backtest of the model and every baseline over the last complete months
    Backtest(BacktestArgs),
    /// Per-product forecasts and business figures, or the accuracy of a past forecast
    Report(ReportArgs),
    /// Is the data complete and the model still good? Exit 0 healthy, 1 degraded, 2 unhealthy
    Health(HealthArgs),
    /// List trained models, or make an earlier one active again
    Models(ModelsArgs),
    /// Forecast the month after the newest complete month with a stored model, without training
    Forecast(ForecastArgs),
    /// Remote training jobs on DataSphere: list, show, wait, logs, cancel
    Jobs(JobsArgs),
    /// Write a consistent copy of the database to PATH (safe while other commands run)
    Backup(BackupArgs),
    /// The whole monthly cycle on the bundled sample data, in a fresh database
    Quickstart(QuickstartArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Keep the current active model; store this one for comparison only
    #[arg(long)]
    pub no_activate: bool,
    /// Train on Yandex DataSphere (the [remote] settings) instead of this machine
    #[arg(long)]
    pub remote: bool,
    /// With --remote: submit the job and return at once, printing its id
    #[arg(long, requires = "remote")]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// How many of the newest complete months to forecast, each from the months before it
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=24))]
    pub months: u16,
    /// Also write every product's forecast by every method, per month, beside what sold,
    /// as CSV (to see where the model wins and loses)
    #[arg(long, value_name = "FILE.csv")]
    pub forecasts: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TuneArgs {
    #[command(subcommand)]
    pub command: Option<TuneCommand>,
    /// Candidate settings to try besides the current ones; re-running with more continues
    /// the study
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub trials: u16,
    /// Start no evaluation after this long (90s, 30m, 2h); running ones finish and are
    /// stored, and the next `tune` continues the study
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub time_budget: Option<std::time::Duration>,
    /// Backtest months each evaluation is scored on (the newest complete ones)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=12))]
    pub months: u16,
    /// Epochs of the first halving rung; each next rung has 3× as many, the last
    /// training.max_epochs
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub min_epochs: u16,
    /// Afterwards, make the best trial's settings the ones `train` uses, if they beat the
    /// current ones at the full budget
    #[arg(long)]
    pub activate: bool,
}

#[derive(Debug, Subcommand)]
pub enum TuneCommand {
    /// Make a trial's settings the ones `train`, `forecast` and `backtest` use
    Activate {
        /// Trial number as the tune table lists it (0 = the settings in use when the study last ran)
        trial: usize,
        /// The study [default: the newest]
        #[arg(long)]
        study: Option<String>,
    },
    /// Stop using tuned settings: back to the defaults and the settings file
    Deactivate,
    /// The newest study's table again (or --study's), without training
    Show {
        #[arg(long)]
        study: Option<String>,
    },
}

/// `90s`, `30m`, `2h`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("«{text}» is not a duration; write 90s, 30m, 2h or 1h30m");
    let mut seconds = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        seconds = n
            .checked_mul(unit)
            .and_then(|x| seconds.checked_add(x))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || seconds == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(seconds))
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The remote jobs this database started, with their state
    List,
    /// One job: what this database knows and what DataSphere says now
    Show { id: String },
    /// Wait for a job (or pick up one whose model was never fetched) and store its model
    Wait { id: String },
    /// The job's log, from the start
    Logs {
        id: String,
        /// Keep reading until the job ends
        #[arg(long)]
        follow: bool,
    },
    /// Stop a job on DataSphere
    Cancel { id: String },
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// A stored model id [default: the active model]
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist yet)
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: Option<ModelsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Make model ID the active one (its forecasts become the current ones)
    Activate {
        /// A model id as `plastinka models` lists it
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Stock snapshot export (.xlsx, .xls or .csv): one row per copy on the shelf, or per
    /// product with «Экземпляры»
    #[arg(long, value_name = "FILE")]
    pub stock: PathBuf,
    /// Sales exports (files or directories of them); rows go to months by sale date
    #[arg(long, value_name = "FILE|DIR", num_args = 1.., required_unless_present = "empty_month")]
    pub sales: Vec<PathBuf>,
    /// Day the snapshot describes (at its start) [default: a date in the stock file's name
    /// (stock_2026-11-01.xlsx, остатки_01.11.2026.xlsx), else the day after the latest sale]
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub stock_date: Option<chrono::NaiveDate>,
    /// A month with no sales at all (the shop was closed), stored as empty; repeatable
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub empty_month: Vec<crate::month::Month>,
    /// Store an unfinished last month (snapshot dated inside it) as partial
    #[arg(long)]
    pub allow_incomplete_month: bool,
    /// Accept rows that contradict the snapshot (arrival after sale...): clamp them and record a warning
    #[arg(long)]
    pub accept_incoherent: bool,
    /// Validate and report without writing anything
    #[arg(long)]
    pub dry_run: bool,
}

pub fn parse_date(text: &str) -> Result<chrono::NaiveDate, String> {
    crate::ingest::dates::parse_date(crate::ingest::read::Cell::Text(text))
        .ok_or_else(|| format!("«{text}» is not a date; use dd.mm.yyyy or yyyy-mm-dd"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    /// Next month's forecast per product, with stock and a reorder suggestion
    Forecast,
    /// A past forecast beside the actual sales, per product and in total
    Accuracy,
    /// The newest `plastinka backtest`: every method per month and pooled
    Backtest,
    /// The newest `plastinka tune` study: best settings beside the current ones, every evaluation
    Tune,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Forecast month (YYYY-MM) [default: the active model's]
    #[arg(long, value_parser = parse_month)]
    pub month: Option<crate::month::Month>,
    /// A stored model id [default: the active model, or the newest model for --month]
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum, default_value = "forecast")]
    pub kind: ReportKind,
    /// Output format [default: table; json with --json]
    #[arg(long, value_enum)]
    pub format: Option<crate::report::render::OutputFormat>,
    /// Write to this file instead of stdout (required for xlsx)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Header language: en (column keys) or ru (the shop's headers); JSON always uses keys
    #[arg(long, value_enum, default_value = "en")]
    pub lang: crate::report::Language,
    /// Artist contains this text (case-insensitive)
    #[arg(long)]
    pub artist: Option<String>,
    /// Album contains this text
    #[arg(long)]
    pub album: Option<String>,
    /// Style contains this text
    #[arg(long)]
    pub style: Option<String>,
    /// Price category label, e.g. "(2490, 3990]"
    #[arg(long)]
    pub price_category: Option<String>,
    /// Release type, e.g. Оригинал
    #[arg(long)]
    pub release_type: Option<String>,
    /// sealed or opened
    #[arg(long)]
    pub condition: Option<String>,
    /// Median forecast at least this many units
    #[arg(long)]
    pub min_forecast: Option<f64>,
    /// Last month's availability at least this (0–1)
    #[arg(long)]
    pub min_availability: Option<f64>,
    /// Sort by COLUMN[:asc|:desc] (numbers default to descending)
    #[arg(long, value_name = "COLUMN")]
    pub sort: Option<String>,
    /// Keep only the first N rows (after sorting)
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Service level of the reorder suggestion [default: report.service_level]
    #[arg(long)]
    pub service_level: Option<f64>,
}

fn parse_month(text: &str) -> Result<crate::month::Month, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Also exchange YC_OAUTH_TOKEN for an IAM token (network, remote.timeout_seconds)
    #[arg(long)]
    pub online: bool,
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Directory for the database and reports [default: a new directory under the system temp dir]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The sample data [default: ./data/sample, else the one in the source tree]
    #[arg(long)]
    pub sample: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        for bad in ["", "30", "m", "0s", "1d", "-5m", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
