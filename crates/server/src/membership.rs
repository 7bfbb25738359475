//! Cluster membership: members, their IDs and the cluster ID, derived exactly as etcd derives
//! them.
//!
//! What it owns:
//! - [`Url`]: a member URL checked and normalised as etcd's `types.NewURLs` does (schemes http,
//!   https, unix, unixs; `host:port`; no path; lists sorted), printed as Go's `url.URL.String()`
//!   would print it, with Go's and etcd's error texts.
//! - [`member_id`] and [`cluster_id`]: etcd's `computeMemberId` / `genID`. A member ID is the
//!   first 8 bytes (big-endian) of the SHA-1 over the member's sorted peer URLs and the cluster
//!   token; the cluster ID the same over the sorted member IDs. Every etcd member of a cluster
//!   computes the same IDs from the same `--initial-cluster`, which is why they must match
//!   etcd's bit for bit. [`format_id`] prints an ID as etcd does (lowercase hex, no padding).
//! - [`InitialCluster`]: `--initial-cluster` parsed into members with IDs, the cluster ID and
//!   the local member, with etcd's bootstrap checks (local name present, advertised peer URLs
//!   match, no duplicate URL).
//!
//! What it does not own: membership changes after bootstrap (member add/remove/promote are
//! raft conf changes applied by the server), nor joining an existing cluster, where the real
//! IDs come from the running cluster. Unlike etcd it never resolves host names: peer URLs are
//! compared as strings, so `localhost` and `127.0.0.1` differ here.

use std::collections::HashSet;
use std::fmt;

use crate::config::{ClusterState, ServerConfig};

/// Membership errors. The messages are etcd's, word for word where etcd has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("no valid URLs given")]
    NoUrls,
    /// Go's `url.Parse` refused the text (`parse "<url>": <reason>`).
    #[error("parse {}: {reason}", go_quote(url))]
    UrlSyntax { url: String, reason: String },
    #[error("URL scheme must be http, https, unix, or unixs: {0}")]
    UrlScheme(String),
    #[error("URL address does not have the form \"host:port\": {0}")]
    UrlNotHostPort(String),
    #[error("URL must not contain a path: {0}")]
    UrlHasPath(String),
    #[error(
        "couldn't find local name {} in the initial cluster configuration",
        go_quote(name)
    )]
    LocalMemberMissing { name: String },
    /// A URL of the local member in `--initial-cluster` is not advertised.
    #[error(
        "--initial-cluster has {missing} but missing from --initial-advertise-peer-urls={advertised} ({detail})"
    )]
    AdvertiseMissingFromFlag {
        missing: String,
        advertised: String,
        detail: String,
    },
    /// An advertised peer URL is not in the local member's `--initial-cluster` entry.
    #[error(
        "--initial-advertise-peer-urls has {missing} but missing from --initial-cluster={cluster}"
    )]
    AdvertiseMissingFromCluster { missing: String, cluster: String },
    /// The same URLs, but listed a different number of times.
    #[error("failed to resolve {advertised} to match --initial-cluster={cluster} ({detail})")]
    AdvertiseUnresolved {
        advertised: String,
        cluster: String,
        detail: String,
    },
    #[error("initial cluster {0} has duplicate url")]
    DuplicateUrl(String),
    #[error("member exists with identical ID {0}")]
    IdenticalMemberId(String),
    #[error("cannot use 0 as member id")]
    ZeroMemberId,
    #[error("invalid member ID {}: expected up to 16 hexadecimal digits", go_quote(.0))]
    InvalidId(String),
}

/// A member URL, validated and normalised as etcd's `types.NewURLs` does.
///
/// Equality and ordering are those of the printed form, which is how etcd sorts URL lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Url {
    /// Go's `url.URL.String()` of the parsed URL.
    text: String,
    scheme: String,
    /// The decoded authority host, `host:port` (brackets kept for IPv6).
    host: String,
}

impl Url {
    /// Parses one URL with etcd's rules (after trimming surrounding white space).
    pub fn parse(text: &str) -> Result<Url, MembershipError> {
        let text = text.trim();
        let url = go_url::parse(text)?;
        if !matches!(url.scheme.as_str(), "http" | "https" | "unix" | "unixs") {
            return Err(MembershipError::UrlScheme(text.to_string()));
        }
        if split_host_port(&url.host).is_none() {
            return Err(MembershipError::UrlNotHostPort(text.to_string()));
        }
        if url.has_path {
            return Err(MembershipError::UrlHasPath(text.to_string()));
        }
        Ok(Url {
            text: url.to_go_string(),
            scheme: url.scheme,
            host: url.host,
        })
    }

