//! `watch`: etcdctl 3.4's watch command, and the part of etcd's client
//! library (clientv3's `watchGrpcStream`) whose behaviour etcdctl users see.
//!
//! - Arguments: `watch [options] [key or prefix] [range_end] [--]
//!   [exec-command arg1 arg2 ...]`, split as etcdctl's `parseWatchArgs`
//!   splits them (it looks for `--` in the raw command line), with the key
//!   (and range end) also coming from `ETCDCTL_WATCH_KEY` and
//!   `ETCDCTL_WATCH_RANGE_END`. Its errors and their order are etcdctl's.
//! - The stream: one `etcdserverpb.Watch/Watch` stream per process, with
//!   the require-leader metadata; watchers are created one at a time (the
//!   server's `created` answer goes to the oldest create request);
//!   responses are dispatched by watch ID, progress notifications for every
//!   watcher; a stream that breaks with `Unavailable` or `Internal` is
//!   reopened and its watchers created again from the revision after the
//!   last one seen; any other failure ends every watcher with
//!   `watch was canceled (<error>)`. When its last watcher ends the stream
//!   is closed; `watch` then fails with `watch is canceled by the server`
//!   (exit status 5).
//! - Each response is printed with `-w` (`progress notify: <revision>`
//!   first for a progress notification), then the exec-command, if any,
//!   runs once per event with `ETCD_WATCH_REVISION`, `ETCD_WATCH_EVENT_TYPE`,
//!   `ETCD_WATCH_KEY` and `ETCD_WATCH_VALUE` (the last three Go-quoted) in
//!   its environment. A failing command ends steadctl with status 1.
//! - `-i`: standard input holds `watch ...` and `progress` lines; the
//!   command ends when input does (etcdctl's "Error reading watch request
//!   line: EOF", status 3).
//!
//! The gRPC details (connection, metadata) live in `client`, the formats in
//! `printer`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use stead_proto::etcdserverpb::{
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
    watch_request::RequestUnion,
};
use stead_proto::mvccpb::Event;
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use crate::client::{Client, client_error_text};
use crate::commands::{self, Context};
use crate::error::CtlError;
use crate::flags::{FlagKind, FlagSet, FlagSpec};
use crate::gofmt;
use crate::ops;
use crate::output::Output;
use crate::printer::{ClientWatchResponse, Printer, event_type_name};
use crate::tree;
use crate::txn;

const BAD_ARGS_NUM: &str = "bad number of arguments";
const BAD_ARGS_CONFLICT_ENV: &str = "bad number of arguments (found conflicting environment key)";
const BAD_ARGS_SEPARATOR: &str = "bad number of arguments (found separator --, but no commands)";
const CANCELED_BY_SERVER: &str = "watch is canceled by the server";
const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
const FUTURE_REVISION: &str = "etcdserver: mvcc: required revision is a future revision";
const NO_LEADER: &str = "etcdserver: no leader";

/// The variables `watch` reads its key and range end from.
const ENV_KEY: &str = "ETCDCTL_WATCH_KEY";
const ENV_RANGE_END: &str = "ETCDCTL_WATCH_RANGE_END";

/// Flags etcdctl registers for `watch` only so that the two variables
/// above count as known (no "unrecognized environment variable" warning).
pub const ENV_FLAGS: [FlagSpec; 2] = [
    FlagSpec::new("watch-key", FlagKind::String, "", "watch key"),
    FlagSpec::new("watch-range-end", FlagKind::String, "", "watch range end"),
];

/// Stands for `os.Args[0]` when the command line does not spell `watch`
/// (a prefix like `wat` found the command); no argument can equal it.
const PROGRAM_NAME: &str = "\0etcdctl";

/// The status a shell reports for a program killed by SIGPIPE (128 + 13),
/// as etcdctl is when the reader of its output goes away.
pub(crate) const PIPE_CLOSED_EXIT: i32 = 141;

/// Requests waiting to go out on the stream. Requests are few (one create
/// in flight, progress requests and cancels); when full, the caller waits.
const STREAM_REQUESTS_MAX: usize = 64;
/// Input lines of `watch -i` read ahead of their processing; the reading
/// thread waits when full.
const INPUT_LINES_MAX: usize = 16;
/// clientv3's bounds on the pause between attempts to reopen the stream.
const REOPEN_BACKOFF_FIRST: Duration = Duration::from_millis(1);
const REOPEN_BACKOFF_MAX: Duration = Duration::from_millis(100);

/// What a watcher is created with: the flags of the command line, or of
/// an interactive `watch` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchOptions {
    pub prefix: bool,
    pub rev: i64,
    pub prev_kv: bool,
    /// etcdctl 3.5's `--progress-notify`.
    pub progress_notify: bool,
}

impl WatchOptions {
    fn from_flags(flags: &FlagSet) -> Self {
        WatchOptions {
            prefix: flags.bool("prefix"),
            rev: flags.int("rev"),
            prev_kv: flags.bool("prev-kv"),
            progress_notify: flags.bool("progress-notify"),
        }
    }
}

/// A `watch` command split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchArgs {
    /// Key and optional range end (more are ignored, as etcdctl does).
    pub args: Vec<String>,
    /// The command to run per event; empty for none.
    pub exec: Vec<String>,
    /// The flags of an interactive line; `None` for the command line's.
    pub line_options: Option<WatchOptions>,
}

