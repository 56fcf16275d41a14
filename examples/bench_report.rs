//! Report and health benchmark on a large store (default 20,000 products × 36 months).
//!
//! ```text
//! cargo build --release --examples --bins
//! $CARGO_TARGET_DIR/release/examples/bench_report --products 20000 --months 36
//! ```
//!
//! Generates and uploads the shop, trains a deliberately tiny model for one epoch (only
//! so that every product has a stored forecast), then times the real binary — process
//! start, database open, queries, rendering — for `report` in each format and for
//! `health`, five runs each, and prints the median.

use plastinka::config::Config;
use plastinka::forecast::stored::ModelRecord;
use plastinka::forecast::train;
use plastinka::ingest::{self, laws::StoredMonths};
use plastinka::store::Store;
use std::process::Command;
use std::time::Instant;

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let products = common::arg("--products", "20000");
    let months = common::arg("--months", "36");
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("plastinka"))
        .ok_or("no binary path")?;
    if !binary.is_file() {
        return Err(format!(
            "{} missing: build with `cargo build --release --examples --bins`",
            binary.display()
        )
        .into());
    }
    let dir = tempfile::tempdir()?;
    let request = common::generate(dir.path(), &products, &months)?;
    let mut config = Config::default();
    let db = dir.path().join("bench.db");
    common::store_upload(
        &db,
        &ingest::plan_upload(&request, &config.data, &StoredMonths::default(), &|_, _| {})?,
    )?;
    let history = common::open(&db)?.load_history()?;
    config.model.hidden_size = 16;
    config.model.decoder_output_dim = 4;
    config.model.num_encoder_layers = 1;
    config.model.num_decoder_layers = 1;
    config.training.max_epochs = 1;
    let trained = train::train(&history, &config.model, &config.training, &mut |_| {})?;
    let record = ModelRecord::from_trained(
        "bench".into(),
        &trained,
        &history,
        &config.model,
        &config.training,
    );
    let session = Store::begin_write(&db, "bench", Default::default())?;
    session.save_model(&record, &trained.forecasts, true)?;
    session.commit()?;
    println!(
        "store: {products} products × {months} months, {} forecasts",
        trained.forecasts.len()
    );
    let out = dir.path().join("out");
    let runs: [(&str, Vec<String>); 5] = [
        (
            "report (table)",
            vec![
                "report".into(),
                "--output".into(),
                out.join("r.txt").display().to_string(),
            ],
        ),
        (
            "report --format csv",
            vec![
                "report".into(),
                "--format".into(),
                "csv".into(),
                "--output".into(),
                out.join("r.csv").display().to_string(),
            ],
        ),
        (
            "report --format json",
            vec![
                "report".into(),
                "--format".into(),
                "json".into(),
                "--output".into(),
                out.join("r.json").display().to_string(),
            ],
        ),
        (
            "report --format xlsx",
            vec![
                "report".into(),
                "--format".into(),
                "xlsx".into(),
                "--output".into(),
                out.join("r.xlsx").display().to_string(),
            ],
        ),
        ("health", vec!["--json".into(), "health".into()]),
    ];
    std::fs::create_dir_all(&out)?;
    for (name, arguments) in runs {
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let output = Command::new(&binary)
                .arg("--db")
                .arg(&db)
                .args(&arguments)
                .env_remove("PLASTINKA_CONFIG")
                .output()?;
            times.push(started.elapsed().as_secs_f64());
            if output.status.code().is_none_or(|c| c > 1) {
                return Err(
                    format!("{name} failed: {}", String::from_utf8_lossy(&output.stderr)).into(),
                );
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "  {name:<22} median {:.3} s (min {:.3}, max {:.3})",
            times[2], times[0], times[4]
        );
    }
    Ok(())
}
