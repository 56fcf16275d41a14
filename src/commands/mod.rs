//! One file per subcommand; orchestration only.

pub mod backtest;
pub mod backup;
pub mod forecast;
pub mod health;
pub mod models;
pub mod quickstart;
pub mod remote;
pub mod report;
pub mod train;
pub mod tune;
pub mod upload;
pub mod worker;

use crate::cli::{Cli, Command};
use crate::config::{Config, Layers};
use crate::forecast::tune::TunedSettings;
use anyhow::Result;
use std::io::IsTerminal;
use std::path::PathBuf;

/// What every command gets: settings, the database path, the output mode and the day
/// it acts on.
pub struct Context {
    pub config: Config,
    pub db: PathBuf,
    pub json: bool,
    pub today: chrono::NaiveDate,
    /// The settings file and environment, to tell which settings override tuned ones.
    pub layers: Layers,
    /// The tuned settings `config` includes, if `tune` activated some.
    pub tuned: Option<TunedSettings>,
}

impl Context {
    /// Progress bars only for a person watching a terminal.
    pub fn show_progress(&self) -> bool {
        !self.json && std::io::stderr().is_terminal()
    }

    /// A progress bar of `len` steps drawn with `template`, only for a person watching a
    /// terminal.
    pub fn progress_bar(&self, len: usize, template: &str) -> Option<indicatif::ProgressBar> {
        if !self.show_progress() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(len as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    }

    /// The store for reading; a clear error when nothing has been uploaded yet.
    pub fn existing_store(&self) -> Result<crate::store::Store> {
        crate::store::Store::open_read_only(&self.db, self.config.database.limits())?.ok_or_else(
            || {
                crate::error::InputError::new(format!(
                    "no database at {}: run `plastinka upload` first",
                    self.db.display()
                ))
                .into()
            },
        )
    }

    /// A write session on the database (it must exist already): `holder` names this
    /// command to a writer that has to wait for it.
    pub fn write_existing(&self, holder: &str) -> Result<crate::store::WriteSession> {
        self.existing_store()?;
        self.write(holder)
    }

    /// Which settings this command runs with, when tuned ones are in use: where they
    /// came from and which of them the settings file or environment overrides.
    pub fn settings_note(&self) -> Option<String> {
        let tuned = self.tuned.as_ref()?;
        let overridden: Vec<String> = tuned
            .values
            .keys()
            .filter_map(|key| Some(format!("{key} ({})", self.layers.set_above_tuned(key)?)))
            .collect();
        let mut note = format!(
            "settings: tuned ({}) for {} setting(s)",
            tuned.provenance(),
            tuned.values.len() - overridden.len()
        );
        if !overridden.is_empty() {
            note.push_str(&format!("; overridden by {}", overridden.join(", ")));
        }
        Some(note)
    }

    /// A write session that creates the database if needed.
    pub fn write(&self, holder: &str) -> Result<crate::store::WriteSession> {
        crate::store::Store::begin_write(&self.db, holder, self.config.database.limits())
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let layers = Layers::load(cli.config.as_deref())?;
    let mut config = layers.resolve(None)?;
    crate::ingest::workbook::limit_child_memory(config.data.workbook_memory_mb);
    let db = cli
        .db
        .clone()
        .unwrap_or_else(|| config.database.path.clone());
    // Commands that train use the tuned settings beneath the file's. `tune activate`,
    // `deactivate` and `show` do not, so that settings which no longer load (after an
    // upgrade, say) can still be replaced or dropped; health reads them itself.
    let trains = match &cli.command {
        Command::Train(_) | Command::Backtest(_) => true,
        Command::Tune(args) => args.command.is_none(),
        _ => false,
    };
    let tuned = match trains {
        true => active_tuned(&db, &config).map_err(|e| {
            crate::store::explain(e, &db).context(
                "the tuned settings cannot be read; `plastinka tune deactivate` drops them",
            )
        })?,
        false => None,
    };
    if let Some(tuned) = &tuned {
        config = layers.resolve(Some(&tuned.values)).map_err(|e| {
            e.context(format!(
                "the tuned settings ({}) do not fit the settings file; `plastinka tune deactivate` drops them",
                tuned.provenance()
            ))
        })?;
    }
    let context = Context {
        config,
        db,
        json: cli.json,
        today: cli
            .as_of
            .unwrap_or_else(|| chrono::Local::now().date_naive()),
        layers,
        tuned,
    };
    let db = context.db.clone();
    let result = match cli.command {
        Command::Upload(args) => upload::run(&context, &args),
        Command::Train(args) => train::run(&context, &args),
        Command::Models(args) => models::run(&context, &args),
        Command::Forecast(args) => forecast::run(&context, &args),
        Command::Jobs(args) => remote::jobs(
            &context,
            args.command
                .as_ref()
                .unwrap_or(&crate::cli::JobsCommand::List),
        ),
        Command::Backup(args) => backup::run(&context, &args),
        Command::Quickstart(args) => quickstart::run(&context, &args),
        Command::Tune(args) => tune::run(&context, &args),
        Command::Backtest(args) => backtest::run(&context, &args),
        Command::Report(args) => report::run(&context, &args),
        Command::Health(args) => health::run(&context, &args),
    };
    result.map_err(|e| crate::store::explain(e, &db))
}

/// The tuned settings stored in the database at `db`, if it exists and has some active.
fn active_tuned(db: &std::path::Path, config: &Config) -> Result<Option<TunedSettings>> {
    match crate::store::Store::open_read_only(db, config.database.limits())? {
        Some(store) => store.active_tuned(),
        None => Ok(None),
    }
}
