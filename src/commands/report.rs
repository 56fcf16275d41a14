//! `plastinka report`: build the report from the store, filter, sort, render.

use super::Context;
use crate::cli::{ReportArgs, ReportKind};
use crate::error::InputError;
use crate::forecast::scaler::LogMinMax;
use crate::report::render::{self, OutputFormat};
use crate::report::{accuracy, forecast};
use crate::store::Store;
use crate::store::reports::ModelInfo;
use anyhow::Result;

pub fn run(context: &Context, args: &ReportArgs) -> Result<()> {
    let store = context.existing_store()?;
    let model = choose_model(&store, args)?;
    let levels: Vec<f64> =
        serde_json::from_str::<serde_json::Value>(&store_config(&store, &model)?)
            .ok()
            .and_then(|c| serde_json::from_value(c["model"]["quantiles"].clone()).ok())
            .unwrap_or_else(|| context.config.model.quantiles.clone());
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
        .forecast_lines(&model)?
        .into_iter()
        .filter(|line| filters.keeps(line))
        .collect();
    let mut report = match args.kind {
        ReportKind::Forecast => {
            let service_level = args
                .service_level
                .unwrap_or(context.config.report.service_level);
            if !(service_level > 0.0 && service_level < 1.0) {
                return Err(InputError::new("--service-level must be between 0 and 1").into());
            }
            forecast::build(&model, &lines, &levels, service_level)
        }
        ReportKind::Accuracy => {
            let stored = store.stored_months()?;
            let complete = stored
                .months
                .iter()
                .any(|&(m, complete)| m == model.forecast_month && complete);
            if !complete {
                return Err(InputError::new(format!(
                    "the actual sales of {} are not stored (complete) yet: upload that month, then ask for its accuracy",
                    model.forecast_month
                ))
                .into());
            }
            let actual = store.units_in_month(model.forecast_month)?;
            let history = store.load_history()?;
            let scaler = model_scaler(&store, &model)?;
            accuracy::build(&model, &lines, &actual, &history, &levels, &scaler)
        }
    };
    if let Some(spec) = &args.sort {
        report.sort(spec).map_err(InputError::new)?;
    }
    if let Some(n) = args.top {
        report.rows.truncate(n);
    }

    let format = args.format.unwrap_or(if context.json {
        OutputFormat::Json
    } else {
        OutputFormat::Table
    });
    let bytes = match format {
        OutputFormat::Table => render::table(&report, args.lang).into_bytes(),
        OutputFormat::Csv => render::csv(&report, args.lang)?,
        OutputFormat::Json => render::json(&report)?,
        OutputFormat::Xlsx => {
            if args.output.is_none() {
                return Err(InputError::new("--format xlsx needs --output FILE.xlsx").into());
            }
            render::xlsx(&report, args.lang)?
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

fn choose_model(store: &Store, args: &ReportArgs) -> Result<ModelInfo> {
    if let Some(id) = &args.model {
        return store.model_info(Some(id))?.ok_or_else(|| {
            InputError::new(format!("no model «{id}»; `plastinka models` lists them")).into()
        });
    }
    let active = store.model_info(None)?;
    match (args.month, active) {
        (None, Some(active)) => Ok(active),
        (None, None) => Err(InputError::new("no active model: run `plastinka train` first").into()),
        (Some(month), Some(active)) if active.forecast_month == month => Ok(active),
        (Some(month), _) => {
            let newest = store
                .list_models()?
                .into_iter()
                .rev()
                .find(|m| m.forecast_month == month.to_string())
                .ok_or_else(|| InputError::new(format!("no stored model forecasts {month}")))?;
            Ok(store
                .model_info(Some(&newest.id))?
                .ok_or_else(|| anyhow::anyhow!("model vanished"))?)
        }
    }
}

fn store_config(store: &Store, model: &ModelInfo) -> Result<String> {
    store.model_json(&model.id, "config_json")
}

fn model_scaler(store: &Store, model: &ModelInfo) -> Result<LogMinMax> {
    let artifacts: serde_json::Value =
        serde_json::from_str(&store.model_json(&model.id, "artifacts_json")?)?;
    Ok(serde_json::from_value(artifacts["scaler"].clone())?)
}
