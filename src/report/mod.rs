//! Reports: what the shop acts on (`forecast`) and how past forecasts fared (`accuracy`).
//! Building a report (rows of typed cells) is separate from rendering it (table, csv,
//! xlsx, json), so every format shows the same columns with the same names.

pub mod accuracy;
pub mod backtest;
pub mod forecast;
pub mod render;
pub mod tune;

use crate::error::InputError;
use crate::month::Month;
use crate::store::Store;
use crate::store::reports::ModelInfo;
use anyhow::Result;
use serde::Serialize;

/// One cell, typed so xlsx gets numbers as numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Text(String),
    Int(i64),
    /// A number and the decimals to show.
    Number(f64, #[serde(skip)] usize),
    Missing,
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Number(x, _) => Some(*x),
            _ => None,
        }
    }

    pub fn display(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Int(i) => i.to_string(),
            Value::Number(x, d) => format!("{x:.d$}", d = *d),
            Value::Missing => String::new(),
        }
    }
}

/// A column: the machine key (csv/json/xlsx in English) and the shop staff's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub key: String,
    pub russian: String,
}

impl Column {
    pub fn new(key: &str, russian: &str) -> Self {
        Self {
            key: key.to_string(),
            russian: russian.to_string(),
        }
    }
}

/// Which header language a report uses (one per output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    En,
    Ru,
}

/// A rendered-to-be table: a title, columns and rows, plus summary lines.
#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// Extra (name, table) pairs: xlsx puts each on its own sheet, json nests them.
    pub appendices: Vec<(String, Vec<Column>, Vec<Vec<Value>>)>,
    /// Free-form facts (model id, months...) for json and the terminal.
    pub meta: serde_json::Value,
}

impl Report {
    pub fn column_index(&self, key: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.key == key)
    }

    /// Sorts by `spec` = `COLUMN[:asc|:desc]`; numbers default to descending, text to
    /// ascending. Missing values sort last.
    pub fn sort(&mut self, spec: &str) -> Result<(), String> {
        let (key, direction) = match spec.split_once(':') {
            Some((k, d)) => (k, Some(d)),
            None => (spec, None),
        };
        let index = self.column_index(key).ok_or_else(|| {
            format!(
                "--sort: no column «{key}»; columns: {}",
                self.keys().join(", ")
            )
        })?;
        let numeric = self.rows.iter().any(|r| r[index].as_f64().is_some());
        let descending = match direction {
            None => numeric,
            Some("desc") => true,
            Some("asc") => false,
            Some(other) => return Err(format!("--sort: «{other}» is not asc or desc")),
        };
        self.rows.sort_by(|a, b| {
            use std::cmp::Ordering;
            let (x, y) = (&a[index], &b[index]);
            let order = match (x, y) {
                (Value::Missing, Value::Missing) => Ordering::Equal,
                (Value::Missing, _) => return Ordering::Greater,
                (_, Value::Missing) => return Ordering::Less,
                _ => match (x.as_f64(), y.as_f64()) {
                    (Some(p), Some(q)) => p.total_cmp(&q),
                    _ => x.display().to_lowercase().cmp(&y.display().to_lowercase()),
                },
            };
            if descending { order.reverse() } else { order }
        });
        Ok(())
    }

    pub fn keys(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.key.as_str()).collect()
    }
}

/// `forecast_q05` … columns, one per forecast quantile, in both reports.
pub fn forecast_columns(levels: &[f64]) -> Vec<Column> {
    levels
        .iter()
        .map(|&q| {
            let key = quantile_key(q);
            Column::new(&format!("forecast_{key}"), &format!("Прогноз {key} (шт)"))
        })
        .collect()
}

/// `0.05` → `q05`, `0.5` → `q50`, `0.975` → `q97_5`.
pub fn quantile_key(q: f64) -> String {
    let percent = q * 100.0;
    if (percent - percent.round()).abs() < 1e-9 {
        format!("q{:02}", percent.round() as i64)
    } else {
        format!("q{}", format!("{percent}").replace('.', "_"))
    }
}

/// The model and month to report: `--model` (its newest forecast, or `--month`), else the
/// active model's newest forecast (or its `--month`), else the newest model that forecast
/// `--month`.
pub fn choose(store: &Store, id: Option<&str>, month: Option<Month>) -> Result<(ModelInfo, Month)> {
    let no_such =
        |id: &str| InputError::new(format!("no model «{id}»; `plastinka models` lists them"));
    let model = match id {
        Some(id) => Some(store.model_info(Some(id))?.ok_or_else(|| no_such(id))?),
        None => store.model_info(None)?,
    };
    if let Some(model) = model {
        let months = store.forecast_months(&model.id)?;
        match month {
            None => {
                if let Some(&newest) = months.last() {
                    return Ok((model, newest));
                }
            }
            Some(month) if months.contains(&month) => return Ok((model, month)),
            Some(month) if id.is_some() => {
                return Err(InputError::new(format!(
                    "model {} has no forecast for {month} (it has {}); `plastinka forecast --model {}` makes one for the month after the newest complete month",
                    model.id,
                    crate::month::describe(&months),
                    model.id
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    let Some(month) = month else {
        return Err(InputError::new("no active model: run `plastinka train` first").into());
    };
    let newest = store
        .list_models()?
        .into_iter()
        .rev()
        .find(|m| m.forecast_months.contains(&month.to_string()))
        .ok_or_else(|| InputError::new(format!("no stored model forecasts {month}")))?;
    let model = store
        .model_info(Some(&newest.id))?
        .ok_or_else(|| anyhow::anyhow!("model vanished"))?;
    Ok((model, month))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_keys() {
        assert_eq!(quantile_key(0.05), "q05");
        assert_eq!(quantile_key(0.5), "q50");
        assert_eq!(quantile_key(0.975), "q97_5");
    }

    #[test]
    fn sorting_numbers_descending_and_missing_last() {
        let mut r = Report {
            title: String::new(),
            columns: vec![Column::new("a", "а"), Column::new("n", "н")],
            rows: vec![
                vec![Value::Text("b".into()), Value::Number(1.0, 1)],
                vec![Value::Text("a".into()), Value::Missing],
                vec![Value::Text("c".into()), Value::Int(3)],
            ],
            appendices: vec![],
            meta: serde_json::Value::Null,
        };
        r.sort("n").unwrap();
        assert_eq!(
            r.rows.iter().map(|r| r[0].display()).collect::<Vec<_>>(),
            ["c", "b", "a"]
        );
        r.sort("a").unwrap();
        assert_eq!(r.rows[0][0].display(), "a");
        assert!(r.sort("zzz").is_err());
    }
}
