//! `watch`: put-to-event latency with many watchers.
//!
//! Owns the watch workload, modeled on etcd's `watch-latency` (with the
//! watcher layout of etcd's `watch`). Phase one opens `--watchers` watchers
//! over `--streams` watch streams (watcher `w` on stream `w % streams`,
//! watching key `w % watched-key-total`; stream `s` on client `s %
//! clients`) and times each creation. Phase two makes `--put-total` puts at
//! `--put-rate` (put `i` on watched key `i % watched-key-total`) over the
//! clients, and every watcher of that key times the event: the latency is
//! from just before the put is sent to the watch response carrying it.
//!
//! Matching events to puts: a put's value starts with its number (8 bytes,
//! big-endian), and the send time of every put is kept in a table the
//! stream tasks read. A watcher that misses events is noticed when events
//! stop for [`EVENT_IDLE_MAX`](super::EVENT_IDLE_MAX): the missing events
//! are counted as errors.
//!
//! Reports: watch creation, puts, and watch events (the headline).
//!
//! Does not own: the measuring loop of the puts (see `driver`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use stead_proto::etcdserverpb::kv_client::KvClient;
use stead_proto::etcdserverpb::watch_client::WatchClient;
use stead_proto::etcdserverpb::watch_request::RequestUnion;
use stead_proto::etcdserverpb::{PutRequest, WatchCreateRequest, WatchRequest, WatchResponse};
use stead_proto::mvccpb::event::EventType;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::{Context, EVENT_IDLE_MAX};
use crate::cli::WatchArgs;
use crate::connect::rpc_error;
use crate::driver::{self, Worker};
use crate::error::BenchError;
use crate::keys::{KeySpace, Rng, random_value};
use crate::limiter::RateLimiter;
use crate::progress::{self, Progress, ProgressBar};
use crate::report::{Outcome, Recorder, Report, Section};

/// Bytes at the start of a put's value that carry its number.
const PUT_NUMBER_BYTES: usize = 8;
/// Watch requests queued towards one stream before the sender waits.
pub const WATCH_QUEUE: usize = 16;
/// Counted for each event that never came.
const MISSING_EVENT: &str = "watch event not received";

/// A watch stream with its watchers created.
pub struct OpenStream {
    /// Kept so the stream stays open while events are awaited.
    pub requests: mpsc::Sender<WatchRequest>,
    pub responses: Streaming<WatchResponse>,
}

/// A create request for `key`.
pub fn create_request(key: Bytes, start_revision: i64, prev_kv: bool) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key,
            start_revision,
            prev_kv,
            ..WatchCreateRequest::default()
        })),
    }
}

/// Opens a watch stream whose first request is `first`. Servers send the
/// stream's headers with the first response, and tonic waits for them, so
/// the first request is queued before the call.
pub async fn open_stream(
    mut client: WatchClient<Channel>,
    first: WatchRequest,
) -> Result<OpenStream, BenchError> {
    let (requests, queue) = mpsc::channel(WATCH_QUEUE);
    requests.send(first).await.map_err(|_| BenchError::Setup {
        operation: "Watch",
        message: "stream queue closed".into(),
    })?;
    let responses = client
        .watch(ReceiverStream::new(queue))
        .await
        .map_err(|status| BenchError::Setup {
            operation: "Watch",
            message: rpc_error(&status),
        })?
        .into_inner();
    Ok(OpenStream {
        requests,
        responses,
    })
}

/// Waits for the response that confirms the next watcher's creation
/// (events for watchers already created, caused by other writers, pass).
async fn created(responses: &mut Streaming<WatchResponse>) -> Result<(), BenchError> {
    loop {
        let response = match responses.message().await {
            Ok(Some(response)) => response,
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
        };
        if response.canceled {
            return Err(BenchError::Setup {
                operation: "Watch",
                message: format!("watch canceled: {}", response.cancel_reason),
            });
        }
        if response.created {
            return Ok(());
        }
    }
}

/// Opens one stream and creates its watchers one after another, timing
/// each creation.
async fn create_watchers(
    client: WatchClient<Channel>,
    keys: Vec<Bytes>,
    prev_kv: bool,
    progress: Arc<Progress>,
) -> Result<(OpenStream, Recorder), BenchError> {
    let mut recorder = Recorder::new();
    let mut keys = keys.into_iter();
    let Some(first) = keys.next() else {
        return Err(BenchError::Task("a watch stream without watchers".into()));
    };
    let started = Instant::now();
    let mut stream = open_stream(client, create_request(first, 0, prev_kv)).await?;
    created(&mut stream.responses).await?;
    recorder.record(started.elapsed());
    progress.add(1);
    for key in keys {
        let started = Instant::now();
        stream
            .requests
            .send(create_request(key, 0, prev_kv))
            .await
            .map_err(|_| BenchError::Setup {
                operation: "Watch",
                message: "the stream's request queue closed".into(),
            })?;
        created(&mut stream.responses).await?;
        recorder.record(started.elapsed());
        progress.add(1);
    }
    Ok((stream, recorder))
}

