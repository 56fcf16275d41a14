//! A fake DataSphere on 127.0.0.1 for the remote tests: the Jobs and Operation gRPC
//! services from the same protos, an HTTP server for the presigned transfers and the IAM
//! token exchange. It really runs jobs: the uploaded binary with the job's command, in a
//! temporary directory, its output served back. Faults are injected on request.

use plastinka::remote::proto::jobs::project_job_service_server::{
    ProjectJobService, ProjectJobServiceServer,
};
use plastinka::remote::proto::jobs::{self, JobStatus};
use plastinka::remote::proto::operation::operation_service_server::{
    OperationService, OperationServiceServer,
};
use plastinka::remote::proto::operation::{self, Operation};
use prost::Message;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// What to break, and how often.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The first N gRPC calls answer UNAVAILABLE.
    pub unavailable_first: u32,
    /// The first log stream is cut after this many messages.
    pub drop_logs_after: Option<usize>,
    /// IAM tokens expire this long after they are issued (default an hour).
    pub token_lifetime: Option<Duration>,
    /// The first presigned PUT answers 503.
    pub put_503_once: bool,
    /// The job's input is damaged before it runs (the job then fails with exit 1).
    pub damage_input: bool,
    /// The output is served with a byte flipped (and its listed sha256 recomputed, so only
    /// plastinka's own check of the weights can catch it).
    pub damage_output: bool,
    /// The output is served cut short (its listed size still the whole).
    pub truncate_output: bool,
    /// The job waits this long before it runs.
    pub hold: Duration,
}

#[derive(Default)]
struct FakeJob {
    params: jobs::JobParameters,
    project_id: String,
    status: i32,
    logs: Vec<Vec<u8>>,
    finished: bool,
    return_code: i64,
    outputs: Vec<jobs::File>,
    pid: Option<u32>,
}

#[derive(Default)]
pub struct State {
    pub faults: Faults,
    jobs: HashMap<String, FakeJob>,
    blobs: HashMap<String, Vec<u8>>,
    /// What each sha256 is served as (damaged outputs differ from the stored blob).
    served: HashMap<String, Vec<u8>>,
    operations: HashMap<String, Operation>,
    tokens: HashMap<String, Instant>,
    next: u64,
    pub grpc_calls: HashMap<&'static str, u32>,
    pub unavailable_sent: u32,
    pub unauthenticated_sent: u32,
    pub log_streams: u32,
    pub puts: u32,
    pub put_failures: u32,
    pub tokens_issued: u32,
    /// The commands jobs ran, after ${VAR} substitution.
    pub commands: Vec<String>,
    /// Every credential the IAM exchange saw (to prove none was a log line or so).
    pub exchanges: Vec<String>,
    /// A service account whose JWTs the IAM exchange accepts: (key id, account id, key).
    pub service_account: Option<(String, String, rsa::PublicKey)>,
    http_url: String,
}

/// The OAuth token the fake IAM accepts.
pub const OAUTH: &str = "y0_fake_oauth_token_never_printed";

type Shared = Arc<Mutex<State>>;

pub struct FakeDataSphere {
    pub grpc: String,
    pub http: String,
    pub state: Shared,
    _runtime: std::thread::JoinHandle<()>,
}

fn any<M: Message>(type_url: &str, message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/{type_url}"),
        value: message.encode_to_vec(),
    }
}

fn sha256(bytes: &[u8]) -> String {
    plastinka::digest::sha256_hex(bytes)
}

