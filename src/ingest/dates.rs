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
use super::rows::{DateOrder, DatePair, ParsedRow, PendingDate};
use crate::month::Month;
use chrono::NaiveDate;
use std::path::Path;

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
#[derive(Default)]
struct Evidence {
    day_first: Option<(u32, DatePair)>,
    month_first: Option<(u32, DatePair)>,
    pairs: Vec<DatePair>,
    all_dotted: bool,
}

/// Decides the order of each date column of one file and writes the dates into the rows.
/// `pending[i]` belongs to `rows[i.0]`. Errors are `file: row, column: message` lines.
pub fn resolve(
    path: &Path,
    rows: &mut [ParsedRow],
    pending: &[(usize, PendingDate)],
) -> Result<(), Vec<String>> {
    let fields = [Field::Created, Field::Sold];
    let mut evidence: [Evidence; 2] = Default::default();
    for e in &mut evidence {
        e.all_dotted = true;
    }
    for &(i, p) in pending {
        let slot = usize::from(p.field == Field::Sold);
        let e = &mut evidence[slot];
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
    let mut problems = Vec::new();
    let mut orders: [Option<DateOrder>; 2] = [None, None];
    for (slot, e) in evidence.iter().enumerate() {
        match (e.day_first, e.month_first) {
            (Some((r1, p1)), Some((r2, p2))) => problems.push(format!(
                "{}: column «{}» mixes day-first and month-first dates (row {r1}: {}, row {r2}: {}); export it again with one date format",
                path.display(),
                fields[slot].header(),
                p1.show(),
                p2.show()
            )),
            (Some(_), None) => orders[slot] = Some(DateOrder::DayFirst),
            (None, Some(_)) => orders[slot] = Some(DateOrder::MonthFirst),
            (None, None) => {}
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
    // The name: a sales file named after its month holds only that month's sales. (An
    // arrival date says too little: an incoherent copy may postdate a stock file's date.)
    if let Some(NameDate::Month(month)) = date_in_name(path)
        && orders[1].is_none()
        && !evidence[1].pairs.is_empty()
    {
        let fits = |order: DateOrder| {
            evidence[1]
                .pairs
                .iter()
                .all(|p| p.resolve(order).is_some_and(|d| Month::of(d) == month))
        };
        orders[1] = match (fits(DateOrder::DayFirst), fits(DateOrder::MonthFirst)) {
            (true, false) => Some(DateOrder::DayFirst),
            (false, true) => Some(DateOrder::MonthFirst),
            _ => None,
        };
    }
    for slot in 0..2 {
        if orders[slot].is_some() || evidence[slot].pairs.is_empty() {
            continue;
        }
        let e = &evidence[slot];
        orders[slot] = orders[1 - slot].or_else(|| {
            // Both orders give the same dates (03.03), or the export's own dotted form.
            (e.all_dotted || e.pairs.iter().all(|p| p.a == p.b)).then_some(DateOrder::DayFirst)
        });
        if orders[slot].is_none() {
            problems.push(format!(
                "{}: column «{}»: cannot tell whether {} is day-first or month-first — every date in the column has both numbers ≤ 12 and the file name names no month they must fall in; name the file after its month (sales_2026-04.csv) or export dates as dd.mm.yyyy",
                path.display(),
                fields[slot].header(),
                e.pairs[0].show()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for &(i, p) in pending {
        let slot = usize::from(p.field == Field::Sold);
        let order = orders[slot].unwrap_or(DateOrder::DayFirst);
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

fn order_name(order: DateOrder) -> &'static str {
    match order {
        DateOrder::DayFirst => "day-first",
        DateOrder::MonthFirst => "month-first",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