/// A runtime error of Go (etcdctl indexes slices out of range on a few
/// inputs).
fn go_index_panic(index: isize) -> CtlError {
    CtlError::Panic(format!("runtime error: index out of range [{index}]"))
}

/// etcdctl's `parseWatchArgs`. `raw` is the whole command line (without
/// the program name) for the command, `command_args` the positional
/// arguments (the command's, or an interactive line's words starting with
/// `watch`).
pub fn parse_watch_args(
    raw: &[String],
    command_args: &[String],
    env_key: &str,
    env_range: &str,
    interactive: bool,
) -> Result<WatchArgs, CtlError> {
    // The raw arguments after `watch` (all of `os.Args` if it is not there).
    let raw_args: Vec<String> = match raw.iter().position(|a| a == "watch") {
        Some(at) => raw[at + 1..].to_vec(),
        None => std::iter::once(PROGRAM_NAME.to_string())
            .chain(raw.iter().cloned())
            .collect(),
    };
    let mut watch_args: Vec<String> = command_args.to_vec();
    if interactive {
        if watch_args.first().map(String::as_str) != Some("watch") {
            return Err(CtlError::BadArgs(
                "args[0] must be 'watch' for interactive calls".to_string(),
            ));
        }
        watch_args.remove(0);
    }

    if !interactive {
        let exec_at = raw_args.iter().position(|a| a == "--");
        if exec_at.is_some_and(|at| at + 1 == raw_args.len()) {
            return Err(CtlError::BadArgs(BAD_ARGS_SEPARATOR.to_string()));
        }
        if exec_at.is_none() && raw_args.is_empty() && env_key.is_empty() {
            return Err(CtlError::BadArgs(BAD_ARGS_NUM.to_string()));
        }
        if let Some(exec_at) = exec_at
            && !env_key.is_empty()
        {
            // A positional argument before `--` conflicts with the key
            // from the environment: walk both lists from the end.
            let mut raw_at = raw_args.len() as isize - 1;
            for word in watch_args.iter().rev() {
                let Some(raw_word) = usize::try_from(raw_at).ok().and_then(|i| raw_args.get(i))
                else {
                    return Err(go_index_panic(raw_at));
                };
                if word == raw_word {
                    raw_at -= 1;
                    continue;
                }
                if raw_at == exec_at as isize {
                    return Err(CtlError::BadArgs(BAD_ARGS_CONFLICT_ENV.to_string()));
                }
            }
        }
        if exec_at.is_none() && !watch_args.is_empty() && !env_key.is_empty() {
            return Err(CtlError::BadArgs(BAD_ARGS_CONFLICT_ENV.to_string()));
        }
    } else {
        let exec_at = watch_args.iter().position(|a| a == "--");
        if exec_at.is_some_and(|at| at + 1 == watch_args.len()) {
            return Err(CtlError::BadArgs(BAD_ARGS_SEPARATOR.to_string()));
        }
        let (_, positional) = parse_line_flags(&watch_args)?;
        if exec_at.is_none() && env_key.is_empty() && positional.is_empty() {
            return Err(CtlError::BadArgs(BAD_ARGS_NUM.to_string()));
        }
        if exec_at.is_none() && !positional.is_empty() && !env_key.is_empty() {
            return Err(CtlError::BadArgs(BAD_ARGS_CONFLICT_ENV.to_string()));
        }
    }

    // Interactive lines keep their `--`; the command line's is in `raw`.
    let args_with_separator: &[String] = if interactive { &watch_args } else { &raw_args };
    let separator_at = args_with_separator.iter().position(|a| a == "--");
    let exec: Vec<String> = match separator_at {
        Some(at) => args_with_separator[at + 1..].to_vec(),
        None => Vec::new(),
    };

    let mut line_options = None;
    if interactive {
        let (options, positional) = parse_line_flags(args_with_separator)?;
        line_options = Some(options);
        watch_args = positional;
    }

    if !env_key.is_empty() {
        let mut ranges = vec![env_key.to_string()];
        if !env_range.is_empty() {
            ranges.push(env_range.to_string());
        }
        ranges.extend(watch_args);
        watch_args = ranges;
    }

    let Some(first_exec_word) = exec.first() else {
        return Ok(WatchArgs {
            args: watch_args,
            exec,
            line_options,
        });
    };
    // The positional arguments run on into the command's words: cut them
    // at the last word equal to the command's name.
    let Some(end) = watch_args.iter().rposition(|a| a == first_exec_word) else {
        return Err(CtlError::Panic(
            "runtime error: slice bounds out of range [:-1]".to_string(),
        ));
    };
    watch_args.truncate(end);
    Ok(WatchArgs {
        args: watch_args,
        exec,
        line_options,
    })
}

/// Parses an interactive line's flags with a fresh set of `watch`'s flags
/// (pflag's own set: no `--help`, whose use is pflag's `ErrHelp`).
fn parse_line_flags(words: &[String]) -> Result<(WatchOptions, Vec<String>), CtlError> {
    let mut flags = FlagSet::new(tree::watch_flags());
    match flags.parse(words) {
        Ok(positional) => Ok((WatchOptions::from_flags(&flags), positional)),
        Err(message) => {
            let help = message == "unknown flag: --help"
                || message.starts_with("unknown shorthand flag: 'h' in ");
            Err(CtlError::BadArgs(if help {
                "pflag: help requested".to_string()
            } else {
                message
            }))
        }
    }
}