/// When each put was sent: nanoseconds since `origin`, plus one (zero means
/// not sent yet).
struct SendTimes {
    origin: Instant,
    sent_ns: Vec<AtomicU64>,
}

impl SendTimes {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

struct WatchPutWorker {
    kv: KvClient<Channel>,
    keys: Arc<Vec<Bytes>>,
    /// The rest of every value, after the put number.
    filler: Bytes,
    times: Arc<SendTimes>,
}

impl Worker for WatchPutWorker {
    async fn request(&mut self, index: u64) -> driver::Outcome {
        let key = self.keys[(index % self.keys.len() as u64) as usize].clone();
        let value = put_value(index, &self.filler);
        let sent_ns = self.times.now_ns() + 1;
        self.times.sent_ns[index as usize].store(sent_ns, Ordering::Release);
        let request = PutRequest {
            key,
            value,
            ..PutRequest::default()
        };
        match self.kv.put(request).await {
            Ok(_) => Ok(()),
            Err(status) => Err(rpc_error(&status)),
        }
    }
}

/// The value of put `index`: its number, then `filler`.
fn put_value(index: u64, filler: &[u8]) -> Bytes {
    let mut value = BytesMut::with_capacity(PUT_NUMBER_BYTES + filler.len());
    value.put_u64(index);
    value.extend_from_slice(filler);
    value.freeze()
}

/// The put number a value starts with.
fn put_number(value: &[u8]) -> Option<u64> {
    let number: [u8; PUT_NUMBER_BYTES] = value.get(..PUT_NUMBER_BYTES)?.try_into().ok()?;
    Some(u64::from_be_bytes(number))
}

/// What one stream's watchers received.
struct EventTally {
    recorder: Recorder,
    received: u64,
    last_event: Option<Instant>,
    /// Why the stream ended early, if it did.
    trouble: Option<String>,
}

/// Receives events until `expected` have come or the run is cancelled.
async fn receive_events(
    mut stream: OpenStream,
    expected: u64,
    times: Arc<SendTimes>,
    progress: Arc<Progress>,
    mut cancel: watch::Receiver<bool>,
) -> EventTally {
    let mut tally = EventTally {
        recorder: Recorder::new(),
        received: 0,
        last_event: None,
        trouble: None,
    };
    while tally.received < expected {
        let message = tokio::select! {
            message = stream.responses.message() => message,
            _ = cancel.changed() => break,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => {
                tally.trouble = Some("the server closed a watch stream".into());
                break;
            }
            Err(status) => {
                tally.trouble = Some(rpc_error(&status));
                break;
            }
        };
        let now_ns = times.now_ns();
        if response.canceled {
            tally.trouble = Some(format!("watch canceled: {}", response.cancel_reason));
        }
        for event in &response.events {
            if event.r#type != EventType::Put as i32 {
                continue;
            }
            let Some(number) = event.kv.as_ref().and_then(|kv| put_number(&kv.value)) else {
                continue;
            };
            let Some(sent) = times.sent_ns.get(number as usize) else {
                continue;
            };
            let sent_ns = sent.load(Ordering::Acquire);
            if sent_ns == 0 {
                // Not one of ours (another writer's value).
                continue;
            }
            tally
                .recorder
                .record(Duration::from_nanos(now_ns.saturating_sub(sent_ns - 1)));
            tally.received += 1;
            progress.add(1);
        }
        tally.last_event = Some(Instant::now());
    }
    drop(stream.requests);
    tally
}

/// Puts on watched key `key` among `put_total` puts spread round-robin over
/// `key_total` keys.
fn puts_on_key(key: u64, put_total: u64, key_total: u64) -> u64 {
    put_total / key_total + u64::from(key < put_total % key_total)
}

/// For each stream, the keys of its watchers (watcher `w` on stream `w %
/// streams`, watching key `w % key_total`). Streams without watchers are
/// left out.
fn layout(watchers: u64, streams: u64, key_total: u64) -> Vec<Vec<u64>> {
    (0..streams.min(watchers))
        .map(|stream| {
            (stream..watchers)
                .step_by(streams as usize)
                .map(|watcher| watcher % key_total)
                .collect()
        })
        .collect()
}

