//! Queries behind `plastinka report` and `plastinka health`.

use super::Store;
use crate::month::Month;
use anyhow::Result;
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

/// A model as reports need it.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub id: String,
    pub first_month: Month,
    pub last_month: Month,
    pub forecast_month: Month,
    pub created_at: String,
    pub metrics: serde_json::Value,
    pub active: bool,
}

/// What names a product in an export: its barcode (if any), artist and album.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductLabel {
    pub barcode: Option<String>,
    pub artist: String,
    pub album: String,
}

/// One product's forecast with what the report shows beside it.
#[derive(Debug, Clone)]
pub struct ForecastLine {
    pub product_id: i64,
    pub barcode: Option<String>,
    pub artist: String,
    pub album: String,
    pub condition: String,
    pub style: String,
    pub release_type: String,
    pub price_category: String,
    pub price: f64,
    pub recording_year: i32,
    /// (quantile, units), ascending
    pub quantiles: Vec<(f64, f64)>,
    /// Features of the month before the forecast month, when the product has a row there.
    pub last_month: Option<LastMonth>,
    /// Copies in the newest stock snapshot.
    pub stock: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct LastMonth {
    pub units_sold: i64,
    pub availability: f64,
    pub confidence: f64,
    pub mean_sales_units: f64,
    pub mean_sales_rub: f64,
    pub lost_sales_rub: f64,
}

fn parse_month(text: String) -> rusqlite::Result<Month> {
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

impl Store {
    /// The model `id`, or the active one when `id` is `None`.
    pub fn model_info(&self, id: Option<&str>) -> Result<Option<ModelInfo>> {
        let sql = "SELECT id, first_month, last_month, forecast_month, created_at, metrics_json, active FROM models";
        let map = |row: &rusqlite::Row| -> rusqlite::Result<ModelInfo> {
            let metrics: String = row.get(5)?;
            Ok(ModelInfo {
                id: row.get(0)?,
                first_month: parse_month(row.get(1)?)?,
                last_month: parse_month(row.get(2)?)?,
                forecast_month: parse_month(row.get(3)?)?,
                created_at: row.get(4)?,
                metrics: serde_json::from_str(&metrics).unwrap_or(serde_json::Value::Null),
                active: row.get(6)?,
            })
        };
        let found = match id {
            Some(id) => self
                .conn
                .query_row(&format!("{sql} WHERE id = ?1"), [id], map)
                .optional()?,
            None => self
                .conn
                .query_row(&format!("{sql} WHERE active = 1"), [], map)
                .optional()?,
        };
        Ok(found)
    }

    /// Months model `id` has forecasts for, ascending.
    pub fn forecast_months(&self, id: &str) -> Result<Vec<Month>> {
        let mut stmt = self
            .conn
            .prepare("SELECT month FROM forecast_runs WHERE model_id = ?1 ORDER BY month")?;
        let months = stmt
            .query_map([id], |row| parse_month(row.get(0)?))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(months)
    }

    /// Every product `model` forecast for `month`, with the features of the month before
    /// it (the newest month the forecast saw) and the current stock.
    pub fn forecast_lines(&self, model: &ModelInfo, month: Month) -> Result<Vec<ForecastLine>> {
        let mut quantiles: HashMap<i64, Vec<(f64, f64)>> = HashMap::new();
        for (product, q, units) in self.model_forecasts(&model.id, month)? {
            quantiles.entry(product).or_default().push((q, units));
        }
        let stock: HashMap<i64, i64> = self
            .conn
            .prepare(
                "SELECT product_id, copies FROM stock_snapshots
                 WHERE upload_id = (SELECT id FROM uploads ORDER BY stock_date DESC, id DESC LIMIT 1)",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.barcode, p.artist, p.album, p.condition, p.style, p.release_type, p.price_category_label,
                    p.price, p.recording_year,
                    f.units_sold, f.availability, f.confidence, f.mean_sales_units, f.mean_sales_rub, f.lost_sales_rub
             FROM products p
             LEFT JOIN monthly_features f ON f.product_id = p.id AND f.month = ?1
             WHERE p.id IN (SELECT product_id FROM forecasts WHERE model_id = ?2 AND month = ?3)
             ORDER BY p.artist, p.album, p.id",
        )?;
        let lines = stmt
            .query_map(
                params![month.prev().to_string(), model.id, month.to_string()],
                |row| {
                    let id: i64 = row.get(0)?;
                    let units: Option<i64> = row.get(10)?;
                    Ok(ForecastLine {
                        product_id: id,
                        barcode: row.get(1)?,
                        artist: row.get(2)?,
                        album: row.get(3)?,
                        condition: row.get(4)?,
                        style: row.get(5)?,
                        release_type: row.get(6)?,
                        price_category: row.get(7)?,
                        price: row.get(8)?,
                        recording_year: row.get(9)?,
                        quantiles: Vec::new(),
                        last_month: match units {
                            Some(units_sold) => Some(LastMonth {
                                units_sold,
                                availability: row.get(11)?,
                                confidence: row.get(12)?,
                                mean_sales_units: row.get(13)?,
                                mean_sales_rub: row.get(14)?,
                                lost_sales_rub: row.get(15)?,
                            }),
                            None => None,
                        },
                        stock: stock.get(&id).copied().unwrap_or(0),
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(lines
            .into_iter()
            .map(|mut line| {
                line.quantiles = quantiles.remove(&line.product_id).unwrap_or_default();
                line
            })
            .collect())
    }

    /// Every stored product's label, by id.
    pub fn product_labels(&self) -> Result<HashMap<i64, ProductLabel>> {
        let rows = self
            .conn
            .prepare("SELECT id, barcode, artist, album FROM products")?
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    ProductLabel {
                        barcode: row.get(1)?,
                        artist: row.get(2)?,
                        album: row.get(3)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Units sold in `month` by product (products with a row that month).
    pub fn units_in_month(&self, month: Month) -> Result<HashMap<i64, f64>> {
        let rows = self
            .conn
            .prepare("SELECT product_id, units_sold FROM monthly_features WHERE month = ?1")?
            .query_map([month.to_string()], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)? as f64))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// `PRAGMA quick_check`: "ok" or the first problems found.
    pub fn integrity(&self) -> Result<String> {
        self.check_pragma("quick_check")
    }

    /// `PRAGMA integrity_check`, the thorough one (it reads every page).
    pub fn full_integrity(&self) -> Result<String> {
        self.check_pragma("integrity_check")
    }

    fn check_pragma(&self, pragma: &str) -> Result<String> {
        let mut stmt = self.conn.prepare(&format!("PRAGMA {pragma}"))?;
        let lines: Vec<String> = stmt
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(lines.join("; "))
    }

    pub fn count(&self, table: &str) -> Result<i64> {
        Ok(self
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })?)
    }
}
