//! `plastinka models`: the model history, and switching the active model.

use super::Context;
use crate::cli::{ModelsArgs, ModelsCommand};
use crate::error::InputError;
use anyhow::Result;
use comfy_table::{ContentArrangement, Table};

pub fn run(context: &Context, args: &ModelsArgs) -> Result<()> {
    match &args.command {
        None => list(context),
        Some(ModelsCommand::Activate { id }) => {
            let session = context.write_existing("models activate")?;
            if !session.activate_model(id)? {
                return Err(InputError::new(format!(
                    "no model «{id}»; `plastinka models` lists them"
                ))
                .into());
            }
            session.commit()?;
            if context.json {
                crate::outln!("{}", serde_json::json!({ "active": id }))?;
            } else {
                crate::outln!("Model {id} is now active.")?;
            }
            Ok(())
        }
    }
}

fn list(context: &Context) -> Result<()> {
    let models = context.existing_store()?.list_models()?;
    if context.json {
        crate::outln!("{}", serde_json::to_string_pretty(&models)?)?;
        return Ok(());
    }
    if models.is_empty() {
        crate::outln!("No models yet: run `plastinka train`.")?;
        return Ok(());
    }
    let mut table = Table::new();
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(vec![
        "id",
        "created",
        "data",
        "forecasts for",
        "MIWS_MIC_Ratio",
        "pinball",
        "products",
        "trained",
        "active",
    ]);
    for m in models {
        let metric = |key: &str| {
            m.metrics["validation"][key]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{v:.4}"))
        };
        table.add_row(vec![
            m.id.clone(),
            m.created_at.clone(),
            format!("{} … {}", m.first_month, m.last_month),
            m.forecast_months.join(", "),
            metric("miws_mic_ratio"),
            metric("pinball"),
            m.forecasts.to_string(),
            m.remote_job_id
                .as_deref()
                .map_or("here".to_string(), |job| format!("job {job}")),
            if m.active {
                "yes".to_string()
            } else {
                String::new()
            },
        ]);
    }
    crate::outln!("{table}")?;
    Ok(())
}
