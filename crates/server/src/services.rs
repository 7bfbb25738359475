//! The etcd v3 gRPC services: etcd's `v3rpc` layer.
//!
//! Each RPC validates its request (`validate`), routes it (reads to the store, after the
//! linearizable barrier unless serializable; writes through raft), and fills the response
//! header as etcd does. RPCs of features that later work will bring answer `Unimplemented`
//! with a message naming them.

use stead_mvcc::request;
use stead_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, CompactionRequest, CompactionResponse, DefragmentRequest,
    DefragmentResponse, DeleteRangeRequest, DeleteRangeResponse, DowngradeRequest,
    DowngradeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse,
    InternalRaftRequest, MoveLeaderRequest, MoveLeaderResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
    TxnRequest, TxnResponse, kv_server::Kv, maintenance_server::Maintenance,
    request_op::Request as RequestOpKind,
};
use tonic::{Request, Response, Status};

use crate::server::{Applied, ETCD_VERSION};
use crate::{EtcdError, EtcdServer, validate};

/// Bytes etcd counts for a key-value beyond its key and value when checking the quota.
const QUOTA_KV_OVERHEAD_BYTES: u64 = 256;

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("stead: {what} is not supported yet"))
}

/// The answer did not have the shape its request calls for: a bug, reported as internal.
pub(crate) fn unexpected(applied: Applied) -> Status {
    Status::from(EtcdError::Internal(format!(
        "unexpected apply result {applied:?}"
    )))
}

impl EtcdServer {
    /// etcd's backend quota: refuses a write that would take the database past
    /// `--quota-backend-bytes`.
    pub(crate) fn check_quota(&self, cost_bytes: u64) -> Result<(), EtcdError> {
        if self.backend().size_bytes() + cost_bytes >= self.shared.quota_backend_bytes {
            Err(EtcdError::NoSpace)
        } else {
            Ok(())
        }
    }
}

fn put_cost(put: &PutRequest) -> u64 {
    QUOTA_KV_OVERHEAD_BYTES + put.key.len() as u64 + put.value.len() as u64
}

fn txn_cost(txn: &TxnRequest) -> u64 {
    let branch = |ops: &[stead_proto::etcdserverpb::RequestOp]| -> u64 {
        ops.iter()
            .map(|op| match &op.request {
                Some(RequestOpKind::RequestPut(put)) => put_cost(put),
                _ => 0,
            })
            .sum()
    };
    branch(&txn.success).max(branch(&txn.failure))
}

/// Whether every range of a read-only Txn asks for a serializable read.
fn txn_serializable(txn: &TxnRequest) -> bool {
    txn.success.iter().chain(&txn.failure).all(
        |op| matches!(&op.request, Some(RequestOpKind::RequestRange(range)) if range.serializable),
    )
}

