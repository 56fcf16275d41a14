//! One export row → one typed record, or a counted drop, or an error naming the cell.
//!
//! Drop rules are the original's (original-ml.md §1.2, §1.4): rows without artist,
//! album, price, arrival date or a numeric recording year are dropped — and counted by
//! reason. Any other cell that cannot be read is an error, never a silent drop.

use super::columns::{ColumnMap, Field, Role};
use super::read::Cell;
use chrono::{Duration, NaiveDate};
use serde::Serialize;

/// Why a row was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    MissingArtist,
    MissingAlbum,
    MissingPrice,
    ZeroPrice,
    MissingArrivalDate,
    MissingSaleDate,
    MissingRecordingYear,
    MissingReleaseType,
    ZeroCopies,
}

impl DropReason {
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::MissingArtist => "no artist",
            DropReason::MissingAlbum => "no album",
            DropReason::MissingPrice => "no price",
            DropReason::ZeroPrice => "price is 0",
            DropReason::MissingArrivalDate => "no arrival date",
            DropReason::MissingSaleDate => "no sale date",
            DropReason::MissingRecordingYear => "recording year missing or not a number",
            DropReason::MissingReleaseType => "no release type",
            DropReason::ZeroCopies => "0 copies",
        }
    }
}

/// A readable row. Years are as the file has them; the upload-wide repair of release
/// years and missing covers happens later (`clean`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow {
    pub file: u16,
    pub row: u32,
    pub barcode: Option<String>,
    pub artist: String,
    pub album: String,
    /// `Some(true)` for the shop's `SS` (still sealed), `None` when the cell is empty.
    pub sealed: Option<bool>,
    pub price: f64,
    pub release_type: String,
    pub recording_year: i32,
    pub release_year: Option<i32>,
    pub style: Option<String>,
    pub created: NaiveDate,
    pub sold: Option<NaiveDate>,
    pub copies: u32,
}

pub enum RowOutcome {
    Kept(Box<ParsedRow>),
    Dropped(DropReason),
}