/// etcdctl's `getWatchChan` and clientv3's `opWatch`: the create request,
/// or the error etcdctl reports for the arguments.
pub fn create_request(
    args: &[String],
    options: WatchOptions,
) -> Result<WatchCreateRequest, String> {
    let Some(key) = args.first() else {
        return Err(BAD_ARGS_NUM.to_string());
    };
    let mut key = key.as_bytes().to_vec();
    let mut range_end = Vec::new();
    if args.len() == 2 {
        if options.prefix {
            return Err("`range_end` and `--prefix` are mutually exclusive".to_string());
        }
        range_end = args[1].as_bytes().to_vec();
    }
    if options.prefix {
        if key.is_empty() {
            key = vec![0];
            range_end = vec![0];
        } else {
            range_end = ops::prefix_end(&key);
        }
    }
    Ok(WatchCreateRequest {
        key: Bytes::from(key),
        range_end: Bytes::from(range_end),
        start_revision: options.rev,
        prev_kv: options.prev_kv,
        progress_notify: options.progress_notify,
        ..Default::default()
    })
}

fn create_message(create: &WatchCreateRequest) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(create.clone())),
    }
}

/// clientv3's `isHaltErr` (and its special case for a lost leader): the
/// stream is not worth reopening. A status tonic made itself from a broken
/// connection (it keeps the transport's error as its source; the server's
/// statuses have none) is the `Unavailable` Go's gRPC reports for it.
fn is_halt(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    if status.source().is_some() {
        return false;
    }
    let code = status.code();
    (code != tonic::Code::Unavailable && code != tonic::Code::Internal)
        || status.message() == NO_LEADER
}

/// The response clientv3 makes up for a watcher it ends itself.
fn close_response(error: &str) -> ClientWatchResponse {
    ClientWatchResponse {
        canceled: true,
        error: Some(error.to_string()),
        ..Default::default()
    }
}

/// A server response as clientv3 hands it on (`dispatchEvent`), with its
/// `Err()`.
fn client_response(resp: &WatchResponse) -> ClientWatchResponse {
    let error = if resp.compact_revision != 0 {
        Some(COMPACTED.to_string())
    } else if resp.canceled {
        Some(if resp.cancel_reason.is_empty() {
            FUTURE_REVISION.to_string()
        } else {
            client_error_text(
                &tonic::Status::failed_precondition(resp.cancel_reason.clone()),
                false,
            )
        })
    } else {
        None
    };
    ClientWatchResponse {
        header: resp.header.unwrap_or_default(),
        events: Some(resp.events.clone()),
        compact_revision: resp.compact_revision,
        canceled: resp.canceled,
        created: resp.created,
        error,
    }
}

/// One watcher (clientv3's `watcherStream`).
#[derive(Debug)]
struct Watcher {
    /// Names the watcher to the caller.
    token: u64,
    /// The create request, whose start revision follows the responses so
    /// that a reopened stream resumes where this one stopped.
    create: WatchCreateRequest,
    /// The watch was asked for with revision 0 ("from now").
    from_now: bool,
    /// The server has not yet confirmed the first creation.
    awaiting_first_creation: bool,
    exec: Vec<String>,
}

/// What happened on the stream, for the command to act on.
#[derive(Debug)]
pub enum Step {
    /// A response for a watcher, to print (and run its command on).
    Deliver {
        response: ClientWatchResponse,
        exec: Vec<String>,
    },
    /// The watcher is registered with the server.
    Created(u64),
    /// The watcher is gone; nothing more comes for it.
    Closed(u64),
}

/// What one wait on the stream brought.
pub enum Received {
    Message(WatchResponse),
    End,
    Failed(tonic::Status),
}

struct Stream {
    requests: mpsc::Sender<WatchRequest>,
    responses: tonic::Streaming<WatchResponse>,
}

/// The watch stream and its watchers (clientv3's `watchGrpcStream`).
///
/// Driven by the command: [`Session::upkeep`] opens the stream and sends
/// queued requests, [`Session::receive`] waits for the next response (and
/// may be abandoned, as in a `select!`), [`Session::on_received`] acts on
/// it, and [`Session::pop_step`] hands out what the command must do.
pub struct Session {
    client: Client,
    stream: Option<Stream>,
    /// Watchers waiting for creation, oldest first; the oldest one's create
    /// request is on the wire.
    resuming: VecDeque<Watcher>,
    /// Created watchers by watch ID.
    created: BTreeMap<i64, Watcher>,
    /// Watch IDs of unknown watchers already asked to be cancelled.
    cancel_requested: HashSet<i64>,
    /// A fragmented response being put back together.
    fragment: Option<WatchResponse>,
    /// Set when a watcher failed at creation; clientv3 then also ends every
    /// later-closing watcher of this stream with it.
    close_error: Option<String>,
    outbox: VecDeque<WatchRequest>,
    steps: VecDeque<Step>,
    next_token: u64,
}