#[tonic::async_trait]
impl Kv for EtcdServer {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let request = request.into_inner();
        if !request.serializable {
            self.refuse_on_learner()?;
        }
        validate::check_range(&request)?;
        if !request.serializable {
            self.linearizable_read().await?;
        }
        let mut response =
            request::range(&self.store().read(), &request).map_err(EtcdError::from)?;
        self.fill_header(&mut response.header);
        Ok(Response::new(response))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.refuse_on_learner()?;
        let request = request.into_inner();
        validate::check_put(&request)?;
        self.check_quota(put_cost(&request))?;
        let applied = self
            .propose(InternalRaftRequest {
                put: Some(request),
                ..InternalRaftRequest::default()
            })
            .await?;
        let Applied::Put(mut response) = applied else {
            return Err(unexpected(applied));
        };
        self.fill_header(&mut response.header);
        Ok(Response::new(response))
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.refuse_on_learner()?;
        let request = request.into_inner();
        validate::check_delete(&request)?;
        let applied = self
            .propose(InternalRaftRequest {
                delete_range: Some(request),
                ..InternalRaftRequest::default()
            })
            .await?;
        let Applied::DeleteRange(mut response) = applied else {
            return Err(unexpected(applied));
        };
        self.fill_header(&mut response.header);
        Ok(Response::new(response))
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.refuse_on_learner()?;
        let request = request.into_inner();
        validate::check_txn(&request, self.shared.max_txn_ops)?;
        if request::is_txn_read_only(&request) {
            if !txn_serializable(&request) {
                self.linearizable_read().await?;
            }
            let mut response =
                request::txn_read(&self.store().read(), &request).map_err(EtcdError::from)?;
            self.fill_header(&mut response.header);
            return Ok(Response::new(response));
        }
        self.check_quota(txn_cost(&request))?;
        let applied = self
            .propose(InternalRaftRequest {
                txn: Some(request),
                ..InternalRaftRequest::default()
            })
            .await?;
        let Applied::Txn(mut response) = applied else {
            return Err(unexpected(applied));
        };
        self.fill_header(&mut response.header);
        Ok(Response::new(response))
    }

    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        self.refuse_on_learner()?;
        let request = request.into_inner();
        let physical_wanted = request.physical;
        let applied = self
            .propose(InternalRaftRequest {
                compaction: Some(request),
                ..InternalRaftRequest::default()
            })
            .await?;
        let Applied::Compaction {
            mut response,
            physical,
        } = applied
        else {
            return Err(unexpected(applied));
        };
        if physical_wanted {
            // The compactor answers when it finished; a member stopping drops the sender.
            let _ = physical.await;
            // Commit the finished compaction so that a crash does not resume it.
            self.backend()
                .commit()
                .map_err(|e| EtcdError::Internal(e.to_string()))?;
        }
        // etcd answers with the store's revision as of the answer.
        response.header = Some(self.header(None));
        Ok(Response::new(response))
    }
}

#[tonic::async_trait]
impl Maintenance for EtcdServer {
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        // No alarm is ever raised yet (quota refusals do not raise NOSPACE): an empty list
        // answers GET; activating or deactivating one is not supported.
        if request.get_ref().action != 0 {
            return Err(unimplemented("raising or clearing alarms"));
        }
        Ok(Response::new(AlarmResponse {
            header: Some(self.header(None)),
            alarms: Vec::new(),
        }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (term, leader, commit, applied) = self.raft_status();
        let mut errors = Vec::new();
        if leader == 0 {
            errors.push(EtcdError::NoLeader.to_string());
        }
        Ok(Response::new(StatusResponse {
            header: Some(self.header(None)),
            version: ETCD_VERSION.to_owned(),
            db_size: self.backend().size_bytes() as i64,
            leader,
            raft_index: commit,
            raft_term: term,
            raft_applied_index: applied,
            errors,
            db_size_in_use: self.backend().size_in_use_bytes() as i64,
            is_learner: self
                .shared
                .is_learner
                .load(std::sync::atomic::Ordering::Relaxed),
        }))
    }

    async fn defragment(
        &self,
        _request: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Err(unimplemented("Defragment"))
    }

    async fn hash(&self, _request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(unimplemented("Hash"))
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let hash = self
            .store()
            .hash_kv(request.get_ref().revision)
            .map_err(EtcdError::from)?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.header(Some(hash.current_revision))),
            hash: hash.hash,
            compact_revision: hash.compact_revision,
        }))
    }

    type SnapshotStream = tokio_stream::Empty<Result<SnapshotResponse, Status>>;

    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(unimplemented("Snapshot"))
    }

    async fn move_leader(
        &self,
        request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.move_leader(request.into_inner().target_id).await?;
        // etcd answers with an empty response, no header (etcdctl -w json prints `{}`).
        Ok(Response::new(MoveLeaderResponse { header: None }))
    }

    async fn downgrade(
        &self,
        _request: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(unimplemented("Downgrade"))
    }
}
