//! Files → cleaned rows → the three laws → daily stock → monthly features: everything an
//! upload computes before the store writes it. Nothing here touches the database.

pub mod clean;
pub mod columns;
pub mod dates;
pub mod features;
mod files;
pub mod laws;
pub mod read;
pub mod rows;
pub mod workbook;

use crate::config::DataConfig;
use crate::digest::sha256_hex;
use crate::error::InputError;
use crate::month::Month;
use anyhow::Result;
use clean::Product;
use columns::Role;
use features::{MonthlyFeatures, Window};
pub use files::expand_sales_paths;
use rows::{DropReason, ParsedRow};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// One input file as recorded with the upload.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFile {
    pub path: PathBuf,
    pub role: Role,
    pub sha256: String,
    pub bytes: u64,
    pub rows_read: usize,
    pub rows_kept: usize,
}

/// What the user asked to upload.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub stock: PathBuf,
    pub sales: Vec<PathBuf>,
    /// `--stock-date`; without it the date in the stock file's name, else the day after
    /// the latest sale.
    pub stock_date: Option<chrono::NaiveDate>,
    /// Months stored with no sales on purpose (the shop was closed).
    pub empty_months: BTreeSet<Month>,
    pub allow_incomplete_month: bool,
    pub accept_incoherent: bool,
    /// Dates after this day are refused (`--as-of` moves it).
    pub today: chrono::NaiveDate,
    /// `data.max_file_mb` in bytes.
    pub max_file_bytes: u64,
}

/// A snapshot line: copies of a product on the shelf at the snapshot date.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotLine {
    pub product: u32,
    pub copies: u32,
    pub mean_price: f64,
}

/// Everything the store needs to write one upload.
pub struct UploadPlan {
    pub files: Vec<SourceFile>,
    pub window: Window,
    pub products: Vec<Product>,
    pub monthly: Vec<MonthlyFeatures>,
    pub snapshot: Vec<SnapshotLine>,
    pub rows_read: usize,
    pub rows_kept: usize,
    pub dropped: BTreeMap<DropReason, usize>,
    pub incoherent_rows: usize,
    pub warnings: Vec<String>,
    /// Months of the window stored empty on purpose.
    pub empty_months: BTreeSet<Month>,
    /// Hash of the inputs, options and the `[data]` settings that shape stored rows; an
    /// identical re-upload has the same one.
    pub fingerprint: String,
}

/// Progress callback: (file name, rows read so far in it).
pub type Progress<'a> = &'a (dyn Fn(&str, usize) + Sync);

/// Reads, cleans, checks and computes an upload. `stored` is what the store holds.
pub fn plan_upload(
    request: &UploadRequest,
    config: &DataConfig,
    stored: &laws::StoredMonths,
    progress: Progress,
) -> Result<UploadPlan> {
    let read = files::read_all(request, progress)?;
    refuse_duplicate_or_unreadable(&read)?;
    let mut warnings = snapshot_warnings(&read);
    let (files, mut all_rows, dropped) = merge(read);
    let rows_read = files.iter().map(|f| f.rows_read).sum();
    let rows_kept = all_rows.len();

    let window = laws::window(&all_rows, &files, request, stored)?;
    let incoherent_rows = laws::check_coherence(
        &mut all_rows,
        &files,
        window.stock_date,
        request.accept_incoherent,
    )?;
    if incoherent_rows > 0 {
        warnings.push(format!(
            "{incoherent_rows} incoherent row(s) accepted (--accept-incoherent): arrival dates clamped"
        ));
    }
    if !window.last_month_complete() {
        warnings.push(format!(
            "month {} is unfinished (snapshot dated {}); it is stored as partial and will be replaced by a later upload",
            window.last, window.stock_date
        ));
    }

    let cleaned = clean::clean(&mut all_rows, config, window.stock_date);
    let mut products = cleaned.products;
    let snapshot = snapshot_lines(&all_rows, &cleaned.product_of_row, products.len());
    for line in &snapshot {
        products[line.product as usize].price = line.mean_price;
    }
    for product in &mut products {
        product.derive(&config.price_category_edges);
    }
    let prices: Vec<f64> = products.iter().map(|p| p.price).collect();
    let reconstruction = features::reconstruct(
        &all_rows,
        &cleaned.product_of_row,
        &prices,
        &window,
        config.confidence_saturation_copies,
    );
    if let Some(&(product, day)) = reconstruction.negative.first() {
        return Err(InputError::new(format!(
            "upload refused (law 3, snapshot coherence): reconstructed stock of {} — {} goes negative on {day} ({} product(s) affected)",
            products[product as usize].artist,
            products[product as usize].album,
            reconstruction.negative.len()
        ))
        .into());
    }
    if cleaned.release_years_imputed > 0 {
        warnings.push(format!(
            "{} release year(s) imputed from the mean re-issue gap",
            cleaned.release_years_imputed
        ));
    }
    if cleaned.covers_imputed > 0 {
        warnings.push(format!(
            "{} empty «Конверт» cell(s) filled with the record's usual condition",
            cleaned.covers_imputed
        ));
    }
    let fingerprint = fingerprint(&files, &window, request, config);
    Ok(UploadPlan {
        files,
        window,
        products,
        monthly: reconstruction.monthly,
        snapshot,
        rows_read,
        rows_kept,
        dropped,
        incoherent_rows,
        warnings,
        empty_months: request.empty_months.clone(),
        fingerprint,
    })
}

