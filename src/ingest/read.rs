//! Reading shop exports: `.xlsx`/`.xls` through calamine (`workbook`), `.csv` in UTF-8
//! (BOM or not) or Windows-1251 with `,`, `;` or tab separators, all detected from the
//! content.

use crate::error::InputError;
use anyhow::Result;
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

/// Reads a file once, refusing what is not a plain file of a sane size before a byte is
/// read: a FIFO would block forever, `/dev/zero` would grow memory without bound, and a
/// directory or a symlink loop has nothing to read. `max_bytes` is `data.max_file_mb`;
/// the read itself stops there too, so a file growing meanwhile cannot pass it. Hashing
/// and parsing then use these same bytes.
pub fn load(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| InputError::in_file(path, format!("cannot read: {e}"));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a pipe, socket or device)"
        };
        return Err(InputError::in_file(
            path,
            format!("{what}; give an exported .xlsx, .xls or .csv file"),
        )
        .into());
    }
    let too_big = |size: u64| {
        InputError::in_file(
            path,
            format!(
                "{} MB is larger than data.max_file_mb ({} MB); a shop export is far smaller — raise the setting if it really is one",
                size / 1_000_000,
                max_bytes / 1_000_000
            ),
        )
    };
    if meta.len() > max_bytes {
        return Err(too_big(meta.len()).into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(max_bytes.saturating_add(1))
                .read_to_end(&mut bytes)
        })
        .map_err(cannot)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(bytes.len() as u64).into());
    }
    Ok(bytes)
}

/// Calls `on_row(row_number, cells)` for every non-empty row of `bytes`, the contents of
/// `path` (whose extension says the format), the header included. Row numbers are what a
/// spreadsheet shows (the first row is 1).
pub fn for_each_row(
    path: &Path,
    bytes: &[u8],
    mut on_row: impl FnMut(usize, &[Cell]) -> Result<()>,
) -> Result<()> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "xlsx" | "xls" | "xlsm" => super::workbook::for_each_row(path, bytes, &mut on_row),
        "csv" | "txt" => read_csv(path, bytes, &mut on_row),
        other => Err(InputError::in_file(
            path,
            format!("unsupported file type «.{other}»; expected .xlsx, .xls or .csv"),
        )
        .into()),
    }
}

fn read_csv(
    path: &Path,
    bytes: &[u8],
    on_row: &mut impl FnMut(usize, &[Cell]) -> Result<()>,
) -> Result<()> {
    let text = decode(path, bytes)?;
    if text.trim().is_empty() {
        return Err(InputError::in_file(path, "the file is empty").into());
    }
    let separator = detect_separator(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut widest = 0usize;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            InputError::in_file(path, format!("row {line}: malformed CSV: {e}"))
        })?;
        let row = record.position().map_or(0, |p| p.line() as usize);
        // A row written with another separator reads as one long field.
        if record.len() == 1 && widest > 2 {
            let line = &record[0];
            if let Some(other) = [b';', b'\t', b',']
                .into_iter()
                .filter(|&c| c != separator)
                .find(|&c| line.matches(c as char).count() + 1 >= widest)
            {
                return Err(InputError::in_file(
                    path,
                    format!(
                        "row {row}: this row is separated by «{}» but the rows above by «{}»: the file mixes separators; export it again with one",
                        show_separator(other),
                        show_separator(separator)
                    ),
                )
                .into());
            }
        }
        widest = widest.max(record.len());
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
        on_row(row, &cells)?;
    }
    Ok(())
}

fn show_separator(separator: u8) -> &'static str {
    match separator {
        b';' => ";",
        b'\t' => "tab",
        _ => ",",
    }
}

/// UTF-8 (a BOM is dropped) when the bytes are valid UTF-8, otherwise Windows-1251 —
/// the two encodings Russian shop software exports. Binary junk is refused.
fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, str>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err(InputError::in_file(path, "binary data, not a CSV text file").into());
    }
    let broken = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(std::borrow::Cow::Borrowed(text)),
        Err(e) => e.valid_up_to(),
    };
    // A header in UTF-8 (Cyrillic and all) with a later row that is not: two exports pasted
    // together. Reading it all as Windows-1251 would garble every row, so say where.
    // The bytes before the first invalid one are valid UTF-8; non-ASCII among them means
    // rows written in UTF-8 (Cyrillic) before a row that is not.
    if !bytes[..broken].is_ascii() {
        let row = bytes[..broken].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(InputError::in_file(
            path,
            format!("row {row} is not UTF-8 like the rows above it: the file mixes encodings (UTF-8 and Windows-1251); export it again in one"),
        )
        .into());
    }
    let (text, _, _) = encoding_rs::WINDOWS_1251.decode(bytes);
    Ok(text)
}

/// The separator is the candidate that splits the header line into the most fields
/// (quoted text is skipped, so a `,` inside «"Цена, руб."» does not count). The header
/// is the first of the first lines that names a column the export always has; title
/// lines above it are skipped.
fn detect_separator(text: &str) -> u8 {
    let marker = |line: &str| {
        let lower = line.to_lowercase();
        ["исполнитель", "artist", "альбом", "album"]
            .iter()
            .any(|m| lower.contains(m))
    };
    let header = text
        .lines()
        .take(20)
        .find(|l| marker(l))
        .or_else(|| text.lines().next())
        .unwrap_or("");
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
        assert_eq!(
            detect_separator("Отчёт; октябрь\nИсполнитель,Альбом,Цена\n"),
            b','
        );
    }

    #[test]
    fn decodes_cp1251_and_bom() {
        let p = Path::new("x.csv");
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode("Альбом;Цена");
        assert_eq!(decode(p, &cp1251).unwrap(), "Альбом;Цена");
        assert_eq!(decode(p, "\u{feff}Альбом".as_bytes()).unwrap(), "Альбом");
        assert!(decode(p, b"PK\x03\x04\x00\x00").is_err());
        let mut mixed = "Альбом;Цена\nКино;1\n".as_bytes().to_vec();
        mixed.extend_from_slice(&cp1251);
        let err = decode(p, &mixed).unwrap_err().to_string();
        assert!(
            err.contains("row 3") && err.contains("mixes encodings"),
            "{err}"
        );
    }
}
