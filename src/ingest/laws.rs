//! The three laws of the monthly store (DESIGN.md "Data rules"), checked before anything
//! is written:
//!
//! 1. stored months form one unbroken sequence of complete months;
//! 2. the months inside one upload are contiguous (every month has sales);
//! 3. the stock snapshot is coherent with the sales: no sale on or after the snapshot
//!    date, no copy sold before it arrived, no snapshot copy that arrives after the
//!    snapshot — each of these would make the reconstructed stock negative.

use super::dates::{NameDate, date_in_name};
use super::features::Window;
use super::rows::ParsedRow;
use super::{SourceFile, UploadRequest};
use crate::error::InputError;
use crate::month::{Month, describe};
use anyhow::Result;
use chrono::{Duration, NaiveDate};
use std::collections::BTreeSet;

/// What the store already holds, as far as the laws care.
#[derive(Debug, Clone, Default)]
pub struct StoredMonths {
    /// (month, complete), ascending.
    pub months: Vec<(Month, bool)>,
}

/// Where the snapshot date came from, to say so when it is the problem.
fn snapshot_date(rows: &[ParsedRow], request: &UploadRequest) -> Result<(NaiveDate, String)> {
    if let Some(date) = request.stock_date {
        return Ok((date, "--stock-date".to_string()));
    }
    if let Some(NameDate::Day(date)) = date_in_name(&request.stock) {
        return Ok((
            date,
            format!(
                "the date in the stock file's name {}",
                request
                    .stock
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned())
            ),
        ));
    }
    let latest_sale = rows.iter().filter_map(|r| r.sold).max();
    let after_empty = request.empty_months.last().map(|m| m.next().first_day());
    match (latest_sale.map(|d| d + Duration::days(1)), after_empty) {
        (Some(a), Some(b)) => Ok((a.max(b), "the day after the latest sale or empty month (no --stock-date, no date in the stock file's name)".to_string())),
        (Some(a), None) => Ok((a, "the day after the latest sale (no --stock-date, no date in the stock file's name)".to_string())),
        (None, Some(b)) => Ok((b, "the day after the last --empty-month (no --stock-date, no date in the stock file's name)".to_string())),
        (None, None) => Err(InputError::new(
            "the upload has no sales rows: nothing to store (a month the shop was closed is stored with --empty-month YYYY-MM)",
        )
        .into()),
    }
}

/// Derives the upload's window and checks laws 1 and 2, the completeness rule and that
/// nothing is dated after today.
pub fn window(
    rows: &[ParsedRow],
    files: &[SourceFile],
    request: &UploadRequest,
    stored: &StoredMonths,
) -> Result<Window> {
    let (stock_date, source) = snapshot_date(rows, request)?;
    check_dates(rows, files, stock_date, &source, request.today)?;
    let with_sales: BTreeSet<Month> = rows.iter().filter_map(|r| r.sold.map(Month::of)).collect();
    let window = span(&with_sales, request, stock_date, &source)?;
    let unfinished = (!window.last_month_complete()).then_some(window.last);
    check_contiguous(&window, &with_sales, request, unfinished)?;
    if let Some(month) = unfinished
        && !request.allow_incomplete_month
    {
        return Err(InputError::new(format!(
            "upload refused: month {month} is unfinished — the stock snapshot is dated {stock_date} ({source}), not after {}; upload it when the month is over, give the real --stock-date, or pass --allow-incomplete-month",
            month.last_day()
        ))
        .into());
    }
    check_no_gaps(&window, stored, unfinished)?;
    Ok(window)
}

/// Nothing after today; no sale on or after the snapshot date (law 3).
fn check_dates(
    rows: &[ParsedRow],
    files: &[SourceFile],
    stock_date: NaiveDate,
    source: &str,
    today: NaiveDate,
) -> Result<()> {
    if stock_date > today {
        return Err(InputError::new(format!(
            "upload refused: the snapshot date {stock_date} ({source}) is after today ({today}); give the real --stock-date (or --as-of to move today for a back-fill)"
        ))
        .into());
    }
    let sold_cells = |bad: &dyn Fn(NaiveDate) -> bool, say: &dyn Fn(NaiveDate) -> String| {
        rows.iter()
            .filter_map(|r| {
                r.sold
                    .filter(|&s| bad(s))
                    .map(|s| cell(files, r, "Дата заказа", say(s)))
            })
            .collect::<Vec<String>>()
    };
    let future = sold_cells(&|s| s > today, &|s| {
        format!("sold {s} — after today ({today})")
    });
    if !future.is_empty() {
        return Err(InputError::many(
            &format!(
                "upload refused: {} sale(s) dated after today ({today}); fix the dates (or --as-of to move today for a back-fill)",
                future.len()
            ),
            &future,
        )
        .into());
    }
    let late = sold_cells(&|s| s >= stock_date, &|s| {
        format!("sold {s} — on or after the snapshot date {stock_date}")
    });
    if !late.is_empty() {
        return Err(InputError::many(
            &format!(
                "upload refused (law 3, snapshot coherence): {} sale(s) on or after the stock snapshot date {stock_date} ({source}); the snapshot must describe the shop after every sale in the upload (set --stock-date)",
                late.len()
            ),
            &late,
        )
        .into());
    }
    Ok(())
}

