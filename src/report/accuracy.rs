//! The accuracy report: once a forecast month's actual sales are stored, what the model
//! said beside what happened — per product and in total, next to the baselines.
//! A forecast product without a row in that month sold nothing (it was not on the shelf).

use super::{Column, Report, Value, forecast_columns};
use crate::forecast::baselines::Baseline;
use crate::forecast::history::History;
use crate::forecast::loss::pinball;
use crate::forecast::metrics::{Evaluation, Outcome, evaluate};
use crate::forecast::scaler::LogMinMax;
use crate::store::reports::{ForecastLine, ModelInfo};
use std::collections::HashMap;

pub fn build(
    model: &ModelInfo,
    month: crate::month::Month,
    lines: &[ForecastLine],
    actual: &HashMap<i64, f64>,
    history: &History,
    levels: &[f64],
    scaler: &LogMinMax,
) -> Report {
    let mut columns = vec![
        Column::new("product_id", "ID"),
        Column::new("artist", "Исполнитель"),
        Column::new("album", "Альбом"),
        Column::new("condition", "Состояние"),
        Column::new("month", "Месяц"),
    ];
    columns.extend(forecast_columns(levels));
    columns.extend([
        Column::new("actual_units", "Факт (шт)"),
        Column::new("error_median_units", "Ошибка медианы (шт)"),
        Column::new("pinball", "Pinball"),
        Column::new("in_interval", "В интервале"),
    ]);
    let mut outcomes = Vec::new();
    let mut rows = Vec::new();
    let mut evaluated = Vec::new();
    for line in lines {
        let units: Vec<f64> = line.quantiles.iter().map(|&(_, u)| u).collect();
        if units.len() != levels.len() {
            continue;
        }
        let y = actual.get(&line.product_id).copied().unwrap_or(0.0);
        let median = super::forecast::quantile_at(&line.quantiles, 0.5);
        let loss = levels
            .iter()
            .zip(&units)
            .map(|(&q, &f)| pinball(q, y, f))
            .sum::<f64>()
            / levels.len() as f64;
        let covered = units[0] <= y && y <= units[units.len() - 1];
        let mut row = vec![
            Value::Int(line.product_id),
            Value::Text(line.artist.clone()),
            Value::Text(line.album.clone()),
            Value::Text(line.condition.clone()),
            Value::Text(month.to_string()),
        ];
        row.extend(units.iter().map(|&u| Value::Number(u, 2)));
        row.extend([
            Value::Number(y, 0),
            Value::Number((y - median).abs(), 2),
            Value::Number(loss, 4),
            Value::Text(if covered { "yes" } else { "no" }.into()),
        ]);
        rows.push(row);
        outcomes.push(Outcome {
            quantiles: units,
            actual: y,
        });
        evaluated.push(line.product_id);
    }

    let mut summary: Vec<(String, Evaluation)> =
        vec![("model".to_string(), evaluate(&outcomes, levels, scaler))];
    summary.extend(baselines(
        history, month, &evaluated, actual, levels, scaler,
    ));
    let (summary_columns, summary_rows) = summary_table(&summary);
    Report {
        title: format!(
            "Accuracy of the forecast for {} (model {})",
            month, model.id
        ),
        columns,
        rows,
        appendices: vec![("Summary".to_string(), summary_columns, summary_rows)],
        meta: serde_json::json!({
            "kind": "accuracy",
            "model_id": model.id,
            "month": month,
            "summary": summary.iter().map(|(n, e)| serde_json::json!({"forecast": n, "evaluation": e})).collect::<Vec<_>>(),
        }),
    }
}

/// Every baseline's evaluation on the same products (`evaluated`) and month, when the
/// history holds that month.
fn baselines(
    history: &History,
    month: crate::month::Month,
    evaluated: &[i64],
    actual: &HashMap<i64, f64>,
    levels: &[f64],
    scaler: &LogMinMax,
) -> Vec<(String, Evaluation)> {
    let Some(target) = history.months.iter().position(|&m| m == month) else {
        return Vec::new();
    };
    let index: HashMap<i64, usize> = history
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();
    Baseline::ALL
        .iter()
        .map(|baseline| {
            let outcomes: Vec<Outcome> = evaluated
                .iter()
                .filter_map(|id| index.get(id).map(|&i| (id, i)))
                .map(|(id, i)| Outcome {
                    quantiles: baseline.quantiles(history, i, target, levels),
                    actual: actual.get(id).copied().unwrap_or(0.0),
                })
                .collect();
            (
                baseline.name().to_string(),
                evaluate(&outcomes, levels, scaler),
            )
        })
        .collect()
}

/// The summary appendix: one row per forecast (the model, then the baselines).
fn summary_table(summary: &[(String, Evaluation)]) -> (Vec<Column>, Vec<Vec<Value>>) {
    let summary_columns = vec![
        Column::new("forecast", "Прогноз"),
        Column::new("products", "Товаров"),
        Column::new("pinball", "Pinball"),
        Column::new("wape_median", "WAPE медианы"),
        Column::new("coverage", "Покрытие интервала"),
        Column::new("miws", "MIWS"),
        Column::new("mic", "MIC"),
        Column::new("miws_mic_ratio", "MIWS_MIC_Ratio"),
    ];
    let summary_rows = summary
        .iter()
        .map(|(name, e)| {
            vec![
                Value::Text(name.clone()),
                Value::Int(e.products as i64),
                Value::Number(e.pinball, 4),
                e.wape.map_or(Value::Missing, |w| Value::Number(w, 3)),
                Value::Number(e.coverage, 3),
                Value::Number(e.miws, 4),
                Value::Number(e.mic, 4),
                Value::Number(e.miws_mic_ratio, 4),
            ]
        })
        .collect();
    (summary_columns, summary_rows)
}