impl Session {
    pub fn new(client: Client) -> Self {
        Session {
            client,
            stream: None,
            resuming: VecDeque::new(),
            created: BTreeMap::new(),
            cancel_requested: HashSet::new(),
            fragment: None,
            close_error: None,
            outbox: VecDeque::new(),
            steps: VecDeque::new(),
            next_token: 0,
        }
    }

    /// Watchers not yet ended.
    pub fn live(&self) -> usize {
        self.resuming.len() + self.created.len()
    }

    /// Queues a new watcher; returns its token.
    pub fn watch(&mut self, create: WatchCreateRequest, exec: Vec<String>) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        let from_now = create.start_revision == 0;
        self.resuming.push_back(Watcher {
            token,
            create,
            from_now,
            awaiting_first_creation: true,
            exec,
        });
        // Creations go one at a time; a closed stream sends its head when
        // it opens.
        if self.resuming.len() == 1 && self.stream.is_some() {
            let message = create_message(&self.resuming[0].create);
            self.outbox.push_back(message);
        }
        token
    }

    /// Asks the server for a progress notification to every watcher.
    pub fn request_progress(&mut self) {
        self.outbox.push_back(WatchRequest {
            request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
        });
    }

    pub fn pop_step(&mut self) -> Option<Step> {
        self.steps.pop_front()
    }

    /// Opens the stream when there is something to send, and sends what is
    /// queued. Not to be abandoned halfway (it may hold requests).
    pub async fn upkeep(&mut self) {
        if self.stream.is_none() && !(self.resuming.is_empty() && self.outbox.is_empty()) {
            self.open().await;
        }
        let Some(stream) = &self.stream else {
            return;
        };
        while let Some(message) = self.outbox.pop_front() {
            // A closed request channel means the stream is ending; its end
            // arrives through `receive`.
            if stream.requests.send(message).await.is_err() {
                self.outbox.clear();
                return;
            }
        }
    }

    /// clientv3's `newWatchClient`/`openWatchClient`: opens the stream,
    /// retrying while the cluster is unavailable, with the head creation
    /// and queued requests as its first messages.
    async fn open(&mut self) {
        let mut backoff = REOPEN_BACKOFF_FIRST;
        loop {
            let (sender, receiver) = mpsc::channel(STREAM_REQUESTS_MAX);
            let mut first = Vec::new();
            if let Some(head) = self.resuming.front() {
                first.push(create_message(&head.create));
            }
            let from_outbox = self
                .outbox
                .len()
                .min(STREAM_REQUESTS_MAX.saturating_sub(first.len()));
            first.extend(self.outbox.iter().take(from_outbox).cloned());
            for message in first {
                // Cannot fail: the channel is new and large enough.
                let _ = sender.try_send(message);
            }
            match self.client.watch(ReceiverStream::new(receiver)).await {
                Ok(responses) => {
                    self.outbox.drain(..from_outbox);
                    self.cancel_requested.clear();
                    self.stream = Some(Stream {
                        requests: sender,
                        responses,
                    });
                    return;
                }
                Err(status) if is_halt(&status) => {
                    self.halt(&client_error_text(&status, false));
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff + backoff / 4).min(REOPEN_BACKOFF_MAX);
                }
            }
        }
    }

    /// Waits for the next response. Safe to abandon: nothing is lost.
    /// Never resolves while no stream is open.
    pub async fn receive(&mut self) -> Received {
        let Some(stream) = &mut self.stream else {
            return std::future::pending().await;
        };
        match stream.responses.message().await {
            Ok(Some(message)) => Received::Message(message),
            Ok(None) => Received::End,
            Err(status) => Received::Failed(status),
        }
    }

    pub fn on_received(&mut self, received: Received) {
        match received {
            Received::Message(message) => self.on_message(message),
            // Go's stream reports `io.EOF`, which ends the stream.
            Received::End => self.halt("EOF"),
            Received::Failed(status) if is_halt(&status) => {
                self.halt(&client_error_text(&status, false));
            }
            Received::Failed(_) => self.resume_later(),
        }
    }

    /// The run loop's handling of one server response.
    fn on_message(&mut self, message: WatchResponse) {
        let current = match self.fragment.take() {
            Some(mut current)
                if !message.created
                    && !message.canceled
                    && current.watch_id == message.watch_id =>
            {
                current.events.extend(message.events.iter().cloned());
                current.fragment = message.fragment;
                current
            }
            // clientv3 drops a piece of another watcher's response here.
            Some(current) if !message.created && !message.canceled => current,
            _ => message.clone(),
        };
        if message.created {
            if let Some(watcher) = self.resuming.pop_front() {
                self.add_created(&message, watcher);
            }
            if let Some(next) = self.resuming.front() {
                let request = create_message(&next.create);
                self.outbox.push_back(request);
            }
        } else if message.canceled && message.compact_revision == 0 {
            self.cancel_requested.remove(&message.watch_id);
            if let Some(watcher) = self.created.remove(&message.watch_id) {
                self.close(watcher);
            }
        } else if current.fragment {
            self.fragment = Some(current);
        } else if !self.dispatch(&current) && self.cancel_requested.insert(current.watch_id) {
            // Events for a watcher this client does not know: cancel it.
            self.outbox.push_back(WatchRequest {
                request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest {
                    watch_id: current.watch_id,
                })),
            });
        }
    }

    /// clientv3's `addSubstream` and the creation half of `serveSubstream`.
    fn add_created(&mut self, message: &WatchResponse, mut watcher: Watcher) {
        if message.watch_id == -1 || (message.canceled && !message.cancel_reason.is_empty()) {
            self.close_error = Some(message.cancel_reason.clone());
            self.close(watcher);
            return;
        }
        if watcher.awaiting_first_creation {
            watcher.awaiting_first_creation = false;
            if watcher.from_now {
                watcher.create.start_revision = message.header.unwrap_or_default().revision;
            }
            self.steps.push_back(Step::Created(watcher.token));
        }
        self.created.insert(message.watch_id, watcher);
    }

    /// clientv3's `dispatchEvent`: progress notifications to every watcher,
    /// the rest to the watcher named. False when no watcher takes it.
    fn dispatch(&mut self, message: &WatchResponse) -> bool {
        let response = client_response(message);
        if response.is_progress_notify() && message.watch_id == -1 {
            let ids: Vec<i64> = self.created.keys().copied().collect();
            for id in ids {
                self.deliver(id, response.clone());
            }
            return true;
        }
        if !self.created.contains_key(&message.watch_id) {
            return false;
        }
        self.deliver(message.watch_id, response);
        true
    }

    /// The delivery half of clientv3's `serveSubstream`.
    fn deliver(&mut self, id: i64, response: ClientWatchResponse) {
        let Some(watcher) = self.created.get_mut(&id) else {
            return;
        };
        let mut next_revision = response.header.revision;
        if let Some(last) = response.events().last() {
            next_revision = last.kv.as_ref().map_or(0, |kv| kv.mod_revision) + 1;
        }
        watcher.create.start_revision = next_revision;
        let failed = response.error.is_some();
        self.steps.push_back(Step::Deliver {
            response,
            exec: watcher.exec.clone(),
        });
        if failed && let Some(watcher) = self.created.remove(&id) {
            self.close(watcher);
        }
    }

    /// clientv3's `closeSubstream`; the stream closes with its last
    /// watcher.
    fn close(&mut self, watcher: Watcher) {
        if let Some(error) = &self.close_error {
            self.steps.push_back(Step::Deliver {
                response: close_response(error),
                exec: watcher.exec.clone(),
            });
        }
        self.steps.push_back(Step::Closed(watcher.token));
        if self.live() == 0 {
            self.end_stream();
        }
    }

    fn end_stream(&mut self) {
        self.stream = None;
        self.fragment = None;
        self.close_error = None;
        self.cancel_requested.clear();
        self.outbox.clear();
    }

    /// The stream failed for good: every watcher ends with `error`.
    fn halt(&mut self, error: &str) {
        let created = std::mem::take(&mut self.created);
        let resuming = std::mem::take(&mut self.resuming);
        for watcher in created.into_values().chain(resuming) {
            self.steps.push_back(Step::Deliver {
                response: close_response(error),
                exec: watcher.exec,
            });
            self.steps.push_back(Step::Closed(watcher.token));
        }
        self.end_stream();
    }

    /// The stream broke but may come back: every watcher is created again
    /// (from where it stopped) when [`Session::upkeep`] reopens it.
    fn resume_later(&mut self) {
        let created = std::mem::take(&mut self.created);
        self.resuming.extend(created.into_values());
        self.stream = None;
        self.fragment = None;
        self.outbox.clear();
        self.client.reconnect();
    }
}

