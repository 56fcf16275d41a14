//! Files to and from a job over presigned URLs: plain HTTPS PUT and GET, retried with
//! backoff on 5xx answers and broken connections, sizes and sha256 checked.

use super::datasphere::Retry;
use anyhow::Result;

/// PUTs `bytes` to a presigned URL.
pub async fn put(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    bytes: &[u8],
    retry: &Retry,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, bytes.len())
            .body(bytes.to_vec())
            .send()
            .await;
        let again = match outcome {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status().is_server_error() => {
                format!("answered {}", response.status())
            }
            Ok(response) => {
                anyhow::bail!(
                    "uploading {name} to the job's storage: answered {}",
                    response.status()
                )
            }
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                super::auth::describe(e)
            }
            Err(e) => anyhow::bail!("uploading {name}: {}", super::auth::describe(e)),
        };
        if attempt >= retry.attempts {
            anyhow::bail!(
                "uploading {name} to the job's storage failed {attempt} times (last: {again})"
            );
        }
        tokio::time::sleep(retry.backoff(attempt)).await;
    }
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
    let mut attempt = 0;
    let bytes = loop {
        attempt += 1;
        let outcome = match http.get(url).send().await {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(bytes) => break bytes.to_vec(),
                Err(e) => super::auth::describe(e),
            },
            Ok(response) if response.status().is_server_error() => {
                format!("answered {}", response.status())
            }
            Ok(response) => anyhow::bail!("downloading {name}: answered {}", response.status()),
            Err(e) => super::auth::describe(e),
        };
        if attempt >= retry.attempts {
            anyhow::bail!("downloading {name} failed {attempt} times (last: {outcome})");
        }
        tokio::time::sleep(retry.backoff(attempt)).await;
    };
    if expected_size > 0 && bytes.len() as i64 != expected_size {
        anyhow::bail!(
            "{name} from the job is {} bytes, the service lists {expected_size}: truncated in transfer; nothing was stored",
            bytes.len()
        );
    }
    let actual = crate::digest::sha256_hex(&bytes);
    if !expected_sha256.is_empty() && !actual.eq_ignore_ascii_case(expected_sha256) {
        anyhow::bail!(
            "{name} from the job does not match its sha256 (damaged in transfer); nothing was stored"
        );
    }
    Ok(bytes)
}
