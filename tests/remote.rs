//! `train --remote` and `plastinka jobs` end to end, through the real binary, against the
//! fake DataSphere on 127.0.0.1 — which runs each job with the uploaded binary — and its
//! injected faults.

mod common;
use common::fake_datasphere::{FakeDataSphere, Faults, OAUTH};
use common::*;
use std::time::Duration;

const TINY: &str = "[model]\nhidden_size = 16\nnum_encoder_layers = 1\nnum_decoder_layers = 1\ndecoder_output_dim = 8\ntemporal_decoder_hidden = 8\n[training]\nmax_epochs = 3\npatience = 2\n";

fn shop() -> Workspace {
    Workspace::with_sample(TINY, true)
}

/// `plastinka --json ARGS…` with the fake's endpoints and the OAuth token.
fn run(ws: &Workspace, fake: &FakeDataSphere, args: &[&str]) -> std::process::Output {
    let mut cmd = ws.plastinka();
    cmd.envs(fake.env())
        .env("YC_OAUTH_TOKEN", OAUTH)
        .arg("--json")
        .args(args);
    let out = cmd.output().unwrap();
    assert_no_secret(&out);
    out
}

/// Neither the OAuth token nor an IAM token the fake issued (`iam-N`) was printed.
fn assert_no_secret(out: &std::process::Output) {
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
    assert!(!printed.contains(OAUTH), "the token was printed: {printed}");
    assert!(
        !has_iam_token(printed.as_bytes()),
        "an IAM token was printed: {printed}"
    );
}

fn has_iam_token(bytes: &[u8]) -> bool {
    bytes
        .windows(5)
        .any(|w| w.starts_with(b"iam-") && w[4].is_ascii_digit())
}

/// No token in any file the database consists of.
fn assert_database_holds_no_secret(ws: &Workspace) {
    for entry in std::fs::read_dir(ws.db().parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let oauth = OAUTH.as_bytes();
            assert!(
                !bytes.windows(oauth.len()).any(|w| w == oauth) && !has_iam_token(&bytes),
                "a token is stored in {}",
                path.display()
            );
        }
    }
}

