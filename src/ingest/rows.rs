//! One export row → one typed record, or a counted drop, or an error naming the cell.
//!
//! Drop rules are the original's (original-ml.md §1.2, §1.4): rows without artist,
//! album, price, arrival date or a numeric recording year are dropped — and counted by
//! reason. Any other cell that cannot be read is an error, never a silent drop.

use super::columns::{ColumnMap, Field, Role};
use super::dates::{DateCell, UNDECIDED, date_cell};
pub use super::dates::{DateOrder, DatePair};
use super::read::Cell;
use chrono::NaiveDate;
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
    /// The row, and its dates whose day/month order the whole column decides.
    Kept(Box<ParsedRow>, Vec<PendingDate>),
    Dropped(DropReason),
}

/// A `dd.mm.yyyy`-shaped date whose order (day first or month first) is decided per file
/// and column from all its values; until then the row holds a placeholder date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PendingDate {
    pub field: Field,
    pub pair: DatePair,
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
    check_repeated_columns(cells, columns)?;

    let Some(artist) = text(get(Field::Artist)) else {
        return Ok(Dropped(DropReason::MissingArtist));
    };
    let Some(album) = text(get(Field::Album)) else {
        return Ok(Dropped(DropReason::MissingAlbum));
    };
    let price = match read_price(get(Field::Price))? {
        Price::Positive(price) => price,
        Price::Drop(reason) => return Ok(Dropped(reason)),
    };
    let mut pending = Vec::new();
    let mut date = |field: Field, cell: Cell| -> Result<NaiveDate, CellError> {
        match date_cell(cell) {
            DateCell::Definite(d) => Ok(d),
            DateCell::Pair(pair) => {
                pending.push(PendingDate { field, pair });
                Ok(UNDECIDED)
            }
            DateCell::Invalid => Err(err(
                field,
                format!("{} is not a date (dd.mm.yyyy)", show(cell)),
            )),
        }
    };
    let created = match get(Field::Created) {
        Cell::Empty => return Ok(Dropped(DropReason::MissingArrivalDate)),
        cell => date(Field::Created, cell)?,
    };
    let sold = match (role, get(Field::Sold)) {
        (Role::Stock, _) => None,
        (Role::Sales, Cell::Empty) => return Ok(Dropped(DropReason::MissingSaleDate)),
        (Role::Sales, cell) => Some(date(Field::Sold, cell)?),
    };
    let Some(recording_year) = parse_year_number(get(Field::RecordingYear)) else {
        return Ok(Dropped(DropReason::MissingRecordingYear));
    };
    let Some(release_type) = text(get(Field::ReleaseType)) else {
        return Ok(Dropped(DropReason::MissingReleaseType));
    };
    let copies = match role {
        Role::Sales => 1,
        Role::Stock => read_copies(get(Field::Copies))?,
    };
    if copies == 0 {
        return Ok(Dropped(DropReason::ZeroCopies));
    }
    let barcode = normalise_barcode(get(Field::Barcode)).map_err(|m| err(Field::Barcode, m))?;
    Ok(RowOutcome::Kept(
        Box::new(ParsedRow {
            file,
            row: row as u32,
            barcode,
            artist,
            album,
            // The shop writes SS for a still-sealed copy; the case varies by who typed it.
            sealed: text(get(Field::Cover)).map(|c| c.eq_ignore_ascii_case("SS")),
            price,
            release_type,
            recording_year,
            release_year: parse_release_year(get(Field::ReleaseYear)),
            style: text(get(Field::Style)),
            created,
            sold,
            copies,
        }),
        pending,
    ))
}

/// A header may name a column twice; each row must then say the same in both.
fn check_repeated_columns(cells: &[Cell], columns: &ColumnMap) -> Result<(), CellError> {
    let cell = |i: Option<usize>| i.and_then(|i| cells.get(i).copied()).unwrap_or(Cell::Empty);
    for &(field, position) in columns.duplicates() {
        let (first, copy) = (cell(columns.position(field)), cell(Some(position)));
        if !same_cell(copy, first) {
            return Err((
                field.header(),
                format!(
                    "the header names «{}» twice (columns {} and {}) and this row disagrees: {} vs {}",
                    field.header(),
                    columns.position(field).map_or(0, |p| p + 1),
                    position + 1,
                    show(first),
                    show(copy)
                ),
            ));
        }
    }
    Ok(())
}

/// What a row's price cell says.
#[derive(Debug, PartialEq)]
enum Price {
    Positive(f64),
    /// Empty or zero: the row is dropped, and counted.
    Drop(DropReason),
}

/// The price cell; one that is not a price or is negative is an error.
fn read_price(cell: Cell) -> Result<Price, CellError> {
    let header = Field::Price.header();
    let price = match cell {
        Cell::Empty => return Ok(Price::Drop(DropReason::MissingPrice)),
        cell => {
            parse_price(cell).ok_or_else(|| (header, format!("{} is not a price", show(cell))))?
        }
    };
    if price < 0.0 {
        return Err((header, format!("negative price {price}")));
    }
    if price == 0.0 {
        return Ok(Price::Drop(DropReason::ZeroPrice));
    }
    Ok(Price::Positive(price))
}

