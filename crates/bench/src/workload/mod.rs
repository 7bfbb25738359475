//! The benchmarks, one module each, and what they share.
//!
//! Owns [`Context`] (the global flags made ready: connections, the number of
//! clients, the rate limiter) and [`run`], which opens the connections and
//! hands the subcommand to its module. Each module validates its flags,
//! prepares keys and values before the clock starts, measures, and returns
//! an [`Outcome`]; none prints.
//!
//! Does not own: the measuring loop (see `driver`), printing (see `output`).

mod lease;
mod put;
mod range;
mod stm;
mod txn;
mod watch;
mod watch_get;

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::connect::{self, Connections};
use crate::error::BenchError;
use crate::limiter::RateLimiter;
use crate::report::Outcome;

/// How long the watch workloads wait on events that do not come before
/// giving up (they are counted as errors, or the run fails).
pub const EVENT_IDLE_MAX: Duration = Duration::from_secs(10);

/// The global flags, made ready. Connections are opened by each workload
/// once its own flags are checked, so bad flags fail without a server.
pub struct Context {
    pub endpoints: Vec<String>,
    pub conns: usize,
    pub clients: usize,
    pub dial_timeout: Duration,
    /// `--rate`; `None` when unlimited.
    pub limiter: Option<Arc<RateLimiter>>,
}

impl Context {
    /// Opens the `--conns` connections.
    pub async fn connect(&self) -> Result<Connections, BenchError> {
        Connections::open(&self.endpoints, self.conns, self.dial_timeout).await
    }
}

/// Runs the subcommand `cli` names.
pub async fn run(cli: Cli) -> Result<Outcome, BenchError> {
    let context = Context {
        endpoints: connect::parse_endpoints(&cli.endpoints)?,
        conns: cli.conns,
        clients: cli.clients,
        dial_timeout: cli.dial_timeout,
        limiter: RateLimiter::new(cli.rate),
    };
    match cli.command {
        Command::Put(args) => put::run(&context, args).await,
        Command::Range(args) => range::run(&context, args).await,
        Command::TxnPut(args) => txn::run_put(&context, args).await,
        Command::TxnMixed(args) => txn::run_mixed(&context, args).await,
        Command::Watch(args) => watch::run(&context, args).await,
        Command::WatchGet(args) => watch_get::run(&context, args).await,
        Command::LeaseKeepalive(args) => lease::run(&context, args).await,
        Command::Stm(args) => stm::run(&context, args).await,
    }
}

/// Turns an `Option<String>` range end into the wire's bytes.
fn range_end(end: Option<&str>) -> bytes::Bytes {
    end.map(|end| bytes::Bytes::copy_from_slice(end.as_bytes()))
        .unwrap_or_default()
}
