//! Training benchmark: the whole local `train` (both phases) on a generated shop.
//!
//! ```text
//! cargo build --release --examples
//! $CARGO_TARGET_DIR/release/examples/bench_train --products 5000 --months 36 --threads 1
//! ```
//!
//! Generates the data with the `generate` example (a child process), uploads it through
//! the library, then trains with the default settings (`--max-epochs N` caps phase 1 for a
//! quick look; `--threads` sets the worker threads). Prints seconds per epoch, training
//! windows per second, total time and peak memory (VmHWM of this process, which also
//! holds the upload; the upload alone is measured by `bench_upload`).

use plastinka::config::Config;
use plastinka::forecast::train;
use plastinka::ingest::{self, laws::StoredMonths};
use std::time::Instant;

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let products = common::arg("--products", "5000");
    let months = common::arg("--months", "36");
    let mut config = Config::default();
    config.training.threads = common::arg("--threads", "0").parse()?;
    config.training.max_epochs =
        common::arg("--max-epochs", &config.training.max_epochs.to_string()).parse()?;
    let dir = tempfile::tempdir()?;
    let request = common::generate(dir.path(), &products, &months)?;
    let plan = ingest::plan_upload(&request, &config.data, &StoredMonths::default(), &|_, _| {})?;
    let db = dir.path().join("bench.db");
    common::store_upload(&db, &plan)?;
    let history = common::open(&db)?.load_history()?;

    let started = Instant::now();
    let mut epochs: Vec<(u8, f64)> = Vec::new();
    let mut last = 0.0;
    let trained = train::train(&history, &config.model, &config.training, &mut |r| {
        epochs.push((r.phase, r.seconds - if r.epoch == 1 { 0.0 } else { last }));
        last = r.seconds;
        eprintln!(
            "phase {} epoch {}/{} train {:.5} valid {} ({:.1} s)",
            r.phase,
            r.epoch,
            r.epochs,
            r.train_loss,
            r.valid_loss.map_or("-".into(), |v| format!("{v:.5}")),
            r.seconds
        );
    })?;
    let total = started.elapsed().as_secs_f64();
    let mut phase1: Vec<f64> = epochs
        .iter()
        .filter(|e| e.0 == 1)
        .skip(1)
        .map(|e| e.1)
        .collect();
    phase1.sort_by(f64::total_cmp);
    let median = phase1.get(phase1.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "train of {products} products × {months} months, model defaults, threads: {}",
        if config.training.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.training.threads
        }
    );
    println!(
        "  windows per epoch: phase 1 {}, phase 2 {}",
        trained.windows_phase1, trained.windows_phase2
    );
    println!("  seconds per epoch (median of phase-1 epochs after the first): {median:.2}");
    println!(
        "  training throughput: {:.0} windows/s ({:.0} in phase 1)",
        trained.windows_per_second,
        trained.windows_phase1 as f64 / median
    );
    println!(
        "  epochs: phase 1 best {} (ran {}), phase 2 {}",
        trained.best_epoch,
        epochs.iter().filter(|e| e.0 == 1).count(),
        trained.retrain_epochs
    );
    println!("  total train (both phases, features, prediction): {total:.1} s");
    println!("  peak memory (VmHWM): {}", common::peak_memory());
    println!(
        "  held-out pinball: model {:.4}; {}",
        trained.validation.pinball,
        trained
            .baselines
            .iter()
            .map(|b| format!("{} {:.4}", b.name, b.evaluation.pinball))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
