//! The member's configuration: etcd's command-line flags, `ETCD_*` environment variables and
//! YAML config file, with etcd's names and defaults.
//!
//! What it owns: turning the process arguments, environment and optional config file into a
//! typed [`ServerConfig`] (or a request for `--help` / `--version`), following etcd's rules
//! and error texts:
//! - Flags use Go's `flag` syntax as etcd does (`--name x`, `--name=x`, `-name x`; boolean
//!   flags only as `--flag` or `--flag=false`; parsing stops at the first non-flag argument,
//!   which is then an error). A small pre-pass handles that syntax and etcd's texts; clap
//!   collects the canonical `--flag=value` tokens (the last occurrence wins).
//! - Every flag has an `ETCD_<NAME>` variable. A flag given on the command line may not also
//!   be set in the environment (etcd exits on that conflict); an `ETCD_*` variable naming no
//!   flag is a warning.
//! - `--config-file` (or `ETCD_CONFIG_FILE`): as in etcd (`etcdmain/config.go`), when a config
//!   file is given every other command-line flag and every `ETCD_*` variable is ignored; the
//!   flags are still parsed, so a malformed flag is still an error.
//! - [`FLAGS`] is the one list of etcd's flags: each is supported, refused ("not supported
//!   yet", unless given the value that matches what stead does anyway, such as
//!   `--enable-v2=false`), or one of etcd's legacy flags that etcd ignores with a warning.
//!   Supporting a flag means moving it to `Supported` and handling it in `Builder::apply`.
//!
//! What it does not own: logging (the parser returns warnings for the binary to log), cluster
//! membership (`membership` derives members and IDs from the parsed configuration), and any
//! IO beyond reading the config file.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};
use yaml_rust2::{Yaml, YamlLoader};

use crate::membership::{self, MembershipError, Url, go_quote, go_quote_list};

/// etcd's default member name.
pub const DEFAULT_NAME: &str = "default";
/// The backend quota used when `--quota-backend-bytes` is 0 (etcd's `DefaultQuotaBytes`).
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Above this quota etcd warns (`MaxQuotaBytes`).
pub const MAX_RECOMMENDED_QUOTA_BACKEND_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// etcd's upper bound on `--election-timeout` (`maxElectionMs`).
pub const MAX_ELECTION_TIMEOUT_MS: u64 = 50_000;
/// Above this request size etcd warns (`recommendedMaxRequestBytes`).
pub const MAX_RECOMMENDED_REQUEST_BYTES: u64 = 10 * 1024 * 1024;

const DEFAULT_PEER_URL: &str = "http://localhost:2380";
const DEFAULT_CLIENT_URL: &str = "http://localhost:2379";
const ENV_PREFIX: &str = "ETCD_";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Start a server with this configuration.
    Run(Box<ServerConfig>),
    /// `--version`: print the version and exit 0.
    Version,
    /// `-h` / `--help`: print this text and exit 0.
    Help(String),
}

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterState {
    /// Bootstrapping a new cluster.
    #[default]
    New,
    /// Joining an existing cluster (after `member add`).
    Existing,
}

/// `--logger`. etcd 3.5 defaults to zap and deprecates capnslog; stead logs through
/// `tracing` either way and keeps the choice for the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Logger {
    #[default]
    Zap,
    Capnslog,
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Panic,
    Fatal,
}

/// A member's configuration, with etcd's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `--name`.
    pub name: String,
    /// `--data-dir`; defaults to `${name}.stead` (etcd: `${name}.etcd`).
    pub data_dir: PathBuf,
    /// `--wal-dir`; `None`: `<data-dir>/member/wal`.
    pub wal_dir: Option<PathBuf>,
    /// `--listen-peer-urls` (sorted, unique).
    pub listen_peer_urls: Vec<Url>,
    /// `--listen-client-urls` (sorted, unique).
    pub listen_client_urls: Vec<Url>,
    /// `--initial-advertise-peer-urls` (sorted, unique).
    pub initial_advertise_peer_urls: Vec<Url>,
    /// `--advertise-client-urls` (sorted, unique).
    pub advertise_client_urls: Vec<Url>,
    /// `--initial-cluster`, as given (`membership::InitialCluster` parses it); a non-default
    /// `--name` with the default value becomes `<name>=<initial-advertise-peer-urls>`.
    pub initial_cluster: String,
    /// `--initial-cluster-state`.
    pub initial_cluster_state: ClusterState,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--snapshot-count`: committed entries between snapshots.
    pub snapshot_count: u64,
    /// `--heartbeat-interval` (milliseconds on the command line): one raft tick.
    pub heartbeat_interval: Duration,
    /// `--election-timeout` (milliseconds on the command line).
    pub election_timeout: Duration,
    /// `--quota-backend-bytes` as given: 0 means the default quota, negative no quota. Use
    /// [`ServerConfig::quota_backend_bytes_effective`].
    pub quota_backend_bytes: i64,
    /// `--max-request-bytes`.
    pub max_request_bytes: u64,
    /// `--max-txn-ops`.
    pub max_txn_ops: u64,
    /// `--max-snapshots`: snapshot files kept (0: unlimited).
    pub max_snapshots: u64,
    /// `--max-wals`: WAL files kept (0: unlimited).
    pub max_wals: u64,
    /// `--backend-batch-interval`; `None` (etcd's 0): the backend's default.
    pub backend_batch_interval: Option<Duration>,
    /// `--experimental-watch-progress-notify-interval`.
    pub watch_progress_notify_interval: Duration,
    /// `--experimental-enable-lease-checkpoint`.
    pub enable_lease_checkpoint: bool,
    /// `--strict-reconfig-check`.
    pub strict_reconfig_check: bool,
    /// `--force-new-cluster`.
    pub force_new_cluster: bool,
    /// `--experimental-enable-lease-checkpoint-persist`.
    pub enable_lease_checkpoint_persist: bool,
    /// `--backend-batch-limit`; `None` (etcd's 0 or less): the backend's default.
    pub backend_batch_limit: Option<u64>,
    /// `--logger`.
    pub logger: Logger,
    /// `--log-level`.
    pub log_level: LogLevel,
    /// `--log-outputs` (sorted, unique): `default`, `stderr`, `stdout`, `systemd/journal` or
    /// file paths.
    pub log_outputs: Vec<String>,
    /// `--config-file`, if the configuration came from one.
    pub config_file: Option<PathBuf>,
    /// Warnings for the binary to log (etcd logs these while parsing).
    pub warnings: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let peer = vec![default_url(DEFAULT_PEER_URL)];
        let client = vec![default_url(DEFAULT_CLIENT_URL)];
        ServerConfig {
            name: DEFAULT_NAME.to_string(),
            data_dir: PathBuf::from(format!("{DEFAULT_NAME}.stead")),
            wal_dir: None,
            initial_cluster: initial_cluster_from_name(DEFAULT_NAME, &peer),
            listen_peer_urls: peer.clone(),
            listen_client_urls: client.clone(),
            initial_advertise_peer_urls: peer,
            advertise_client_urls: client,
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".to_string(),
            snapshot_count: 100_000,
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            quota_backend_bytes: 0,
            max_request_bytes: 1_572_864,
            max_txn_ops: 128,
            max_snapshots: 5,
            max_wals: 5,
            backend_batch_interval: None,
            backend_batch_limit: None,
            watch_progress_notify_interval: Duration::from_secs(600),
            enable_lease_checkpoint: false,
            strict_reconfig_check: true,
            force_new_cluster: false,
            enable_lease_checkpoint_persist: false,
            logger: Logger::Zap,
            log_level: LogLevel::Info,
            log_outputs: vec!["default".to_string()],
            config_file: None,
            warnings: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The backend quota in force: the default 2 GiB for 0, `None` (no quota) for a negative
    /// value, as etcd's `NewBackendQuota`.
    pub fn quota_backend_bytes_effective(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            0 => Some(DEFAULT_QUOTA_BACKEND_BYTES),
            bytes => u64::try_from(bytes).ok(),
        }
    }

    /// Raft's election timeout in ticks (etcd's `ElectionTicks`).
    pub fn election_ticks(&self) -> u64 {
        let tick_ms = self.heartbeat_interval.as_millis().max(1);
        u64::try_from(self.election_timeout.as_millis() / tick_ms).unwrap_or(u64::MAX)
    }
}

/// A URL the code itself writes; a typo there is a bug caught by the tests.
fn default_url(text: &str) -> Url {
    Url::parse(text).unwrap_or_else(|error| unreachable!("default URL {text}: {error}"))
}

/// etcd's `InitialClusterFromName`.
fn initial_cluster_from_name(name: &str, advertise_peer_urls: &[Url]) -> String {
    let name = if name.is_empty() { DEFAULT_NAME } else { name };
    advertise_peer_urls
        .iter()
        .map(|url| format!("{name}={url}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Configuration errors. The messages are what the user sees: etcd's own texts where etcd
/// has one, prefixed with `stead:` where the refusal is stead's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("flag provided but not defined: -{0}")]
    FlagNotDefined(String),
    #[error("flag needs an argument: -{0}")]
    FlagNeedsArgument(String),
    #[error("bad flag syntax: {0}")]
    BadFlagSyntax(String),
    #[error("invalid boolean value {} for -{flag}: parse error", go_quote(value))]
    InvalidBool { flag: String, value: String },
    #[error("invalid value {} for flag -{flag}: {reason}", go_quote(value))]
    InvalidFlagValue {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("'{0}' is not a valid flag")]
    NotAFlag(String),
    #[error("stead: argument {0} is not valid UTF-8")]
    NotUnicode(String),
    #[error("stead: flag --{0} is not supported yet")]
    FlagNotSupported(String),
    #[error("invalid value {} for {key}: {reason}", go_quote(value))]
    InvalidEnvValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error(
        "conflicting environment variable {} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)",
        go_quote(key)
    )]
    EnvShadowedByFlag { key: String },
    #[error("stead: environment variable {key} (flag --{flag}) is not supported yet")]
    EnvNotSupported { key: String, flag: String },
    #[error("stead: cannot read config file {path}: {reason}")]
    ReadConfigFile { path: String, reason: String },
    #[error("stead: config file {path} is not valid YAML: {reason}")]
    ConfigFileSyntax { path: String, reason: String },
    #[error("stead: config file {path} must be a YAML mapping of etcd option names to values")]
    ConfigFileNotMapping { path: String },
    #[error("stead: unknown key {} in config file {path}", go_quote(key))]
    ConfigFileUnknownKey { path: String, key: String },
    #[error("stead: config file key {} is not supported yet", go_quote(key))]
    ConfigFileKeyNotSupported { key: String },
    #[error(
        "stead: config file {path}: invalid value for {}: {reason}",
        go_quote(key)
    )]
    ConfigFileValue {
        path: String,
        key: String,
        reason: String,
    },
    /// A URL list in the config file (etcd's text).
    #[error("unexpected error setting up {key}: {reason}")]
    ConfigFileUrls { key: String, reason: String },
    #[error("unknown logger option {}", go_quote(.0))]
    UnknownLogger(String),
    #[error("unknown log level {} (only supports debug, info, warn, error, panic, or fatal)", go_quote(.0))]
    UnknownLogLevel(String),
    #[error("multi logoutput for \"default\" is not supported yet")]
    MultipleLogOutputsWithDefault,
    #[error("--logger=capnslog supports only 1 value in '--log-outputs', got {0}")]
    CapnslogMultipleOutputs(String),
    #[error("unknown log-output {} (only supports \"default\", \"stderr\", \"stdout\")", go_quote(.0))]
    CapnslogUnknownOutput(String),
    #[error("expected IP in URL for binding ({0})")]
    ListenUrlNotIp(String),
    #[error(
        "--{flag} {} must be \"host:port\" (unexpected empty host ({url}))",
        go_quote(urls)
    )]
    AdvertiseUrlEmptyHost {
        flag: &'static str,
        urls: String,
        url: String,
    },
    #[error("--heartbeat-interval must be >0 (set to {0}ms)")]
    HeartbeatIntervalZero(u64),
    #[error("--election-timeout must be >0 (set to {0}ms)")]
    ElectionTimeoutZero(u64),
    #[error(
        "--election-timeout[{election_timeout_ms}ms] should be at least as 5 times as --heartbeat-interval[{heartbeat_interval_ms}ms]"
    )]
    ElectionTimeoutTooShort {
        election_timeout_ms: u64,
        heartbeat_interval_ms: u64,
    },
    #[error(
        "--election-timeout[{0}ms] is too long, and should be set less than {MAX_ELECTION_TIMEOUT_MS}ms"
    )]
    ElectionTimeoutTooLong(u64),
    #[error(
        "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint"
    )]
    LeaseCheckpointPersistWithoutCheckpoint,
    #[error("--advertise-client-urls is required when --listen-client-urls is set explicitly")]
    AdvertiseClientUrlsRequired,
    /// `--initial-cluster` does not parse.
    #[error(transparent)]
    InitialCluster(#[from] MembershipError),
}

impl ConfigError {
    /// The exit status etcd uses: 2 for what Go's flag package rejects while parsing the
    /// command line, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::FlagNotDefined(_)
            | ConfigError::FlagNeedsArgument(_)
            | ConfigError::BadFlagSyntax(_)
            | ConfigError::InvalidBool { .. }
            | ConfigError::InvalidFlagValue { .. } => 2,
            _ => 1,
        }
    }
}

/// Whether a flag takes a value (Go's bool flags take one only as `--flag=value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Value,
}

