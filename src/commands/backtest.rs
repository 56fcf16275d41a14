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
    let (history, version) = context.existing_store()?.load_history_versioned()?;
    if let Some(path) = &args.forecasts {
        refuse_unwritable(path)?;
    }
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
    let session = context.write_existing("backtest")?;
    session.ensure_data_version(&version)?;
    session.save_backtest(&record)?;
    session.commit()?;
    if let Some(path) = &args.forecasts {
        let labels = context.existing_store()?.product_labels()?;
        let export = crate::report::backtest::forecasts(&record, &outcomes, &labels);
        let bytes = crate::report::render::csv(&export, crate::report::Language::En)?;
        write_whole(path, &bytes)?;
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
    if path.is_dir() {
        return refuse("is a folder, not a file".into());
    }
    if path.metadata().is_ok_and(|m| m.permissions().readonly()) {
        return refuse("the file is read-only".into());
    }
    let probe = folder.join(format!(".plastinka-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => refuse(format!("cannot write in {} ({e})", folder.display())),
    }
}

/// Writes `bytes` to `path` whole or not at all: a partial file, then a rename.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            anyhow::anyhow!("cannot write {} ({e})", path.display())
        })
}
