//! Which way round a file writes its dates, and the dates in file names.
//!
//! `03.04.2026` is 3 April in the shop's export, but `03/04/2026` is 4 March in an export
//! from American software. Guessing per cell would put a month-first file whose days are
//! all ≤ 12 into the wrong months without a word, so the order is decided per file and
//! column from all its values:
//! 1. a value whose first number exceeds 12 proves day-first, one whose second does proves
//!    month-first (both in one column: refused, naming a row of each);
//! 2. otherwise, for the sale dates, the month in the file's name (`sales_2026-04.csv`:
//!    every sale must fall in April) when only one order fits;
//! 3. otherwise the other date column of the same file, if it was decided;
//! 4. otherwise dotted dates are read day-first, the export's own `dd.mm.yyyy` (as are
//!    dates that read the same both ways), and slashed or dashed ones are refused with
//!    the reason.

use super::columns::Field;
use super::read::Cell;
use super::rows::{ParsedRow, PendingDate};
use crate::month::Month;
use chrono::{Duration, NaiveDate};
use std::path::Path;

/// Which of the two leading numbers of `a.b.yyyy` is the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    DayFirst,
    MonthFirst,
}

/// The numbers of an `a.b.yyyy` (or `a/b/yyyy`, `a-b-yyyy`) date as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatePair {
    pub a: u32,
    pub b: u32,
    pub year: i32,
    /// `.` is the shop export's own `dd.mm.yyyy`; `/` and `-` are written both ways.
    pub dotted: bool,
}

impl DatePair {
    pub fn resolve(self, order: DateOrder) -> Option<NaiveDate> {
        let (day, month) = match order {
            DateOrder::DayFirst => (self.a, self.b),
            DateOrder::MonthFirst => (self.b, self.a),
        };
        NaiveDate::from_ymd_opt(self.year, month, day)
            .filter(|d| (1900..2100).contains(&chrono::Datelike::year(d)))
    }

    pub fn show(self) -> String {
        let sep = if self.dotted { '.' } else { '/' };
        format!("{:02}{sep}{:02}{sep}{}", self.a, self.b, self.year)
    }
}

/// A date cell: a definite date, a pair whose order is still open, or not a date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DateCell {
    Definite(NaiveDate),
    Pair(DatePair),
    Invalid,
}

/// Stand-in for a date until its column's order is decided.
pub const UNDECIDED: NaiveDate = NaiveDate::MIN;

/// Reads a date cell: Excel date cells and serial numbers and ISO `yyyy-mm-dd` are
/// definite; `a.b.yyyy`, `a/b/yyyy` and `a-b-yyyy` are pairs whose order the column
/// decides (a time after any of them is ignored).
pub fn date_cell(cell: Cell) -> DateCell {
    let in_range = |d: NaiveDate| (1900..2100).contains(&chrono::Datelike::year(&d));
    match cell {
        Cell::Date(d) if in_range(d) => DateCell::Definite(d),
        Cell::Number(n) if (20000.0..80000.0).contains(&n) => {
            match NaiveDate::from_ymd_opt(1899, 12, 30).map(|e| e + Duration::days(n as i64)) {
                Some(d) if in_range(d) => DateCell::Definite(d),
                _ => DateCell::Invalid,
            }
        }
        Cell::Text(t) => {
            let token = t.trim().split([' ', 'T']).next().unwrap_or("");
            let parts: Vec<&str> = token.split(['.', '/', '-']).collect();
            let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
            let (Some(numbers), [first, second, third]) = (numbers, parts.as_slice()) else {
                return DateCell::Invalid;
            };
            let separator = token.chars().find(|c| matches!(c, '.' | '/' | '-'));
            if first.len() == 4 && second.len() <= 2 && third.len() <= 2 {
                // yyyy-mm-dd (and yyyy.mm.dd): nobody writes the day second.
                return match NaiveDate::from_ymd_opt(numbers[0] as i32, numbers[1], numbers[2]) {
                    Some(d) if in_range(d) => DateCell::Definite(d),
                    _ => DateCell::Invalid,
                };
            }
            if first.len() <= 2 && second.len() <= 2 && third.len() == 4 {
                let pair = DatePair {
                    a: numbers[0],
                    b: numbers[1],
                    year: numbers[2] as i32,
                    dotted: separator == Some('.'),
                };
                // Neither order makes a date: not a date at all.
                if pair.resolve(DateOrder::DayFirst).is_none()
                    && pair.resolve(DateOrder::MonthFirst).is_none()
                {
                    return DateCell::Invalid;
                }
                return DateCell::Pair(pair);
            }
            DateCell::Invalid
        }
        _ => DateCell::Invalid,
    }
}