/// A section of the `--help` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Member,
    Clustering,
    Logging,
    Experimental,
    Unsafe,
}

#[derive(Debug, Clone, Copy)]
enum Status {
    /// stead implements it.
    Supported {
        group: Group,
        default: &'static str,
        help: &'static str,
    },
    /// Recognised but refused, except with one of the `inert` values, which are what stead
    /// does anyway (for a boolean, `"false"` or `"true"`).
    Refused { inert: &'static [&'static str] },
    /// One of etcd's legacy flags, accepted with any value and ignored with a warning.
    Ignored,
    /// `--config-file` and `--version`, handled by [`parse`] itself.
    Special,
}

/// One of etcd's flags.
#[derive(Debug, Clone, Copy)]
struct Flag {
    name: &'static str,
    kind: Kind,
    status: Status,
}

const fn supported(
    name: &'static str,
    group: Group,
    default: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        name,
        kind: Kind::Value,
        status: Status::Supported {
            group,
            default,
            help,
        },
    }
}

/// A supported boolean flag (Go's: `--flag` alone means true).
const fn supported_bool(
    name: &'static str,
    group: Group,
    default: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        kind: Kind::Bool,
        ..supported(name, group, default, help)
    }
}

const fn refused(name: &'static str, kind: Kind, inert: &'static [&'static str]) -> Flag {
    Flag {
        name,
        kind,
        status: Status::Refused { inert },
    }
}

const fn ignored(name: &'static str) -> Flag {
    Flag {
        name,
        kind: Kind::Bool,
        status: Status::Ignored,
    }
}

use Group::{Clustering, Experimental, Logging, Member, Unsafe};
use Kind::{Bool, Value};

const OFF: &[&str] = &["false"];
const EMPTY: &[&str] = &[""];
const NEVER: &[&str] = &[];

/// etcd's flags: those of etcd 3.5's `--help`, the 3.5 flags it leaves out of its help, and
/// the 3.4 flags 3.5 dropped. Order: the `--help` order.
const FLAGS: &[Flag] = &[
    // Member.
    supported(
        "name",
        Member,
        "'default'",
        "Human-readable name for this member.",
    ),
    supported(
        "data-dir",
        Member,
        "'${name}.stead'",
        "Path to the data directory.",
    ),
    supported(
        "wal-dir",
        Member,
        "''",
        "Path to the dedicated wal directory.",
    ),
    supported(
        "snapshot-count",
        Member,
        "'100000'",
        "Number of committed transactions to trigger a snapshot to disk.",
    ),
    supported(
        "heartbeat-interval",
        Member,
        "'100'",
        "Time (in milliseconds) of a heartbeat interval.",
    ),
    supported(
        "election-timeout",
        Member,
        "'1000'",
        "Time (in milliseconds) for an election to timeout. See tuning documentation for details.",
    ),
    refused("initial-election-tick-advance", Bool, NEVER),
    supported(
        "listen-peer-urls",
        Member,
        "'http://localhost:2380'",
        "List of URLs to listen on for peer traffic.",
    ),
    supported(
        "listen-client-urls",
        Member,
        "'http://localhost:2379'",
        "List of URLs to listen on for client traffic.",
    ),
    refused("listen-client-http-urls", Value, EMPTY),
    supported(
        "max-snapshots",
        Member,
        "'5'",
        "Maximum number of snapshot files to retain (0 is unlimited).",
    ),
    supported(
        "max-wals",
        Member,
        "'5'",
        "Maximum number of wal files to retain (0 is unlimited).",
    ),
    supported(
        "quota-backend-bytes",
        Member,
        "'0'",
        "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).",
    ),
    refused("backend-bbolt-freelist-type", Value, NEVER),
    supported(
        "backend-batch-interval",
        Member,
        "''",
        "BackendBatchInterval is the maximum time before commit the backend transaction.",
    ),
    supported(
        "backend-batch-limit",
        Member,
        "'0'",
        "BackendBatchLimit is the maximum operations before commit the backend transaction.",
    ),
    supported(
        "max-txn-ops",
        Member,
        "'128'",
        "Maximum number of operations permitted in a transaction.",
    ),
    supported(
        "max-request-bytes",
        Member,
        "'1572864'",
        "Maximum client request size in bytes the server will accept.",
    ),
    refused("max-concurrent-streams", Value, NEVER),
    refused("enable-grpc-gateway", Bool, OFF),
    refused("grpc-keepalive-min-time", Value, NEVER),
    refused("grpc-keepalive-interval", Value, NEVER),
    refused("grpc-keepalive-timeout", Value, NEVER),
    refused("socket-reuse-port", Bool, OFF),
    refused("socket-reuse-address", Bool, OFF),
    refused("raft-read-timeout", Value, NEVER),
    refused("raft-write-timeout", Value, NEVER),
    // Clustering.
    supported(
        "initial-advertise-peer-urls",
        Clustering,
        "'http://localhost:2380'",
        "List of this member's peer URLs to advertise to the rest of the cluster.",
    ),
    supported(
        "initial-cluster",
        Clustering,
        "'default=http://localhost:2380'",
        "Initial cluster configuration for bootstrapping.",
    ),
    supported(
        "initial-cluster-state",
        Clustering,
        "'new'",
        "Initial cluster state ('new' or 'existing').",
    ),
    supported(
        "initial-cluster-token",
        Clustering,
        "'etcd-cluster'",
        "Initial cluster token for the etcd cluster during bootstrap.\n    \
         Specifying this can protect you from unintended cross-cluster interaction when running multiple clusters.",
    ),
    supported(
        "advertise-client-urls",
        Clustering,
        "'http://localhost:2379'",
        "List of this member's client URLs to advertise to the public.\n    \
         The client URLs advertised should be accessible to machines that talk to etcd cluster. \
         etcd client libraries parse these URLs to connect to the cluster.",
    ),
    refused("discovery", Value, EMPTY),
    refused("discovery-fallback", Value, &["proxy", "exit"]),
    refused("discovery-proxy", Value, EMPTY),
    refused("discovery-srv", Value, EMPTY),
    refused("discovery-srv-name", Value, EMPTY),
    supported_bool(
        "strict-reconfig-check",
        Clustering,
        "'true'",
        "Reject reconfiguration requests that would cause quorum loss.",
    ),
    refused("pre-vote", Bool, NEVER),
    refused("auto-compaction-retention", Value, &["0"]),
    refused("auto-compaction-mode", Value, &["periodic", "revision"]),
    refused("enable-v2", Bool, OFF),
    refused("v2-deprecation", Value, NEVER),
    // Security.
    refused("cert-file", Value, EMPTY),
    refused("key-file", Value, EMPTY),
    refused("client-cert-auth", Bool, OFF),
    refused("client-cert-file", Value, EMPTY),
    refused("client-key-file", Value, EMPTY),
    refused("client-crl-file", Value, EMPTY),
    refused("client-cert-allowed-hostname", Value, EMPTY),
    refused("trusted-ca-file", Value, EMPTY),
    refused("auto-tls", Bool, OFF),
    refused("peer-cert-file", Value, EMPTY),
    refused("peer-key-file", Value, EMPTY),
    refused("peer-client-cert-auth", Bool, OFF),
    refused("peer-trusted-ca-file", Value, EMPTY),
    refused("peer-cert-allowed-cn", Value, EMPTY),
    refused("peer-cert-allowed-hostname", Value, EMPTY),
    refused("peer-auto-tls", Bool, OFF),
    refused("peer-client-cert-file", Value, EMPTY),
    refused("peer-client-key-file", Value, EMPTY),
    refused("self-signed-cert-validity", Value, &["1"]),
    refused("peer-crl-file", Value, EMPTY),
    refused("cipher-suites", Value, EMPTY),
    refused("cors", Value, NEVER),
    refused("host-whitelist", Value, NEVER),
    refused("tls-min-version", Value, &["TLS1.2"]),
    refused("tls-max-version", Value, EMPTY),
    // Auth.
    refused("auth-token", Value, NEVER),
    refused("bcrypt-cost", Value, NEVER),
    refused("auth-token-ttl", Value, NEVER),
    // Profiling and monitoring.
    refused("enable-pprof", Bool, OFF),
    refused("metrics", Value, NEVER),
    refused("listen-metrics-urls", Value, EMPTY),
    // Logging.
    supported(
        "logger",
        Logging,
        "'zap'",
        "Specify 'zap' for structured logging or 'capnslog'.",
    ),
    supported(
        "log-outputs",
        Logging,
        "'default'",
        "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, \
         or list of comma separated output targets.",
    ),
    supported(
        "log-level",
        Logging,
        "'info'",
        "Configures log level. Only supports debug, info, warn, error, panic, or fatal.",
    ),
    refused("enable-log-rotation", Bool, OFF),
    refused("log-rotation-config-json", Value, NEVER),
    // Distributed tracing.
    refused("experimental-enable-distributed-tracing", Bool, OFF),
    refused(
        "experimental-distributed-tracing-address",
        Value,
        &["localhost:4317"],
    ),
    refused(
        "experimental-distributed-tracing-service-name",
        Value,
        &["etcd"],
    ),
    refused("experimental-distributed-tracing-instance-id", Value, EMPTY),
    refused(
        "experimental-distributed-tracing-sampling-rate",
        Value,
        &["0"],
    ),
    // v2 proxy: the timings only matter with --proxy on.
    refused("proxy", Value, &["off"]),
    refused("proxy-failure-wait", Value, &["5000"]),
    refused("proxy-refresh-interval", Value, &["30000"]),
    refused("proxy-dial-timeout", Value, &["1000"]),
    refused("proxy-write-timeout", Value, &["5000"]),
    refused("proxy-read-timeout", Value, &["0"]),
    // Experimental.
    refused("experimental-initial-corrupt-check", Bool, OFF),
    refused("experimental-corrupt-check-time", Value, &["0", "0s"]),
    refused("experimental-compact-hash-check-enabled", Bool, OFF),
    refused("experimental-compact-hash-check-time", Value, &["1m"]),
    refused("experimental-enable-v2v3", Value, EMPTY),
    supported_bool(
        "experimental-enable-lease-checkpoint",
        Experimental,
        "'false'",
        "Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change.",
    ),
    supported_bool(
        "experimental-enable-lease-checkpoint-persist",
        Experimental,
        "'false'",
        "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases. Always enabled in v3.6. Should be used to ensure smooth upgrade from v3.5 clusters with this feature enabled. Requires experimental-enable-lease-checkpoint to be enabled.",
    ),
    refused("experimental-compaction-batch-limit", Value, NEVER),
    refused("experimental-compaction-sleep-interval", Value, NEVER),
    refused("experimental-peer-skip-client-san-verification", Bool, OFF),
    supported(
        "experimental-watch-progress-notify-interval",
        Experimental,
        "'10m'",
        "Duration of periodic watch progress notifications.",
    ),
    refused("experimental-downgrade-check-time", Value, NEVER),
    refused("experimental-memory-mlock", Bool, OFF),
    refused("experimental-warning-apply-duration", Value, NEVER),
    refused(
        "experimental-txn-mode-write-with-shared-buffer",
        Bool,
        NEVER,
    ),
    refused(
        "experimental-bootstrap-defrag-threshold-megabytes",
        Value,
        &["0"],
    ),
    refused("experimental-stop-grpc-service-on-defrag", Bool, OFF),
    // 3.5 flags that 3.5's --help leaves out.
    refused("experimental-max-learners", Value, NEVER),
    refused("experimental-snapshot-catchup-entries", Value, NEVER),
    refused("experimental-wait-cluster-ready-timeout", Value, NEVER),
    refused("experimental-warning-unary-request-duration", Value, NEVER),
    // Unsafe.
    supported_bool(
        "force-new-cluster",
        Unsafe,
        "'false'",
        "Force to create a new one member cluster.",
    ),
    refused("unsafe-no-fsync", Bool, OFF),
    // 3.4 flags removed in 3.5.
    refused("debug", Bool, OFF),
    refused("log-output", Value, NEVER),
    refused("log-package-levels", Value, EMPTY),
    refused("experimental-backend-bbolt-freelist-type", Value, NEVER),
    // Handled by `parse`.
    Flag {
        name: "config-file",
        kind: Value,
        status: Status::Special,
    },
    Flag {
        name: "version",
        kind: Bool,
        status: Status::Special,
    },
    // etcd's `ignored` list: pre-v3 flags accepted and ignored with a warning.
    ignored("cluster-active-size"),
    ignored("cluster-remove-delay"),
    ignored("cluster-sync-interval"),
    ignored("config"),
    ignored("force"),
    ignored("max-result-buffer"),
    ignored("max-retry-attempts"),
    ignored("peer-heartbeat-interval"),
    ignored("peer-election-timeout"),
    ignored("retry-interval"),
    ignored("snapshot"),
    ignored("v"),
    ignored("vv"),
    ignored("test.coverprofile"),
    ignored("test.outputdir"),
];

/// The config-file sections holding TLS settings (`embed.configJSON`), not flags.
const CONFIG_FILE_TLS_SECTIONS: &[&str] = &["client-transport-security", "peer-transport-security"];

fn find_flag(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|flag| flag.name == name)
}

