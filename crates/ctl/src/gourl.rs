//! The check etcd's client library makes of peer URLs before it sends
//! `member add` or `member update` (clientv3's "fail-fast" call of
//! `types.NewURLs`), with its error texts: Go's `net/url.Parse` (Go 1.19,
//! what Debian's etcdctl 3.4.23 is built with) as far as it can fail, then
//! etcd's own rules (scheme, `host:port`, no path).
//!
//! Pure functions over strings; nothing here talks to a server. The request
//! itself carries the URLs as given: the server parses them again.

/// The parts of a parsed URL the checks look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Url {
    /// Lower-cased.
    scheme: String,
    /// Unescaped `host[:port]`.
    host: String,
    /// Unescaped.
    path: String,
}

/// etcd's `types.NewURLs` over `urls`: `Ok` when etcd's client would send
/// them, else the error it reports.
pub fn check_urls(urls: &[String]) -> Result<(), String> {
    if urls.is_empty() {
        return Err("no valid URLs given".to_string());
    }
    for raw in urls {
        let trimmed = raw.trim();
        let url = parse(trimmed)?;
        if !["http", "https", "unix", "unixs"].contains(&url.scheme.as_str()) {
            return Err(format!(
                "URL scheme must be http, https, unix, or unixs: {trimmed}"
            ));
        }
        if !splits_into_host_and_port(&url.host) {
            return Err(format!(
                "URL address does not have the form \"host:port\": {trimmed}"
            ));
        }
        if !url.path.is_empty() {
            return Err(format!("URL must not contain a path: {trimmed}"));
        }
    }
    Ok(())
}

/// Go's `url.Parse`; the error is `url.Error`'s text (`parse "...": ...`).
fn parse(raw: &str) -> Result<Url, String> {
    let wrap = |url: &str, reason: String| format!("parse {}: {reason}", crate::gofmt::quote(url));
    let (without_fragment, fragment) = match raw.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (raw, None),
    };
    let url = parse_without_fragment(without_fragment).map_err(|e| wrap(without_fragment, e))?;
    if let Some(fragment) = fragment {
        unescape(fragment, Mode::Fragment).map_err(|e| wrap(raw, e))?;
    }
    Ok(url)
}

/// Go's `url.parse(rawURL, false)`.
fn parse_without_fragment(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_string());
    }
    let mut url = Url::default();
    if raw == "*" {
        url.path = "*".to_string();
        return Ok(url);
    }
    let (scheme, rest) = scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        rest.split_once('?').map_or(rest, |(before, _)| before)
    };
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // An opaque URL (`http:host`): no host, no path.
            return Ok(url);
        }
        let segment = rest.split_once('/').map_or(rest, |(first, _)| first);
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".to_string());
        }
    }
    let mut path = rest;
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, after) = match authority_and_path.find('/') {
            Some(i) => (&authority_and_path[..i], &authority_and_path[i..]),
            None => (authority_and_path, ""),
        };
        url.host = parse_authority(authority)?;
        path = after;
    }
    url.path = unescape(path, Mode::Path)?;
    Ok(url)
}

/// Go's `getScheme`: the scheme and the rest, or no scheme when the text
/// does not start with one.
fn scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".to_string()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`: the host of `[userinfo@]host[:port]`.
fn parse_authority(authority: &str) -> Result<String, String> {
    let Some(at) = authority.rfind('@') else {
        return parse_host(authority);
    };
    let host = parse_host(&authority[at + 1..])?;
    let userinfo = &authority[..at];
    let valid = userinfo.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    });
    if !valid {
        return Err("net/url: invalid userinfo".to_string());
    }
    match userinfo.split_once(':') {
        Some((user, password)) => {
            unescape(user, Mode::UserPassword)?;
            unescape(password, Mode::UserPassword)?;
        }
        None => {
            unescape(userinfo, Mode::UserPassword)?;
        }
    }
    Ok(host)
}

/// Go's `parseHost`.
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".to_string());
        };
        let colon_port = &host[close + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port {} after host",
                crate::gofmt::quote(colon_port)
            ));
        }
        if let Some(zone) = host[..close].find("%25") {
            let mut unescaped = unescape(&host[..zone], Mode::Host)?;
            unescaped.push_str(&unescape(&host[zone..close], Mode::Zone)?);
            unescaped.push_str(&unescape(&host[close..], Mode::Host)?);
            return Ok(unescaped);
        }
    } else if let Some(colon) = host.rfind(':') {
        let colon_port = &host[colon..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port {} after host",
                crate::gofmt::quote(colon_port)
            ));
        }
    }
    unescape(host, Mode::Host)
}

