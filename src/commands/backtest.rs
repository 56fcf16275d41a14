//! `plastinka backtest`: rolling-origin backtest of the model and every baseline, stored
//! with the settings it ran with; `report --kind backtest` shows it again.

use super::Context;
use crate::cli::BacktestArgs;
use crate::forecast::backtest::{self, BacktestRecord, Progress};
use crate::forecast::history::History;
use crate::store::history::DataVersion;
use crate::store::reports::ProductLabel;
use anyhow::Result;
use std::collections::HashMap;
use std::io::Write;

/// Each product's labels by id, for the exported forecasts.
type Labels = HashMap<i64, ProductLabel>;

/// The history, its data version and, when the forecasts are exported, the products'
/// labels. Read together (the data version check before storing covers both), so nothing
/// is left to fail between the commit and the export.
fn load(context: &Context, args: &BacktestArgs) -> Result<(History, DataVersion, Labels)> {
    let store = context.existing_store()?;
    let (history, version) = store.load_history_versioned()?;
    let labels = match &args.forecasts {
        Some(path) => {
            crate::report::render::refuse_unwritable(path, "--forecasts")?;
            store.product_labels()?
        }
        None => Default::default(),
    };
    Ok((history, version, labels))
}

pub fn run(context: &Context, args: &BacktestArgs) -> Result<()> {
    let (history, version, labels) = load(context, args)?;
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
            Some(crate::report::render::Partial::write(path, &bytes)?)
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
    print(context, &record)
}

/// The backtest's table (or JSON) and, in the table, the pooled comparison in one line.
fn print(context: &Context, record: &BacktestRecord) -> Result<()> {
    let report = crate::report::backtest::build(record);
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
