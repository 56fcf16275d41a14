//! Waiting for a job and storing its model. A job is followed through its Execute
//! operation when that was recorded, else through the job's own status (a run killed
//! between Execute and recording its operation is still picked up). What happens to the
//! job's record depends on whose fault a failure is: the job's own (it failed, or wrote a
//! damaged model) ends it as failed; a passing one here (a download cut short, the
//! database busy) leaves it open for the next `jobs wait`.

use super::{Context, known_job, resume_hint, say, set_state};
use crate::error::{Exit, InputError};
use crate::forecast::job::JobOutput;
use crate::remote::Remote;
use crate::remote::datasphere::{self, OUTPUT_FILE};
use crate::remote::job::{JobState, RemoteJob};
use crate::remote::proto::jobs as proto;
use crate::store::history::DataVersion;
use anyhow::{Context as _, Result};
use std::io::Write;
use std::time::Duration;

/// How many lines of a failed job's log are shown.
const TAIL: usize = 20;
/// How long the log stream may go on once the job is over, for its last lines.
const LOG_GRACE: Duration = Duration::from_secs(5);

/// How a job ended, as far as DataSphere says.
enum Ended {
    /// It ran; its exit code (when DataSphere gave one) and output files.
    Ran(proto::ExecuteProjectJobResponse),
    /// It failed there.
    Failed(String),
    /// It was cancelled there.
    Cancelled(String),
    /// It was never executed (interrupted while its files were sent).
    NeverStarted,
}

/// Waits for a job and stores its model. Ctrl-C leaves the job running and says how to
/// come back; a job whose model is already stored is not stored twice.
pub fn wait(context: &Context, remote: &Remote, id: &str) -> Result<()> {
    let job = known_job(context, id)?;
    match job.state {
        JobState::Stored => {
            if context.json {
                crate::outln!("{}", serde_json::to_string_pretty(&job)?)?;
            } else {
                crate::outln!(
                    "Job {id} is done; its model {} is stored.",
                    job.model_id.as_deref().unwrap_or("?")
                )?;
            }
            return Ok(());
        }
        JobState::Failed | JobState::Cancelled => {
            return Err(anyhow::anyhow!(
                "job {id} is {}: {}",
                job.state.name(),
                job.message.as_deref().unwrap_or("no reason recorded")
            ));
        }
        _ => {}
    }
    let limit = Duration::from_secs(remote.config.max_wait_hours.saturating_mul(3600));
    let tail = std::sync::Mutex::new(std::collections::VecDeque::<String>::new());
    let mut keep = |line: &[u8]| {
        let _ = std::io::stderr().write_all(line);
        if let Ok(mut tail) = tail.lock() {
            tail.extend(String::from_utf8_lossy(line).lines().map(String::from));
            while tail.len() > TAIL {
                tail.pop_front();
            }
        }
    };
    let outcome = remote.runtime.block_on(async {
        tokio::select! {
            ended = follow(remote, &job, &mut keep) => ended.map(Some),
            _ = tokio::time::sleep(limit) => Ok(None),
            _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Exit(130))),
        }
    });
    let ended = match outcome {
        Ok(Some(ended)) => ended,
        Ok(None) => {
            return Err(anyhow::anyhow!(
                "job {id} is still running after remote.max_wait_hours; {}",
                resume_hint(id)
            ));
        }
        Err(e) if e.is::<Exit>() => {
            say(&format!(
                "interrupted: job {id} keeps running on DataSphere; `plastinka jobs wait {id}` stores its model when it is done"
            ));
            return Err(e);
        }
        Err(e) => return Err(e.context(resume_hint(id))),
    };
    let tail: Vec<String> = tail.into_inner().unwrap_or_default().into_iter().collect();
    finish(context, remote, &job, ended, &tail)
}

