//! `train --remote` and `plastinka jobs`: the remote training workflow. Each step's state
//! is stored before the next one starts (the job id the moment DataSphere names it), so a
//! run interrupted anywhere — Ctrl-C, a lost connection, a killed process — can be picked
//! up by `jobs wait`, and a job's model is stored at most once.

mod jobs;
mod wait;

pub use jobs::jobs;
pub use wait::wait;

use super::Context;
use crate::error::InputError;
use crate::forecast::job::JobInput;
use crate::remote::Remote;
use crate::remote::datasphere::{self, BINARY_FILE, INPUT_FILE};
use crate::remote::job::{JobState, RemoteJob};
use crate::remote::proto::jobs as proto;
use crate::store::history::DataVersion;
use anyhow::{Context as _, Result};
use std::io::Write;
use std::time::Duration;

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Submits the training on the stored complete months; waits for it unless `detach`.
pub fn train(context: &Context, activate: bool, detach: bool) -> Result<()> {
    let (history, version) = context.existing_store()?.load_history_versioned()?;
    let history = history.complete_months();
    let settings = &context.config;
    let minimum = crate::forecast::train::minimum_months(&settings.model);
    if history.months.len() < minimum {
        return Err(InputError::new(format!(
            "training needs at least {minimum} complete stored months; the store has {}",
            history.months.len()
        ))
        .into());
    }
    let months = (
        history.months[0].to_string(),
        history.months[history.months.len() - 1].to_string(),
    );
    let configured = Some(settings.remote.binary.trim())
        .filter(|b| !b.is_empty())
        .map(std::path::PathBuf::from);
    let instance_type = settings.remote.instance_type.as_str();
    let gpu = crate::config::is_gpu_instance(instance_type);
    let (binary_path, binary) =
        crate::remote::binary::to_send(configured.as_deref(), gpu.then_some(instance_type))?;
    let input = JobInput {
        history,
        model: settings.model.clone(),
        training: job_training(&settings.training, instance_type),
    }
    .to_bytes()?;
    let remote = Remote::connect(&settings.remote)?;
    let job_id = submit(
        context, &remote, &binary, &input, months, &version, activate,
    )?;
    if detach {
        if context.json {
            crate::outln!(
                "{}",
                serde_json::json!({ "job_id": job_id, "state": "running" })
            )?;
        } else {
            crate::outln!(
                "Submitted job {job_id} ({} MB binary {}); it runs on DataSphere. Store its model with: plastinka jobs wait {job_id}",
                binary.len() / 1_000_000,
                binary_path.display()
            )?;
        }
        return Ok(());
    }
    wait(context, &remote, &job_id)
}

/// The training settings a job runs with. The configuration decides the device, not the
/// local `training.device`: a GPU configuration trains on its GPU, a CPU one on its cores.
/// `threads = 0` ("every core") becomes the configuration's vCPU count here, so the
/// stored model records the thread count it was trained with, and a local `train` with
/// that `training.threads` gives the same model (results depend on the thread count).
fn job_training(
    training: &crate::config::TrainingConfig,
    instance_type: &str,
) -> crate::config::TrainingConfig {
    let gpu = crate::config::is_gpu_instance(instance_type);
    let threads = match training.threads {
        0 => crate::config::instance_vcpus(instance_type).unwrap_or(0),
        n => n,
    };
    crate::config::TrainingConfig {
        device: if gpu { "cuda" } else { "cpu" }.to_string(),
        threads,
        ..training.clone()
    }
}

/// Create → store the id → upload → Execute → store the operation.
fn submit(
    context: &Context,
    remote: &Remote,
    binary: &[u8],
    input: &[u8],
    months: (String, String),
    version: &DataVersion,
    activate: bool,
) -> Result<String> {
    let created = create(context, remote, binary, input, months, version, activate)?;
    let job_id = created.job_id;
    set_state(context, &job_id, JobState::Uploading, None, None)?;
    upload(remote, &job_id, &created.uploads, binary, input).with_context(|| {
        format!(
            "job {job_id} is recorded but its files were not all sent: `plastinka jobs cancel {job_id}` and submit again"
        )
    })?;
    let operation = remote
        .runtime
        .block_on(remote.service.execute(&job_id))
        .with_context(|| resume_hint(&job_id))?;
    set_state(context, &job_id, JobState::Running, Some(&operation), None)?;
    say(&format!(
        "job {job_id}: running on {}",
        remote.config.instance_type
    ));
    Ok(job_id)
}

