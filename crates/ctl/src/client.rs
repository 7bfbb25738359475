//! The gRPC client: connections to the endpoints and one method per etcd
//! RPC steadctl makes, behaving as etcdctl 3.4's client library (clientv3)
//! does where users can see it.
//!
//! - Endpoints are `host:port` or `http://host:port`; TLS endpoints are not
//!   supported. The first endpoint that accepts a connection is used.
//! - Every failed RPC attempt logs clientv3's retry-interceptor warning, a
//!   zap JSON line on standard error (`"msg":"retrying of unary invoker
//!   failed"`), which commands print before their `Error:` line.
//! - Read-only RPCs are retried while the server answers `Unavailable`,
//!   until the command's deadline; writes are not.
//! - Errors are worded as clientv3 words them: etcd's own messages bare
//!   (`etcdserver: mvcc: required revision has been compacted`), an expired
//!   deadline as `context deadline exceeded`, anything else as Go gRPC's
//!   `rpc error: code = ... desc = ...`.
//!
//! While no endpoint accepts connections, a request waits for its deadline
//! and then fails with `context deadline exceeded`, as clientv3 does.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use stead_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse,
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, MemberAddRequest, MemberAddResponse,
    MemberListRequest, MemberListResponse, MemberPromoteRequest, MemberPromoteResponse,
    MemberRemoveRequest, MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse,
    MoveLeaderRequest, MoveLeaderResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    StatusRequest, StatusResponse, TxnRequest, TxnResponse, WatchRequest, WatchResponse,
    cluster_client::ClusterClient, kv_client::KvClient, lease_client::LeaseClient,
    maintenance_client::MaintenanceClient, watch_client::WatchClient,
};
use tokio::time::Instant;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::error::CtlError;
use crate::gofmt;

/// etcd's error messages that clientv3 turns into bare errors
/// (`rpctypes.errStringToError`).
const ETCD_ERROR_MESSAGES: &[&str] = &[
    "etcdserver: key is not provided",
    "etcdserver: key not found",
    "etcdserver: value is provided",
    "etcdserver: lease is provided",
    "etcdserver: too many operations in txn request",
    "etcdserver: duplicate key given in txn request",
    "etcdserver: mvcc: required revision has been compacted",
    "etcdserver: mvcc: required revision is a future revision",
    "etcdserver: mvcc: database space exceeded",
    "etcdserver: requested lease not found",
    "etcdserver: lease already exists",
    "etcdserver: too large lease TTL",
    "etcdserver: member ID already exist",
    "etcdserver: Peer URLs already exists",
    "etcdserver: re-configuration failed due to not enough started members",
    "etcdserver: given member URLs are invalid",
    "etcdserver: member not found",
    "etcdserver: can only promote a learner member",
    "etcdserver: can only promote a learner member which is in sync with leader",
    "etcdserver: too many learner members in cluster",
    "etcdserver: request is too large",
    "etcdserver: too many requests",
    "etcdserver: root user does not exist",
    "etcdserver: root user does not have root role",
    "etcdserver: user name already exists",
    "etcdserver: user name is empty",
    "etcdserver: user name not found",
    "etcdserver: role name already exists",
    "etcdserver: role name not found",
    "etcdserver: role name is empty",
    "etcdserver: authentication failed, invalid user ID or password",
    "etcdserver: permission denied",
    "etcdserver: role is not granted to the user",
    "etcdserver: permission is not granted to the role",
    "etcdserver: authentication is not enabled",
    "etcdserver: invalid auth token",
    "etcdserver: invalid auth management",
    "etcdserver: revision of auth store is old",
    "etcdserver: no leader",
    "etcdserver: not leader",
    "etcdserver: leader changed",
    "etcdserver: not capable",
    "etcdserver: server stopped",
    "etcdserver: request timed out",
    "etcdserver: request timed out, possibly due to previous leader failure",
    "etcdserver: request timed out, possibly due to connection lost",
    "etcdserver: request timed out, waiting for the applied index took too long",
    "etcdserver: unhealthy cluster",
    "etcdserver: corrupt cluster",
    "etcdserver: rpc not supported for learner",
    "etcdserver: bad leader transferee",
];

/// The message clientv3 gives for an expired command deadline.
pub const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// What gRPC-go reports while no connection can be made.
const NO_CONNECTION: &str = "rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure";

