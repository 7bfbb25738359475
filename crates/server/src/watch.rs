//! The etcd v3 Watch service: etcd's `v3rpc/watch.go`.
//!
//! What it owns: one bidirectional gRPC stream per client stream. A receiving task turns
//! create, cancel and progress requests into calls on the stream's [`WatchStream`] (etcd's
//! conventions for keys and ranges applied here). The response stream tonic polls
//! ([`Responses`]) reads the stream's outbox directly, with no task or channel in between, and
//! turns each message into `WatchResponse`s: headers, `prev_kv` (read at the event's
//! revision minus one, as etcd does), fragmenting of responses over `--max-request-bytes`,
//! and periodic progress notifications for watchers that asked for them. What it does not
//! own: who gets which event, in which order (the watch hub in `stead-mvcc`).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use prost::Message as _;
use stead_mvcc::watch::{
    EventFilter, Presentation, StreamProgress, WatchMessage, WatchSpec, WatchStream,
};
use stead_mvcc::{KeyRange, KvView as _, RangeOptions};
use stead_proto::etcdserverpb::watch_create_request::FilterType;
use stead_proto::etcdserverpb::watch_request::RequestUnion;
use stead_proto::etcdserverpb::watch_server::Watch;
use stead_proto::etcdserverpb::{ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse};
use stead_proto::mvccpb::{Event, event::EventType};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use crate::{EtcdError, EtcdServer};

#[tonic::async_trait]
impl Watch for EtcdServer {
    type WatchStream = Responses;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.refuse_on_learner()?;
        if self.shared.stopped.load(Ordering::SeqCst) {
            return Err(EtcdError::Stopped.into());
        }
        let leader_lost = crate::require_leader::requires_leader(request.metadata()).then(|| {
            tokio_stream::wrappers::WatchStream::from_changes(self.shared.leader_lost.subscribe())
        });
        let incoming = request.into_inner();
        let (stream, outbox) = WatchStream::open(&self.shared.watch_hub);
        let interval = self.shared.watch_progress_notify_interval;
        let responses = Responses {
            renderer: Renderer {
                server: self.clone(),
                presentations: HashMap::new(),
                progress_due: HashMap::new(),
            },
            progress: stream.progress_handle(),
            outbox,
            ready: VecDeque::new(),
            ticker: tokio::time::interval_at(tokio::time::Instant::now() + interval, interval),
            closing: tokio_stream::wrappers::WatchStream::new(self.shared.closing.subscribe()),
            leader_lost,
            ended: false,
        };
        tokio::spawn(receive(incoming, stream));
        Ok(Response::new(responses))
    }
}

/// Takes the client's requests until it goes away; then drops the stream, which cancels its
/// watchers. A client that closes its sending side keeps getting events.
async fn receive(mut incoming: Streaming<WatchRequest>, mut stream: WatchStream) {
    loop {
        let request = tokio::select! {
            request = incoming.message() => request,
            () = stream.closed() => break,
        };
        match request {
            Ok(Some(request)) => match request.request_union {
                Some(RequestUnion::CreateRequest(create)) => {
                    // Refusals are answered through the outbox as `Created` + `canceled`.
                    let _ = stream.watch(watch_spec(create)).await;
                }
                Some(RequestUnion::CancelRequest(cancel)) => {
                    // An unknown ID gets no answer, as in etcd.
                    let _ = stream.cancel(cancel.watch_id).await;
                }
                Some(RequestUnion::ProgressRequest(_)) => stream.request_progress(),
                None => {}
            },
            Ok(None) => {
                stream.closed().await;
                break;
            }
            Err(status) => {
                debug!(%status, "watch stream ended");
                break;
            }
        }
    }
}