/// A date typed by a person (`--stock-date`, `--as-of`): ISO, or the export's `dd.mm.yyyy`.
pub fn parse_date(cell: Cell) -> Option<NaiveDate> {
    match date_cell(cell) {
        DateCell::Definite(d) => Some(d),
        DateCell::Pair(pair) if pair.dotted => pair.resolve(DateOrder::DayFirst),
        _ => None,
    }
}

/// A date found in a file name: a month, or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameDate {
    Month(Month),
    Day(NaiveDate),
}

/// `sales_2026-04.csv` → April 2026; `stock_2026-11-01.xlsx` and `остатки_01.11.2026.xlsx`
/// → 1 November 2026 (numbers before the year are day then month, the Russian order).
pub fn date_in_name(path: &Path) -> Option<NameDate> {
    let stem = path.file_stem()?.to_string_lossy();
    // Runs of digits joined by single separators.
    let mut groups: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut rest: &str = &stem;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            current.push(&rest[..digits]);
            rest = &rest[digits..];
            let mut chars = rest.chars();
            match chars.next() {
                Some('-' | '_' | '.') if chars.next().is_some_and(|c| c.is_ascii_digit()) => {
                    rest = &rest[1..];
                }
                _ => groups.push(std::mem::take(&mut current)),
            }
        } else {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            let skip = rest.chars().next().map_or(1, char::len_utf8);
            rest = &rest[skip..];
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    let number = |s: &str| s.parse::<u32>().ok();
    groups.iter().rev().find_map(|g| {
        let lens: Vec<usize> = g.iter().map(|p| p.len()).collect();
        match lens.as_slice() {
            [4, 2, 2] => {
                NaiveDate::from_ymd_opt(number(g[0])? as i32, number(g[1])?, number(g[2])?)
                    .map(NameDate::Day)
            }
            [2, 2, 4] => {
                NaiveDate::from_ymd_opt(number(g[2])? as i32, number(g[1])?, number(g[0])?)
                    .map(NameDate::Day)
            }
            [4, 2] => Month::new(number(g[0])? as i32, number(g[1])?).map(NameDate::Month),
            [2, 4] => Month::new(number(g[1])? as i32, number(g[0])?).map(NameDate::Month),
            _ => None,
        }
    })
}

/// Evidence one column gives about its order.
struct Evidence {
    field: Field,
    day_first: Option<(u32, DatePair)>,
    month_first: Option<(u32, DatePair)>,
    pairs: Vec<DatePair>,
    all_dotted: bool,
}

impl Evidence {
    fn of(field: Field, rows: &[ParsedRow], pending: &[(usize, PendingDate)]) -> Self {
        let mut e = Evidence {
            field,
            day_first: None,
            month_first: None,
            pairs: Vec::new(),
            all_dotted: true,
        };
        for &(i, p) in pending.iter().filter(|(_, p)| p.field == field) {
            let row = rows[i].row;
            if p.pair.a > 12 && e.day_first.is_none() {
                e.day_first = Some((row, p.pair));
            }
            if p.pair.b > 12 && e.month_first.is_none() {
                e.month_first = Some((row, p.pair));
            }
            e.all_dotted &= p.pair.dotted;
            e.pairs.push(p.pair);
        }
        e
    }

    /// Rule 1: what the values prove (both orders: an error).
    fn proven(&self, path: &Path) -> Result<Option<DateOrder>, String> {
        match (self.day_first, self.month_first) {
            (Some((r1, p1)), Some((r2, p2))) => Err(format!(
                "{}: column «{}» mixes day-first and month-first dates (row {r1}: {}, row {r2}: {}); export it again with one date format",
                path.display(),
                self.field.header(),
                p1.show(),
                p2.show()
            )),
            (Some(_), None) => Ok(Some(DateOrder::DayFirst)),
            (None, Some(_)) => Ok(Some(DateOrder::MonthFirst)),
            (None, None) => Ok(None),
        }
    }

    /// Rule 2, for sale dates: a sales file named after its month holds only that month's
    /// sales. (An arrival date says too little: an incoherent copy may postdate a stock
    /// file's date.)
    fn named(&self, path: &Path) -> Option<DateOrder> {
        let Some(NameDate::Month(month)) = date_in_name(path) else {
            return None;
        };
        if self.field != Field::Sold || self.pairs.is_empty() {
            return None;
        }
        let fits = |order: DateOrder| {
            self.pairs
                .iter()
                .all(|p| p.resolve(order).is_some_and(|d| Month::of(d) == month))
        };
        match (fits(DateOrder::DayFirst), fits(DateOrder::MonthFirst)) {
            (true, false) => Some(DateOrder::DayFirst),
            (false, true) => Some(DateOrder::MonthFirst),
            _ => None,
        }
    }

    /// Rule 4: the export's own dotted `dd.mm.yyyy`, or dates that read the same both ways.
    fn default(&self) -> Option<DateOrder> {
        (self.all_dotted || self.pairs.iter().all(|p| p.a == p.b)).then_some(DateOrder::DayFirst)
    }
}