/// clientv3's first wait between retries of a read.
const RETRY_BACKOFF: Duration = Duration::from_millis(25);
/// clientv3's bound on attempts of one RPC.
const RETRY_ATTEMPTS_MAX: u32 = 100;
/// How long to wait before dialling an unreachable endpoint again.
const REDIAL_PAUSE: Duration = Duration::from_millis(100);

/// clientv3's `WithRequireLeader`: the metadata that asks the server to
/// fail the stream rather than serve it without a leader.
const REQUIRE_LEADER_KEY: &str = "hasleader";

/// Whether an RPC may be retried after `Unavailable` (clientv3's
/// `repeatable` and `nonRepeatable` policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Repeatable,
    NonRepeatable,
}

/// Go gRPC's name for a status code.
fn go_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Go gRPC's `status.Error(...).Error()`.
pub fn go_status_text(status: &tonic::Status) -> String {
    format!(
        "rpc error: code = {} desc = {}",
        go_code_name(status.code()),
        status.message()
    )
}

/// clientv3's wording of a failed RPC (`toErr`).
pub fn client_error_text(status: &tonic::Status, deadline_passed: bool) -> String {
    if ETCD_ERROR_MESSAGES.contains(&status.message()) {
        return status.message().to_string();
    }
    if deadline_passed
        && matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        )
    {
        return DEADLINE_EXCEEDED.to_string();
    }
    go_status_text(status)
}

/// `host:port` of an endpoint (clientv3's `ParseEndpoint`), or the reason
/// steadctl cannot use it.
pub fn endpoint_host(endpoint: &str) -> Result<String, CtlError> {
    if let Some(host) = endpoint.strip_prefix("http://") {
        return Ok(host.trim_end_matches('/').to_string());
    }
    if endpoint.starts_with("https://") || endpoint.starts_with("unixs://") {
        return Err(CtlError::BadArgs(format!(
            "steadctl does not support TLS endpoints ({endpoint})"
        )));
    }
    if endpoint.contains("://") {
        return Err(CtlError::BadArgs(format!(
            "steadctl does not support endpoint {endpoint}"
        )));
    }
    Ok(endpoint.to_string())
}

