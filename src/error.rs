//! The crate's one error type.
//!
//! Every error says what failed, where (file:line:column, option, table, topic) and what to do.
//! [`Error::kind`] tells the runtime what happens next, which is how `main` picks the exit code.

use std::path::PathBuf;

/// What the runtime does with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The project file or its options are wrong: nothing was written; fix the project (exit 1).
    Config,
    /// A precheck found a problem with the source or the sink (exit 1).
    Precheck,
    /// Network or server hiccup: retry from the last checkpoint.
    Transient,
    /// The data or the source is in a state we cannot continue from: stop and say so (exit 2).
    Definite,
    /// Kafka refused or could not take the data after retries (exit 2).
    Sink,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A located error in a project file: `file:line:column: message`.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Project {
        file: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    /// A configuration problem that is not tied to a position in a file.
    #[error("{0}")]
    Config(String),
    /// One or more precheck items failed; the message lists each of them.
    #[error("{0}")]
    Precheck(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Source {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("{context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("{0}")]
    Definite(String),
    /// A fault to ride out: retried from the last checkpoint, exit 2 only after the retries.
    #[error("{0}")]
    Transient(String),
    /// Kafka did not acknowledge messages after the producer's retries.
    #[error("{0}")]
    Sink(String),
    /// Ctrl-C or SIGTERM: the run stopped cleanly at a checkpoint.
    #[error("paused")]
    Paused,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Project { .. } | Error::Config(_) => ErrorKind::Config,
            Error::Precheck(_) => ErrorKind::Precheck,
            Error::Io { .. } => ErrorKind::Definite,
            Error::Source { source, .. } => match source {
                mysql_async::Error::Io(_)
                | mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
                    ErrorKind::Transient
                }
                // Connection killed (MariaDB 1927), server shutdown, query interrupted.
                mysql_async::Error::Server(e) if matches!(e.code, 1927 | 1053 | 1317) => {
                    ErrorKind::Transient
                }
                _ => ErrorKind::Definite,
            },
            Error::Kafka { .. } => ErrorKind::Sink,
            Error::Definite(_) | Error::Paused => ErrorKind::Definite,
            Error::Transient(_) => ErrorKind::Transient,
            Error::Sink(_) => ErrorKind::Sink,
        }
    }

    /// The process exit code for this error (design.md §2).
    pub fn exit_code(&self) -> i32 {
        match self.kind() {
            ErrorKind::Config | ErrorKind::Precheck => 1,
            ErrorKind::Transient | ErrorKind::Definite | ErrorKind::Sink => 2,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
