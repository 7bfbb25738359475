//! `--config-file` end to end: a YAML file on disk through `config::parse`, then the initial
//! cluster derived from it.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use stead_server::config::{self, ClusterState, ConfigError, Invocation, LogLevel, ServerConfig};
use stead_server::membership::{InitialCluster, format_id};

fn config_file(yaml: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(yaml.as_bytes()).unwrap();
    file
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    match config::parse(&args, &env)? {
        Invocation::Run(config) => Ok(*config),
        other => panic!("expected a configuration, got {other:?}"),
    }
}

fn path(file: &tempfile::NamedTempFile) -> &str {
    file.path().to_str().unwrap()
}

#[test]
fn config_file_sets_options_by_etcd_key() {
    let file = config_file(
        "name: infra1\n\
         data-dir: /var/lib/stead\n\
         wal-dir:\n\
         snapshot-count: 5000\n\
         heartbeat-interval: 50\n\
         election-timeout: 500\n\
         listen-peer-urls: http://127.0.0.1:2380\n\
         listen-client-urls: http://127.0.0.1:2379,http://10.0.1.11:2379\n\
         initial-advertise-peer-urls: http://10.0.1.11:2380\n\
         advertise-client-urls: http://10.0.1.11:2379\n\
         initial-cluster: infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380,infra2=https://10.0.1.12:2381\n\
         initial-cluster-token: stead-test-token\n\
         initial-cluster-state: ''\n\
         backend-batch-interval: 10000000\n\
         QUOTA-BACKEND-BYTES: 4294967296\n\
         log-level: warn\n\
         log-outputs: [stderr]\n\
         enable-v2: false\n\
         proxy: 'off'\n\
         client-transport-security:\n  cert-file:\n  client-cert-auth: false\n",
    );
    let config = run(&["--config-file", path(&file)], &[]).unwrap();
    assert_eq!(config.name, "infra1");
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/stead"));
    assert_eq!(config.wal_dir, None);
    assert_eq!(config.snapshot_count, 5000);
    assert_eq!(config.heartbeat_interval, Duration::from_millis(50));
    assert_eq!(config.election_timeout, Duration::from_millis(500));
    assert_eq!(config.listen_client_urls.len(), 2);
    assert_eq!(config.initial_cluster_state, ClusterState::New);
    assert_eq!(
        config.backend_batch_interval,
        Some(Duration::from_millis(10))
    );
    assert_eq!(
        config.quota_backend_bytes_effective(),
        Some(4 * 1024 * 1024 * 1024)
    );
    assert_eq!(config.log_level, LogLevel::Warn);
    assert_eq!(config.log_outputs, ["stderr"]);
    assert_eq!(config.config_file, Some(file.path().to_path_buf()));

    // The three-member vector of the membership tests, from a file this time.
    let cluster = InitialCluster::from_config(&config).unwrap();
    assert_eq!(format_id(cluster.cluster_id), "4b0daaf8179c6602");
    assert_eq!(format_id(cluster.local_member_id), "16bd9c1b0cf67cfb");
}

#[test]
fn config_file_ignores_other_flags_and_the_environment() {
    let file = config_file("name: from-file\n");
    let config = run(
        &["--config-file", path(&file), "--name", "from-flag"],
        &[("ETCD_NAME", "from-env"), ("ETCD_BOGUS", "1")],
    )
    .unwrap();
    assert_eq!(config.name, "from-file");
    // etcd's --name rule applies to a file too.
    assert_eq!(config.initial_cluster, "from-file=http://localhost:2380");
    assert_eq!(config.data_dir, PathBuf::from("from-file.stead"));
    assert_eq!(config.warnings.len(), 1);
    assert!(config.warnings[0].starts_with("command-line flag --name is ignored"));

    // ETCD_CONFIG_FILE selects the file when the flag is absent.
    let config = run(&[], &[("ETCD_CONFIG_FILE", path(&file))]).unwrap();
    assert_eq!(config.name, "from-file");

    // Flags are still parsed: a malformed one is still an error.
    let error = run(&["--config-file", path(&file), "--bogus"], &[]).unwrap_err();
    assert_eq!(error.to_string(), "flag provided but not defined: -bogus");
}

#[test]
fn config_file_keeps_the_default_advertised_client_url() {
    // Unlike the command line, etcd's config file does not drop the default advertised
    // client URL when only listen-client-urls is given.
    let file = config_file("listen-client-urls: http://127.0.0.1:2379\n");
    let config = run(&["--config-file", path(&file)], &[]).unwrap();
    assert_eq!(
        config.advertise_client_urls[0].as_str(),
        "http://localhost:2379"
    );
}

#[test]
fn config_file_errors() {
    let error = |yaml: &str| {
        let file = config_file(yaml);
        run(&["--config-file", path(&file)], &[])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error("auto-compaction-retention: \"1\"\n"),
        "stead: config file key \"auto-compaction-retention\" is not supported yet"
    );
    assert_eq!(
        error("client-transport-security:\n  cert-file: /etc/cert.pem\n"),
        "stead: config file key \"client-transport-security\" is not supported yet"
    );
    assert!(
        error("bogus-key: 1\n").starts_with("stead: unknown key \"bogus-key\" in config file ")
    );
    // etcd's text for URL lists in a config file.
    assert_eq!(
        error("listen-client-urls: localhost:2379\n"),
        "unexpected error setting up listen-client-urls: URL scheme must be http, https, unix, or unixs: localhost:2379"
    );
    // As in etcd, numbers must be YAML numbers.
    assert!(
        error("heartbeat-interval: \"100\"\n")
            .ends_with("invalid value for \"heartbeat-interval\": expected a non-negative integer")
    );
    assert!(error("initial-cluster-state: bad\n").ends_with("unexpected clusterState \"bad\""));
    assert!(error("- a\n- b\n").contains("must be a YAML mapping"));
    assert!(error("name: [\n").contains("is not valid YAML"));
    // Validation applies to a file as to flags.
    assert_eq!(
        error("election-timeout: 400\n"),
        "--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"
    );
    let missing = run(&["--config-file", "/nonexistent/stead.yml"], &[]).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("stead: cannot read config file /nonexistent/stead.yml")
    );
}

#[test]
fn empty_config_file_gives_the_defaults() {
    let file = config_file("# nothing\n");
    let config = run(&["--config-file", path(&file)], &[]).unwrap();
    assert_eq!(
        config,
        ServerConfig {
            config_file: Some(file.path().to_path_buf()),
            ..ServerConfig::default()
        }
    );
}
