//! Model records and their forecasts.

use super::Store;
use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A model run as the store keeps it.
pub struct NewModel<'a> {
    pub id: &'a str,
    pub first_month: String,
    pub last_month: String,
    pub forecast_month: String,
    pub config_json: String,
    pub artifacts_json: String,
    pub weights: &'a [u8],
    pub metrics_json: String,
    pub training_seconds: f64,
    /// (product id, [(quantile, units)])
    pub forecasts: Vec<(i64, Vec<(f64, f64)>)>,
    pub activate: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub id: String,
    pub created_at: String,
    pub first_month: String,
    pub last_month: String,
    pub forecast_month: String,
    pub active: bool,
    pub metrics: serde_json::Value,
    pub forecasts: i64,
}

impl Store {
    /// Stores a model and its forecasts in one transaction; with `activate`, it becomes
    /// the active model. Nothing of a failed save remains.
    pub fn save_model(&mut self, model: &NewModel) -> Result<()> {
        let tx = self.conn.transaction()?;
        if model.activate {
            tx.execute("UPDATE models SET active = 0 WHERE active = 1", [])?;
        }
        tx.execute(
            "INSERT INTO models (id, created_at, first_month, last_month, forecast_month, config_json, artifacts_json,
                weights, metrics_json, training_seconds, active)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                model.id,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                model.first_month,
                model.last_month,
                model.forecast_month,
                model.config_json,
                model.artifacts_json,
                model.weights,
                model.metrics_json,
                model.training_seconds,
                model.activate,
            ],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO forecasts (model_id, product_id, month, quantile, units) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (product, quantiles) in &model.forecasts {
                for (q, units) in quantiles {
                    insert.execute(params![model.id, product, model.forecast_month, q, units])?;
                }
            }
        }
        tx.commit().context("saving the model")?;
        Ok(())
    }

    pub fn list_models(&self) -> Result<Vec<ModelSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.id, m.created_at, m.first_month, m.last_month, m.forecast_month, m.active, m.metrics_json,
                    (SELECT count(DISTINCT product_id) FROM forecasts f WHERE f.model_id = m.id)
             FROM models m ORDER BY m.created_at, m.id",
        )?;
        let rows = stmt
            .query_map([], |row| {
                let metrics: String = row.get(6)?;
                Ok(ModelSummary {
                    id: row.get(0)?,
                    created_at: row.get(1)?,
                    first_month: row.get(2)?,
                    last_month: row.get(3)?,
                    forecast_month: row.get(4)?,
                    active: row.get(5)?,
                    metrics: serde_json::from_str(&metrics).unwrap_or(serde_json::Value::Null),
                    forecasts: row.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Makes `id` the active model; false when there is no such model.
    pub fn activate_model(&mut self, id: &str) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let exists: Option<String> = tx
            .query_row("SELECT id FROM models WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Ok(false);
        }
        tx.execute("UPDATE models SET active = 0 WHERE active = 1", [])?;
        tx.execute("UPDATE models SET active = 1 WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(true)
    }

    /// Forecasts of a model: (product id, quantile, units), ordered.
    pub fn model_forecasts(&self, id: &str) -> Result<Vec<(i64, f64, f64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT product_id, quantile, units FROM forecasts WHERE model_id = ?1 ORDER BY product_id, quantile")?;
        let rows = stmt
            .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}