/// The months the upload covers: from its first sale (or empty month) to the month before
/// the snapshot date.
fn span(
    with_sales: &BTreeSet<Month>,
    request: &UploadRequest,
    stock_date: NaiveDate,
    source: &str,
) -> Result<Window> {
    let clash: Vec<Month> = request
        .empty_months
        .iter()
        .copied()
        .filter(|m| with_sales.contains(m))
        .collect();
    if !clash.is_empty() {
        return Err(InputError::new(format!(
            "upload refused: --empty-month {} but the sales files have sales in it",
            describe(&clash)
        ))
        .into());
    }
    let last = Month::of(stock_date - Duration::days(1));
    if let Some(&after) = request.empty_months.iter().find(|&&m| m > last) {
        return Err(InputError::new(format!(
            "upload refused: --empty-month {after} is not before the snapshot date {stock_date} ({source})"
        ))
        .into());
    }
    // Without a sale or an empty month the window is the month the snapshot falls in: a
    // month under way with nothing sold yet. A snapshot on the 1st leaves nothing at all.
    let first = with_sales
        .iter()
        .chain(&request.empty_months)
        .min()
        .copied()
        .unwrap_or_else(|| Month::of(stock_date));
    if first > last {
        return Err(InputError::new(format!(
            "the upload has no sales rows and no --empty-month, and the snapshot is dated {stock_date} ({source}): nothing to store (a month the shop was closed is stored with --empty-month YYYY-MM)"
        ))
        .into());
    }
    Ok(Window {
        first,
        last,
        stock_date,
    })
}

/// Law 2: every month of the upload has sales, unless it is declared empty or is the
/// unfinished newest month.
fn check_contiguous(
    window: &Window,
    with_sales: &BTreeSet<Month>,
    request: &UploadRequest,
    unfinished: Option<Month>,
) -> Result<()> {
    let silent: Vec<Month> = Month::range(window.first, window.last)
        .filter(|m| {
            !with_sales.contains(m) && !request.empty_months.contains(m) && Some(*m) != unfinished
        })
        .collect();
    if !silent.is_empty() {
        return Err(InputError::new(format!(
            "upload refused (law 2, contiguous upload): no sales at all in {} between {} and {}; an upload must cover an unbroken run of months — add the missing month's sales file, or pass --empty-month for a month the shop was closed",
            describe(&silent),
            window.first,
            window.last
        ))
        .into());
    }
    Ok(())
}

/// Law 1: the stored months and the upload's stay one unbroken run, and only the newest
/// month of the result may be unfinished.
fn check_no_gaps(window: &Window, stored: &StoredMonths, unfinished: Option<Month>) -> Result<()> {
    let (first, last) = (window.first, window.last);
    if let (Some(&(s0, _)), Some(&(s1, _))) = (stored.months.first(), stored.months.last()) {
        let missing: Vec<Month> = if first > s1.next() {
            Month::range(s1.next(), first.prev()).collect()
        } else if last < s0.prev() {
            Month::range(last.next(), s0.prev()).collect()
        } else {
            Vec::new()
        };
        if !missing.is_empty() {
            return Err(InputError::new(format!(
                "upload refused (law 1, no gaps): the store holds {s0}…{s1} and this upload covers {first}…{last}, which would leave {} missing; upload the missing month(s) too",
                describe(&missing)
            ))
            .into());
        }
    }
    let mut after: std::collections::BTreeMap<Month, bool> = stored
        .months
        .iter()
        .copied()
        .filter(|&(m, _)| m < first || m > last)
        .collect();
    for month in Month::range(first, last) {
        after.insert(month, Some(month) != unfinished);
    }
    let newest = after.keys().next_back().copied();
    let buried: Vec<Month> = after
        .iter()
        .filter(|&(&m, &complete)| !complete && Some(m) != newest)
        .map(|(&m, _)| m)
        .collect();
    if !buried.is_empty() {
        return Err(InputError::new(format!(
            "upload refused (law 1, complete months): month {} is unfinished and would end up inside the history; upload that month's full sales",
            describe(&buried)
        ))
        .into());
    }
    Ok(())
}

/// Rows that make the reconstructed stock negative: copies sold before they arrived and
/// snapshot copies that arrive on or after the snapshot day. With `accept`, each is
/// repaired (the copy arrives on its sale day / the last day before the snapshot, so it
/// is on the reconstructed shelf the snapshot counts it on) and counted; otherwise refused.
pub fn check_coherence(
    rows: &mut [ParsedRow],
    files: &[SourceFile],
    stock_date: NaiveDate,
    accept: bool,
) -> Result<usize> {
    let mut problems = Vec::new();
    for row in rows.iter_mut() {
        match row.sold {
            Some(sold) if row.created > sold => {
                problems.push(cell(
                    files,
                    row,
                    "Дата создания",
                    format!("the copy arrived {} but was sold {sold}", row.created),
                ));
                if accept {
                    row.created = sold;
                }
            }
            // The snapshot shows the shelf at the start of its day: its copies arrived before.
            None if row.created >= stock_date => {
                problems.push(cell(
                    files,
                    row,
                    "Дата создания",
                    format!(
                        "the copy arrived {} — not before the snapshot date {stock_date}",
                        row.created
                    ),
                ));
                if accept {
                    row.created = stock_date - Duration::days(1);
                }
            }
            _ => {}
        }
    }
    if !problems.is_empty() && !accept {
        return Err(InputError::many(
            &format!(
                "upload refused (law 3, snapshot coherence): {} row(s) would make the reconstructed stock negative; fix the dates, or pass --accept-incoherent to clamp them and record a warning",
                problems.len()
            ),
            &problems,
        )
        .into());
    }
    Ok(problems.len())
}

fn cell(files: &[SourceFile], row: &ParsedRow, column: &str, message: String) -> String {
    let path = files
        .get(row.file as usize)
        .map_or("?".into(), |f| f.path.display().to_string());
    format!("{path}: row {}, column «{column}»: {message}", row.row)
}