/// The snapshot's copies cell: a whole number; empty means one copy.
fn read_copies(cell: Cell) -> Result<u32, CellError> {
    match cell {
        Cell::Empty => Ok(1),
        cell => match parse_number(cell) {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(n as u32),
            _ => Err((
                Field::Copies.header(),
                format!("{} is not a whole number of copies", show(cell)),
            )),
        },
    }
}

fn same_cell(a: Cell, b: Cell) -> bool {
    match (a, b) {
        (Cell::Text(x), Cell::Text(y)) => x.trim() == y.trim(),
        (x, y) => x == y,
    }
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

/// Spaces removed and leading zeros stripped, as the original does; `Ok(None)` if nothing
/// is left. A barcode a spreadsheet turned into a number is taken back when it is exact
/// (`4600123`, `4600123.0`) and refused when digits were lost (`4.6E+12`, a fraction, a
/// number past 2^53), so two products are never merged under a rounded code.
pub fn normalise_barcode(cell: Cell) -> Result<Option<String>, String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let raw = match cell {
        Cell::Number(n) if n.fract() == 0.0 && (0.0..EXACT).contains(&n) => format!("{}", n as u64),
        Cell::Number(n) => {
            return Err(format!(
                "«{n}» is not an exact barcode (a fraction or too many digits for a number cell); format the column as text and export again"
            ));
        }
        other => match text(other) {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let lower = compact.to_lowercase();
    if lower.contains('e') && lower.parse::<f64>().is_ok_and(f64::is_finite) {
        return Err(format!(
            "«{compact}» is a barcode in scientific notation: its digits are lost; format the column as text and export again"
        ));
    }
    // `4600123.0`: a number cell exported as text.
    let compact = match compact.split_once(['.', ',']) {
        Some((digits, zeros))
            if !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !zeros.is_empty()
                && zeros.bytes().all(|b| b == b'0') =>
        {
            digits.to_string()
        }
        Some((digits, fraction))
            if digits.bytes().all(|b| b.is_ascii_digit())
                && fraction.bytes().all(|b| b.is_ascii_digit())
                && !fraction.is_empty() =>
        {
            return Err(format!(
                "«{compact}» is not a barcode (a fractional number)"
            ));
        }
        _ => compact,
    };
    let stripped = compact.trim_start_matches('0');
    let lower = stripped.to_lowercase();
    if stripped.is_empty() || lower == "none" || lower == "nan" {
        Ok(None)
    } else {
        Ok(Some(stripped.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Empty and zero prices drop the row; unreadable and negative ones are errors that
    /// name the price column.
    #[test]
    fn price_cells_keep_drop_or_refuse_the_row() {
        assert_eq!(
            read_price(Cell::Text("1 290,50")),
            Ok(Price::Positive(1290.5))
        );
        assert_eq!(
            read_price(Cell::Empty),
            Ok(Price::Drop(DropReason::MissingPrice))
        );
        assert_eq!(
            read_price(Cell::Number(0.0)),
            Ok(Price::Drop(DropReason::ZeroPrice))
        );
        let (column, message) = read_price(Cell::Number(-5.0)).unwrap_err();
        assert_eq!(
            (column, message.as_str()),
            (Field::Price.header(), "negative price -5")
        );
        let (column, message) = read_price(Cell::Text("дорого")).unwrap_err();
        assert_eq!(column, Field::Price.header());
        assert!(message.contains("is not a price"), "{message}");
    }

    /// A snapshot's copies: empty is one copy; fractions, negatives and text are errors.
    #[test]
    fn copies_cells_are_whole_numbers() {
        assert_eq!(read_copies(Cell::Empty), Ok(1));
        assert_eq!(read_copies(Cell::Number(3.0)), Ok(3));
        assert_eq!(read_copies(Cell::Text("0")), Ok(0));
        for bad in [Cell::Number(1.5), Cell::Number(-1.0), Cell::Text("три")] {
            let (column, message) = read_copies(bad).unwrap_err();
            assert_eq!(column, Field::Copies.header());
            assert!(
                message.contains("not a whole number of copies"),
                "{message}"
            );
        }
    }

    #[test]
    fn prices_and_barcodes() {
        assert_eq!(parse_price(Cell::Text("1 290,50")), Some(1290.5));
        assert_eq!(parse_price(Cell::Text("2490 руб.")), Some(2490.0));
        assert_eq!(parse_price(Cell::Text("дорого")), None);
        let code = |cell| normalise_barcode(cell);
        assert_eq!(code(Cell::Text(" 0460 1234 ")), Ok(Some("4601234".into())));
        assert_eq!(
            code(Cell::Number(4601234567890.0)),
            Ok(Some("4601234567890".into()))
        );
        assert_eq!(code(Cell::Text("4600123.0")), Ok(Some("4600123".into())));
        assert_eq!(code(Cell::Text("None")), Ok(None));
        assert!(
            code(Cell::Text("4.6E+12"))
                .unwrap_err()
                .contains("scientific")
        );
        assert!(code(Cell::Text("4600123.5")).is_err());
        assert!(code(Cell::Number(4600123.5)).is_err());
        assert!(code(Cell::Number(1e17)).is_err());
        // Catalogue numbers with letters stay barcodes.
        assert_eq!(code(Cell::Text("LP-0042e")), Ok(Some("LP-0042e".into())));
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
