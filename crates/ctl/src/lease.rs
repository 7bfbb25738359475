//! `lease grant|revoke|timetolive|list|keep-alive`: etcdctl 3.4's lease
//! commands (`lease_command.go`), and the part of etcd's client library
//! (clientv3's `lessor`) whose behaviour `keep-alive` users see.
//!
//! - Arguments: checked in etcdctl's order, with its texts and exit
//!   statuses. TTLs are decimal and lease IDs hexadecimal, both parsed as
//!   Go's `strconv.ParseInt` parses them; `timetolive` sets up the client
//!   before it parses its lease ID, as etcdctl does, so a bad `-w` is
//!   reported first there.
//! - Errors: `grant` and `revoke` wrap the server's error (`failed to grant
//!   lease (...)`, status 1); `timetolive`, `list` and `keep-alive --once`
//!   print it bare with status 2. A lease a single keep-alive finds gone is
//!   clientv3's `etcdserver: requested lease not found`.
//! - `keep-alive` without `--once` is clientv3's keep-alive loop: one
//!   LeaseKeepAlive stream (reopened 500 ms after it breaks, whatever
//!   broke it), a request whenever the next one is due (checked every
//!   500 ms; due at once, then a third of the TTL after each response), and
//!   a deadline (the dial timeout plus one second at first, then the TTL
//!   after each response, checked every second) after which the lease
//!   counts as gone. A response with a TTL of 0 or less means the lease is
//!   gone. Then the simple format prints `lease ... expired or revoked.` and
//!   the command succeeds.
//!
//! Deliberate difference: etcdctl sends `timetolive`, `list` and
//! `keep-alive --once` without a deadline (they wait forever for an
//! unreachable cluster); steadctl bounds them by `--command-timeout`, as it
//! does `txn`.
//!
//! The gRPC details live in `client`, the formats in `printer`.

use std::time::Duration;

use stead_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use crate::client::{Client, DEADLINE_EXCEEDED, client_error_text};
use crate::commands::{self, Context};
use crate::error::CtlError;
use crate::gofmt;
use crate::output::Output;
use crate::printer::{Printer, lease_id_hex};
use crate::watch::PIPE_CLOSED_EXIT;

/// clientv3's `rpctypes.ErrLeaseNotFound`.
const LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";

/// clientv3's `retryConnWait`: the pause before reopening a broken
/// keep-alive stream, and the period of its check for due requests.
const RETRY_CONN_WAIT: Duration = Duration::from_millis(500);
/// The period of clientv3's `deadlineLoop`.
const DEADLINE_CHECK_PERIOD: Duration = Duration::from_secs(1);
/// clientv3's `defaultTTL`: the first deadline when the dial timeout is 0.
const DEFAULT_FIRST_DEADLINE: Duration = Duration::from_secs(5);
/// The pause before a single keep-alive tries again after the cluster
/// was unavailable.
const ONCE_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Keep-alive requests waiting to go out on the stream. One is due at a
/// time; when the queue is full (the server reads nothing), a due request
/// is dropped and tried again at the next check.
const KEEP_ALIVE_REQUESTS_MAX: usize = 4;
/// How far ahead "never" is for deadlines that do not fit an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// etcdctl's `leaseFromArgs`.
fn lease_from_arg(arg: &str) -> Result<i64, CtlError> {
    gofmt::parse_int(arg, 16)
        .map_err(|e| CtlError::BadArgs(format!("bad lease ID arg ({e}), expecting ID in Hex")))
}

/// Prints the client's warning lines, then turns a failure into the
/// error `kind` makes of its text (etcdctl's wording and exit status).
fn finish_with<T>(
    client: &mut Client,
    out: &mut Output<'_>,
    result: Result<T, String>,
    kind: fn(String) -> CtlError,
) -> Result<T, CtlError> {
    commands::finish(client, out, result).map_err(|e| kind(e.to_string()))
}