/// Creates the job and records it the moment DataSphere names it; a Create that then
/// fails leaves the job recorded as failed, not waiting for ever.
fn create(
    context: &Context,
    remote: &Remote,
    binary: &[u8],
    input: &[u8],
    months: (String, String),
    version: &DataVersion,
    activate: bool,
) -> Result<datasphere::Created> {
    let config = &remote.config;
    let input_sha256 = crate::digest::sha256_hex(input);
    let parameters = datasphere::job_parameters(&datasphere::Parameters {
        binary_sha256: &crate::digest::sha256_hex(binary),
        binary_size: binary.len() as u64,
        input_sha256: &input_sha256,
        input_size: input.len() as u64,
        instance_type: &config.instance_type,
    });
    let request = proto::CreateProjectJobRequest {
        project_id: config.project_id.clone(),
        job_parameters: Some(parameters),
        config: datasphere::config_yaml(&config.instance_type),
        name: format!("plastinka-train-{}", &input_sha256[..8]),
        desc: format!("plastinka train on {}…{}", months.0, months.1),
        data_ttl: Some(prost_types::Duration {
            seconds: i64::from(config.data_ttl_days) * 86_400,
            nanos: 0,
        }),
    };
    let poll = Duration::from_secs(config.poll_interval_seconds);
    let mut recorded: Option<String> = None;
    let mut record = |id: &str| -> Result<()> {
        say(&format!("job {id}: created on DataSphere"));
        let unrecorded = || {
            format!(
                "job {id} was created on DataSphere but could not be recorded here; stop it in the DataSphere console"
            )
        };
        let session = context
            .write_existing("train --remote")
            .with_context(unrecorded)?;
        session
            .insert_job(&crate::store::jobs::new_job(
                id,
                &config.project_id,
                &config.instance_type,
                &input_sha256,
                months.clone(),
                version,
                activate,
            ))
            .with_context(unrecorded)?;
        session.commit().with_context(unrecorded)?;
        recorded = Some(id.to_string());
        Ok(())
    };
    let created = remote.runtime.block_on(remote.service.create(
        request,
        poll.min(Duration::from_secs(2)),
        &mut record,
    ));
    match created {
        Ok(created) => Ok(created),
        // Only Create's own failure ends the job; after a passing fault it stays
        // `submitted`, and `jobs wait` finds out from DataSphere where it stands.
        Err(e) if e.is::<datasphere::OperationFailed>() => {
            if let Some(id) = recorded {
                set_state(
                    context,
                    &id,
                    JobState::Failed,
                    None,
                    Some(&format!("{e:#}")),
                )?;
            }
            Err(e)
        }
        Err(e) => match recorded {
            Some(id) => Err(e.context(resume_hint(&id))),
            None => Err(e),
        },
    }
}

/// Sends the files DataSphere asks for (none it already has by sha256).
fn upload(
    remote: &Remote,
    job_id: &str,
    uploads: &[(String, String)],
    binary: &[u8],
    input: &[u8],
) -> Result<()> {
    remote.runtime.block_on(async {
        for (path, url) in uploads {
            let bytes = match path.as_str() {
                BINARY_FILE => binary,
                INPUT_FILE => input,
                other => {
                    anyhow::bail!("DataSphere asked for a file this job does not have: {other}")
                }
            };
            say(&format!(
                "job {job_id}: sending {path} ({} MB)",
                bytes.len() / 1_000_000
            ));
            crate::remote::transfer::put(&remote.transfers, url, path, bytes, &remote.retry)
                .await?;
        }
        Ok(())
    })
}

fn resume_hint(job_id: &str) -> String {
    format!(
        "job {job_id} is recorded; `plastinka jobs wait {job_id}` picks it up, `plastinka jobs cancel {job_id}` stops it"
    )
}

fn set_state(
    context: &Context,
    id: &str,
    state: JobState,
    operation: Option<&str>,
    message: Option<&str>,
) -> Result<()> {
    let session = context.write_existing("jobs")?;
    session.set_job_state(id, state, operation, message)?;
    session.commit()
}

fn known_job(context: &Context, id: &str) -> Result<RemoteJob> {
    context.existing_store()?.job(id)?.ok_or_else(|| {
        InputError::new(format!(
            "no job «{id}» in this database; `plastinka jobs` lists them"
        ))
        .into()
    })
}
