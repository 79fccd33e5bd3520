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
    /// Several errors of one kind found together (e.g. every missing table), one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<Error>),
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
            Error::Several(errors) => errors.first().map_or(ErrorKind::Config, Error::kind),
        }
    }

    /// The process exit code for this error (design.md §2).
    pub fn exit_code(&self) -> i32 {
        match self.kind() {
            ErrorKind::Config | ErrorKind::Precheck => 1,
            ErrorKind::Transient | ErrorKind::Definite | ErrorKind::Sink => 2,
        }
    }

    /// Whether Kafka fenced the producer: another process started its transactional id (a
    /// worker that took the stream over, or a second run of the project).
    pub fn is_fenced(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode::{Fenced, InvalidProducerEpoch, ProducerFenced};
        match self {
            Error::Kafka { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(Fenced | ProducerFenced | InvalidProducerEpoch)
            ),
            Error::Several(errors) => errors.iter().any(Error::is_fenced),
            _ => false,
        }
    }

    /// One error for `errors`: the error itself when there is one.
    pub fn several(mut errors: Vec<Error>) -> Self {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            Error::Several(errors)
        }
    }

    /// Each error on its own (one for most, every one of [`Error::Several`]).
    pub fn each(&self) -> Vec<&Error> {
        match self {
            Error::Several(errors) => errors.iter().flat_map(Error::each).collect(),
            other => vec![other],
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

/// An error and its causes as a person reads them: the error on the first line, then each
/// cause the text so far does not already say (our messages include their cause, and
/// librdkafka's errors repeat theirs), so no text is printed twice.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut said = text.clone();
    let mut cause = error.source();
    while let Some(next) = cause {
        let line = next.to_string();
        if !line.is_empty() && !said.contains(&line) {
            text.push_str("\n  caused by: ");
            text.push_str(&line);
            said.push_str(&line);
        }
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_says_each_cause_once() {
        let io = Error::io(
            "cannot write the checkpoint",
            std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"),
        );
        assert_eq!(
            report(&io),
            "cannot write the checkpoint: No space left on device"
        );
        let kafka = Error::Kafka {
            context: "sink `k`: cannot create the producer".into(),
            source: rdkafka::error::KafkaError::ClientCreation("bad setting".into()),
        };
        let text = report(&kafka);
        assert_eq!(text.matches("bad setting").count(), 1, "{text}");
        // A cause that adds something is kept.
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let outer = Outer(std::io::Error::other("inner detail"));
        assert_eq!(report(&outer), "outer\n  caused by: inner detail");
    }
}
