//! The DataSphere Jobs control plane over gRPC: every call carries a fresh IAM token,
//! retries UNAVAILABLE (and a dropped connection) with capped exponential backoff, and
//! renews the token once on UNAUTHENTICATED.

use super::auth::Tokens;
use super::proto::jobs::project_job_service_client::ProjectJobServiceClient;
use super::proto::jobs::{self, JobParameters};
use super::proto::operation::operation_service_client::OperationServiceClient;
use super::proto::operation::{self, Operation};
use anyhow::{Context, Result};
use prost::Message;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// How calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
    pub cap: Duration,
    /// Each call's own deadline.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 6,
            first: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            timeout: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// The wait before attempt `n` (from 1): first · 2^(n−1), capped.
    pub fn backoff(&self, n: u32) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1)))
            .min(self.cap)
    }
}

pub struct DataSphere {
    jobs: ProjectJobServiceClient<Channel>,
    operations: OperationServiceClient<Channel>,
    tokens: Arc<Tokens>,
    retry: Retry,
}

/// What `Create` answers once its operation is done.
pub struct Created {
    pub job_id: String,
    /// (file path, presigned URL) for each input the service does not have yet.
    pub uploads: Vec<(String, String)>,
}

impl DataSphere {
    pub fn new(jobs: Channel, operations: Channel, tokens: Arc<Tokens>, retry: Retry) -> Self {
        Self {
            jobs: ProjectJobServiceClient::new(jobs).max_decoding_message_size(64 << 20),
            operations: OperationServiceClient::new(operations),
            tokens,
            retry,
        }
    }

