//! The fake runs each job for real: the uploaded binary, the job's command, a temporary
//! directory.

use super::*;

/// Runs a job: inputs into a temporary directory, ${VAR}s substituted, `sh -c`, its
/// output lines into the log, the outputs into storage, the operation done. A job
/// cancelled while it waits for its machine never runs.
pub(super) fn run_job(state: Shared, job_id: String, op_id: String) {
    let dir = tempfile::tempdir().unwrap();
    let (params, faults) = {
        let state = state.lock().unwrap();
        (state.jobs[&job_id].params.clone(), state.faults.clone())
    };
    std::thread::sleep(faults.hold);
    if state.lock().unwrap().jobs[&job_id].status == JobStatus::Cancelled as i32 {
        finish(&mut state.lock().unwrap(), &job_id, &op_id, -1, Vec::new());
        return;
    }
    let cmd = place_files(&state, &params, &faults, dir.path());
    state.lock().unwrap().commands.push(cmd.clone());
    state.lock().unwrap().runs += 1;
    let code = execute(&state, &job_id, &cmd, dir.path());
    let mut state = state.lock().unwrap();
    let outputs = store_outputs(&mut state, &params, &faults, dir.path());
    finish(&mut state, &job_id, &op_id, code, outputs);
}

/// Writes the inputs into `dir` (damaged on request) and returns the job's command with
/// every ${VAR} replaced by its file's path.
fn place_files(
    state: &Shared,
    params: &jobs::JobParameters,
    faults: &Faults,
    dir: &std::path::Path,
) -> String {
    let state = state.lock().unwrap();
    let mut cmd = params.cmd.clone();
    for file in &params.input_files {
        let desc = file.desc.clone().unwrap_or_default();
        let mut bytes = state.blobs[&file.sha256].clone();
        if faults.damage_input && desc.var == "INPUT" {
            bytes.truncate(bytes.len() / 2);
        }
        let path = dir.join(&desc.path);
        std::fs::write(&path, bytes).unwrap();
        // Jobs do not keep the executable bit: the command must set it.
        cmd = cmd.replace(&format!("${{{}}}", desc.var), &path.display().to_string());
    }
    for desc in &params.output_files {
        cmd = cmd.replace(
            &format!("${{{}}}", desc.var),
            &dir.join(&desc.path).display().to_string(),
        );
    }
    cmd
}

/// Runs the command, its output lines into the job's log; the exit code.
fn execute(state: &Shared, job_id: &str, cmd: &str, dir: &std::path::Path) -> i64 {
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1; {cmd}"))
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(job) = state.lock().unwrap().jobs.get_mut(job_id) {
        job.pid = Some(child.id());
    }
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).split(b'\n') {
        let Ok(mut line) = line else { break };
        line.push(b'\n');
        if let Some(job) = state.lock().unwrap().jobs.get_mut(job_id) {
            job.logs.push(line);
        }
    }
    child.wait().unwrap().code().unwrap_or(-1) as i64
}

/// The output files into storage, as they will be served (damaged or cut short on
/// request; the whole ones kept for [`State::heal_outputs`]).
fn store_outputs(
    state: &mut State,
    params: &jobs::JobParameters,
    faults: &Faults,
    dir: &std::path::Path,
) -> Vec<jobs::File> {
    let mut outputs = Vec::new();
    for desc in &params.output_files {
        let Ok(bytes) = std::fs::read(dir.join(&desc.path)) else {
            continue;
        };
        let mut served = bytes.clone();
        if faults.damage_output {
            let at = served.len() - 100;
            served[at] ^= 0xFF;
        }
        let sha = sha256(&served);
        let size = served.len() as i64;
        state.blobs.insert(sha.clone(), served.clone());
        if faults.truncate_output {
            served.truncate(served.len() / 2);
        }
        state.served.insert(sha.clone(), served);
        outputs.push(jobs::File {
            desc: Some(desc.clone()),
            sha256: sha,
            size_bytes: size,
            compression_type: 0,
        });
    }
    outputs
}

/// The job's final status and its operation's answer.
fn finish(state: &mut State, job_id: &str, op_id: &str, code: i64, outputs: Vec<jobs::File>) {
    let http = state.http_url.clone();
    let cancelled = state.jobs[job_id].status == JobStatus::Cancelled as i32;
    let job = state.jobs.get_mut(job_id).unwrap();
    job.finished = true;
    job.return_code = code;
    job.outputs = outputs.clone();
    if !cancelled {
        job.status = if code == 0 {
            JobStatus::Success
        } else {
            JobStatus::Error
        } as i32;
    }
    let result = if cancelled {
        operation::operation::Result::Error(plastinka::remote::proto::google::rpc::Status {
            code: 1,
            message: "the job was cancelled".into(),
            details: Vec::new(),
        })
    } else {
        operation::operation::Result::Response(any(
            "yandex.cloud.datasphere.v2.jobs.ExecuteProjectJobResponse",
            &jobs::ExecuteProjectJobResponse {
                output_files: outputs
                    .into_iter()
                    .map(|f| jobs::StorageFile {
                        url: format!("{http}/download/{}", f.sha256),
                        file: Some(f),
                    })
                    .collect(),
                result: Some(jobs::JobResult { return_code: code }),
                ..Default::default()
            },
        ))
    };
    if let Some(op) = state.operations.get_mut(op_id) {
        op.done = true;
        op.result = Some(result);
    }
}

impl State {
    /// From now on outputs are served whole (a transfer fault that has passed).
    pub fn heal_outputs(&mut self) {
        for (sha, served) in self.served.iter_mut() {
            if let Some(whole) = self.blobs.get(sha) {
                served.clone_from(whole);
            }
        }
    }
}