/// A random version-4 UUID, as clientv3 names each client.
fn random_uuid() -> String {
    let state = std::collections::hash_map::RandomState::new();
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A connection to one cluster through a list of endpoints.
pub struct Client {
    hosts: Vec<String>,
    dial_timeout: Duration,
    client_name: String,
    channel: Option<Channel>,
    /// Warning lines logged so far, for the caller to print to stderr.
    warnings: Vec<String>,
}

impl Client {
    /// A client for `endpoints` (not yet connected).
    pub fn new(endpoints: &[String], dial_timeout: Duration) -> Result<Self, CtlError> {
        let hosts = endpoints
            .iter()
            .map(|e| endpoint_host(e))
            .collect::<Result<Vec<_>, _>>()?;
        if hosts.is_empty() {
            return Err(CtlError::BadConnection(
                "etcdclient: no available endpoints".to_string(),
            ));
        }
        Ok(Client {
            hosts,
            dial_timeout,
            client_name: format!("client-{}", random_uuid()),
            channel: None,
            warnings: Vec::new(),
        })
    }

    /// Takes the warning lines logged since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, target: &str, attempt: u32, error: &str) {
        self.warnings.push(format!(
            "{{\"level\":\"warn\",\"ts\":\"{}\",\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":\"retrying of unary invoker failed\",\"target\":{},\"attempt\":{attempt},\"error\":{}}}\n",
            gofmt::zap_timestamp_now(),
            zap_string(target),
            zap_string(error)
        ));
    }

    /// Connects to `host`, retrying until `deadline`. On failure, returns
    /// how the last attempt failed, in Go's words.
    async fn dial(&self, host: &str, deadline: Instant) -> Result<Channel, String> {
        let endpoint = Endpoint::from_shared(format!("http://{host}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(self.dial_timeout);
        let mut last_failure = "i/o timeout".to_string();
        loop {
            match tokio::time::timeout_at(deadline, endpoint.connect()).await {
                Ok(Ok(channel)) => return Ok(channel),
                Ok(Err(error)) => {
                    last_failure = dial_failure_text(&error);
                    let pause_until = (Instant::now() + REDIAL_PAUSE).min(deadline);
                    tokio::time::sleep_until(pause_until).await;
                    if Instant::now() >= deadline {
                        return Err(last_failure);
                    }
                }
                Err(_) => return Err(last_failure),
            }
        }
    }

    /// A channel to the cluster, or to `only` when given.
    async fn channel(&mut self, only: Option<&str>, deadline: Instant) -> Result<Channel, String> {
        if let Some(host) = only {
            return self.dial(host, deadline).await;
        }
        if let Some(channel) = &self.channel {
            return Ok(channel.clone());
        }
        loop {
            let mut failure = String::new();
            for host in self.hosts.clone() {
                let per_host = (Instant::now() + self.dial_timeout).min(deadline);
                match self.dial(&host, per_host).await {
                    Ok(channel) => {
                        self.channel = Some(channel.clone());
                        return Ok(channel);
                    }
                    Err(e) => failure = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(failure);
            }
        }
    }

    /// Runs one unary RPC with clientv3's logging, retry and error rules.
    async fn unary<T, F, Fut>(
        &mut self,
        only: Option<&str>,
        retry: Retry,
        deadline: Instant,
        mut call: F,
    ) -> Result<T, String>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        // clientv3 dials the cluster through its balancer, and a single
        // endpoint (maintenance calls) directly.
        let target = match only {
            Some(host) => format!("passthrough:///{host}"),
            None => format!("endpoint://{}/{}", self.client_name, self.hosts[0]),
        };
        let mut attempt = 0;
        loop {
            let channel = match self.channel(only, deadline).await {
                Ok(channel) => channel,
                Err(failure) => {
                    let text = match only {
                        Some(host) => format!(
                            "rpc error: code = DeadlineExceeded desc = latest balancer error: connection error: desc = \"transport: Error while dialing dial tcp {host}: {failure}\""
                        ),
                        None => NO_CONNECTION.to_string(),
                    };
                    self.warn(&target, attempt, &text);
                    return Err(DEADLINE_EXCEEDED.to_string());
                }
            };
            let status = match tokio::time::timeout_at(deadline, call(channel)).await {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => {
                    self.warn(
                        &target,
                        attempt,
                        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
                    );
                    return Err(DEADLINE_EXCEEDED.to_string());
                }
            };
            self.warn(&target, attempt, &go_status_text(&status));
            let passed = Instant::now() >= deadline;
            let transient = status.code() == tonic::Code::Unavailable
                && !ETCD_ERROR_MESSAGES.contains(&status.message());
            if transient && only.is_none() {
                // The connection is gone: dial again next time.
                self.channel = None;
            }
            let retry_allowed = retry == Retry::Repeatable
                && status.code() == tonic::Code::Unavailable
                && attempt + 1 < RETRY_ATTEMPTS_MAX;
            if !retry_allowed {
                return Err(client_error_text(&status, passed));
            }
            attempt += 1;
            let wake = Instant::now() + RETRY_BACKOFF;
            if wake >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(DEADLINE_EXCEEDED.to_string());
            }
            tokio::time::sleep_until(wake).await;
        }
    }

    pub async fn range(
        &mut self,
        request: RangeRequest,
        deadline: Instant,
    ) -> Result<RangeResponse, String> {
        self.unary(None, Retry::Repeatable, deadline, |channel| {
            let request = request.clone();
            async move { KvClient::new(channel).range(request).await }
        })
        .await
    }

    pub async fn put(
        &mut self,
        request: PutRequest,
        deadline: Instant,
    ) -> Result<PutResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| {
            let request = request.clone();
            async move { KvClient::new(channel).put(request).await }
        })
        .await
    }

    pub async fn delete(
        &mut self,
        request: DeleteRangeRequest,
        deadline: Instant,
    ) -> Result<DeleteRangeResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| {
            let request = request.clone();
            async move { KvClient::new(channel).delete_range(request).await }
        })
        .await
    }

    pub async fn txn(
        &mut self,
        request: TxnRequest,
        deadline: Instant,
    ) -> Result<TxnResponse, String> {
        // clientv3 retries a transaction only when it holds no writes.
        let read_only = request.success.iter().chain(&request.failure).all(|op| {
            matches!(
                op.request,
                Some(stead_proto::etcdserverpb::request_op::Request::RequestRange(_))
            )
        });
        let retry = if read_only {
            Retry::Repeatable
        } else {
            Retry::NonRepeatable
        };
        self.unary(None, retry, deadline, |channel| {
            let request = request.clone();
            async move { KvClient::new(channel).txn(request).await }
        })
        .await
    }

    pub async fn compact(
        &mut self,
        request: CompactionRequest,
        deadline: Instant,
    ) -> Result<CompactionResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| async move {
            KvClient::new(channel).compact(request).await
        })
        .await
    }

    pub async fn member_list(&mut self, deadline: Instant) -> Result<MemberListResponse, String> {
        self.unary(None, Retry::Repeatable, deadline, |channel| async move {
            ClusterClient::new(channel)
                .member_list(MemberListRequest::default())
                .await
        })
        .await
    }

    // clientv3's `retryClusterClient` retries only `MemberList`; changes to
    // the membership and `MoveLeader` are sent once.

    pub async fn member_add(
        &mut self,
        request: MemberAddRequest,
        deadline: Instant,
    ) -> Result<MemberAddResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| {
            let request = request.clone();
            async move { ClusterClient::new(channel).member_add(request).await }
        })
        .await
    }

    pub async fn member_remove(
        &mut self,
        id: u64,
        deadline: Instant,
    ) -> Result<MemberRemoveResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| async move {
            ClusterClient::new(channel)
                .member_remove(MemberRemoveRequest { id })
                .await
        })
        .await
    }

    pub async fn member_update(
        &mut self,
        request: MemberUpdateRequest,
        deadline: Instant,
    ) -> Result<MemberUpdateResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| {
            let request = request.clone();
            async move { ClusterClient::new(channel).member_update(request).await }
        })
        .await
    }

    pub async fn member_promote(
        &mut self,
        id: u64,
        deadline: Instant,
    ) -> Result<MemberPromoteResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| async move {
            ClusterClient::new(channel)
                .member_promote(MemberPromoteRequest { id })
                .await
        })
        .await
    }

    /// Asks the member this client is connected to (the leader, for it to
    /// succeed) to hand leadership to `target_id`.
    pub async fn move_leader(
        &mut self,
        target_id: u64,
        deadline: Instant,
    ) -> Result<MoveLeaderResponse, String> {
        self.unary(None, Retry::NonRepeatable, deadline, |channel| async move {
            MaintenanceClient::new(channel)
                .move_leader(MoveLeaderRequest { target_id })
                .await
        })
        .await
    }

    // clientv3's `retryLeaseClient` marks every unary lease RPC repeatable.

    pub async fn lease_grant(
        &mut self,
        request: LeaseGrantRequest,
        deadline: Instant,
    ) -> Result<LeaseGrantResponse, String> {
        self.unary(None, Retry::Repeatable, deadline, |channel| async move {
            LeaseClient::new(channel).lease_grant(request).await
        })
        .await
    }

    pub async fn lease_revoke(
        &mut self,
        request: LeaseRevokeRequest,
        deadline: Instant,
    ) -> Result<LeaseRevokeResponse, String> {
        self.unary(None, Retry::Repeatable, deadline, |channel| async move {
            LeaseClient::new(channel).lease_revoke(request).await
        })
        .await
    }

    pub async fn lease_time_to_live(
        &mut self,
        request: LeaseTimeToLiveRequest,
        deadline: Instant,
    ) -> Result<LeaseTimeToLiveResponse, String> {
        self.unary(None, Retry::Repeatable, deadline, |channel| async move {
            LeaseClient::new(channel).lease_time_to_live(request).await
        })
        .await
    }

    pub async fn lease_leases(&mut self, deadline: Instant) -> Result<LeaseLeasesResponse, String> {
        self.unary(None, Retry::Repeatable, deadline, |channel| async move {
            LeaseClient::new(channel)
                .lease_leases(LeaseLeasesRequest::default())
                .await
        })
        .await
    }

    /// Opens a LeaseKeepAlive stream (`etcdserverpb.Lease/LeaseKeepAlive`)
    /// carrying `requests`, dialling until `deadline`; with
    /// `require_leader`, the server is asked to fail the stream rather than
    /// serve it without a leader (clientv3 asks so for its keep-alive loop,
    /// not for a single keep-alive). As with [`Client::watch`], the server
    /// answers only after a request, so callers queue one first or keep
    /// sending while they wait. A failed dial is reported as `Unavailable`.
    pub async fn lease_keep_alive(
        &mut self,
        requests: ReceiverStream<LeaseKeepAliveRequest>,
        require_leader: bool,
        deadline: Instant,
    ) -> Result<tonic::Streaming<LeaseKeepAliveResponse>, tonic::Status> {
        let channel = self
            .channel(None, deadline)
            .await
            .map_err(tonic::Status::unavailable)?;
        let mut request = tonic::Request::new(requests);
        if require_leader {
            request.metadata_mut().insert(
                REQUIRE_LEADER_KEY,
                tonic::metadata::MetadataValue::from_static("true"),
            );
        }
        let result = LeaseClient::new(channel).lease_keep_alive(request).await;
        if result
            .as_ref()
            .is_err_and(|status| status.code() == tonic::Code::Unavailable)
        {
            // The connection may be gone: the next attempt dials afresh.
            self.channel = None;
        }
        result.map(tonic::Response::into_inner)
    }

    /// Opens the Watch stream (`etcdserverpb.Watch/Watch`) carrying
    /// `requests`, as clientv3 opens it for etcdctl: with the require-leader
    /// metadata and no deadline, dialling until an endpoint accepts (a
    /// watch waits for the cluster forever). Resolves once the server
    /// answers, which etcd does only after a request, so callers queue
    /// their first request before calling.
    pub async fn watch(
        &mut self,
        requests: ReceiverStream<WatchRequest>,
    ) -> Result<tonic::Streaming<WatchResponse>, tonic::Status> {
        let channel = loop {
            let deadline = Instant::now() + self.dial_timeout.max(REDIAL_PAUSE);
            match self.channel(None, deadline).await {
                Ok(channel) => break channel,
                Err(_) => tokio::time::sleep(REDIAL_PAUSE).await,
            }
        };
        let mut request = tonic::Request::new(requests);
        request.metadata_mut().insert(
            REQUIRE_LEADER_KEY,
            tonic::metadata::MetadataValue::from_static("true"),
        );
        let result = WatchClient::new(channel).watch(request).await;
        if result.is_err() {
            // Whatever failed, the next attempt dials afresh.
            self.channel = None;
        }
        result.map(tonic::Response::into_inner)
    }

    /// Forgets the connection, so that the next call dials again (after a
    /// stream broke with the connection under it).
    pub fn reconnect(&mut self) {
        self.channel = None;
    }

    /// The status of one endpoint (dialled directly, as clientv3 does).
    pub async fn status(
        &mut self,
        endpoint: &str,
        deadline: Instant,
    ) -> Result<StatusResponse, String> {
        let host = endpoint_host(endpoint).map_err(|e| e.to_string())?;
        self.unary(
            Some(&host),
            Retry::Repeatable,
            deadline,
            |channel| async move {
                MaintenanceClient::new(channel)
                    .status(StatusRequest::default())
                    .await
            },
        )
        .await
    }
}