impl FakeDataSphere {
    pub fn start(faults: Faults) -> Self {
        let state: Shared = Arc::new(Mutex::new(State {
            faults,
            ..State::default()
        }));
        let http = start_http(state.clone());
        let service_http = http.clone();
        let grpc_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let grpc = format!("http://{}", grpc_listener.local_addr().unwrap());
        grpc_listener.set_nonblocking(true).unwrap();
        let service_state = state.clone();
        let runtime = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(grpc_listener).unwrap();
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                tonic::transport::Server::builder()
                    .add_service(ProjectJobServiceServer::new(Jobs {
                        state: service_state.clone(),
                        http: service_http,
                    }))
                    .add_service(OperationServiceServer::new(Operations {
                        state: service_state,
                    }))
                    .serve_with_incoming(incoming)
                    .await
                    .unwrap();
            });
        });
        FakeDataSphere {
            grpc,
            http,
            state,
            _runtime: runtime,
        }
    }

    /// Environment for plastinka: endpoints here, a project, a fast poll.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PLASTINKA_REMOTE_PROJECT_ID".into(), "fake-project".into()),
            ("PLASTINKA_REMOTE_JOBS_ENDPOINT".into(), self.grpc.clone()),
            (
                "PLASTINKA_REMOTE_OPERATION_ENDPOINT".into(),
                self.grpc.clone(),
            ),
            (
                "PLASTINKA_REMOTE_IAM_ENDPOINT".into(),
                format!("{}/iam/v1/tokens", self.http),
            ),
            ("PLASTINKA_REMOTE_POLL_INTERVAL_SECONDS".into(), "1".into()),
            ("PLASTINKA_REMOTE_TIMEOUT_SECONDS".into(), "10".into()),
        ]
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl State {
    /// Every log line of every job, in order.
    pub fn jobs_logs(&self) -> Vec<Vec<u8>> {
        self.jobs.values().flat_map(|j| j.logs.clone()).collect()
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:06}", self.next)
    }

    /// Counts a call; answers UNAVAILABLE while the fault lasts, UNAUTHENTICATED for a
    /// missing or expired token.
    fn admit<T>(&mut self, method: &'static str, request: &Request<T>) -> Result<(), Status> {
        *self.grpc_calls.entry(method).or_default() += 1;
        if self.unavailable_sent < self.faults.unavailable_first {
            self.unavailable_sent += 1;
            return Err(Status::unavailable("fake: try again"));
        }
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        match self.tokens.get(token) {
            Some(expires) if *expires > Instant::now() => Ok(()),
            _ => {
                self.unauthenticated_sent += 1;
                Err(Status::unauthenticated(
                    "fake: the IAM token is missing or expired",
                ))
            }
        }
    }
}

struct Jobs {
    state: Shared,
    http: String,
}

struct Operations {
    state: Shared,
}

#[tonic::async_trait]
impl OperationService for Operations {
    async fn get(
        &self,
        request: Request<operation::GetOperationRequest>,
    ) -> Result<Response<Operation>, Status> {
        let mut state = self.state.lock().unwrap();
        state.admit("OperationService.Get", &request)?;
        let id = &request.get_ref().operation_id;
        let op = state
            .operations
            .get_mut(id)
            .ok_or_else(|| Status::not_found("no such operation"))?;
        Ok(Response::new(op.clone()))
    }