/// Stored forecasts of a model for November, as text.
fn forecasts(ws: &Workspace, model: &str) -> Vec<(i64, f64, f64)> {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT product_id, quantile, units FROM forecasts WHERE model_id = ?1 ORDER BY product_id, quantile")
        .unwrap();
    stmt.query_map([model], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn text(ws: &Workspace, query: &str) -> String {
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.query_row(query, [], |r| r.get(0)).unwrap()
}

/// `train --remote` started in the background, returned once its job is running.
fn train_until_running(ws: &Workspace, fake: &FakeDataSphere) -> std::process::Child {
    let child = ws
        .process()
        .envs(fake.env())
        .env("YC_OAUTH_TOKEN", OAUTH)
        .args(["train", "--remote"])
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while ws.sql("SELECT count(*) FROM remote_jobs WHERE state = 'running'") == 0 {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn job_id_of(out: &std::process::Output) -> String {
    json(out)["job_id"].as_str().unwrap().to_string()
}

#[test]
fn a_remote_run_stores_the_same_model_a_local_run_does() {
    let ws = shop();
    // The default configuration, c1.4, trains with its 4 vCPUs; locally the same count.
    let out = ws
        .plastinka()
        .env("PLASTINKA_TRAINING_THREADS", "4")
        .args(["--json", "train"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let local = json(&out)["model_id"].as_str().unwrap().to_string();
    let fake = FakeDataSphere::start(Faults::default());
    let trained = run(&ws, &fake, &["train", "--remote"]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    // The job's log reached the user as it ran.
    assert!(
        stderr(&trained).contains("phase 2 epoch"),
        "{}",
        stderr(&trained)
    );
    let summary = json(&trained);
    let remote = summary["model_id"].as_str().unwrap().to_string();
    let job = summary["remote_job_id"].as_str().unwrap().to_string();
    assert_eq!(forecasts(&ws, &remote), forecasts(&ws, &local));
    let threads = |model: &str| {
        text(
            &ws,
            &format!(
                "SELECT json_extract(config_json, '$.training.threads') || '' FROM models WHERE id = '{model}'"
            ),
        )
    };
    assert_eq!(
        (threads(&remote), threads(&local)),
        ("4".into(), "4".into())
    );
    assert_database_holds_no_secret(&ws);
    assert_eq!(summary["forecast_month"], "2026-11");
    // The model is stored like a local one, told apart only by its job.
    assert_eq!(
        text(
            &ws,
            &format!("SELECT remote_job_id FROM models WHERE id = '{remote}'")
        ),
        job
    );
    assert_eq!(
        ws.sql(&format!("SELECT active FROM models WHERE id = '{remote}'")),
        1
    );
    assert_eq!(
        text(
            &ws,
            &format!("SELECT state FROM remote_jobs WHERE id = '{job}'")
        ),
        "stored"
    );
    let listed = json(&run(&ws, &fake, &["models"]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["remote_job_id"] == job.as_str())
    );
    let out = run(&ws, &fake, &["forecast"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The job ran the uploaded binary, setting its executable bit first (jobs drop it).
    let commands = fake.with(|s| s.commands.clone());
    assert_eq!(commands.len(), 1);
    assert!(
        commands[0].starts_with("chmod +x /") && commands[0].contains(" __job --input /"),
        "{}",
        commands[0]
    );
}

#[test]
fn a_detached_job_is_picked_up_by_jobs_wait_and_stored_once() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        hold: Duration::from_secs(2),
        ..Faults::default()
    });
    let out = run(&ws, &fake, &["train", "--remote", "--detach"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = job_id_of(&out);
    let listed = json(&run(&ws, &fake, &["jobs"]));
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "running");
    let shown = json(&run(&ws, &fake, &["jobs", "show", &id]));
    let status = shown["datasphere_status"].as_str().unwrap();
    assert!(matches!(status, "EXECUTING" | "SUCCESS"), "{status}");
    assert_eq!(shown["job"]["state"], "running");
    let out = run(&ws, &fake, &["jobs", "wait", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
    // Again: nothing more is stored.
    let again = ws
        .plastinka()
        .envs(fake.env())
        .env("YC_OAUTH_TOKEN", OAUTH)
        .args(["jobs", "wait", &id])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("is done"));
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
    // The log reads back from the start.
    let logs = ws
        .plastinka()
        .envs(fake.env())
        .env("YC_OAUTH_TOKEN", OAUTH)
        .args(["jobs", "logs", &id])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("phase 2 epoch"),
        "{}",
        stderr(&logs)
    );
}

#[test]
fn passing_faults_are_retried_and_the_log_has_every_line_once() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        unavailable_first: 2,
        put_503_once: true,
        drop_logs_after: Some(3),
        token_lifetime: Some(Duration::from_secs(2)),
        hold: Duration::from_secs(3),
        ..Faults::default()
    });
    let out = run(&ws, &fake, &["train", "--remote"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (unavailable, put_failures, streams, tokens) = fake.with(|s| {
        (
            s.unavailable_sent,
            s.put_failures,
            s.log_streams,
            s.tokens_issued,
        )
    });
    assert_eq!((unavailable, put_failures), (2, 1));
    assert!(streams >= 2, "the dropped log stream was not reopened");
    assert!(
        tokens >= 2,
        "a 2-second token was not renewed over a 3-second wait"
    );
    // Every job log line reached stderr exactly once, in order, across the dropped stream.
    let job_lines: Vec<String> = fake.with(|s| {
        s.jobs_logs()
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .collect()
    });
    let printed = stderr(&out);
    let printed: Vec<&str> = printed
        .lines()
        .filter(|l| job_lines.iter().any(|j| j == l))
        .collect();
    assert!(job_lines.len() > 3);
    assert_eq!(
        printed,
        job_lines.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn a_failing_job_shows_its_exit_code_and_log_and_stores_nothing() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        damage_input: true,
        ..Faults::default()
    });
    let out = run(&ws, &fake, &["train", "--remote"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("failed with exit code 1")
            && err.contains("the plastinka job input is truncated"),
        "{err}"
    );
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 0);
    assert_eq!(
        ws.sql("SELECT count(*) FROM remote_jobs WHERE state = 'failed'"),
        1
    );
}

/// A model damaged by the job itself ends the job as failed; a download cut short is a
/// passing fault: the job stays open and `jobs wait` stores it once the transfer works.
#[test]
fn a_damaged_output_fails_the_job_a_cut_download_leaves_it_to_jobs_wait() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        damage_output: true,
        ..Faults::default()
    });
    let out = run(&ws, &fake, &["train", "--remote"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 0);
    assert_eq!(text(&ws, "SELECT state FROM remote_jobs"), "failed");

    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        truncate_output: true,
        ..Faults::default()
    });
    let out = ws
        .plastinka()
        .envs(fake.env())
        .env("YC_OAUTH_TOKEN", OAUTH)
        .env("PLASTINKA_REMOTE_RETRY_ATTEMPTS", "2")
        .args(["train", "--remote"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let id = text(&ws, "SELECT id FROM remote_jobs");
    let err = stderr(&out);
    assert!(
        err.contains("truncated") && err.contains(&format!("`plastinka jobs wait {id}`")),
        "{err}"
    );
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 0);
    assert_eq!(text(&ws, "SELECT state FROM remote_jobs"), "downloading");
    fake.with(|s| s.heal_outputs());
    let out = run(&ws, &fake, &["jobs", "wait", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
    assert_eq!(text(&ws, "SELECT state FROM remote_jobs"), "stored");
}

/// Killed between Execute and recording its operation: `jobs wait` follows the job by
/// its status instead, and stores its model.
#[test]
fn a_job_whose_operation_was_not_recorded_is_followed_by_its_status() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        hold: Duration::from_secs(2),
        ..Faults::default()
    });
    let id = job_id_of(&run(&ws, &fake, &["train", "--remote", "--detach"]));
    let conn = rusqlite::Connection::open(ws.db()).unwrap();
    conn.execute("UPDATE remote_jobs SET execute_operation_id = NULL", [])
        .unwrap();
    drop(conn);
    let asked = || fake.with(|s| s.grpc_calls.get("OperationService.Get").copied());
    let before = asked();
    let out = run(&ws, &fake, &["jobs", "wait", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["remote_job_id"], id.as_str());
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
    assert_eq!(asked(), before, "an operation was asked for");
    assert!(fake.with(|s| s.grpc_calls["Get"]) >= 1);
}

/// Two `jobs wait` at once: one stores the model, the other says so; the job ends
/// stored, not reopened.
#[test]
fn two_waiters_store_the_model_once() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        hold: Duration::from_secs(2),
        ..Faults::default()
    });
    let id = job_id_of(&run(&ws, &fake, &["train", "--remote", "--detach"]));
    let waiter = || {
        ws.process()
            .envs(fake.env())
            .env("YC_OAUTH_TOKEN", OAUTH)
            .args(["jobs", "wait", &id])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (waiter(), waiter());
    let mut stored = 0;
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_no_secret(&out);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        if said.contains("Stored model") {
            stored += 1;
        } else {
            // The other one found it stored: before it began, or after it downloaded.
            assert!(
                said.contains("meanwhile") || said.contains("is done"),
                "{said}"
            );
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
    assert_eq!(text(&ws, "SELECT state FROM remote_jobs"), "stored");
}

/// A token the service stops accepting before the exchange said it would: the client
/// learns it from UNAUTHENTICATED, renews once, and the wait goes on.
#[test]
fn a_token_refused_midway_is_renewed_and_the_wait_goes_on() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        revoke_tokens_after: Some(Duration::from_secs(1)),
        hold: Duration::from_secs(3),
        ..Faults::default()
    });
    let out = run(&ws, &fake, &["train", "--remote"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (refused, issued) = fake.with(|s| (s.unauthenticated_sent, s.tokens_issued));
    assert!(refused >= 1, "no call was refused: the fault did not bite");
    assert!(issued >= 2, "the refused token was not renewed");
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
}

#[test]
fn a_wait_killed_midway_leaves_the_job_to_jobs_wait() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        hold: Duration::from_secs(4),
        ..Faults::default()
    });
    // Killed once the job runs (its id is recorded by then).
    let mut child = train_until_running(&ws, &fake);
    child.kill().unwrap();
    child.wait().unwrap();
    let id = text(&ws, "SELECT id FROM remote_jobs");
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 0);
    let out = run(&ws, &fake, &["jobs", "wait", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["remote_job_id"], id.as_str());
    assert_eq!(ws.sql("SELECT count(*) FROM models"), 1);
}

