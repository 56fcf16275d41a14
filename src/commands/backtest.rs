//! `plastinka backtest`: rolling-origin backtest of the model and every baseline, stored
//! with the settings it ran with; `report --kind backtest` shows it again.

use super::Context;
use crate::cli::BacktestArgs;
use crate::error::InputError;
use crate::forecast::backtest::{self, BacktestRecord, Progress};
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub fn run(context: &Context, args: &BacktestArgs) -> Result<()> {
    let (history, version, labels) = {
        let store = context.existing_store()?;
        let (history, version) = store.load_history_versioned()?;
        // Read with the history (the data version check below covers both), so nothing
        // is left to fail between the commit and the export.
        let labels = match &args.forecasts {
            Some(path) => {
                refuse_unwritable(path)?;
                store.product_labels()?
            }
            None => Default::default(),
        };
        (history, version, labels)
    };
    if let Some(note) = context.settings_note() {
        let _ = writeln!(std::io::stderr(), "{note}");
    }
    let model = &context.config.model;
    let training = &context.config.training;
    let bar = super::train::progress_bar(context, training.max_epochs);
    let mut report = |p: Progress| {
        let prefix = format!("month {} ({}/{})", p.month, p.origin, p.origins);
        match &bar {
            Some(bar) => {
                super::train::report_epoch(Some(bar), p.epoch);
                bar.set_prefix(format!("{prefix} phase {}", p.epoch.phase));
            }
            None => {
                let _ = write!(std::io::stderr(), "{prefix}: ");
                super::train::report_epoch(None, p.epoch);
            }
        }
    };
    let mut outcomes = Vec::new();
    let keep = args.forecasts.as_ref().map(|_| &mut outcomes);
    let result = backtest::run(
        &history,
        usize::from(args.months),
        model,
        training,
        &mut report,
        keep,
    )?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let created_at = crate::clock::timestamp();
    let record = BacktestRecord {
        format_version: backtest::FORMAT_VERSION,
        id: format!(
            "backtest-{}",
            super::train::new_model_id(created_at.as_bytes())
        ),
        created_at,
        model: model.clone(),
        training: training.clone(),
        result,
    };
    // The export is written whole beside its place before the backtest is stored, and
    // put in place after: a failure stores neither.
    let export = match &args.forecasts {
        Some(path) => {
            let report = crate::report::backtest::forecasts(&record, &outcomes, &labels);
            let bytes = crate::report::render::csv(&report, crate::report::Language::En)?;
            Some(Partial::write(path, &bytes)?)
        }
        None => None,
    };
    let session = context.write_existing("backtest")?;
    session.ensure_data_version(&version)?;
    session.save_backtest(&record)?;
    session.commit()?;
    if let Some(partial) = export {
        partial.put_in_place()?;
    }
    let report = crate::report::backtest::build(&record);
    if context.json {
        crate::outln!(
            "{}",
            String::from_utf8_lossy(&crate::report::render::json(&report)?)
        )?;
    } else {
        crate::outln!(
            "{}",
            crate::report::render::table(&report, crate::report::Language::En)
        )?;
        if let (Some(model), Some(best)) = (record.result.model(), record.result.best_baseline()) {
            crate::outln!(
                "Pooled pinball: model {:.4}, best baseline {} {:.4} ({:+.1} %); 5–95 % coverage {:.3}.",
                model.evaluation.pinball,
                best.method,
                best.evaluation.pinball,
                (1.0 - model.evaluation.pinball / best.evaluation.pinball) * 100.0,
                model.evaluation.coverage
            )?;
        }
    }
    Ok(())
}

/// A path the export cannot be written to is refused before hours of training: its
/// folder must exist and take a new file, and the path must not be a folder or a
/// read-only file.
fn refuse_unwritable(path: &Path) -> Result<()> {
    let refuse = |why: String| -> Result<()> {
        Err(InputError::new(format!("--forecasts {}: {why}", path.display())).into())
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return refuse(format!("the folder {} does not exist", folder.display()));
    }
    if path.is_dir() || path.file_name().is_none() {
        return refuse("is a folder, not a file".into());
    }
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return refuse("is a symbolic link; name the file itself".into());
    }
    if path.metadata().is_ok_and(|m| m.permissions().readonly()) {
        return refuse("the file is read-only".into());
    }
    let probe = folder.join(format!(".plastinka-probe-{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => refuse(format!("cannot write in {} ({e})", folder.display())),
    }
}

/// An export written in full under a hidden name in its folder, not yet in place.
/// Dropped without [`Partial::put_in_place`], it is removed.
struct Partial {
    hidden: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Partial {
    fn write(path: &Path, bytes: &[u8]) -> Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("--forecasts {}: not a file name", path.display()))?;
        let hidden = path.with_file_name(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        let partial = Self {
            hidden,
            path: path.to_path_buf(),
        };
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial.hidden)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            });
        written.map_err(|e| anyhow::anyhow!("cannot write {} ({e})", path.display()))?;
        Ok(partial)
    }

    fn put_in_place(self) -> Result<()> {
        std::fs::rename(&self.hidden, &self.path)
            .map_err(|e| anyhow::anyhow!("cannot write {} ({e})", self.path.display()))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // After a rename there is nothing left to remove.
        let _ = std::fs::remove_file(&self.hidden);
    }
}
