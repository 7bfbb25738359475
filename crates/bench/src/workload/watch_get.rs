//! `watch-get`: serializable gets while many unsynced watchers catch up.
//!
//! Owns etcd's watch-get benchmark: put `watchkey` `--events` times, then
//! open `--watchers` watchers over `--streams` streams, all watching
//! `watchkey` from the first of those revisions (so each must be sent the
//! old events: "unsynced" watchers), while one client on its own connection
//! makes serializable gets of `abc` back to back. The gets are measured;
//! they stop when every watcher has had its events.
//!
//! Does not own: the watch stream plumbing it shares with `watch`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use stead_proto::etcdserverpb::{PutRequest, RangeRequest};
use tokio::task::JoinSet;

use super::watch::{OpenStream, create_request, open_stream};
use super::{Context, EVENT_IDLE_MAX};
use crate::cli::WatchGetArgs;
use crate::connect::{Connections, rpc_error};
use crate::error::BenchError;
use crate::progress::{self, Progress, ProgressBar};
use crate::report::{Outcome, Recorder, Report};

const WATCH_KEY: &[u8] = b"watchkey";
const GET_KEY: &[u8] = b"abc";

/// Creates `watchers` watchers on one stream from `revision` (the creates
/// are sent from a separate task while this one reads) and counts events
/// until each watcher has had `events`.
async fn watch_stream(
    stream: OpenStream,
    watchers: u64,
    events: u64,
    revision: i64,
    progress: Arc<Progress>,
) -> Result<(), BenchError> {
    let OpenStream {
        requests,
        mut responses,
    } = stream;
    let sender = tokio::spawn(async move {
        for _ in 1..watchers {
            let create = create_request(Bytes::from_static(WATCH_KEY), revision, false);
            if requests.send(create).await.is_err() {
                return;
            }
        }
        // Keep the request side open until the events are in.
        requests.closed().await;
    });
    let expected = watchers * events;
    let mut received = 0;
    while received < expected {
        match responses.message().await {
            Ok(Some(response)) => {
                let count = response.events.len() as u64;
                received += count;
                progress.add(count);
            }
            Ok(None) => {
                return Err(BenchError::Setup {
                    operation: "Watch",
                    message: "the server closed the stream".into(),
                });
            }
            Err(status) => {
                return Err(BenchError::Setup {
                    operation: "Watch",
                    message: rpc_error(&status),
                });
            }
        }
    }
    drop(responses);
    sender.abort();
    Ok(())
}

pub async fn run(context: &Context, args: WatchGetArgs) -> Result<Outcome, BenchError> {
    if args.watchers == 0 || args.events == 0 {
        return Err(BenchError::InvalidArgument(
            "--watchers and --events must be positive".into(),
        ));
    }
    let connections = context.connect().await?;
    // Old events for the watchers to catch up on.
    let mut kv = connections.kv(0);
    let mut first_revision = 0;
    for event in 0..args.events {
        let response = kv
            .put(PutRequest {
                key: Bytes::from_static(WATCH_KEY),
                value: Bytes::from(event.to_string()),
                ..PutRequest::default()
            })
            .await
            .map_err(|status| BenchError::Setup {
                operation: "Put",
                message: rpc_error(&status),
            })?
            .into_inner();
        if event == 0 {
            first_revision = response.header.map_or(0, |header| header.revision);
        }
    }

    // The getter, on a connection of its own, runs until told to stop.
    let get_connection = Connections::open(&context.endpoints, 1, context.dial_timeout).await?;
    let mut getter_kv = get_connection.kv(0);
    let stop = Arc::new(AtomicBool::new(false));
    let getter = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut recorder = Recorder::new();
            let started = Instant::now();
            let request = RangeRequest {
                key: Bytes::from_static(GET_KEY),
                serializable: true,
                ..RangeRequest::default()
            };
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match getter_kv.range(request.clone()).await {
                    Ok(_) => recorder.record(sent.elapsed()),
                    Err(status) => recorder.record_error(rpc_error(&status)),
                }
            }
            Report::new(recorder, started.elapsed())
        })
    };

    let streams = args.streams.min(args.watchers);
    let bar = ProgressBar::start("watch-get events", args.watchers * args.events);
    let mut watching = JoinSet::new();
    for stream in 0..streams {
        let watchers = (stream..args.watchers).step_by(streams as usize).count() as u64;
        let client = connections.watch(stream as usize % context.clients);
        let progress = bar.counter();
        let events = args.events;
        watching.spawn(async move {
            let first = create_request(Bytes::from_static(WATCH_KEY), first_revision, false);
            let open = open_stream(client, first).await?;
            watch_stream(open, watchers, events, first_revision, progress).await
        });
    }
    let events_progress = bar.counter();
    let watchdog = progress::stalled(&events_progress, EVENT_IDLE_MAX);
    tokio::pin!(watchdog);
    let outcome = loop {
        tokio::select! {
            joined = watching.join_next() => match joined {
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => break Err(error),
                Some(Err(error)) => break Err(error.into()),
                None => break Ok(()),
            },
            () = &mut watchdog => break Err(BenchError::Stalled {
                what: "watch-get: watch events",
                idle: EVENT_IDLE_MAX,
                done: events_progress.done(),
                total: events_progress.total(),
            }),
        }
    };
    stop.store(true, Ordering::Relaxed);
    watching.abort_all();
    bar.finish();
    let gets = getter.await?;
    outcome?;
    let notes = vec![format!(
        "bench with {} unsynced watchers on {} streams, {} events each",
        args.watchers, streams, args.events
    )];
    let mut outcome = Outcome::single("watch-get", notes, gets);
    outcome.sections[0].title = Some("Get during watch summary".into());
    Ok(outcome)
}
