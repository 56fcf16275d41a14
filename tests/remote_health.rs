//! `plastinka health --online` and DataSphere credentials, against the fake DataSphere on
//! 127.0.0.1: a token is obtained for the credential and the project answers a cheap
//! authorised call. No token or key ever appears in what the tool prints.

mod common;
use common::fake_datasphere::{FakeDataSphere, Faults, OAUTH};
use common::*;
use std::net::TcpListener;

fn remote(ws: &Workspace, envs: &[(String, String)]) -> (i32, serde_json::Value, String) {
    let mut cmd = ws.plastinka();
    cmd.args(["--json", "health", "--online", "--as-of", "2026-11-03"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let report = json(&out);
    let component = component(&report, "remote").clone();
    (out.status.code().unwrap(), component, printed)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn an_oauth_token_is_exchanged_the_project_answers_and_nothing_is_printed() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let fake = FakeDataSphere::start(Faults::default());
    let mut env = fake.env();
    env.push(("YC_OAUTH_TOKEN".into(), OAUTH.into()));
    let (_, component, printed) = remote(&ws, &env);
    assert_eq!(component["status"], "healthy", "{component}");
    assert_eq!(component["details"]["credential"], "YC_OAUTH_TOKEN");
    assert!(
        component["reason"]
            .as_str()
            .unwrap()
            .contains("fake-project answered"),
        "{component}"
    );
    assert_eq!(
        fake.with(|s| (s.tokens_issued, s.grpc_calls.get("List").copied())),
        (1, Some(1))
    );
    assert!(
        !printed.contains(OAUTH) && !printed.contains("iam-1"),
        "{printed}"
    );
}

#[test]
fn a_refused_token_is_unhealthy_with_the_reason_but_not_the_token() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let fake = FakeDataSphere::start(Faults::default());
    let wrong = "y0_wrong_token_must_not_be_printed";
    let mut env = fake.env();
    env.push(("YC_OAUTH_TOKEN".into(), wrong.into()));
    let (code, component, printed) = remote(&ws, &env);
    assert_eq!(code, 2);
    let reason = component["reason"].as_str().unwrap();
    assert!(
        reason.contains("401") && reason.contains("bad credential"),
        "{reason}"
    );
    assert!(!printed.contains(wrong), "{printed}");
}

/// A service account's authorized key: the JWT is signed PS256 with the key and the fake
/// IAM verifies it with the public half (and its kid, issuer, audience, expiry).
#[test]
fn a_service_account_key_signs_a_jwt_the_iam_accepts() {
    use rsa::pkcs8::EncodePrivateKey;
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let fake = FakeDataSphere::start(Faults::default());
    use rsa::Generate;
    let private = rsa::PrivateKey::generate();
    let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    fake.with(|s| {
        s.service_account = Some(("key-1".into(), "sa-1".into(), private.to_public_key()))
    });
    let key_file = ws.path("sa-key.json");
    std::fs::write(
        &key_file,
        serde_json::json!({
            "id": "key-1",
            "service_account_id": "sa-1",
            "key_algorithm": "RSA_2048",
            "private_key": format!("PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <key-1>\n{}", pem.as_str()),
        })
        .to_string(),
    )
    .unwrap();
    let mut env = fake.env();
    env.push((
        "YC_SERVICE_ACCOUNT_KEY_FILE".into(),
        key_file.display().to_string(),
    ));
    let (_, component, printed) = remote(&ws, &env);
    assert_eq!(component["status"], "healthy", "{component}");
    assert_eq!(
        component["details"]["credential"],
        "YC_SERVICE_ACCOUNT_KEY_FILE"
    );
    assert!(fake.with(|s| s.exchanges[0].contains("\"jwt\"")));
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    // Another key id: refused by the IAM, unhealthy.
    fake.with(|s| {
        s.service_account = Some(("key-2".into(), "sa-1".into(), private.to_public_key()))
    });
    let (code, component, _) = remote(&ws, &env);
    assert_eq!(code, 2, "{component}");
    // The right key id, but the IAM knows another key: the signature does not verify.
    let other = rsa::PrivateKey::generate();
    fake.with(|s| s.service_account = Some(("key-1".into(), "sa-1".into(), other.to_public_key())));
    let (code, component, _) = remote(&ws, &env);
    assert_eq!(code, 2, "{component}");
    // The key itself pasted into the variable: refused without echoing it.
    let mut pasted = fake.env();
    pasted.push(("YC_SERVICE_ACCOUNT_KEY_FILE".into(), pem.to_string()));
    let (code, component, printed) = remote(&ws, &pasted);
    assert_eq!(code, 2, "{component}");
    assert!(printed.contains("not a file path"), "{printed}");
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    // A token pasted there (one line, nothing to tell it from a path): not echoed either.
    let mut token = fake.env();
    token.push((
        "YC_SERVICE_ACCOUNT_KEY_FILE".into(),
        "t1.pasted-iam-token-9f8e7d".into(),
    ));
    let (code, component, printed) = remote(&ws, &token);
    assert_eq!(code, 2, "{component}");
    assert!(!printed.contains("pasted-iam-token"), "{printed}");
}

#[test]
fn a_silent_endpoint_times_out_quickly() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/iam/v1/tokens", listener.local_addr().unwrap());
    let started = std::time::Instant::now();
    let (code, component, printed) = remote(
        &ws,
        &pairs(&[
            ("YC_OAUTH_TOKEN", OAUTH),
            ("PLASTINKA_REMOTE_IAM_ENDPOINT", &url),
            ("PLASTINKA_REMOTE_PROJECT_ID", "p"),
            ("PLASTINKA_REMOTE_TIMEOUT_SECONDS", "1"),
        ]),
    );
    assert!(started.elapsed().as_secs_f64() < 10.0);
    assert_eq!(code, 2);
    assert!(
        component["reason"].as_str().unwrap().contains("timed out"),
        "{component}"
    );
    assert!(!printed.contains(OAUTH));
    drop(listener);
}

#[test]
fn settings_without_a_credential_are_degraded_and_nothing_is_not_configured() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let (_, component, _) = remote(&ws, &pairs(&[("PLASTINKA_REMOTE_PROJECT_ID", "proj-1")]));
    assert_eq!(component["status"], "degraded");
    assert!(
        component["reason"]
            .as_str()
            .unwrap()
            .contains("YC_OAUTH_TOKEN")
    );
    let (_, component, _) = remote(&ws, &[]);
    assert_eq!(component["status"], "not_configured");
}

/// A job still running is listed by health.
#[test]
fn a_job_still_running_is_shown() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let fake = FakeDataSphere::start(Faults {
        hold: std::time::Duration::from_secs(20),
        ..Faults::default()
    });
    let out = ws
        .plastinka()
        .envs(fake.env())
        .env("YC_OAUTH_TOKEN", OAUTH)
        .args(["--json", "train", "--remote", "--detach"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = json(&out)["job_id"].as_str().unwrap().to_string();
    let mut env = fake.env();
    env.push(("YC_OAUTH_TOKEN".into(), OAUTH.into()));
    let (_, component, _) = remote(&ws, &env);
    assert!(
        component["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("still running: {id}")),
        "{component}"
    );
}
