//! steadctl: an etcdctl-compatible command-line client for stead (and
//! etcd). Its output — standard output, standard error and exit status —
//! matches etcdctl 3.4's byte for byte for the commands it implements
//! (`get`, `put`, `del`, `txn`, `compaction`, `watch`, `lease
//! grant|revoke|timetolive|list|keep-alive`, `endpoint health|status`,
//! `member add|remove|update|list|promote`, `move-leader`), including usage
//! screens and error texts.
//!
//! Layout: `cli` walks the command line (with `tree` for the command tree
//! and `flags` for pflag-style flags), `commands` runs a command through
//! `client` (gRPC) and `printer` (the `-w` formats); `ops` and `txn` turn
//! arguments and transaction text into requests; `watch` runs the watch
//! command and its stream; `lease` the lease commands and the keep-alive
//! loop; `cluster` the membership commands and `move-leader`; `gofmt`,
//! `gourl` and `layout` reproduce the Go parsing and formatting etcdctl's
//! input and output go through. All output passes through
//! `output` (except that of the command `watch` runs per event, which
//! writes to steadctl's own standard output and error, as in etcdctl).

pub mod cli;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod error;
pub mod flags;
pub mod gofmt;
pub mod gourl;
pub mod layout;
pub mod lease;
pub mod ops;
pub mod output;
pub mod printer;
pub mod tree;
pub mod txn;
pub mod watch;