/// etcd's `FlagToEnv("ETCD", name)`.
fn env_key(flag_name: &str) -> String {
    format!("{ENV_PREFIX}{}", flag_name.replace('-', "_").to_uppercase())
}

/// Parses the command line (without the program name) and the environment.
pub fn parse(args: &[OsString], env: &[(String, String)]) -> Result<Invocation, ConfigError> {
    let args = args
        .iter()
        .map(|arg| {
            arg.to_str()
                .map(str::to_string)
                .ok_or_else(|| ConfigError::NotUnicode(format!("{arg:?}")))
        })
        .collect::<Result<Vec<String>, _>>()?;
    let scanned = match scan_command_line(&args)? {
        Scan::Help => return Ok(Invocation::Help(help_text())),
        Scan::Flags(scanned) => scanned,
    };
    let matches = command()
        .try_get_matches_from(&scanned.canonical)
        .map_err(|error| {
            // The pre-pass hands clap only well-formed `--flag=value` tokens of known flags.
            ConfigError::BadFlagSyntax(error.render().to_string().trim().to_string())
        })?;
    let given = |name: &str| matches.get_one::<String>(name).map(String::as_str);
    if let Some(argument) = scanned.positional {
        return Err(ConfigError::NotAFlag(argument));
    }
    if given("version") == Some("true") {
        return Ok(Invocation::Version);
    }

    let mut warnings = scanned.warnings;
    let config_file = match given("config-file") {
        Some(path) if !path.is_empty() => Some(path.to_string()),
        _ => env
            .iter()
            .rev()
            .find(|(key, _)| key == "ETCD_CONFIG_FILE")
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty()),
    };

    let mut builder = Builder::default();
    let mut set_flags: HashSet<&'static str> = HashSet::new();
    if let Some(path) = &config_file {
        for flag in FLAGS.iter().filter(|flag| given(flag.name).is_some()) {
            if matches!(
                flag.status,
                Status::Supported { .. } | Status::Refused { .. }
            ) {
                warnings.push(format!(
                    "command-line flag --{} is ignored: a configuration file ({path}) is given, \
                     so other command-line flags and environment variables are ignored",
                    flag.name
                ));
            }
        }
        builder.apply_config_file(path, &mut warnings)?;
        builder.config.config_file = Some(PathBuf::from(path));
    } else {
        for flag in FLAGS {
            if let (Some(value), Status::Supported { .. }) = (given(flag.name), flag.status) {
                builder
                    .apply(flag.name, Input::Text(value))
                    .map_err(|reason| ConfigError::InvalidFlagValue {
                        flag: flag.name.to_string(),
                        value: value.to_string(),
                        reason,
                    })?;
                set_flags.insert(flag.name);
            }
        }
        let on_command_line: HashSet<&str> = FLAGS
            .iter()
            .filter(|flag| given(flag.name).is_some())
            .map(|flag| flag.name)
            .collect();
        builder.apply_env(env, &on_command_line, &mut set_flags, &mut warnings)?;
    }
    let from_command_line = config_file.is_none();
    let config = builder.finish(from_command_line, &set_flags, warnings)?;
    Ok(Invocation::Run(Box::new(config)))
}

