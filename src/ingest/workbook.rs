//! Excel workbooks through calamine — in a child process when the binary can start one.
//!
//! calamine trusts sizes written inside a file: fuzzed `.xls` input made it panic (caught
//! here) and ask for 1.8 TB at once, which aborts the process — no Rust code can catch
//! that, and a dense range for a cell far down an `.xlsx` can do the same. So the binary
//! parses every workbook in a child (`plastinka __read-workbook`, fed the bytes on stdin,
//! writing one JSON line per row): a crash there is a refusal of the file, not of the run.

use super::read::Cell;
use crate::error::InputError;
use anyhow::{Context, Result};
use calamine::{Data, DataType, Reader};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The hidden subcommand of the child.
pub const CHILD_COMMAND: &str = "__read-workbook";

static ISOLATING_BINARY: OnceLock<PathBuf> = OnceLock::new();

/// `data.workbook_memory_mb`, passed to every child.
static CHILD_MEMORY_MB: AtomicU64 = AtomicU64::new(4096);

/// The address space each child may use from now on (`data.workbook_memory_mb`).
pub fn limit_child_memory(mb: u64) {
    CHILD_MEMORY_MB.store(mb, Ordering::Relaxed);
}

/// Parse workbooks in children of `binary` (the running plastinka) from now on.
pub fn isolate_in(binary: PathBuf) {
    let _ = ISOLATING_BINARY.set(binary);
}

/// Calls `on_row` for every non-empty row of the workbook's only sheet.
pub fn for_each_row(
    path: &Path,
    bytes: &[u8],
    on_row: &mut dyn FnMut(usize, &[Cell]) -> Result<()>,
) -> Result<()> {
    check_unpacked_size(path, bytes)?;
    match ISOLATING_BINARY.get() {
        Some(binary) => in_child(binary, path, bytes, on_row),
        None => in_process(path, bytes, on_row),
    }
}

/// One row as the child writes it: `[row, [cell, …]]`, a cell being `null`, a string, a
/// number or `{"d": "YYYY-MM-DD"}`.
fn encode(row: usize, cells: &[Cell]) -> serde_json::Value {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| match c {
            Cell::Empty => serde_json::Value::Null,
            Cell::Text(t) => serde_json::Value::from(*t),
            Cell::Number(n) => serde_json::Value::from(*n),
            Cell::Date(d) => serde_json::json!({ "d": d.to_string() }),
        })
        .collect();
    serde_json::json!([row, cells])
}

fn decode_row(line: &str) -> Option<(usize, Vec<serde_json::Value>)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let row = value.get(0)?.as_u64()? as usize;
    let cells = value.get(1)?.as_array()?.clone();
    Some((row, cells))
}

fn in_child(
    binary: &Path,
    path: &Path,
    bytes: &[u8],
    on_row: &mut dyn FnMut(usize, &[Cell]) -> Result<()>,
) -> Result<()> {
    let mut child = std::process::Command::new(binary)
        .arg(CHILD_COMMAND)
        .arg(path)
        .arg(CHILD_MEMORY_MB.load(Ordering::Relaxed).to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} to read {}",
                binary.display(),
                path.display()
            )
        })?;
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        anyhow::bail!("the workbook reader has no pipes");
    };
    let result = std::thread::scope(|scope| -> Result<String> {
        scope.spawn(move || {
            let _ = stdin.write_all(bytes); // a child that died early closes the pipe
        });
        let errors = scope.spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let mut outcome = Ok(());
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if outcome.is_err() {
                continue; // drain, so the child can finish
            }
            let Some((row, values)) = decode_row(&line) else {
                outcome = Err(anyhow::anyhow!(
                    "the workbook reader wrote an unreadable line"
                ));
                continue;
            };
            let cells: Vec<Cell> = values
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Cell::Text(s.as_str()),
                    serde_json::Value::Number(n) => Cell::Number(n.as_f64().unwrap_or(f64::NAN)),
                    serde_json::Value::Object(o) => o
                        .get("d")
                        .and_then(|d| d.as_str())
                        .and_then(|d| d.parse().ok())
                        .map_or(Cell::Empty, Cell::Date),
                    _ => Cell::Empty,
                })
                .collect();
            outcome = on_row(row, &cells);
        }
        outcome?;
        Ok(errors.join().unwrap_or_default())
    });
    let status = child.wait()?;
    let errors = result?;
    match status.code() {
        Some(0) => Ok(()),
        Some(2) => {
            Err(InputError::new(errors.trim().trim_start_matches("error: ").to_string()).into())
        }
        _ => Err(InputError::in_file(
            path,
            format!(
                "not a readable Excel workbook: the reader crashed ({status}); the file is damaged, or its sheet needs more than data.workbook_memory_mb ({} MB)",
                CHILD_MEMORY_MB.load(Ordering::Relaxed)
            ),
        )
        .into()),
    }
}