pub async fn run(context: &Context, args: WatchArgs) -> Result<Outcome, BenchError> {
    if args.watchers == 0 {
        return Err(BenchError::InvalidArgument(
            "--watchers must be positive".into(),
        ));
    }
    if args.val_size < PUT_NUMBER_BYTES {
        return Err(BenchError::InvalidArgument(format!(
            "--val-size must be at least {PUT_NUMBER_BYTES}: a value carries its put's number"
        )));
    }
    let space = KeySpace::new(args.key_size, args.watched_key_total)?;
    let keys: Arc<Vec<Bytes>> = Arc::new((0..space.count).map(|k| space.key(k)).collect());
    let layout = layout(args.watchers, args.streams, args.watched_key_total);
    let streams_used = layout.len();

    let connections = context.connect().await?;
    // Phase one: create the watchers.
    let bar = ProgressBar::start("watch create", args.watchers);
    let create_started = Instant::now();
    let mut creating = JoinSet::new();
    for (stream, watched) in layout.iter().enumerate() {
        let client = connections.watch(stream % context.clients);
        let stream_keys = watched.iter().map(|&k| keys[k as usize].clone()).collect();
        let expected: u64 = watched
            .iter()
            .map(|&k| puts_on_key(k, args.put_total, args.watched_key_total))
            .sum();
        let progress = bar.counter();
        let prev_kv = args.prevkv;
        creating.spawn(async move {
            let (open, recorder) = create_watchers(client, stream_keys, prev_kv, progress).await?;
            Ok::<_, BenchError>((open, recorder, expected))
        });
    }
    let mut opened = Vec::with_capacity(streams_used);
    let mut creation = Recorder::new();
    while let Some(joined) = creating.join_next().await {
        let (open, recorder, expected) = joined??;
        creation.merge(&recorder);
        opened.push((open, expected));
    }
    let creation = Report::new(creation, create_started.elapsed());
    bar.finish();

    // Phase two: put, and time the events.
    let events_total: u64 = opened.iter().map(|(_, expected)| expected).sum();
    let times = Arc::new(SendTimes {
        origin: Instant::now(),
        sent_ns: (0..args.put_total).map(|_| AtomicU64::new(0)).collect(),
    });
    let bar = ProgressBar::start("watch events", events_total);
    let (cancel, cancelled) = watch::channel(false);
    let mut receiving = JoinSet::new();
    for (open, expected) in opened {
        receiving.spawn(receive_events(
            open,
            expected,
            Arc::clone(&times),
            bar.counter(),
            cancelled.clone(),
        ));
    }
    let mut rng = Rng::from_clock(0);
    let filler = random_value(args.val_size - PUT_NUMBER_BYTES, &mut rng);
    let workers: Vec<WatchPutWorker> = (0..context.clients)
        .map(|client| WatchPutWorker {
            kv: connections.kv(client),
            keys: Arc::clone(&keys),
            filler: filler.clone(),
            times: Arc::clone(&times),
        })
        .collect();
    let puts_started = Instant::now();
    let mut put_reports = driver::run(
        workers,
        args.put_total,
        RateLimiter::new(args.put_rate),
        Progress::new(args.put_total),
    )
    .await?;
    let puts = put_reports.remove(0);

    let events_progress = bar.counter();
    let watchdog = progress::stalled(&events_progress, EVENT_IDLE_MAX);
    tokio::pin!(watchdog);
    let mut tallies = Vec::with_capacity(streams_used);
    loop {
        tokio::select! {
            joined = receiving.join_next() => match joined {
                Some(tally) => tallies.push(tally?),
                None => break,
            },
            () = &mut watchdog => {
                let _ = cancel.send(true);
                while let Some(tally) = receiving.join_next().await {
                    tallies.push(tally?);
                }
                break;
            }
        }
    }
    bar.finish();

    let mut events = Recorder::new();
    let mut received = 0;
    let mut last_event = puts_started;
    let mut notes = vec![format!(
        "bench with {} watchers on {} streams over {} keys, {} puts",
        args.watchers, streams_used, args.watched_key_total, args.put_total
    )];
    for tally in &tallies {
        events.merge(&tally.recorder);
        received += tally.received;
        if let Some(at) = tally.last_event {
            last_event = last_event.max(at);
        }
        if let Some(trouble) = &tally.trouble {
            notes.push(format!("watch stream ended early: {trouble}"));
        }
    }
    debug_assert!(received <= events_total);
    events.record_errors(MISSING_EVENT, events_total.saturating_sub(received));
    let events = Report::new(events, last_event.duration_since(puts_started));

    Ok(Outcome {
        workload: "watch",
        notes,
        sections: vec![
            Section {
                title: Some("Watch creation summary".into()),
                report: creation,
            },
            Section {
                title: Some("Put summary".into()),
                report: puts,
            },
            Section {
                title: Some("Watch events summary".into()),
                report: events.clone(),
            },
        ],
        headline: events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_spread_evenly_over_the_watched_keys() {
        assert_eq!(puts_on_key(0, 10, 3), 4);
        assert_eq!(puts_on_key(1, 10, 3), 3);
        assert_eq!(puts_on_key(2, 10, 3), 3);
        assert_eq!(puts_on_key(0, 5, 1), 5);
        assert_eq!(puts_on_key(4, 2, 5), 0);
    }

    #[test]
    fn watchers_spread_over_streams_and_keys() {
        assert_eq!(layout(5, 2, 2), [vec![0, 0, 0], vec![1, 1]]);
        assert_eq!(layout(2, 4, 1), [vec![0], vec![0]]);
        let all: usize = layout(100, 10, 7).iter().map(Vec::len).sum();
        assert_eq!(all, 100);
    }

    #[test]
    fn a_put_value_carries_its_number() {
        let value = put_value(0x0102_0304_0506_0708, b"rest");
        assert_eq!(&value[..], b"\x01\x02\x03\x04\x05\x06\x07\x08rest");
        assert_eq!(put_number(&value), Some(0x0102_0304_0506_0708));
        assert_eq!(put_number(b"short"), None);
    }
}
