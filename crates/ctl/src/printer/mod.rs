//! The output formats of `-w/--write-out`: `simple`, `json`, `fields` and
//! `table`, each reproducing etcdctl 3.4's printer of the same name byte for
//! byte. This module owns the choice of printer and the rows shared by the
//! simple and table printers; each submodule owns one format.
//!
//! Lease responses print through the same formats (`lease grant`, `revoke`,
//! `timetolive`, `list` and `keep-alive`); `table` has no form for them.
//! Changes to the membership (`member add|remove|update|promote`) and
//! `move-leader` print in `simple` and `json` only; `fields` and `table`
//! refuse them, except `member promote`, which makes etcdctl 3.4 crash in
//! every format but `simple` (see [`Printer::member_promote`]).
//!
//! Printers only format responses; they never talk to the server. A format
//! that cannot show a response (`table` for key-value responses) fails with
//! etcdctl's "... not supported as output format" error, after the request
//! has been made, as in etcdctl.

mod fields;
mod json;
mod simple;
mod table;

use stead_proto::etcdserverpb::{
    DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseTimeToLiveResponse, MemberAddResponse, MemberListResponse,
    MemberPromoteResponse, MemberRemoveResponse, MemberUpdateResponse, MoveLeaderResponse,
    PutResponse, RangeResponse, ResponseHeader, StatusResponse, TxnResponse,
};
use stead_proto::mvccpb::Event;

use crate::error::CtlError;
use crate::gofmt;
use crate::output::Output;

/// One endpoint's health, as `endpoint health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub health: bool,
    /// Go's `Duration.String` of the probe's time.
    pub took: String,
    /// Empty when healthy.
    pub error: String,
}

/// One endpoint's status, as `endpoint status` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointStatus {
    pub endpoint: String,
    pub status: StatusResponse,
}

/// A watch response as etcd's client library hands it to etcdctl
/// (clientv3's `WatchResponse`), which is what etcdctl prints: the server's
/// response without its watch ID, or one the library makes up itself when
/// a watch fails.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientWatchResponse {
    pub header: ResponseHeader,
    /// `None` is Go's nil slice (`null` in JSON), which only responses the
    /// library makes up have; a server response's events are a list, even
    /// an empty one.
    pub events: Option<Vec<Event>>,
    pub compact_revision: i64,
    pub canceled: bool,
    pub created: bool,
    /// clientv3's `Err()`, worded as it words it; `None` for a healthy
    /// response.
    pub error: Option<String>,
}

impl ClientWatchResponse {
    /// clientv3's `IsProgressNotify`.
    pub fn is_progress_notify(&self) -> bool {
        self.events.as_ref().is_none_or(Vec::is_empty)
            && !self.canceled
            && !self.created
            && self.compact_revision == 0
            && self.header.revision != 0
    }

    /// The events, none for a nil list.
    pub fn events(&self) -> &[Event] {
        self.events.as_deref().unwrap_or_default()
    }
}

/// Go's `String()` of an `mvccpb.Event_EventType`: the name, or the number
/// for a value etcd does not define.
pub fn event_type_name(event_type: i32) -> String {
    match event_type {
        0 => "PUT".to_string(),
        1 => "DELETE".to_string(),
        other => other.to_string(),
    }
}

/// Go's `%016x` of a lease ID (an `int64`): sixteen hex digits, or a
/// minus sign and fifteen for a negative ID (`-000000000000001`).
pub fn lease_id_hex(id: i64) -> String {
    if id < 0 {
        format!("-{:015x}", id.unsigned_abs())
    } else {
        format!("{id:016x}")
    }
}

/// What the Go runtime prints when etcdctl 3.4.23 (Debian's build) calls
/// a method of a nil printer (`member promote -w json|fields|table`), up
/// to the goroutine trace.
const NIL_PRINTER_PANIC: &str = "runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x78 pc=0xbab2ee]";

/// The selected output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printer {
    Simple { hex: bool, value_only: bool },
    Json,
    Fields,
    Table,
}

impl Printer {
    /// etcdctl's `NewPrinter`; `None` for a format it does not know (the
    /// caller reports "unsupported output format").
    pub fn from_name(name: &str, hex: bool) -> Option<Result<Printer, CtlError>> {
        match name {
            "simple" => Some(Ok(Printer::Simple {
                hex,
                value_only: false,
            })),
            "json" => Some(Ok(Printer::Json)),
            "fields" => Some(Ok(Printer::Fields)),
            "table" => Some(Ok(Printer::Table)),
            "protobuf" => Some(Err(CtlError::BadFeature(
                "protobuf output format is not supported by steadctl".to_string(),
            ))),
            _ => None,
        }
    }

