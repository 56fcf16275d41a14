//! Credentials come from the environment only and are never written to the database, a
//! log or an error message: [`Secret`] does not print. Three kinds, in this order:
//!
//! * `YC_SERVICE_ACCOUNT_KEY_FILE` — a service account's authorized key (the JSON `yc iam
//!   key create` writes, and `infra/` outputs): a PS256-signed JWT is exchanged for IAM
//!   tokens, renewed before they expire;
//! * `YC_OAUTH_TOKEN` — a Yandex account's OAuth token, exchanged for IAM tokens likewise;
//! * `YC_IAM_TOKEN` — an IAM token used as it is (it cannot be renewed: a long wait may
//!   outlive it).

use super::datasphere::Retry;
use super::transfer::{Attempt, retrying};
use anyhow::{Context, Result};
use base64::Engine;
use std::fmt;
use std::time::{Duration, SystemTime};

/// A credential that refuses to be printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A service account's authorized key.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub key_id: String,
    pub service_account_id: String,
    private_key_pem: Secret,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceAccountKey({}, ***)", self.key_id)
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    ServiceAccount(ServiceAccountKey),
    /// A Yandex Passport OAuth token, exchanged for short-lived IAM tokens.
    OAuth(Secret),
    /// An IAM token used as it is.
    Iam(Secret),
}

pub const KEY_FILE_VARIABLE: &str = "YC_SERVICE_ACCOUNT_KEY_FILE";

impl Credential {
    /// The environment variable it came from.
    pub fn source(&self) -> &'static str {
        match self {
            Credential::ServiceAccount(_) => KEY_FILE_VARIABLE,
            Credential::OAuth(_) => "YC_OAUTH_TOKEN",
            Credential::Iam(_) => "YC_IAM_TOKEN",
        }
    }

    /// The first credential the environment holds (empty values count as unset). A key
    /// file that cannot be read is an error naming the file, not its content.
    pub fn from_env() -> Result<Option<Credential>> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(path) = get(KEY_FILE_VARIABLE) {
            if !looks_like_a_path(&path) {
                // Someone put the key itself in the variable: never echo it.
                return Err(crate::error::InputError::new(format!(
                    "{KEY_FILE_VARIABLE} holds something that is not a file path (the key itself?); put the authorized key in a file and its path in {KEY_FILE_VARIABLE}"
                ))
                .into());
            }
            return read_key_file(std::path::Path::new(&path))
                .map(|k| Some(Credential::ServiceAccount(k)));
        }
        Ok(get("YC_OAUTH_TOKEN")
            .map(|t| Credential::OAuth(Secret(t)))
            .or_else(|| get("YC_IAM_TOKEN").map(|t| Credential::Iam(Secret(t)))))
    }
}

/// A value that can be a file path: one short line, no JSON or PEM in it. Anything else
/// is not named in an error, since it may be a secret pasted into the wrong variable.
fn looks_like_a_path(value: &str) -> bool {
    value.len() <= 4096 && !value.contains(['\n', '\r', '{', '}']) && !value.contains("-----BEGIN")
}

/// The authorized key file: `{"id", "service_account_id", "private_key", …}`. The private
/// key is PKCS#8 PEM, possibly after a line `yc` writes above it.
fn read_key_file(path: &std::path::Path) -> Result<ServiceAccountKey> {
    // The value is never printed: a token pasted here by mistake would be.
    let refuse = |why: &str| {
        crate::error::InputError::new(format!("{KEY_FILE_VARIABLE} (the file it names): {why}"))
    };
    let text = std::fs::read_to_string(path).map_err(|e| refuse(&format!("cannot read: {e}")))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| refuse("not an authorized key (JSON) file"))?;
    let field = |name: &str| {
        json[name]
            .as_str()
            .map(String::from)
            .ok_or_else(|| refuse(&format!("no «{name}» in the key file")))
    };
    let private = field("private_key")?;
    let pem = private
        .find("-----BEGIN")
        .map(|at| private[at..].to_string())
        .ok_or_else(|| refuse("«private_key» holds no PEM key"))?;
    Ok(ServiceAccountKey {
        key_id: field("id")?,
        service_account_id: field("service_account_id")?,
        private_key_pem: Secret(pem),
    })
}

/// A JWT for the IAM exchange: PS256, `kid` the key id, `iss` the service account, `aud`
/// the IAM endpoint, valid for an hour.
pub fn service_account_jwt(
    key: &ServiceAccountKey,
    audience: &str,
    now: SystemTime,
) -> Result<Secret> {
    use rsa::pkcs8::DecodePrivateKey;
    let private = rsa::PrivateKey::from_pkcs8_pem(key.private_key_pem.expose()).map_err(|_| {
        anyhow::anyhow!(
            "{KEY_FILE_VARIABLE}: the private key cannot be read (not a PKCS#8 RSA key)"
        )
    })?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let issued = now.duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
    let header = serde_json::json!({ "typ": "JWT", "alg": "PS256", "kid": key.key_id });
    let claims = serde_json::json!({
        "iss": key.service_account_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + 3600,
    });
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = private
        .pss_sign::<sha2::Sha256>(signed.as_bytes())
        .map_err(|e| anyhow::anyhow!("{KEY_FILE_VARIABLE}: cannot sign with the key: {e}"))?;
    Ok(Secret(format!("{signed}.{}", b64(&signature))))
}

