//! What each implemented command does, step by step in etcdctl's order
//! (argument checks, then client set-up with environment variables and the
//! output format, then the request, then printing), so that the first
//! error a user sees is the one etcdctl would show.
//!
//! Commands get their parsed flags and arguments from `cli`, talk to the
//! cluster through `client` and print through `printer`; they write only
//! through [`Output`].

use std::collections::HashSet;
use std::io::BufRead;
use std::time::Duration;

use stead_proto::etcdserverpb::{CompactionRequest, TxnRequest};
use tokio::time::Instant;

use crate::client::Client;
use crate::error::CtlError;
use crate::flags::{FlagSet, FlagSpec};
use crate::gofmt;
use crate::ops;
use crate::output::Output;
use crate::printer::{EndpointHealth, EndpointStatus, Printer};
use crate::tree::{self, Action, Found};
use crate::txn;

/// Everything a command runs with.
pub struct Context<'a, 'o> {
    pub found: &'a Found<'a>,
    pub flags: FlagSet,
    pub args: Vec<String>,
    /// The command line as given (without the program name), for `watch`,
    /// which finds its `--` separator there as etcdctl finds it in
    /// `os.Args`.
    pub raw_args: &'a [String],
    pub env: &'a [(String, String)],
    pub stdin: Box<dyn BufRead + Send>,
    pub out: &'a mut Output<'o>,
}

/// Runs the command `ctx.found` names.
pub fn run(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    match ctx.found.command().action {
        Action::Get => get(ctx),
        Action::Put => put(ctx),
        Action::Del => del(ctx),
        Action::Txn => txn_command(ctx),
        Action::Compaction => compaction(ctx),
        Action::EndpointHealth => endpoint_health(ctx),
        Action::EndpointStatus => endpoint_status(ctx),
        Action::MemberList => crate::cluster::list(ctx),
        Action::MemberAdd => crate::cluster::add(ctx),
        Action::MemberRemove => crate::cluster::remove(ctx),
        Action::MemberUpdate => crate::cluster::update(ctx),
        Action::MemberPromote => crate::cluster::promote(ctx),
        Action::MoveLeader => crate::cluster::move_leader(ctx),
        Action::Watch => crate::watch::command(ctx),
        Action::LeaseGrant => crate::lease::grant(ctx),
        Action::LeaseRevoke => crate::lease::revoke(ctx),
        Action::LeaseTimeToLive => crate::lease::time_to_live(ctx),
        Action::LeaseList => crate::lease::list(ctx),
        Action::LeaseKeepAlive => crate::lease::keep_alive(ctx),
        Action::Help => help(ctx),
        Action::Group | Action::Unimplemented => Err(not_implemented(ctx.found)),
    }
}

/// The error for an etcdctl command steadctl does not provide.
pub fn not_implemented(found: &Found<'_>) -> CtlError {
    let path: Vec<&str> = found.chain[1..].iter().map(|c| c.name()).collect();
    CtlError::General(format!(
        "{} is not implemented by steadctl",
        gofmt::quote(&path.join(" "))
    ))
}

/// cobra's `help [command]`: the named command's usage screen, or the
/// root's after an "Unknown help topic" line.
fn help(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let root = tree::root();
    match tree::find(&root, &ctx.args) {
        Ok((found, _)) => ctx.out.out(tree::etcd_usage(&found)),
        Err(_) => {
            let topics: Vec<String> = ctx.args.iter().map(|a| format!("`{a}`")).collect();
            ctx.out
                .err(format!("Unknown help topic [{}]\n", topics.join(" ")));
            let (found, _) = tree::find(&root, &[]).map_err(CtlError::General)?;
            ctx.out.out(tree::etcd_usage_with(&found, false));
        }
    }
    Ok(())
}