/// A cell that cannot be read: the column's header and what is wrong.
pub type CellError = (&'static str, String);

pub fn parse_row(
    cells: &[Cell],
    columns: &ColumnMap,
    role: Role,
    file: u16,
    row: usize,
) -> Result<RowOutcome, CellError> {
    let get = |field: Field| -> Cell {
        columns
            .position(field)
            .and_then(|i| cells.get(i).copied())
            .unwrap_or(Cell::Empty)
    };
    let err = |field: Field, message: String| (field.header(), message);
    use RowOutcome::Dropped;

    let Some(artist) = text(get(Field::Artist)) else {
        return Ok(Dropped(DropReason::MissingArtist));
    };
    let Some(album) = text(get(Field::Album)) else {
        return Ok(Dropped(DropReason::MissingAlbum));
    };
    let price = match get(Field::Price) {
        Cell::Empty => return Ok(Dropped(DropReason::MissingPrice)),
        cell => parse_price(cell)
            .ok_or_else(|| err(Field::Price, format!("{} is not a price", show(cell))))?,
    };
    if price < 0.0 {
        return Err(err(Field::Price, format!("negative price {price}")));
    }
    if price == 0.0 {
        return Ok(Dropped(DropReason::ZeroPrice));
    }
    let created = match get(Field::Created) {
        Cell::Empty => return Ok(Dropped(DropReason::MissingArrivalDate)),
        cell => parse_date(cell).ok_or_else(|| {
            err(
                Field::Created,
                format!("{} is not a date (dd.mm.yyyy)", show(cell)),
            )
        })?,
    };
    let sold = match (role, get(Field::Sold)) {
        (Role::Stock, _) => None,
        (Role::Sales, Cell::Empty) => return Ok(Dropped(DropReason::MissingSaleDate)),
        (Role::Sales, cell) => Some(parse_date(cell).ok_or_else(|| {
            err(
                Field::Sold,
                format!("{} is not a date (dd.mm.yyyy)", show(cell)),
            )
        })?),
    };
    let Some(recording_year) = parse_year_number(get(Field::RecordingYear)) else {
        return Ok(Dropped(DropReason::MissingRecordingYear));
    };
    let Some(release_type) = text(get(Field::ReleaseType)) else {
        return Ok(Dropped(DropReason::MissingReleaseType));
    };
    let copies = match (role, get(Field::Copies)) {
        (Role::Sales, _) | (Role::Stock, Cell::Empty) => 1,
        (Role::Stock, cell) => match parse_number(cell) {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => n as u32,
            _ => {
                return Err(err(
                    Field::Copies,
                    format!("{} is not a whole number of copies", show(cell)),
                ));
            }
        },
    };
    if copies == 0 {
        return Ok(Dropped(DropReason::ZeroCopies));
    }
    Ok(RowOutcome::Kept(Box::new(ParsedRow {
        file,
        row: row as u32,
        barcode: normalise_barcode(get(Field::Barcode)),
        artist,
        album,
        sealed: text(get(Field::Cover)).map(|c| c == "SS"),
        price,
        release_type,
        recording_year,
        release_year: parse_release_year(get(Field::ReleaseYear)),
        style: text(get(Field::Style)),
        created,
        sold,
        copies,
    })))
}

fn show(cell: Cell) -> String {
    match cell {
        Cell::Empty => "an empty cell".into(),
        Cell::Text(t) => format!("«{t}»"),
        Cell::Number(n) => format!("«{n}»"),
        Cell::Date(d) => format!("the date {d}"),
    }
}

/// Trimmed text with inner runs of spaces collapsed; `None` when empty.
fn text(cell: Cell) -> Option<String> {
    let raw = match cell {
        Cell::Empty => return None,
        Cell::Text(t) => t.to_string(),
        Cell::Number(n) if n.fract() == 0.0 => format!("{}", n as i64),
        Cell::Number(n) => n.to_string(),
        Cell::Date(d) => d.format("%d.%m.%Y").to_string(),
    };
    let joined = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// Spaces removed and leading zeros stripped, as the original does; `None` if nothing is left.
pub fn normalise_barcode(cell: Cell) -> Option<String> {
    let raw = match cell {
        Cell::Number(n) if n.fract() == 0.0 && n >= 0.0 => format!("{}", n as u64),
        other => text(other)?,
    };
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let stripped = compact.trim_start_matches('0');
    let lower = stripped.to_lowercase();
    if stripped.is_empty() || lower == "none" || lower == "nan" {
        None
    } else {
        Some(stripped.to_string())
    }
}

fn parse_number(cell: Cell) -> Option<f64> {
    match cell {
        Cell::Number(n) => Some(n),
        Cell::Text(t) => {
            let cleaned: String = t
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| if c == ',' { '.' } else { c })
                .collect();
            cleaned.parse::<f64>().ok().filter(|n| n.is_finite())
        }
        _ => None,
    }
}

/// Rubles: `1290`, `1 290,50`, `1290.5 руб.`, `₽1290`. Decimals are kept (the original truncated).
pub fn parse_price(cell: Cell) -> Option<f64> {
    match cell {
        Cell::Text(t) => {
            let trimmed = t
                .trim()
                .trim_end_matches('.')
                .trim_end_matches("руб")
                .trim_end_matches("р")
                .trim_matches('₽');
            parse_number(Cell::Text(trimmed))
        }
        other => parse_number(other),
    }
}

fn parse_year_number(cell: Cell) -> Option<i32> {
    let year = parse_number(cell)?;
    (1000.0..3000.0).contains(&year).then_some(year as i32)
}

/// The original's repair (original-ml.md §1.4): only text starting with 19 or 20 counts;
/// a short or sloppy year is completed from its leading digits (`199x`→1999,
/// `201?`→2010, `20`→2000).
pub fn parse_release_year(cell: Cell) -> Option<i32> {
    let raw = match cell {
        Cell::Number(n) if n.is_finite() && n >= 0.0 => format!("{}", n.trunc() as i64),
        Cell::Text(t) => t.trim().to_string(),
        _ => return None,
    };
    if !(raw.starts_with("19") || raw.starts_with("20")) {
        return None;
    }
    let digits: String = raw
        .chars()
        .take_while(char::is_ascii_digit)
        .take(4)
        .collect();
    let pad = if digits.starts_with('2') { '0' } else { '9' };
    let completed: String = digits
        .chars()
        .chain(std::iter::repeat(pad))
        .take(4)
        .collect();
    completed.parse().ok()
}

/// `dd.mm.yyyy` (the export), ISO `yyyy-mm-dd`, `dd/mm/yyyy`, each optionally followed
/// by a time; Excel date cells; Excel serial numbers of plausible dates.
pub fn parse_date(cell: Cell) -> Option<NaiveDate> {
    let date = match cell {
        Cell::Date(d) => Some(d),
        Cell::Number(n) if (20000.0..80000.0).contains(&n) => {
            NaiveDate::from_ymd_opt(1899, 12, 30).map(|epoch| epoch + Duration::days(n as i64))
        }
        Cell::Text(t) => {
            let token = t.trim().split([' ', 'T']).next().unwrap_or("");
            ["%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y.%m.%d"]
                .iter()
                .find_map(|format| NaiveDate::parse_from_str(token, format).ok())
        }
        _ => None,
    };
    date.filter(|d| (1900..2100).contains(&chrono::Datelike::year(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn dates_in_every_export_format() {
        assert_eq!(parse_date(Cell::Text("05.03.2024")), Some(d(2024, 3, 5)));
        assert_eq!(
            parse_date(Cell::Text("2024-03-06 00:00:00")),
            Some(d(2024, 3, 6))
        );
        assert_eq!(
            parse_date(Cell::Text("2024-03-06T10:00")),
            Some(d(2024, 3, 6))
        );
        assert_eq!(parse_date(Cell::Text("07/03/2024")), Some(d(2024, 3, 7)));
        assert_eq!(parse_date(Cell::Number(45356.0)), Some(d(2024, 3, 5)));
        assert_eq!(parse_date(Cell::Text("31.02.2024")), None);
        assert_eq!(parse_date(Cell::Text("вчера")), None);
    }

    #[test]
    fn prices_and_barcodes() {
        assert_eq!(parse_price(Cell::Text("1 290,50")), Some(1290.5));
        assert_eq!(parse_price(Cell::Text("2490 руб.")), Some(2490.0));
        assert_eq!(parse_price(Cell::Text("дорого")), None);
        assert_eq!(
            normalise_barcode(Cell::Text(" 0460 1234 ")),
            Some("4601234".into())
        );
        assert_eq!(
            normalise_barcode(Cell::Number(4601234567890.0)),
            Some("4601234567890".into())
        );
        assert_eq!(normalise_barcode(Cell::Text("None")), None);
    }

    #[test]
    fn release_years_are_completed_like_the_original() {
        assert_eq!(parse_release_year(Cell::Text("199x")), Some(1999));
        assert_eq!(parse_release_year(Cell::Text("201?")), Some(2010));
        assert_eq!(parse_release_year(Cell::Text("1985.0")), Some(1985));
        assert_eq!(parse_release_year(Cell::Text("20")), Some(2000));
        assert_eq!(parse_release_year(Cell::Number(1985.0)), Some(1985));
        assert_eq!(parse_release_year(Cell::Text("85")), None);
    }
}
