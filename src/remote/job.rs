//! A remote training job as this database remembers it: one typed record, stored the
//! moment DataSphere names the job, its state moved along as the job goes.

use serde::Serialize;

/// Where a job stands, from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// DataSphere named the job; its files are not sent yet.
    Submitted,
    /// Sending the binary and the input.
    Uploading,
    /// Executing (or queued) on DataSphere.
    Running,
    /// Finished there; fetching and checking the model.
    Downloading,
    /// The model is stored (`model_id`).
    Stored,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Submitted,
        JobState::Uploading,
        JobState::Running,
        JobState::Downloading,
        JobState::Stored,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobState::Submitted => "submitted",
            JobState::Uploading => "uploading",
            JobState::Running => "running",
            JobState::Downloading => "downloading",
            JobState::Stored => "stored",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Still going: `jobs wait` has something to wait for.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            JobState::Submitted | JobState::Uploading | JobState::Running | JobState::Downloading
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RemoteJob {
    /// DataSphere's job id.
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    pub project_id: String,
    pub instance_type: String,
    pub state: JobState,
    /// The Execute operation, polled for the job's result.
    pub execute_operation_id: Option<String>,
    /// sha256 of the input sent: the output must answer exactly it.
    pub input_sha256: String,
    pub data_first_month: String,
    pub data_last_month: String,
    /// Which uploads held the months it trains on (see `store::history`).
    pub data_version: String,
    /// The model becomes active when stored.
    pub activate: bool,
    pub model_id: Option<String>,
    /// Why it failed or was cancelled, with the exit code and the last log lines.
    pub message: Option<String>,
}
