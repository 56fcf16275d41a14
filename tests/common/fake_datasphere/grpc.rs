//! The fake's gRPC side: the job and operation services.

use super::*;

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
        std::thread::spawn(move || super::runner::run_job(shared, job_id, op_id));
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