/// `lease grant <ttl>`.
pub fn grant(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if ctx.args.len() != 1 {
        return Err(CtlError::BadArgs(
            "lease grant command needs TTL argument".to_string(),
        ));
    }
    let ttl = gofmt::parse_int(&ctx.args[0], 10)
        .map_err(|e| CtlError::BadArgs(format!("bad TTL ({e})")))?;
    let deadline = commands::command_deadline(&ctx.flags);
    let (mut client, printer) = commands::client_from_ctx(ctx)?;
    let request = LeaseGrantRequest { ttl, id: 0 };
    let result = commands::block_on(client.lease_grant(request, deadline))?;
    let response = finish_with(&mut client, ctx.out, result, |e| {
        CtlError::General(format!("failed to grant lease ({e})"))
    })?;
    printer.lease_grant(ctx.out, &response)
}

/// `lease revoke <leaseID>`.
pub fn revoke(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if ctx.args.len() != 1 {
        return Err(CtlError::BadArgs(
            "lease revoke command needs 1 argument".to_string(),
        ));
    }
    let id = lease_from_arg(&ctx.args[0])?;
    let deadline = commands::command_deadline(&ctx.flags);
    let (mut client, printer) = commands::client_from_ctx(ctx)?;
    let result = commands::block_on(client.lease_revoke(LeaseRevokeRequest { id }, deadline))?;
    let response = finish_with(&mut client, ctx.out, result, |e| {
        CtlError::General(format!("failed to revoke lease ({e})"))
    })?;
    printer.lease_revoke(ctx.out, id, &response)
}

/// `lease timetolive <leaseID> [--keys]`.
pub fn time_to_live(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if ctx.args.len() != 1 {
        return Err(CtlError::BadArgs(
            "lease timetolive command needs lease ID as argument".to_string(),
        ));
    }
    // etcdctl makes the client before it reads the lease ID.
    let (mut client, printer) = commands::client_from_ctx(ctx)?;
    let id = lease_from_arg(&ctx.args[0])?;
    let keys = ctx.flags.bool("keys");
    let deadline = commands::command_deadline(&ctx.flags);
    let request = LeaseTimeToLiveRequest { id, keys };
    let result = commands::block_on(client.lease_time_to_live(request, deadline))?;
    let response = finish_with(&mut client, ctx.out, result, CtlError::BadConnection)?;
    printer.lease_time_to_live(ctx.out, &response, keys)
}

/// `lease list` (extra arguments are ignored, as in etcdctl).
pub fn list(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let (mut client, printer) = commands::client_from_ctx(ctx)?;
    let deadline = commands::command_deadline(&ctx.flags);
    let result = commands::block_on(client.lease_leases(deadline))?;
    let response = finish_with(&mut client, ctx.out, result, CtlError::BadConnection)?;
    printer.lease_leases(ctx.out, &response)
}

/// `lease keep-alive [--once] <leaseID>`.
pub fn keep_alive(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    if ctx.args.len() != 1 {
        return Err(CtlError::BadArgs(
            "lease keep-alive command needs lease ID as argument".to_string(),
        ));
    }
    let id = lease_from_arg(&ctx.args[0])?;
    let (mut client, printer) = commands::client_from_ctx(ctx)?;
    if ctx.flags.bool("once") {
        let deadline = commands::command_deadline(&ctx.flags);
        let response = commands::block_on(keep_alive_once(&mut client, id, deadline))?
            .map_err(CtlError::BadConnection)?;
        return printer.lease_keep_alive(ctx.out, &response);
    }
    let dial_timeout = ctx.flags.duration("dial-timeout").to_std();
    let out = &mut *ctx.out;
    commands::block_on(keep_alive_loop(client, id, printer, out, dial_timeout))??;
    if matches!(printer, Printer::Simple { .. }) {
        ctx.out
            .out(format!("lease {} expired or revoked.\n", lease_id_hex(id)));
    }
    Ok(())
}

/// clientv3's `isHaltErr` for a status: anything but `Unavailable` and
/// `Internal` is not worth trying again.
fn is_halt(status: &tonic::Status) -> bool {
    !matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Internal
    )
}

