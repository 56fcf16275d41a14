//! `plastinka health`: every component with its status and the reason, never omitted
//! (the original dropped the model component exactly when it was fine and answered a bare
//! 503 without reasons). Read-only: the database is opened read-only and never changed.

use crate::config::Config;
use crate::month::{Month, describe};
use crate::store::Store;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Healthy,
    /// Not set up, and not needed for the local cycle (remote training).
    NotConfigured,
    Degraded,
    Unhealthy,
}

impl Status {
    /// cron: 0 healthy, 1 degraded, 2 unhealthy.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Healthy | Status::NotConfigured => 0,
            Status::Degraded => 1,
            Status::Unhealthy => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub name: &'static str,
    pub status: Status,
    pub reason: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub status: Status,
    pub checked_on: chrono::NaiveDate,
    pub components: Vec<Component>,
}

fn component(
    name: &'static str,
    status: Status,
    reason: impl Into<String>,
    details: serde_json::Value,
) -> Component {
    Component {
        name,
        status,
        reason: reason.into(),
        details,
    }
}

/// Checks everything as of `today` (the data is fresh when its newest complete month is
/// the calendar month before `today`'s).
pub fn check(db: &Path, config: &Config, today: chrono::NaiveDate, online: bool) -> Health {
    let mut components = Vec::new();
    let store = match Store::open_read_only(db, config.database.limits()) {
        Ok(Some(store)) => Some(store),
        Ok(None) => {
            components.push(component(
                "database",
                Status::Unhealthy,
                format!("no database at {}: run `plastinka upload`", db.display()),
                serde_json::json!({ "path": db }),
            ));
            None
        }
        Err(e) => {
            components.push(component(
                "database",
                Status::Unhealthy,
                format!("cannot open: {e:#}"),
                serde_json::json!({ "path": db }),
            ));
            None
        }
    };
    match &store {
        Some(store) => {
            let database = database_component(store);
            let usable = database.status != Status::Unhealthy;
            components.push(database);
            if usable {
                components.push(data_component(store, today));
                components.push(model_component(store, config));
            } else {
                components.push(component(
                    "data",
                    Status::Unhealthy,
                    "database unusable",
                    serde_json::Value::Null,
                ));
                components.push(component(
                    "model",
                    Status::Unhealthy,
                    "database unusable",
                    serde_json::Value::Null,
                ));
            }
        }
        None => {
            components.push(component(
                "data",
                Status::Unhealthy,
                "no database",
                serde_json::Value::Null,
            ));
            components.push(component(
                "model",
                Status::Unhealthy,
                "no database",
                serde_json::Value::Null,
            ));
        }
    }
    let open_jobs: Vec<crate::remote::job::RemoteJob> = store
        .as_ref()
        .and_then(|s| s.jobs().ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j.state.is_open())
        .collect();
    components.push(remote_component(&config.remote, online, &open_jobs));
    let status = components
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Healthy);
    let status = if status == Status::NotConfigured {
        Status::Healthy
    } else {
        status
    };
    Health {
        status,
        checked_on: today,
        components,
    }
}

fn database_component(store: &Store) -> Component {
    let details = |version: usize| serde_json::json!({ "path": store.path(), "schema_version": version, "latest_schema_version": crate::store::latest_schema_version() });
    let version = match store.schema_version() {
        Ok(v) => v,
        Err(e) => {
            return component(
                "database",
                Status::Unhealthy,
                format!("not a readable SQLite database: {e:#}"),
                serde_json::Value::Null,
            );
        }
    };
    match store.integrity() {
        Ok(result) if result == "ok" => {
            if version < crate::store::latest_schema_version() {
                component(
                    "database",
                    Status::Degraded,
                    format!(
                        "schema version {version} is older than {}; the next write migrates it",
                        crate::store::latest_schema_version()
                    ),
                    details(version),
                )
            } else {
                component(
                    "database",
                    Status::Healthy,
                    "opens, integrity check ok, schema current",
                    details(version),
                )
            }
        }
        Ok(result) => component(
            "database",
            Status::Unhealthy,
            format!("integrity check failed: {result}"),
            details(version),
        ),
        Err(e) => component(
            "database",
            Status::Unhealthy,
            format!("integrity check failed: {e:#}"),
            details(version),
        ),
    }
}

