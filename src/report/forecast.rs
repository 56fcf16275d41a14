//! The forecast report: one row per product with its quantiles, last month's figures,
//! current stock and a suggested reorder quantity.
//!
//! Reorder quantity = max(0, ⌈Q(service level)⌉ − stock), where Q is the forecast's
//! quantile function, linear between the stored quantiles (flat beyond them). Ordering it
//! brings the shelf to the level that covers next month's demand with the configured
//! probability (default 0.9), assuming the order arrives early in the month.

use super::{Column, Report, Value, forecast_columns};
use crate::store::reports::{ForecastLine, ModelInfo};

/// Row filters; text filters match case-insensitively (artist/album/style as substrings).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub artist: Option<String>,
    pub album: Option<String>,
    pub style: Option<String>,
    pub price_category: Option<String>,
    pub release_type: Option<String>,
    pub condition: Option<String>,
    pub min_forecast: Option<f64>,
    pub min_availability: Option<f64>,
}

impl Filters {
    /// Whether a product's line passes every filter given.
    pub fn keeps(&self, line: &ForecastLine) -> bool {
        let contains = |filter: &Option<String>, value: &str| {
            filter
                .as_ref()
                .is_none_or(|f| value.to_lowercase().contains(&f.to_lowercase()))
        };
        let equals = |filter: &Option<String>, value: &str| {
            filter
                .as_ref()
                .is_none_or(|f| value.trim().to_lowercase() == f.trim().to_lowercase())
        };
        contains(&self.artist, &line.artist)
            && contains(&self.album, &line.album)
            && contains(&self.style, &line.style)
            && equals(&self.price_category, &line.price_category)
            && equals(&self.release_type, &line.release_type)
            && equals(&self.condition, &line.condition)
            && self
                .min_forecast
                .is_none_or(|m| median(&line.quantiles) >= m)
            && self
                .min_availability
                .is_none_or(|m| line.last_month.is_some_and(|l| l.availability >= m))
    }
}

fn median(quantiles: &[(f64, f64)]) -> f64 {
    quantile_at(quantiles, 0.5)
}

/// The forecast's quantile function at level `p`: linear between stored quantiles.
pub fn quantile_at(quantiles: &[(f64, f64)], p: f64) -> f64 {
    let Some(&(first_q, first_v)) = quantiles.first() else {
        return 0.0;
    };
    if p <= first_q {
        return first_v;
    }
    for pair in quantiles.windows(2) {
        let ((q0, v0), (q1, v1)) = (pair[0], pair[1]);
        // A stored level is returned as stored: interpolating to it can miss it by a
        // rounding error, and `--min-forecast` then drops a row showing the bound.
        if (p - q1).abs() < 1e-12 {
            return v1;
        }
        if p <= q1 {
            return v0 + (v1 - v0) * (p - q0) / (q1 - q0);
        }
    }
    quantiles.last().map_or(0.0, |&(_, v)| v)
}

pub fn reorder_quantity(quantiles: &[(f64, f64)], stock: i64, service_level: f64) -> i64 {
    let need = (quantile_at(quantiles, service_level) - 1e-9)
        .ceil()
        .max(0.0) as i64;
    (need - stock.max(0)).max(0)
}