/// clientv3's `KeepAliveOnce`: one request on a stream of its own, tried
/// again while the cluster is unavailable (until `deadline`); a lease
/// the server no longer has is an error.
async fn keep_alive_once(
    client: &mut Client,
    id: i64,
    deadline: Instant,
) -> Result<LeaseKeepAliveResponse, String> {
    loop {
        let (requests, receiver) = mpsc::channel(1);
        // Cannot fail: the channel is new.
        let _ = requests.try_send(LeaseKeepAliveRequest { id });
        let attempt = async {
            let mut responses = client
                .lease_keep_alive(ReceiverStream::new(receiver), false, deadline)
                .await?;
            responses.message().await
        };
        let status = match tokio::time::timeout_at(deadline, attempt).await {
            Err(_) => return Err(DEADLINE_EXCEEDED.to_string()),
            Ok(Ok(Some(response))) if response.ttl <= 0 => return Err(LEASE_NOT_FOUND.to_string()),
            Ok(Ok(Some(response))) => return Ok(response),
            // The stream ended without an answer: Go's `io.EOF`.
            Ok(Ok(None)) => return Err("EOF".to_string()),
            Ok(Err(status)) => status,
        };
        // Kept open until the answer came: etcd ends a stream whose client
        // half-closed it, and clientv3 never half-closes this one.
        drop(requests);
        if is_halt(&status) {
            return Err(client_error_text(&status, Instant::now() >= deadline));
        }
        client.reconnect();
        tokio::time::sleep_until((Instant::now() + ONCE_RETRY_PAUSE).min(deadline)).await;
    }
}

/// `now + delay`, or far in the future when that does not fit.
fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// clientv3's bookkeeping for one kept-alive lease (its `keepAlive`).
struct KeepAlive {
    id: i64,
    /// When the next request is due (`nextKeepAlive`).
    next_send: Instant,
    /// When the lease counts as gone if no response came (`deadline`).
    deadline: Instant,
    /// `deadlineLoop`'s checks.
    deadline_checks: tokio::time::Interval,
}

impl KeepAlive {
    fn past_deadline(&self) -> bool {
        self.deadline < Instant::now()
    }
}

/// How one keep-alive stream ended.
enum StreamEnd {
    /// Broken or refused: open another after a pause (on a new connection
    /// when this one may be gone).
    Broken { connection_lost: bool },
    /// The lease expired or was revoked, or no answer came in time.
    LeaseGone,
}

