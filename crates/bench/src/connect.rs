//! gRPC connections, and which client uses which.
//!
//! Owns parsing `--endpoints` and opening `--conns` HTTP/2 connections
//! (connection `i` goes to endpoint `i % endpoints`), eagerly and within
//! `--dial-timeout`, so a dead endpoint fails the run before measuring.
//! Clients share connections round-robin, as in etcd's tool: client `i`
//! uses connection `i % conns`. Also the one place that turns a gRPC status
//! into the message errors are counted by (grpc-go's wording).
//!
//! Does not own: TLS or authentication (not supported: `https://`
//! endpoints are refused).

use std::time::Duration;

use stead_proto::etcdserverpb::kv_client::KvClient;
use stead_proto::etcdserverpb::lease_client::LeaseClient;
use stead_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use stead_proto::etcdserverpb::watch_client::WatchClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::BenchError;

/// Largest response accepted (big ranges); etcd's own limit is in the GiB.
const RESPONSE_BYTES_MAX: usize = 1 << 30;

/// Normalises `--endpoints` entries to `http://host:port` URIs.
pub fn parse_endpoints(entries: &[String]) -> Result<Vec<String>, BenchError> {
    let mut endpoints = Vec::new();
    for entry in entries {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let invalid = |reason: &str| BenchError::Endpoint {
            endpoint: entry.to_owned(),
            reason: reason.to_owned(),
        };
        let uri = if let Some(rest) = entry.strip_prefix("http://") {
            if rest.is_empty() {
                return Err(invalid("no host:port after http://"));
            }
            entry.to_owned()
        } else if entry.starts_with("https://") || entry.starts_with("unixs://") {
            return Err(invalid("TLS endpoints are not supported"));
        } else if entry.contains("://") {
            return Err(invalid("only http:// endpoints are supported"));
        } else {
            format!("http://{entry}")
        };
        Endpoint::from_shared(uri.clone()).map_err(|error| invalid(&error.to_string()))?;
        endpoints.push(uri);
    }
    if endpoints.is_empty() {
        return Err(BenchError::InvalidArgument("--endpoints is empty".into()));
    }
    Ok(endpoints)
}

/// Open gRPC connections to the cluster.
#[derive(Debug, Clone)]
pub struct Connections {
    channels: Vec<Channel>,
}

impl Connections {
    /// Opens `conns` connections spread over `endpoints` (already parsed).
    /// A zero `dial_timeout` waits as long as the OS does.
    pub async fn open(
        endpoints: &[String],
        conns: usize,
        dial_timeout: Duration,
    ) -> Result<Connections, BenchError> {
        debug_assert!(!endpoints.is_empty() && conns > 0);
        let mut pending = tokio::task::JoinSet::new();
        for index in 0..conns {
            let uri = endpoints[index % endpoints.len()].clone();
            pending.spawn(async move { (index, connect(uri, dial_timeout).await) });
        }
        let mut channels: Vec<Option<Channel>> = vec![None; conns];
        while let Some(joined) = pending.join_next().await {
            let (index, channel) = joined?;
            channels[index] = Some(channel?);
        }
        Ok(Connections {
            channels: channels.into_iter().flatten().collect(),
        })
    }

    /// The connection of client `client` (round-robin).
    pub fn channel(&self, client: usize) -> Channel {
        self.channels[client % self.channels.len()].clone()
    }

    pub fn kv(&self, client: usize) -> KvClient<Channel> {
        KvClient::new(self.channel(client)).max_decoding_message_size(RESPONSE_BYTES_MAX)
    }

    pub fn watch(&self, client: usize) -> WatchClient<Channel> {
        WatchClient::new(self.channel(client)).max_decoding_message_size(RESPONSE_BYTES_MAX)
    }

    pub fn lease(&self, client: usize) -> LeaseClient<Channel> {
        LeaseClient::new(self.channel(client))
    }

    pub fn maintenance(&self, client: usize) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.channel(client))
    }
}

async fn connect(uri: String, dial_timeout: Duration) -> Result<Channel, BenchError> {
    let mut endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|error| BenchError::Endpoint {
            endpoint: uri.clone(),
            reason: error.to_string(),
        })?
        .tcp_nodelay(true);
    if !dial_timeout.is_zero() {
        endpoint = endpoint.connect_timeout(dial_timeout);
    }
    let connecting = endpoint.connect();
    let connected = if dial_timeout.is_zero() {
        connecting.await
    } else {
        tokio::time::timeout(dial_timeout, connecting)
            .await
            .map_err(|_| BenchError::DialTimeout {
                endpoint: uri.clone(),
                timeout: dial_timeout,
            })?
    };
    connected.map_err(|error| BenchError::Connect {
        endpoint: uri,
        message: error_chain(&error),
    })
}

/// An error and its sources, joined (tonic's top-level message is vague).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Layers often repeat their cause's words; keep each once.
        let cause_message = cause.to_string();
        if !message.contains(&cause_message) {
            message.push_str(": ");
            message.push_str(&cause_message);
        }
        source = cause.source();
    }
    message
}

/// The message a failed RPC is counted under, in grpc-go's words (the
/// wording etcd's tool reports).
pub fn rpc_error(status: &tonic::Status) -> String {
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&str]) -> Result<Vec<String>, BenchError> {
        parse_endpoints(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn endpoints_accept_host_port_and_http_urls() {
        assert_eq!(
            parse(&["127.0.0.1:2379", " http://10.0.0.1:2379 ", ""]).unwrap(),
            ["http://127.0.0.1:2379", "http://10.0.0.1:2379"]
        );
        assert_eq!(parse(&["localhost:1"]).unwrap(), ["http://localhost:1"]);
    }

    #[test]
    fn endpoints_refuse_tls_other_schemes_and_nothing() {
        for bad in ["https://127.0.0.1:2379", "unix://sock", "http://", "a b:1"] {
            assert!(parse(&[bad]).is_err(), "{bad} should be refused");
        }
        assert!(matches!(parse(&[""]), Err(BenchError::InvalidArgument(_))));
    }

    #[test]
    fn rpc_errors_read_like_grpc_go() {
        let status = tonic::Status::unavailable("etcdserver: request timed out");
        assert_eq!(
            rpc_error(&status),
            "rpc error: code = Unavailable desc = etcdserver: request timed out"
        );
    }

    #[tokio::test]
    async fn an_endpoint_nobody_listens_on_fails_the_dial() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let endpoints = parse(&[&format!("127.0.0.1:{port}")]).unwrap();
        let error = Connections::open(&endpoints, 2, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                BenchError::Connect { .. } | BenchError::DialTimeout { .. }
            ),
            "{error}"
        );
    }
}