pub fn build(
    model: &ModelInfo,
    month: crate::month::Month,
    lines: &[ForecastLine],
    levels: &[f64],
    service_level: f64,
) -> Report {
    let mut columns = vec![
        Column::new("product_id", "ID"),
        Column::new("barcode", "Штрихкод"),
        Column::new("artist", "Исполнитель"),
        Column::new("album", "Альбом"),
        Column::new("condition", "Состояние"),
        Column::new("style", "Стиль"),
        Column::new("release_type", "Тип"),
        Column::new("price_category", "Ценовая категория"),
        Column::new("price_rub", "Цена, руб."),
        Column::new("recording_year", "Год записи"),
        Column::new("forecast_month", "Месяц прогноза"),
    ];
    columns.extend(forecast_columns(levels));
    columns.extend([
        Column::new("last_month_units", "Продажи прошлого месяца (шт)"),
        Column::new("availability", "Доступность"),
        Column::new("confidence", "Уверенность"),
        Column::new("mean_sales_units", "Средние продажи (шт)"),
        Column::new("mean_sales_rub", "Средние продажи (руб)"),
        Column::new("lost_sales_rub", "Потерянные продажи (руб)"),
        Column::new("stock", "Остаток (шт)"),
        Column::new("reorder_units", "Дозаказ (шт)"),
    ]);
    let rows = lines
        .iter()
        .map(|line| row(line, month, levels, service_level))
        .collect();
    Report {
        title: format!("Forecast for {month} (model {})", model.id),
        columns,
        rows,
        appendices: Vec::new(),
        meta: serde_json::json!({
            "kind": "forecast",
            "model_id": model.id,
            "forecast_month": month,
            "trained_on": [model.first_month, model.last_month],
            "features_month": month.prev(),
            "service_level": service_level,
        }),
    }
}

/// One product's line: what it is, its quantiles, last month's figures, stock and the
/// reorder quantity at `service_level`.
fn row(
    line: &ForecastLine,
    month: crate::month::Month,
    levels: &[f64],
    service_level: f64,
) -> Vec<Value> {
    let mut row = vec![
        Value::Int(line.product_id),
        line.barcode.clone().map_or(Value::Missing, Value::Text),
        Value::Text(line.artist.clone()),
        Value::Text(line.album.clone()),
        Value::Text(line.condition.clone()),
        Value::Text(line.style.clone()),
        Value::Text(line.release_type.clone()),
        Value::Text(line.price_category.clone()),
        Value::Number(line.price, 2),
        Value::Int(line.recording_year as i64),
        Value::Text(month.to_string()),
    ];
    for &q in levels {
        let units = line
            .quantiles
            .iter()
            .find(|(l, _)| (l - q).abs() < 1e-9)
            .map(|&(_, u)| u);
        row.push(units.map_or(Value::Missing, |u| Value::Number(u, 2)));
    }
    match line.last_month {
        Some(l) => row.extend([
            Value::Int(l.units_sold),
            Value::Number(l.availability, 3),
            Value::Number(l.confidence, 3),
            Value::Number(l.mean_sales_units, 3),
            Value::Number(l.mean_sales_rub, 2),
            Value::Number(l.lost_sales_rub, 2),
        ]),
        // No row in the last month: the product was not on the shelf and sold nothing.
        None => row.extend([
            Value::Int(0),
            Value::Number(0.0, 3),
            Value::Number(0.0, 3),
            Value::Number(0.0, 3),
            Value::Number(0.0, 2),
            Value::Number(0.0, 2),
        ]),
    }
    row.push(Value::Int(line.stock));
    row.push(Value::Int(reorder_quantity(
        &line.quantiles,
        line.stock,
        service_level,
    )));
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_covers_the_service_level_quantile() {
        let q = [
            (0.05, 0.0),
            (0.25, 1.0),
            (0.5, 2.0),
            (0.75, 3.0),
            (0.95, 7.0),
        ];
        // Q(0.9) = 3 + (7 − 3)·(0.15/0.2) = 6 → order 6 − 2 = 4
        assert!((quantile_at(&q, 0.9) - 6.0).abs() < 1e-12);
        assert_eq!(reorder_quantity(&q, 2, 0.9), 4);
        assert_eq!(reorder_quantity(&q, 10, 0.9), 0);
        // Q(0.6) = 2.4 → need 3
        assert_eq!(reorder_quantity(&q, 0, 0.6), 3);
        assert_eq!(quantile_at(&q, 0.99), 7.0);
        assert_eq!(quantile_at(&q, 0.01), 0.0);
    }

    /// A stored level comes back exactly: 0.03 + (0.29 − 0.03)·1 is not 0.29 in floats.
    #[test]
    fn a_stored_level_is_returned_as_stored() {
        let q = [(0.25, 0.03), (0.5, 0.29), (0.75, 1.0)];
        assert_eq!(quantile_at(&q, 0.5), 0.29);
    }
}
