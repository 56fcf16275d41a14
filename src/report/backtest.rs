//! The backtest report: every method's scores per origin month and pooled, with each
//! one's pinball gain over the best classical baseline.

use super::{Column, Report, Value};
use crate::forecast::backtest::{BacktestRecord, MethodScore};

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
