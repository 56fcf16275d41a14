//! `plastinka health` and DataSphere credentials, against a fake IAM endpoint on
//! 127.0.0.1. The token must never appear in what the tool prints.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

const TOKEN: &str = "y0_AgAAAA-this-is-a-secret-oauth-token";

/// Answers one request with `status` and `body`; sends the request body it got.
fn fake_iam(status: &'static str, body: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/iam/v1/tokens", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut request = vec![0; length];
        let _ = reader.read_exact(&mut request);
        let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    (url, rx)
}

fn remote(ws: &Workspace, envs: &[(&str, &str)]) -> (i32, serde_json::Value, String) {
    let mut cmd = ws.plastinka();
    cmd.env_remove("YC_OAUTH_TOKEN")
        .env_remove("YC_IAM_TOKEN")
        .args(["--json", "health", "--online", "--as-of", "2026-11-03"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let report = json(&out);
    let component = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "remote")
        .unwrap()
        .clone();
    (out.status.code().unwrap(), component, printed)
}

#[test]
fn an_oauth_token_is_exchanged_and_never_printed() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let (url, requests) = fake_iam(
        "200 OK",
        r#"{"iamToken": "t1.fake-iam", "expiresAt": "2026-11-28T00:00:00Z"}"#,
    );
    let (_, component, printed) = remote(
        &ws,
        &[
            ("YC_OAUTH_TOKEN", TOKEN),
            ("PLASTINKA_REMOTE_IAM_ENDPOINT", &url),
            ("PLASTINKA_REMOTE_PROJECT_ID", "proj-1"),
        ],
    );
    assert_eq!(component["status"], "healthy", "{component}");
    assert_eq!(component["details"]["credential"], "YC_OAUTH_TOKEN");
    let sent: serde_json::Value = serde_json::from_str(&requests.recv().unwrap()).unwrap();
    assert_eq!(sent["yandexPassportOauthToken"], TOKEN);
    assert!(
        !printed.contains(TOKEN) && !printed.contains("t1.fake-iam"),
        "{printed}"
    );
}

#[test]
fn a_refused_token_is_unhealthy_with_the_reason_but_not_the_token() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let (url, _requests) = fake_iam(
        "401 Unauthorized",
        r#"{"code": 16, "message": "The token is invalid"}"#,
    );
    let (code, component, printed) = remote(
        &ws,
        &[
            ("YC_OAUTH_TOKEN", TOKEN),
            ("PLASTINKA_REMOTE_IAM_ENDPOINT", &url),
            ("PLASTINKA_REMOTE_PROJECT_ID", "proj-1"),
        ],
    );
    assert_eq!(code, 2);
    let reason = component["reason"].as_str().unwrap();
    assert!(
        reason.contains("401") && reason.contains("The token is invalid"),
        "{reason}"
    );
    assert!(!printed.contains(TOKEN), "{printed}");
}

#[test]
fn a_silent_endpoint_times_out_quickly() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/iam/v1/tokens", listener.local_addr().unwrap());
    let started = std::time::Instant::now();
    let (code, component, printed) = remote(
        &ws,
        &[
            ("YC_OAUTH_TOKEN", TOKEN),
            ("PLASTINKA_REMOTE_IAM_ENDPOINT", &url),
            ("PLASTINKA_REMOTE_PROJECT_ID", "p"),
            ("PLASTINKA_REMOTE_TIMEOUT_SECONDS", "1"),
        ],
    );
    assert!(started.elapsed().as_secs_f64() < 10.0);
    assert_eq!(code, 2);
    assert!(
        component["reason"].as_str().unwrap().contains("timed out"),
        "{component}"
    );
    assert!(!printed.contains(TOKEN));
    drop(listener);
}

#[test]
fn settings_without_a_credential_are_degraded_and_nothing_is_not_configured() {
    let ws = Workspace::with_sample(SMALL_MODEL, true);
    let (_, component, _) = remote(&ws, &[("PLASTINKA_REMOTE_PROJECT_ID", "proj-1")]);
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
