//! One file per subcommand; orchestration only.

pub mod health;
pub mod models;
pub mod quickstart;
pub mod report;
pub mod train;
pub mod upload;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::NotBuilt;
use anyhow::Result;
use std::io::IsTerminal;
use std::path::PathBuf;

/// What every command gets: settings, the database path and the output mode.
pub struct Context {
    pub config: Config,
    pub db: PathBuf,
    pub json: bool,
}

impl Context {
    /// Progress bars only for a person watching a terminal.
    pub fn show_progress(&self) -> bool {
        !self.json && std::io::stderr().is_terminal()
    }

    /// The store for reading; a clear error when nothing has been uploaded yet.
    pub fn existing_store(&self) -> Result<crate::store::Store> {
        crate::store::Store::open_existing_read_only(&self.db)?.ok_or_else(|| {
            crate::error::InputError::new(format!(
                "no database at {}: run `plastinka upload` first",
                self.db.display()
            ))
            .into()
        })
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    let db = cli
        .db
        .clone()
        .unwrap_or_else(|| config.database.path.clone());
    let context = Context {
        config,
        db,
        json: cli.json,
    };
    match cli.command {
        Command::Upload(args) => upload::run(&context, &args),
        Command::Train(args) => train::run(&context, &args),
        Command::Models(args) => models::run(&context, &args),
        Command::Quickstart(args) => quickstart::run(&context, &args),
        Command::Tune => Err(NotBuilt("tune").into()),
        Command::Report(args) => report::run(&context, &args),
        Command::Health(args) => health::run(&context, &args),
    }
}
