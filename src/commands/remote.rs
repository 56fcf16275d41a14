//! `train --remote` and `plastinka jobs`: the remote training workflow. Each step's state
//! is stored before the next one starts (the job id the moment DataSphere names it), so a
//! run interrupted anywhere — Ctrl-C, a lost connection, a killed process — can be picked
//! up by `jobs wait`, and a job's model is stored at most once.

use super::Context;
use crate::error::{Exit, InputError};
use crate::forecast::job::{JobInput, JobOutput};
use crate::remote::Remote;
use crate::remote::datasphere::{self, BINARY_FILE, INPUT_FILE, OUTPUT_FILE};
use crate::remote::job::{JobState, RemoteJob};
use crate::remote::proto::jobs;
use crate::store::history::DataVersion;
use anyhow::{Context as _, Result};
use std::io::Write;
use std::time::Duration;

/// How many lines of a failed job's log are shown.
const TAIL: usize = 20;

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Submits the training on the stored complete months; waits for it unless `detach`.
pub fn train(context: &Context, activate: bool, detach: bool) -> Result<()> {
    let (history, version) = context.existing_store()?.load_history_versioned()?;
    let history = history.complete_months();
    let settings = &context.config;
    if history.months.len() < crate::forecast::train::minimum_months(&settings.model) {
        return Err(InputError::new(format!(
            "training needs at least {} complete stored months; the store has {}",
            crate::forecast::train::minimum_months(&settings.model),
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
    // The configuration decides the device, not the local training.device: a GPU
    // configuration trains on its GPU, a CPU one on its cores.
    let training = crate::config::TrainingConfig {
        device: if gpu { "cuda" } else { "cpu" }.to_string(),
        ..settings.training.clone()
    };
    let input = JobInput {
        history,
        model: settings.model.clone(),
        training,
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
    let config = &remote.config;
    let input_sha256 = crate::digest::sha256_hex(input);
    let parameters = datasphere::job_parameters(&datasphere::Parameters {
        binary_sha256: &crate::digest::sha256_hex(binary),
        binary_size: binary.len() as u64,
        input_sha256: &input_sha256,
        input_size: input.len() as u64,
        instance_type: &config.instance_type,
    });
    let request = jobs::CreateProjectJobRequest {
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
    let mut record = |id: &str| -> Result<()> {
        let session = context.write_existing("train --remote")?;
        session.insert_job(&crate::store::jobs::new_job(
            id,
            &config.project_id,
            &config.instance_type,
            &input_sha256,
            months.clone(),
            version,
            activate,
        ))?;
        session.commit()?;
        say(&format!(
            "job {id}: created on DataSphere (project {})",
            config.project_id
        ));
        Ok(())
    };
    let created = remote.runtime.block_on(remote.service.create(
        request,
        poll.min(Duration::from_secs(2)),
        &mut record,
    ))?;
    let job_id = created.job_id;
    set_state(context, &job_id, JobState::Uploading, None, None)?;
    remote
        .runtime
        .block_on(async {
            for (path, url) in &created.uploads {
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
        .with_context(|| resume_hint(&job_id))?;
    let operation = remote
        .runtime
        .block_on(remote.service.execute(&job_id))
        .with_context(|| resume_hint(&job_id))?;
    set_state(context, &job_id, JobState::Running, Some(&operation), None)?;
    say(&format!(
        "job {job_id}: running on {}",
        config.instance_type
    ));
    Ok(job_id)
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

/// Waits for a job and stores its model. Ctrl-C leaves the job running and says how to
/// come back; a job whose model is already stored is not stored twice.
pub fn wait(context: &Context, remote: &Remote, id: &str) -> Result<()> {
    let job = known_job(context, id)?;
    match job.state {
        JobState::Stored => {
            crate::outln!(
                "Job {id} is done; its model {} is stored.",
                job.model_id.as_deref().unwrap_or("?")
            )?;
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
    let Some(operation) = job.execute_operation_id.clone() else {
        return Err(InputError::new(format!(
            "job {id} was interrupted before it started running (its files may not all be sent): cancel it (`plastinka jobs cancel {id}`) and submit again"
        ))
        .into());
    };
    let poll = Duration::from_secs(remote.config.poll_interval_seconds);
    let limit = Duration::from_secs(remote.config.max_wait_hours * 3600);
    let tail = std::sync::Mutex::new(std::collections::VecDeque::<String>::new());
    let mut keep = |line: &[u8]| {
        let text = String::from_utf8_lossy(line);
        let _ = std::io::stderr().write_all(line);
        if let Ok(mut tail) = tail.lock() {
            tail.extend(text.lines().map(String::from));
            while tail.len() > TAIL {
                tail.pop_front();
            }
        }
    };
    let outcome = remote.runtime.block_on(async {
        let logs = remote.service.read_logs(id, 0, &mut keep);
        let op = async {
            let op = remote.service.operation(&operation).await?;
            remote
                .service
                .wait_operation(op, poll, &mut |_| Ok(()))
                .await
        };
        tokio::select! {
            finished = async {
                // The log stream ends with the job; its errors never stop the wait.
                let (op, _) = tokio::join!(op, logs);
                op
            } => finished.map(Some),
            _ = tokio::time::sleep(limit) => Ok(None),
            _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Exit(130))),
        }
    });
    let op = match outcome {
        Ok(Some(op)) => op,
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
    finish(context, remote, &job, &op, &tail)
}

/// The operation is done: fail with the exit code and the log's end, or fetch, check and
/// store the model.
fn finish(
    context: &Context,
    remote: &Remote,
    job: &RemoteJob,
    op: &crate::remote::proto::operation::Operation,
    tail: &[String],
) -> Result<()> {
    let id = &job.id;
    let response: jobs::ExecuteProjectJobResponse = match datasphere::unpack(op, "Execute") {
        Ok(r) => r,
        Err(e) => {
            let message = format!("{e:#}");
            set_state(context, id, JobState::Failed, None, Some(&message))?;
            return Err(e.context(format!("job {id} failed; nothing was stored")));
        }
    };
    let code = response.result.map_or(0, |r| r.return_code);
    if code != 0 {
        let message = format!("exit code {code}; last log lines:\n{}", tail.join("\n"));
        set_state(context, id, JobState::Failed, None, Some(&message))?;
        anyhow::bail!("job {id} failed with {message}\nnothing was stored");
    }
    set_state(context, id, JobState::Downloading, None, None)?;
    let output = response
        .output_files
        .into_iter()
        .filter_map(|f| f.file)
        .find(|f| f.desc.as_ref().is_some_and(|d| d.path == OUTPUT_FILE))
        .ok_or_else(|| {
            anyhow::anyhow!("job {id} finished without {OUTPUT_FILE}; nothing was stored")
        })?;
    let bytes = remote.runtime.block_on(async {
        // Fresh presigned URLs: the ones in the operation may have expired by now.
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
    });
    let stored = bytes.and_then(|bytes| store_output(context, job, &bytes));
    if let Err(e) = &stored {
        let message = format!("{e:#}");
        set_state(context, id, JobState::Failed, None, Some(&message))?;
    }
    stored
}

/// Checks a job's output answers this job and stores its model like a local run's.
fn store_output(context: &Context, job: &RemoteJob, bytes: &[u8]) -> Result<()> {
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
    let mut record = output.record;
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
    record.id = super::train::new_model_id(&record.weights);
    record.remote_job_id = Some(job.id.clone());
    let session = context.write_existing("jobs")?;
    if session.job(&job.id)?.is_some_and(|j| j.model_id.is_some()) {
        crate::outln!(
            "Job {}'s model was stored meanwhile; nothing more to do.",
            job.id
        )?;
        return Ok(());
    }
    session.save_model(&record, &output.forecasts, job.activate)?;
    session.set_job_stored(&job.id, &record.id)?;
    session.commit()?;
    if session_data_changed(context, job)? {
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

fn session_data_changed(context: &Context, job: &RemoteJob) -> Result<bool> {
    let now = context.existing_store()?.data_version()?;
    Ok(now != DataVersion::from_stored(&job.data_version))
}

fn known_job(context: &Context, id: &str) -> Result<RemoteJob> {
    context.existing_store()?.job(id)?.ok_or_else(|| {
        InputError::new(format!(
            "no job «{id}» in this database; `plastinka jobs` lists them"
        ))
        .into()
    })
}

/// `plastinka jobs …`
pub fn jobs(context: &Context, command: &crate::cli::JobsCommand) -> Result<()> {
    use crate::cli::JobsCommand;
    match command {
        JobsCommand::List => list(context),
        JobsCommand::Show { id } => show(context, id),
        JobsCommand::Wait { id } => {
            known_job(context, id)?;
            let remote = Remote::connect(&context.config.remote)?;
            wait(context, &remote, id)
        }
        JobsCommand::Logs { id, follow } => logs(context, id, *follow),
        JobsCommand::Cancel { id } => cancel(context, id),
    }
}

fn list(context: &Context) -> Result<()> {
    let jobs = context.existing_store()?.jobs()?;
    if context.json {
        crate::outln!("{}", serde_json::to_string_pretty(&jobs)?)?;
        return Ok(());
    }
    if jobs.is_empty() {
        crate::outln!("No remote jobs yet: `plastinka train --remote` starts one.")?;
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    table.set_header(vec!["job", "created", "state", "data", "instance", "model"]);
    for j in &jobs {
        table.add_row(vec![
            j.id.clone(),
            j.created_at.clone(),
            j.state.name().to_string(),
            format!("{} … {}", j.data_first_month, j.data_last_month),
            j.instance_type.clone(),
            j.model_id.clone().unwrap_or_default(),
        ]);
    }
    crate::outln!("{table}")?;
    Ok(())
}

fn show(context: &Context, id: &str) -> Result<()> {
    let job = known_job(context, id)?;
    // What DataSphere says now, when it can be asked.
    let live = Remote::connect(&context.config.remote).and_then(|r| {
        let found = r.runtime.block_on(r.service.job(id))?;
        Ok(found)
    });
    let status = match &live {
        Ok(j) => jobs::JobStatus::try_from(j.status)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| j.status.to_string()),
        Err(e) => format!("(not asked: {e:#})"),
    };
    if context.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "job": job, "datasphere_status": status })
            )?
        )?;
        return Ok(());
    }
    crate::outln!(
        "job {}: {} here, {status} on DataSphere",
        job.id,
        job.state.name()
    )?;
    crate::outln!("  created {}, updated {}", job.created_at, job.updated_at)?;
    crate::outln!(
        "  data {} … {}, instance {}, project {}",
        job.data_first_month,
        job.data_last_month,
        job.instance_type,
        job.project_id
    )?;
    if let Some(model) = &job.model_id {
        crate::outln!("  model {model}")?;
    }
    if let Some(message) = &job.message {
        crate::outln!("  {message}")?;
    }
    Ok(())
}

fn logs(context: &Context, id: &str, follow: bool) -> Result<()> {
    known_job(context, id)?;
    let remote = Remote::connect(&context.config.remote)?;
    let mut print = |line: &[u8]| {
        let _ = crate::output::bytes(line);
    };
    remote.runtime.block_on(async {
        let read = remote.service.read_logs(id, 0, &mut print);
        if follow {
            read.await.map(|_| ())
        } else {
            // What is there now: the stream stays open while the job runs.
            match tokio::time::timeout(
                Duration::from_secs(remote.config.timeout_seconds.min(10)),
                read,
            )
            .await
            {
                Ok(result) => result.map(|_| ()),
                Err(_) => Ok(()),
            }
        }
    })
}

fn cancel(context: &Context, id: &str) -> Result<()> {
    let job = known_job(context, id)?;
    if !job.state.is_open() {
        crate::outln!(
            "Job {id} is {} already; nothing to cancel.",
            job.state.name()
        )?;
        return Ok(());
    }
    let remote = Remote::connect(&context.config.remote)?;
    remote.runtime.block_on(
        remote
            .service
            .cancel(id, "cancelled with plastinka jobs cancel"),
    )?;
    set_state(
        context,
        id,
        JobState::Cancelled,
        None,
        Some("cancelled with `plastinka jobs cancel`"),
    )?;
    crate::outln!("Cancelled job {id}.")?;
    Ok(())
}