/// IAM tokens for gRPC calls: exchanged when needed, renewed before they expire.
pub struct Tokens {
    credential: Credential,
    endpoint: String,
    http: reqwest::Client,
    retry: Retry,
    current: tokio::sync::Mutex<Option<Held>>,
}

struct Held {
    token: Secret,
    obtained: SystemTime,
    expires: Option<SystemTime>,
}

impl Held {
    /// Renewed when less than 5 minutes (or half its life, for short-lived tokens) remain.
    fn fresh(&self, now: SystemTime) -> bool {
        let Some(expires) = self.expires else {
            return true;
        };
        let life = expires.duration_since(self.obtained).unwrap_or_default();
        let margin = Duration::from_secs(300).min(life / 2);
        expires.duration_since(now).is_ok_and(|left| left > margin)
    }
}

impl Tokens {
    pub fn new(
        credential: Credential,
        endpoint: &str,
        http: reqwest::Client,
        retry: Retry,
    ) -> Self {
        Self {
            credential,
            endpoint: endpoint.to_string(),
            http,
            retry,
            current: tokio::sync::Mutex::new(None),
        }
    }

    pub fn source(&self) -> &'static str {
        self.credential.source()
    }

    /// A token good for a while yet.
    pub async fn get(&self) -> Result<Secret> {
        let mut current = self.current.lock().await;
        if let Some(held) = current.as_ref()
            && held.fresh(SystemTime::now())
        {
            return Ok(held.token.clone());
        }
        let held = self.obtain().await?;
        let token = held.token.clone();
        *current = Some(held);
        Ok(token)
    }

    /// A new token, after the service refused the current one.
    pub async fn renew(&self) -> Result<Secret> {
        if let Credential::Iam(_) = self.credential {
            anyhow::bail!(
                "the service refused YC_IAM_TOKEN (expired?); set a fresh one, or YC_OAUTH_TOKEN / {KEY_FILE_VARIABLE}, which are renewed automatically"
            );
        }
        *self.current.lock().await = None;
        self.get().await
    }

    async fn obtain(&self) -> Result<Held> {
        let now = SystemTime::now();
        let body = match &self.credential {
            Credential::Iam(token) => {
                return Ok(Held {
                    token: token.clone(),
                    obtained: now,
                    expires: None,
                });
            }
            Credential::OAuth(token) => {
                serde_json::json!({ "yandexPassportOauthToken": token.expose() })
            }
            Credential::ServiceAccount(key) => {
                let jwt = service_account_jwt(key, &self.endpoint, now)?;
                serde_json::json!({ "jwt": jwt.expose() })
            }
        };
        let (token, expires) = exchange(&self.http, &self.endpoint, &body, &self.retry).await?;
        Ok(Held {
            token,
            obtained: now,
            expires,
        })
    }
}

/// `POST endpoint` with the credential → `{"iamToken", "expiresAt"}`, retried on 5xx
/// answers and broken connections. Errors name the endpoint and the server's message
/// (cut short), never what was sent.
async fn exchange(
    http: &reqwest::Client,
    endpoint: &str,
    body: &serde_json::Value,
    retry: &Retry,
) -> Result<(Secret, Option<SystemTime>)> {
    let what = format!("IAM token exchange at {endpoint}");
    let (status, answer) = retrying(retry, &what, || async {
        let response = match http.post(endpoint).json(body).send().await {
            Ok(response) => response,
            Err(e) => return Attempt::Again(describe(e)),
        };
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_server_error() {
            return Attempt::Again(format!("answered {status}"));
        }
        if !status.is_success() {
            let message: String = answer["message"]
                .as_str()
                .unwrap_or("no message")
                .chars()
                .take(200)
                .collect();
            return Attempt::Fail(anyhow::anyhow!("{what} answered {status}: {message}"));
        }
        Attempt::Done((status, answer))
    })
    .await?;
    let token = answer["iamToken"]
        .as_str()
        .map(|t| Secret(t.to_string()))
        .ok_or_else(|| anyhow::anyhow!("{what} answered {status} without an iamToken"))?;
    let expires = answer["expiresAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)));
    Ok((token, expires))
}

/// The error without its URL (already named by the caller).
pub fn describe(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let text = error.without_url().to_string();
    if timed_out {
        format!("timed out ({text})")
    } else {
        text
    }
}

/// The IAM token a credential gives now (one exchange), for `health --online`.
pub async fn probe(tokens: &Tokens) -> Result<Secret> {
    tokens.get().await.context("obtaining an IAM token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plausible_path_is_named() {
        assert!(looks_like_a_path("/home/me/sa-key.json"));
        assert!(!looks_like_a_path("{\"id\": \"key\"}"));
        assert!(!looks_like_a_path("-----BEGIN PRIVATE KEY-----"));
        assert!(!looks_like_a_path("a\nb"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credential::OAuth(Secret("y0_very_secret".into()));
        assert!(!format!("{c:?}").contains("very_secret"));
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Held {
            token: Secret::new("t"),
            obtained: t0,
            expires: Some(t0 + Duration::from_secs(3600)),
        };
        assert!(hour.fresh(t0 + Duration::from_secs(3000)));
        assert!(!hour.fresh(t0 + Duration::from_secs(3301))); // less than 5 minutes left
        let short = Held {
            token: Secret::new("t"),
            obtained: t0,
            expires: Some(t0 + Duration::from_secs(4)),
        };
        assert!(short.fresh(t0 + Duration::from_secs(1)));
        assert!(!short.fresh(t0 + Duration::from_secs(3))); // past half its life
    }
}
