//! Models and their forecasts: the one place a [`ModelRecord`] is written and read.

use super::{Store, WriteSession};
use crate::forecast::stored::{ModelRecord, ProductForecast};
use crate::month::Month;
use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub id: String,
    pub created_at: String,
    pub first_month: String,
    pub last_month: String,
    pub forecast_month: String,
    /// Every month the model has forecasts for (its training month and later ones).
    pub forecast_months: Vec<String>,
    pub active: bool,
    pub metrics: serde_json::Value,
    pub forecasts: i64,
    pub remote_job_id: Option<String>,
}

#[derive(Serialize, serde::Deserialize)]
struct Artifacts {
    widths: crate::forecast::tide::Widths,
    static_columns: Vec<String>,
    scaler: crate::forecast::scaler::LogMinMax,
    #[serde(default)]
    blend: Option<crate::forecast::blend::Blend>,
    #[serde(default)]
    whole_copies: Option<crate::forecast::whole_copies::WholeCopies>,
}

#[derive(Serialize, serde::Deserialize)]
struct Settings {
    model: crate::config::ModelConfig,
    training: crate::config::TrainingConfig,
}

impl WriteSession {
    /// Stores a model and its forecasts; with `activate`, it becomes the active model.
    pub fn save_model(
        &self,
        record: &ModelRecord,
        forecasts: &[ProductForecast],
        activate: bool,
    ) -> Result<()> {
        let conn = self.conn();
        if activate {
            conn.execute("UPDATE models SET active = 0 WHERE active = 1", [])?;
        }
        conn.execute(
            "INSERT INTO models (id, created_at, first_month, last_month, forecast_month, config_json, artifacts_json,
                weights, metrics_json, training_seconds, active, format_version, weights_sha256, remote_job_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                record.id,
                record.created_at,
                record.first_month.to_string(),
                record.last_month.to_string(),
                record.forecast_month.to_string(),
                serde_json::to_string(&Settings {
                    model: record.model.clone(),
                    training: record.training.clone(),
                })?,
                serde_json::to_string(&Artifacts {
                    widths: record.widths,
                    static_columns: record.static_columns.clone(),
                    scaler: record.scaler,
                    blend: record.blend.clone(),
                    whole_copies: record.whole_copies,
                })?,
                record.weights,
                serde_json::to_string(&record.metrics)?,
                record.training_seconds,
                activate,
                record.format_version,
                record.weights_sha256,
                record.remote_job_id,
            ],
        )
        .context("saving the model")?;
        self.save_forecast(
            &record.id,
            record.forecast_month,
            record.last_month,
            forecasts,
        )
    }

    /// Stores a model's forecast for `month`, made from data up to `data_last_month`,
    /// replacing an earlier forecast of that model for that month.
    pub fn save_forecast(
        &self,
        model_id: &str,
        month: Month,
        data_last_month: Month,
        forecasts: &[ProductForecast],
    ) -> Result<()> {
        let conn = self.conn();
        let month = month.to_string();
        conn.execute(
            "DELETE FROM forecasts WHERE model_id = ?1 AND month = ?2",
            params![model_id, month],
        )?;
        conn.execute(
            "INSERT OR REPLACE INTO forecast_runs (model_id, month, data_last_month, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                model_id,
                month,
                data_last_month.to_string(),
                crate::clock::timestamp()
            ],
        )?;
        let mut insert = conn.prepare(
            "INSERT INTO forecasts (model_id, product_id, month, quantile, units) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (k, forecast) in forecasts.iter().enumerate() {
            if k == forecasts.len() / 2 {
                // Half-way through: a failure here must leave nothing of the save behind.
                crate::faults::check("model-save")?;
            }
            for (q, units) in &forecast.quantiles {
                insert.execute(params![model_id, forecast.product_id, month, q, units])?;
            }
        }
        Ok(())
    }

    /// Makes `id` the active model; false when there is no such model.
    pub fn activate_model(&self, id: &str) -> Result<bool> {
        let conn = self.conn();
        let exists: Option<String> = conn
            .query_row("SELECT id FROM models WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Ok(false);
        }
        conn.execute("UPDATE models SET active = 0 WHERE active = 1", [])?;
        conn.execute("UPDATE models SET active = 1 WHERE id = ?1", [id])?;
        Ok(true)
    }
}