/// etcd's reading of a create request: an empty key is `"\0"`, an empty range end one key, a
/// range end of `"\0"` every key from `key` on.
fn watch_spec(create: WatchCreateRequest) -> WatchSpec {
    let key = if create.key.is_empty() {
        Bytes::from_static(b"\0")
    } else {
        create.key
    };
    let range = match create.range_end.as_ref() {
        [] => KeyRange::Single(key),
        [0] => KeyRange::From(key),
        _ => KeyRange::Between {
            start: key,
            end: create.range_end,
        },
    };
    let mut filter = EventFilter::default();
    for kind in &create.filters {
        match FilterType::try_from(*kind) {
            Ok(FilterType::Noput) => filter.no_put = true,
            Ok(FilterType::Nodelete) => filter.no_delete = true,
            Err(_) => {}
        }
    }
    WatchSpec {
        watch_id: create.watch_id,
        range,
        start_revision: create.start_revision,
        filter,
        presentation: Presentation {
            prev_kv: create.prev_kv,
            fragment: create.fragment,
            progress_notify: create.progress_notify,
        },
    }
}

/// The responses of one stream, straight from its outbox: what tonic sends. Also ticks the
/// periodic progress notifications, and ends the stream when the member shuts down.
pub struct Responses {
    renderer: Renderer,
    progress: StreamProgress,
    outbox: mpsc::Receiver<WatchMessage>,
    /// Responses rendered and not yet taken (the fragments of one message).
    ready: VecDeque<WatchResponse>,
    ticker: tokio::time::Interval,
    closing: tokio_stream::wrappers::WatchStream<bool>,
    /// For a require-leader stream (`hasleader` metadata): yields when such streams must end.
    leader_lost: Option<tokio_stream::wrappers::WatchStream<u64>>,
    ended: bool,
}

