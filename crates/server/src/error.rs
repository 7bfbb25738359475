//! The errors clients see: etcd's gRPC status codes and messages (`rpctypes`), exactly, since
//! clients match on the texts.

use stead_mvcc::MvccError;
use tonic::{Code, Status};

/// An error answered to a client. Each variant is one of etcd's `rpctypes.ErrGRPC*`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: request timed out, waiting for the applied index took too long")]
    TimeoutWaitAppliedIndex,
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    #[error("etcdserver: member ID already exist")]
    MemberExist,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExist,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    MemberNotEnoughStarted,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// etcd does not map this one to a gRPC status: clients see `Unknown` and the text.
    #[error("etcdserver: request timed out, leader transfer took too long")]
    TimeoutLeaderTransfer,
    /// Something broke inside the member; the message says what (not one of etcd's texts).
    #[error("etcdserver: {0}")]
    Internal(String),
}

impl EtcdError {
    /// etcd's gRPC status code for the error.
    pub fn code(&self) -> Code {
        match self {
            EtcdError::EmptyKey
            | EtcdError::KeyNotFound
            | EtcdError::ValueProvided
            | EtcdError::LeaseProvided
            | EtcdError::TooManyOps
            | EtcdError::DuplicateKey
            | EtcdError::RequestTooLarge => Code::InvalidArgument,
            EtcdError::Compacted | EtcdError::FutureRevision | EtcdError::LeaseTtlTooLarge => {
                Code::OutOfRange
            }
            EtcdError::LeaseExists
            | EtcdError::NotLeader
            | EtcdError::MemberExist
            | EtcdError::PeerUrlExist
            | EtcdError::MemberNotLearner
            | EtcdError::LearnerNotReady
            | EtcdError::TooManyLearners
            | EtcdError::BadLeaderTransferee => Code::FailedPrecondition,
            EtcdError::MemberBadUrls => Code::InvalidArgument,
            EtcdError::MemberNotFound => Code::NotFound,
            EtcdError::NotSupportedForLearner | EtcdError::Unhealthy => Code::Unavailable,
            // etcd maps its ErrNotEnoughStartedMembers to a client-side error value rather than
            // a gRPC status, so grpc-go sends it as Unknown.
            EtcdError::TimeoutLeaderTransfer | EtcdError::MemberNotEnoughStarted => Code::Unknown,
            EtcdError::NoSpace => Code::ResourceExhausted,
            EtcdError::LeaseNotFound => Code::NotFound,
            EtcdError::NoLeader
            | EtcdError::LeaderChanged
            | EtcdError::Stopped
            | EtcdError::Timeout
            | EtcdError::TimeoutWaitAppliedIndex => Code::Unavailable,
            EtcdError::Corrupt => Code::DataLoss,
            EtcdError::Internal(_) => Code::Internal,
        }
    }
}

impl EtcdError {
    /// Every error with a fixed text.
    const FIXED: [EtcdError; 32] = [
        EtcdError::EmptyKey,
        EtcdError::KeyNotFound,
        EtcdError::ValueProvided,
        EtcdError::LeaseProvided,
        EtcdError::TooManyOps,
        EtcdError::DuplicateKey,
        EtcdError::Compacted,
        EtcdError::FutureRevision,
        EtcdError::NoSpace,
        EtcdError::LeaseNotFound,
        EtcdError::LeaseExists,
        EtcdError::LeaseTtlTooLarge,
        EtcdError::RequestTooLarge,
        EtcdError::NoLeader,
        EtcdError::LeaderChanged,
        EtcdError::NotLeader,
        EtcdError::Stopped,
        EtcdError::Timeout,
        EtcdError::TimeoutWaitAppliedIndex,
        EtcdError::Corrupt,
        EtcdError::MemberExist,
        EtcdError::PeerUrlExist,
        EtcdError::MemberNotEnoughStarted,
        EtcdError::MemberBadUrls,
        EtcdError::MemberNotFound,
        EtcdError::MemberNotLearner,
        EtcdError::LearnerNotReady,
        EtcdError::TooManyLearners,
        EtcdError::NotSupportedForLearner,
        EtcdError::BadLeaderTransferee,
        EtcdError::Unhealthy,
        EtcdError::TimeoutLeaderTransfer,
    ];

    /// The error whose text is `text` (another member's answer), if it is one of etcd's.
    pub(crate) fn from_text(text: &str) -> Option<EtcdError> {
        Self::FIXED
            .iter()
            .find(|err| err.to_string() == text)
            .cloned()
    }
}

impl From<EtcdError> for Status {
    fn from(err: EtcdError) -> Status {
        Status::new(err.code(), err.to_string())
    }
}

impl From<MvccError> for EtcdError {
    fn from(err: MvccError) -> EtcdError {
        match err {
            MvccError::Compacted => EtcdError::Compacted,
            MvccError::FutureRevision => EtcdError::FutureRevision,
            MvccError::KeyNotFound => EtcdError::KeyNotFound,
            MvccError::LeaseNotFound => EtcdError::LeaseNotFound,
            MvccError::Closed => EtcdError::Stopped,
            other @ (MvccError::Backend(_) | MvccError::Corrupt(_)) => {
                EtcdError::Internal(other.to_string())
            }
        }
    }
}

impl From<stead_lease::LeaseError> for EtcdError {
    fn from(err: stead_lease::LeaseError) -> EtcdError {
        use stead_lease::LeaseError;
        match err {
            // An expired lease is as good as revoked: its revoke is on its way.
            LeaseError::NotFound | LeaseError::Expired => EtcdError::LeaseNotFound,
            LeaseError::Exists => EtcdError::LeaseExists,
            LeaseError::TtlTooLarge => EtcdError::LeaseTtlTooLarge,
            LeaseError::NotPrimary => EtcdError::NotLeader,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_error_text_is_the_same_error() {
        for err in EtcdError::FIXED {
            assert_eq!(EtcdError::from_text(&err.to_string()), Some(err.clone()));
        }
        assert_eq!(EtcdError::from_text("transport error"), None);
    }

    #[test]
    fn codes_and_texts_are_etcds() {
        let cases = [
            (
                EtcdError::EmptyKey,
                Code::InvalidArgument,
                "etcdserver: key is not provided",
            ),
            (
                EtcdError::TooManyOps,
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
            (
                EtcdError::Compacted,
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            (
                EtcdError::FutureRevision,
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            (
                EtcdError::RequestTooLarge,
                Code::InvalidArgument,
                "etcdserver: request is too large",
            ),
            (
                EtcdError::Timeout,
                Code::Unavailable,
                "etcdserver: request timed out",
            ),
            (
                EtcdError::NoLeader,
                Code::Unavailable,
                "etcdserver: no leader",
            ),
            (
                EtcdError::LeaseNotFound,
                Code::NotFound,
                "etcdserver: requested lease not found",
            ),
            (
                EtcdError::LeaseExists,
                Code::FailedPrecondition,
                "etcdserver: lease already exists",
            ),
            (
                EtcdError::LeaseTtlTooLarge,
                Code::OutOfRange,
                "etcdserver: too large lease TTL",
            ),
            (
                EtcdError::NotLeader,
                Code::FailedPrecondition,
                "etcdserver: not leader",
            ),
            (
                EtcdError::NoSpace,
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
        ];
        for (err, code, text) in cases {
            let status = Status::from(err);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), text);
        }
    }
}