    async fn cancel(
        &self,
        _: Request<operation::CancelOperationRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

type LogStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<jobs::ReadProjectJobLogsResponse, Status>> + Send>,
>;
type StdLogStream = std::pin::Pin<
    Box<
        dyn tokio_stream::Stream<Item = Result<jobs::ReadProjectJobStdLogsResponse, Status>> + Send,
    >,
>;

#[tonic::async_trait]
impl ProjectJobService for Jobs {
    async fn create(
        &self,
        request: Request<jobs::CreateProjectJobRequest>,
    ) -> Result<Response<Operation>, Status> {
        let mut state = self.state.lock().unwrap();
        state.admit("Create", &request)?;
        let message = request.into_inner();
        let params = message.job_parameters.unwrap_or_default();
        let job_id = state.id("job");
        let upload_files: Vec<jobs::StorageFile> = params
            .input_files
            .iter()
            .filter(|f| !state.blobs.contains_key(&f.sha256))
            .map(|f| jobs::StorageFile {
                file: Some(f.clone()),
                url: format!("{}/upload/{}", self.http, f.sha256),
            })
            .collect();
        state.jobs.insert(
            job_id.clone(),
            FakeJob {
                params,
                project_id: message.project_id.clone(),
                status: JobStatus::Creating as i32,
                ..FakeJob::default()
            },
        );
        let op_id = state.id("op");
        let meta = jobs::CreateProjectJobMetadata {
            project_id: message.project_id,
            job_id: job_id.clone(),
        };
        // The operation is done on the first poll: plastinka must store the id it learns
        // from the metadata before then.
        let done = Operation {
            id: op_id.clone(),
            done: true,
            metadata: Some(any(
                "yandex.cloud.datasphere.v2.jobs.CreateProjectJobMetadata",
                &meta,
            )),
            result: Some(operation::operation::Result::Response(any(
                "yandex.cloud.datasphere.v2.jobs.CreateProjectJobResponse",
                &jobs::CreateProjectJobResponse {
                    job_id,
                    upload_files,
                },
            ))),
            ..Operation::default()
        };
        state.operations.insert(op_id.clone(), done.clone());
        Ok(Response::new(Operation {
            done: false,
            result: None,
            ..done
        }))
    }

    async fn clone(
        &self,
        _: Request<jobs::CloneProjectJobRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn execute(
        &self,
        request: Request<jobs::ExecuteProjectJobRequest>,
    ) -> Result<Response<Operation>, Status> {
        let mut state = self.state.lock().unwrap();
        state.admit("Execute", &request)?;
        let job_id = request.into_inner().job_id;
        let job = state
            .jobs
            .get(&job_id)
            .ok_or_else(|| Status::not_found("no such job"))?;
        let missing: Vec<String> = job
            .params
            .input_files
            .iter()
            .filter(|f| !state.blobs.contains_key(&f.sha256))
            .map(|f| f.desc.clone().unwrap_or_default().path)
            .collect();
        if !missing.is_empty() {
            return Err(Status::failed_precondition(format!(
                "fake: not uploaded: {missing:?}"
            )));
        }
        let op_id = state.id("op");
        let op = Operation {
            id: op_id.clone(),
            done: false,
            ..Operation::default()
        };
        state.operations.insert(op_id, op.clone());
        if let Some(job) = state.jobs.get_mut(&job_id) {
            job.status = JobStatus::Executing as i32;
        }
        let shared = self.state.clone();
        let op_id = op.id.clone();
        std::thread::spawn(move || run_job(shared, job_id, op_id));
        Ok(Response::new(op))
    }

    async fn cancel(
        &self,
        request: Request<jobs::CancelProjectJobRequest>,
    ) -> Result<Response<()>, Status> {
        let mut state = self.state.lock().unwrap();
        state.admit("Cancel", &request)?;
        let job_id = request.into_inner().job_id;
        let job = state
            .jobs
            .get_mut(&job_id)
            .ok_or_else(|| Status::not_found("no such job"))?;
        job.status = JobStatus::Cancelled as i32;
        job.finished = true;
        if let Some(pid) = job.pid {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
        }
        Ok(Response::new(()))
    }

    type ReadStdLogsStream = StdLogStream;

    async fn read_std_logs(
        &self,
        _: Request<jobs::ReadProjectJobStdLogsRequest>,
    ) -> Result<Response<Self::ReadStdLogsStream>, Status> {
        Err(Status::unimplemented("fake: deprecated"))
    }

    type ReadLogsStream = LogStream;

    async fn read_logs(
        &self,
        request: Request<jobs::ReadProjectJobLogsRequest>,
    ) -> Result<Response<Self::ReadLogsStream>, Status> {
        let drop_after = {
            let mut state = self.state.lock().unwrap();
            state.admit("ReadLogs", &request)?;
            state.log_streams += 1;
            // Only the first stream is cut.
            if state.log_streams == 1 {
                state.faults.drop_logs_after
            } else {
                None
            }
        };
        let message = request.into_inner();
        let shared = self.state.clone();
        let stream = async_stream_logs(
            shared,
            message.job_id,
            message.offset.max(0) as usize,
            drop_after,
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn download_job_files(
        &self,
        request: Request<jobs::DownloadProjectJobFilesRequest>,
    ) -> Result<Response<jobs::DownloadProjectJobFilesResponse>, Status> {
        let mut state = self.state.lock().unwrap();
        state.admit("DownloadJobFiles", &request)?;
        let files = request.into_inner().files;
        Ok(Response::new(jobs::DownloadProjectJobFilesResponse {
            download_files: files
                .into_iter()
                .map(|f| jobs::StorageFile {
                    url: format!("{}/download/{}", self.http, f.sha256),
                    file: Some(f),
                })
                .collect(),
        }))
    }

    async fn list(
        &self,
        request: Request<jobs::ListProjectJobRequest>,
    ) -> Result<Response<jobs::ListProjectJobResponse>, Status> {
        let mut state = self.state.lock().unwrap();
        state.admit("List", &request)?;
        let project = request.into_inner().project_id;
        let jobs = state
            .jobs
            .iter()
            .filter(|(_, j)| j.project_id == project)
            .map(|(id, j)| jobs::Job {
                id: id.clone(),
                status: j.status,
                project_id: j.project_id.clone(),
                ..jobs::Job::default()
            })
            .collect();
        Ok(Response::new(jobs::ListProjectJobResponse {
            jobs,
            next_page_token: String::new(),
        }))
    }

    async fn get(
        &self,
        request: Request<jobs::GetProjectJobRequest>,
    ) -> Result<Response<jobs::Job>, Status> {
        let mut state = self.state.lock().unwrap();
        state.admit("Get", &request)?;
        let id = request.into_inner().job_id;
        let job = state
            .jobs
            .get(&id)
            .ok_or_else(|| Status::not_found("no such job"))?;
        Ok(Response::new(jobs::Job {
            id,
            status: job.status,
            project_id: job.project_id.clone(),
            output_files: job.outputs.clone(),
            ..jobs::Job::default()
        }))
    }

    async fn delete(
        &self,
        _: Request<jobs::DeleteProjectJobRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn delete_data(
        &self,
        _: Request<jobs::DeleteProjectJobDataRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn delete_all_data(
        &self,
        _: Request<jobs::DeleteAllProjectJobDataRequest>,
    ) -> Result<Response<Operation>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn set_data_ttl(
        &self,
        _: Request<jobs::SetProjectJobDataTtlRequest>,
    ) -> Result<Response<jobs::SetProjectJobDataTtlResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// Sends the job's log lines from `offset`, as they come, until the job ends; cut after
/// `drop_after` messages when asked.
fn async_stream_logs(
    state: Shared,
    job_id: String,
    mut offset: usize,
    drop_after: Option<usize>,
) -> impl tokio_stream::Stream<Item = Result<jobs::ReadProjectJobLogsResponse, Status>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            let found = {
                let state = state.lock().unwrap();
                state.jobs.get(&job_id).map(|job| {
                    (
                        job.logs
                            .get(offset..)
                            .map(<[_]>::to_vec)
                            .unwrap_or_default(),
                        job.finished,
                    )
                })
            };
            let Some((batch, finished)) = found else {
                let _ = tx.send(Err(Status::not_found("no such job"))).await;
                return;
            };
            for line in batch {
                if drop_after.is_some_and(|n| sent >= n) {
                    let _ = tx
                        .send(Err(Status::unavailable("fake: the log stream dropped")))
                        .await;
                    return;
                }
                offset += 1;
                sent += 1;
                let message = jobs::ReadProjectJobLogsResponse {
                    logs: vec![jobs::LogMessage {
                        content: line,
                        ..Default::default()
                    }],
                    offset: offset as i64,
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            if finished {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Runs a job: inputs into a temporary directory, ${VAR}s substituted, `sh -c`, its
/// output lines into the log, the outputs into storage, the operation done.
fn run_job(state: Shared, job_id: String, op_id: String) {
    let dir = tempfile::tempdir().unwrap();
    let (params, faults) = {
        let state = state.lock().unwrap();
        (state.jobs[&job_id].params.clone(), state.faults.clone())
    };
    std::thread::sleep(faults.hold);
    let mut cmd = params.cmd.clone();
    {
        let state = state.lock().unwrap();
        for file in &params.input_files {
            let desc = file.desc.clone().unwrap_or_default();
            let mut bytes = state.blobs[&file.sha256].clone();
            if faults.damage_input && desc.var == "INPUT" {
                bytes.truncate(bytes.len() / 2);
            }
            let path = dir.path().join(&desc.path);
            std::fs::write(&path, bytes).unwrap();
            // Jobs do not keep the executable bit: the command must set it.
            cmd = cmd.replace(&format!("${{{}}}", desc.var), &path.display().to_string());
        }
        for desc in &params.output_files {
            cmd = cmd.replace(
                &format!("${{{}}}", desc.var),
                &dir.path().join(&desc.path).display().to_string(),
            );
        }
    }
    state.lock().unwrap().commands.push(cmd.clone());
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1; {cmd}"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(job) = state.lock().unwrap().jobs.get_mut(&job_id) {
        job.pid = Some(child.id());
    }
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).split(b'\n') {
        let Ok(mut line) = line else { break };
        line.push(b'\n');
        if let Some(job) = state.lock().unwrap().jobs.get_mut(&job_id) {
            job.logs.push(line);
        }
    }
    let code = child.wait().unwrap().code().unwrap_or(-1) as i64;
    let mut state = state.lock().unwrap();
    let mut outputs = Vec::new();
    for desc in &params.output_files {
        let Ok(bytes) = std::fs::read(dir.path().join(&desc.path)) else {
            continue;
        };
        let mut served = bytes.clone();
        if faults.damage_output {
            let at = served.len() - 100;
            served[at] ^= 0xFF;
        }
        let sha = sha256(&served);
        let size = served.len() as i64;
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
    let http = state.http_base_for_jobs();
    let cancelled = state.jobs[&job_id].status == JobStatus::Cancelled as i32;
    let job = state.jobs.get_mut(&job_id).unwrap();
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
    if let Some(op) = state.operations.get_mut(&op_id) {
        op.done = true;
        op.result = Some(result);
    }
}

impl State {
    fn http_base_for_jobs(&self) -> String {
        self.http_url.clone()
    }

    /// A PS256 JWT from the registered service account, for this endpoint, unexpired.
    fn jwt_is_valid(&self, jwt: &str) -> bool {
        use base64::Engine;
        let Some((key_id, account, public)) = &self.service_account else {
            return false;
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return false;
        };
        let (Ok(h), Ok(c), Ok(sig)) = (
            b64.decode(header),
            b64.decode(claims),
            b64.decode(signature),
        ) else {
            return false;
        };
        let h: serde_json::Value = serde_json::from_slice(&h).unwrap_or_default();
        let c: serde_json::Value = serde_json::from_slice(&c).unwrap_or_default();
        let now = chrono::Utc::now().timestamp() as u64;
        h["alg"] == "PS256"
            && h["kid"] == key_id.as_str()
            && c["iss"] == account.as_str()
            && c["aud"]
                .as_str()
                .is_some_and(|a| a.ends_with("/iam/v1/tokens"))
            && c["exp"].as_u64().is_some_and(|e| e > now)
            && public
                .pss_verify::<sha2::Sha256>(format!("{header}.{claims}").as_bytes(), &sig)
                .is_ok()
    }
}

/// The HTTP side: PUT /upload/<sha>, GET /download/<sha>, POST /iam/v1/tokens.
fn start_http(state: Shared) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    state.lock().unwrap().http_url = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let state = state.clone();
            std::thread::spawn(move || serve_http(state, stream));
        }
    });
    base
}

fn serve_http(state: Shared, mut stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, answer) = handle_http(&state, method, path, &body);
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n",
            answer.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&answer).is_err() {
            return;
        }
    }
}

fn handle_http(state: &Shared, method: &str, path: &str, body: &[u8]) -> (&'static str, Vec<u8>) {
    let mut state = state.lock().unwrap();
    match (method, path) {
        ("PUT", p) if p.starts_with("/upload/") => {
            state.puts += 1;
            if state.faults.put_503_once && state.put_failures == 0 {
                state.put_failures += 1;
                return ("503 Service Unavailable", b"{}".to_vec());
            }
            let sha = p.trim_start_matches("/upload/").to_string();
            if sha256(body) != sha {
                return (
                    "400 Bad Request",
                    b"{\"message\":\"sha256 mismatch\"}".to_vec(),
                );
            }
            state.blobs.insert(sha, body.to_vec());
            ("200 OK", b"{}".to_vec())
        }
        ("GET", p) if p.starts_with("/download/") => {
            let sha = p.trim_start_matches("/download/");
            match state.served.get(sha) {
                Some(bytes) => ("200 OK", bytes.clone()),
                None => ("404 Not Found", b"{}".to_vec()),
            }
        }
        ("POST", "/iam/v1/tokens") => {
            let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            state.exchanges.push(request.to_string());
            let accepted = request["yandexPassportOauthToken"]
                .as_str()
                .is_some_and(|t| t == OAUTH)
                || request["jwt"]
                    .as_str()
                    .is_some_and(|j| state.jwt_is_valid(j));
            if !accepted {
                return (
                    "401 Unauthorized",
                    b"{\"message\":\"fake: bad credential\"}".to_vec(),
                );
            }
            state.tokens_issued += 1;
            let lifetime = state
                .faults
                .token_lifetime
                .unwrap_or(Duration::from_secs(3600));
            let token = format!("iam-{}", state.tokens_issued);
            state
                .tokens
                .insert(token.clone(), Instant::now() + lifetime);
            let expires = chrono::Utc::now() + chrono::Duration::from_std(lifetime).unwrap();
            let answer =
                serde_json::json!({ "iamToken": token, "expiresAt": expires.to_rfc3339() });
            ("200 OK", answer.to_string().into_bytes())
        }
        _ => ("404 Not Found", b"{}".to_vec()),
    }
}