/// Refuses the upload when two files are the same export or any cell cannot be read
/// (all such cells listed).
fn refuse_duplicate_or_unreadable(read: &[files::FileRows]) -> Result<()> {
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for file in read {
        if let Some(other) = seen.insert(&file.source.sha256, &file.source.path) {
            return Err(InputError::new(format!(
                "{} and {} have identical content; each export may be given once",
                other.display(),
                file.source.path.display()
            ))
            .into());
        }
    }
    let problems: Vec<String> = read
        .iter()
        .flat_map(|f| f.problems.iter().cloned())
        .collect();
    if !problems.is_empty() {
        return Err(InputError::many(
            &format!(
                "{} cell(s) cannot be read; nothing was stored",
                problems.len()
            ),
            &problems,
        )
        .into());
    }
    Ok(())
}

/// What the stock snapshot (the first file) lacks that the upload works around.
fn snapshot_warnings(read: &[files::FileRows]) -> Vec<String> {
    let Some(stock) = read.first() else {
        return Vec::new();
    };
    let path = stock.source.path.display();
    if stock.source.rows_read == 0 {
        vec![format!(
            "{path}: the stock snapshot has no rows: the shelf is recorded as empty"
        )]
    } else if !stock.has_copies_column {
        vec![format!(
            "{path}: no «Экземпляры» column; every row counted as one copy"
        )]
    } else {
        Vec::new()
    }
}

/// The files' descriptions, all their rows in file order, and the rows dropped per reason.
fn merge(
    read: Vec<files::FileRows>,
) -> (Vec<SourceFile>, Vec<ParsedRow>, BTreeMap<DropReason, usize>) {
    let mut dropped: BTreeMap<DropReason, usize> = BTreeMap::new();
    let mut files = Vec::with_capacity(read.len());
    let mut rows: Vec<ParsedRow> = Vec::new();
    for file in read {
        for (reason, n) in file.dropped {
            *dropped.entry(reason).or_default() += n;
        }
        rows.extend(file.rows);
        files.push(file.source);
    }
    (files, rows, dropped)
}

fn snapshot_lines(
    rows: &[ParsedRow],
    product_of_row: &[u32],
    n_products: usize,
) -> Vec<SnapshotLine> {
    let mut copies = vec![0u32; n_products];
    let mut value = vec![0f64; n_products];
    for (row, &p) in rows.iter().zip(product_of_row) {
        if row.sold.is_none() {
            copies[p as usize] += row.copies;
            value[p as usize] += row.price * row.copies as f64;
        }
    }
    (0..n_products)
        .filter(|&p| copies[p] > 0)
        .map(|p| SnapshotLine {
            product: p as u32,
            copies: copies[p],
            mean_price: value[p] / copies[p] as f64,
        })
        .collect()
}

/// Everything that shapes the stored rows: the files' content, the options, and the
/// `[data]` settings (price edges, years, …) — change any and a re-upload is not a no-op.
fn fingerprint(
    files: &[SourceFile],
    window: &Window,
    request: &UploadRequest,
    config: &DataConfig,
) -> String {
    let mut parts: Vec<String> = files
        .iter()
        .map(|f| format!("{:?}:{}", f.role, f.sha256))
        .collect();
    parts.sort();
    parts.push(format!(
        "stock_date={};partial={};incoherent={};empty={:?}",
        window.stock_date,
        request.allow_incomplete_month,
        request.accept_incoherent,
        request.empty_months
    ));
    let mut data = config.clone();
    data.max_file_mb = 0; // how big a file may be does not shape its rows
    parts.push(format!(
        "data={}",
        serde_json::to_string(&data).unwrap_or_default()
    ));
    sha256_hex(parts.join("\n").as_bytes())
}

/// Compares the stock this upload reconstructs at the start of its first month with the
/// stored end-of-month stock of the month before. They differ when copies were written
/// off, returned or miscounted — worth knowing, not a reason to refuse.
pub fn continuity_warning(
    plan: &UploadPlan,
    stored_end: &HashMap<String, i64>,
    before: crate::month::Month,
) -> Option<String> {
    let mut start: HashMap<&str, i64> = HashMap::new();
    for f in plan.monthly.iter().filter(|f| f.month == plan.window.first) {
        start.insert(
            plan.products[f.product as usize].key.as_str(),
            f.stock_start,
        );
    }
    let differing = stored_end
        .iter()
        .filter(|(key, end)| start.get(key.as_str()).copied().unwrap_or(0) != **end)
        .count()
        + start
            .iter()
            .filter(|(key, s)| **s != 0 && !stored_end.contains_key(**key))
            .count();
    (differing > 0).then(|| {
        format!(
            "stock continuity: {differing} product(s) start {} with a different stock than the stored end of {before} (write-offs, returns or a miscounted snapshot)",
            plan.window.first
        )
    })
}