/// Ctrl-C while waiting: the job runs on, the user is told how to come back.
#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_leaves_the_job_running() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        hold: Duration::from_secs(3),
        ..Faults::default()
    });
    let child = train_until_running(&ws, &fake);
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let id = text(&ws, "SELECT id FROM remote_jobs");
    assert!(
        stderr(&out).contains(&format!("`plastinka jobs wait {id}`")),
        "{}",
        stderr(&out)
    );
    assert_eq!(text(&ws, "SELECT state FROM remote_jobs"), "running");
    let out = run(&ws, &fake, &["jobs", "wait", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_cancelled_job_stays_cancelled() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults {
        hold: Duration::from_secs(3),
        ..Faults::default()
    });
    let id = job_id_of(&run(&ws, &fake, &["train", "--remote", "--detach"]));
    let out = run(&ws, &fake, &["jobs", "cancel", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text(&ws, "SELECT state FROM remote_jobs"), "cancelled");
    let out = run(&ws, &fake, &["jobs", "wait", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cancelled"), "{}", stderr(&out));
    assert_eq!(fake.with(|s| s.grpc_calls.get("Cancel").copied()), Some(1));
    // Cancelled while it waited for its machine: it never ran.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(fake.with(|s| s.runs), 0);
}

#[test]
fn missing_settings_and_credentials_are_named() {
    let ws = shop();
    let out = ws.plastinka().args(["train", "--remote"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("remote.project_id"),
        "{}",
        stderr(&out)
    );
    let out = ws
        .plastinka()
        .env("PLASTINKA_REMOTE_PROJECT_ID", "p")
        .args(["train", "--remote"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("YC_SERVICE_ACCOUNT_KEY_FILE"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.sql("SELECT count(*) FROM remote_jobs"), 0);
}

/// A GPU configuration needs a CUDA build: refused before anything reaches DataSphere.
#[test]
fn a_gpu_configuration_needs_a_cuda_build() {
    let ws = shop();
    let fake = FakeDataSphere::start(Faults::default());
    let out = ws
        .plastinka()
        .envs(fake.env())
        .env("YC_OAUTH_TOKEN", OAUTH)
        .env("PLASTINKA_REMOTE_INSTANCE_TYPE", "g1.1")
        .args(["train", "--remote"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("g1.1 is a GPU configuration") && err.contains("--features cuda"),
        "{err}"
    );
    assert!(fake.with(|s| s.grpc_calls.is_empty()));
    assert_eq!(ws.sql("SELECT count(*) FROM remote_jobs"), 0);
}
