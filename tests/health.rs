//! End-to-end tests of `plastinka health`: every component with a reason, exit codes for
//! cron, and never a change to the database.

mod common;
use common::*;

/// Health as of 3 November 2026 unless `extra` names another day.
fn health(ws: &Workspace, extra: &[&str]) -> (i32, serde_json::Value) {
    let before = ws.db_bytes();
    let as_of: &[&str] = if extra.contains(&"--as-of") {
        &[]
    } else {
        &["--as-of", "2026-11-03"]
    };
    let out = ws
        .plastinka()
        .args(["--json", "health"])
        .args(as_of)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(ws.db_bytes(), before, "health changed the database");
    (out.status.code().unwrap(), json(&out))
}

/// Trains the small test model and sets its stored held-out figures against the
/// baselines: `margin` > 1 makes every baseline's pinball that much worse than the
/// model's, < 1 makes IMAPA's that much better. Whether a model trained in seconds beats
/// nine baselines on the sample shop is not what these tests are about.
fn train_against_baselines(ws: &Workspace, margin: f64) -> String {
    let id = ws.train();
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let text: String = conn
        .query_row(
            "SELECT metrics_json FROM models WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let mut metrics: serde_json::Value = serde_json::from_str(&text).unwrap();
    let model = metrics["validation"]["pinball"].as_f64().unwrap();
    for baseline in metrics["baselines"].as_array_mut().unwrap() {
        let imapa = baseline["name"] == "imapa";
        let pinball = &mut baseline["evaluation"]["pinball"];
        let value = pinball.as_f64().unwrap();
        *pinball = serde_json::json!(match margin > 1.0 {
            true => value.max(model * margin),
            false if imapa => model * margin,
            false => value,
        });
    }
    conn.execute(
        "UPDATE models SET metrics_json = ?1 WHERE id = ?2",
        [metrics.to_string(), id.clone()],
    )
    .unwrap();
    id
}

#[test]
fn a_model_losing_to_a_classical_method_is_degraded_naming_it() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    train_against_baselines(&ws, 0.95);
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 1, "{report:#}");
    let reason = component(&report, "model")["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not beat imapa on pinball"),
        "{reason}"
    );
}

#[test]
fn a_good_store_is_healthy_and_every_component_is_listed() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    train_against_baselines(&ws, 1.05);
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "healthy");
    let names: Vec<&str> = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["database", "data", "model", "remote"]);
    assert_eq!(component(&report, "model")["status"], "healthy");
    assert!(
        component(&report, "model")["details"]["miws_mic_ratio"]
            .as_f64()
            .unwrap()
            < 1.2
    );
    // the human table says the same
    let out = ws
        .plastinka()
        .args(["health", "--as-of", "2026-11-03"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("healthy"));
}

#[test]
fn no_model_is_degraded() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 1);
    assert!(
        component(&report, "model")["reason"]
            .as_str()
            .unwrap()
            .contains("no active model")
    );
    assert_eq!(component(&report, "data")["status"], "healthy");
}

#[test]
fn stale_data_and_an_old_model_are_degraded() {
    let ws = Workspace::with_sample(SMALL_MODEL, false);
    ws.train();
    // trained on data up to 2026-09, judged in March 2027
    let (code, report) = health(&ws, &["--as-of", "2027-03-02"]);
    assert_eq!(code, 1);
    let reason = component(&report, "data")["reason"].as_str().unwrap();
    assert!(
        reason.contains("stale") && reason.contains("2026-09") && reason.contains("2027-02"),
        "{reason}"
    );
    // the store moves on, the model does not
    let sample = sample();
    ws.upload(
        &sample.join("next/stock_2026-11-01.xlsx"),
        &sample.join("next"),
    );
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 1);
    assert!(
        component(&report, "model")["reason"]
            .as_str()
            .unwrap()
            .contains("retrain"),
        "{report:#}"
    );
}

#[test]
fn a_metric_over_the_threshold_is_degraded() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    train_against_baselines(&ws, 1.05);
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 0);
    let out = ws
        .plastinka()
        .env("PLASTINKA_HEALTH_METRIC_THRESHOLD", "0.01")
        .args(["--json", "health", "--as-of", "2026-11-03"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let reason = component(&json(&out), "model")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("MIWS_MIC_Ratio") && reason.contains("0.01"),
        "{reason} / {report}"
    );
}

#[test]
fn a_gap_in_the_months_is_unhealthy() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    // break law 1 behind the tool's back
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute("DELETE FROM months WHERE month = '2025-06'", [])
        .unwrap();
    drop(conn);
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        component(&report, "data")["reason"]
            .as_str()
            .unwrap()
            .contains("2025-06")
    );
}

#[test]
fn a_missing_or_corrupted_database_is_unhealthy() {
    let ws = Workspace::new();
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        component(&report, "database")["reason"]
            .as_str()
            .unwrap()
            .contains("plastinka upload")
    );
    assert!(
        ws.db_litter().is_empty(),
        "health created a database: {:?}",
        ws.db_litter()
    );

    std::fs::write(
        ws.db(),
        b"this is not a database, just some bytes pretending to be one",
    )
    .unwrap();
    let (code, report) = health(&ws, &[]);
    assert_eq!(code, 2);
    assert_eq!(component(&report, "database")["status"], "unhealthy");
}