/// The command line after the Go-syntax pre-pass.
enum Scan {
    Help,
    Flags(ScannedFlags),
}

struct ScannedFlags {
    /// `--name=value` for every flag, in order; booleans as `true`/`false`.
    canonical: Vec<String>,
    /// The first argument that is not a flag (etcd refuses it after parsing).
    positional: Option<String>,
    warnings: Vec<String>,
}

/// Go's `flag.FlagSet.Parse` as etcd uses it: the syntax, the help request, and each value
/// checked as it is read (Go's `Value.Set`), with Go's error texts.
fn scan_command_line(args: &[String]) -> Result<Scan, ConfigError> {
    let mut scanned = ScannedFlags {
        canonical: Vec::new(),
        positional: None,
        warnings: Vec::new(),
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg.len() < 2 || !arg.starts_with('-') {
            scanned.positional = Some(arg.clone());
            break;
        }
        let body = if let Some(body) = arg.strip_prefix("--") {
            if body.is_empty() {
                // "--" ends the flags; anything after it is a (refused) argument.
                scanned.positional = rest.next().cloned();
                break;
            }
            body
        } else {
            &arg[1..]
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::BadFlagSyntax(arg.clone()));
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(flag) = find_flag(name) else {
            if name == "h" || name == "help" {
                return Ok(Scan::Help);
            }
            return Err(ConfigError::FlagNotDefined(name.to_string()));
        };
        let value = match (flag.kind, flag.status) {
            (Kind::Bool, Status::Ignored) => inline_value.unwrap_or("true").to_string(),
            (Kind::Bool, _) => {
                let text = inline_value.unwrap_or("true");
                let parsed = parse_go_bool(text).ok_or_else(|| ConfigError::InvalidBool {
                    flag: name.to_string(),
                    value: text.to_string(),
                })?;
                parsed.to_string()
            }
            (Kind::Value, _) => match inline_value {
                Some(value) => value.to_string(),
                None => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| ConfigError::FlagNeedsArgument(name.to_string()))?,
            },
        };
        match flag.status {
            Status::Supported { .. } => {
                Builder::default()
                    .apply(flag.name, Input::Text(&value))
                    .map_err(|reason| ConfigError::InvalidFlagValue {
                        flag: name.to_string(),
                        value: value.clone(),
                        reason,
                    })?;
            }
            Status::Refused { inert } if !inert.contains(&value.as_str()) => {
                return Err(ConfigError::FlagNotSupported(name.to_string()));
            }
            Status::Refused { .. } | Status::Special => {}
            Status::Ignored => scanned.warnings.push(ignored_flag_warning(name)),
        }
        scanned.canonical.push(format!("--{name}={value}"));
    }
    Ok(Scan::Flags(scanned))
}

/// The clap command collecting the canonical tokens: every flag of [`FLAGS`] as
/// `--name=value`, the last occurrence winning as with Go's flag package.
fn command() -> Command {
    let command = Command::new("stead")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true);
    FLAGS.iter().fold(command, |command, flag| {
        command.arg(
            Arg::new(flag.name)
                .long(flag.name)
                .action(ArgAction::Set)
                .num_args(1)
                .require_equals(true),
        )
    })
}

fn ignored_flag_warning(name: &str) -> String {
    format!(
        "flag {} is no longer supported - ignoring.",
        go_quote(&format!("-{name}"))
    )
}