    /// The URL as Go's `url.URL.String()` prints it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The scheme, lowercased: `http`, `https`, `unix` or `unixs`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `host:port`, as written in the URL (IPv6 hosts keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host without port or brackets (may be empty, as in `http://:2379`).
    pub fn hostname(&self) -> &str {
        split_host_port(&self.host).map_or("", |(host, _)| host)
    }

    /// The port (may be empty, as in `http://localhost:`).
    pub fn port(&self) -> &str {
        split_host_port(&self.host).map_or("", |(_, port)| port)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// etcd's `types.NewURLs`: every URL parsed, the list sorted. An empty list is an error.
pub fn parse_urls<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Url>, MembershipError> {
    if texts.is_empty() {
        return Err(MembershipError::NoUrls);
    }
    let mut urls = texts
        .iter()
        .map(|text| Url::parse(text.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    urls.sort();
    Ok(urls)
}

/// A comma-separated URL list as etcd's URL flags take it (`strings.Split(s, ",")` then
/// `types.NewURLs`), sorted and without duplicates as etcd's `UniqueURLs` flag keeps it.
pub fn parse_url_list(text: &str) -> Result<Vec<Url>, MembershipError> {
    let mut urls = parse_urls(&text.split(',').collect::<Vec<_>>())?;
    urls.dedup();
    Ok(urls)
}

/// etcd's `computeMemberId`: SHA-1 over the sorted peer URLs concatenated, then the cluster
/// token; the first 8 bytes, big-endian.
pub fn member_id<S: AsRef<str>>(peer_urls: &[S], cluster_token: &str) -> u64 {
    member_id_hash(peer_urls, cluster_token, None)
}

/// The ID etcd gives a member added at runtime (`etcdctl member add`): as [`member_id`], with
/// the current Unix time in seconds appended to the hashed bytes.
pub fn member_id_at<S: AsRef<str>>(peer_urls: &[S], cluster_token: &str, unix_seconds: i64) -> u64 {
    member_id_hash(peer_urls, cluster_token, Some(unix_seconds))
}

fn member_id_hash<S: AsRef<str>>(
    peer_urls: &[S],
    cluster_token: &str,
    unix_seconds: Option<i64>,
) -> u64 {
    let mut sorted: Vec<&str> = peer_urls.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    let mut hasher = sha1_smol::Sha1::new();
    for url in sorted {
        hasher.update(url.as_bytes());
    }
    hasher.update(cluster_token.as_bytes());
    if let Some(seconds) = unix_seconds {
        hasher.update(seconds.to_string().as_bytes());
    }
    first_eight_bytes(&hasher.digest().bytes())
}

/// etcd's `genID`: SHA-1 over the sorted member IDs, each as 8 big-endian bytes; the first 8
/// bytes of the digest, big-endian.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut sorted = member_ids.to_vec();
    sorted.sort_unstable();
    let mut hasher = sha1_smol::Sha1::new();
    for id in sorted {
        hasher.update(&id.to_be_bytes());
    }
    first_eight_bytes(&hasher.digest().bytes())
}

fn first_eight_bytes(digest: &[u8; 20]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// An ID as etcd prints it (`types.ID.String()`): lowercase hex without leading zeros.
pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

/// The inverse of [`format_id`] (etcd's `types.IDFromString`).
pub fn parse_id(text: &str) -> Result<u64, MembershipError> {
    u64::from_str_radix(text, 16).map_err(|_| MembershipError::InvalidId(text.to_string()))
}

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    /// Sorted, as etcd keeps them.
    pub peer_urls: Vec<String>,
    /// Empty until the member publishes them once it serves clients (etcd's `publish`).
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// `--initial-cluster` as etcd parses it (`types.NewURLsMap`): `name=url` pairs separated by
/// commas, a name repeated for several URLs. Names keep their first-appearance order; each
/// name's URLs are sorted. An entry without `=` has an empty URL (an error).
pub fn parse_initial_cluster(text: &str) -> Result<Vec<(String, Vec<Url>)>, MembershipError> {
    let mut grouped: Vec<(String, Vec<&str>)> = Vec::new();
    for entry in text.split(',').filter(|entry| !entry.is_empty()) {
        let (name, url) = entry.split_once('=').unwrap_or((entry, ""));
        match grouped.iter_mut().find(|(existing, _)| existing == name) {
            Some((_, urls)) => urls.push(url),
            None => grouped.push((name.to_string(), vec![url])),
        }
    }
    grouped
        .into_iter()
        .map(|(name, urls)| Ok((name, parse_urls(&urls)?)))
        .collect()
}

/// etcd's `URLsMap.String()`: `name=url` pairs, sorted, comma-separated.
fn format_urls_map<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [Url])>) -> String {
    let mut pairs: Vec<String> = entries
        .into_iter()
        .flat_map(|(name, urls)| urls.iter().map(move |url| format!("{name}={url}")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// The cluster a new member bootstraps from `--initial-cluster` and `--initial-cluster-token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialCluster {
    pub cluster_id: u64,
    pub local_member_id: u64,
    /// Sorted by ID.
    pub members: Vec<Member>,
}

impl InitialCluster {
    /// Builds the initial cluster with etcd's bootstrap checks, in etcd's order: the local
    /// member (`--name`) must be in `--initial-cluster`; for a new cluster its URLs there must
    /// be exactly `--initial-advertise-peer-urls`; no URL may appear twice; IDs must be unique
    /// and non-zero. For `--initial-cluster-state=existing` the IDs are what etcd computes
    /// before it learns the real ones from the running cluster.
    pub fn from_config(config: &ServerConfig) -> Result<InitialCluster, MembershipError> {
        let entries = parse_initial_cluster(&config.initial_cluster)?;
        let Some((_, local_urls)) = entries.iter().find(|(name, _)| *name == config.name) else {
            return Err(MembershipError::LocalMemberMissing {
                name: config.name.clone(),
            });
        };
        if config.initial_cluster_state == ClusterState::New {
            check_advertise_matches(
                &config.name,
                local_urls,
                &config.initial_advertise_peer_urls,
            )?;
        }
        let mut seen = HashSet::new();
        if entries
            .iter()
            .flat_map(|(_, urls)| urls)
            .any(|url| !seen.insert(url.as_str()))
        {
            let cluster = format_urls_map(
                entries
                    .iter()
                    .map(|(name, urls)| (name.as_str(), urls.as_slice())),
            );
            return Err(MembershipError::DuplicateUrl(cluster));
        }

        let mut members: Vec<Member> = Vec::with_capacity(entries.len());
        for (name, urls) in &entries {
            let peer_urls: Vec<String> = urls.iter().map(|url| url.to_string()).collect();
            let id = member_id(&peer_urls, &config.initial_cluster_token);
            if members.iter().any(|member| member.id == id) {
                return Err(MembershipError::IdenticalMemberId(format_id(id)));
            }
            if id == 0 {
                return Err(MembershipError::ZeroMemberId);
            }
            members.push(Member {
                id,
                name: name.clone(),
                peer_urls,
                client_urls: Vec::new(),
                is_learner: false,
            });
        }
        members.sort_by_key(|member| member.id);
        let ids: Vec<u64> = members.iter().map(|member| member.id).collect();
        let local_member_id = members
            .iter()
            .find(|member| member.name == config.name)
            .map_or(0, |member| member.id);
        debug_assert_ne!(local_member_id, 0, "the local member was found above");
        Ok(InitialCluster {
            cluster_id: cluster_id(&ids),
            local_member_id,
            members,
        })
    }

    /// The member this server is.
    pub fn local_member(&self) -> Option<&Member> {
        self.members
            .iter()
            .find(|member| member.id == self.local_member_id)
    }
}

/// etcd's `advertiseMatchesCluster`, without its DNS resolution step: the error texts are
/// etcd's, the detail in parentheses is what etcd reports when resolution does not help.
fn check_advertise_matches(
    name: &str,
    in_cluster: &[Url],
    advertised: &[Url],
) -> Result<(), MembershipError> {
    let mut cluster_strings: Vec<&str> = in_cluster.iter().map(Url::as_str).collect();
    let mut advertised_strings: Vec<&str> = advertised.iter().map(Url::as_str).collect();
    cluster_strings.sort_unstable();
    advertised_strings.sort_unstable();
    if cluster_strings == advertised_strings {
        return Ok(());
    }
    let detail = if cluster_strings.len() != advertised_strings.len() {
        format!(
            "len({}) != len({})",
            go_quote_list(&advertised_strings),
            go_quote_list(&cluster_strings)
        )
    } else {
        let (a, b) = advertised_strings
            .iter()
            .zip(&cluster_strings)
            .find(|(a, b)| a != b)
            .map_or(("", ""), |(a, b)| (*a, *b));
        format!("resolved urls: {} != {}", go_quote(a), go_quote(b))
    };
    let advertised_joined = advertised_strings.join(",");

    let mut missing: Vec<String> = cluster_strings
        .iter()
        .filter(|url| !advertised_strings.contains(url))
        .map(|url| format!("{name}={url}"))
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        return Err(MembershipError::AdvertiseMissingFromFlag {
            missing: missing.join(","),
            advertised: advertised_joined,
            detail,
        });
    }
    let mut missing: Vec<&str> = advertised_strings
        .iter()
        .copied()
        .filter(|url| !cluster_strings.contains(url))
        .collect();
    missing.dedup();
    let cluster = format_urls_map([(name, advertised)]);
    if !missing.is_empty() {
        return Err(MembershipError::AdvertiseMissingFromCluster {
            missing: missing.join(","),
            cluster,
        });
    }
    Err(MembershipError::AdvertiseUnresolved {
        advertised: advertised_joined,
        cluster,
        detail,
    })
}

/// Go's `net.SplitHostPort`: `Some((host, port))`, or `None` where Go returns an error.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let colon = hostport.rfind(':')?;
    // After `open` there may be no '[', after `close` no ']' (Go's j and k).
    let (host, open, close) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != colon {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[open..].contains('[') || hostport[close..].contains(']') {
        return None;
    }
    Some((host, &hostport[colon + 1..]))
}

/// Go's `%q` for a string: double-quoted with Go's escapes.
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `%q` for a `[]string`: `["a" "b"]`.
pub(crate) fn go_quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| go_quote(item)).collect();
    format!("[{}]", quoted.join(" "))
}

/// The part of Go's `net/url` that etcd's URL checks depend on: `url.Parse` (its acceptance
/// and error texts) and `URL.String()`.
mod go_url {
    use super::{MembershipError, go_quote};

