//! Command-line flags: etcd's benchmark tool's names and defaults.
//!
//! Owns the clap definitions of the global flags (`--endpoints`, `--conns`,
//! `--clients`, `--rate`, `--dial-timeout`, `--json`; accepted before or
//! after the subcommand) and of each subcommand, and parsing Go-style
//! durations (`500ms`, `5s`, `1m30s`) as etcd's flags take them.
//!
//! Does not own: checks that need several flags together (each workload
//! validates its own combination), running anything.

use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// stead-bench: a benchmark client for the etcd v3 gRPC API (etcd and stead
/// alike), modeled on etcd's `benchmark` tool.
#[derive(Debug, Parser)]
#[command(name = "stead-bench", version)]
pub struct Cli {
    /// gRPC endpoints, comma-separated (`host:port` or `http://host:port`).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,

    /// Total number of gRPC connections.
    #[arg(long, global = true, default_value_t = 1, value_parser = positive_usize())]
    pub conns: usize,

    /// Total number of concurrent clients (they share connections round-robin).
    #[arg(long, global = true, default_value_t = 1, value_parser = positive_usize())]
    pub clients: usize,

    /// Maximum requests per second over all clients (0 is no limit).
    #[arg(long, global = true, default_value_t = 0)]
    pub rate: u64,

    /// Dial timeout for client connections (0 waits as long as the OS does).
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    pub dial_timeout: Duration,

    /// Print one JSON line with the results instead of the text report.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark put.
    Put(PutArgs),
    /// Benchmark range.
    Range(RangeArgs),
    /// Benchmark txn-put (transactions of --txn-ops puts).
    TxnPut(TxnPutArgs),
    /// Benchmark a mixed load of txn-put and txn-range.
    TxnMixed(TxnMixedArgs),
    /// Benchmark watch: put-to-event latency with many watchers.
    Watch(WatchArgs),
    /// Benchmark serializable gets while many unsynced watchers catch up.
    WatchGet(WatchGetArgs),
    /// Benchmark lease keepalive.
    LeaseKeepalive(LeaseKeepaliveArgs),
    /// Benchmark STM transactions (read keys, write some, retry on conflict).
    Stm(StmArgs),
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Key size of put request.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of put request.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Use sequential keys (key i % key-space-size) instead of random ones.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Total number of put requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Interval to compact the database (0 is never), e.g. 5m.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub compact_interval: Duration,
    /// Delta between current revision and compact revision.
    #[arg(long, default_value_t = 1000)]
    pub compact_index_delta: i64,
    /// Print the KV hash and database size of the first endpoint afterwards.
    #[arg(long)]
    pub check_hashkv: bool,
}

#[derive(Debug, Args)]
pub struct RangeArgs {
    /// Key to read (or start of the range).
    pub key: String,
    /// End of the range (exclusive); a single key without it.
    pub end: Option<String>,
    /// Linearizable (l) or Serializable (s).
    #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
    pub consistency: Consistency,
    /// Total number of range requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Maximum keys per range (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Ask for the count only, not the keys.
    #[arg(long)]
    pub count_only: bool,
}

#[derive(Debug, Args)]
pub struct TxnPutArgs {
    /// Key size of txn put.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of txn put.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Number of puts per txn.
    #[arg(long, default_value_t = 1)]
    pub txn_ops: u64,
    /// Total number of txn requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
}