/// Runs async client code on a single-threaded runtime.
pub(crate) fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T, CtlError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CtlError::General(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// The environment variable for a flag (`ETCDCTL_DIAL_TIMEOUT`).
fn env_key(name: &str) -> String {
    format!("ETCDCTL_{}", name.to_uppercase().replace('-', "_"))
}

/// etcd's `SetPflagsFromEnv`: fills inherited flags not given on the
/// command line from `ETCDCTL_*` variables, warns about unknown ones, and
/// dies when a variable duplicates a flag given on the command line.
fn apply_env(
    flags: &mut FlagSet,
    inherited: &[FlagSpec],
    env: &[(String, String)],
    out: &mut Output<'_>,
) -> Result<(), CtlError> {
    let mut used = HashSet::new();
    let mut already_set = HashSet::new();
    let mut names: Vec<&str> = inherited.iter().map(|s| s.name).collect();
    names.sort_unstable();
    for name in names {
        let key = env_key(name);
        if flags.changed(name) {
            already_set.insert(key);
            continue;
        }
        if let Some((_, value)) = env.iter().find(|(k, _)| *k == key)
            && !value.is_empty()
        {
            used.insert(key);
            // etcdctl ignores values that do not parse.
            let _ = flags.set(name, value);
        }
    }
    for (key, value) in env {
        if used.contains(key) {
            continue;
        }
        if already_set.contains(key) {
            out.err(format!(
                "{} C | pkg/flags: conflicting environment variable {} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)\n",
                gofmt::capnslog_timestamp_now(),
                gofmt::quote(key)
            ));
            return Err(CtlError::Exit(1));
        }
        if key.starts_with("ETCDCTL_") {
            out.err(format!(
                "{} W | pkg/flags: unrecognized environment variable {key}={value}\n",
                gofmt::capnslog_timestamp_now()
            ));
        }
    }
    Ok(())
}

/// etcdctl's `initDisplayFromCmd`.
fn display(flags: &FlagSet) -> Result<Printer, CtlError> {
    match Printer::from_name(&flags.string("write-out"), flags.bool("hex")) {
        Some(result) => result,
        None => Err(CtlError::BadFeature(
            "unsupported output format".to_string(),
        )),
    }
}

/// Checks the security and discovery flags steadctl cannot honour, in
/// etcdctl's order and with its messages where it has them.
fn check_unsupported_flags(flags: &FlagSet) -> Result<(), CtlError> {
    if !flags.string("discovery-srv").is_empty() && !flags.bool("insecure-discovery") {
        return Err(CtlError::General(
            "steadctl does not support DNS discovery (--discovery-srv)".to_string(),
        ));
    }
    for name in ["cert", "key", "cacert"] {
        if flags.changed(name) && flags.string(name).is_empty() {
            return Err(CtlError::BadArgs(format!(
                "empty string is passed to --{name} option"
            )));
        }
    }
    if !flags.string("user").is_empty() {
        return Err(CtlError::General(
            "steadctl does not support authentication (--user)".to_string(),
        ));
    }
    Ok(())
}

fn check_tls_flags(flags: &FlagSet) -> Result<(), CtlError> {
    let tls = ["cert", "key", "cacert"]
        .iter()
        .any(|name| !flags.string(name).is_empty());
    if tls || !flags.bool("insecure-transport") {
        return Err(CtlError::BadArgs(
            "steadctl does not support TLS (--cert, --key, --cacert, --insecure-transport=false)"
                .to_string(),
        ));
    }
    Ok(())
}

/// etcdctl's `clientConfigFromCmd` + `mustClient`: environment, output
/// format, then the client.
pub(crate) fn client_from_ctx(ctx: &mut Context<'_, '_>) -> Result<(Client, Printer), CtlError> {
    let mut inherited = ctx.found.inherited_flags();
    if ctx.found.command().action == Action::Watch {
        inherited.extend(crate::watch::ENV_FLAGS);
    }
    apply_env(&mut ctx.flags, &inherited, ctx.env, ctx.out)?;
    let endpoints: Vec<String> = ctx
        .flags
        .list("endpoints")
        .iter()
        .map(|e| e.trim().to_string())
        .collect();
    check_unsupported_flags(&ctx.flags)?;
    let printer = display(&ctx.flags)?;
    check_tls_flags(&ctx.flags)?;
    let client = Client::new(&endpoints, ctx.flags.duration("dial-timeout").to_std())?;
    Ok((client, printer))
}

pub(crate) fn command_deadline(flags: &FlagSet) -> Instant {
    Instant::now() + flags.duration("command-timeout").to_std()
}

/// Prints the client's warning lines, then turns a failure into etcdctl's
/// general error.
pub(crate) fn finish<T>(
    client: &mut Client,
    out: &mut Output<'_>,
    result: Result<T, String>,
) -> Result<T, CtlError> {
    for line in client.take_warnings() {
        out.err(line);
    }
    result.map_err(CtlError::General)
}

fn get(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let request = ops::range_request(&ctx.args, &ctx.flags)?;
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let result = block_on(client.range(request, deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    // etcdctl 3.5 checks this after the request, as here.
    if ctx.flags.bool("count-only") && !matches!(printer, Printer::Fields) {
        return Err(CtlError::BadArgs(
            "--count-only is only for `--write-out=fields`".to_string(),
        ));
    }
    let printer = if ctx.flags.bool("print-value-only") {
        match printer {
            Printer::Simple { hex, .. } => Printer::Simple {
                hex,
                value_only: true,
            },
            _ => {
                return Err(CtlError::BadArgs(
                    "print-value-only is only for `--write-out=simple`".to_string(),
                ));
            }
        }
    } else {
        printer
    };
    printer.get(ctx.out, &response)
}

fn put(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let request = ops::put_request(&ctx.args, &ctx.flags, &mut ctx.stdin)?;
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let result = block_on(client.put(request, deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    printer.put(ctx.out, &response)
}

fn del(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let request = ops::delete_request(&ctx.args, &ctx.flags)?;
    let deadline = command_deadline(&ctx.flags);
    let (mut client, printer) = client_from_ctx(ctx)?;
    let result = block_on(client.delete(request, deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    printer.del(ctx.out, &response)
}

fn txn_command(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if !ctx.args.is_empty() {
        return Err(CtlError::BadArgs(
            "txn command does not accept argument".to_string(),
        ));
    }
    let (mut client, printer) = client_from_ctx(ctx)?;
    let interactive = ctx.flags.bool("interactive");
    let prompt = |out: &mut Output<'_>, text: &str| {
        if interactive {
            out.out(format!("{text}\n"));
            out.flush();
        }
    };
    prompt(ctx.out, "compares:");
    let compare = txn::read_compares(&mut ctx.stdin)?;
    let mut usage = Vec::new();
    prompt(ctx.out, "success requests (get, put, del):");
    let success = {
        let mut sink = |text: String| usage.push(text);
        txn::read_requests(&mut ctx.stdin, &mut sink)
    };
    for text in usage.drain(..) {
        ctx.out.err(text);
    }
    let success = success?;
    prompt(ctx.out, "failure requests (get, put, del):");
    let failure = {
        let mut sink = |text: String| usage.push(text);
        txn::read_requests(&mut ctx.stdin, &mut sink)
    };
    for text in usage.drain(..) {
        ctx.out.err(text);
    }
    let failure = failure?;
    let request = TxnRequest {
        compare,
        success,
        failure,
    };
    // etcdctl sends the transaction without a deadline; steadctl bounds it
    // by --command-timeout so an unreachable cluster cannot hang it.
    let deadline = command_deadline(&ctx.flags);
    let result = block_on(client.txn(request, deadline))?;
    let response = finish(&mut client, ctx.out, result)?;
    printer.txn(ctx.out, &response)
}

fn compaction(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if ctx.args.len() != 1 {
        return Err(CtlError::BadArgs(
            "compaction command needs 1 argument".to_string(),
        ));
    }
    let revision = gofmt::parse_int(&ctx.args[0], 10).map_err(CtlError::General)?;
    let (mut client, _printer) = client_from_ctx(ctx)?;
    let deadline = command_deadline(&ctx.flags);
    let request = CompactionRequest {
        revision,
        physical: ctx.flags.bool("physical"),
    };
    let result = block_on(client.compact(request, deadline))?;
    finish(&mut client, ctx.out, result)?;
    ctx.out.out(format!("compacted revision {revision}\n"));
    Ok(())
}

/// etcdctl's `endpointsFromCluster`: `--endpoints` as given, or every
/// member's client URLs with `--cluster`.
fn endpoints_from_cluster(ctx: &mut Context<'_, '_>) -> Result<Vec<String>, CtlError> {
    if !ctx.flags.bool("cluster") {
        return Ok(ctx.flags.list("endpoints"));
    }
    let endpoints: Vec<String> = ctx
        .flags
        .list("endpoints")
        .iter()
        .map(|e| e.trim().to_string())
        .collect();
    let mut client = Client::new(&endpoints, ctx.flags.duration("dial-timeout").to_std())
        .map_err(|e| CtlError::General(e.to_string()))?;
    let deadline = command_deadline(&ctx.flags);
    let result = block_on(client.member_list(deadline))?;
    let members = finish(&mut client, ctx.out, result).map_err(|e| {
        CtlError::General(format!(
            "failed to fetch endpoints from etcd cluster member list: {e}"
        ))
    })?;
    Ok(members
        .members
        .into_iter()
        .flat_map(|m| m.client_ur_ls)
        .collect())
}

fn endpoint_health(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let inherited = ctx.found.inherited_flags();
    apply_env(&mut ctx.flags, &inherited, ctx.env, ctx.out)?;
    let printer = display(&ctx.flags)?;
    check_unsupported_flags(&ctx.flags)?;
    check_tls_flags(&ctx.flags)?;
    let dial_timeout = ctx.flags.duration("dial-timeout").to_std();
    let command_timeout = ctx.flags.duration("command-timeout").to_std();
    let endpoints = endpoints_from_cluster(ctx)?;
    let mut clients = Vec::with_capacity(endpoints.len());
    for endpoint in &endpoints {
        clients.push((
            endpoint.clone(),
            Client::new(std::slice::from_ref(endpoint), dial_timeout)?,
        ));
    }
    let (results, warnings) = block_on(probe_all(clients, command_timeout))?;
    for line in warnings {
        ctx.out.err(line);
    }
    let unhealthy = results.iter().any(|h| !h.error.is_empty());
    printer.endpoint_health(ctx.out, &results);
    if unhealthy {
        return Err(CtlError::General("unhealthy cluster".to_string()));
    }
    Ok(())
}

/// Probes every endpoint at once (a linearizable get of `health`); results
/// come in the order the probes finish, as in etcdctl.
async fn probe_all(
    clients: Vec<(String, Client)>,
    command_timeout: Duration,
) -> (Vec<EndpointHealth>, Vec<String>) {
    let mut tasks = tokio::task::JoinSet::new();
    for (endpoint, mut client) in clients {
        tasks.spawn(async move {
            let started = Instant::now();
            let request = stead_proto::etcdserverpb::RangeRequest {
                key: bytes::Bytes::from_static(b"health"),
                ..Default::default()
            };
            let result = client.range(request, started + command_timeout).await;
            let took = gofmt::format_duration(gofmt::GoDuration(
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX),
            ));
            let error = match result {
                Ok(_) => String::new(),
                // Permission denied still went through consensus.
                Err(e) if e == "etcdserver: permission denied" => String::new(),
                Err(e) => e,
            };
            let health = EndpointHealth {
                endpoint,
                health: error.is_empty(),
                took,
                error,
            };
            (health, client.take_warnings())
        });
    }
    let mut results = Vec::new();
    let mut warnings = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((health, lines)) = joined {
            results.push(health);
            warnings.extend(lines);
        }
    }
    (results, warnings)
}

fn endpoint_status(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let (mut client, printer) = client_from_ctx(ctx)?;
    let endpoints = endpoints_from_cluster(ctx)?;
    let mut statuses = Vec::new();
    let mut failed = false;
    for endpoint in endpoints {
        let deadline = command_deadline(&ctx.flags);
        let result = block_on(client.status(&endpoint, deadline))?;
        for line in client.take_warnings() {
            ctx.out.err(line);
        }
        match result {
            Ok(status) => statuses.push(EndpointStatus { endpoint, status }),
            Err(e) => {
                failed = true;
                ctx.out.err(format!(
                    "Failed to get the status of endpoint {endpoint} ({e})\n"
                ));
            }
        }
    }
    printer.endpoint_status(ctx.out, &statuses);
    if failed {
        return Err(CtlError::Exit(1));
    }
    Ok(())
}