    /// The fields of Go's `url.URL` that matter for a URL etcd accepts.
    pub(super) struct GoUrl {
        pub(super) scheme: String,
        /// Decoded host (`host:port`).
        pub(super) host: String,
        host_bytes: Vec<u8>,
        /// Decoded user name and password.
        user: Option<(Vec<u8>, Option<Vec<u8>>)>,
        opaque: String,
        pub(super) has_path: bool,
        raw_query: String,
        force_query: bool,
        raw_fragment: String,
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Encoding {
        Path,
        UserPassword,
        Host,
        Zone,
        Fragment,
    }

    /// Go's `url.Parse`.
    pub(super) fn parse(raw: &str) -> Result<GoUrl, MembershipError> {
        let (without_fragment, fragment) = match raw.split_once('#') {
            Some((before, after)) => (before, after),
            None => (raw, ""),
        };
        let mut url = parse_without_fragment(without_fragment).map_err(|reason| {
            MembershipError::UrlSyntax {
                url: without_fragment.to_string(),
                reason,
            }
        })?;
        if !fragment.is_empty() {
            unescape(fragment, Encoding::Fragment).map_err(|reason| {
                MembershipError::UrlSyntax {
                    url: raw.to_string(),
                    reason,
                }
            })?;
            url.raw_fragment = fragment.to_string();
        }
        Ok(url)
    }