/// Go's `%q` of a `[]string`: `["sh" "-c" "exit 3"]`.
fn quote_list(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| gofmt::quote(w)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's name of a Linux signal (`syscall.Signal.String`).
fn signal_name(signal: i32) -> String {
    const NAMES: [&str; 31] = [
        "hangup",
        "interrupt",
        "quit",
        "illegal instruction",
        "trace/breakpoint trap",
        "aborted",
        "bus error",
        "floating point exception",
        "killed",
        "user defined signal 1",
        "segmentation fault",
        "user defined signal 2",
        "broken pipe",
        "alarm clock",
        "terminated",
        "stack fault",
        "child exited",
        "continued",
        "stopped (signal)",
        "stopped",
        "stopped (tty input)",
        "stopped (tty output)",
        "urgent I/O condition",
        "CPU time limit exceeded",
        "file size limit exceeded",
        "virtual timer expired",
        "profiling timer expired",
        "window changed",
        "I/O possible",
        "power failure",
        "bad system call",
    ];
    usize::try_from(signal)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("signal {signal}"), |name| name.to_string())
}

/// Go's text for an errno (`syscall.Errno.Error`): the C library's
/// message with a lower-case first letter.
fn errno_text(error: &std::io::Error) -> String {
    let Some(code) = error.raw_os_error() else {
        return error.to_string();
    };
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let text = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text)
        .to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Go 1.19's `exec.LookPath` for a name without a slash: the path to run,
/// or the error `exec.Command` reports.
fn look_path(name: &str, env: &[(String, String)]) -> Result<String, String> {
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("", |(_, v)| v.as_str());
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = std::path::Path::new(dir).join(name);
        let Ok(metadata) = std::fs::metadata(&candidate) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        if metadata.is_dir() || metadata.permissions().mode() & 0o111 == 0 {
            continue;
        }
        let candidate = candidate.display().to_string();
        if !candidate.starts_with('/') {
            return Err(format!(
                "exec: {}: cannot run executable found relative to current directory",
                gofmt::quote(name)
            ));
        }
        return Ok(candidate);
    }
    Err(format!(
        "exec: {}: executable file not found in $PATH",
        gofmt::quote(name)
    ))
}

