//! Credentials come from the environment only (`YC_OAUTH_TOKEN` or `YC_IAM_TOKEN`) and are
//! never written to the database, a log or an error message: [`Secret`] does not print.

use anyhow::{Context, Result};
use std::fmt;
use std::time::Duration;

/// A credential that refuses to be printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    /// A Yandex Passport OAuth token, exchanged for short-lived IAM tokens.
    OAuth(Secret),
    /// An IAM token used as it is.
    Iam(Secret),
}

impl Credential {
    /// The environment variable it came from.
    pub fn source(&self) -> &'static str {
        match self {
            Credential::OAuth(_) => "YC_OAUTH_TOKEN",
            Credential::Iam(_) => "YC_IAM_TOKEN",
        }
    }
}

/// `YC_OAUTH_TOKEN` wins over `YC_IAM_TOKEN`; empty values count as unset.
pub fn credential_from_env() -> Option<Credential> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    get("YC_OAUTH_TOKEN")
        .map(|t| Credential::OAuth(Secret(t)))
        .or_else(|| get("YC_IAM_TOKEN").map(|t| Credential::Iam(Secret(t))))
}

/// Exchanges an OAuth token for an IAM token at `endpoint`
/// (`POST {"yandexPassportOauthToken": …}` → `{"iamToken": …}`), within `timeout`.
pub fn exchange(endpoint: &str, oauth: &Secret, timeout: Duration) -> Result<Secret> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .context("building the HTTP client")?;
    let response = client
        .post(endpoint)
        .json(&serde_json::json!({ "yandexPassportOauthToken": oauth.expose() }))
        .send()
        // reqwest's error never contains the body we sent (the token).
        .map_err(|e| anyhow::anyhow!("IAM token exchange at {endpoint} failed: {}", describe(e)))?;
    let status = response.status();
    let body: serde_json::Value = response.json().unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let message = body["message"].as_str().unwrap_or("no message");
        anyhow::bail!("IAM token exchange at {endpoint} answered {status}: {message}");
    }
    body["iamToken"]
        .as_str()
        .map(|t| Secret(t.to_string()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "IAM token exchange at {endpoint} answered {status} without an iamToken"
            )
        })
}

/// The error without its URL (already named by the caller).
fn describe(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let text = error.without_url().to_string();
    if timed_out {
        format!("timed out ({text})")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let c = Credential::OAuth(Secret("y0_very_secret".into()));
        assert!(!format!("{c:?}").contains("very_secret"));
    }
}