/// The job's end, with its log streamed meanwhile. The log never holds the result back:
/// once the job is over the stream gets [`LOG_GRACE`] for its last lines, and a log that
/// cannot be read is said, not fatal.
async fn follow(
    remote: &Remote,
    job: &RemoteJob,
    keep: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<Ended> {
    let poll = Duration::from_secs(remote.config.poll_interval_seconds);
    let ended = async {
        match &job.execute_operation_id {
            Some(operation) => {
                let op = remote.service.operation(operation).await?;
                let op = remote
                    .service
                    .wait_operation(op, poll, &mut |_| Ok(()))
                    .await?;
                match datasphere::unpack(&op, "Execute") {
                    Ok(response) => Ok(Ended::Ran(response)),
                    Err(e) => match e.downcast_ref::<datasphere::OperationFailed>() {
                        Some(failed) if failed.cancelled => {
                            Ok(Ended::Cancelled(failed.message.clone()))
                        }
                        Some(failed) => Ok(Ended::Failed(failed.message.clone())),
                        // An answer we cannot read is not the job's failure.
                        None => Err(e),
                    },
                }
            }
            None => job_status_end(remote, &job.id, poll).await,
        }
    };
    let logs = remote.service.read_logs(&job.id, 0, keep);
    tokio::pin!(ended, logs);
    let note = |read: Result<i64>| {
        if let Err(e) = read {
            say(&format!(
                "note: the job's log could not be read to its end: {e:#}"
            ));
        }
    };
    enum First<A, B> {
        Ended(A),
        Logs(B),
    }
    let first = tokio::select! {
        ended = &mut ended => First::Ended(ended),
        read = &mut logs => First::Logs(read),
    };
    match first {
        First::Ended(ended) => {
            if let Ok(read) = tokio::time::timeout(LOG_GRACE, &mut logs).await {
                note(read);
            }
            ended
        }
        First::Logs(read) => {
            note(read);
            ended.await
        }
    }
}

/// Follows a job whose Execute operation was not recorded by the job's own status.
async fn job_status_end(remote: &Remote, id: &str, poll: Duration) -> Result<Ended> {
    use proto::JobStatus;
    loop {
        let job = remote.service.job(id).await?;
        match JobStatus::try_from(job.status) {
            Ok(JobStatus::Success) => {
                return Ok(Ended::Ran(proto::ExecuteProjectJobResponse {
                    output_files: job
                        .output_files
                        .into_iter()
                        .map(|file| proto::StorageFile {
                            file: Some(file),
                            url: String::new(),
                        })
                        .collect(),
                    ..Default::default()
                }));
            }
            Ok(JobStatus::Error) => {
                return Ok(Ended::Failed(format!(
                    "DataSphere reports the job failed: {}",
                    job.status_details
                )));
            }
            Ok(JobStatus::Cancelled) => {
                return Ok(Ended::Cancelled("cancelled on DataSphere".to_string()));
            }
            Ok(JobStatus::Creating) => return Ok(Ended::NeverStarted),
            _ => tokio::time::sleep(poll).await,
        }
    }
}

/// The job is over: fail with its exit code and the log's end, or fetch, check and store
/// the model.
fn finish(
    context: &Context,
    remote: &Remote,
    job: &RemoteJob,
    ended: Ended,
    tail: &[String],
) -> Result<()> {
    let id = &job.id;
    let response = match ended {
        Ended::Ran(response) => response,
        Ended::Failed(message) => {
            set_state(context, id, JobState::Failed, None, Some(&message))?;
            anyhow::bail!("job {id} failed: {message}; nothing was stored");
        }
        Ended::Cancelled(message) => {
            set_state(context, id, JobState::Cancelled, None, Some(&message))?;
            anyhow::bail!("job {id} was cancelled: {message}; nothing was stored");
        }
        Ended::NeverStarted => {
            return Err(InputError::new(format!(
                "job {id} was never started (interrupted while its files were sent): `plastinka jobs cancel {id}` and submit again"
            ))
            .into());
        }
    };
    // No exit code is taken as success: the output's own checks still guard the store.
    let code = response.result.map_or(0, |r| r.return_code);
    if code != 0 {
        let message = format!("exit code {code}; last log lines:\n{}", tail.join("\n"));
        set_state(context, id, JobState::Failed, None, Some(&message))?;
        anyhow::bail!("job {id} failed with {message}\nnothing was stored");
    }
    let Some(output) = response
        .output_files
        .into_iter()
        .filter_map(|f| f.file)
        .find(|f| f.desc.as_ref().is_some_and(|d| d.path == OUTPUT_FILE))
    else {
        let message = format!("the job finished without {OUTPUT_FILE}");
        set_state(context, id, JobState::Failed, None, Some(&message))?;
        anyhow::bail!("job {id}: {message}; nothing was stored");
    };
    set_state(context, id, JobState::Downloading, None, None)?;
    let bytes = match download(remote, id, output) {
        Ok(bytes) => bytes,
        // Refused for good (a 4xx on fresh URLs: the job's data expired or is gone).
        Err(e) if e.is::<crate::remote::transfer::Refused>() => {
            set_state(context, id, JobState::Failed, None, Some(&format!("{e:#}")))?;
            return Err(e.context(format!(
                "job {id}: its output cannot be fetched; nothing was stored"
            )));
        }
        Err(e) => return Err(e.context(resume_hint(id))),
    };
    let output = match checked_output(job, &bytes) {
        Ok(output) => output,
        Err(e) => {
            set_state(context, id, JobState::Failed, None, Some(&format!("{e:#}")))?;
            return Err(e);
        }
    };
    store_output(context, job, output).with_context(|| resume_hint(id))
}

/// The output file over a fresh presigned URL (the ones in the operation may have
/// expired by now), its size and sha256 checked.
fn download(remote: &Remote, id: &str, output: proto::File) -> Result<Vec<u8>> {
    remote.runtime.block_on(async {
        let urls = remote
            .service
            .download_urls(id, vec![output.clone()])
            .await?;
        let (_, url, sha256, size) = urls
            .into_iter()
            .find(|(path, ..)| path == OUTPUT_FILE)
            .ok_or_else(|| anyhow::anyhow!("DataSphere gave no URL for {OUTPUT_FILE}"))?;
        let sha256 = if sha256.is_empty() {
            output.sha256.clone()
        } else {
            sha256
        };
        let size = if size > 0 { size } else { output.size_bytes };
        crate::remote::transfer::get(
            &remote.transfers,
            &url,
            OUTPUT_FILE,
            &sha256,
            size,
            &remote.retry,
        )
        .await
    })
}

/// The job's output, if it is whole and answers this job: the input it was sent and the
/// months of data it covered.
fn checked_output(job: &RemoteJob, bytes: &[u8]) -> Result<JobOutput> {
    let output = JobOutput::from_bytes(bytes)
        .with_context(|| format!("job {}: its output is damaged; nothing was stored", job.id))?;
    if output.input_sha256 != job.input_sha256 {
        anyhow::bail!(
            "job {}: the output answers another input (sha256 {}, sent {}); nothing was stored",
            job.id,
            output.input_sha256,
            job.input_sha256
        );
    }
    let record = &output.record;
    if record.first_month.to_string() != job.data_first_month
        || record.last_month.to_string() != job.data_last_month
    {
        anyhow::bail!(
            "job {}: the model covers {}…{}, the job was sent {}…{}; nothing was stored",
            job.id,
            record.first_month,
            record.last_month,
            job.data_first_month,
            job.data_last_month
        );
    }
    Ok(output)
}

/// Stores a checked output's model like a local run's, once: a job stored meanwhile (by
/// another `jobs wait`) or ended otherwise stores nothing.
fn store_output(context: &Context, job: &RemoteJob, output: JobOutput) -> Result<()> {
    let mut record = output.record;
    record.id = super::super::train::new_model_id(&record.weights);
    record.remote_job_id = Some(job.id.clone());
    let session = context.write_existing("jobs")?;
    session.save_model(&record, &output.forecasts, job.activate)?;
    if !session.set_job_stored(&job.id, &record.id)? {
        drop(session); // rolls the model back
        let now = known_job(context, &job.id)?;
        if context.json {
            crate::outln!("{}", serde_json::to_string_pretty(&now)?)?;
        } else {
            crate::outln!(
                "Job {} is {} meanwhile; nothing more was stored.",
                job.id,
                now.state.name()
            )?;
        }
        return Ok(());
    }
    session.commit()?;
    // The model is stored: failing to compare data versions is no reason to say otherwise.
    if data_changed_since(context, job).unwrap_or(false) {
        say(&format!(
            "note: uploads landed after job {} was submitted; its model covers {}…{}",
            job.id, job.data_first_month, job.data_last_month
        ));
    }
    if context.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model_id": record.id,
                "remote_job_id": job.id,
                "active": job.activate,
                "forecast_month": record.forecast_month,
                "forecasts": output.forecasts.len(),
                "metrics": record.metrics,
            }))?
        )?;
    } else {
        crate::outln!(
            "Stored model {} from job {}{}: forecast for {}, {} products.",
            record.id,
            job.id,
            if job.activate { " (active)" } else { "" },
            record.forecast_month,
            output.forecasts.len()
        )?;
    }
    Ok(())
}

fn data_changed_since(context: &Context, job: &RemoteJob) -> Result<bool> {
    let now = context.existing_store()?.data_version()?;
    Ok(now != DataVersion::from_stored(&job.data_version))
}