    /// Runs `call` with a token, retrying as the module says. Create and Execute are not
    /// idempotent (a retried Create can leave a second job, a retried Execute a job whose
    /// operation is unknown), so they are retried only when the call never got through.
    async fn call<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.tokens.get().await?;
            match call(format!("Bearer {}", token.expose())).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == Code::Unauthenticated && !renewed => {
                    renewed = true;
                    self.tokens.renew().await?;
                }
                Err(status) if retriable(what, &status) && attempt < self.retry.attempts => {
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                }
                Err(status) => {
                    return Err(anyhow::anyhow!(
                        "DataSphere {what}: {} ({})",
                        status.message(),
                        status.code().description()
                    ));
                }
            }
        }
    }

    fn request<T>(&self, token: String, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.retry.timeout);
        if let Ok(value) = token.parse() {
            request.metadata_mut().insert("authorization", value);
        }
        if let Ok(value) = concat!("plastinka/", env!("CARGO_PKG_VERSION")).parse() {
            request.metadata_mut().insert("x-client-version", value);
        }
        request
    }

    /// Creates the job. The job id is known as soon as the operation's metadata says it:
    /// `on_job_id` is called then, before the operation finishes, so the caller can store
    /// it at once.
    pub async fn create(
        &self,
        request: jobs::CreateProjectJobRequest,
        poll: Duration,
        on_job_id: &mut (dyn FnMut(&str) -> Result<()> + Send),
    ) -> Result<Created> {
        let op = self
            .call("Create", |token| {
                let mut client = self.jobs.clone();
                let message = self.request(token, request.clone());
                async move { client.create(message).await }
            })
            .await?;
        let mut told = None;
        let op = self
            .wait_operation(op, poll, &mut |op| {
                let meta = op
                    .metadata
                    .as_ref()
                    .and_then(|m| jobs::CreateProjectJobMetadata::decode(m.value.as_slice()).ok());
                if let Some(meta) = meta.filter(|m| !m.job_id.is_empty())
                    && told.as_deref() != Some(meta.job_id.as_str())
                {
                    on_job_id(&meta.job_id)?;
                    told = Some(meta.job_id);
                }
                Ok(())
            })
            .await?;
        let response: jobs::CreateProjectJobResponse = unpack(&op, "Create")?;
        if told.as_deref() != Some(response.job_id.as_str()) {
            on_job_id(&response.job_id)?;
        }
        Ok(Created {
            job_id: response.job_id,
            uploads: response
                .upload_files
                .into_iter()
                .filter(|f| !f.url.is_empty())
                .map(|f| {
                    let path = f
                        .file
                        .and_then(|f| f.desc)
                        .map(|d| d.path)
                        .unwrap_or_default();
                    (path, f.url)
                })
                .collect(),
        })
    }

    /// Starts the job; returns the id of its long-running operation.
    pub async fn execute(&self, job_id: &str) -> Result<String> {
        let op = self
            .call("Execute", |token| {
                let mut client = self.jobs.clone();
                let message = self.request(
                    token,
                    jobs::ExecuteProjectJobRequest {
                        job_id: job_id.to_string(),
                    },
                );
                async move { client.execute(message).await }
            })
            .await?;
        Ok(op.id)
    }

    pub async fn operation(&self, id: &str) -> Result<Operation> {
        self.call("OperationService.Get", |token| {
            let mut client = self.operations.clone();
            let message = self.request(
                token,
                operation::GetOperationRequest {
                    operation_id: id.to_string(),
                },
            );
            async move { client.get(message).await }
        })
        .await
    }

    /// Polls an operation every `poll` until it is done; `seen` sees each state.
    pub async fn wait_operation(
        &self,
        mut op: Operation,
        poll: Duration,
        seen: &mut (dyn FnMut(&Operation) -> Result<()> + Send),
    ) -> Result<Operation> {
        loop {
            seen(&op)?;
            if op.done {
                return Ok(op);
            }
            tokio::time::sleep(poll).await;
            op = self.operation(&op.id).await?;
        }
    }

    pub async fn job(&self, job_id: &str) -> Result<jobs::Job> {
        self.call("Get", |token| {
            let mut client = self.jobs.clone();
            let message = self.request(
                token,
                jobs::GetProjectJobRequest {
                    job_id: job_id.to_string(),
                },
            );
            async move { client.get(message).await }
        })
        .await
    }

    pub async fn cancel(&self, job_id: &str, reason: &str) -> Result<()> {
        self.call("Cancel", |token| {
            let mut client = self.jobs.clone();
            let message = self.request(
                token,
                jobs::CancelProjectJobRequest {
                    job_id: job_id.to_string(),
                    reason: reason.to_string(),
                    graceful: false,
                },
            );
            async move { client.cancel(message).await }
        })
        .await
        .map(|_| ())
    }

    /// Presigned download URLs of `files` of a job: (path, url, sha256, size).
    pub async fn download_urls(
        &self,
        job_id: &str,
        files: Vec<jobs::File>,
    ) -> Result<Vec<(String, String, String, i64)>> {
        let response = self
            .call("DownloadJobFiles", |token| {
                let mut client = self.jobs.clone();
                let message = self.request(
                    token,
                    jobs::DownloadProjectJobFilesRequest {
                        job_id: job_id.to_string(),
                        files: files.clone(),
                    },
                );
                async move { client.download_job_files(message).await }
            })
            .await?;
        Ok(response
            .download_files
            .into_iter()
            .map(|f| {
                let file = f.file.unwrap_or_default();
                let path = file.desc.map(|d| d.path).unwrap_or_default();
                (path, f.url, file.sha256, file.size_bytes)
            })
            .collect())
    }

    pub async fn list(&self, project_id: &str, page_size: i64) -> Result<Vec<jobs::Job>> {
        let response = self
            .call("List", |token| {
                let mut client = self.jobs.clone();
                let message = self.request(
                    token,
                    jobs::ListProjectJobRequest {
                        project_id: project_id.to_string(),
                        page_size,
                        ..Default::default()
                    },
                );
                async move { client.list(message).await }
            })
            .await?;
        Ok(response.jobs)
    }

    /// Reads the job's logs from `offset` until the stream ends, reconnecting (from the
    /// last offset seen, so no line comes twice) when it drops. `line` gets each message;
    /// returns the offset reached.
    pub async fn read_logs(
        &self,
        job_id: &str,
        mut offset: i64,
        line: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<i64> {
        let mut drops = 0;
        loop {
            let mut stream = self
                .call("ReadLogs", |token| {
                    // Not `request()`: its deadline would cut a stream that lasts as long
                    // as the job.
                    let mut client = self.jobs.clone();
                    let mut message = Request::new(jobs::ReadProjectJobLogsRequest {
                        job_id: job_id.to_string(),
                        offset,
                    });
                    if let Ok(value) = token.parse() {
                        message.metadata_mut().insert("authorization", value);
                    }
                    async move { client.read_logs(message).await }
                })
                .await?;
            loop {
                match stream.message().await {
                    Ok(Some(batch)) => {
                        for log in &batch.logs {
                            line(&log.content);
                        }
                        offset = batch.offset.max(offset);
                    }
                    Ok(None) => return Ok(offset),
                    Err(status)
                        if retriable("ReadLogs", &status) || status.code() == Code::Internal =>
                    {
                        drops += 1;
                        if drops > self.retry.attempts * 4 {
                            return Err(anyhow::anyhow!(
                                "DataSphere ReadLogs kept dropping: {}",
                                status.message()
                            ));
                        }
                        tokio::time::sleep(self.retry.backoff(drops.min(4))).await;
                        break;
                    }
                    Err(status) => {
                        return Err(anyhow::anyhow!("DataSphere ReadLogs: {}", status.message()));
                    }
                }
            }
        }
    }
}

