//! `plastinka jobs`: list, show, logs, cancel (and `wait`, in `wait.rs`).

use super::{Context, known_job, set_state};
use crate::cli::JobsCommand;
use crate::remote::Remote;
use crate::remote::job::JobState;
use crate::remote::proto::jobs as proto;
use anyhow::Result;
use std::time::Duration;

/// `plastinka jobs …`
pub fn jobs(context: &Context, command: &JobsCommand) -> Result<()> {
    match command {
        JobsCommand::List => list(context),
        JobsCommand::Show { id } => show(context, id),
        JobsCommand::Wait { id } => {
            known_job(context, id)?;
            let remote = Remote::connect(&context.config.remote)?;
            super::wait(context, &remote, id)
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
        Ok(j) => proto::JobStatus::try_from(j.status)
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
        if context.json {
            crate::outln!("{}", serde_json::to_string_pretty(&job)?)?;
        } else {
            crate::outln!(
                "Job {id} is {} already; nothing to cancel.",
                job.state.name()
            )?;
        }
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
    // A job that ended meanwhile (its model stored by a waiter) keeps its state.
    let now = known_job(context, id)?;
    if context.json {
        crate::outln!("{}", serde_json::to_string_pretty(&now)?)?;
    } else if now.state == JobState::Cancelled {
        crate::outln!("Cancelled job {id}.")?;
    } else {
        crate::outln!(
            "Job {id} is {} here (it ended meanwhile); DataSphere was asked to cancel it.",
            now.state.name()
        )?;
    }
    Ok(())
}