/// Decides the order of each date column of one file (the rules above) and writes the
/// dates into the rows. `pending[i]` belongs to `rows[i.0]`. Errors are `file: row,
/// column: message` lines.
pub fn resolve(
    path: &Path,
    rows: &mut [ParsedRow],
    pending: &[(usize, PendingDate)],
) -> Result<(), Vec<String>> {
    let evidence = [Field::Created, Field::Sold].map(|f| Evidence::of(f, rows, pending));
    let orders = decide(path, &evidence)?;
    let mut problems = Vec::new();
    for &(i, p) in pending {
        let order = orders[usize::from(p.field == Field::Sold)].unwrap_or(DateOrder::DayFirst);
        let row = &mut rows[i];
        match p.pair.resolve(order) {
            Some(date) if p.field == Field::Sold => row.sold = Some(date),
            Some(date) => row.created = date,
            None => problems.push(format!(
                "{}: row {}, column «{}»: {} is not a date read {} like the rest of the column",
                path.display(),
                row.row,
                p.field.header(),
                p.pair.show(),
                order_name(order)
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The order of [arrival, sale] dates, or why it cannot be told.
fn decide(path: &Path, evidence: &[Evidence; 2]) -> Result<[Option<DateOrder>; 2], Vec<String>> {
    let mut problems = Vec::new();
    let mut orders = [None, None];
    for (slot, e) in evidence.iter().enumerate() {
        match e.proven(path) {
            Ok(order) => orders[slot] = order.or_else(|| e.named(path)),
            Err(problem) => problems.push(problem),
        }
    }
    if let [Some(created), Some(sold)] = orders
        && created != sold
    {
        problems.push(format!(
            "{}: the arrival dates are written {} and the sale dates {}: one file, two date formats; export it again with one",
            path.display(),
            order_name(created),
            order_name(sold)
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for slot in 0..2 {
        let e = &evidence[slot];
        if orders[slot].is_some() || e.pairs.is_empty() {
            continue;
        }
        // Rule 3, then rule 4.
        orders[slot] = orders[1 - slot].or_else(|| e.default());
        if orders[slot].is_none() {
            problems.push(format!(
                "{}: column «{}»: cannot tell whether {} is day-first or month-first — every date in the column has both numbers ≤ 12 and the file name names no month they must fall in; name the file after its month (sales_2026-04.csv) or export dates as dd.mm.yyyy",
                path.display(),
                e.field.header(),
                e.pairs[0].show()
            ));
        }
    }
    if problems.is_empty() {
        Ok(orders)
    } else {
        Err(problems)
    }
}

fn order_name(order: DateOrder) -> &'static str {
    match order {
        DateOrder::DayFirst => "day-first",
        DateOrder::MonthFirst => "month-first",
    }
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
        assert_eq!(parse_date(Cell::Number(45356.0)), Some(d(2024, 3, 5)));
        assert_eq!(parse_date(Cell::Text("31.02.2024")), None);
        assert_eq!(parse_date(Cell::Text("вчера")), None);
        // Slashed dates are written both ways: only the column can tell.
        let DateCell::Pair(pair) = date_cell(Cell::Text("07/03/2024")) else {
            panic!("a pair");
        };
        assert_eq!(pair.resolve(DateOrder::DayFirst), Some(d(2024, 3, 7)));
        assert_eq!(pair.resolve(DateOrder::MonthFirst), Some(d(2024, 7, 3)));
        let DateCell::Pair(pair) = date_cell(Cell::Text("10/13/2026")) else {
            panic!("a pair");
        };
        assert_eq!(pair.resolve(DateOrder::DayFirst), None);
        assert_eq!(date_cell(Cell::Text("13/13/2026")), DateCell::Invalid);
        assert_eq!(date_cell(Cell::Number(1000.0)), DateCell::Invalid);
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn dates_in_file_names() {
        let month = |y, m| Some(NameDate::Month(Month::new(y, m).unwrap()));
        assert_eq!(date_in_name(Path::new("sales_2026-04.csv")), month(2026, 4));
        assert_eq!(
            date_in_name(Path::new("x/sales_04.2026.xlsx")),
            month(2026, 4)
        );
        assert_eq!(
            date_in_name(Path::new("stock_2026-11-01.xlsx")),
            Some(NameDate::Day(day(2026, 11, 1)))
        );
        assert_eq!(
            date_in_name(Path::new("остатки_01.11.2026.xlsx")),
            Some(NameDate::Day(day(2026, 11, 1)))
        );
        assert_eq!(date_in_name(Path::new("export.csv")), None);
        assert_eq!(date_in_name(Path::new("report_v2.csv")), None);
    }
}
