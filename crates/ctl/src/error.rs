//! The errors steadctl reports, each carrying the exit status etcdctl uses
//! for it (`command/error.go`: 1 general, 2 bad connection, 3 invalid
//! input, 4 bad feature, 5 interrupted, 128 bad arguments) and the exact
//! message printed after `Error: `.
//!
//! This module owns the mapping from error to exit status and the final
//! `Error: ...` line; commands decide which variant applies. Messages that
//! come from the server are kept as the server (or etcd's client library)
//! words them.

use std::io::Write;

/// A failure that ends the command. Display gives the text after `Error: `.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CtlError {
    /// Exit status 1: request failures, server errors, parse errors of
    /// arguments etcdctl treats as general errors.
    #[error("{0}")]
    General(String),
    /// Exit status 2: the client could not be set up.
    #[error("{0}")]
    BadConnection(String),
    /// Exit status 3: malformed transaction input.
    #[error("{0}")]
    InvalidInput(String),
    /// Exit status 4: a valid flag with an unsupported value.
    #[error("{0}")]
    BadFeature(String),
    /// Exit status 5: a long-running command (`watch`) was ended by the
    /// server.
    #[error("{0}")]
    Interrupted(String),
    /// Exit status 128: wrong arguments for a command.
    #[error("{0}")]
    BadArgs(String),
    /// A Go runtime panic in etcdctl (its txn parser panics on some
    /// inputs): printed as `panic: ...`, exit status 2.
    #[error("{0}")]
    Panic(String),
    /// The output is already written; exit with this status and print
    /// nothing more (etcdctl's bare `os.Exit`).
    #[error("exit status {0}")]
    Exit(i32),
}

impl CtlError {
    /// The process exit status etcdctl uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::General(_) => 1,
            CtlError::BadConnection(_) => 2,
            CtlError::InvalidInput(_) => 3,
            CtlError::BadFeature(_) => 4,
            CtlError::Interrupted(_) => 5,
            CtlError::BadArgs(_) => 128,
            CtlError::Panic(_) => 2,
            CtlError::Exit(code) => *code,
        }
    }

    /// Writes the error the way etcdctl's `ExitWithError` does.
    pub fn report(&self, err: &mut dyn Write) -> std::io::Result<()> {
        match self {
            CtlError::Exit(_) => Ok(()),
            CtlError::Panic(message) => {
                write!(err, "panic: {message}\n\ngoroutine 1 [running]:\n")
            }
            other => writeln!(err, "Error: {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_etcdctl() {
        assert_eq!(CtlError::General("x".into()).exit_code(), 1);
        assert_eq!(CtlError::BadConnection("x".into()).exit_code(), 2);
        assert_eq!(CtlError::InvalidInput("x".into()).exit_code(), 3);
        assert_eq!(CtlError::BadFeature("x".into()).exit_code(), 4);
        assert_eq!(CtlError::Interrupted("x".into()).exit_code(), 5);
        assert_eq!(CtlError::BadArgs("x".into()).exit_code(), 128);
        assert_eq!(CtlError::Exit(1).exit_code(), 1);
    }

    #[test]
    fn report_prefixes_error() {
        let mut buf = Vec::new();
        CtlError::BadArgs("put command needs 1 argument".into())
            .report(&mut buf)
            .unwrap();
        assert_eq!(buf, b"Error: put command needs 1 argument\n");
        let mut buf = Vec::new();
        CtlError::Exit(1).report(&mut buf).unwrap();
        assert!(buf.is_empty());
    }
}
