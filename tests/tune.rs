//! `plastinka tune` end to end on the sample shop: every trial stored as it finishes, a
//! study resumed after a kill and after a spent time budget, and tuned settings that
//! `train` then uses (beneath the settings file) until deactivated.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// (trial, epochs) → the stored record, for every evaluation of the workspace's studies.
fn evaluations(ws: &Workspace) -> BTreeMap<(i64, i64), String> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT trial, epochs, record_json FROM tune_trials")
        .unwrap();
    stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn stored_evaluations(ws: &Workspace) -> i64 {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let table: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'tune_trials'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if table == 0 {
        return 0;
    }
    conn.query_row("SELECT count(*) FROM tune_trials", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn tune_stores_every_trial_resumes_after_a_kill_and_its_settings_are_what_train_uses() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);

    // Killed as soon as its first evaluation is stored.
    let mut child = ws
        .process()
        .args(["tune", "--trials", "4"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while stored_evaluations(&ws) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "tune ended before it was killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no evaluation stored"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = evaluations(&ws);
    // 4 candidates at 5 epochs + the current settings at 30, then the best 2 at 30.
    assert!(!before.is_empty() && before.len() < 7, "{before:?}");

    // Re-running continues the study: what was stored stays, the rest is added.
    let out = ws
        .plastinka()
        .args(["--json", "tune", "--trials", "4"])
        .output()
        .unwrap();
    let report = ok(&out);
    let after = evaluations(&ws);
    for (key, record) in &before {
        assert_eq!(after.get(key), Some(record), "evaluation {key:?} changed");
    }
    let keys: Vec<(i64, i64)> = after.keys().copied().collect();
    assert_eq!(after.len(), 7, "{keys:?}");
    for trial in 1..=4 {
        assert!(after.contains_key(&(trial, 5)), "{keys:?}");
    }
    assert!(after.contains_key(&(0, 30)));
    assert_eq!(after.keys().filter(|k| k.1 == 30 && k.0 != 0).count(), 2);
    assert_eq!(ws.sql("SELECT count(*) FROM tune_studies"), 1);
    assert_eq!(report["meta"]["complete"], true);
    assert_eq!(
        report["meta"]["resumed_evaluations"].as_u64(),
        Some(before.len() as u64)
    );
    assert_eq!(
        report["meta"]["evaluated_now"].as_u64(),
        Some(7 - before.len() as u64),
        "only what was missing is evaluated"
    );
    // The two promoted are the best two of rung 0.
    let rung0: Vec<(f64, i64)> = {
        let mut v: Vec<(f64, i64)> = report["meta"]["trials"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["epochs"] == 5)
            .map(|t| {
                (
                    t["outcome"]["scored"]["pinball"].as_f64().unwrap(),
                    t["trial"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    for (_, trial) in &rung0[..2] {
        assert!(after.contains_key(&(*trial, 30)), "{rung0:?} {keys:?}");
    }
    // The table: current settings beside the best, same months, and the gain.
    let best = report["meta"]["best"].clone();
    let current = report["meta"]["current"].clone();
    assert_eq!(best["epochs"], 30);
    assert_eq!(current["trial"], 0);
    let pinball = |r: &serde_json::Value| r["outcome"]["scored"]["pinball"].as_f64().unwrap();
    let gain = report["meta"]["gain"].as_f64().unwrap();
    assert!((gain - (1.0 - pinball(&best) / pinball(&current))).abs() < 1e-12);
    assert_eq!(
        best["outcome"]["scored"]["months"],
        serde_json::json!(["2026-09", "2026-10"])
    );
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows[0]["setting"], "model.lags");
    assert!(
        rows.iter().all(|r| r["setting"] != "model.hidden_size"),
        "the settings file fixes hidden_size: not searched"
    );

    // `--activate` on the finished study activates the best only if it beats the current.
    let out = ws
        .plastinka()
        .args(["--json", "tune", "--trials", "4", "--activate"])
        .output()
        .unwrap();
    let report = ok(&out);
    assert_eq!(report["meta"]["evaluated_now"], 0, "nothing re-run");
    let beats = pinball(&best) < pinball(&current);
    assert_eq!(report["meta"]["activated"].is_object(), beats, "{report}");

    // `tune activate TRIAL` makes a trial's settings the ones train uses…
    let trial = best["trial"].as_i64().unwrap();
    let values = best["values"].as_object().unwrap().clone();
    assert!(
        values.iter().any(|(k, v)| current["values"][k] != *v),
        "the best trial is the current settings: {values:?}"
    );
    let number = |v: &serde_json::Value| v.as_f64().or(v.as_bool().map(|b| b as u8 as f64));
    let out = ws
        .plastinka()
        .args(["--json", "tune", "activate", &trial.to_string()])
        .output()
        .unwrap();
    assert_eq!(ok(&out)["activated"]["trial"], trial);
    let out = ws.plastinka().args(["--json", "train"]).output().unwrap();
    let summary = ok(&out);
    assert!(
        stderr(&out).contains("settings: tuned (study-"),
        "{}",
        stderr(&out)
    );
    assert!(
        summary["tuned_settings"]
            .as_str()
            .unwrap()
            .contains(&format!("trial {trial}"))
    );
    let active = |field: &str| -> f64 {
        let conn = rusqlite::Connection::open(ws.db()).unwrap();
        conn.query_row(
            &format!("SELECT json_extract(config_json, '$.{field}') FROM models WHERE active = 1"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    for (key, value) in &values {
        assert_eq!(Some(active(key)), number(value), "{key}");
    }
    // … beneath the settings file and the environment.
    assert_eq!(active("model.hidden_size"), 32.0);
    let out = ws
        .plastinka()
        .env("PLASTINKA_MODEL_LAGS", "4")
        .args(["--json", "train"])
        .output()
        .unwrap();
    ok(&out);
    assert!(
        stderr(&out).contains("overridden by model.lags (PLASTINKA_MODEL_LAGS)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(active("model.lags"), 4.0);
    for (key, value) in values.iter().filter(|(k, _)| *k != "model.lags") {
        assert_eq!(Some(active(key)), number(value), "{key}");
    }

    // Tuning again with these settings in use continues the same study: the current
    // settings are now the best trial's, whose full-budget score is reused, not retrained.
    let out = ws
        .plastinka()
        .args(["--json", "tune", "--trials", "4", "--activate"])
        .output()
        .unwrap();
    let report = ok(&out);
    assert_eq!(report["meta"]["evaluated_now"], 0);
    assert_eq!(ws.sql("SELECT count(*) FROM tune_studies"), 1);
    assert_eq!(report["meta"]["current"]["values"], best["values"]);
    let stored_current: serde_json::Value =
        serde_json::from_str(&evaluations(&ws)[&(0, 30)]).unwrap();
    assert_eq!(
        stored_current["values"], best["values"],
        "trial 0 is stored anew"
    );
    assert!(report["meta"]["gain"].as_f64().unwrap().abs() < 1e-12);
    assert!(
        report["meta"]["activation"]
            .as_str()
            .unwrap()
            .contains("does not beat"),
        "{report}"
    );

    // Health names them; settings that no longer load are refused by train and can
    // still be dropped; deactivating returns train to the defaults.
    let health = json(&ws.plastinka().args(["--json", "health"]).output().unwrap());
    let model = component(&health, "model").clone();
    assert!(
        model["details"]["tuned_settings"]
            .as_str()
            .unwrap()
            .contains(&format!("trial {trial}")),
        "{model}"
    );
    assert_eq!(
        ws.sql(
            "UPDATE tuned_settings SET record_json = json_set(record_json, '$.values.\"model.gone\"', 1)
             WHERE active = 1 RETURNING active"
        ),
        1
    );
    refused(
        &ws.plastinka().args(["train"]).output().unwrap(),
        &["model.gone", "tune deactivate"],
    );
    ok(&ws
        .plastinka()
        .args(["--json", "tune", "deactivate"])
        .output()
        .unwrap());
    let out = ws.plastinka().args(["--json", "train"]).output().unwrap();
    assert!(ok(&out)["tuned_settings"].is_null());
    assert!(!stderr(&out).contains("settings: tuned"));
    assert_eq!(active("model.lags"), 10.0);
    assert_eq!(active("training.learning_rate"), 0.001);
}

/// A spent time budget stops the study between evaluations; the next run finishes it,
/// and `tune show` prints it again without training.
#[test]
fn a_spent_time_budget_leaves_a_study_the_next_run_finishes() {
    let ws = Workspace::with_sample(SMALL_MODEL, false);
    let out = ws
        .plastinka()
        .args(["--json", "tune", "--trials", "3", "--time-budget", "1s"])
        .output()
        .unwrap();
    let report = ok(&out);
    assert_eq!(report["meta"]["complete"], false);
    let first = stored_evaluations(&ws);
    // 3 candidates at 5 epochs and the current settings at 30, then the best at 30:
    // evaluations started within the first second finish (on a loaded machine maybe
    // none started), no other starts.
    assert!(first < 5, "{first}");
    assert_eq!(report["meta"]["evaluated_now"].as_i64(), Some(first));

    let out = ws
        .plastinka()
        .args(["--json", "tune", "--trials", "3"])
        .output()
        .unwrap();
    let report = ok(&out);
    assert_eq!(report["meta"]["complete"], true);
    assert_eq!(stored_evaluations(&ws), 5);

    assert_eq!(
        report["meta"]["evaluated_now"].as_i64(),
        Some(5 - first),
        "only what was missing is evaluated"
    );
    let shown = ok(&ws
        .plastinka()
        .args(["--json", "tune", "show"])
        .output()
        .unwrap());
    assert_eq!(shown["rows"], report["rows"]);
    assert_eq!(stored_evaluations(&ws), 5);
}

#[test]
fn tune_refuses_what_it_cannot_do() {
    let ws = Workspace::new();
    refused(
        &ws.plastinka().args(["tune"]).output().unwrap(),
        &["no database", "upload"],
    );
    let out = ws
        .plastinka()
        .args(["tune", "--time-budget", "5x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a duration"), "{}", stderr(&out));

    let ws = Workspace::with_sample(SMALL_MODEL, false);
    refused(
        &ws.plastinka().args(["tune", "show"]).output().unwrap(),
        &["no tuning study yet"],
    );
    refused(
        &ws.plastinka()
            .args(["tune", "activate", "3"])
            .output()
            .unwrap(),
        &["no tuning study yet"],
    );
    // Lags fixed by the file that leave no room for the backtest.
    std::fs::write(
        ws.path("plastinka.toml"),
        format!("{SMALL_MODEL}\n").replace("[model]\n", "[model]\nlags = 12\n"),
    )
    .unwrap();
    refused(
        &ws.plastinka()
            .args(["tune", "--months", "12"])
            .output()
            .unwrap(),
        &["model.lags = 12", "fixed by the settings file"],
    );
    assert_eq!(stored_evaluations(&ws), 0);

    // A failure inside the write of an evaluation stores neither it nor the study.
    std::fs::write(ws.path("plastinka.toml"), SMALL_MODEL).unwrap();
    let out = ws
        .plastinka()
        .env("PLASTINKA_FAULT", "tune-save")
        .args(["tune", "--trials", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("injected fault"), "{}", stderr(&out));
    assert_eq!(stored_evaluations(&ws), 0);
    assert_eq!(ws.sql("SELECT count(*) FROM tune_studies"), 0);
}

/// The shipped `plastinka.toml` lists every setting at its default: such a file neither
/// fixes settings against `tune` nor overrides tuned values with the defaults.
#[test]
fn a_settings_file_restating_the_defaults_leaves_tuned_settings_in_force() {
    let ws = Workspace::with_sample(SMALL_MODEL, false);
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plastinka.toml");
    std::fs::copy(shipped, ws.path("plastinka.toml")).unwrap();
    let record = serde_json::json!({
        "format_version": 1, "activated_at": "2026-11-28T00:00:00Z", "study_id": "study-x",
        "trial": 3, "values": { "model.lags": 6, "model.hidden_size": 32 },
        "score": null, "reference": null,
    });
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute(
        "INSERT INTO tuned_settings (activated_at, format_version, active, record_json) VALUES ('x', 1, 1, ?1)",
        [record.to_string()],
    )
    .unwrap();
    let out = ws
        .plastinka()
        .env("PLASTINKA_TRAINING_MAX_EPOCHS", "2")
        .args(["--json", "train"])
        .output()
        .unwrap();
    ok(&out);
    let note = stderr(&out);
    assert!(
        note.contains("settings: tuned (study-x trial 3") && note.contains("for 2 setting(s)"),
        "{note}"
    );
    assert!(!note.contains("overridden"), "{note}");
    let config: String = conn
        .query_row("SELECT config_json FROM models WHERE active = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["model"]["lags"], 6);
    assert_eq!(config["model"]["hidden_size"], 32);
    assert_eq!(config["training"]["max_epochs"], 2);
}
