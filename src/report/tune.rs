//! The tune table: the best trial's settings beside the current ones, both scores on
//! the same backtest months and the gain; then every evaluation of the study.

use super::{Column, Report, Value};
use crate::forecast::tune::schedule::{Schedule, find};
use crate::forecast::tune::{CURRENT, Outcome, StudyRecord, TrialRecord, TrialScore};

/// One summary cell computed from a score.
type Cell = fn(&TrialScore) -> Value;

pub fn build(
    study: &StudyRecord,
    schedule: &Schedule,
    stored: &[TrialRecord],
    complete: bool,
) -> Report {
    let current = find(stored, CURRENT, study.max_epochs);
    let best = schedule.best(stored);
    let gain = match (
        best.and_then(TrialRecord::pinball),
        current.and_then(TrialRecord::pinball),
    ) {
        (Some(b), Some(c)) if c > 0.0 && best.is_some_and(|b| b.epochs == study.max_epochs) => {
            Some(1.0 - b / c)
        }
        _ => None,
    };
    let columns = vec![
        Column::new("setting", "Настройка"),
        Column::new("current", "Текущая"),
        Column::new("best", "Лучшая"),
    ];
    let rows = comparison_rows(study, current, best, gain);
    let months = current
        .or(best)
        .and_then(TrialRecord::score)
        .map(|s| s.months.clone())
        .unwrap_or_default();
    Report {
        title: format!(
            "Tune {}: best trial beside the current settings, pooled backtest over {} month(s){}",
            study.id,
            study.months,
            if complete { "" } else { " (unfinished)" }
        ),
        columns,
        rows,
        appendices: vec![trials_table(stored)],
        meta: serde_json::json!({
            "kind": "tune",
            "study_id": study.id,
            "created_at": study.created_at,
            "complete": complete,
            "months": months,
            "budgets": schedule.budgets,
            "searched": study.searched,
            "fixed": study.fixed,
            "best_trial": best.map(|b| b.trial),
            "best": best,
            "current": current,
            "gain": gain,
            "trials": stored,
        }),
    }
}

/// One row per searched setting, then the scores, the trials and the gain: the current
/// settings' column beside the best trial's.
fn comparison_rows(
    study: &StudyRecord,
    current: Option<&TrialRecord>,
    best: Option<&TrialRecord>,
    gain: Option<f64>,
) -> Vec<Vec<Value>> {
    let text = |s: String| Value::Text(s);
    let mut rows = Vec::new();
    for key in &study.searched {
        let value = |r: Option<&TrialRecord>| {
            r.and_then(|r| r.values.get(key))
                .map_or(Value::Missing, |v| text(v.to_string()))
        };
        rows.push(vec![text(key.clone()), value(current), value(best)]);
    }
    let score =
        |r: Option<&TrialRecord>, f: Cell| r.and_then(TrialRecord::score).map_or(Value::Missing, f);
    let summaries: [(&str, Cell); 4] = [
        ("pinball (pooled)", |s| Value::Number(s.pinball, 4)),
        ("coverage 5–95 %", |s| Value::Number(s.coverage, 3)),
        ("WAPE (median)", |s| {
            s.wape.map_or(Value::Missing, |w| Value::Number(w, 3))
        }),
        ("best classical baseline", |s| {
            Value::Text(format!(
                "{} {:.4}",
                s.best_baseline, s.best_baseline_pinball
            ))
        }),
    ];
    for (name, f) in summaries {
        rows.push(vec![
            text(name.to_string()),
            score(current, f),
            score(best, f),
        ]);
    }
    rows.push(vec![
        text("trial (epochs)".to_string()),
        current.map_or(Value::Missing, |r| {
            text(format!("{} ({})", r.trial, r.epochs))
        }),
        best.map_or(Value::Missing, |r| {
            text(format!("{} ({})", r.trial, r.epochs))
        }),
    ]);
    rows.push(vec![
        text("gain vs current".to_string()),
        Value::Missing,
        gain.map_or(Value::Missing, |g| text(format!("{:+.1} %", g * 100.0))),
    ]);
    rows
}

/// Every evaluation, the full-budget ones first, best first.
fn trials_table(stored: &[TrialRecord]) -> (String, Vec<Column>, Vec<Vec<Value>>) {
    let columns = vec![
        Column::new("trial", "Попытка"),
        Column::new("epochs", "Эпох"),
        Column::new("pinball", "Pinball"),
        Column::new("coverage_5_95", "Покрытие 5–95 %"),
        Column::new("wape_median", "WAPE медианы"),
        Column::new("seconds", "Секунд"),
        Column::new("outcome", "Итог"),
    ];
    let mut sorted: Vec<&TrialRecord> = stored.iter().collect();
    sorted.sort_by(|a, b| {
        b.epochs.cmp(&a.epochs).then(
            a.pinball()
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.pinball().unwrap_or(f64::INFINITY)),
        )
    });
    let rows = sorted
        .into_iter()
        .map(|r| {
            let score = r.score();
            vec![
                Value::Int(r.trial as i64),
                Value::Int(r.epochs as i64),
                score.map_or(Value::Missing, |s| Value::Number(s.pinball, 4)),
                score.map_or(Value::Missing, |s| Value::Number(s.coverage, 3)),
                score
                    .and_then(|s| s.wape)
                    .map_or(Value::Missing, |w| Value::Number(w, 3)),
                Value::Number(r.seconds, 1),
                Value::Text(match &r.outcome {
                    Outcome::Scored(_) if r.trial == CURRENT => "current settings".to_string(),
                    Outcome::Scored(_) => "scored".to_string(),
                    Outcome::Failed(why) => format!("failed: {why}"),
                }),
            ]
        })
        .collect();
    ("Evaluations".to_string(), columns, rows)
}
