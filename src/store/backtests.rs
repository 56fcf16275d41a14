//! Backtests: the one place a [`BacktestRecord`] is written and read.

use super::{Store, WriteSession};
use crate::forecast::backtest::{BacktestRecord, FORMAT_VERSION};
use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, params};

impl WriteSession {
    pub fn save_backtest(&self, record: &BacktestRecord) -> Result<()> {
        let months = &record.result.months;
        let (first, last) = match (months.first(), months.last()) {
            (Some(first), Some(last)) => (first.month.to_string(), last.month.to_string()),
            _ => anyhow::bail!("a backtest without months is not stored"),
        };
        self.conn().execute(
            "INSERT INTO backtests (id, created_at, format_version, first_month, last_month, record_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                record.id,
                record.created_at,
                record.format_version,
                first,
                last,
                serde_json::to_string(record)?
            ],
        )?;
        Ok(())
    }
}

impl Store {
    /// The newest backtest (or the one named), if any. One stored in another format
    /// version is an error naming it, not a silent misreading.
    pub fn backtest(&self, id: Option<&str>) -> Result<Option<BacktestRecord>> {
        // A database no writer has migrated since backtests came has none.
        let table: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'backtests'",
            [],
            |r| r.get(0),
        )?;
        if table == 0 {
            return Ok(None);
        }
        let row: Option<(String, u32, String)> = self
            .conn
            .query_row(
                "SELECT id, format_version, record_json FROM backtests
                 WHERE ?1 IS NULL OR id = ?1 ORDER BY created_at DESC, id DESC LIMIT 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((id, version, json)) = row else {
            return Ok(None);
        };
        if version != FORMAT_VERSION {
            anyhow::bail!(
                "backtest {id} is stored in format {version}; this plastinka reads {FORMAT_VERSION}: run `plastinka backtest` again"
            );
        }
        let damaged = || format!("backtest {id} is stored damaged");
        let raw: serde_json::Value = serde_json::from_str(&json).with_context(damaged)?;
        let mut record: BacktestRecord =
            serde_json::from_value(raw.clone()).with_context(damaged)?;
        record.model =
            crate::config::ModelConfig::from_stored(&raw["model"]).with_context(damaged)?;
        Ok(Some(record))
    }
}