/// Runs the exec-command for one event as etcdctl does (standard input
/// from /dev/null, output to steadctl's own standard output and error,
/// which is why it bypasses [`Output`]); the error is Go's text.
fn run_exec(
    exec: &[String],
    env: &[(String, String)],
    revision: i64,
    event: &Event,
) -> Result<(), String> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let Some(name) = exec.first() else {
        return Ok(());
    };
    let program = if name.contains('/') {
        name.clone()
    } else {
        look_path(name, env)?
    };
    let kv = event.kv.clone().unwrap_or_default();
    let status = std::process::Command::new(&program)
        .arg0(name)
        .args(&exec[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("ETCD_WATCH_REVISION", revision.to_string())
        .env(
            "ETCD_WATCH_EVENT_TYPE",
            gofmt::quote(&event_type_name(event.r#type)),
        )
        .env("ETCD_WATCH_KEY", gofmt::quote_bytes(&kv.key))
        .env("ETCD_WATCH_VALUE", gofmt::quote_bytes(&kv.value))
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("fork/exec {program}: {}", errno_text(&e)))?;
    if status.success() {
        return Ok(());
    }
    let mut text = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal: {}", signal_name(signal)),
        (None, None) => status.to_string(),
    };
    if status.core_dumped() {
        text.push_str(" (core dumped)");
    }
    Err(text)
}

/// etcdctl's `printWatchCh` for one response.
fn show(
    out: &mut Output<'_>,
    printer: &Printer,
    env: &[(String, String)],
    response: &ClientWatchResponse,
    exec: &[String],
) -> Result<(), CtlError> {
    if response.canceled {
        let error = response.error.as_deref().unwrap_or("<nil>");
        out.err(format!("watch was canceled ({error})\n"));
    }
    if response.is_progress_notify() {
        out.out(format!("progress notify: {}\n", response.header.revision));
    }
    let printed = printer.watch(out, response);
    out.flush();
    if out.pipe_closed() {
        return Err(CtlError::Exit(PIPE_CLOSED_EXIT));
    }
    printed?;
    if exec.is_empty() {
        return Ok(());
    }
    for event in response.events() {
        if let Err(error) = run_exec(exec, env, response.header.revision, event) {
            out.err(format!("command {} error ({error})\n", quote_list(exec)));
            return Err(CtlError::Exit(1));
        }
    }
    Ok(())
}

fn env_value<'e>(env: &'e [(String, String)], key: &str) -> &'e str {
    env.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// `watch`: etcdctl's `watchCommandFunc`.
pub fn command(ctx: &mut Context<'_, '_>) -> Result<(), CtlError> {
    let env_key = env_value(ctx.env, ENV_KEY).to_string();
    let env_range = env_value(ctx.env, ENV_RANGE_END).to_string();
    if env_key.is_empty() && !env_range.is_empty() {
        return Err(CtlError::BadArgs(format!(
            "{ENV_KEY} is empty but got {ENV_RANGE_END}={}",
            gofmt::quote(&env_range)
        )));
    }
    if ctx.flags.bool("interactive") {
        return interactive(ctx, &env_key, &env_range);
    }
    let parsed = parse_watch_args(ctx.raw_args, &ctx.args, &env_key, &env_range, false)?;
    let (client, printer) = commands::client_from_ctx(ctx)?;
    let options = WatchOptions::from_flags(&ctx.flags);
    let create = create_request(&parsed.args, options).map_err(CtlError::BadArgs)?;
    let env = ctx.env;
    let out = &mut *ctx.out;
    commands::block_on(async move {
        let mut session = Session::new(client);
        session.watch(create, parsed.exec);
        loop {
            session.upkeep().await;
            while let Some(step) = session.pop_step() {
                match step {
                    Step::Deliver { response, exec } => show(out, &printer, env, &response, &exec)?,
                    Step::Closed(_) if session.live() == 0 => {
                        return Err(CtlError::Interrupted(CANCELED_BY_SERVER.to_string()));
                    }
                    Step::Created(_) | Step::Closed(_) => {}
                }
            }
            let received = session.receive().await;
            session.on_received(received);
        }
    })?
}

