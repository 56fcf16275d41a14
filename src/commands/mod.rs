//! One file per subcommand; orchestration only.

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
        Command::Train => Err(NotBuilt("train").into()),
        Command::Tune => Err(NotBuilt("tune").into()),
        Command::Report => Err(NotBuilt("report").into()),
        Command::Health => Err(NotBuilt("health").into()),
    }
}
