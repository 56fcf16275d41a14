//! Reading the stored months back as the dense series the model reads.

use super::Store;
use crate::forecast::history::{History, ProductAttributes};
use crate::month::Month;
use anyhow::Result;
use std::collections::HashMap;

/// Which upload holds each stored month and how: a command that computed from the
/// history checks, inside its write, that the data is still the one it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVersion(pub(super) String);

impl DataVersion {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version a job recorded when it was submitted.
    pub fn from_stored(text: &str) -> Self {
        DataVersion(text.to_string())
    }
}

impl Store {
    /// The history and the version of the data it was read from, read in one snapshot.
    pub fn load_history_versioned(&self) -> Result<(History, DataVersion)> {
        self.conn.execute_batch("BEGIN")?;
        let result = self
            .data_version()
            .and_then(|version| Ok((self.load_history()?, version)));
        let _ = self.conn.execute_batch("COMMIT");
        result
    }

    pub fn data_version(&self) -> Result<DataVersion> {
        let mut stmt = self
            .conn
            .prepare("SELECT month, upload_id, complete, empty FROM months ORDER BY month")?;
        let rows: Vec<String> = stmt
            .query_map([], |row| {
                Ok(format!(
                    "{}:{}:{}:{}",
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, bool>(3)?
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(DataVersion(rows.join(";")))
    }

    /// Refuses to store a result computed from data that has changed since (an upload
    /// landed while a training ran).
    pub fn ensure_data_version(&self, read: &DataVersion) -> Result<()> {
        if &self.data_version()? != read {
            anyhow::bail!(
                "the stored months changed while this command ran (an upload landed meanwhile); nothing was stored — run it again"
            );
        }
        Ok(())
    }

    pub fn load_history(&self) -> Result<History> {
        let mut stmt = self
            .conn
            .prepare("SELECT month, complete, empty FROM months ORDER BY month")?;
        let mut months = Vec::new();
        let mut complete = Vec::new();
        let mut closed = Vec::new();
        for row in stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, bool>(2)?,
            ))
        })? {
            let (month, is_complete, is_empty) = row?;
            months.push(month.parse::<Month>().map_err(anyhow::Error::msg)?);
            complete.push(is_complete);
            closed.push(is_empty);
        }
        let mut stmt = self.conn.prepare(
            "SELECT id, condition, release_type, style, price_category_label, recording_year, recording_decade, release_decade
             FROM products WHERE id IN (SELECT DISTINCT product_id FROM monthly_features) ORDER BY id",
        )?;
        let products: Vec<ProductAttributes> = stmt
            .query_map([], |row| {
                Ok(ProductAttributes {
                    id: row.get(0)?,
                    condition: row.get(1)?,
                    release_type: row.get(2)?,
                    style: row.get(3)?,
                    price_category: row.get(4)?,
                    recording_year: row.get(5)?,
                    recording_decade: row.get(6)?,
                    release_decade: row.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let index: HashMap<i64, usize> = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        let month_index: HashMap<String, usize> = months
            .iter()
            .enumerate()
            .map(|(i, m)| (m.to_string(), i))
            .collect();
        let cells = products.len() * months.len();
        let mut history = History {
            months,
            complete,
            closed,
            products,
            units: vec![0.0; cells],
            availability: vec![0.0; cells],
            confidence: vec![0.0; cells],
            present: vec![false; cells],
            stock_end: vec![0.0; cells],
            arrivals: vec![0.0; cells],
        };
        let mut stmt = self.conn.prepare(
            "SELECT product_id, month, units_sold, availability, confidence, stock_end, arrivals FROM monthly_features",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let product: i64 = row.get(0)?;
            let month: String = row.get(1)?;
            let (Some(&i), Some(&t)) = (index.get(&product), month_index.get(&month)) else {
                continue;
            };
            let at = history.at(i, t);
            history.units[at] = row.get::<_, i64>(2)? as f64;
            history.availability[at] = row.get(3)?;
            history.confidence[at] = row.get(4)?;
            history.present[at] = true;
            history.stock_end[at] = row.get::<_, i64>(5)?.max(0) as f64;
            history.arrivals[at] = row.get::<_, i64>(6)?.max(0) as f64;
        }
        Ok(history)
    }
}
