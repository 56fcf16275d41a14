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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a month (or several) of sales exports and the stock snapshot taken after them
    Upload(UploadArgs),
    /// Train the forecasting model on the stored months and forecast the next month
    Train(TrainArgs),
    /// Search model settings when health reports degradation (not built yet)
    Tune,
    /// Per-product forecasts and business figures (not built yet)
    Report,
    /// Is the data complete and the model still good? (not built yet)
    Health,
    /// List trained models, or make an earlier one active again
    Models(ModelsArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Keep the current active model; store this one for comparison only
    #[arg(long)]
    pub no_activate: bool,
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
    #[arg(long, value_name = "FILE|DIR", num_args = 1.., required = true)]
    pub sales: Vec<PathBuf>,
    /// Day the snapshot describes (at its start) [default: the day after the latest sale]
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub stock_date: Option<chrono::NaiveDate>,
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

fn parse_date(text: &str) -> Result<chrono::NaiveDate, String> {
    crate::ingest::rows::parse_date(crate::ingest::read::Cell::Text(text))
        .ok_or_else(|| format!("«{text}» is not a date; use dd.mm.yyyy or yyyy-mm-dd"))
}