/// Go's words for a failed TCP connect (`connect: connection refused`).
fn dial_failure_text(error: &tonic::transport::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
                std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
                _ => format!("connect: {io}"),
            };
        }
        source = current.source();
    }
    "i/o timeout".to_string()
}

/// A JSON string as zap's encoder writes it (no HTML escaping).
fn zap_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_worded_like_clientv3() {
        let compacted =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
        assert_eq!(
            client_error_text(&compacted, false),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(
            go_status_text(&compacted),
            "rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision has been compacted"
        );
        let other = tonic::Status::internal("boom");
        assert_eq!(
            client_error_text(&other, false),
            "rpc error: code = Internal desc = boom"
        );
        let late = tonic::Status::deadline_exceeded("x");
        assert_eq!(client_error_text(&late, true), DEADLINE_EXCEEDED);
    }

    #[test]
    fn endpoints_accept_plain_and_http() {
        assert_eq!(endpoint_host("127.0.0.1:2379").unwrap(), "127.0.0.1:2379");
        assert_eq!(
            endpoint_host("http://127.0.0.1:2379").unwrap(),
            "127.0.0.1:2379"
        );
        assert!(endpoint_host("https://127.0.0.1:2379").is_err());
    }

    #[test]
    fn uuids_look_like_v4() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, random_uuid());
    }
}
