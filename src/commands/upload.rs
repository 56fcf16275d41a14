//! `plastinka upload`: validate the exports against the three laws, then store them in
//! one transaction — or, on any problem, store nothing.

use super::Context;
use crate::cli::UploadArgs;
use crate::ingest::{self, SourceFile, UploadRequest, laws::StoredMonths};
use crate::month::Month;
use crate::store::Store;
use anyhow::Result;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Stored,
    DryRun,
    Unchanged,
}

#[derive(Debug, Serialize)]
struct Summary {
    outcome: Outcome,
    upload_id: Option<i64>,
    database: String,
    stock_date: chrono::NaiveDate,
    months: Vec<Month>,
    last_month_complete: bool,
    replaced_months: Vec<Month>,
    empty_months: Vec<Month>,
    products: usize,
    new_products: usize,
    products_in_stock: usize,
    copies_in_stock: u64,
    units_sold: u64,
    rows_read: usize,
    rows_kept: usize,
    dropped_rows: BTreeMap<&'static str, usize>,
    incoherent_rows: usize,
    warnings: Vec<String>,
    files: Vec<SourceFile>,
}

pub fn run(context: &Context, args: &UploadArgs) -> Result<()> {
    let request = UploadRequest {
        stock: args.stock.clone(),
        sales: ingest::expand_sales_paths(&args.sales, &args.stock)?,
        stock_date: args.stock_date,
        empty_months: args.empty_month.iter().copied().collect(),
        allow_incomplete_month: args.allow_incomplete_month,
        accept_incoherent: args.accept_incoherent,
        today: context.today,
        max_file_bytes: context.config.data.max_file_mb.saturating_mul(1_000_000),
    };
    if args.dry_run {
        let existing = Store::open_read_only(&context.db, context.config.database.limits())?;
        let summary = check(context, &request, existing.as_ref(), None)?;
        return print(context, &summary);
    }
    // The writer lock is taken before the store is read, so the laws are checked against
    // exactly the months the write will extend: two uploads at once cannot both pass
    // law 1 against the same old history.
    let session = context.write("upload")?;
    let summary = check(context, &request, Some(&*session), Some(&session))?;
    if summary.outcome == Outcome::Stored {
        session.commit()?;
    }
    print(context, &summary)
}

/// Plans the upload against `store` and, when `session` is given, writes it there.
fn check(
    context: &Context,
    request: &UploadRequest,
    store: Option<&Store>,
    session: Option<&crate::store::WriteSession>,
) -> Result<Summary> {
    let stored = match store {
        Some(store) => store.stored_months()?,
        None => StoredMonths::default(),
    };
    let bar = progress_bar(context);
    let report = |file: &str, rows: usize| bar.set_message(format!("{file}: {rows} rows"));
    let mut plan = ingest::plan_upload(request, &context.config.data, &stored, &report)?;
    bar.finish_and_clear();

    let window = plan.window;
    let months: Vec<Month> = Month::range(window.first, window.last).collect();
    let mut summary = Summary {
        outcome: Outcome::DryRun,
        upload_id: None,
        database: context.db.display().to_string(),
        stock_date: window.stock_date,
        last_month_complete: window.last_month_complete(),
        replaced_months: stored
            .months
            .iter()
            .map(|&(m, _)| m)
            .filter(|m| months.contains(m))
            .collect(),
        empty_months: plan.empty_months.iter().copied().collect(),
        months,
        products: plan.products.len(),
        new_products: plan.products.len(),
        products_in_stock: plan.snapshot.len(),
        copies_in_stock: plan.snapshot.iter().map(|s| s.copies as u64).sum(),
        units_sold: plan.monthly.iter().map(|f| f.units_sold as u64).sum(),
        rows_read: plan.rows_read,
        rows_kept: plan.rows_kept,
        dropped_rows: plan
            .dropped
            .iter()
            .map(|(reason, &n)| (reason.describe(), n))
            .collect(),
        incoherent_rows: plan.incoherent_rows,
        warnings: Vec::new(),
        files: plan.files.clone(),
    };

    if let Some(store) = store {
        if let Some(id) = store.identical_upload(window.first, window.last, &plan.fingerprint)? {
            summary.outcome = Outcome::Unchanged;
            summary.upload_id = Some(id);
            summary.replaced_months.clear();
            summary.new_products = 0;
            summary.warnings = plan.warnings;
            return Ok(summary);
        }
        summary.new_products =
            store.count_new_products(plan.products.iter().map(|p| p.key.as_str()))?;
        let before = window.first.prev();
        if stored.months.iter().any(|&(m, _)| m == before) {
            let stored_end = store.stock_end_by_key(before)?;
            if let Some(warning) = ingest::continuity_warning(&plan, &stored_end, before) {
                plan.warnings.push(warning);
            }
        }
    }
    summary.warnings = plan.warnings.clone();
    if let Some(session) = session {
        let written = session.write_upload(&plan)?;
        summary.outcome = Outcome::Stored;
        summary.upload_id = Some(written.upload_id);
        summary.new_products = written.new_products;
        summary.replaced_months = written.replaced_months;
    }
    Ok(summary)
}