    fn unsupported(&self) -> CtlError {
        let name = match self {
            Printer::Simple { .. } => "simple",
            Printer::Json => "json",
            Printer::Fields => "fields",
            Printer::Table => "table",
        };
        CtlError::BadFeature(format!("{name} not supported as output format"))
    }

    pub fn get(&self, out: &mut Output<'_>, resp: &RangeResponse) -> Result<(), CtlError> {
        match *self {
            Printer::Simple { hex, value_only } => simple::get(out, hex, value_only, resp),
            Printer::Json => out.out(json::range(resp) + "\n"),
            Printer::Fields => fields::get(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    pub fn put(&self, out: &mut Output<'_>, resp: &PutResponse) -> Result<(), CtlError> {
        match *self {
            Printer::Simple { hex, value_only } => simple::put(out, hex, value_only, resp),
            Printer::Json => out.out(json::put(resp) + "\n"),
            Printer::Fields => fields::put(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    pub fn del(&self, out: &mut Output<'_>, resp: &DeleteRangeResponse) -> Result<(), CtlError> {
        match *self {
            Printer::Simple { hex, value_only } => simple::del(out, hex, value_only, resp),
            Printer::Json => out.out(json::delete(resp) + "\n"),
            Printer::Fields => fields::del(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    pub fn txn(&self, out: &mut Output<'_>, resp: &TxnResponse) -> Result<(), CtlError> {
        match *self {
            Printer::Simple { hex, value_only } => simple::txn(out, hex, value_only, resp),
            Printer::Json => out.out(json::txn(resp) + "\n"),
            Printer::Fields => fields::txn(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// One watch response (etcdctl's `display.Watch`).
    pub fn watch(&self, out: &mut Output<'_>, resp: &ClientWatchResponse) -> Result<(), CtlError> {
        match *self {
            Printer::Simple { hex, value_only } => simple::watch(out, hex, value_only, resp),
            Printer::Json => out.out(json::watch(resp) + "\n"),
            Printer::Fields => fields::watch(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease grant` (etcdctl's `display.Grant`).
    pub fn lease_grant(
        &self,
        out: &mut Output<'_>,
        resp: &LeaseGrantResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => simple::lease_grant(out, resp),
            Printer::Json => out.out(json::lease_grant(resp) + "\n"),
            Printer::Fields => fields::lease_grant(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease revoke` of lease `id` (etcdctl's `display.Revoke`).
    pub fn lease_revoke(
        &self,
        out: &mut Output<'_>,
        id: i64,
        resp: &LeaseRevokeResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => simple::lease_revoke(out, id),
            Printer::Json => out.out(json::lease_revoke(resp) + "\n"),
            Printer::Fields => fields::lease_revoke(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// One keep-alive response (etcdctl's `display.KeepAlive`).
    pub fn lease_keep_alive(
        &self,
        out: &mut Output<'_>,
        resp: &LeaseKeepAliveResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => simple::lease_keep_alive(out, resp),
            Printer::Json => out.out(json::lease_keep_alive(resp) + "\n"),
            Printer::Fields => fields::lease_keep_alive(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease timetolive`, with the attached keys when `keys` was asked for
    /// (etcdctl's `display.TimeToLive`).
    pub fn lease_time_to_live(
        &self,
        out: &mut Output<'_>,
        resp: &LeaseTimeToLiveResponse,
        keys: bool,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => simple::lease_time_to_live(out, resp, keys),
            Printer::Json => out.out(json::lease_time_to_live(resp) + "\n"),
            Printer::Fields => fields::lease_time_to_live(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease list` (etcdctl's `display.Leases`).
    pub fn lease_leases(
        &self,
        out: &mut Output<'_>,
        resp: &LeaseLeasesResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => simple::lease_leases(out, resp),
            Printer::Json => out.out(json::lease_leases(resp) + "\n"),
            Printer::Fields => fields::lease_leases(out, resp),
            Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `member add` (etcdctl's `display.MemberAdd`; the simple format's
    /// `ETCD_*` lines are the command's, not the printer's).
    pub fn member_add(
        &self,
        out: &mut Output<'_>,
        resp: &MemberAddResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => simple::member_add(out, resp),
            Printer::Json => out.out(json::member_add(resp) + "\n"),
            Printer::Fields | Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `member remove` of member `id` (etcdctl's `display.MemberRemove`).
    pub fn member_remove(
        &self,
        out: &mut Output<'_>,
        id: u64,
        resp: &MemberRemoveResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => {
                simple::member_change(out, id, "removed from", resp.header.as_ref());
            }
            Printer::Json => out.out(json::members_response(&resp.header, &resp.members) + "\n"),
            Printer::Fields | Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `member update` of member `id` (etcdctl's `display.MemberUpdate`).
    pub fn member_update(
        &self,
        out: &mut Output<'_>,
        id: u64,
        resp: &MemberUpdateResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => {
                simple::member_change(out, id, "updated in", resp.header.as_ref());
            }
            Printer::Json => out.out(json::members_response(&resp.header, &resp.members) + "\n"),
            Printer::Fields | Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `member promote` of member `id` (etcdctl's `display.MemberPromote`).
    ///
    /// etcdctl 3.4's printers other than `simple` have no `MemberPromote` of
    /// their own: the call reaches a nil interface and the Go runtime
    /// panics (after the member was promoted). steadctl prints the same
    /// first lines and exits with the same status.
    pub fn member_promote(
        &self,
        out: &mut Output<'_>,
        id: u64,
        resp: &MemberPromoteResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => {
                simple::member_change(out, id, "promoted in", resp.header.as_ref());
                Ok(())
            }
            Printer::Json | Printer::Fields | Printer::Table => {
                Err(CtlError::Panic(NIL_PRINTER_PANIC.to_string()))
            }
        }
    }

    /// `move-leader` from member `leader` to member `target` (etcdctl's
    /// `display.MoveLeader`).
    pub fn move_leader(
        &self,
        out: &mut Output<'_>,
        leader: u64,
        target: u64,
        resp: &MoveLeaderResponse,
    ) -> Result<(), CtlError> {
        match self {
            Printer::Simple { .. } => simple::move_leader(out, leader, target),
            Printer::Json => out.out(json::move_leader(resp) + "\n"),
            Printer::Fields | Printer::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    pub fn member_list(&self, out: &mut Output<'_>, resp: &MemberListResponse) {
        match self {
            Printer::Simple { .. } => simple::member_list(out, resp),
            Printer::Json => out.out(json::member_list(resp) + "\n"),
            Printer::Fields => fields::member_list(out, resp),
            Printer::Table => out.out(table::member_list(resp)),
        }
    }

    pub fn endpoint_health(&self, out: &mut Output<'_>, list: &[EndpointHealth]) {
        match self {
            Printer::Simple { .. } => simple::endpoint_health(out, list),
            Printer::Json => out.out(json::endpoint_health(list) + "\n"),
            Printer::Fields => fields::endpoint_health(out, list),
            Printer::Table => out.out(table::endpoint_health(list)),
        }
    }

    pub fn endpoint_status(&self, out: &mut Output<'_>, list: &[EndpointStatus]) {
        match self {
            Printer::Simple { .. } => simple::endpoint_status(out, list),
            Printer::Json => out.out(json::endpoint_status(list) + "\n"),
            Printer::Fields => fields::endpoint_status(out, list),
            Printer::Table => out.out(table::endpoint_status(list)),
        }
    }
}

/// etcdctl's `makeMemberListTable` rows.
fn member_rows(resp: &MemberListResponse) -> Vec<Vec<String>> {
    resp.members
        .iter()
        .map(|m| {
            vec![
                format!("{:x}", m.id),
                if m.name.is_empty() {
                    "unstarted".to_string()
                } else {
                    "started".to_string()
                },
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

const MEMBER_HEADER: [&str; 6] = [
    "ID",
    "Status",
    "Name",
    "Peer Addrs",
    "Client Addrs",
    "Is Learner",
];

/// etcdctl's `makeEndpointHealthTable` rows.
fn health_rows(list: &[EndpointHealth]) -> Vec<Vec<String>> {
    list.iter()
        .map(|h| {
            vec![
                h.endpoint.clone(),
                h.health.to_string(),
                h.took.clone(),
                h.error.clone(),
            ]
        })
        .collect()
}

const HEALTH_HEADER: [&str; 4] = ["endpoint", "health", "took", "error"];

/// etcdctl's `makeEndpointStatusTable` rows.
fn status_rows(list: &[EndpointStatus]) -> Vec<Vec<String>> {
    list.iter()
        .map(|s| {
            let member_id = s.status.header.as_ref().map_or(0, |h| h.member_id);
            vec![
                s.endpoint.clone(),
                format!("{member_id:x}"),
                s.status.version.clone(),
                gofmt::humanize_bytes(s.status.db_size as u64),
                (s.status.leader == member_id).to_string(),
                s.status.is_learner.to_string(),
                s.status.raft_term.to_string(),
                s.status.raft_index.to_string(),
                s.status.raft_applied_index.to_string(),
                s.status.errors.join(", "),
            ]
        })
        .collect()
}

const STATUS_HEADER: [&str; 10] = [
    "endpoint",
    "ID",
    "version",
    "db size",
    "is leader",
    "is learner",
    "raft term",
    "raft index",
    "raft applied index",
    "errors",
];

#[cfg(test)]
mod tests;
