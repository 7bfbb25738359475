//! stead-bench: a benchmark client for the etcd v3 gRPC API.
//!
//! Modeled on etcd's `tools/benchmark`: the same subcommands, flags and
//! report layout, speaking only the v3 API, so it measures etcd and stead
//! alike. This file owns start-up: parsing flags, building the one tokio
//! multi-thread runtime, running the workload and handing its outcome to
//! `output`; exit code 0 when the run completed (even if some requests
//! failed: they are in the report), 1 when it could not run, 2 for usage.
//!
//! Map of the crate:
//! - `cli`: flags; `connect`: endpoints and gRPC connections;
//! - `driver`: the measuring loop shared by request/response workloads;
//! - `workload/*`: one module per subcommand;
//! - `keys`, `limiter`, `progress`: keys and values, `--rate`, progress;
//! - `report`: HDR histograms, the text report and the JSON line;
//! - `output`: the one place that prints; `error`: the fatal errors.

mod cli;
mod connect;
mod driver;
mod error;
mod keys;
mod limiter;
mod output;
mod progress;
mod report;
mod workload;

use clap::Parser;

use crate::error::BenchError;

/// mimalloc: with glibc's malloc the client spent 12% of its CPU in malloc and free under
/// 1,000 clients, CPU that the servers it measures share on a small machine
/// (docs/benchmarks.md, run 10).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => std::process::exit(output::clap_message(&error)),
    };
    if let Err(error) = run(cli) {
        output::error(&error);
        std::process::exit(1);
    }
}

fn run(cli: cli::Cli) -> Result<(), BenchError> {
    let json = cli.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let outcome = runtime.block_on(workload::run(cli))?;
    output::emit(&outcome, json)
}
