//! Writing an upload and the queries the upload checks need.

use super::{Store, WriteSession};
use crate::ingest::UploadPlan;
use crate::ingest::laws::StoredMonths;
use crate::month::Month;
use anyhow::Result;
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;

/// What writing an upload did.
#[derive(Debug, Clone)]
pub struct Written {
    pub upload_id: i64,
    pub new_products: usize,
    pub replaced_months: Vec<Month>,
}

impl Store {
    pub fn stored_months(&self) -> Result<StoredMonths> {
        let mut stmt = self
            .conn
            .prepare("SELECT month, complete FROM months ORDER BY month")?;
        let months = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
            })?
            .map(|r| {
                let (month, complete) = r?;
                let month: Month = month.parse().map_err(anyhow::Error::msg)?;
                Ok((month, complete))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StoredMonths { months })
    }

    /// The upload that stored exactly these months from inputs with this fingerprint,
    /// if it is still what the store holds for them.
    pub fn identical_upload(
        &self,
        first: Month,
        last: Month,
        fingerprint: &str,
    ) -> Result<Option<i64>> {
        let holders: Vec<i64> = self
            .conn
            .prepare("SELECT DISTINCT upload_id FROM months WHERE month BETWEEN ?1 AND ?2")?
            .query_map(params![first.to_string(), last.to_string()], |row| {
                row.get(0)
            })?
            .collect::<rusqlite::Result<_>>()?;
        let [holder] = holders[..] else {
            return Ok(None);
        };
        let found = self
            .conn
            .query_row(
                "SELECT id FROM uploads WHERE id = ?1 AND fingerprint = ?2 AND first_month = ?3 AND last_month = ?4",
                params![holder, fingerprint, first.to_string(), last.to_string()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found)
    }

    /// How many of these product keys the store does not know yet.
    pub fn count_new_products<'a>(&self, keys: impl Iterator<Item = &'a str>) -> Result<usize> {
        let known = self.product_ids_by_key()?;
        Ok(keys.filter(|k| !known.contains_key(*k)).count())
    }

    /// End-of-month stock of every product stored for `month`, by product key.
    pub fn stock_end_by_key(&self, month: Month) -> Result<HashMap<String, i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.key, f.stock_end FROM monthly_features f JOIN products p ON p.id = f.product_id WHERE f.month = ?1",
        )?;
        let rows = stmt
            .query_map([month.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub(super) fn product_ids_by_key(&self) -> Result<HashMap<String, (i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, id, attributes_as_of FROM products")?;
        let rows = stmt
            .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}

impl WriteSession {
    /// Writes the upload into the session's transaction: all of it lands or none of it
    /// does. Months it covers are replaced (features of every product in them).
    pub fn write_upload(&self, plan: &UploadPlan) -> Result<Written> {
        let known = self.product_ids_by_key()?;
        let window = &plan.window;
        let replaced_months = self.months_between(window.first, window.last)?;
        let new_products = plan
            .products
            .iter()
            .filter(|p| !known.contains_key(&p.key))
            .count();
        let upload_id = self.insert_upload(plan, new_products)?;
        self.insert_files(upload_id, plan)?;
        let ids = self.upsert_products(upload_id, plan, &known)?;
        self.replace_features(plan, &ids)?;
        crate::faults::check("upload-write")?;
        self.record_months(upload_id, plan)?;
        self.insert_snapshot(upload_id, plan, &ids)?;
        Ok(Written {
            upload_id,
            new_products,
            replaced_months,
        })
    }

    fn months_between(&self, first: Month, last: Month) -> Result<Vec<Month>> {
        self.conn()
            .prepare("SELECT month FROM months WHERE month BETWEEN ?1 AND ?2 ORDER BY month")?
            .query_map(params![first.to_string(), last.to_string()], |row| {
                row.get::<_, String>(0)
            })?
            .map(|m| {
                m.map_err(anyhow::Error::from)
                    .and_then(|m| m.parse().map_err(anyhow::Error::msg))
            })
            .collect()
    }

    fn insert_upload(&self, plan: &UploadPlan, new_products: usize) -> Result<i64> {
        let window = &plan.window;
        self.conn().execute(
            "INSERT INTO uploads (created_at, stock_date, first_month, last_month, last_month_complete, fingerprint,
                rows_read, rows_kept, dropped_json, warnings_json, incoherent_rows, products, new_products)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                crate::clock::timestamp(),
                window.stock_date.to_string(),
                window.first.to_string(),
                window.last.to_string(),
                window.last_month_complete(),
                plan.fingerprint,
                plan.rows_read as i64,
                plan.rows_kept as i64,
                serde_json::to_string(&plan.dropped)?,
                serde_json::to_string(&plan.warnings)?,
                plan.incoherent_rows as i64,
                plan.products.len() as i64,
                new_products as i64,
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    fn insert_files(&self, upload_id: i64, plan: &UploadPlan) -> Result<()> {
        let mut insert = self.conn().prepare(
            "INSERT INTO upload_files (upload_id, position, role, path, sha256, bytes, rows_read, rows_kept)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (position, file) in plan.files.iter().enumerate() {
            let role = serde_json::to_value(file.role)?;
            insert.execute(params![
                upload_id,
                position as i64,
                role.as_str().unwrap_or("sales"),
                file.path.display().to_string(),
                file.sha256,
                file.bytes as i64,
                file.rows_read as i64,
                file.rows_kept as i64,
            ])?;
        }
        Ok(())
    }

    /// Inserts new products and refreshes known ones (unless this upload's snapshot is
    /// older than their attributes); returns the store id of every planned product.
    fn upsert_products(
        &self,
        upload_id: i64,
        plan: &UploadPlan,
        known: &HashMap<String, (i64, String)>,
    ) -> Result<Vec<i64>> {
        let as_of = plan.window.stock_date.to_string();
        let conn = self.conn();
        let mut insert = conn.prepare(
            "INSERT INTO products (key, barcode, artist, album, condition, price, price_category, price_category_label,
                release_type, recording_year, release_year, recording_decade, release_decade, style, attributes_as_of, first_upload_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        let mut update = conn.prepare(
            "UPDATE products SET barcode = ?2, artist = ?3, album = ?4, price = ?5, price_category = ?6,
                price_category_label = ?7, release_type = ?8, recording_year = ?9, release_year = ?10,
                recording_decade = ?11, release_decade = ?12, style = ?13, attributes_as_of = ?14
             WHERE id = ?1",
        )?;
        let mut ids = Vec::with_capacity(plan.products.len());
        for p in &plan.products {
            let id = match known.get(&p.key) {
                Some((id, attributes_as_of)) => {
                    if as_of >= *attributes_as_of {
                        update.execute(params![
                            id,
                            p.barcode,
                            p.artist,
                            p.album,
                            p.price,
                            p.price_category as i64,
                            p.price_category_label,
                            p.release_type,
                            p.recording_year,
                            p.release_year,
                            p.recording_decade,
                            p.release_decade,
                            p.style,
                            as_of,
                        ])?;
                    }
                    *id
                }
                None => {
                    insert.execute(params![
                        p.key,
                        p.barcode,
                        p.artist,
                        p.album,
                        if p.sealed { "sealed" } else { "opened" },
                        p.price,
                        p.price_category as i64,
                        p.price_category_label,
                        p.release_type,
                        p.recording_year,
                        p.release_year,
                        p.recording_decade,
                        p.release_decade,
                        p.style,
                        as_of,
                        upload_id,
                    ])?;
                    conn.last_insert_rowid()
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }

    /// The months the upload covers are replaced whole: every product's row goes.
    fn replace_features(&self, plan: &UploadPlan, ids: &[i64]) -> Result<()> {
        let window = &plan.window;
        let conn = self.conn();
        conn.execute(
            "DELETE FROM monthly_features WHERE month BETWEEN ?1 AND ?2",
            params![window.first.to_string(), window.last.to_string()],
        )?;
        let mut insert = conn.prepare(
            "INSERT INTO monthly_features (month, product_id, units_sold, arrivals, net_movement, stock_start, stock_end,
                observed_days, in_stock_days, availability, confidence, mean_sales_units, mean_sales_rub,
                lost_sales_units, lost_sales_rub, revenue_rub)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        let names: HashMap<Month, String> = Month::range(window.first, window.last)
            .map(|m| (m, m.to_string()))
            .collect();
        for f in &plan.monthly {
            insert.execute(params![
                names[&f.month],
                ids[f.product as usize],
                f.units_sold,
                f.arrivals,
                f.net_movement(),
                f.stock_start,
                f.stock_end,
                f.observed_days,
                f.in_stock_days,
                f.availability,
                f.confidence,
                f.mean_sales_units,
                f.mean_sales_rub,
                f.lost_sales_units,
                f.lost_sales_rub,
                f.revenue_rub,
            ])?;
        }
        Ok(())
    }

    fn record_months(&self, upload_id: i64, plan: &UploadPlan) -> Result<()> {
        let window = &plan.window;
        let mut insert = self.conn().prepare(
            "INSERT OR REPLACE INTO months (month, upload_id, complete, empty) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for month in Month::range(window.first, window.last) {
            let complete = month != window.last || window.last_month_complete();
            let empty = plan.empty_months.contains(&month);
            insert.execute(params![month.to_string(), upload_id, complete, empty])?;
        }
        Ok(())
    }

    fn insert_snapshot(&self, upload_id: i64, plan: &UploadPlan, ids: &[i64]) -> Result<()> {
        let mut insert = self.conn().prepare(
            "INSERT INTO stock_snapshots (upload_id, product_id, copies, mean_price) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for line in &plan.snapshot {
            insert.execute(params![
                upload_id,
                ids[line.product as usize],
                line.copies,
                line.mean_price
            ])?;
        }
        Ok(())
    }
}
