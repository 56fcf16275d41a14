//! `plastinka train`: two-phase local training on the stored months, then next month's
//! forecast for every product, stored with the model in one transaction.

use super::Context;
use crate::cli::TrainArgs;
use crate::forecast::stored::ModelRecord;
use crate::forecast::train::{self, EpochReport, Trained};
use anyhow::Result;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;
use std::io::Write;

pub fn run(context: &Context, args: &TrainArgs) -> Result<()> {
    if let Some(note) = context.settings_note() {
        let _ = writeln!(std::io::stderr(), "{note}");
    }
    if args.remote {
        return super::remote::train(context, !args.no_activate, args.detach);
    }
    let (history, version) = context.existing_store()?.load_history_versioned()?;
    let model_config = &context.config.model;
    let training = &context.config.training;
    if let Some(partial) = history.has_partial_month() {
        let _ = writeln!(
            std::io::stderr(),
            "note: {partial} is stored partial (unfinished); training uses the complete months before it and forecasts {partial}"
        );
    }

    let bar = progress_bar(context, training.max_epochs);
    let mut report = |r: EpochReport| report_epoch(bar.as_ref(), r);
    let trained = train::train(&history, model_config, training, &mut report)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let record = ModelRecord::from_trained(
        new_model_id(&trained.weights),
        &trained,
        &history,
        model_config,
        training,
    );
    crate::faults::check("train-save")?;
    let session = context.write_existing("train")?;
    session.ensure_data_version(&version)?;
    session.save_model(&record, &trained.forecasts, !args.no_activate)?;
    session.commit()?;

    if context.json {
        let summary = json!({
            "model_id": record.id,
            "active": !args.no_activate,
            "data": { "first_month": record.first_month, "last_month": record.last_month, "products": trained.forecasts.len() },
            "forecast_month": record.forecast_month,
            "forecasts": trained.forecasts.len(),
            "metrics": record.metrics,
            "tuned_settings": context.tuned.as_ref().map(|t| t.provenance()),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        print_human(&record.id, &trained, !args.no_activate)?;
    }
    Ok(())
}

/// A bar on a terminal, plain lines on stderr otherwise.
pub fn progress_bar(context: &Context, epochs: usize) -> Option<indicatif::ProgressBar> {
    context.progress_bar(
        epochs,
        "{prefix} [{bar:30}] {pos}/{len} epochs {msg} ({elapsed}, ~{eta} left)",
    )
}

pub fn report_epoch(bar: Option<&indicatif::ProgressBar>, r: EpochReport) {
    let valid = r
        .valid_loss
        .map_or(String::new(), |v| format!(" valid {v:.5}"));
    match bar {
        Some(bar) => {
            bar.set_prefix(format!("phase {}", r.phase));
            bar.set_length(r.epochs as u64);
            bar.set_position(r.epoch as u64);
            bar.set_message(format!("train {:.5}{valid}", r.train_loss));
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "phase {} epoch {}/{}: train loss {:.5}{valid} ({:.1} s)",
                r.phase,
                r.epoch,
                r.epochs,
                r.train_loss,
                r.seconds
            );
        }
    }
}

/// `YYYYMMDD-HHMMSS-xxxxxx`: sortable, and unique across processes.
pub fn new_model_id(weights: &[u8]) -> String {
    let now = chrono::Utc::now();
    let salt = format!(
        "{:?}{}{}",
        now.timestamp_nanos_opt(),
        std::process::id(),
        crate::digest::sha256_hex(weights)
    );
    let hash = crate::digest::sha256_hex(salt.as_bytes());
    format!("{}-{}", now.format("%Y%m%d-%H%M%S"), &hash[..6])
}

fn print_human(id: &str, t: &Trained, active: bool) -> Result<()> {
    crate::outln!(
        "Trained model {id}{}: best epoch {} of phase 1, retrained {} epochs; {} windows ({:.2} s/epoch, {:.0} windows/s)",
        if active { " (active)" } else { "" },
        t.best_epoch,
        t.retrain_epochs,
        t.windows_phase2,
        t.seconds_per_epoch,
        t.windows_per_second
    )?;
    crate::outln!(
        "Forecast for {}: {} products.",
        t.forecast_month,
        t.forecasts.len()
    )?;
    crate::outln!(
        "Held-out month {} ({} products in stock):",
        t.holdout_month,
        t.validation.products
    )?;
    let mut table = Table::new();
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(vec![
        "forecast",
        "pinball",
        "WAPE (median)",
        "coverage 5–95 %",
        "MIWS",
        "MIC",
        "MIWS_MIC_Ratio",
    ]);
    let row = |name: &str, e: &crate::forecast::metrics::Evaluation| {
        vec![
            name.to_string(),
            format!("{:.4}", e.pinball),
            e.wape.map_or("-".into(), |w| format!("{:.3}", w)),
            format!("{:.1} %", e.coverage * 100.0),
            format!("{:.4}", e.miws),
            format!("{:.4}", e.mic),
            format!("{:.4}", e.miws_mic_ratio),
        ]
    };
    table.add_row(row("model", &t.validation));
    for b in &t.baselines {
        table.add_row(row(&b.name, &b.evaluation));
    }
    crate::outln!("{table}")?;
    // "Beats the baselines" means beating the best of them.
    if let Some(best) = t
        .baselines
        .iter()
        .min_by(|a, b| a.evaluation.pinball.total_cmp(&b.evaluation.pinball))
    {
        let gain = (1.0 - t.validation.pinball / best.evaluation.pinball) * 100.0;
        crate::outln!(
            "  pinball vs the best baseline ({}): {gain:+.1} %",
            best.name
        )?;
    }
    Ok(())
}
