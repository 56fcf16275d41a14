//! `plastinka report`: build the report from the store, filter, sort, render.

use super::Context;
use crate::cli::{ReportArgs, ReportKind};
use crate::error::InputError;
use crate::report::render::{self, OutputFormat};
use crate::report::{accuracy, forecast};
use anyhow::Result;

pub fn run(context: &Context, args: &ReportArgs) -> Result<()> {
    let store = context.existing_store()?;
    let mut report = match args.kind {
        ReportKind::Backtest => {
            let record = store.backtest(None)?.ok_or_else(|| {
                InputError::new("no backtest stored yet: run `plastinka backtest`")
            })?;
            crate::report::backtest::build(&record)
        }
        ReportKind::Tune => super::tune::study_report(&store, None)?,
        ReportKind::Forecast => model_report(context, &store, args, false)?,
        ReportKind::Accuracy => model_report(context, &store, args, true)?,
    };
    if let Some(spec) = &args.sort {
        report.sort(spec).map_err(InputError::new)?;
    }
    if let Some(n) = args.top {
        report.rows.truncate(n);
    }
    write(context, args, &report)
}

/// The forecast report of a stored model, or with `accuracy` its accuracy report.
fn model_report(
    context: &Context,
    store: &crate::store::Store,
    args: &ReportArgs,
    accuracy: bool,
) -> Result<crate::report::Report> {
    let (model, month) = crate::report::choose(store, args.model.as_deref(), args.month)?;
    let record = store
        .load_model(Some(&model.id))?
        .ok_or_else(|| anyhow::anyhow!("model {} vanished", model.id))?;
    let levels = record.model.quantiles.clone();
    let filters = forecast::Filters {
        artist: args.artist.clone(),
        album: args.album.clone(),
        style: args.style.clone(),
        price_category: args.price_category.clone(),
        release_type: args.release_type.clone(),
        condition: args.condition.clone(),
        min_forecast: args.min_forecast,
        min_availability: args.min_availability,
    };
    let lines: Vec<_> = store
        .forecast_lines(&model, month)?
        .into_iter()
        .filter(|line| filters.keeps(line))
        .collect();
    let report = match accuracy {
        false => {
            let service_level = args
                .service_level
                .unwrap_or(context.config.report.service_level);
            if !(service_level > 0.0 && service_level < 1.0) {
                return Err(InputError::new("--service-level must be between 0 and 1").into());
            }
            forecast::build(&model, month, &lines, &levels, service_level)
        }
        true => {
            let stored = store.stored_months()?;
            let complete = stored
                .months
                .iter()
                .any(|&(m, complete)| m == month && complete);
            if !complete {
                return Err(InputError::new(format!(
                    "the actual sales of {month} are not stored (complete) yet: upload that month, then ask for its accuracy"
                ))
                .into());
            }
            let actual = store.units_in_month(month)?;
            let history = store.load_history()?;
            accuracy::build(
                &model,
                month,
                &lines,
                &actual,
                &history,
                &levels,
                &record.scaler,
            )
        }
    };
    Ok(report)
}

fn write(context: &Context, args: &ReportArgs, report: &crate::report::Report) -> Result<()> {
    let format = args.format.unwrap_or(if context.json {
        OutputFormat::Json
    } else {
        OutputFormat::Table
    });
    let bytes = match format {
        OutputFormat::Table => render::table(report, args.lang).into_bytes(),
        OutputFormat::Csv => render::csv(report, args.lang)?,
        OutputFormat::Json => render::json(report)?,
        OutputFormat::Xlsx => {
            if args.output.is_none() {
                return Err(InputError::new("--format xlsx needs --output FILE.xlsx").into());
            }
            render::xlsx(report, args.lang)?
        }
    };
    render::write_out(&bytes, args.output.as_deref())?;
    if let Some(path) = &args.output
        && !context.json
    {
        eprintln!(
            "{}: {} rows written to {}",
            report.title,
            report.rows.len(),
            path.display()
        );
    }
    Ok(())
}