/// Go's `validOptionalPort`: empty, or a colon and digits.
fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The parts of a URL Go unescapes, which differ in what they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// Go's `shouldEscape` for the modes that reach it with an error at stake
/// (host and zone).
fn host_should_escape(c: u8) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    !matches!(
        c,
        b'!' | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'['
            | b']'
            | b'<'
            | b'>'
            | b'"'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
    )
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Go's `unescape`: `%XX` decoded; the error texts of a bad escape
/// (`invalid URL escape "%zz"`) and of a character a host may not hold
/// (`invalid character " " in host name`).
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let bytes = s.as_bytes();
    let escape_error =
        |text: &[u8]| format!("invalid URL escape {}", crate::gofmt::quote_bytes(text));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            if i + 2 >= bytes.len()
                || !bytes[i + 1].is_ascii_hexdigit()
                || !bytes[i + 2].is_ascii_hexdigit()
            {
                let end = (i + 3).min(bytes.len());
                return Err(escape_error(&bytes[i..end]));
            }
            let escape = &bytes[i..i + 3];
            let value = unhex(bytes[i + 1]) << 4 | unhex(bytes[i + 2]);
            // In a host, escapes may only stand for non-ASCII bytes (or
            // the `%25` that starts an IPv6 zone).
            if mode == Mode::Host && unhex(bytes[i + 1]) < 8 && escape != b"%25" {
                return Err(escape_error(escape));
            }
            if mode == Mode::Zone && escape != b"%25" && value != b' ' && host_should_escape(value)
            {
                return Err(escape_error(escape));
            }
            out.push(value);
            i += 3;
            continue;
        }
        if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && host_should_escape(c) {
            return Err(format!(
                "invalid character {} in host name",
                crate::gofmt::quote_bytes(&[c])
            ));
        }
        out.push(c);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Whether Go's `net.SplitHostPort` accepts `hostport`.
fn splits_into_host_and_port(hostport: &str) -> bool {
    let Some(last_colon) = hostport.rfind(':') else {
        return false;
    };
    let (host_start, host_end) = if hostport.starts_with('[') {
        let Some(close) = hostport.find(']') else {
            return false;
        };
        if close + 1 != last_colon {
            return false;
        }
        (1, close + 1)
    } else {
        if hostport[..last_colon].contains(':') {
            return false;
        }
        (0, 0)
    };
    !hostport[host_start..].contains('[') && !hostport[host_end..].contains(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<(), String> {
        check_urls(&[url.to_string()])
    }

    #[test]
    fn accepts_what_etcd_accepts() {
        for url in [
            "http://127.0.0.1:2380",
            " http://a:1",
            "HTTP://a:1",
            "http://a:1?x=1",
            "http://a:1#f",
            "http://:1",
            "unix://a:1",
            "https://[::1]:2380",
            "http://user:pw@a:1",
        ] {
            assert_eq!(check(url), Ok(()), "{url}");
        }
    }

    /// The texts etcdctl 3.4.23 prints for these (checked against it).
    #[test]
    fn rejects_with_etcds_words() {
        let cases = [
            ("foo", "URL scheme must be http, https, unix, or unixs: foo"),
            (
                "127.0.0.1:2390",
                "parse \"127.0.0.1:2390\": first path segment in URL cannot contain colon",
            ),
            (
                "http://127.0.0.1",
                "URL address does not have the form \"host:port\": http://127.0.0.1",
            ),
            (
                "http://127.0.0.1:2390/x",
                "URL must not contain a path: http://127.0.0.1:2390/x",
            ),
            ("http://a:1/", "URL must not contain a path: http://a:1/"),
            (
                "ftp://a:1",
                "URL scheme must be http, https, unix, or unixs: ftp://a:1",
            ),
            ("", "URL scheme must be http, https, unix, or unixs: "),
            (
                "http://a b:1",
                "parse \"http://a b:1\": invalid character \" \" in host name",
            ),
            (
                "http://[::1:1",
                "parse \"http://[::1:1\": missing ']' in host",
            ),
            (":foo", "parse \":foo\": missing protocol scheme"),
            (
                "http://a:b",
                "parse \"http://a:b\": invalid port \":b\" after host",
            ),
            (
                "http://a\u{1}:1",
                "parse \"http://a\\x01:1\": net/url: invalid control character in URL",
            ),
            (
                "http://%zz:1",
                "parse \"http://%zz:1\": invalid URL escape \"%zz\"",
            ),
            (
                "1:2",
                "parse \"1:2\": first path segment in URL cannot contain colon",
            ),
            (
                "//a:1",
                "URL scheme must be http, https, unix, or unixs: //a:1",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(check(url), Err(want.to_string()), "{url:?}");
        }
    }

    #[test]
    fn every_url_of_a_list_is_checked() {
        let urls = vec!["http://a:1".to_string(), String::new()];
        assert_eq!(
            check_urls(&urls),
            Err("URL scheme must be http, https, unix, or unixs: ".to_string())
        );
    }
}
