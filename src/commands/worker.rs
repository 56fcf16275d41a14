//! The job's side of remote training: `plastinka __job --input FILE --output FILE`, run
//! by DataSphere on the uploaded binary. It reads the input, trains exactly as `plastinka
//! train` does, and writes the output; progress goes to stderr, which is the job's log.
//! It needs no settings file and no database.

use crate::forecast::job::{self, JobInput};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

pub const COMMAND: &str = "__job";

/// Runs the job from the arguments after `__job`; returns the exit code.
pub fn main(args: impl Iterator<Item = std::ffi::OsString>) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn run(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<()> {
    let (mut input, mut output) = (None, None);
    while let Some(flag) = args.next() {
        let value = args.next().map(PathBuf::from);
        match flag.to_str() {
            Some("--input") => input = value,
            Some("--output") => output = value,
            _ => anyhow::bail!("usage: plastinka {COMMAND} --input FILE --output FILE"),
        }
    }
    let (Some(input), Some(output)) = (input, output) else {
        anyhow::bail!("usage: plastinka {COMMAND} --input FILE --output FILE");
    };
    let bytes =
        std::fs::read(&input).with_context(|| format!("cannot read {}", input.display()))?;
    let digest = crate::digest::sha256_hex(&bytes);
    let request = JobInput::from_bytes(&bytes)?;
    let h = &request.history;
    eprintln!(
        "plastinka {}: training on {} products × {} months ({}…{}), {} threads on {} cores",
        env!("CARGO_PKG_VERSION"),
        h.products.len(),
        h.months.len(),
        h.months.first().map(|m| m.to_string()).unwrap_or_default(),
        h.months.last().map(|m| m.to_string()).unwrap_or_default(),
        match request.training.threads {
            0 => "all".to_string(),
            n => n.to_string(),
        },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let answer = job::run(&request, &digest, &mut |r| {
        let _ = writeln!(
            std::io::stderr(),
            "phase {} epoch {}/{}: train loss {:.5}{} ({:.1} s)",
            r.phase,
            r.epoch,
            r.epochs,
            r.train_loss,
            r.valid_loss
                .map_or(String::new(), |v| format!(" valid {v:.5}")),
            r.seconds
        );
    })?;
    let written = answer.to_bytes()?;
    // Written beside the target and renamed: a job killed mid-write leaves no half file.
    let partial = output.with_extension("partial");
    std::fs::write(&partial, &written)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &output)?;
    eprintln!(
        "done: forecast for {}, {} products; {} bytes written",
        answer.record.forecast_month,
        answer.forecasts.len(),
        written.len()
    );
    Ok(())
}