#[derive(Debug, Args)]
pub struct TxnMixedArgs {
    /// Key the reads start at.
    pub key: String,
    /// End of the read range (exclusive); a single key without it.
    pub end: Option<String>,
    /// Read/write ops ratio.
    #[arg(long, default_value_t = 1.0)]
    pub rw_ratio: f64,
    /// Key size of mixed txn.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of mixed txn.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Total number of txn requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Linearizable (l) or Serializable (s) reads.
    #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
    pub consistency: Consistency,
    /// Read operation range result limit.
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Total number of watchers.
    #[arg(long, default_value_t = 100)]
    pub watchers: u64,
    /// Total watch streams (watchers are spread over them).
    #[arg(long, default_value_t = 10, value_parser = positive_u64())]
    pub streams: u64,
    /// Total number of keys to be watched (watcher i watches key i % this).
    #[arg(long, default_value_t = 1, value_parser = positive_u64())]
    pub watched_key_total: u64,
    /// Number of put requests.
    #[arg(long, default_value_t = 1000)]
    pub put_total: u64,
    /// Number of keys to put per second (0 is no limit).
    #[arg(long, default_value_t = 100)]
    pub put_rate: u64,
    /// Key size of watched keys.
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value size of puts (at least 8: the value carries the put's number).
    #[arg(long, default_value_t = 32)]
    pub val_size: usize,
    /// PrevKV enabled on watch requests.
    #[arg(long)]
    pub prevkv: bool,
}

#[derive(Debug, Args)]
pub struct WatchGetArgs {
    /// Total number of watchers.
    #[arg(long, default_value_t = 10000)]
    pub watchers: u64,
    /// Total number of watcher streams.
    #[arg(long, default_value_t = 1, value_parser = positive_u64())]
    pub streams: u64,
    /// Number of events per watcher.
    #[arg(long, default_value_t = 8)]
    pub events: u64,
}

#[derive(Debug, Args)]
pub struct LeaseKeepaliveArgs {
    /// Total number of lease keepalive requests.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
}

#[derive(Debug, Args)]
pub struct StmArgs {
    /// Read Committed (c), Repeatable Reads (r), Serializable (s), or
    /// Serializable Snapshot (ss).
    #[arg(long, value_enum, default_value_t = Isolation::RepeatableReads)]
    pub isolation: Isolation,
    /// Total unique keys accessible by the benchmark.
    #[arg(long, default_value_t = 1)]
    pub keys: u64,
    /// Total number of completed STM transactions.
    #[arg(long, default_value_t = 10000)]
    pub total: u64,
    /// Number of keys to access per transaction.
    #[arg(long, default_value_t = 1)]
    pub keys_per_txn: u64,
    /// Percentage of keys to overwrite per transaction.
    #[arg(long, default_value_t = 50)]
    pub txn_wr_percent: u64,
    /// Value size of each STM put request.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
}

/// Read consistency of range requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    #[value(name = "l")]
    Linearizable,
    #[value(name = "s")]
    Serializable,
}

/// Isolation level of STM transactions (etcd's `concurrency` package names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Isolation {
    /// Reads are not checked at commit.
    #[value(name = "c")]
    ReadCommitted,
    /// Commit fails if a key read has changed since it was read.
    #[value(name = "r")]
    RepeatableReads,
    /// As `r`, and all reads are made at the revision of the first read.
    #[value(name = "s")]
    Serializable,
    /// As `s`, and commit also fails if a key written changed after that revision.
    #[value(name = "ss")]
    SerializableSnapshot,
}

fn positive_usize() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..)
}

fn positive_u64() -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::new().range(1..)
}

