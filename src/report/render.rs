//! Rendering a [`Report`]: a terminal table, CSV, an Excel workbook or JSON.
//! Headers are English keys or the shop's Russian headers (`--lang`); JSON always uses the
//! English keys, as it is for machines.

use super::{Column, Language, Report, Value};
use anyhow::{Context, Result};
use comfy_table::{ContentArrangement, Table};
use rust_xlsxwriter::{Format, Workbook, Worksheet};

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