fn data_component(store: &Store, today: chrono::NaiveDate) -> Component {
    let months = match store.stored_months() {
        Ok(m) => m.months,
        Err(e) => {
            return component(
                "data",
                Status::Unhealthy,
                format!("cannot read the months: {e:#}"),
                serde_json::Value::Null,
            );
        }
    };
    let (Some(&(first, _)), Some(&(last, _))) = (months.first(), months.last()) else {
        return component(
            "data",
            Status::Unhealthy,
            "no months stored: run `plastinka upload`",
            serde_json::Value::Null,
        );
    };
    let present: std::collections::BTreeSet<Month> = months.iter().map(|&(m, _)| m).collect();
    let missing: Vec<Month> = Month::range(first, last)
        .filter(|m| !present.contains(m))
        .collect();
    let newest_complete = months.iter().rev().find(|(_, c)| *c).map(|&(m, _)| m);
    let expected = Month::of(today).prev();
    let products = store.count("products").unwrap_or(0);
    let rows = store.count("monthly_features").unwrap_or(0);
    let details = serde_json::json!({
        "first_month": first, "last_month": last, "months": months.len(),
        "missing_months": missing, "newest_complete_month": newest_complete,
        "expected_newest_month": expected, "products": products, "monthly_rows": rows,
    });
    if !missing.is_empty() {
        return component(
            "data",
            Status::Unhealthy,
            format!("months missing inside the history: {}", describe(&missing)),
            details,
        );
    }
    match newest_complete {
        Some(m) if m >= expected => component(
            "data",
            Status::Healthy,
            format!("{} months {first}…{last}, up to date", months.len()),
            details,
        ),
        Some(m) => component(
            "data",
            Status::Degraded,
            format!(
                "stale: the newest complete month is {m}, expected {expected}; upload the missing month(s)"
            ),
            details,
        ),
        None => component(
            "data",
            Status::Degraded,
            "no complete month stored",
            details,
        ),
    }
}

fn model_component(store: &Store, config: &Config) -> Component {
    let threshold = config.health.metric_threshold;
    let model = match store.model_info(None) {
        Ok(Some(m)) => m,
        Ok(None) => {
            let (note, backtest) = latest_backtest(store);
            return component(
                "model",
                Status::Degraded,
                format!("no active model: run `plastinka train`{note}"),
                serde_json::json!({ "threshold": threshold, "backtest": backtest }),
            );
        }
        Err(e) => {
            return component(
                "model",
                Status::Unhealthy,
                format!("cannot read the models: {e:#}"),
                serde_json::Value::Null,
            );
        }
    };
    // A partial newest month is never trained on: a model is current when it has seen
    // the newest complete month.
    let newest = store.stored_months().ok().and_then(|m| {
        m.months
            .iter()
            .rev()
            .find(|&&(_, complete)| complete)
            .map(|&(m, _)| m)
    });
    let age = newest.map_or(0, |n| model.last_month.until(n));
    let ratio = model.metrics["validation"]["miws_mic_ratio"].as_f64();
    let pinball = model.metrics["validation"]["pinball"].as_f64();
    let losing = baselines_not_beaten(&model.metrics);
    // The active model must load: its weights match their checksum and fit its settings.
    let loads = store
        .load_model(Some(&model.id))
        .and_then(|r| r.ok_or_else(|| anyhow::anyhow!("model {} vanished", model.id)))
        .and_then(|r| r.check_loads());
    let details = serde_json::json!({
        "model_id": model.id, "trained_on": [model.first_month, model.last_month], "forecast_month": model.forecast_month,
        "months_behind_data": age, "miws_mic_ratio": ratio, "threshold": threshold, "pinball": pinball,
        "baselines_not_beaten": losing, "loads": loads.is_ok(),
    });
    if let Err(e) = loads {
        return component(
            "model",
            Status::Unhealthy,
            format!("the active model {} cannot be used: {e:#}", model.id),
            details,
        );
    }
    let (backtest_note, backtest) = latest_backtest(store);
    let mut details = details;
    details["backtest"] = backtest;
    details["tuned_settings"] = match store.active_tuned() {
        Ok(tuned) => serde_json::json!(tuned.map(|t| t.provenance())),
        Err(e) => serde_json::json!(format!("cannot be read: {e:#}")),
    };
    let problems = model_problems(&model, age, ratio, threshold, &losing);
    if problems.is_empty() {
        component(
            "model",
            Status::Healthy,
            format!(
                "model {}: MIWS_MIC_Ratio {:.3} < {threshold}, beats every baseline, current{backtest_note}",
                model.id,
                ratio.unwrap_or(f64::NAN)
            ),
            details,
        )
    } else {
        component(
            "model",
            Status::Degraded,
            format!("{}{backtest_note}", problems.join("; ")),
            details,
        )
    }
}