/// A value for a flag: text from the command line or environment, or a YAML node.
#[derive(Clone, Copy)]
enum Input<'a> {
    Text(&'a str),
    Yaml(&'a Yaml),
}

/// The configuration being assembled, with the settings validated only at the end.
struct Builder {
    config: ServerConfig,
    /// The initial cluster before the `--name` rule, to tell whether it was left at default.
    default_initial_cluster: String,
    logger: String,
    log_level: String,
}

impl Default for Builder {
    fn default() -> Self {
        let config = ServerConfig {
            data_dir: PathBuf::new(),
            ..ServerConfig::default()
        };
        Builder {
            default_initial_cluster: config.initial_cluster.clone(),
            config,
            logger: "zap".to_string(),
            log_level: "info".to_string(),
        }
    }
}

impl Builder {
    /// Sets one supported flag. The error is the reason only; the caller says where the value
    /// came from. Every `Supported` flag of [`FLAGS`] has an arm here.
    fn apply(&mut self, name: &str, input: Input<'_>) -> Result<(), String> {
        let config = &mut self.config;
        match name {
            "name" => config.name = input_text(input)?,
            "data-dir" => config.data_dir = PathBuf::from(input_text(input)?),
            "wal-dir" => {
                let text = input_text(input)?;
                config.wal_dir = (!text.is_empty()).then(|| PathBuf::from(text));
            }
            "snapshot-count" => config.snapshot_count = input_uint(input)?,
            "heartbeat-interval" => {
                config.heartbeat_interval = Duration::from_millis(input_uint(input)?)
            }
            "election-timeout" => {
                config.election_timeout = Duration::from_millis(input_uint(input)?)
            }
            "listen-peer-urls" => config.listen_peer_urls = input_urls(input)?,
            "listen-client-urls" => config.listen_client_urls = input_urls(input)?,
            "initial-advertise-peer-urls" => {
                config.initial_advertise_peer_urls = input_urls(input)?
            }
            "advertise-client-urls" => config.advertise_client_urls = input_urls(input)?,
            "max-snapshots" => config.max_snapshots = input_uint(input)?,
            "max-wals" => config.max_wals = input_uint(input)?,
            "quota-backend-bytes" => config.quota_backend_bytes = input_int(input)?,
            "strict-reconfig-check" => config.strict_reconfig_check = input_bool(input)?,
            "force-new-cluster" => config.force_new_cluster = input_bool(input)?,
            "experimental-enable-lease-checkpoint" => {
                config.enable_lease_checkpoint = input_bool(input)?
            }
            "experimental-enable-lease-checkpoint-persist" => {
                config.enable_lease_checkpoint_persist = input_bool(input)?
            }
            "experimental-watch-progress-notify-interval" => {
                config.watch_progress_notify_interval = input_duration(input)?
            }
            "backend-batch-interval" => {
                let interval = input_duration(input)?;
                config.backend_batch_interval = (!interval.is_zero()).then_some(interval);
            }
            "backend-batch-limit" => {
                config.backend_batch_limit = u64::try_from(input_int(input)?)
                    .ok()
                    .filter(|&limit| limit > 0)
            }
            "max-txn-ops" => config.max_txn_ops = input_uint(input)?,
            "max-request-bytes" => config.max_request_bytes = input_uint(input)?,
            "initial-cluster" => config.initial_cluster = input_text(input)?,
            "initial-cluster-state" => config.initial_cluster_state = input_cluster_state(input)?,
            "initial-cluster-token" => config.initial_cluster_token = input_text(input)?,
            "logger" => self.logger = input_text(input)?,
            "log-outputs" => config.log_outputs = input_strings(input)?,
            "log-level" => self.log_level = input_text(input)?,
            _ => {
                debug_assert!(false, "flag --{name} is marked supported but not handled");
                return Err("not supported".to_string());
            }
        }
        Ok(())
    }

    /// etcd's `SetFlagsFromEnv` and `verifyEnv`: variables for flags not on the command line
    /// are applied; a variable for a flag that is on the command line is an error; other
    /// `ETCD_*` variables are warnings.
    fn apply_env(
        &mut self,
        env: &[(String, String)],
        on_command_line: &HashSet<&str>,
        set_flags: &mut HashSet<&'static str>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        for (key, value) in env.iter().filter(|(key, _)| key.starts_with(ENV_PREFIX)) {
            let Some(flag) = FLAGS.iter().find(|flag| env_key(flag.name) == *key) else {
                warnings.push(format!("unrecognized environment variable {key}={value}"));
                continue;
            };
            if on_command_line.contains(flag.name) {
                return Err(ConfigError::EnvShadowedByFlag { key: key.clone() });
            }
            if value.is_empty() {
                // etcd does not use an empty variable, then reports it as unrecognized.
                warnings.push(format!("unrecognized environment variable {key}="));
                continue;
            }
            let value_error = |reason: String| ConfigError::InvalidEnvValue {
                key: key.clone(),
                value: value.clone(),
                reason,
            };
            let value = match (flag.kind, flag.status) {
                (Kind::Bool, Status::Ignored) => value.clone(),
                (Kind::Bool, _) => parse_go_bool(value)
                    .ok_or_else(|| value_error("parse error".to_string()))?
                    .to_string(),
                (Kind::Value, _) => value.clone(),
            };
            match flag.status {
                Status::Supported { .. } => {
                    self.apply(flag.name, Input::Text(&value))
                        .map_err(value_error)?;
                    set_flags.insert(flag.name);
                }
                Status::Refused { inert } if !inert.contains(&value.as_str()) => {
                    return Err(ConfigError::EnvNotSupported {
                        key: key.clone(),
                        flag: flag.name.to_string(),
                    });
                }
                Status::Refused { .. } => {}
                Status::Ignored => warnings.push(ignored_flag_warning(flag.name)),
                Status::Special if flag.name == "version" => {
                    warnings.push(format!(
                        "cannot set special environment variable {key}={value}"
                    ));
                }
                Status::Special => {}
            }
        }
        Ok(())
    }

    /// etcd's `embed.ConfigFromFile`: a YAML mapping keyed by flag names (matched without
    /// regard to case, as Go's JSON decoding does). A null value leaves the default. Strings
    /// may be given as any scalar; numbers must be integers; durations are integer
    /// nanoseconds as in etcd, or (a stead extension) Go duration strings such as `10ms`.
    fn apply_config_file(
        &mut self,
        path: &str,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::ReadConfigFile {
            path: path.to_string(),
            reason: error.to_string(),
        })?;
        let documents =
            YamlLoader::load_from_str(&text).map_err(|error| ConfigError::ConfigFileSyntax {
                path: path.to_string(),
                reason: error.to_string(),
            })?;
        let mapping = match documents.first() {
            None | Some(Yaml::Null) => return Ok(()),
            Some(Yaml::Hash(mapping)) => mapping,
            Some(_) => {
                return Err(ConfigError::ConfigFileNotMapping {
                    path: path.to_string(),
                });
            }
        };
        for (key, value) in mapping {
            let key_text = match key {
                Yaml::String(text) => text.clone(),
                Yaml::Integer(number) => number.to_string(),
                Yaml::Real(text) => text.clone(),
                Yaml::Boolean(flag) => flag.to_string(),
                _ => format!("{key:?}"),
            };
            if matches!(value, Yaml::Null) {
                continue;
            }
            let lowered = key_text.to_ascii_lowercase();
            if let Some(section) = CONFIG_FILE_TLS_SECTIONS
                .iter()
                .find(|section| **section == lowered)
            {
                if !yaml_is_unset(value) {
                    return Err(ConfigError::ConfigFileKeyNotSupported {
                        key: section.to_string(),
                    });
                }
                continue;
            }
            let unknown = || ConfigError::ConfigFileUnknownKey {
                path: path.to_string(),
                key: key_text.clone(),
            };
            let flag = FLAGS
                .iter()
                .find(|flag| flag.name == key_text)
                .or_else(|| find_flag(&lowered))
                .ok_or_else(unknown)?;
            match flag.status {
                Status::Supported { .. } => {
                    self.apply(flag.name, Input::Yaml(value))
                        .map_err(|reason| {
                            if flag.name.ends_with("-urls") {
                                ConfigError::ConfigFileUrls {
                                    key: flag.name.to_string(),
                                    reason,
                                }
                            } else {
                                ConfigError::ConfigFileValue {
                                    path: path.to_string(),
                                    key: flag.name.to_string(),
                                    reason,
                                }
                            }
                        })?;
                }
                Status::Refused { inert } => {
                    let inert_value =
                        yaml_scalar_text(value).is_some_and(|text| inert.contains(&text.as_str()));
                    if !inert_value {
                        return Err(ConfigError::ConfigFileKeyNotSupported {
                            key: flag.name.to_string(),
                        });
                    }
                }
                Status::Ignored => warnings.push(ignored_flag_warning(flag.name)),
                Status::Special => return Err(unknown()),
            }
        }
        Ok(())
    }

    /// etcd's `Config.Validate` plus what `etcdmain` derives after parsing (the initial
    /// cluster from `--name`, the default data directory), and the warnings etcd logs at
    /// startup about the values.
    fn finish(
        self,
        from_command_line: bool,
        set_flags: &HashSet<&'static str>,
        mut warnings: Vec<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let Builder {
            mut config,
            default_initial_cluster,
            logger,
            log_level,
        } = self;

        // etcd drops the default advertised client URL when only the listen URL is given.
        if from_command_line
            && set_flags.contains("listen-client-urls")
            && !set_flags.contains("advertise-client-urls")
        {
            config.advertise_client_urls.clear();
        }

        config.logger = match logger.as_str() {
            "zap" => Logger::Zap,
            "capnslog" => {
                warnings.push("[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead".to_string());
                Logger::Capnslog
            }
            _ => return Err(ConfigError::UnknownLogger(logger)),
        };
        check_log_outputs(config.logger, &mut config.log_outputs)?;
        config.log_level = match log_level.as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "panic" => LogLevel::Panic,
            "fatal" => LogLevel::Fatal,
            _ => return Err(ConfigError::UnknownLogLevel(log_level)),
        };

        check_bind_urls(&config.listen_peer_urls)?;
        check_bind_urls(&config.listen_client_urls)?;
        check_host_urls(
            "initial-advertise-peer-urls",
            &config.initial_advertise_peer_urls,
        )?;
        check_host_urls("advertise-client-urls", &config.advertise_client_urls)?;

        let heartbeat_interval_ms = duration_ms(config.heartbeat_interval);
        let election_timeout_ms = duration_ms(config.election_timeout);
        if heartbeat_interval_ms == 0 {
            return Err(ConfigError::HeartbeatIntervalZero(heartbeat_interval_ms));
        }
        if election_timeout_ms == 0 {
            return Err(ConfigError::ElectionTimeoutZero(election_timeout_ms));
        }
        if heartbeat_interval_ms.saturating_mul(5) > election_timeout_ms {
            return Err(ConfigError::ElectionTimeoutTooShort {
                election_timeout_ms,
                heartbeat_interval_ms,
            });
        }
        if election_timeout_ms > MAX_ELECTION_TIMEOUT_MS {
            return Err(ConfigError::ElectionTimeoutTooLong(election_timeout_ms));
        }
        if config.enable_lease_checkpoint_persist && !config.enable_lease_checkpoint {
            return Err(ConfigError::LeaseCheckpointPersistWithoutCheckpoint);
        }
        if config.enable_lease_checkpoint && !config.enable_lease_checkpoint_persist {
            warnings.push(
                "Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist".to_string(),
            );
        }
        if !config.listen_client_urls.is_empty() && config.advertise_client_urls.is_empty() {
            return Err(ConfigError::AdvertiseClientUrlsRequired);
        }

        // etcdmain: `UpdateDefaultClusterFromName`, then the default data directory.
        if config.name != DEFAULT_NAME && config.initial_cluster == default_initial_cluster {
            config.initial_cluster =
                initial_cluster_from_name(&config.name, &config.initial_advertise_peer_urls);
        }
        if config.data_dir.as_os_str().is_empty() {
            config.data_dir = PathBuf::from(format!("{}.stead", config.name));
        }
        membership::parse_initial_cluster(&config.initial_cluster)?;

        if let Ok(quota) = u64::try_from(config.quota_backend_bytes)
            && quota > MAX_RECOMMENDED_QUOTA_BACKEND_BYTES
        {
            warnings.push(format!(
                "backend quota {quota} exceeds maximum recommended quota {MAX_RECOMMENDED_QUOTA_BACKEND_BYTES}"
            ));
        }
        if config.max_request_bytes > MAX_RECOMMENDED_REQUEST_BYTES {
            warnings.push(format!(
                "MaxRequestBytes {} exceeds maximum recommended size {MAX_RECOMMENDED_REQUEST_BYTES}",
                config.max_request_bytes
            ));
        }
        config.warnings = warnings;
        Ok(config)
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// etcd's `setupLogging` checks of `--log-outputs`.
fn check_log_outputs(logger: Logger, outputs: &mut Vec<String>) -> Result<(), ConfigError> {
    if outputs.is_empty() {
        outputs.push("default".to_string());
    }
    match logger {
        Logger::Zap if outputs.len() > 1 && outputs.iter().any(|output| output == "default") => {
            Err(ConfigError::MultipleLogOutputsWithDefault)
        }
        Logger::Zap => Ok(()),
        Logger::Capnslog if outputs.len() != 1 => {
            let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
            Err(ConfigError::CapnslogMultipleOutputs(go_quote_list(
                &outputs,
            )))
        }
        Logger::Capnslog => match outputs[0].as_str() {
            "default" | "stderr" | "stdout" => Ok(()),
            other => Err(ConfigError::CapnslogUnknownOutput(other.to_string())),
        },
    }
}