fn retriable(what: &str, status: &Status) -> bool {
    if matches!(what, "Create" | "Execute") {
        return status.code() == Code::Unavailable;
    }
    matches!(
        status.code(),
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted | Code::DeadlineExceeded
    ) || (status.code() == Code::Unknown && status.message().contains("transport"))
}

/// An operation DataSphere finished with an error: the job's own failure (unlike a call
/// that did not get through).
#[derive(Debug)]
pub struct OperationFailed {
    pub message: String,
    /// google.rpc code 1: CANCELLED.
    pub cancelled: bool,
}

impl std::fmt::Display for OperationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OperationFailed {}

/// The response of a finished operation as `T`, or its error ([`OperationFailed`] when
/// the operation itself failed).
pub fn unpack<T: Message + Default>(op: &Operation, what: &str) -> Result<T> {
    match &op.result {
        Some(operation::operation::Result::Response(any)) => T::decode(any.value.as_slice())
            .with_context(|| format!("DataSphere {what}: an unreadable answer")),
        Some(operation::operation::Result::Error(status)) => Err(OperationFailed {
            message: format!(
                "DataSphere {what} failed: {} (code {})",
                status.message, status.code
            ),
            cancelled: status.code == 1,
        }
        .into()),
        None => Err(anyhow::anyhow!(
            "DataSphere {what}: the operation ended without an answer"
        )),
    }
}

/// The parameters of a plastinka training job.
pub struct Parameters<'a> {
    pub binary_sha256: &'a str,
    pub binary_size: u64,
    pub input_sha256: &'a str,
    pub input_size: u64,
    pub instance_type: &'a str,
}

pub const BINARY_FILE: &str = "plastinka";
pub const INPUT_FILE: &str = "input.plastinka-job";
pub const OUTPUT_FILE: &str = "output.plastinka-job";

/// The job's command. Jobs do not keep the executable bit of input files, so it is set
/// first; the binary then trains on the input and writes the output.
pub fn command() -> String {
    "chmod +x ${PLASTINKA} && ${PLASTINKA} __job --input ${INPUT} --output ${OUTPUT}".to_string()
}

pub fn job_parameters(p: &Parameters) -> JobParameters {
    let file = |path: &str, var: &str, sha256: &str, size: u64| jobs::File {
        desc: Some(jobs::FileDesc {
            path: path.to_string(),
            var: var.to_string(),
        }),
        sha256: sha256.to_string(),
        size_bytes: size as i64,
        compression_type: jobs::FileCompressionType::None as i32,
    };
    JobParameters {
        input_files: vec![
            file(BINARY_FILE, "PLASTINKA", p.binary_sha256, p.binary_size),
            file(INPUT_FILE, "INPUT", p.input_sha256, p.input_size),
        ],
        output_files: vec![jobs::FileDesc {
            path: OUTPUT_FILE.to_string(),
            var: "OUTPUT".to_string(),
        }],
        cmd: command(),
        cloud_instance_types: vec![jobs::CloudInstanceType {
            name: p.instance_type.to_string(),
        }],
        ..Default::default()
    }
}

/// The job's config.yaml, as the official client sends beside the parameters.
pub fn config_yaml(instance_type: &str) -> String {
    format!(
        "name: plastinka-train\ndesc: plastinka training job\ncmd: {}\ninputs:\n  - {BINARY_FILE}: PLASTINKA\n  - {INPUT_FILE}: INPUT\noutputs:\n  - {OUTPUT_FILE}: OUTPUT\ncloud-instance-types:\n  - {instance_type}\n",
        command()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let retry = Retry {
            attempts: 6,
            first: Duration::from_millis(500),
            cap: Duration::from_secs(3),
            timeout: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=5).map(|n| retry.backoff(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
    }
}
