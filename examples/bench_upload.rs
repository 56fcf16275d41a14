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
use plastinka::ingest::{self, UploadRequest, laws::StoredMonths};
use plastinka::store::Store;
use std::process::Command;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let products = get("--products", "20000");
    let months = get("--months", "36");
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let generator = std::env::current_exe()?.with_file_name("generate");
    let started = Instant::now();
    let status = Command::new(&generator)
        .args([
            "--products",
            &products,
            "--months",
            &months,
            "--format",
            "csv",
            "--out",
        ])
        .arg(&data)
        .status()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}); build it with `cargo build --release --examples`",
                generator.display()
            )
        })?;
    if !status.success() {
        return Err("the generator failed".into());
    }
    let generated_s = started.elapsed().as_secs_f64();
    let stock = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stock_"))
        })
        .ok_or("no stock file generated")?;
    let bytes: u64 = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    let db = dir.path().join("bench.db");
    let started = Instant::now();
    let request = UploadRequest {
        stock: stock.clone(),
        sales: ingest::expand_sales_paths(std::slice::from_ref(&data), &stock)?,
        stock_date: None,
        allow_incomplete_month: false,
        accept_incoherent: false,
    };
    let plan = ingest::plan_upload(
        &request,
        &DataConfig::default(),
        &StoredMonths::default(),
        &|_, _| {},
    )?;
    let planned_s = started.elapsed().as_secs_f64();
    let mut store = Store::open(&db)?;
    store.write_upload(&plan)?;
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
    println!(
        "  peak memory (VmHWM): {}",
        peak_memory().unwrap_or_else(|| "unknown".into())
    );
    println!(
        "  database size: {:.1} MB",
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    Ok(())
}

fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.0} MB", kb / 1024.0))
}
