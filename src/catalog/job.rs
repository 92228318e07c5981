//! What a BACKUP or RESTORE job is and where it is in its life, with StarRocks' names at the
//! edges (SHOW BACKUP / SHOW RESTORE print them; the catalog stores them as text).

use serde::{Deserialize, Serialize};

/// A job's kind. Plans carry it too (`"kind": "backup"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Backup,
    Restore,
}

impl JobKind {
    /// `backup` / `restore`: the catalog's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::Restore => "restore",
        }
    }

    /// `BACKUP` / `RESTORE`: the statement's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
        }
    }

    pub fn parse(text: &str) -> Option<JobKind> {
        match text {
            "backup" => Some(JobKind::Backup),
            "restore" => Some(JobKind::Restore),
            _ => None,
        }
    }
}

/// StarRocks' job states. A backup goes PENDING → SNAPSHOTING → UPLOAD_SNAPSHOT → UPLOADING →
/// SAVE_META → UPLOAD_INFO → FINISHED; a restore PENDING → SNAPSHOTING → DOWNLOAD →
/// DOWNLOADING → COMMIT → COMMITTING → FINISHED; either may end CANCELLED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Pending,
    Snapshoting,
    UploadSnapshot,
    Uploading,
    SaveMeta,
    UploadInfo,
    Download,
    Downloading,
    Commit,
    Committing,
    Finished,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 12] = [
        JobState::Pending,
        JobState::Snapshoting,
        JobState::UploadSnapshot,
        JobState::Uploading,
        JobState::SaveMeta,
        JobState::UploadInfo,
        JobState::Download,
        JobState::Downloading,
        JobState::Commit,
        JobState::Committing,
        JobState::Finished,
        JobState::Cancelled,
    ];

    /// StarRocks' name, as SHOW BACKUP / SHOW RESTORE print it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Snapshoting => "SNAPSHOTING",
            JobState::UploadSnapshot => "UPLOAD_SNAPSHOT",
            JobState::Uploading => "UPLOADING",
            JobState::SaveMeta => "SAVE_META",
            JobState::UploadInfo => "UPLOAD_INFO",
            JobState::Download => "DOWNLOAD",
            JobState::Downloading => "DOWNLOADING",
            JobState::Commit => "COMMIT",
            JobState::Committing => "COMMITTING",
            JobState::Finished => "FINISHED",
            JobState::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// FINISHED or CANCELLED: the job will not run again.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Finished | JobState::Cancelled)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job ended, as StarRocks' Status column shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Ok,
    Cancelled,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ok => "[OK]",
            JobStatus::Cancelled => "[CANCELLED]",
            JobStatus::Failed => "[FAILED]",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        [JobStatus::Ok, JobStatus::Cancelled, JobStatus::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_starrocks_names() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(JobState::parse("RUNNING"), None);
        for k in [JobKind::Backup, JobKind::Restore] {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        for s in [JobStatus::Ok, JobStatus::Cancelled, JobStatus::Failed] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
    }
}
