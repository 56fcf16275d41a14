//! Which files an upload reads, and reading each one into parsed rows.

use super::columns::{ColumnMap, Field, Role};
use super::read::{self, Cell};
use super::rows::{self, DropReason, ParsedRow, PendingDate, RowOutcome};
use super::{Progress, SourceFile, UploadRequest, dates};
use crate::digest::sha256_hex;
use crate::error::InputError;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A sales argument may be a file or a directory of exports (`.xlsx`, `.xls`, `.csv`);
/// a directory's listing skips the stock snapshot, so both may live side by side.
/// Unrelated files in a directory are skipped; a directory with no export is refused.
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
                        && !name.starts_with('.')
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
    Ok(files)
}

pub(super) struct FileRows {
    pub source: SourceFile,
    pub rows: Vec<ParsedRow>,
    pub dropped: BTreeMap<DropReason, usize>,
    pub problems: Vec<String>,
    pub has_copies_column: bool,
}

/// How many rows above the header may hold titles before a file counts as headerless.
const TITLE_ROWS: usize = 20;

fn header_text(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(t) => t.to_string(),
        Cell::Number(n) => n.to_string(),
        Cell::Date(d) => d.to_string(),
    }
}

fn read_one(
    path: &Path,
    role: Role,
    file: u16,
    max_bytes: u64,
    progress: Progress,
) -> Result<FileRows> {
    let bytes = read::load(path, max_bytes)?;
    let sha256 = sha256_hex(&bytes);
    let size = bytes.len() as u64;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    let mut columns: Option<ColumnMap> = None;
    let mut first_row: Option<Vec<String>> = None;
    let mut rows_seen = 0usize;
    let mut pending: Vec<(usize, PendingDate)> = Vec::new();
    let mut out = FileRows {
        source: SourceFile {
            path: path.to_path_buf(),
            role,
            sha256,
            bytes: size,
            rows_read: 0,
            rows_kept: 0,
        },
        rows: Vec::new(),
        dropped: BTreeMap::new(),
        problems: Vec::new(),
        has_copies_column: false,
    };
    read::for_each_row(path, &bytes, |row, cells| {
        let Some(map) = &columns else {
            // The header is the first row that names the export's columns; title lines
            // above it (a report name, a date) are skipped.
            let texts: Vec<String> = cells.iter().map(header_text).collect();
            rows_seen += 1;
            if ColumnMap::is_header(&texts, role) {
                columns = Some(ColumnMap::from_header(path, &texts, role)?);
            } else if rows_seen >= TITLE_ROWS {
                return ColumnMap::from_header(path, first_row.as_ref().unwrap_or(&texts), role)
                    .map(|_| ());
            } else if first_row.is_none() {
                first_row = Some(texts);
            }
            return Ok(());
        };
        out.source.rows_read += 1;
        if out.source.rows_read.is_multiple_of(50_000) {
            progress(&name, out.source.rows_read);
        }
        if cells.len() < map.required_width(role) {
            out.problems.push(format!(
                "{}: row {row}: {} of the header's columns are there, {} are needed — a line cut short or a quote left open",
                path.display(),
                cells.len(),
                map.required_width(role)
            ));
            return Ok(());
        }
        match rows::parse_row(cells, map, role, file, row) {
            Ok(RowOutcome::Kept(parsed, dates)) => {
                pending.extend(dates.into_iter().map(|d| (out.rows.len(), d)));
                out.rows.push(*parsed);
            }
            Ok(RowOutcome::Dropped(reason)) => *out.dropped.entry(reason).or_default() += 1,
            Err((column, message)) => out.problems.push(format!(
                "{}: row {row}, column «{column}»: {message}",
                path.display()
            )),
        }
        Ok(())
    })?;
    if columns.is_none() {
        match first_row {
            Some(texts) => {
                ColumnMap::from_header(path, &texts, role)?;
            }
            None => return Err(InputError::in_file(path, "the file is empty").into()),
        }
    }
    out.has_copies_column = columns.as_ref().is_some_and(|c| c.has(Field::Copies));
    if let Err(problems) = dates::resolve(path, &mut out.rows, &pending) {
        out.problems.extend(problems);
    }
    out.source.rows_kept = out.rows.len();
    progress(&name, out.source.rows_read);
    Ok(out)
}

/// Reads every file (in parallel), keeping the stock snapshot first.
pub(super) fn read_all(request: &UploadRequest, progress: Progress) -> Result<Vec<FileRows>> {
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
                    let result = read_one(path, *role, i as u16, request.max_file_bytes, progress);
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
