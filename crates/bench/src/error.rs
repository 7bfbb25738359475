//! The errors that end a benchmark run, with the messages users see.
//!
//! Owns [`BenchError`], the one error type of the tool. A request that fails
//! during a measured phase is *not* a `BenchError`: it is counted by message
//! in the report (as etcd's tool does) and the run goes on. `BenchError` is
//! for what makes a run impossible: bad flags, an endpoint that cannot be
//! reached, a setup RPC that fails, a run that stops making progress.

use std::time::Duration;

/// Why a benchmark run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag value, or a combination of flags, that cannot be run.
    #[error("invalid arguments: {0}")]
    InvalidArgument(String),

    /// An `--endpoints` entry that is not `host:port` or `http://host:port`.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },

    /// A gRPC connection could not be established.
    #[error("cannot connect to {endpoint}: {message}")]
    Connect { endpoint: String, message: String },

    /// A gRPC connection was not established within `--dial-timeout`.
    #[error("cannot connect to {endpoint}: no connection after {timeout:?} (--dial-timeout)")]
    DialTimeout { endpoint: String, timeout: Duration },

    /// An RPC the benchmark needs before or after measuring (seeding keys,
    /// granting leases, opening watch streams) failed.
    #[error("{operation} failed: {message}")]
    Setup {
        operation: &'static str,
        message: String,
    },

    /// Nothing moved for too long: watch events stopped arriving, say.
    #[error("{what}: no progress for {idle:?} ({done} of {total} done)")]
    Stalled {
        what: &'static str,
        idle: Duration,
        done: u64,
        total: u64,
    },

    /// A benchmark task panicked or was cancelled.
    #[error("a benchmark task failed: {0}")]
    Task(String),

    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),

    /// The report could not be written to stdout.
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),

    /// The `--json` line could not be encoded.
    #[error("cannot encode the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<tokio::task::JoinError> for BenchError {
    fn from(error: tokio::task::JoinError) -> Self {
        BenchError::Task(error.to_string())
    }
}
