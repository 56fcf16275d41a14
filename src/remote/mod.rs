//! Yandex Cloud and DataSphere: the only module that speaks to the network — IAM tokens,
//! the Jobs gRPC service, presigned transfers — and the checks of the binary a job runs.

pub mod auth;
pub mod binary;
pub mod datasphere;
pub mod job;
pub mod net;
pub mod proto;
pub mod transfer;

use crate::config::RemoteConfig;
use crate::error::InputError;
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;

/// Everything a remote command needs: the runtime, the service, the HTTP client for
/// transfers, and the settings.
pub struct Remote {
    pub runtime: tokio::runtime::Runtime,
    pub service: datasphere::DataSphere,
    pub transfers: reqwest::Client,
    pub retry: datasphere::Retry,
    pub config: RemoteConfig,
}

impl Remote {
    /// Connects lazily (nothing is sent until the first call); refuses, with what to set,
    /// when the project or a credential is missing.
    pub fn connect(config: &RemoteConfig) -> Result<Remote> {
        if config.project_id.trim().is_empty() {
            return Err(InputError::new(
                "setting remote.project_id is empty: name the DataSphere project (infra/ creates one; `terraform output -raw project_id`)",
            )
            .into());
        }
        let credential = auth::Credential::from_env()?.ok_or_else(|| {
            InputError::new(format!(
                "no DataSphere credential in the environment: set {} (a service account's authorized key file), YC_OAUTH_TOKEN or YC_IAM_TOKEN",
                auth::KEY_FILE_VARIABLE
            ))
        })?;
        let runtime = net::runtime()?;
        let _entered = runtime.enter();
        let timeout = Duration::from_secs(config.timeout_seconds);
        let retry = datasphere::Retry {
            attempts: config.retry_attempts,
            timeout,
            ..Default::default()
        };
        let tokens = Arc::new(auth::Tokens::new(
            credential,
            &config.iam_endpoint,
            net::http(timeout)?,
            retry,
        ));
        let service = datasphere::DataSphere::new(
            net::channel(&config.jobs_endpoint, timeout)?,
            net::channel(&config.operation_endpoint, timeout)?,
            tokens,
            retry,
        );
        let transfers = net::http(Duration::from_secs(config.transfer_timeout_seconds))?;
        drop(_entered);
        Ok(Remote {
            runtime,
            service,
            transfers,
            retry,
            config: config.clone(),
        })
    }
}

/// `health --online`: a token for the credential, then the cheapest authorised call
/// against the project (list one job), each tried once: a health check answers within
/// its timeout rather than riding out a fault the way a job wait does. Returns what was
/// checked.
pub fn check_online(config: &RemoteConfig) -> Result<String> {
    let remote = Remote::connect(&RemoteConfig {
        retry_attempts: 1,
        ..config.clone()
    })?;
    let listed = remote
        .runtime
        .block_on(remote.service.list(&config.project_id, 1))?;
    Ok(format!(
        "a token was issued and project {} answered ({} job(s) listed)",
        config.project_id,
        listed.len()
    ))
}
