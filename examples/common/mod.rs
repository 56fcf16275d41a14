//! What the benchmark examples share: a generated shop on disk and the peak memory.
#![allow(dead_code)]

use plastinka::ingest::{self, UploadRequest};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `--name value` from the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Runs the `generate` example beside this binary: CSV exports of `products` × `months`
/// into `dir/data`. Returns the upload request for them.
pub fn generate(
    dir: &Path,
    products: &str,
    months: &str,
) -> Result<UploadRequest, Box<dyn std::error::Error>> {
    let data = dir.join("data");
    let generator = std::env::current_exe()?.with_file_name("generate");
    let status = Command::new(&generator)
        .args([
            "--products",
            products,
            "--months",
            months,
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
    let stock: PathBuf = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stock_"))
        })
        .ok_or("no stock file generated")?;
    Ok(UploadRequest {
        sales: ingest::expand_sales_paths(std::slice::from_ref(&data), &stock)?,
        stock,
        stock_date: None,
        empty_months: Default::default(),
        allow_incomplete_month: false,
        accept_incoherent: false,
        today: chrono::Local::now().date_naive(),
        max_file_bytes: u64::MAX,
    })
}

/// Stores a planned upload in a new database at `path`.
pub fn store_upload(
    path: &Path,
    plan: &ingest::UploadPlan,
) -> Result<(), Box<dyn std::error::Error>> {
    let session = plastinka::store::Store::begin_write(path, "bench", Default::default())?;
    session.write_upload(plan)?;
    session.commit()?;
    Ok(())
}

/// Opens a database for reading.
pub fn open(path: &Path) -> Result<plastinka::store::Store, Box<dyn std::error::Error>> {
    plastinka::store::Store::open_read_only(path, Default::default())?
        .ok_or_else(|| format!("no database at {}", path.display()).into())
}

/// This process's peak resident memory (VmHWM, Linux).
pub fn peak_memory() -> String {
    let read = || -> Option<String> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(format!("{:.0} MB", kb / 1024.0))
    };
    read().unwrap_or_else(|| "unknown".into())
}

/// Resets this process's VmHWM to its current resident memory (Linux: `clear_refs` 5),
/// so the next `peak_memory` is the peak of what ran since.
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
