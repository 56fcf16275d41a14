//! Rendering a [`Report`]: a terminal table, CSV, an Excel workbook or JSON.
//! Headers are English keys or the shop's Russian headers (`--lang`); JSON always uses the
//! English keys, as it is for machines.

use super::{Column, Language, Report, Value};
use anyhow::{Context, Result};
use comfy_table::{ContentArrangement, Table};
use rust_xlsxwriter::{Format, Workbook, Worksheet};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Xlsx,
    Json,
}

fn header(column: &Column, language: Language) -> &str {
    match language {
        Language::En => &column.key,
        Language::Ru => &column.russian,
    }
}

/// A terminal table fitted to the terminal's width (comfy-table wraps cells).
pub fn table(report: &Report, language: Language) -> String {
    let mut out = String::new();
    for (title, columns, rows) in std::iter::once((&report.title, &report.columns, &report.rows))
        .chain(report.appendices.iter().map(|(t, c, r)| (t, c, r)))
    {
        let mut table = Table::new();
        table.set_content_arrangement(ContentArrangement::Dynamic);
        table.set_header(
            columns
                .iter()
                .map(|c| header(c, language))
                .collect::<Vec<_>>(),
        );
        for row in rows {
            table.add_row(row.iter().map(Value::display).collect::<Vec<_>>());
        }
        out.push_str(&format!("{title}\n{table}\n"));
    }
    out
}

pub fn csv(report: &Report, language: Language) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(report.columns.iter().map(|c| header(c, language)))?;
    for row in &report.rows {
        writer.write_record(row.iter().map(|v| match v {
            // Full precision in CSV: it is read by programs.
            Value::Number(x, _) => format!("{x}"),
            other => other.display(),
        }))?;
    }
    writer.into_inner().context("writing CSV")
}

pub fn json(report: &Report) -> Result<Vec<u8>> {
    let to_objects = |columns: &[Column], rows: &[Vec<Value>]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|row| {
                let map: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        let value = match v {
                            Value::Text(t) => serde_json::Value::from(t.clone()),
                            Value::Int(i) => serde_json::Value::from(*i),
                            Value::Number(x, _) if x.is_finite() => serde_json::Value::from(*x),
                            _ => serde_json::Value::Null,
                        };
                        (c.key.clone(), value)
                    })
                    .collect();
                serde_json::Value::Object(map)
            })
            .collect()
    };
    let mut document = serde_json::json!({
        "title": report.title,
        "meta": report.meta,
        "rows": to_objects(&report.columns, &report.rows),
    });
    for (title, columns, rows) in &report.appendices {
        document[title.to_lowercase().replace(' ', "_")] =
            serde_json::Value::from(to_objects(columns, rows));
    }
    let mut bytes = serde_json::to_vec_pretty(&document)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A workbook a buyer opens in Excel: typed cells, a bold header row, frozen header and
/// first columns, column widths set; each appendix on its own sheet.
pub fn xlsx(report: &Report, language: Language) -> Result<Vec<u8>> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    write_sheet(sheet, "forecast", &report.columns, &report.rows, language)?;
    for (title, columns, rows) in &report.appendices {
        let sheet = book.add_worksheet();
        write_sheet(sheet, title, columns, rows, language)?;
    }
    Ok(book.save_to_buffer()?)
}

fn write_sheet(
    sheet: &mut Worksheet,
    name: &str,
    columns: &[Column],
    rows: &[Vec<Value>],
    language: Language,
) -> Result<()> {
    let name: String = name
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    sheet.set_name(&name)?;
    let bold = Format::new().set_bold().set_text_wrap();
    let mut widths: Vec<usize> = columns
        .iter()
        .map(|c| header(c, language).chars().count().min(30))
        .collect();
    for (c, column) in columns.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, header(column, language), &bold)?;
    }
    let formats: Vec<Format> = (0..=3)
        .map(|d| {
            Format::new().set_num_format(if d == 0 {
                "0".to_string()
            } else {
                format!("0.{}", "0".repeat(d))
            })
        })
        .collect();
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, value) in row.iter().enumerate() {
            let col = c as u16;
            match value {
                Value::Text(t) => {
                    sheet.write_string(r, col, t)?;
                }
                Value::Int(i) => {
                    sheet.write_number(r, col, *i as f64)?;
                }
                Value::Number(x, d) if x.is_finite() => {
                    sheet.write_number_with_format(r, col, *x, &formats[(*d).min(3)])?;
                }
                _ => {}
            }
            widths[c] = widths[c].max(value.display().chars().count().min(40));
        }
    }
    for (c, width) in widths.iter().enumerate() {
        sheet.set_column_width(c as u16, (*width as f64 + 2.0).max(6.0))?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

/// Writes `bytes` to `path`, or to stdout when there is no path.
pub fn write_out(bytes: &[u8], path: Option<&std::path::Path>) -> Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
        }
        None => Ok(crate::output::bytes(bytes)?),
    }
}

/// A path a report cannot be written to, refused before hours of work: its
/// folder must exist and take a new file, and the path must not be a folder or a
/// read-only file.
pub fn refuse_unwritable(path: &Path, flag: &str) -> Result<()> {
    let refuse = |why: String| -> Result<()> {
        Err(crate::error::InputError::new(format!("{flag} {}: {why}", path.display())).into())
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return refuse(format!("the folder {} does not exist", folder.display()));
    }
    if path.is_dir() || path.file_name().is_none() {
        return refuse("is a folder, not a file".into());
    }
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return refuse("is a symbolic link; name the file itself".into());
    }
    if path.metadata().is_ok_and(|m| m.permissions().readonly()) {
        return refuse("the file is read-only".into());
    }
    let probe = folder.join(format!(".plastinka-probe-{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => refuse(format!("cannot write in {} ({e})", folder.display())),
    }
}

/// A report file written in full under a hidden name in its folder, not yet in place.
/// Dropped without [`Partial::put_in_place`], it is removed.
pub struct Partial {
    hidden: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Partial {
    pub fn write(path: &Path, bytes: &[u8]) -> Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{}: not a file name", path.display()))?;
        let hidden = path.with_file_name(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        let partial = Self {
            hidden,
            path: path.to_path_buf(),
        };
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial.hidden)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            });
        written.map_err(|e| anyhow::anyhow!("cannot write {} ({e})", path.display()))?;
        Ok(partial)
    }

    pub fn put_in_place(self) -> Result<()> {
        std::fs::rename(&self.hidden, &self.path)
            .map_err(|e| anyhow::anyhow!("cannot write {} ({e})", self.path.display()))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // After a rename there is nothing left to remove.
        let _ = std::fs::remove_file(&self.hidden);
    }
}