/// Reads standard input line by line on a thread of its own (so that
/// events print while it waits); a read error or the end of input is the
/// last item.
fn spawn_line_reader(
    mut input: Box<dyn std::io::BufRead + Send>,
) -> mpsc::Receiver<Result<String, String>> {
    let (sender, receiver) = mpsc::channel(INPUT_LINES_MAX);
    std::thread::spawn(move || {
        loop {
            let mut line = Vec::new();
            let item = match input.read_until(b'\n', &mut line) {
                Ok(_) if line.last() == Some(&b'\n') => {
                    line.pop();
                    Ok(String::from_utf8_lossy(&line).into_owned())
                }
                Ok(_) => Err("EOF".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let last = item.is_err();
            if sender.blocking_send(item).is_err() || last {
                return;
            }
        }
    });
    receiver
}

/// What one interactive line asks for.
enum LineAction {
    Nothing,
    /// Wait for this watcher's creation before reading on, as clientv3's
    /// `Watch` returns only then.
    AwaitCreation(u64),
}

/// One line of `watch -i` (`watchInteractiveFunc`'s loop body).
fn interactive_line(
    line: &str,
    raw: &[String],
    env_key: &str,
    env_range: &str,
    session: &mut Session,
    out: &mut Output<'_>,
) -> Result<LineAction, CtlError> {
    let args = txn::argify(line)?;
    let Some(first) = args.first() else {
        out.err(format!(
            "Invalid command: {line} (watch and progress supported)\n"
        ));
        return Ok(LineAction::Nothing);
    };
    match first.as_str() {
        "watch" => {
            if args.len() < 2 && env_key.is_empty() {
                out.err(format!(
                    "Invalid command {line} (command type or key is not provided)\n"
                ));
                return Ok(LineAction::Nothing);
            }
            let parsed = parse_watch_args(raw, &args, env_key, env_range, true)?;
            let options = parsed.line_options.unwrap_or_default();
            match create_request(&parsed.args, options) {
                Ok(create) => Ok(LineAction::AwaitCreation(
                    session.watch(create, parsed.exec),
                )),
                Err(error) => {
                    out.err(format!("Invalid command {line} ({error})\n"));
                    Ok(LineAction::Nothing)
                }
            }
        }
        "progress" => {
            session.request_progress();
            Ok(LineAction::Nothing)
        }
        _ => {
            out.err(format!("Invalid command {line} (only support watch)\n"));
            Ok(LineAction::Nothing)
        }
    }
}

/// `watch -i`: etcdctl's `watchInteractiveFunc`.
fn interactive(ctx: &mut Context<'_, '_>, env_key: &str, env_range: &str) -> Result<(), CtlError> {
    let (client, printer) = commands::client_from_ctx(ctx)?;
    let input = std::mem::replace(&mut ctx.stdin, Box::new(std::io::empty()));
    let raw = ctx.raw_args;
    let env = ctx.env;
    let out = &mut *ctx.out;
    commands::block_on(async move {
        let mut lines = spawn_line_reader(input);
        let mut session = Session::new(client);
        let mut awaiting: Option<u64> = None;
        loop {
            session.upkeep().await;
            while let Some(step) = session.pop_step() {
                match step {
                    Step::Deliver { response, exec } => show(out, &printer, env, &response, &exec)?,
                    Step::Created(token) | Step::Closed(token) => {
                        if awaiting == Some(token) {
                            awaiting = None;
                        }
                    }
                }
            }
            if awaiting.is_some() {
                let received = session.receive().await;
                session.on_received(received);
                continue;
            }
            tokio::select! {
                line = lines.recv() => {
                    let line = match line {
                        Some(Ok(line)) => line,
                        Some(Err(error)) => {
                            return Err(CtlError::InvalidInput(format!(
                                "Error reading watch request line: {error}"
                            )));
                        }
                        None => {
                            return Err(CtlError::InvalidInput(
                                "Error reading watch request line: EOF".to_string(),
                            ));
                        }
                    };
                    if let LineAction::AwaitCreation(token) =
                        interactive_line(&line, raw, env_key, env_range, &mut session, out)?
                    {
                        awaiting = Some(token);
                    }
                    if out.pipe_closed() {
                        return Err(CtlError::Exit(PIPE_CLOSED_EXIT));
                    }
                }
                received = session.receive() => session.on_received(received),
            }
        }
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The command's positional arguments as cobra hands them over.
    fn positional(raw: &[&str]) -> Vec<String> {
        let root = tree::root();
        let (found, rest) = tree::find(&root, &words(raw)).unwrap();
        let mut flags = FlagSet::new(found.all_flags());
        flags.parse(&rest).unwrap()
    }

    fn parse(raw: &[&str], env_key: &str) -> Result<WatchArgs, CtlError> {
        parse_watch_args(&words(raw), &positional(raw), env_key, "", false)
    }

    #[test]
    fn command_line_splits_at_the_separator() {
        let parsed = parse(&["watch", "foo", "--rev", "1", "--", "echo", "hi"], "").unwrap();
        assert_eq!(parsed.args, words(&["foo"]));
        assert_eq!(parsed.exec, words(&["echo", "hi"]));
        let parsed = parse(&["--endpoints=x", "watch", "a", "b", "--prefix"], "").unwrap();
        assert_eq!(parsed.args, words(&["a", "b"]));
        assert!(parsed.exec.is_empty());
        // The cut is at the last word equal to the command's name.
        let parsed = parse(&["watch", "echo", "--", "echo", "echo"], "").unwrap();
        assert_eq!(parsed.args, words(&["echo", "echo"]));
    }

    #[test]
    fn command_line_errors_follow_etcdctl() {
        assert_eq!(
            parse(&["watch"], ""),
            Err(CtlError::BadArgs(BAD_ARGS_NUM.to_string()))
        );
        assert_eq!(
            parse(&["watch", "foo", "--"], ""),
            Err(CtlError::BadArgs(BAD_ARGS_SEPARATOR.to_string()))
        );
        assert_eq!(
            parse(&["watch", "foo"], "foo"),
            Err(CtlError::BadArgs(BAD_ARGS_CONFLICT_ENV.to_string()))
        );
        assert_eq!(
            parse(&["watch", "foo", "--", "echo", "1"], "foo"),
            Err(CtlError::BadArgs(BAD_ARGS_CONFLICT_ENV.to_string()))
        );
        // Only `--` and a command: the key comes from the environment.
        let parsed = parse(&["watch", "--rev", "3", "--", "echo", "1"], "k").unwrap();
        assert_eq!(parsed.args, words(&["k"]));
        assert_eq!(parsed.exec, words(&["echo", "1"]));
        // No key at all passes here and fails at the request.
        let parsed = parse(&["watch", "--", "echo", "hi"], "").unwrap();
        assert!(parsed.args.is_empty());
        assert_eq!(
            create_request(&parsed.args, WatchOptions::default()),
            Err(BAD_ARGS_NUM.to_string())
        );
    }

    #[test]
    fn interactive_lines_carry_their_own_flags() {
        let line = words(&["watch", "foo", "--prefix", "--rev=4", "--", "echo", "x"]);
        let parsed = parse_watch_args(&words(&["watch", "-i"]), &line, "", "", true).unwrap();
        assert_eq!(parsed.args, words(&["foo"]));
        assert_eq!(parsed.exec, words(&["echo", "x"]));
        assert_eq!(
            parsed.line_options,
            Some(WatchOptions {
                prefix: true,
                rev: 4,
                prev_kv: false,
                progress_notify: false,
            })
        );
        let help = parse_watch_args(&[], &words(&["watch", "foo", "-h"]), "", "", true);
        assert_eq!(
            help,
            Err(CtlError::BadArgs("pflag: help requested".to_string()))
        );
        let unknown = parse_watch_args(&[], &words(&["watch", "foo", "-w", "json"]), "", "", true);
        assert_eq!(
            unknown,
            Err(CtlError::BadArgs(
                "unknown shorthand flag: 'w' in -w".to_string()
            ))
        );
        let bare = parse_watch_args(&[], &words(&["watch", "--rev", "1"]), "", "", true);
        assert_eq!(bare, Err(CtlError::BadArgs(BAD_ARGS_NUM.to_string())));
    }

    #[test]
    fn create_requests_follow_clientv3() {
        let prefix = WatchOptions {
            prefix: true,
            rev: 7,
            prev_kv: true,
            progress_notify: true,
        };
        let request = create_request(&words(&["foo"]), prefix).unwrap();
        assert!(request.progress_notify);
        assert_eq!(&request.key[..], b"foo");
        assert_eq!(&request.range_end[..], b"fop");
        assert_eq!(request.start_revision, 7);
        assert!(request.prev_kv);
        let everything = create_request(&words(&[""]), prefix).unwrap();
        assert_eq!(
            (&everything.key[..], &everything.range_end[..]),
            (&b"\0"[..], &b"\0"[..])
        );
        assert_eq!(
            create_request(&words(&["a", "b"]), prefix),
            Err("`range_end` and `--prefix` are mutually exclusive".to_string())
        );
        // A third argument is ignored, as etcdctl ignores it.
        let three = create_request(&words(&["a", "b", "c"]), WatchOptions::default()).unwrap();
        assert!(three.range_end.is_empty());
    }

    #[test]
    fn failures_are_worded_like_clientv3() {
        let compacted = client_response(&WatchResponse {
            canceled: true,
            compact_revision: 3,
            ..Default::default()
        });
        assert_eq!(compacted.error.as_deref(), Some(COMPACTED));
        assert_eq!(compacted.events, Some(Vec::new()));
        let reason = client_response(&WatchResponse {
            canceled: true,
            cancel_reason: "mvcc: watcher range is empty".to_string(),
            ..Default::default()
        });
        assert_eq!(
            reason.error.as_deref(),
            Some("rpc error: code = FailedPrecondition desc = mvcc: watcher range is empty")
        );
        assert!(is_halt(&tonic::Status::unimplemented("")));
        assert!(!is_halt(&tonic::Status::unavailable("x")));
        assert!(is_halt(&tonic::Status::unavailable(NO_LEADER)));
        assert_eq!(signal_name(9), "killed");
        assert_eq!(signal_name(64), "signal 64");
        assert_eq!(
            quote_list(&words(&["sh", "-c", "exit 3"])),
            "[\"sh\" \"-c\" \"exit 3\"]"
        );
    }

    #[test]
    fn exec_reports_errors_as_go_does() {
        let event = Event::default();
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        assert_eq!(
            run_exec(&words(&["no-such-command-here"]), &env, 1, &event),
            Err("exec: \"no-such-command-here\": executable file not found in $PATH".to_string())
        );
        assert_eq!(
            run_exec(&words(&["/nonexistent/x"]), &env, 1, &event),
            Err("fork/exec /nonexistent/x: no such file or directory".to_string())
        );
        assert_eq!(
            run_exec(&words(&["sh", "-c", "exit 3"]), &env, 1, &event),
            Err("exit status 3".to_string())
        );
        assert_eq!(
            run_exec(&words(&["sh", "-c", "kill -9 $$"]), &env, 1, &event),
            Err("signal: killed".to_string())
        );
        assert_eq!(
            run_exec(
                &words(&["sh", "-c", "test \"$ETCD_WATCH_KEY\" = '\"\"'"]),
                &env,
                1,
                &event
            ),
            Ok(())
        );
    }
}