    fn parse_without_fragment(raw: &str) -> Result<GoUrl, String> {
        let mut url = GoUrl {
            scheme: String::new(),
            host: String::new(),
            host_bytes: Vec::new(),
            user: None,
            opaque: String::new(),
            has_path: false,
            raw_query: String::new(),
            force_query: false,
            raw_fragment: String::new(),
        };
        if raw.bytes().any(|byte| byte < 0x20 || byte == 0x7f) {
            return Err("net/url: invalid control character in URL".to_string());
        }
        if raw == "*" {
            url.has_path = true;
            return Ok(url);
        }
        let (scheme, rest) = split_scheme(raw)?;
        url.scheme = scheme.to_ascii_lowercase();

        let mut rest = rest;
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            url.force_query = true;
            rest = &rest[..rest.len() - 1];
        } else if let Some((before, query)) = rest.split_once('?') {
            url.raw_query = query.to_string();
            rest = before;
        }

        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = rest.to_string();
                return Ok(url);
            }
            if let Some(colon) = rest.find(':')
                && rest.find('/').is_none_or(|slash| colon < slash)
            {
                return Err("first path segment in URL cannot contain colon".to_string());
            }
        }

        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, path) = match after.find('/') {
                Some(slash) => (&after[..slash], &after[slash..]),
                None => (after, ""),
            };
            parse_authority(&mut url, authority)?;
            rest = path;
        }
        unescape(rest, Encoding::Path)?;
        url.has_path = !rest.is_empty();
        Ok(url)
    }

    /// Go's `getScheme`.
    fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
        for (index, byte) in raw.bytes().enumerate() {
            match byte {
                b'a'..=b'z' | b'A'..=b'Z' => {}
                b'0'..=b'9' | b'+' | b'-' | b'.' if index == 0 => return Ok(("", raw)),
                b'0'..=b'9' | b'+' | b'-' | b'.' => {}
                b':' if index == 0 => return Err("missing protocol scheme".to_string()),
                b':' => return Ok((&raw[..index], &raw[index + 1..])),
                _ => return Ok(("", raw)),
            }
        }
        Ok(("", raw))
    }

    /// Go's `parseAuthority`: the host is checked before the user information.
    fn parse_authority(url: &mut GoUrl, authority: &str) -> Result<(), String> {
        let at = authority.rfind('@');
        let host = parse_host(at.map_or(authority, |at| &authority[at + 1..]))?;
        url.host = String::from_utf8_lossy(&host).into_owned();
        url.host_bytes = host;
        let Some(at) = at else {
            return Ok(());
        };
        let userinfo = &authority[..at];
        if !userinfo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))
        {
            return Err("net/url: invalid userinfo".to_string());
        }
        url.user = Some(match userinfo.split_once(':') {
            None => (unescape(userinfo, Encoding::UserPassword)?, None),
            Some((user, password)) => (
                unescape(user, Encoding::UserPassword)?,
                Some(unescape(password, Encoding::UserPassword)?),
            ),
        });
        Ok(())
    }

    /// Go's `parseHost`.
    fn parse_host(host: &str) -> Result<Vec<u8>, String> {
        if host.starts_with('[') {
            let close = host
                .rfind(']')
                .ok_or_else(|| "missing ']' in host".to_string())?;
            let colon_port = &host[close + 1..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {} after host", go_quote(colon_port)));
            }
            if let Some(zone) = host[..close].find("%25") {
                let mut decoded = unescape(&host[..zone], Encoding::Host)?;
                decoded.extend(unescape(&host[zone..close], Encoding::Zone)?);
                decoded.extend(unescape(&host[close..], Encoding::Host)?);
                return Ok(decoded);
            }
        } else if let Some(colon) = host.rfind(':') {
            let colon_port = &host[colon..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {} after host", go_quote(colon_port)));
            }
        }
        unescape(host, Encoding::Host)
    }

    fn valid_optional_port(port: &str) -> bool {
        match port.strip_prefix(':') {
            None => port.is_empty(),
            Some(digits) => digits.bytes().all(|byte| byte.is_ascii_digit()),
        }
    }

    fn hex_value(byte: u8) -> Option<u8> {
        (byte as char)
            .to_digit(16)
            .and_then(|digit| u8::try_from(digit).ok())
    }

    /// Go's `unescape`: percent-decoding with the per-component rules and error texts.
    fn unescape(text: &str, mode: Encoding) -> Result<Vec<u8>, String> {
        let bytes = text.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            let byte = bytes[index];
            if byte == b'%' {
                let escape = &bytes[index..bytes.len().min(index + 3)];
                let (Some(high), Some(low)) = (
                    bytes.get(index + 1).copied().and_then(hex_value),
                    bytes.get(index + 2).copied().and_then(hex_value),
                ) else {
                    return Err(escape_error(escape));
                };
                let value = (high << 4) | low;
                if mode == Encoding::Host && high < 8 && escape != b"%25" {
                    return Err(escape_error(escape));
                }
                if mode == Encoding::Zone
                    && escape != b"%25"
                    && value != b' '
                    && should_escape(value, Encoding::Host)
                {
                    return Err(escape_error(escape));
                }
                decoded.push(value);
                index += 3;
                continue;
            }
            if matches!(mode, Encoding::Host | Encoding::Zone)
                && byte < 0x80
                && should_escape(byte, mode)
            {
                return Err(format!(
                    "invalid character {} in host name",
                    go_quote(&String::from_utf8_lossy(&[byte]))
                ));
            }
            decoded.push(byte);
            index += 1;
        }
        Ok(decoded)
    }

    fn escape_error(escape: &[u8]) -> String {
        format!(
            "invalid URL escape {}",
            go_quote(&String::from_utf8_lossy(escape))
        )
    }

    /// Go's `shouldEscape`.
    fn should_escape(byte: u8, mode: Encoding) -> bool {
        if byte.is_ascii_alphanumeric() {
            return false;
        }
        if matches!(mode, Encoding::Host | Encoding::Zone) && b"!$&'()*+,;=:[]<>\"".contains(&byte)
        {
            return false;
        }
        match byte {
            b'-' | b'_' | b'.' | b'~' => return false,
            b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
                Encoding::Path => return byte == b'?',
                Encoding::UserPassword => return matches!(byte, b'@' | b'/' | b'?' | b':'),
                Encoding::Fragment => return false,
                Encoding::Host | Encoding::Zone => {}
            },
            _ => {}
        }
        if mode == Encoding::Fragment && matches!(byte, b'!' | b'(' | b')' | b'*') {
            return false;
        }
        true
    }

    /// Go's `escape` (never in query-component mode, so a space is `%20`).
    fn escape(bytes: &[u8], mode: Encoding) -> String {
        let mut escaped = String::with_capacity(bytes.len());
        for &byte in bytes {
            if should_escape(byte, mode) {
                escaped.push_str(&format!("%{byte:02X}"));
            } else {
                escaped.push(char::from(byte));
            }
        }
        escaped
    }

    /// Go's `validEncoded` for a fragment.
    fn valid_encoded_fragment(text: &str) -> bool {
        text.bytes().all(|byte| {
            b"!$&'()*+,;=:@[]%".contains(&byte) || !should_escape(byte, Encoding::Fragment)
        })
    }

    impl GoUrl {
        /// Go's `URL.String()` for the URLs etcd accepts (a host, no path).
        pub(super) fn to_go_string(&self) -> String {
            let mut text = String::new();
            if !self.scheme.is_empty() {
                text.push_str(&self.scheme);
                text.push(':');
            }
            if !self.opaque.is_empty() {
                text.push_str(&self.opaque);
            } else if !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some() {
                text.push_str("//");
                if let Some((user, password)) = &self.user {
                    text.push_str(&escape(user, Encoding::UserPassword));
                    if let Some(password) = password {
                        text.push(':');
                        text.push_str(&escape(password, Encoding::UserPassword));
                    }
                    text.push('@');
                }
                text.push_str(&escape(&self.host_bytes, Encoding::Host));
            }
            if self.force_query || !self.raw_query.is_empty() {
                text.push('?');
                text.push_str(&self.raw_query);
            }
            if !self.raw_fragment.is_empty() {
                text.push('#');
                if valid_encoded_fragment(&self.raw_fragment) {
                    text.push_str(&self.raw_fragment);
                } else {
                    let decoded =
                        unescape(&self.raw_fragment, Encoding::Fragment).unwrap_or_default();
                    text.push_str(&escape(&decoded, Encoding::Fragment));
                }
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Result<String, String> {
        Url::parse(text)
            .map(|url| url.to_string())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn urls_are_checked_with_etcds_texts() {
        // Error texts checked against etcd 3.4.23 (`etcd --listen-client-urls=...`).
        assert_eq!(
            url("localhost:2379"),
            Err("URL scheme must be http, https, unix, or unixs: localhost:2379".into())
        );
        assert_eq!(
            url("http://localhost:2379/"),
            Err("URL must not contain a path: http://localhost:2379/".into())
        );
        assert_eq!(
            url("ftp://a:1"),
            Err("URL scheme must be http, https, unix, or unixs: ftp://a:1".into())
        );
        assert_eq!(
            url("http://a"),
            Err("URL address does not have the form \"host:port\": http://a".into())
        );
        assert_eq!(
            url("http://a:b"),
            Err("parse \"http://a:b\": invalid port \":b\" after host".into())
        );
        // From Go's net/url.
        assert_eq!(
            url("127.0.0.1:2379"),
            Err("parse \"127.0.0.1:2379\": first path segment in URL cannot contain colon".into())
        );
        assert_eq!(
            url(":2379"),
            Err("parse \":2379\": missing protocol scheme".into())
        );
        assert_eq!(
            url("http://[::1:2379"),
            Err("parse \"http://[::1:2379\": missing ']' in host".into())
        );
        assert_eq!(
            url("http://a b:1"),
            Err("parse \"http://a b:1\": invalid character \" \" in host name".into())
        );
        assert_eq!(
            url("http://a:1/%zz"),
            Err("parse \"http://a:1/%zz\": invalid URL escape \"%zz\"".into())
        );
        assert_eq!(
            url(""),
            Err("URL scheme must be http, https, unix, or unixs: ".into())
        );
        assert_eq!(
            url("http://a:1:2"),
            Err("URL address does not have the form \"host:port\": http://a:1:2".into())
        );
        assert_eq!(
            url("http://a::1"),
            Err("URL address does not have the form \"host:port\": http://a::1".into())
        );
    }

    #[test]
    fn urls_print_as_go_does() {
        assert_eq!(
            url(" HTTP://LocalHost:2380 "),
            Ok("http://LocalHost:2380".into())
        );
        assert_eq!(url("http://[::1]:2380"), Ok("http://[::1]:2380".into()));
        assert_eq!(
            url("unix://localhost:2380"),
            Ok("unix://localhost:2380".into())
        );
        assert_eq!(url("http://:2379"), Ok("http://:2379".into()));
        assert_eq!(
            url("http://user:p%41ss@host:1"),
            Ok("http://user:pAss@host:1".into())
        );
        assert_eq!(url("http://host:1?x=y"), Ok("http://host:1?x=y".into()));
        assert_eq!(url("http://host:1?"), Ok("http://host:1?".into()));
        assert_eq!(url("http://host:1#"), Ok("http://host:1".into()));
        assert_eq!(url("http://h%C3%A9:1"), Ok("http://h%C3%A9:1".into()));
        assert_eq!(url("http://hé:1"), Ok("http://h%C3%A9:1".into()));
        let parsed = Url::parse("https://[fe80::1%25eth0]:2380").unwrap();
        assert_eq!(parsed.to_string(), "https://[fe80::1%25eth0]:2380");
        assert_eq!(parsed.hostname(), "fe80::1%eth0");
        assert_eq!(parsed.port(), "2380");
        assert_eq!(parsed.scheme(), "https");
    }

    #[test]
    fn url_lists_sort_and_deduplicate() {
        let urls = parse_url_list("http://b:1,http://a:1,http://b:1").unwrap();
        let texts: Vec<&str> = urls.iter().map(Url::as_str).collect();
        assert_eq!(texts, ["http://a:1", "http://b:1"]);
        assert_eq!(parse_urls::<&str>(&[]), Err(MembershipError::NoUrls));
    }

    #[test]
    fn split_host_port_matches_go() {
        assert_eq!(split_host_port("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port("[::1]:1"), Some(("::1", "1")));
        assert_eq!(split_host_port(":1"), Some(("", "1")));
        assert_eq!(split_host_port("a:"), Some(("a", "")));
        assert_eq!(split_host_port("a"), None);
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("[::1]"), None);
        assert_eq!(split_host_port("[::1]x:1"), None);
        assert_eq!(split_host_port("a]:1"), None);
        assert_eq!(split_host_port("[a]]:1"), None);
    }

    /// Vectors read from etcd 3.4.23: `etcd` with its defaults (`etcdctl member list -w json`
    /// printed member 10276657743932975437 = 0x8e9e05c52164694d, cluster 14841639068965178418 =
    /// 0xcdf818194e3a8c32).
    #[test]
    fn default_member_and_cluster_ids_match_etcd() {
        let member = member_id(&["http://localhost:2380"], "etcd-cluster");
        assert_eq!(format_id(member), "8e9e05c52164694d");
        assert_eq!(format_id(cluster_id(&[member])), "cdf818194e3a8c32");
    }

    /// A three-member cluster, one member with two peer URLs, custom token; IDs from etcd
    /// 3.4.23's "added member" log lines when started as infra1 with this configuration.
    #[test]
    fn three_member_ids_match_etcd() {
        let config = ServerConfig {
            name: "infra1".into(),
            initial_cluster: "infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,\
                              infra2=http://10.0.1.12:2380,infra2=https://10.0.1.12:2381"
                .into(),
            initial_cluster_token: "stead-test-token".into(),
            initial_advertise_peer_urls: parse_url_list("http://10.0.1.11:2380").unwrap(),
            ..ServerConfig::default()
        };
        let cluster = InitialCluster::from_config(&config).unwrap();
        let ids: Vec<(String, &str)> = cluster
            .members
            .iter()
            .map(|member| (format_id(member.id), member.name.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                ("16bd9c1b0cf67cfb".to_string(), "infra1"),
                ("3ed1522c71fe95de".to_string(), "infra2"),
                ("bcf292208a689915".to_string(), "infra0"),
            ]
        );
        assert_eq!(format_id(cluster.cluster_id), "4b0daaf8179c6602");
        assert_eq!(format_id(cluster.local_member_id), "16bd9c1b0cf67cfb");
        let infra2 = &cluster.members[1];
        assert_eq!(
            infra2.peer_urls,
            ["http://10.0.1.12:2380", "https://10.0.1.12:2381"]
        );
        assert_eq!(
            cluster.local_member().map(|member| member.name.as_str()),
            Some("infra1")
        );
    }

    #[test]
    fn ids_format_and_parse() {
        assert_eq!(format_id(0x00ab), "ab");
        assert_eq!(parse_id("8e9e05c52164694d"), Ok(0x8e9e05c52164694d));
        assert!(parse_id("xyz").is_err());
        assert_ne!(
            member_id_at(&["http://a:1"], "t", 1),
            member_id(&["http://a:1"], "t")
        );
        // Peer URL order does not matter.
        assert_eq!(
            member_id(&["http://b:1", "http://a:1"], "t"),
            member_id(&["http://a:1", "http://b:1"], "t")
        );
    }

    fn cluster_error(name: &str, initial_cluster: &str, advertise: &str) -> String {
        let config = ServerConfig {
            name: name.into(),
            initial_cluster: initial_cluster.into(),
            initial_advertise_peer_urls: parse_url_list(advertise).unwrap(),
            ..ServerConfig::default()
        };
        InitialCluster::from_config(&config)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bootstrap_checks_use_etcds_texts() {
        // Texts checked against etcd 3.4.23 (the resolution detail aside, see the module doc).
        assert_eq!(
            cluster_error("foo", "bar=http://localhost:2380", "http://localhost:2380"),
            "couldn't find local name \"foo\" in the initial cluster configuration"
        );
        assert_eq!(
            cluster_error(
                "default",
                "default=http://localhost:2380",
                "http://127.0.0.1:9999"
            ),
            "--initial-cluster has default=http://localhost:2380 but missing from \
             --initial-advertise-peer-urls=http://127.0.0.1:9999 \
             (resolved urls: \"http://127.0.0.1:9999\" != \"http://localhost:2380\")"
        );
        assert_eq!(
            cluster_error(
                "default",
                "default=http://localhost:2380,b=http://localhost:2380",
                "http://localhost:2380"
            ),
            "initial cluster b=http://localhost:2380,default=http://localhost:2380 has duplicate url"
        );
        assert_eq!(
            cluster_error(
                "default",
                "default=http://localhost:2380",
                "http://localhost:2380,http://localhost:2381"
            ),
            "--initial-advertise-peer-urls has http://localhost:2381 but missing from \
             --initial-cluster=default=http://localhost:2380,default=http://localhost:2381"
        );
        assert_eq!(
            cluster_error(
                "default",
                "default=http://localhost:2380,default=http://localhost:2381",
                "http://localhost:2380"
            ),
            "--initial-cluster has default=http://localhost:2381 but missing from \
             --initial-advertise-peer-urls=http://localhost:2380 \
             (len([\"http://localhost:2380\"]) != len([\"http://localhost:2380\" \"http://localhost:2381\"]))"
        );
        assert_eq!(
            cluster_error("default", "default", "http://localhost:2380"),
            "URL scheme must be http, https, unix, or unixs: "
        );
    }

    #[test]
    fn joining_an_existing_cluster_skips_the_advertise_check() {
        let config = ServerConfig {
            initial_cluster_state: ClusterState::Existing,
            initial_advertise_peer_urls: parse_url_list("http://127.0.0.1:9999").unwrap(),
            ..ServerConfig::default()
        };
        assert!(InitialCluster::from_config(&config).is_ok());
    }

    #[test]
    fn initial_cluster_groups_names() {
        let entries = parse_initial_cluster("a=http://x:2,,a=http://x:1,b=http://y:1").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "a");
        assert_eq!(
            entries[0].1.iter().map(Url::as_str).collect::<Vec<_>>(),
            ["http://x:1", "http://x:2"]
        );
    }

    #[test]
    fn go_quote_escapes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(go_quote_list(&["a", "b"]), "[\"a\" \"b\"]");
    }
}
