//! The `simple` format (etcdctl's `simplePrinter`): keys and values as raw
//! bytes one per line (or `\x..` escaped with `--hex`), `OK` for puts, the
//! deleted count for deletes, `SUCCESS`/`FAILURE` for transactions,
//! comma-separated rows for member and endpoint lists, a sentence per lease
//! response, membership change and leader transfer. Endpoint health goes
//! to standard error, as in etcdctl.

use stead_proto::etcdserverpb::{
    DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseTimeToLiveResponse, MemberAddResponse, MemberListResponse, PutResponse, RangeResponse,
    ResponseHeader, TxnResponse, response_op::Response,
};
use stead_proto::mvccpb::KeyValue;

use super::{
    ClientWatchResponse, EndpointHealth, EndpointStatus, event_type_name, lease_id_hex,
    member_rows, status_rows,
};
use crate::output::Output;

/// etcdctl's `addHexPrefix(hex.EncodeToString(b))`: `\x66\x6f\x6f`.
pub fn hex_escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4);
    for b in bytes {
        out.push_str(&format!("\\x{b:02x}"));
    }
    out
}

fn print_kv(out: &mut Output<'_>, hex: bool, value_only: bool, kv: &KeyValue) {
    if !value_only {
        if hex {
            out.out(hex_escape(&kv.key));
        } else {
            out.out(&kv.key);
        }
        out.out("\n");
    }
    if hex {
        out.out(hex_escape(&kv.value));
    } else {
        out.out(&kv.value);
    }
    out.out("\n");
}

pub fn get(out: &mut Output<'_>, hex: bool, value_only: bool, resp: &RangeResponse) {
    for kv in &resp.kvs {
        print_kv(out, hex, value_only, kv);
    }
}

pub fn put(out: &mut Output<'_>, hex: bool, value_only: bool, resp: &PutResponse) {
    out.out("OK\n");
    if let Some(prev) = &resp.prev_kv {
        print_kv(out, hex, value_only, prev);
    }
}

pub fn del(out: &mut Output<'_>, hex: bool, value_only: bool, resp: &DeleteRangeResponse) {
    out.out(format!("{}\n", resp.deleted));
    for kv in &resp.prev_kvs {
        print_kv(out, hex, value_only, kv);
    }
}

pub fn txn(out: &mut Output<'_>, hex: bool, value_only: bool, resp: &TxnResponse) {
    out.out(if resp.succeeded {
        "SUCCESS\n"
    } else {
        "FAILURE\n"
    });
    for op in &resp.responses {
        out.out("\n");
        match &op.response {
            Some(Response::ResponseDeleteRange(r)) => del(out, hex, value_only, r),
            Some(Response::ResponsePut(r)) => put(out, hex, value_only, r),
            Some(Response::ResponseRange(r)) => get(out, hex, value_only, r),
            // etcdctl prints Go's %+v of the value here; nested
            // transactions are never produced by etcdctl's own txn syntax.
            Some(Response::ResponseTxn(_)) | None => out.out("unexpected response\n"),
        }
    }
}

/// Each event: its type, the previous key-value when asked for, the
/// key-value.
pub fn watch(out: &mut Output<'_>, hex: bool, value_only: bool, resp: &ClientWatchResponse) {
    for event in resp.events() {
        out.out(event_type_name(event.r#type) + "\n");
        if let Some(prev) = &event.prev_kv {
            print_kv(out, hex, value_only, prev);
        }
        print_kv(out, hex, value_only, &event.kv.clone().unwrap_or_default());
    }
}

pub fn member_list(out: &mut Output<'_>, resp: &MemberListResponse) {
    for row in member_rows(resp) {
        out.out(row.join(", ") + "\n");
    }
}

/// Go's `%16x`: at least sixteen hex digits, padded with spaces.
fn padded_hex(id: u64) -> String {
    format!("{id:16x}")
}

pub fn member_add(out: &mut Output<'_>, resp: &MemberAddResponse) {
    let id = resp.member.as_ref().map_or(0, |m| m.id);
    let cluster_id = resp.header.as_ref().map_or(0, |h| h.cluster_id);
    out.out(format!(
        "Member {} added to cluster {}\n",
        padded_hex(id),
        padded_hex(cluster_id)
    ));
}

/// `Member ... removed from|updated in|promoted in cluster ...`.
pub fn member_change(out: &mut Output<'_>, id: u64, what: &str, header: Option<&ResponseHeader>) {
    let cluster_id = header.map_or(0, |h| h.cluster_id);
    out.out(format!(
        "Member {} {what} cluster {}\n",
        padded_hex(id),
        padded_hex(cluster_id)
    ));
}

/// Member IDs as etcd's `types.ID` prints them (plain hex).
pub fn move_leader(out: &mut Output<'_>, leader: u64, target: u64) {
    out.out(format!(
        "Leadership transferred from {leader:x} to {target:x}\n"
    ));
}

pub fn endpoint_health(out: &mut Output<'_>, list: &[EndpointHealth]) {
    for h in list {
        if h.error.is_empty() {
            out.err(format!(
                "{} is healthy: successfully committed proposal: took = {}\n",
                h.endpoint, h.took
            ));
        } else {
            out.err(format!(
                "{} is unhealthy: failed to commit proposal: {}\n",
                h.endpoint, h.error
            ));
        }
    }
}

pub fn endpoint_status(out: &mut Output<'_>, list: &[EndpointStatus]) {
    for row in status_rows(list) {
        out.out(row.join(", ") + "\n");
    }
}

pub fn lease_grant(out: &mut Output<'_>, resp: &LeaseGrantResponse) {
    out.out(format!(
        "lease {} granted with TTL({}s)\n",
        lease_id_hex(resp.id),
        resp.ttl
    ));
}

/// etcdctl names the lease it was asked to revoke (the response has no ID).
pub fn lease_revoke(out: &mut Output<'_>, id: i64) {
    out.out(format!("lease {} revoked\n", lease_id_hex(id)));
}

pub fn lease_keep_alive(out: &mut Output<'_>, resp: &LeaseKeepAliveResponse) {
    out.out(format!(
        "lease {} keepalived with TTL({})\n",
        lease_id_hex(resp.id),
        resp.ttl
    ));
}

/// The lease's granted and remaining time, and with `keys` its keys as Go
/// prints a `[]string` (`[k1 k2]`, raw bytes).
pub fn lease_time_to_live(out: &mut Output<'_>, resp: &LeaseTimeToLiveResponse, keys: bool) {
    if resp.granted_ttl == 0 && resp.ttl == -1 {
        out.out(format!("lease {} already expired\n", lease_id_hex(resp.id)));
        return;
    }
    let mut text = format!(
        "lease {} granted with TTL({}s), remaining({}s)",
        lease_id_hex(resp.id),
        resp.granted_ttl,
        resp.ttl
    )
    .into_bytes();
    if keys {
        text.extend_from_slice(b", attached keys([");
        for (i, key) in resp.keys.iter().enumerate() {
            if i > 0 {
                text.push(b' ');
            }
            text.extend_from_slice(key);
        }
        text.extend_from_slice(b"])");
    }
    text.push(b'\n');
    out.out(text);
}

pub fn lease_leases(out: &mut Output<'_>, resp: &LeaseLeasesResponse) {
    out.out(format!("found {} leases\n", resp.leases.len()));
    for lease in &resp.leases {
        out.out(lease_id_hex(lease.id) + "\n");
    }
}