/// Parses a Go duration: a sequence of decimal numbers with units (`ns`,
/// `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `1m30s`, `1.5s`; or a bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = text;
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {text:?} (e.g. 5s, 500ms)"))?;
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid number in duration {text:?}"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        total_ns += value * unit_ns;
        rest = after;
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(format!("duration {text:?} is too long"));
    }
    Ok(Duration::from_nanos(total_ns as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stead-bench").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_have_etcds_defaults() {
        let cli = parse(&["put"]).unwrap();
        assert_eq!(cli.endpoints, ["127.0.0.1:2379"]);
        assert_eq!((cli.conns, cli.clients, cli.rate), (1, 1, 0));
        assert_eq!(cli.dial_timeout, Duration::from_secs(5));
        assert!(!cli.json);
        let Command::Put(put) = cli.command else {
            panic!("not put")
        };
        assert_eq!((put.key_size, put.val_size, put.key_space_size), (8, 8, 1));
        assert_eq!(put.total, 10000);
        assert!(!put.sequential_keys);
        assert_eq!(put.compact_interval, Duration::ZERO);
        assert_eq!(put.compact_index_delta, 1000);
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let before = parse(&[
            "--endpoints",
            "a:1,http://b:2",
            "--conns",
            "10",
            "--clients=100",
            "put",
            "--total",
            "5",
        ])
        .unwrap();
        let after = parse(&[
            "put",
            "--total",
            "5",
            "--endpoints=a:1,http://b:2",
            "--conns",
            "10",
            "--clients",
            "100",
            "--json",
            "--rate",
            "7",
        ])
        .unwrap();
        for cli in [&before, &after] {
            assert_eq!(cli.endpoints, ["a:1", "http://b:2"]);
            assert_eq!((cli.conns, cli.clients), (10, 100));
        }
        assert!(after.json);
        assert_eq!(after.rate, 7);
    }

    #[test]
    fn zero_conns_or_clients_are_refused() {
        assert!(parse(&["--conns", "0", "put"]).is_err());
        assert!(parse(&["--clients", "0", "put"]).is_err());
        assert!(parse(&["watch", "--streams", "0"]).is_err());
    }

    #[test]
    fn range_takes_a_key_an_optional_end_and_a_consistency() {
        let cli = parse(&["range", "foo", "--consistency", "s", "--limit", "3"]).unwrap();
        let Command::Range(range) = cli.command else {
            panic!("not range")
        };
        assert_eq!((range.key.as_str(), range.end), ("foo", None));
        assert_eq!(range.consistency, Consistency::Serializable);
        assert_eq!(
            (range.total, range.limit, range.count_only),
            (10000, 3, false)
        );
        let cli = parse(&["range", "a", "z", "--count-only"]).unwrap();
        let Command::Range(range) = cli.command else {
            panic!("not range")
        };
        assert_eq!(range.end.as_deref(), Some("z"));
        assert_eq!(range.consistency, Consistency::Linearizable);
        assert!(range.count_only);
        assert!(parse(&["range"]).is_err(), "the key is required");
        assert!(parse(&["range", "a", "--consistency", "x"]).is_err());
    }

    #[test]
    fn subcommands_use_etcds_names_and_defaults() {
        let Command::TxnPut(txn) = parse(&["txn-put", "--txn-ops", "4"]).unwrap().command else {
            panic!("not txn-put")
        };
        assert_eq!((txn.txn_ops, txn.total, txn.key_space_size), (4, 10000, 1));
        let Command::TxnMixed(mixed) = parse(&["txn-mixed", "k", "--rw-ratio", "3"])
            .unwrap()
            .command
        else {
            panic!("not txn-mixed")
        };
        assert_eq!((mixed.rw_ratio, mixed.limit), (3.0, 1000));
        let Command::Watch(watch) = parse(&["watch"]).unwrap().command else {
            panic!("not watch")
        };
        assert_eq!(
            (watch.watchers, watch.streams, watch.watched_key_total),
            (100, 10, 1)
        );
        assert_eq!((watch.put_total, watch.put_rate), (1000, 100));
        assert_eq!((watch.key_size, watch.val_size), (32, 32));
        let Command::WatchGet(get) = parse(&["watch-get"]).unwrap().command else {
            panic!("not watch-get")
        };
        assert_eq!((get.watchers, get.streams, get.events), (10000, 1, 8));
        let Command::LeaseKeepalive(lease) = parse(&["lease-keepalive"]).unwrap().command else {
            panic!("not lease-keepalive")
        };
        assert_eq!(lease.total, 10000);
        let Command::Stm(stm) = parse(&["stm", "--isolation", "ss", "--keys", "9"])
            .unwrap()
            .command
        else {
            panic!("not stm")
        };
        assert_eq!(stm.isolation, Isolation::SerializableSnapshot);
        assert_eq!((stm.keys, stm.keys_per_txn, stm.txn_wr_percent), (9, 1, 50));
        let Command::Stm(stm) = parse(&["stm"]).unwrap().command else {
            panic!("not stm")
        };
        assert_eq!(stm.isolation, Isolation::RepeatableReads);
    }

    #[test]
    fn unknown_subcommands_and_flags_are_refused() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["get"]).is_err());
        assert!(parse(&["put", "--nope"]).is_err());
    }

    #[test]
    fn durations_parse_like_go() {
        let ok = |text: &str, expected: Duration| assert_eq!(parse_duration(text), Ok(expected));
        ok("0", Duration::ZERO);
        ok("5s", Duration::from_secs(5));
        ok("500ms", Duration::from_millis(500));
        ok("1m30s", Duration::from_secs(90));
        ok("1.5s", Duration::from_millis(1500));
        ok("2h", Duration::from_secs(7200));
        ok("10us", Duration::from_micros(10));
        ok("10µs", Duration::from_micros(10));
        ok("7ns", Duration::from_nanos(7));
        for bad in ["", "5", "s", "5x", "1..2s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        let cli = parse(&["--dial-timeout", "250ms", "put", "--compact-interval", "1m"]).unwrap();
        assert_eq!(cli.dial_timeout, Duration::from_millis(250));
    }
}
