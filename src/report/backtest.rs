//! The backtest report: every method's scores per origin month and pooled, with each
//! one's pinball gain over the best classical baseline.

use super::{Column, Report, Value};
use crate::forecast::backtest::{self, BacktestRecord, MethodScore, ProductOutcomes};
use crate::store::reports::ProductLabel;
use std::collections::HashMap;

pub fn build(record: &BacktestRecord) -> Report {
    let result = &record.result;
    let best = result.best_baseline().map(|b| b.evaluation.pinball);
    let columns = vec![
        Column::new("month", "Месяц"),
        Column::new("forecast", "Прогноз"),
        Column::new("products", "Товаров"),
        Column::new("pinball", "Pinball"),
        Column::new("gain_vs_best_baseline", "Выигрыш к лучшему базовому"),
        Column::new("wape_median", "WAPE медианы"),
        Column::new("coverage_5_95", "Покрытие 5–95 %"),
        Column::new("coverage_25_75", "Покрытие 25–75 %"),
        Column::new("miws", "MIWS"),
        Column::new("mic", "MIC"),
        Column::new("miws_mic_ratio", "MIWS_MIC_Ratio"),
    ];
    let row = |month: String, score: &MethodScore, best: Option<f64>| {
        let e = &score.evaluation;
        vec![
            Value::Text(month),
            Value::Text(score.method.clone()),
            Value::Int(e.products as i64),
            Value::Number(e.pinball, 4),
            best.filter(|b| *b > 0.0)
                .map_or(Value::Missing, |b| Value::Number(1.0 - e.pinball / b, 3)),
            e.wape.map_or(Value::Missing, |w| Value::Number(w, 3)),
            Value::Number(e.coverage, 3),
            e.coverage_inner
                .map_or(Value::Missing, |c| Value::Number(c, 3)),
            Value::Number(e.miws, 4),
            Value::Number(e.mic, 4),
            Value::Number(e.miws_mic_ratio, 4),
        ]
    };
    let mut rows = Vec::new();
    for month in &result.months {
        let best_here = month
            .scores
            .iter()
            .filter(|s| s.method != "model")
            .map(|s| s.evaluation.pinball)
            .min_by(f64::total_cmp);
        for score in &month.scores {
            rows.push(row(month.month.to_string(), score, best_here));
        }
    }
    for score in &result.pooled {
        rows.push(row("pooled".to_string(), score, best));
    }
    let first = result.months.first().map(|m| m.month.to_string());
    let last = result.months.last().map(|m| m.month.to_string());
    Report {
        title: format!(
            "Backtest {} over {} … {}",
            record.id,
            first.as_deref().unwrap_or("?"),
            last.as_deref().unwrap_or("?")
        ),
        columns,
        rows,
        appendices: Vec::new(),
        meta: serde_json::json!({
            "kind": "backtest",
            "backtest_id": record.id,
            "created_at": record.created_at,
            "months": result.months.iter().map(|m| m.month).collect::<Vec<_>>(),
            "best_baseline": result.best_baseline().map(|b| &b.method),
            "model": record.model,
            "training": record.training,
        }),
    }
}

/// Every product's forecast by every method in each backtest month, beside what sold: one
/// row per (month, product, method), the quantiles in columns.
pub fn forecasts(
    record: &BacktestRecord,
    outcomes: &[ProductOutcomes],
    labels: &HashMap<i64, ProductLabel>,
) -> Report {
    let levels = &record.model.quantiles;
    let mut columns = vec![
        Column::new("month", "Месяц"),
        Column::new("product_id", "Товар"),
        Column::new("barcode", "Штрихкод"),
        Column::new("artist", "Исполнитель"),
        Column::new("album", "Альбом"),
        Column::new("shelf", "На полке в начале месяца"),
        Column::new("actual", "Продано"),
        Column::new("forecast", "Прогноз"),
    ];
    columns.extend(super::forecast_columns(levels));
    let mut rows = Vec::new();
    for product in outcomes {
        let label = labels.get(&product.product_id);
        for (method, quantiles) in backtest::methods().zip(&product.quantiles) {
            let mut row = vec![
                Value::Text(product.month.to_string()),
                Value::Int(product.product_id),
                label
                    .and_then(|l| l.barcode.clone())
                    .map_or(Value::Missing, Value::Text),
                label.map_or(Value::Missing, |l| Value::Text(l.artist.clone())),
                label.map_or(Value::Missing, |l| Value::Text(l.album.clone())),
                Value::Number(product.shelf, 0),
                Value::Number(product.actual, 0),
                Value::Text(method.to_string()),
            ];
            row.extend(quantiles.iter().map(|&q| Value::Number(q, 2)));
            rows.push(row);
        }
    }
    Report {
        title: format!("Backtest {}: every forecast", record.id),
        columns,
        rows,
        appendices: Vec::new(),
        meta: serde_json::json!({"kind": "backtest_forecasts", "backtest_id": record.id}),
    }
}
