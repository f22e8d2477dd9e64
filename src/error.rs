//! Errors that stop a run. Bad *records* never become errors: they become [`crate::types::Reject`]s.

use std::path::{Path, PathBuf};

/// Anything that stops a run: a missing or corrupt file, a bad configuration, an output that
/// cannot be written. The message always names the file or setting and the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file is missing, unreadable or corrupt.
    #[error("{}: {cause}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, in plain words.
        cause: String,
    },
    /// The run's settings are inconsistent or out of range.
    #[error("configuration: {0}")]
    Config(String),
    /// The state kept for a run (its checkpoint) does not agree with what is applied to it.
    #[error("inconsistent run state: {0}")]
    State(String),
    /// An output could not be written.
    #[error("{}: cannot write: {cause}", path.display())]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        cause: String,
    },
}

impl Error {
    /// An input error for `path`.
    pub fn input(path: impl AsRef<Path>, cause: impl std::fmt::Display) -> Self {
        Error::Input {
            path: path.as_ref().to_path_buf(),
            cause: cause.to_string(),
        }
    }

    /// An output error for `path`.
    pub fn output(path: impl AsRef<Path>, cause: impl std::fmt::Display) -> Self {
        Error::Output {
            path: path.as_ref().to_path_buf(),
            cause: cause.to_string(),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
