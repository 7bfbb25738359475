//! The generated gRPC code uses etcd's method paths (`/package.Service/Method`)
//! and etcd's streaming shapes.

use stead_proto::{etcdserverpb, v3electionpb, v3lockpb};
use tonic::server::NamedService;

const ETCDSERVERPB: &str = include_str!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
const V3LOCKPB: &str = include_str!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
const V3ELECTIONPB: &str = include_str!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));

/// Every etcd 3.5 method, by generated file.
const METHODS: &[(&str, &[&str])] = &[
    (
        ETCDSERVERPB,
        &[
            "/etcdserverpb.KV/Range",
            "/etcdserverpb.KV/Put",
            "/etcdserverpb.KV/DeleteRange",
            "/etcdserverpb.KV/Txn",
            "/etcdserverpb.KV/Compact",
            "/etcdserverpb.Watch/Watch",
            "/etcdserverpb.Lease/LeaseGrant",
            "/etcdserverpb.Lease/LeaseRevoke",
            "/etcdserverpb.Lease/LeaseKeepAlive",
            "/etcdserverpb.Lease/LeaseTimeToLive",
            "/etcdserverpb.Lease/LeaseLeases",
            "/etcdserverpb.Cluster/MemberAdd",
            "/etcdserverpb.Cluster/MemberRemove",
            "/etcdserverpb.Cluster/MemberUpdate",
            "/etcdserverpb.Cluster/MemberList",
            "/etcdserverpb.Cluster/MemberPromote",
            "/etcdserverpb.Maintenance/Alarm",
            "/etcdserverpb.Maintenance/Status",
            "/etcdserverpb.Maintenance/Defragment",
            "/etcdserverpb.Maintenance/Hash",
            "/etcdserverpb.Maintenance/HashKV",
            "/etcdserverpb.Maintenance/Snapshot",
            "/etcdserverpb.Maintenance/MoveLeader",
            "/etcdserverpb.Maintenance/Downgrade",
            "/etcdserverpb.Auth/AuthEnable",
            "/etcdserverpb.Auth/AuthDisable",
            "/etcdserverpb.Auth/AuthStatus",
            "/etcdserverpb.Auth/Authenticate",
            "/etcdserverpb.Auth/UserAdd",
            "/etcdserverpb.Auth/UserGet",
            "/etcdserverpb.Auth/UserList",
            "/etcdserverpb.Auth/UserDelete",
            "/etcdserverpb.Auth/UserChangePassword",
            "/etcdserverpb.Auth/UserGrantRole",
            "/etcdserverpb.Auth/UserRevokeRole",
            "/etcdserverpb.Auth/RoleAdd",
            "/etcdserverpb.Auth/RoleGet",
            "/etcdserverpb.Auth/RoleList",
            "/etcdserverpb.Auth/RoleDelete",
            "/etcdserverpb.Auth/RoleGrantPermission",
            "/etcdserverpb.Auth/RoleRevokePermission",
        ],
    ),
    (V3LOCKPB, &["/v3lockpb.Lock/Lock", "/v3lockpb.Lock/Unlock"]),
    (
        V3ELECTIONPB,
        &[
            "/v3electionpb.Election/Campaign",
            "/v3electionpb.Election/Proclaim",
            "/v3electionpb.Election/Leader",
            "/v3electionpb.Election/Observe",
            "/v3electionpb.Election/Resign",
        ],
    ),
];

/// The generated code with all whitespace removed, so that checks do not
/// depend on how the code generator wraps lines.
fn squash(generated: &str) -> String {
    generated.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn server_routes_and_client_calls_use_etcd_paths() {
    let mut total = 0;
    for (generated, paths) in METHODS {
        let generated = squash(generated);
        for path in *paths {
            // The server's router matches on the path...
            let route = format!("\"{path}\"=>{{");
            assert!(generated.contains(&route), "server does not route {path}");
            // ...and the client sends it.
            let call = format!("PathAndQuery::from_static(\"{path}\"");
            assert!(generated.contains(&call), "client does not call {path}");
            total += 1;
        }
        // No method beyond etcd's: one route arm / one client call per path.
        let arms = generated.matches("\"=>{").count();
        assert_eq!(arms, paths.len(), "unexpected extra routes");
        let calls = generated.matches("PathAndQuery::from_static(").count();
        assert_eq!(calls, paths.len(), "unexpected extra client calls");
    }
    assert_eq!(total, 48);
}

#[test]
fn service_names_match_etcd() {
    assert_eq!(etcdserverpb::kv_server::SERVICE_NAME, "etcdserverpb.KV");
    assert_eq!(
        etcdserverpb::watch_server::SERVICE_NAME,
        "etcdserverpb.Watch"
    );
    assert_eq!(
        etcdserverpb::lease_server::SERVICE_NAME,
        "etcdserverpb.Lease"
    );
    assert_eq!(
        etcdserverpb::cluster_server::SERVICE_NAME,
        "etcdserverpb.Cluster"
    );
    assert_eq!(
        etcdserverpb::maintenance_server::SERVICE_NAME,
        "etcdserverpb.Maintenance"
    );
    assert_eq!(etcdserverpb::auth_server::SERVICE_NAME, "etcdserverpb.Auth");
    assert_eq!(v3lockpb::lock_server::SERVICE_NAME, "v3lockpb.Lock");
    assert_eq!(
        v3electionpb::election_server::SERVICE_NAME,
        "v3electionpb.Election"
    );
    assert_eq!(
        <etcdserverpb::kv_server::KvServer<()> as NamedService>::NAME,
        "etcdserverpb.KV"
    );
}

#[test]
fn streaming_shapes_match_etcd() {
    let etcd = squash(ETCDSERVERPB);
    let election = squash(V3ELECTIONPB);
    let lock = squash(V3LOCKPB);
    // Client streaming: the server trait method takes a `Streaming<Request>`.
    // (Each appears twice: in the trait and in the router.)
    for req in ["WatchRequest", "LeaseKeepAliveRequest"] {
        let arg = format!("tonic::Request<tonic::Streaming<super::{req}>>");
        assert!(etcd.contains(&arg), "{req} is not client-streamed");
    }
    assert_eq!(etcd.matches("tonic::Streaming<super::").count(), 4);
    assert_eq!(election.matches("tonic::Streaming<super::").count(), 0);
    assert_eq!(lock.matches("tonic::Streaming<super::").count(), 0);
    // Server streaming: the server trait has an associated response stream.
    for stream in ["WatchStream", "LeaseKeepAliveStream", "SnapshotStream"] {
        let ty = format!("type{stream}:tonic::codegen");
        assert!(etcd.contains(&ty), "{stream} missing");
    }
    assert_eq!(etcd.matches("Stream:tonic::codegen").count(), 3);
    assert!(election.contains("typeObserveStream:tonic::codegen"));
    assert_eq!(election.matches("Stream:tonic::codegen").count(), 1);
    assert_eq!(lock.matches("Stream:tonic::codegen").count(), 0);
}