/// The child: reads a workbook from stdin, writes its rows to stdout; exit 2 with the
/// message on stderr when the file is refused.
pub fn serve(path: &Path, memory_mb: Option<u64>) -> i32 {
    if let Some(mb) = memory_mb {
        limit_address_space(mb);
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes) {
        eprintln!("error: {}: cannot read: {e}", path.display());
        return 1;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let result = in_process(path, &bytes, &mut |row, cells| {
        writeln!(out, "{}", encode(row, cells))?;
        Ok(())
    });
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => 0,
        (Err(e), _) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<InputError>()) {
                2
            } else {
                1
            }
        }
        (_, Err(_)) => 1,
    }
}

/// Caps this process's address space, so an allocation past it fails (and the process
/// aborts) instead of the machine running out of memory.
#[cfg(unix)]
fn limit_address_space(mb: u64) {
    let bytes = mb.saturating_mul(1 << 20) as libc::rlim_t;
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct it is given and touches nothing else.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &limit);
    }
}

#[cfg(not(unix))]
fn limit_address_space(_mb: u64) {}

/// An `.xlsx` is a zip: a few MB can unpack to gigabytes. Its directory says how much.
fn check_unpacked_size(path: &Path, bytes: &[u8]) -> Result<()> {
    const LIMIT: u64 = 2_000_000_000;
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return Ok(()); // not a zip: the workbook reader says what it is
    };
    let mut total = 0u64;
    for i in 0..archive.len() {
        if let Ok(entry) = archive.by_index_raw(i) {
            total = total.saturating_add(entry.size());
        }
    }
    if total > LIMIT {
        return Err(InputError::in_file(
            path,
            format!(
                "the workbook unpacks to {} MB, more than the {} MB a shop export could need; refused",
                total / 1_000_000,
                LIMIT / 1_000_000
            ),
        )
        .into());
    }
    Ok(())
}

thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside a guarded third-party parse, whose panic is reported as
/// a refusal of the file (the panic hook stays quiet for it).
pub fn in_guarded_read() -> bool {
    GUARDED.with(|g| g.get())
}

/// Runs a third-party parser that may panic on a damaged file (calamine's `.xls` reader
/// did, on fuzzed input): a panic becomes a refusal naming the file, not a crash.
fn guarded<T>(path: &Path, parse: impl FnOnce() -> Result<T>) -> Result<T> {
    GUARDED.with(|g| g.set(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse));
    GUARDED.with(|g| g.set(false));
    outcome.unwrap_or_else(|_| {
        Err(InputError::in_file(
            path,
            "not a readable Excel workbook (it is damaged: the reader gave up)",
        )
        .into())
    })
}

fn open_sheet(path: &Path, bytes: &[u8]) -> Result<calamine::Range<Data>> {
    let mut workbook = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| InputError::in_file(path, format!("not a readable Excel workbook ({e})")))?;
    let sheets = workbook.sheet_names();
    // A second sheet could hold anything (last month, a pivot…): guessing which one is
    // the export would silently read the wrong data, so more than one is refused.
    if sheets.len() != 1 {
        return Err(InputError::in_file(
            path,
            format!(
                "the workbook has {} sheets ({}); an export must have exactly one",
                sheets.len(),
                sheets.join(", ")
            ),
        )
        .into());
    }
    let range = workbook.worksheet_range(&sheets[0]).map_err(|e| {
        InputError::in_file(path, format!("cannot read sheet «{}»: {e}", sheets[0]))
    })?;
    Ok(range)
}

/// Reads the workbook in this process (panics caught, aborts not).
pub fn in_process(
    path: &Path,
    bytes: &[u8],
    on_row: &mut dyn FnMut(usize, &[Cell]) -> Result<()>,
) -> Result<()> {
    check_unpacked_size(path, bytes)?;
    let range = guarded(path, || open_sheet(path, bytes))?;
    if range.is_empty() {
        return Err(InputError::in_file(path, "the sheet is empty").into());
    }
    let first_row = range.start().map_or(0, |(row, _)| row as usize);
    let mut cells = Vec::new();
    for (offset, row) in range.rows().enumerate() {
        cells.clear();
        for data in row {
            cells.push(match data {
                Data::Empty => Cell::Empty,
                Data::String(s) if s.trim().is_empty() => Cell::Empty,
                Data::String(s) => Cell::Text(s.as_str()),
                Data::DateTimeIso(s) => Cell::Text(s.as_str()),
                Data::Int(i) => Cell::Number(*i as f64),
                Data::Float(f) => Cell::Number(*f),
                Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }),
                Data::DateTime(dt) => match data.as_date() {
                    Some(date) => Cell::Date(date),
                    None => Cell::Number(dt.as_f64()),
                },
                Data::DurationIso(s) => Cell::Text(s.as_str()),
                Data::Error(_) => Cell::Text("#ERROR"),
            });
        }
        if cells.iter().all(|c| *c == Cell::Empty) {
            continue;
        }
        on_row(first_row + offset + 1, &cells)?;
    }
    Ok(())
}
