//! Upload benchmark: wall time and peak memory of one upload of a generated shop.
//!
//! ```text
//! cargo build --release --examples
//! $CARGO_TARGET_DIR/release/examples/bench_upload --products 20000 --months 36
//! ```
//!
//! The data set is made by the `generate` example (run as a child process, so its
//! memory is not counted) in a temporary directory, as CSV. The upload runs in this
//! process through the same library calls as `plastinka upload`: read + clean + laws +
//! features (`plan_upload`) and the SQLite transaction (`write_upload`). Peak memory is
//! this process's VmHWM (Linux).

use plastinka::config::DataConfig;
use plastinka::ingest::{self, laws::StoredMonths};
use std::time::Instant;

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let products = common::arg("--products", "20000");
    let months = common::arg("--months", "36");
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let request = common::generate(dir.path(), &products, &months)?;
    let generated_s = started.elapsed().as_secs_f64();
    let bytes: u64 = request
        .sales
        .iter()
        .chain([&request.stock])
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();

    let db = dir.path().join("bench.db");
    let started = Instant::now();
    let plan = ingest::plan_upload(
        &request,
        &DataConfig::default(),
        &StoredMonths::default(),
        &|_, _| {},
    )?;
    let planned_s = started.elapsed().as_secs_f64();
    common::store_upload(&db, &plan)?;
    let total_s = started.elapsed().as_secs_f64();
    println!(
        "upload of {products} products × {months} months: {} rows in {} files ({:.1} MB CSV), {} monthly feature rows",
        plan.rows_read,
        plan.files.len(),
        bytes as f64 / 1e6,
        plan.monthly.len()
    );
    println!("  generate (not counted): {generated_s:.1} s");
    println!("  read + clean + laws + features: {planned_s:.2} s");
    println!("  SQLite write: {:.2} s", total_s - planned_s);
    println!(
        "  total upload: {total_s:.2} s, threads available: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("  peak memory (VmHWM): {}", common::peak_memory());
    println!(
        "  database size: {:.1} MB",
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    Ok(())
}