fn parse_month(text: String) -> rusqlite::Result<Month> {
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

impl Store {
    /// The model `id`, or the active one when `id` is `None`, with its weights.
    pub fn load_model(&self, id: Option<&str>) -> Result<Option<ModelRecord>> {
        let columns =
            "id, created_at, first_month, last_month, forecast_month, config_json, artifacts_json,
            weights, metrics_json, training_seconds, format_version, weights_sha256, remote_job_id";
        let sql = match id {
            Some(_) => format!("SELECT {columns} FROM models WHERE id = ?1"),
            None => format!("SELECT {columns} FROM models WHERE active = 1"),
        };
        let read =
            |row: &rusqlite::Row| -> rusqlite::Result<(ModelRecord, String, String, String)> {
                Ok((
                    ModelRecord {
                        format_version: row.get(10)?,
                        id: row.get(0)?,
                        created_at: row.get(1)?,
                        first_month: parse_month(row.get(2)?)?,
                        last_month: parse_month(row.get(3)?)?,
                        forecast_month: parse_month(row.get(4)?)?,
                        model: Default::default(),
                        training: Default::default(),
                        widths: crate::forecast::tide::Widths {
                            lags: 0,
                            past: 0,
                            future: 0,
                            statics: 0,
                            quantiles: 0,
                        },
                        static_columns: Vec::new(),
                        scaler: crate::forecast::scaler::LogMinMax { min: 0.0, max: 1.0 },
                        weights: row.get(7)?,
                        // Models stored before checksums: nothing to compare against.
                        weights_sha256: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
                        metrics: serde_json::Value::Null,
                        training_seconds: row.get(9)?,
                        remote_job_id: row.get(12)?,
                        blend: None,
                        whole_copies: None,
                    },
                    row.get(5)?,
                    row.get(6)?,
                    row.get(8)?,
                ))
            };
        let found = match id {
            Some(id) => self.conn.query_row(&sql, [id], read).optional()?,
            None => self.conn.query_row(&sql, [], read).optional()?,
        };
        let Some((mut record, settings, artifacts, metrics)) = found else {
            return Ok(None);
        };
        let context = || format!("model {}: its stored settings cannot be read", record.id);
        let raw: serde_json::Value = serde_json::from_str(&settings).with_context(context)?;
        let mut settings: Settings = serde_json::from_value(raw.clone()).with_context(context)?;
        settings.model =
            crate::config::ModelConfig::from_stored(&raw["model"]).with_context(context)?;
        let artifacts: Artifacts = serde_json::from_str(&artifacts).with_context(context)?;
        record.model = settings.model;
        record.training = settings.training;
        record.widths = artifacts.widths;
        record.static_columns = artifacts.static_columns;
        record.scaler = artifacts.scaler;
        record.blend = artifacts.blend;
        record.whole_copies = artifacts.whole_copies;
        record.metrics = serde_json::from_str(&metrics).unwrap_or(serde_json::Value::Null);
        if record.weights_sha256.is_empty() {
            record.weights_sha256 = crate::digest::sha256_hex(&record.weights);
        }
        Ok(Some(record))
    }

    pub fn list_models(&self) -> Result<Vec<ModelSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.id, m.created_at, m.first_month, m.last_month, m.forecast_month, m.active, m.metrics_json,
                    (SELECT count(DISTINCT product_id) FROM forecasts f WHERE f.model_id = m.id AND f.month = m.forecast_month),
                    (SELECT group_concat(month, ',') FROM (SELECT month FROM forecast_runs r WHERE r.model_id = m.id ORDER BY month)),
                    m.remote_job_id
             FROM models m ORDER BY m.created_at, m.id",
        )?;
        let rows = stmt
            .query_map([], |row| {
                let metrics: String = row.get(6)?;
                let months: Option<String> = row.get(8)?;
                Ok(ModelSummary {
                    id: row.get(0)?,
                    created_at: row.get(1)?,
                    first_month: row.get(2)?,
                    last_month: row.get(3)?,
                    forecast_month: row.get(4)?,
                    forecast_months: months
                        .map(|m| m.split(',').map(String::from).collect())
                        .unwrap_or_default(),
                    active: row.get(5)?,
                    metrics: serde_json::from_str(&metrics).unwrap_or(serde_json::Value::Null),
                    forecasts: row.get(7)?,
                    remote_job_id: row.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Forecasts of a model for a month: (product id, quantile, units), ordered.
    pub fn model_forecasts(&self, id: &str, month: Month) -> Result<Vec<(i64, f64, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT product_id, quantile, units FROM forecasts WHERE model_id = ?1 AND month = ?2 ORDER BY product_id, quantile",
        )?;
        let rows = stmt
            .query_map(params![id, month.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}
