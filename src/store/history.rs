//! Reading the stored months back as dense per-product series for the model.

use super::Store;
use crate::month::Month;
use anyhow::Result;
use std::collections::HashMap;

/// Attributes a product brings to the model as static covariates.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductAttributes {
    pub id: i64,
    pub condition: String,
    pub release_type: String,
    pub style: String,
    pub price_category: String,
    pub recording_year: i32,
    pub recording_decade: i32,
    pub release_decade: i32,
}

/// Every stored month × every product that has a row in any of them. Series are
/// product-major: value of product `i` in month `t` is at `i * months.len() + t`.
/// A missing row (before the product first appeared) reads as 0 with `present` false.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub months: Vec<Month>,
    pub products: Vec<ProductAttributes>,
    pub units: Vec<f64>,
    pub availability: Vec<f64>,
    pub confidence: Vec<f64>,
    pub present: Vec<bool>,
}

impl History {
    pub fn at(&self, product: usize, month: usize) -> usize {
        product * self.months.len() + month
    }
}

impl Store {
    pub fn load_history(&self) -> Result<History> {
        let months: Vec<Month> = self
            .stored_months()?
            .months
            .into_iter()
            .map(|(m, _)| m)
            .collect();
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
            products,
            units: vec![0.0; cells],
            availability: vec![0.0; cells],
            confidence: vec![0.0; cells],
            present: vec![false; cells],
        };
        let mut stmt = self.conn.prepare(
            "SELECT product_id, month, units_sold, availability, confidence FROM monthly_features",
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
        }
        Ok(history)
    }
}
