//! Files to and from a job over presigned URLs: plain HTTPS PUT and GET, retried with
//! backoff on 5xx answers and broken connections, sizes and sha256 checked. Also the one
//! retry loop every HTTP exchange of this module uses (the IAM token exchange included).

use super::datasphere::Retry;
use anyhow::Result;
use std::future::Future;

/// What one HTTP attempt came to.
pub(super) enum Attempt<T> {
    Done(T),
    /// A passing fault (5xx, a broken connection, a timeout): try again after a backoff.
    Again(String),
    /// A refusal that another attempt would not change.
    Fail(anyhow::Error),
}

/// A transfer the storage refused for good (a 4xx answer), as opposed to one that
/// failed for a passing reason.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Runs `attempt` until it is done, refused, or `retry.attempts` passing faults in a row;
/// the last fault is named in the error.
pub(super) async fn retrying<T, F, Fut>(retry: &Retry, what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut n = 0;
    loop {
        n += 1;
        match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(e) => return Err(e),
            Attempt::Again(fault) if n >= retry.attempts => {
                anyhow::bail!("{what} failed {n} times (last: {fault})")
            }
            Attempt::Again(_) => tokio::time::sleep(retry.backoff(n)).await,
        }
    }
}

/// PUTs `bytes` to a presigned URL.
pub async fn put(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    bytes: &[u8],
    retry: &Retry,
) -> Result<()> {
    let what = format!("uploading {name} to the job's storage");
    retrying(retry, &what, || async {
        let outcome = http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, bytes.len())
            .body(bytes.to_vec())
            .send()
            .await;
        match outcome {
            Ok(response) if response.status().is_success() => Attempt::Done(()),
            Ok(response) if response.status().is_server_error() => {
                Attempt::Again(format!("answered {}", response.status()))
            }
            Ok(response) => {
                Attempt::Fail(Refused(format!("{what}: answered {}", response.status())).into())
            }
            Err(e) => Attempt::Again(super::auth::describe(e)),
        }
    })
    .await
}

/// GETs a file from a presigned URL and checks it against the size and sha256 the
/// service lists for it (either may be absent).
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    expected_sha256: &str,
    expected_size: i64,
    retry: &Retry,
) -> Result<Vec<u8>> {
    let what = format!("downloading {name}");
    // A download cut short or damaged on the way is a passing fault like a 5xx: tried again.
    retrying(retry, &what, || async {
        let bytes = match http.get(url).send().await {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(bytes) => bytes.to_vec(),
                Err(e) => return Attempt::Again(super::auth::describe(e)),
            },
            Ok(response) if response.status().is_server_error() => {
                return Attempt::Again(format!("answered {}", response.status()));
            }
            Ok(response) => {
                return Attempt::Fail(
                    Refused(format!("{what}: answered {}", response.status())).into(),
                );
            }
            Err(e) => return Attempt::Again(super::auth::describe(e)),
        };
        if expected_size > 0 && bytes.len() as i64 != expected_size {
            return Attempt::Again(format!(
                "{} bytes where the service lists {expected_size}: truncated in transfer",
                bytes.len()
            ));
        }
        let actual = crate::digest::sha256_hex(&bytes);
        if !expected_sha256.is_empty() && !actual.eq_ignore_ascii_case(expected_sha256) {
            return Attempt::Again("its sha256 does not match: damaged in transfer".to_string());
        }
        Attempt::Done(bytes)
    })
    .await
}
