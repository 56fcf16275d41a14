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

mod grpc;
mod http;
mod runner;
use http::start_http;

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
    /// IAM tokens stop working this long after they are issued, though the exchange says
    /// they last (`token_lifetime`): only an UNAUTHENTICATED answer tells the client.
    pub revoke_tokens_after: Option<Duration>,
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
    /// How many job commands were started.
    pub runs: u32,
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