/// etcd's `checkBindURLs`: a listen URL's host must be an IP address or `localhost`.
fn check_bind_urls(urls: &[Url]) -> Result<(), ConfigError> {
    for url in urls {
        if matches!(url.scheme(), "unix" | "unixs") {
            continue;
        }
        let host = url.hostname();
        if host != "localhost" && host.parse::<std::net::IpAddr>().is_err() {
            return Err(ConfigError::ListenUrlNotIp(url.to_string()));
        }
    }
    Ok(())
}

/// etcd's `checkHostURLs`: an advertised URL needs a host.
fn check_host_urls(flag: &'static str, urls: &[Url]) -> Result<(), ConfigError> {
    match urls.iter().find(|url| url.hostname().is_empty()) {
        None => Ok(()),
        Some(url) => Err(ConfigError::AdvertiseUrlEmptyHost {
            flag,
            urls: urls.iter().map(Url::as_str).collect::<Vec<_>>().join(","),
            url: url.to_string(),
        }),
    }
}

fn input_text(input: Input<'_>) -> Result<String, String> {
    match input {
        Input::Text(text) => Ok(text.to_string()),
        Input::Yaml(yaml) => yaml_scalar_text(yaml).ok_or_else(|| "expected a string".to_string()),
    }
}

fn input_bool(input: Input<'_>) -> Result<bool, String> {
    match input {
        Input::Text(text) => parse_go_bool(text).ok_or_else(|| "parse error".to_string()),
        Input::Yaml(Yaml::Boolean(flag)) => Ok(*flag),
        Input::Yaml(_) => Err("expected a boolean".to_string()),
    }
}

fn input_uint(input: Input<'_>) -> Result<u64, String> {
    match input {
        Input::Text(text) => parse_go_uint(text),
        Input::Yaml(Yaml::Integer(number)) => u64::try_from(*number)
            .map_err(|_| format!("expected a non-negative integer, got {number}")),
        Input::Yaml(_) => Err("expected a non-negative integer".to_string()),
    }
}

fn input_int(input: Input<'_>) -> Result<i64, String> {
    match input {
        Input::Text(text) => parse_go_int(text),
        Input::Yaml(Yaml::Integer(number)) => Ok(*number),
        Input::Yaml(_) => Err("expected an integer".to_string()),
    }
}

fn input_duration(input: Input<'_>) -> Result<Duration, String> {
    match input {
        Input::Text(text) => parse_go_duration(text),
        Input::Yaml(Yaml::String(text)) => parse_go_duration(text),
        Input::Yaml(Yaml::Integer(nanos)) => u64::try_from(*nanos)
            .map(Duration::from_nanos)
            .map_err(|_| format!("expected a non-negative duration, got {nanos}")),
        Input::Yaml(_) => Err(
            "expected a duration (integer nanoseconds, or a string such as \"10ms\")".to_string(),
        ),
    }
}

fn input_urls(input: Input<'_>) -> Result<Vec<Url>, String> {
    membership::parse_url_list(&input_text(input)?).map_err(|error| error.to_string())
}

/// A comma-separated list kept sorted and unique (etcd's `UniqueStringsValue`); in a config
/// file, a YAML list (etcd's form) or a comma-separated string.
fn input_strings(input: Input<'_>) -> Result<Vec<String>, String> {
    let mut items: Vec<String> = match input {
        Input::Yaml(Yaml::Array(items)) => items
            .iter()
            .map(|item| {
                yaml_scalar_text(item).ok_or_else(|| "expected a list of strings".to_string())
            })
            .collect::<Result<_, _>>()?,
        input => input_text(input)?.split(',').map(str::to_string).collect(),
    };
    items.sort();
    items.dedup();
    Ok(items)
}

fn input_cluster_state(input: Input<'_>) -> Result<ClusterState, String> {
    let text = input_text(input)?;
    match (text.as_str(), input) {
        ("new", _) => Ok(ClusterState::New),
        ("existing", _) => Ok(ClusterState::Existing),
        // etcd's selective flag value says only this.
        (_, Input::Text(_)) => Err("invalid value".to_string()),
        // A config file may leave it empty (`new`); otherwise etcd's Validate text.
        ("", Input::Yaml(_)) => Ok(ClusterState::New),
        (other, Input::Yaml(_)) => Err(format!("unexpected clusterState {}", go_quote(other))),
    }
}