impl Stream for Responses {
    type Item = Result<WatchResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(response) = this.ready.pop_front() {
            return Poll::Ready(Some(Ok(response)));
        }
        while let Poll::Ready(closing) = Pin::new(&mut this.closing).poll_next(cx) {
            if closing != Some(false) {
                this.ended = true;
                return Poll::Ready(Some(Err(EtcdError::Stopped.into())));
            }
        }
        if let Some(leader_lost) = &mut this.leader_lost
            && Pin::new(leader_lost).poll_next(cx).is_ready()
        {
            this.ended = true;
            return Poll::Ready(Some(Err(EtcdError::NoLeader.into())));
        }
        while this.ticker.poll_tick(cx).is_ready() {
            for (&watch_id, due) in &mut this.renderer.progress_due {
                if *due {
                    this.progress.notify_progress(watch_id);
                }
                *due = true;
            }
        }
        loop {
            match this.outbox.poll_recv(cx) {
                Poll::Ready(Some(message)) => {
                    this.ready.extend(this.renderer.render(message));
                    if let Some(response) = this.ready.pop_front() {
                        return Poll::Ready(Some(Ok(response)));
                    }
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Turns outbox messages into responses: what each watcher asked for (`prev_kv`, fragments).
struct Renderer {
    server: EtcdServer,
    presentations: HashMap<i64, Presentation>,
    /// Watchers that asked for progress notifications, and whether one is due at the next tick
    /// (nothing was sent to them since the last).
    progress_due: HashMap<i64, bool>,
}

impl Renderer {
    fn header(&self, revision: i64) -> Option<ResponseHeader> {
        Some(self.server.header_at(revision))
    }

    /// The responses for one outbox message (several when a response is fragmented).
    fn render(&mut self, message: WatchMessage) -> Vec<WatchResponse> {
        match message {
            WatchMessage::Created {
                watch_id,
                revision,
                presentation,
                error,
            } => {
                if error.is_none() {
                    self.presentations.insert(watch_id, presentation);
                    if presentation.progress_notify {
                        self.progress_due.insert(watch_id, true);
                    }
                }
                vec![WatchResponse {
                    header: self.header(revision),
                    watch_id,
                    created: true,
                    canceled: error.is_some(),
                    cancel_reason: error.map(|e| e.to_string()).unwrap_or_default(),
                    ..WatchResponse::default()
                }]
            }
            WatchMessage::Events {
                watch_id,
                revision,
                mut events,
            } => {
                let presentation = self
                    .presentations
                    .get(&watch_id)
                    .copied()
                    .unwrap_or_default();
                if presentation.prev_kv {
                    self.fill_prev_kvs(&mut events);
                }
                if let Some(due) = self.progress_due.get_mut(&watch_id) {
                    *due = false;
                }
                let response = WatchResponse {
                    header: self.header(revision),
                    watch_id,
                    events,
                    ..WatchResponse::default()
                };
                if presentation.fragment {
                    fragments(response, self.server.shared.max_request_bytes)
                } else {
                    vec![response]
                }
            }
            WatchMessage::Progress { watch_id, revision } => vec![WatchResponse {
                header: self.header(revision),
                watch_id,
                ..WatchResponse::default()
            }],
            WatchMessage::Compacted {
                watch_id,
                compact_revision,
            } => {
                self.forget(watch_id);
                // etcd's response carries no store revision here.
                vec![WatchResponse {
                    header: self.header(0),
                    watch_id,
                    canceled: true,
                    compact_revision,
                    ..WatchResponse::default()
                }]
            }
            WatchMessage::Canceled { watch_id, revision } => {
                self.forget(watch_id);
                vec![WatchResponse {
                    header: self.header(revision),
                    watch_id,
                    canceled: true,
                    ..WatchResponse::default()
                }]
            }
        }
    }

    fn forget(&mut self, watch_id: i64) {
        self.presentations.remove(&watch_id);
        self.progress_due.remove(&watch_id);
    }

    /// The key-value each event replaced, as etcd finds it: the key at the event's revision
    /// minus one (absent for a creation, or once compacted away).
    fn fill_prev_kvs(&self, events: &mut [Event]) {
        let view = self.server.store().read();
        for event in events {
            let Some(kv) = &event.kv else { continue };
            let created =
                event.r#type == EventType::Put as i32 && kv.create_revision == kv.mod_revision;
            if created {
                continue;
            }
            let options = RangeOptions::latest().at_revision(kv.mod_revision - 1);
            if let Ok(found) = view.range(&KeyRange::Single(kv.key.clone()), &options) {
                event.prev_kv = found.kvs.into_iter().next();
            }
        }
    }
}

/// etcd's `sendFragments`: a response of two or more events over `max_bytes` is split into
/// responses under it (each holding at least one event), all but the last marked `fragment`.
fn fragments(response: WatchResponse, max_bytes: usize) -> Vec<WatchResponse> {
    if response.encoded_len() < max_bytes || response.events.len() < 2 {
        return vec![response];
    }
    let mut template = response.clone();
    template.events = Vec::new();
    template.fragment = true;
    let mut parts = Vec::new();
    let mut current = template.clone();
    for event in response.events {
        current.events.push(event);
        if current.events.len() > 1 && current.encoded_len() >= max_bytes {
            let overflow = current.events.pop();
            parts.push(std::mem::replace(&mut current, template.clone()));
            current.events.extend(overflow);
        }
    }
    current.fragment = false;
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use stead_proto::mvccpb::KeyValue;

    fn event(key: &str, value_len: usize) -> Event {
        Event {
            r#type: EventType::Put as i32,
            kv: Some(KeyValue {
                key: Bytes::from(key.to_owned()),
                value: Bytes::from(vec![b'v'; value_len]),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                lease: 0,
            }),
            prev_kv: None,
        }
    }

    #[test]
    fn small_responses_and_single_events_are_not_fragmented() {
        let response = WatchResponse {
            events: vec![event("a", 10), event("b", 10)],
            ..WatchResponse::default()
        };
        assert_eq!(fragments(response.clone(), 1000), vec![response]);
        let big = WatchResponse {
            events: vec![event("a", 5000)],
            ..WatchResponse::default()
        };
        assert_eq!(fragments(big.clone(), 1000), vec![big]);
    }

    #[test]
    fn fragments_keep_every_event_in_order_and_mark_all_but_the_last() {
        let events: Vec<Event> = (0..10).map(|i| event(&format!("k{i}"), 400)).collect();
        let response = WatchResponse {
            watch_id: 7,
            events: events.clone(),
            ..WatchResponse::default()
        };
        let parts = fragments(response, 1000);
        assert!(parts.len() >= 4, "{} parts", parts.len());
        let rejoined: Vec<Event> = parts.iter().flat_map(|p| p.events.clone()).collect();
        assert_eq!(rejoined, events);
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.watch_id, 7);
            assert_eq!(part.fragment, i + 1 < parts.len());
            assert!(part.events.len() == 1 || part.encoded_len() < 1000);
        }
    }
}
