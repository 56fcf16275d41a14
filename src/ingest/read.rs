//! Reading shop exports: `.xlsx`/`.xls` through calamine, `.csv` in UTF-8 (BOM or not)
//! or Windows-1251 with `,`, `;` or tab separators, all detected from the content.

use crate::error::InputError;
use anyhow::Result;
use calamine::{Data, DataType, Reader};
use chrono::NaiveDate;
use std::path::Path;

/// One cell as the file holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Number(f64),
    Date(NaiveDate),
}

/// Calls `on_row(row_number, header, cells)` for every data row of `path`. Row numbers
/// are what a spreadsheet shows: the header is row 1. The header is passed along so the
/// caller can map columns once (it is the same slice every call).
pub fn for_each_row(
    path: &Path,
    mut on_row: impl FnMut(usize, &[String], &[Cell]) -> Result<()>,
) -> Result<()> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "xlsx" | "xls" | "xlsm" => read_workbook(path, &mut on_row),
        "csv" | "txt" => read_csv(path, &mut on_row),
        other => Err(InputError::in_file(
            path,
            format!("unsupported file type «.{other}»; expected .xlsx, .xls or .csv"),
        )
        .into()),
    }
}

fn read_workbook(
    path: &Path,
    on_row: &mut impl FnMut(usize, &[String], &[Cell]) -> Result<()>,
) -> Result<()> {
    let mut workbook = calamine::open_workbook_auto(path)
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
    let first_row = range.start().map_or(0, |(row, _)| row as usize);
    let mut rows = range.rows();
    let header: Vec<String> = match rows.next() {
        Some(cells) => cells.iter().map(|c| c.to_string()).collect(),
        None => return Err(InputError::in_file(path, "the sheet is empty").into()),
    };
    let mut cells = Vec::with_capacity(header.len());
    for (offset, row) in rows.enumerate() {
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
        // +1 for 1-based numbering, +1 for the header row.
        on_row(first_row + offset + 2, &header, &cells)?;
    }
    Ok(())
}

fn read_csv(
    path: &Path,
    on_row: &mut impl FnMut(usize, &[String], &[Cell]) -> Result<()>,
) -> Result<()> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))?;
    let text = decode(path, &bytes)?;
    let separator = detect_separator(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(Ok(record)) => record.iter().map(str::to_string).collect(),
        Some(Err(e)) => {
            return Err(InputError::in_file(path, format!("unreadable header: {e}")).into());
        }
        None => return Err(InputError::in_file(path, "the file is empty").into()),
    };
    for record in records {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            InputError::in_file(path, format!("row {line}: malformed CSV: {e}"))
        })?;
        let row = record.position().map_or(0, |p| p.line() as usize);
        let cells: Vec<Cell> = record
            .iter()
            .map(|field| {
                if field.trim().is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(field)
                }
            })
            .collect();
        if cells.iter().all(|c| *c == Cell::Empty) {
            continue;
        }
        on_row(row, &header, &cells)?;
    }
    Ok(())
}

/// UTF-8 (a BOM is dropped) when the bytes are valid UTF-8, otherwise Windows-1251 —
/// the two encodings Russian shop software exports. Binary junk is refused.
fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, str>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err(InputError::in_file(path, "binary data, not a CSV text file").into());
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let (text, _, _) = encoding_rs::WINDOWS_1251.decode(bytes);
    Ok(text)
}

/// The separator is the candidate that splits the header line into the most fields
/// (quoted text is skipped, so a `,` inside «"Цена, руб."» does not count).
fn detect_separator(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let count = |sep: char| {
        let mut quoted = false;
        header
            .chars()
            .filter(|&c| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && c == sep
            })
            .count()
    };
    [b';', b'\t', b',']
        .into_iter()
        .max_by_key(|&sep| (count(sep as char), sep == b','))
        .unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separator_ignores_quoted_commas() {
        assert_eq!(detect_separator("Штрихкод;\"Цена, руб.\";Альбом\n"), b';');
        assert_eq!(detect_separator("a\tb\tc\n"), b'\t');
        assert_eq!(detect_separator("a,\"b;c\",d\n"), b',');
    }

    #[test]
    fn decodes_cp1251_and_bom() {
        let p = Path::new("x.csv");
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode("Альбом;Цена");
        assert_eq!(decode(p, &cp1251).unwrap(), "Альбом;Цена");
        assert_eq!(decode(p, "\u{feff}Альбом".as_bytes()).unwrap(), "Альбом");
        assert!(decode(p, b"PK\x03\x04\x00\x00").is_err());
    }
}
