//! `plastinka forecast`: next month's forecast from a stored model, without training, so
//! cron can retrain quarterly and forecast monthly. Stored as that model's forecast.

use super::Context;
use crate::cli::ForecastArgs;
use crate::error::InputError;
use anyhow::Result;
use serde_json::json;

pub fn run(context: &Context, args: &ForecastArgs) -> Result<()> {
    let store = context.existing_store()?;
    let record = match &args.model {
        Some(id) => store.load_model(Some(id))?.ok_or_else(|| {
            InputError::new(format!("no model «{id}»; `plastinka models` lists them"))
        })?,
        None => store.load_model(None)?.ok_or_else(|| {
            InputError::new("no active model: run `plastinka train` first (or pass --model ID)")
        })?,
    };
    let (history, version) = store.load_history_versioned()?;
    drop(store);
    let device = crate::forecast::train::device(&context.config.training.device)?;
    let (month, forecasts) = record.forecast(&history, &device)?;
    let data_last_month = month.prev();

    let session = context.write_existing("forecast")?;
    session.ensure_data_version(&version)?;
    session.save_forecast(&record.id, month, data_last_month, &forecasts)?;
    session.commit()?;

    if context.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model_id": record.id,
                "forecast_month": month,
                "data_last_month": data_last_month,
                "forecasts": forecasts.len(),
                "partial_month_ignored": history.has_partial_month(),
            }))?
        )?;
    } else {
        crate::outln!(
            "Forecast for {month} from model {} (trained on {}…{}): {} products, from data up to {data_last_month}.",
            record.id,
            record.first_month,
            record.last_month,
            forecasts.len()
        )?;
        if let Some(partial) = history.has_partial_month() {
            crate::outln!("note: {partial} is stored partial and was not used")?;
        }
        crate::outln!(
            "See it with: plastinka report --model {} --month {month}",
            record.id
        )?;
    }
    Ok(())
}