/// The baselines whose held-out pinball the model's does not beat.
fn baselines_not_beaten(metrics: &serde_json::Value) -> Vec<String> {
    let pinball = metrics["validation"]["pinball"].as_f64();
    metrics["baselines"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|b| match (pinball, b["evaluation"]["pinball"].as_f64()) {
                    (Some(m), Some(b)) => m >= b,
                    _ => false,
                })
                .filter_map(|b| b["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Why a model that loads is degraded: behind the data, over the metric threshold, or
/// beaten by a baseline (empty when it is none of these).
fn model_problems(
    model: &crate::store::reports::ModelInfo,
    age: i32,
    ratio: Option<f64>,
    threshold: f64,
    losing: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    if age > 0 {
        problems.push(format!(
            "trained on data up to {}, the store has {} more complete month(s): retrain",
            model.last_month, age
        ));
    }
    match ratio {
        Some(r) if r >= threshold => problems.push(format!("MIWS_MIC_Ratio {r:.3} ≥ threshold {threshold} (lower is better): run `plastinka tune` or retrain")),
        None => problems.push("no MIWS_MIC_Ratio stored".to_string()),
        _ => {}
    }
    if !losing.is_empty() {
        problems.push(format!(
            "does not beat {} on pinball loss: `plastinka tune` searches for better settings",
            losing.join(", ")
        ));
    }
    problems
}

/// The newest backtest in a sentence and as details (null when there is none).
fn latest_backtest(store: &Store) -> (String, serde_json::Value) {
    let record = match store.backtest(None) {
        Ok(Some(record)) => record,
        Ok(None) => return (String::new(), serde_json::Value::Null),
        Err(e) => {
            return (
                format!("; the latest backtest cannot be read: {e:#}"),
                serde_json::Value::Null,
            );
        }
    };
    let result = &record.result;
    let (Some(model), Some(best)) = (result.model(), result.best_baseline()) else {
        return (String::new(), serde_json::Value::Null);
    };
    let gain = 1.0 - model.evaluation.pinball / best.evaluation.pinball;
    let months: Vec<String> = result.months.iter().map(|m| m.month.to_string()).collect();
    let note = format!(
        "; latest backtest ({}, {} month(s) to {}): pooled pinball {:.4} vs {} {:.4} ({:+.1} %), 5–95 % coverage {:.3}",
        record.created_at,
        months.len(),
        months.last().map_or("?", String::as_str),
        model.evaluation.pinball,
        best.method,
        best.evaluation.pinball,
        gain * 100.0,
        model.evaluation.coverage
    );
    let details = serde_json::json!({
        "id": record.id, "created_at": record.created_at, "months": months,
        "model_pinball": model.evaluation.pinball, "best_baseline": best.method,
        "best_baseline_pinball": best.evaluation.pinball, "gain": gain,
        "coverage_5_95": model.evaluation.coverage,
    });
    (note, details)
}

fn remote_component(
    config: &crate::config::RemoteConfig,
    online: bool,
    open_jobs: &[crate::remote::job::RemoteJob],
) -> Component {
    use crate::remote::auth::Credential;
    let credential = Credential::from_env();
    let configured = !config.project_id.is_empty();
    let running: Vec<String> = open_jobs
        .iter()
        .map(|j| format!("{} ({}, since {})", j.id, j.state.name(), j.created_at))
        .collect();
    // Only which variable holds a credential is reported — never its value.
    let details = serde_json::json!({
        "project_id": config.project_id,
        "folder_id": config.folder_id,
        "credential": credential.as_ref().ok().and_then(|c| c.as_ref().map(Credential::source)),
        "online_check": online,
        "open_jobs": running,
    });
    let jobs_note = if running.is_empty() {
        String::new()
    } else {
        format!(
            "; still running: {} (`plastinka jobs wait ID`)",
            running.join(", ")
        )
    };
    let credential = match credential {
        Ok(c) => c,
        Err(e) => {
            return component("remote", Status::Unhealthy, format!("{e:#}"), details);
        }
    };
    match (&credential, configured) {
        (None, false) => component(
            "remote",
            Status::NotConfigured,
            format!(
                "DataSphere not configured (no remote.project_id, no {} / YC_OAUTH_TOKEN / YC_IAM_TOKEN); training runs locally{jobs_note}",
                crate::remote::auth::KEY_FILE_VARIABLE
            ),
            details,
        ),
        (None, true) => component(
            "remote",
            Status::Degraded,
            format!(
                "remote.project_id is set but no credential ({}, YC_OAUTH_TOKEN, YC_IAM_TOKEN) is in the environment{jobs_note}",
                crate::remote::auth::KEY_FILE_VARIABLE
            ),
            details,
        ),
        (Some(c), false) => component(
            "remote",
            Status::NotConfigured,
            format!(
                "{} is set but remote.project_id is not; training runs locally{jobs_note}",
                c.source()
            ),
            details,
        ),
        (Some(c), true) if !online => component(
            "remote",
            Status::Healthy,
            format!(
                "project {} and {} present (not checked online; use --online){jobs_note}",
                config.project_id,
                c.source()
            ),
            details,
        ),
        (Some(c), true) => match crate::remote::check_online(config) {
            Ok(what) => component(
                "remote",
                Status::Healthy,
                format!("{}: {what}{jobs_note}", c.source()),
                details,
            ),
            Err(e) => component("remote", Status::Unhealthy, format!("{e:#}"), details),
        },
    }
}