fn progress_bar(context: &Context) -> indicatif::ProgressBar {
    if !context.show_progress() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message("reading exports");
    bar
}

fn print(context: &Context, summary: &Summary) -> Result<()> {
    if context.json {
        crate::outln!("{}", serde_json::to_string_pretty(summary)?)?;
        return Ok(());
    }
    let headline = match summary.outcome {
        Outcome::Stored => format!(
            "Stored upload #{} in {}",
            summary.upload_id.unwrap_or(0),
            summary.database
        ),
        Outcome::DryRun => "Dry run: the upload is valid; nothing was written".to_string(),
        Outcome::Unchanged => format!(
            "Unchanged: these files were already stored as upload #{}; nothing was written",
            summary.upload_id.unwrap_or(0)
        ),
    };
    crate::outln!("{headline}")?;
    let mut table = Table::new();
    table.set_content_arrangement(ContentArrangement::Dynamic);
    let first = summary
        .months
        .first()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let last = summary
        .months
        .last()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let partial = if summary.last_month_complete {
        ""
    } else {
        " (last one unfinished)"
    };
    table.add_row(vec![
        "months".to_string(),
        format!("{first} … {last}: {}{partial}", summary.months.len()),
    ]);
    if !summary.empty_months.is_empty() {
        table.add_row(vec![
            "empty months (shop closed)".to_string(),
            crate::month::describe(&summary.empty_months),
        ]);
    }
    if !summary.replaced_months.is_empty() {
        table.add_row(vec![
            "replaced months".to_string(),
            crate::month::describe(&summary.replaced_months),
        ]);
    }
    table.add_row(vec![
        "stock snapshot date".to_string(),
        summary.stock_date.to_string(),
    ]);
    table.add_row(vec![
        "products".to_string(),
        format!("{} ({} new)", summary.products, summary.new_products),
    ]);
    table.add_row(vec![
        "in stock".to_string(),
        format!(
            "{} copies of {} products",
            summary.copies_in_stock, summary.products_in_stock
        ),
    ]);
    table.add_row(vec![
        "units sold".to_string(),
        summary.units_sold.to_string(),
    ]);
    table.add_row(vec![
        "rows".to_string(),
        format!(
            "{} read, {} kept, {} dropped",
            summary.rows_read,
            summary.rows_kept,
            summary.rows_read - summary.rows_kept
        ),
    ]);
    for (reason, n) in &summary.dropped_rows {
        table.add_row(vec![format!("  dropped: {reason}"), n.to_string()]);
    }
    table.add_row(vec!["files".to_string(), summary.files.len().to_string()]);
    crate::outln!("{table}")?;
    for warning in &summary.warnings {
        crate::outln!("warning: {warning}")?;
    }
    Ok(())
}
