//! Where tonic and grpc-go (etcd's gRPC) answer the same condition differently, this makes
//! stead answer as etcd does.
//!
//! One case today: a request message over the server's limit. grpc-go answers
//! `ResourceExhausted` "grpc: received message larger than max (N vs. M)"; tonic answers
//! `OutOfRange` with its own text. etcd's clients and tests expect the former. The wrapper
//! rewrites exactly that status in a trailers-only response (how tonic answers a request it
//! cannot decode) and leaves everything else alone.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;

/// A gRPC service answering as grpc-go would where the two differ.
#[derive(Clone, Debug)]
pub struct EtcdCompatible<S>(pub S);

impl<S: NamedService> NamedService for EtcdCompatible<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for EtcdCompatible<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            rewrite_oversized(&mut response);
            Ok(response)
        })
    }
}

/// tonic's status for a request over `max_decoding_message_size`.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: found ";
const CODE_OUT_OF_RANGE: &str = "11";
const CODE_RESOURCE_EXHAUSTED: &str = "8";

fn rewrite_oversized(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    if headers.get("grpc-status").and_then(|v| v.to_str().ok()) != Some(CODE_OUT_OF_RANGE) {
        return;
    }
    let Some(message) = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
    else {
        return;
    };
    let Some((found, limit)) = sizes(&message) else {
        return;
    };
    let grpc_go = format!("grpc: received message larger than max ({found} vs. {limit})");
    headers.insert(
        "grpc-status",
        HeaderValue::from_static(CODE_RESOURCE_EXHAUSTED),
    );
    if let Ok(value) = HeaderValue::from_str(&percent_encode(&grpc_go)) {
        headers.insert("grpc-message", value);
    }
}

/// The two sizes of tonic's message: "…found N bytes, the limit is: M bytes".
fn sizes(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix(TONIC_TOO_LARGE)?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

/// gRPC's percent-encoding of `grpc-message` (RFC 3986 unreserved and a few more stay).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            decoded.push(byte);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oversized_status_becomes_grpc_gos() {
        let tonic_status = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 3145744 bytes, the limit is: 2097152 bytes",
        );
        let mut response = tonic_status.into_http::<Body>();
        rewrite_oversized(&mut response);
        let status = tonic::Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "grpc: received message larger than max (3145744 vs. 2097152)"
        );
    }

    #[test]
    fn other_statuses_are_left_alone() {
        for original in [
            tonic::Status::out_of_range("etcdserver: mvcc: required revision has been compacted"),
            tonic::Status::invalid_argument("etcdserver: request is too large"),
        ] {
            let mut response = original.clone().into_http::<Body>();
            rewrite_oversized(&mut response);
            let status = tonic::Status::from_header_map(response.headers()).expect("a status");
            assert_eq!(status.code(), original.code());
            assert_eq!(status.message(), original.message());
        }
    }
}
