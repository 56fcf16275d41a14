//! Files → cleaned rows → the three laws → daily stock → monthly features: everything an
//! upload computes before the store writes it. Nothing here touches the database.

pub mod clean;
pub mod columns;
pub mod features;
pub mod laws;
pub mod read;
pub mod rows;

use crate::config::DataConfig;
use crate::error::InputError;
use anyhow::Result;
use clean::Product;
use columns::{ColumnMap, Field, Role};
use features::{MonthlyFeatures, Window};
use rows::{DropReason, ParsedRow, RowOutcome};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
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
    pub stock_date: Option<chrono::NaiveDate>,
    pub allow_incomplete_month: bool,
    pub accept_incoherent: bool,
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
    /// Hash of the inputs and options; an identical re-upload has the same one.
    pub fingerprint: String,
}

/// Progress callback: (file name, rows read so far in it).
pub type Progress<'a> = &'a (dyn Fn(&str, usize) + Sync);

/// A sales argument may be a file or a directory of exports (`.xlsx`, `.xls`, `.csv`);
/// a directory's listing skips the stock snapshot, so both may live side by side.
pub fn expand_sales_paths(paths: &[PathBuf], stock: &Path) -> Result<Vec<PathBuf>> {
    let stock = std::fs::canonicalize(stock).unwrap_or_else(|_| stock.to_path_buf());
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| InputError::in_file(path, format!("cannot list directory: {e}")))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    let ext = p
                        .extension()
                        .and_then(|e| e.to_str())
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    p.is_file()
                        && !name.starts_with("~$")
                        && matches!(ext.as_str(), "xlsx" | "xls" | "csv")
                        && std::fs::canonicalize(p).map_or(true, |c| c != stock)
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(InputError::in_file(
                    path,
                    "directory holds no .xlsx, .xls or .csv file",
                )
                .into());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(InputError::new("no sales files given (--sales)").into());
    }
    Ok(files)
}

struct FileRows {
    source: SourceFile,
    rows: Vec<ParsedRow>,
    dropped: BTreeMap<DropReason, usize>,
    problems: Vec<String>,
    has_copies_column: bool,
}

fn read_one(path: &Path, role: Role, file: u16, progress: Progress) -> Result<FileRows> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))?;
    let sha256 = sha256_hex(&bytes);
    drop(bytes);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    let mut columns: Option<ColumnMap> = None;
    let mut out = FileRows {
        source: SourceFile {
            path: path.to_path_buf(),
            role,
            sha256,
            bytes: 0,
            rows_read: 0,
            rows_kept: 0,
        },
        rows: Vec::new(),
        dropped: BTreeMap::new(),
        problems: Vec::new(),
        has_copies_column: false,
    };
    out.source.bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    read::for_each_row(path, |row, header, cells| {
        let map = match &columns {
            Some(map) => map,
            None => columns.insert(ColumnMap::from_header(path, header, role)?),
        };
        out.source.rows_read += 1;
        if out.source.rows_read.is_multiple_of(50_000) {
            progress(&name, out.source.rows_read);
        }
        match rows::parse_row(cells, map, role, file, row) {
            Ok(RowOutcome::Kept(parsed)) => out.rows.push(*parsed),
            Ok(RowOutcome::Dropped(reason)) => *out.dropped.entry(reason).or_default() += 1,
            Err((column, message)) => out.problems.push(format!(
                "{}: row {row}, column «{column}»: {message}",
                path.display()
            )),
        }
        Ok(())
    })?;
    out.has_copies_column = columns.as_ref().is_some_and(|c| c.has(Field::Copies));
    if out.source.rows_read == 0 {
        return Err(InputError::in_file(path, "no data rows under the header").into());
    }
    out.source.rows_kept = out.rows.len();
    progress(&name, out.source.rows_read);
    Ok(out)
}

/// Reads every file (in parallel), keeping the stock snapshot first.
fn read_all(request: &UploadRequest, progress: Progress) -> Result<Vec<FileRows>> {
    let mut jobs: Vec<(PathBuf, Role)> = vec![(request.stock.clone(), Role::Stock)];
    jobs.extend(request.sales.iter().map(|p| (p.clone(), Role::Sales)));
    if jobs.len() > u16::MAX as usize {
        return Err(InputError::new("too many files in one upload").into());
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<FileRows>>> = (0..jobs.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((path, role)) = jobs.get(i) else {
                        break;
                    };
                    let result = read_one(path, *role, i as u16, progress);
                    if let Ok(mut slots) = slots.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a file reader stopped unexpectedly"))))
        .collect()
}

/// Reads, cleans, checks and computes an upload. `stored` is what the store holds.
pub fn plan_upload(
    request: &UploadRequest,
    config: &DataConfig,
    stored: &laws::StoredMonths,
    progress: Progress,
) -> Result<UploadPlan> {
    let read = read_all(request, progress)?;
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for file in &read {
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
    let mut warnings = Vec::new();
    if !read[0].has_copies_column {
        warnings.push(format!(
            "{}: no «Экземпляры» column; every row counted as one copy",
            read[0].source.path.display()
        ));
    }
    let mut dropped: BTreeMap<DropReason, usize> = BTreeMap::new();
    let mut files = Vec::with_capacity(read.len());
    let mut all_rows: Vec<ParsedRow> = Vec::new();
    for file in read {
        for (reason, n) in file.dropped {
            *dropped.entry(reason).or_default() += n;
        }
        all_rows.extend(file.rows);
        files.push(file.source);
    }
    let rows_read = files.iter().map(|f| f.rows_read).sum();
    let rows_kept = all_rows.len();

    let window = laws::window(
        &all_rows,
        &files,
        request.stock_date,
        request.allow_incomplete_month,
        stored,
    )?;
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
    let fingerprint = fingerprint(&files, &window, request);
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
        fingerprint,
    })
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

fn fingerprint(files: &[SourceFile], window: &Window, request: &UploadRequest) -> String {
    let mut parts: Vec<String> = files
        .iter()
        .map(|f| format!("{:?}:{}", f.role, f.sha256))
        .collect();
    parts.sort();
    parts.push(format!(
        "stock_date={};partial={};incoherent={}",
        window.stock_date, request.allow_incomplete_month, request.accept_incoherent
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

/// Lower-case hex SHA-256, as recorded for every uploaded file.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