/// clientv3's `KeepAlive` as etcdctl uses it: prints each response until
/// the lease is gone. Errors only when printing fails (`-w table`) or the
/// output's reader went away.
async fn keep_alive_loop(
    mut client: Client,
    id: i64,
    printer: Printer,
    out: &mut Output<'_>,
    dial_timeout: Duration,
) -> Result<(), CtlError> {
    let started = Instant::now();
    // clientv3's `firstKeepAliveTimeout`: the dial timeout plus a second.
    let first_timeout = match dial_timeout + Duration::from_secs(1) {
        timeout if timeout == Duration::from_secs(1) => DEFAULT_FIRST_DEADLINE,
        timeout => timeout,
    };
    let mut deadline_checks =
        tokio::time::interval_at(started + DEADLINE_CHECK_PERIOD, DEADLINE_CHECK_PERIOD);
    deadline_checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut state = KeepAlive {
        id,
        next_send: started,
        deadline: after(started, first_timeout),
        deadline_checks,
    };
    loop {
        match keep_alive_stream(&mut client, &mut state, &printer, out).await? {
            StreamEnd::LeaseGone => return Ok(()),
            StreamEnd::Broken { connection_lost } => {
                if connection_lost {
                    client.reconnect();
                }
                // `recvKeepAliveLoop` waits before it opens another stream;
                // the deadline still runs.
                let pause = tokio::time::sleep(RETRY_CONN_WAIT);
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        _ = &mut pause => break,
                        _ = state.deadline_checks.tick() => {
                            if state.past_deadline() {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The next message of an open stream; never, while there is none.
async fn next_response(
    responses: &mut Option<tonic::Streaming<LeaseKeepAliveResponse>>,
) -> Result<Option<LeaseKeepAliveResponse>, tonic::Status> {
    match responses {
        Some(stream) => stream.message().await,
        None => std::future::pending().await,
    }
}

/// One keep-alive stream (clientv3's `resetRecv`, `sendKeepAliveLoop` and
/// `recvKeepAlive`), until it breaks or the lease is gone.
async fn keep_alive_stream(
    client: &mut Client,
    state: &mut KeepAlive,
    printer: &Printer,
    out: &mut Output<'_>,
) -> Result<StreamEnd, CtlError> {
    let (requests, receiver) = mpsc::channel(KEEP_ALIVE_REQUESTS_MAX);
    // The server answers the stream's opening only after a request, so it
    // opens while the send checks run.
    let opening = client.lease_keep_alive(ReceiverStream::new(receiver), true, state.deadline);
    tokio::pin!(opening);
    let mut responses = None;
    let mut send_checks = tokio::time::interval(RETRY_CONN_WAIT);
    send_checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            opened = &mut opening, if responses.is_none() => match opened {
                Ok(stream) => responses = Some(stream),
                // The client already dials afresh after a failed opening.
                Err(_) => return Ok(StreamEnd::Broken { connection_lost: false }),
            },
            message = next_response(&mut responses) => match message {
                Ok(Some(response)) => {
                    if response.id != state.id {
                        continue;
                    }
                    if response.ttl <= 0 {
                        return Ok(StreamEnd::LeaseGone);
                    }
                    let now = Instant::now();
                    let ttl = Duration::from_secs(response.ttl.unsigned_abs());
                    state.next_send = after(now, ttl / 3);
                    state.deadline = after(now, ttl);
                    let printed = printer.lease_keep_alive(out, &response);
                    out.flush();
                    if out.pipe_closed() {
                        return Err(CtlError::Exit(PIPE_CLOSED_EXIT));
                    }
                    printed?;
                }
                Ok(None) => return Ok(StreamEnd::Broken { connection_lost: false }),
                Err(status) => {
                    let connection_lost = status.code() == tonic::Code::Unavailable;
                    return Ok(StreamEnd::Broken { connection_lost });
                }
            },
            _ = send_checks.tick() => {
                if state.next_send < Instant::now() {
                    // A full queue: the server reads nothing; the next check
                    // tries again.
                    let _ = requests.try_send(LeaseKeepAliveRequest { id: state.id });
                }
            }
            _ = state.deadline_checks.tick() => {
                if state.past_deadline() {
                    return Ok(StreamEnd::LeaseGone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_are_hexadecimal_as_go_parses_them() {
        assert_eq!(lease_from_arg("1f"), Ok(31));
        assert_eq!(lease_from_arg("-1"), Ok(-1));
        assert_eq!(
            lease_from_arg("zz"),
            Err(CtlError::BadArgs(
                "bad lease ID arg (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex"
                    .to_string()
            ))
        );
        assert_eq!(
            lease_from_arg("ffffffffffffffffff"),
            Err(CtlError::BadArgs(
                "bad lease ID arg (strconv.ParseInt: parsing \"ffffffffffffffffff\": value out of range), expecting ID in Hex"
                    .to_string()
            ))
        );
    }

    #[test]
    fn unavailable_and_internal_are_worth_another_try() {
        assert!(!is_halt(&tonic::Status::unavailable("x")));
        assert!(!is_halt(&tonic::Status::internal("x")));
        assert!(is_halt(&tonic::Status::not_found(LEASE_NOT_FOUND)));
        assert!(is_halt(&tonic::Status::unimplemented("x")));
    }

    #[test]
    fn deadlines_that_do_not_fit_are_far_away() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(365 * 24 * 3600));
    }
}