/// A YAML scalar as the string Go would decode it into (sigs.k8s.io/yaml turns scalars into
/// strings for string fields).
fn yaml_scalar_text(yaml: &Yaml) -> Option<String> {
    match yaml {
        Yaml::String(text) | Yaml::Real(text) => Some(text.clone()),
        Yaml::Integer(number) => Some(number.to_string()),
        Yaml::Boolean(flag) => Some(flag.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// Whether a config-file TLS section sets nothing (as etcd's sample config file does).
fn yaml_is_unset(yaml: &Yaml) -> bool {
    match yaml {
        Yaml::Null | Yaml::Boolean(false) => true,
        Yaml::String(text) => text.is_empty(),
        Yaml::Hash(entries) => entries.values().all(yaml_is_unset),
        _ => false,
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

const PARSE_ERROR: &str = "parse error";
const RANGE_ERROR: &str = "value out of range";

/// Go's `strconv.ParseUint(text, 0, 64)` as Go's flag package reports it: base prefixes
/// (`0x`, `0o`, `0b`, a leading `0` for octal) and `_` digit separators.
fn parse_go_uint(text: &str) -> Result<u64, String> {
    let (radix, digits) = match text.as_bytes() {
        [b'0', b'x' | b'X', _, ..] => (16, &text[2..]),
        [b'0', b'o' | b'O', _, ..] => (8, &text[2..]),
        [b'0', b'b' | b'B', _, ..] => (2, &text[2..]),
        [b'0', ..] => (8, &text[1..]),
        [] => return Err(PARSE_ERROR.to_string()),
        _ => (10, text),
    };
    let mut value: u64 = 0;
    let mut underscores = false;
    for byte in digits.bytes() {
        if byte == b'_' {
            underscores = true;
            continue;
        }
        let digit = (byte as char)
            .to_digit(radix)
            .ok_or_else(|| PARSE_ERROR.to_string())?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|value| value.checked_add(u64::from(digit)))
            .ok_or_else(|| RANGE_ERROR.to_string())?;
    }
    if underscores && !go_underscores_ok(text) {
        return Err(PARSE_ERROR.to_string());
    }
    Ok(value)
}

/// Go's `underscoreOK`: separators only between digits (or right after a base prefix).
fn go_underscores_ok(text: &str) -> bool {
    let bytes = text.strip_prefix(['+', '-']).unwrap_or(text).as_bytes();
    let mut saw = b'^';
    let mut index = 0;
    let mut hex = false;
    if bytes.len() >= 2
        && bytes[0] == b'0'
        && matches!(bytes[1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        index = 2;
        saw = b'0';
        hex = bytes[1].eq_ignore_ascii_case(&b'x');
    }
    for &byte in &bytes[index..] {
        if byte.is_ascii_digit() || (hex && byte.is_ascii_hexdigit()) {
            saw = b'0';
        } else if byte == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Go's `strconv.ParseInt(text, 0, 64)` as Go's flag package reports it.
fn parse_go_int(text: &str) -> Result<i64, String> {
    let (negative, magnitude) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = parse_go_uint(magnitude)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
            .ok_or_else(|| RANGE_ERROR.to_string())
    } else {
        i64::try_from(magnitude).map_err(|_| RANGE_ERROR.to_string())
    }
}

/// Go's `time.ParseDuration` (`300ms`, `1.5h`, `2h45m`), as Go's flag package reports it.
/// Negative durations are refused: no setting here has a use for one.
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let parse_error = || PARSE_ERROR.to_string();
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return if rest == "-0" {
            Ok(Duration::ZERO)
        } else {
            Err(parse_error())
        };
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(parse_error());
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let integer_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let integer = &rest[..integer_end];
        rest = &rest[integer_end..];
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let fraction_end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            fraction = &after_dot[..fraction_end];
            rest = &after_dot[fraction_end..];
        }
        if integer.is_empty() && fraction.is_empty() {
            return Err(parse_error());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_nanos: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(parse_error()),
        };
        rest = &rest[unit_end..];
        let integer_value: u128 = if integer.is_empty() {
            0
        } else {
            integer.parse().map_err(|_| parse_error())?
        };
        total_nanos = integer_value
            .checked_mul(unit_nanos)
            .and_then(|nanos| nanos.checked_add(total_nanos))
            .ok_or_else(parse_error)?;
        // Go keeps the fraction's leading digits and truncates the result to nanoseconds;
        // 18 digits are below a nanosecond for any unit and keep the product within u128.
        let mut scale: u128 = 1;
        let mut fraction_value: u128 = 0;
        for digit in fraction.bytes().take(18) {
            fraction_value = fraction_value * 10 + u128::from(digit - b'0');
            scale *= 10;
        }
        total_nanos += fraction_value * unit_nanos / scale;
        if total_nanos > u128::from(i64::MAX.unsigned_abs()) {
            return Err(parse_error());
        }
    }
    let nanos = u64::try_from(total_nanos).map_err(|_| parse_error())?;
    Ok(Duration::from_nanos(nanos))
}

/// The `--help` text: etcd's usage section, then the supported flags by group, then the
/// etcd flags stead recognises but does not support yet.
fn help_text() -> String {
    let mut text = String::from(
        "Usage:\n\n  \
         stead [flags]\n    Start a stead server.\n\n  \
         stead --version\n    Show the version of stead.\n\n  \
         stead -h | --help\n    Show the help information about stead.\n\n  \
         stead --config-file\n    Path to the server configuration file. Note that if a configuration file is \
         provided, other command line flags and environment variables will be ignored.\n",
    );
    for (group, title) in [
        (Member, "Member"),
        (Clustering, "Clustering"),
        (Logging, "Logging"),
        (Experimental, "Experimental feature"),
        (Unsafe, "Unsafe feature"),
    ] {
        text.push_str(&format!("\n{title}:\n"));
        for flag in FLAGS {
            if let Status::Supported {
                group: flag_group,
                default,
                help,
            } = flag.status
                && flag_group == group
            {
                text.push_str(&format!("  --{} {default}\n    {help}\n", flag.name));
            }
        }
    }
    text.push_str(
        "\nEvery flag can also be set with an ETCD_* environment variable (--initial-cluster: \
         ETCD_INITIAL_CLUSTER); a flag may not be given both ways.\n\
         \nRecognised etcd flags that stead does not support yet (refused unless set to a value \
         that matches what stead does anyway, such as --enable-v2=false):\n",
    );
    let mut line = String::from(" ");
    for flag in FLAGS
        .iter()
        .filter(|flag| matches!(flag.status, Status::Refused { .. }))
    {
        if line.len() + flag.name.len() + 3 > 100 {
            text.push_str(line.trim_end());
            text.push('\n');
            line = String::from(" ");
        }
        line.push_str(&format!(" --{}", flag.name));
    }
    text.push_str(line.trim_end());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        match parse(&args, &env)? {
            Invocation::Run(config) => Ok(*config),
            other => panic!("expected a configuration, got {other:?}"),
        }
    }

    fn error(args: &[&str], env: &[(&str, &str)]) -> String {
        run(args, env).unwrap_err().to_string()
    }

    fn urls(urls: &[Url]) -> Vec<&str> {
        urls.iter().map(Url::as_str).collect()
    }

    #[test]
    fn defaults_are_etcds() {
        let config = run(&[], &[]).unwrap();
        assert_eq!(config, ServerConfig::default());
        assert_eq!(config.name, "default");
        assert_eq!(config.data_dir, PathBuf::from("default.stead"));
        assert_eq!(config.initial_cluster, "default=http://localhost:2380");
        assert_eq!(urls(&config.listen_client_urls), ["http://localhost:2379"]);
        assert_eq!(
            urls(&config.advertise_client_urls),
            ["http://localhost:2379"]
        );
        assert_eq!(urls(&config.listen_peer_urls), ["http://localhost:2380"]);
        assert_eq!(
            config.quota_backend_bytes_effective(),
            Some(2 * 1024 * 1024 * 1024)
        );
        assert_eq!(config.election_ticks(), 10);
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn flags_take_go_syntax() {
        let config = run(
            &[
                "--name",
                "infra0",
                "-data-dir=/var/d",
                "--wal-dir",
                "/var/w",
                "-snapshot-count",
                "0x10",
                "--heartbeat-interval=50",
                "--election-timeout",
                "500",
                "--quota-backend-bytes=-1",
                "--backend-batch-interval=1.5ms",
                "--backend-batch-limit=-3",
                "--max-txn-ops=1_000",
                "--initial-cluster-state=existing",
                "--log-level=debug",
                "--log-outputs=stdout,stderr,stdout",
                "--name=infra1",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(config.name, "infra1");
        assert_eq!(config.data_dir, PathBuf::from("/var/d"));
        assert_eq!(config.wal_dir, Some(PathBuf::from("/var/w")));
        assert_eq!(config.snapshot_count, 16);
        assert_eq!(config.heartbeat_interval, Duration::from_millis(50));
        assert_eq!(config.election_timeout, Duration::from_millis(500));
        assert_eq!(config.quota_backend_bytes_effective(), None);
        assert_eq!(
            config.backend_batch_interval,
            Some(Duration::from_micros(1500))
        );
        assert_eq!(config.backend_batch_limit, None);
        assert_eq!(config.max_txn_ops, 1000);
        assert_eq!(config.initial_cluster_state, ClusterState::Existing);
        assert_eq!(config.log_level, LogLevel::Debug);
        assert_eq!(config.log_outputs, ["stderr", "stdout"]);
        // etcd's rule: a non-default name with the default initial cluster.
        assert_eq!(config.initial_cluster, "infra1=http://localhost:2380");
    }

    #[test]
    fn name_rule_uses_the_advertised_peer_urls() {
        let config = run(
            &[
                "--name",
                "n1",
                "--initial-advertise-peer-urls",
                "http://10.0.0.1:2380,http://10.0.0.1:2390",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            config.initial_cluster,
            "n1=http://10.0.0.1:2380,n1=http://10.0.0.1:2390"
        );
        assert_eq!(config.data_dir, PathBuf::from("n1.stead"));
        let explicit = run(&["--name", "n1", "--initial-cluster", "n1=http://a:1"], &[]).unwrap();
        assert_eq!(explicit.initial_cluster, "n1=http://a:1");
    }

    #[test]
    fn syntax_errors_are_gos() {
        // Texts checked against etcd 3.4.23.
        assert_eq!(
            error(&["--bogus"], &[]),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(
            error(&["--bogus=1"], &[]),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(
            error(&["-bogus"], &[]),
            "flag provided but not defined: -bogus"
        );
        assert_eq!(error(&["foo"], &[]), "'foo' is not a valid flag");
        assert_eq!(error(&["--name"], &[]), "flag needs an argument: -name");
        assert_eq!(
            error(&["--initial-cluster-state=bad"], &[]),
            "invalid value \"bad\" for flag -initial-cluster-state: invalid value"
        );
        assert_eq!(
            error(&["--heartbeat-interval=abc"], &[]),
            "invalid value \"abc\" for flag -heartbeat-interval: parse error"
        );
        assert_eq!(
            error(&["--snapshot-count=-1"], &[]),
            "invalid value \"-1\" for flag -snapshot-count: parse error"
        );
        assert_eq!(
            error(&["--listen-client-urls=localhost:2379"], &[]),
            "invalid value \"localhost:2379\" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: localhost:2379"
        );
        assert_eq!(
            error(&["--listen-client-urls=http://a:b"], &[]),
            "invalid value \"http://a:b\" for flag -listen-client-urls: parse \"http://a:b\": invalid port \":b\" after host"
        );
        assert_eq!(error(&["---x"], &[]), "bad flag syntax: ---x");
        assert_eq!(
            error(&["--enable-v2=maybe"], &[]),
            "invalid boolean value \"maybe\" for -enable-v2: parse error"
        );
        assert_eq!(error(&["--", "x"], &[]), "'x' is not a valid flag");
        assert_eq!(
            error(&["--max-wals=99999999999999999999"], &[]),
            "invalid value \"99999999999999999999\" for flag -max-wals: value out of range"
        );
        let exit_code = run(&["--bogus"], &[]).unwrap_err().exit_code();
        assert_eq!(exit_code, 2);
        assert_eq!(run(&["foo"], &[]).unwrap_err().exit_code(), 1);
    }

    #[test]
    fn values_may_start_with_a_dash() {
        let config = run(
            &["--name", "-odd", "--initial-cluster", "-odd=http://a:1"],
            &[],
        )
        .unwrap();
        assert_eq!(config.name, "-odd");
    }

    #[test]
    fn help_and_version() {
        let help = parse(&[OsString::from("-h")], &[]).unwrap();
        let Invocation::Help(text) = help else {
            panic!("expected help")
        };
        assert!(text.contains("--initial-cluster-token 'etcd-cluster'"));
        assert!(text.contains("--data-dir '${name}.stead'"));
        assert!(text.contains("--auto-compaction-retention"));
        for flag in FLAGS
            .iter()
            .filter(|flag| matches!(flag.status, Status::Supported { .. }))
        {
            assert!(
                text.contains(&format!("--{} ", flag.name)),
                "--{} missing from help",
                flag.name
            );
        }
        assert_eq!(
            parse(&[OsString::from("--help")], &[]).unwrap(),
            Invocation::Help(text)
        );
        assert_eq!(
            parse(&[OsString::from("--version")], &[]).unwrap(),
            Invocation::Version
        );
        assert!(run(&["--version=false"], &[]).is_ok());
        assert_eq!(
            error(&["--version", "foo"], &[]),
            "'foo' is not a valid flag"
        );
    }

    #[test]
    fn refused_flags_name_themselves() {
        assert_eq!(
            error(&["--auto-compaction-retention", "1h"], &[]),
            "stead: flag --auto-compaction-retention is not supported yet"
        );
        assert_eq!(
            error(&["--client-cert-auth"], &[]),
            "stead: flag --client-cert-auth is not supported yet"
        );
        assert_eq!(
            error(&["--experimental-initial-corrupt-check=true"], &[]),
            "stead: flag --experimental-initial-corrupt-check is not supported yet"
        );
        // Values that ask for what stead does anyway are accepted.
        assert!(
            run(
                &[
                    "--enable-v2=false",
                    "--proxy",
                    "off",
                    "--cert-file=",
                    "--auto-compaction-retention=0"
                ],
                &[]
            )
            .is_ok()
        );
        assert!(run(&["--enable-grpc-gateway=false"], &[]).is_ok());
    }

    #[test]
    fn every_flag_is_listed_once_and_supported_ones_are_handled() {
        let mut names = HashSet::new();
        for flag in FLAGS {
            assert!(names.insert(flag.name), "--{} listed twice", flag.name);
            if let Status::Supported { default, .. } = flag.status {
                // Every supported flag parses its own documented default.
                let value = match (flag.name, default.trim_matches('\'')) {
                    ("data-dir", _) => "",
                    // Shown as '' like etcd; Go's duration syntax needs a unit or "0".
                    ("backend-batch-interval", _) => "0",
                    (_, value) => value,
                };
                assert!(
                    Builder::default()
                        .apply(flag.name, Input::Text(value))
                        .is_ok(),
                    "--{}",
                    flag.name
                );
            }
        }
        assert!(
            command()
                .try_get_matches_from(["--name=a", "--name=b"])
                .is_ok()
        );
    }

    #[test]
    fn legacy_flags_are_ignored_with_etcds_warning() {
        let config = run(&["--v", "--peer-heartbeat-interval=5"], &[]).unwrap();
        assert_eq!(
            config.warnings,
            [
                "flag \"-v\" is no longer supported - ignoring.",
                "flag \"-peer-heartbeat-interval\" is no longer supported - ignoring."
            ]
        );
    }

    #[test]
    fn environment_variables_set_flags() {
        let config = run(
            &["--name", "n1"],
            &[
                ("ETCD_DATA_DIR", "/data"),
                ("ETCD_INITIAL_CLUSTER", "n1=http://10.0.0.1:2380"),
                ("ETCD_INITIAL_ADVERTISE_PEER_URLS", "http://10.0.0.1:2380"),
                ("ETCD_HEARTBEAT_INTERVAL", "200"),
                ("ETCD_ELECTION_TIMEOUT", "2000"),
                ("ETCD_ENABLE_V2", "false"),
                ("ETCD_BOGUS", "1"),
                ("ETCD_WAL_DIR", ""),
                ("PATH", "/bin"),
            ],
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/data"));
        assert_eq!(config.initial_cluster, "n1=http://10.0.0.1:2380");
        assert_eq!(config.heartbeat_interval, Duration::from_millis(200));
        assert_eq!(
            config.warnings,
            [
                "unrecognized environment variable ETCD_BOGUS=1",
                "unrecognized environment variable ETCD_WAL_DIR="
            ]
        );
    }

    #[test]
    fn environment_errors() {
        // etcd 3.4.23 and 3.5 exit on this conflict (plog.Fatalf / lg.Fatal).
        assert_eq!(
            error(&["--name", "bar"], &[("ETCD_NAME", "foo")]),
            "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag \
             (either unset environment variable or disable flag)"
        );
        assert_eq!(
            error(&[], &[("ETCD_HEARTBEAT_INTERVAL", "abc")]),
            "invalid value \"abc\" for ETCD_HEARTBEAT_INTERVAL: parse error"
        );
        assert_eq!(
            error(&[], &[("ETCD_CERT_FILE", "/x.pem")]),
            "stead: environment variable ETCD_CERT_FILE (flag --cert-file) is not supported yet"
        );
        assert_eq!(
            error(&[], &[("ETCD_ENABLE_V2", "yes")]),
            "invalid value \"yes\" for ETCD_ENABLE_V2: parse error"
        );
    }

    #[test]
    fn lease_checkpoint_flags() -> Result<(), ConfigError> {
        let config = run(&[], &[])?;
        assert!(!config.enable_lease_checkpoint && !config.enable_lease_checkpoint_persist);
        let config = run(
            &["--experimental-enable-lease-checkpoint"],
            &[("ETCD_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT_PERSIST", "true")],
        )?;
        assert!(config.enable_lease_checkpoint && config.enable_lease_checkpoint_persist);
        let config = run(&["--experimental-enable-lease-checkpoint=true"], &[])?;
        assert_eq!(
            config.warnings,
            [
                "Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist"
            ]
        );
        assert_eq!(
            error(&["--experimental-enable-lease-checkpoint-persist"], &[]),
            "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint"
        );
        Ok(())
    }

    #[test]
    fn validation_uses_etcds_texts() {
        // Texts checked against etcd 3.4.23.
        assert_eq!(
            error(&["--election-timeout=400"], &[]),
            "--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"
        );
        assert_eq!(
            error(
                &["--election-timeout=60000", "--heartbeat-interval=1000"],
                &[]
            ),
            "--election-timeout[60000ms] is too long, and should be set less than 50000ms"
        );
        assert_eq!(
            error(&["--logger=bogus"], &[]),
            "unknown logger option \"bogus\""
        );
        assert_eq!(
            error(&["--listen-peer-urls=http://example.com:1"], &[]),
            "expected IP in URL for binding (http://example.com:1)"
        );
        assert_eq!(
            error(&["--advertise-client-urls=http://:1"], &[]),
            "--advertise-client-urls \"http://:1\" must be \"host:port\" (unexpected empty host (http://:1))"
        );
        assert_eq!(
            error(&["--listen-client-urls=http://127.0.0.1:2379"], &[]),
            "--advertise-client-urls is required when --listen-client-urls is set explicitly"
        );
        assert_eq!(
            error(&["--heartbeat-interval=0"], &[]),
            "--heartbeat-interval must be >0 (set to 0ms)"
        );
        assert_eq!(
            error(&["--log-outputs=default,stderr"], &[]),
            "multi logoutput for \"default\" is not supported yet"
        );
        assert!(error(&["--log-level=bogus"], &[]).starts_with("unknown log level \"bogus\""));
        assert_eq!(
            error(&["--initial-cluster=a=ftp://x:1"], &[]),
            "URL scheme must be http, https, unix, or unixs: ftp://x:1"
        );
        assert!(
            run(
                &["--listen-peer-urls=unix://anything:1,http://[::1]:2380,http://127.0.0.1:2380"],
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn warnings_about_values() {
        let config = run(
            &[
                "--quota-backend-bytes=9000000000",
                "--max-request-bytes=20000000",
                "--logger=capnslog",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            config.warnings,
            [
                "[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead",
                "backend quota 9000000000 exceeds maximum recommended quota 8589934592",
                "MaxRequestBytes 20000000 exceeds maximum recommended size 10485760",
            ]
        );
        assert_eq!(config.quota_backend_bytes_effective(), Some(9_000_000_000));
    }

    #[test]
    fn go_numbers_and_durations() {
        assert_eq!(parse_go_uint("017"), Ok(15));
        assert_eq!(parse_go_uint("08"), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse_go_uint("0"), Ok(0));
        assert_eq!(parse_go_uint("0b101"), Ok(5));
        assert_eq!(parse_go_uint("1__0"), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse_go_uint(""), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_go_int("9223372036854775808"),
            Err(RANGE_ERROR.to_string())
        );
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Ok(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_go_duration(".5us"), Ok(Duration::from_nanos(500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse_go_duration("1d"), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse_go_duration("-1s"), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse_go_duration("."), Err(PARSE_ERROR.to_string()));
        assert_eq!(
            parse_go_duration("1.0000000000000000000000000000000000001h"),
            Ok(Duration::from_secs(3600))
        );
    }
}
