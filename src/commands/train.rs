//! `plastinka train`: two-phase local training on the stored months, then next month's
//! forecast for every product, stored with the model in one transaction.

use super::Context;
use crate::cli::TrainArgs;
use crate::forecast::train::{self, EpochReport, Trained};
use crate::store::Store;
use crate::store::models::NewModel;
use anyhow::Result;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;
use std::io::Write;

pub fn run(context: &Context, args: &TrainArgs) -> Result<()> {
    let history = context.existing_store()?.load_history()?;
    let model_config = &context.config.model;
    let training = &context.config.training;

    let bar = if context.show_progress() {
        let bar = indicatif::ProgressBar::new(training.max_epochs as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} epochs {msg} ({elapsed}, ~{eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let mut report = |r: EpochReport| {
        let valid = r
            .valid_loss
            .map_or(String::new(), |v| format!(" valid {v:.5}"));
        match &bar {
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
    };
    let trained = train::train(&history, model_config, training, &mut report)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let id = model_id(&trained);
    let metrics = trained.metrics();
    let forecasts: Vec<(i64, Vec<(f64, f64)>)> = trained
        .forecasts
        .iter()
        .map(|(i, q)| {
            let units = q.iter().map(|&u| (u * 100.0).round() / 100.0);
            (
                history.products[*i].id,
                model_config.quantiles.iter().copied().zip(units).collect(),
            )
        })
        .collect();
    let mut store = Store::open(&context.db)?;
    store.save_model(&NewModel {
        id: &id,
        first_month: history.months[0].to_string(),
        last_month: trained.holdout_month.to_string(),
        forecast_month: trained.forecast_month.to_string(),
        config_json: serde_json::to_string(
            &json!({ "model": model_config, "training": training }),
        )?,
        artifacts_json: serde_json::to_string(&json!({
            "widths": trained.widths,
            "static_columns": trained.static_columns,
            "scaler": trained.scaler,
        }))?,
        weights: &trained.weights,
        metrics_json: serde_json::to_string(&metrics)?,
        training_seconds: trained.seconds_per_epoch
            * (trained.best_epoch + trained.retrain_epochs) as f64,
        forecasts,
        activate: !args.no_activate,
    })?;

    let summary = json!({
        "model_id": id,
        "active": !args.no_activate,
        "data": { "first_month": history.months[0], "last_month": trained.holdout_month, "products": history.products.len() },
        "forecast_month": trained.forecast_month,
        "forecasts": trained.forecasts.len(),
        "metrics": metrics,
    });
    if context.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_human(&id, &trained, !args.no_activate);
    }
    Ok(())
}

fn model_id(trained: &Trained) -> String {
    let now = chrono::Utc::now();
    let salt = format!(
        "{:?}{}{}",
        now.timestamp_nanos_opt(),
        std::process::id(),
        trained.weights.len()
    );
    let hash = crate::ingest::sha256_hex(salt.as_bytes());
    format!("{}-{}", now.format("%Y%m%d-%H%M%S"), &hash[..6])
}

fn print_human(id: &str, t: &Trained, active: bool) {
    println!(
        "Trained model {id}{}: best epoch {} of phase 1, retrained {} epochs; {} windows ({:.2} s/epoch, {:.0} windows/s)",
        if active { " (active)" } else { "" },
        t.best_epoch,
        t.retrain_epochs,
        t.windows_phase2,
        t.seconds_per_epoch,
        t.windows_per_second
    );
    println!(
        "Forecast for {}: {} products.",
        t.forecast_month,
        t.forecasts.len()
    );
    println!(
        "Held-out month {} ({} products in stock):",
        t.holdout_month, t.validation.products
    );
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
    println!("{table}");
    for b in &t.baselines {
        let gain = (1.0 - t.validation.pinball / b.evaluation.pinball) * 100.0;
        println!("  pinball vs {}: {gain:+.1} %", b.name);
    }
}
