//! Go formatting and parsing rules that etcdctl's output inherits from Go's
//! standard library: `strconv.Quote` (the `%q` verb), `strconv.ParseInt`,
//! `ParseUint` and `ParseBool` with their error texts, `time.ParseDuration` and
//! `Duration.String`, `encoding/json` string escaping, go-humanize's byte
//! sizes, and the timestamps of etcdctl's log lines.
//!
//! Everything here is a pure function over strings and numbers; it knows
//! nothing of etcd. Byte-for-byte compatibility of the printers rests on
//! these, so each one follows the Go implementation's rules, not just its
//! common cases. Known gap: Go's `unicode.IsPrint` consults full Unicode
//! tables; [`is_go_printable`] approximates it (exact for ASCII and Latin-1).

use std::time::{SystemTime, UNIX_EPOCH};

/// Approximates Go's `strconv.IsPrint`: letters, marks, numbers, punctuation,
/// symbols and the ASCII space. Unassigned code points are not detected.
pub fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x20 || (0x7f..=0x9f).contains(&u) {
        return false;
    }
    if c == ' ' {
        return true;
    }
    if c.is_whitespace() {
        return false;
    }
    // Format characters (category Cf), private use, surrogates and
    // non-characters that Go reports as unprintable.
    !matches!(u,
        0xad
        | 0x600..=0x605
        | 0x61c
        | 0x6dd
        | 0x70f
        | 0x8e2
        | 0x180e
        | 0x200b..=0x200f
        | 0x202a..=0x202e
        | 0x2060..=0x2064
        | 0x2066..=0x206f
        | 0xe000..=0xf8ff
        | 0xfeff
        | 0xfff9..=0xfffb
        | 0xfffe..=0xffff
        | 0x110bd
        | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a
        | 0xe0001..=0xe007f
        | 0xf0000..=0x10ffff)
}

/// Go's `strconv.Quote` over raw bytes (Go strings are byte strings): the
/// output of `fmt.Sprintf("%q", string(b))`.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    let mut rest = b;
    while !rest.is_empty() {
        match decode_first_rune(rest) {
            Some((c, size)) => {
                quote_rune(&mut out, c);
                rest = &rest[size..];
            }
            None => {
                out.push_str(&format!("\\x{:02x}", rest[0]));
                rest = &rest[1..];
            }
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.Quote` of a (valid UTF-8) string.
pub fn quote(s: &str) -> String {
    quote_bytes(s.as_bytes())
}

fn quote_rune(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if is_go_printable(c) => out.push(c),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Decodes the first UTF-8 sequence of `b`, or `None` when it is invalid
/// (Go then treats the first byte alone as an error rune).
fn decode_first_rune(b: &[u8]) -> Option<(char, usize)> {
    let len = match b[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let chunk = b.get(..len)?;
    let s = std::str::from_utf8(chunk).ok()?;
    s.chars().next().map(|c| (c, len))
}

/// Go's `strconv.ParseInt(s, base, 64)` with its error text
/// (`strconv.ParseInt: parsing "x": invalid syntax`). `base` is 0 (prefix
/// decides, underscores allowed), 10 or 16.
pub fn parse_int(s: &str, base: u32) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", quote(s));
    let range = || format!("strconv.ParseInt: parsing {}: value out of range", quote(s));
    if s.is_empty() {
        return Err(syntax());
    }
    let (negative, body) = match s.as_bytes()[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(body, base).map_err(|e| match e {
        UintError::Syntax => syntax(),
        UintError::Range => range(),
    })?;
    if negative {
        if magnitude > 1u64 << 63 {
            return Err(range());
        }
        Ok((magnitude as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(magnitude).map_err(|_| range())
    }
}

/// Go's `strconv.ParseUint(s, base, 64)` with its error text
/// (`strconv.ParseUint: parsing "x": invalid syntax`); no sign is accepted.
/// `base` is 0 (prefix decides, underscores allowed), 10 or 16.
pub fn parse_uint64(s: &str, base: u32) -> Result<u64, String> {
    parse_uint(s, base).map_err(|e| {
        let reason = match e {
            UintError::Syntax => "invalid syntax",
            UintError::Range => "value out of range",
        };
        format!("strconv.ParseUint: parsing {}: {reason}", quote(s))
    })
}

enum UintError {
    Syntax,
    Range,
}

fn parse_uint(s: &str, base: u32) -> Result<u64, UintError> {
    if s.is_empty() {
        return Err(UintError::Syntax);
    }
    let mut digits = s;
    let mut base = base;
    let base_prefix_given = base == 0;
    if base == 0 {
        base = 10;
        let b = s.as_bytes();
        if b[0] == b'0' {
            if b.len() >= 3 && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
                base = match b[1].to_ascii_lowercase() {
                    b'b' => 2,
                    b'o' => 8,
                    _ => 16,
                };
                digits = &s[2..];
            } else {
                base = 8;
                digits = &s[1..];
            }
        }
    }
    let mut value: u64 = 0;
    let mut saw_underscore = false;
    for ch in digits.bytes() {
        if ch == b'_' && base_prefix_given {
            saw_underscore = true;
            continue;
        }
        let d = match ch {
            b'0'..=b'9' => u32::from(ch - b'0'),
            b'a'..=b'z' => u32::from(ch - b'a') + 10,
            b'A'..=b'Z' => u32::from(ch - b'A') + 10,
            _ => return Err(UintError::Syntax),
        };
        if d >= base {
            return Err(UintError::Syntax);
        }
        // Go stops at the first digit that overflows: what follows it is
        // never checked.
        value = value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(UintError::Range)?;
    }
    if saw_underscore && !underscore_ok(s) {
        return Err(UintError::Syntax);
    }
    Ok(value)
}

/// Go's `underscoreOK`: underscores may only separate digits (or follow a
/// base prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        hex = b[1].eq_ignore_ascii_case(&b'x');
        i = 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
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
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseBool` with its error text.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            quote(s)
        )),
    }
}

/// A Go `time.Duration`: signed nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// Converts to a std duration; negative durations become zero (Go's
    /// context deadline in the past expires at once).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }
}

/// Go's `time.ParseDuration`, with its error texts.
pub fn parse_duration(orig: &str) -> Result<GoDuration, String> {
    let invalid = || format!("time: invalid duration {}", time_quote(orig));
    let mut s = orig.as_bytes();
    let mut negative = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        negative = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(GoDuration(0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > (1u64 << 63) / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > 1u64 << 63 {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Fraction.
        let mut post = false;
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let mut j = 0;
            let mut overflow = false;
            while j < s.len() && s[j].is_ascii_digit() {
                if !overflow {
                    if frac > ((1u64 << 63) - 1) / 10 {
                        overflow = true;
                    } else {
                        frac = frac * 10 + u64::from(s[j] - b'0');
                        scale *= 10.0;
                    }
                }
                j += 1;
            }
            post = j > 0;
            s = &s[j..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let mut k = 0;
        while k < s.len() && !(s[k] == b'.' || s[k].is_ascii_digit()) {
            k += 1;
        }
        if k == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                time_quote(orig)
            ));
        }
        let unit_bytes = &s[..k];
        s = &s[k..];
        let unit: u64 = match unit_bytes {
            b"ns" => 1,
            b"us" => 1_000,
            b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    time_quote(&String::from_utf8_lossy(unit_bytes)),
                    time_quote(orig)
                ));
            }
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > 1u64 << 63 {
                return Err(invalid());
            }
        }
        total += v;
        if total > 1u64 << 63 {
            return Err(invalid());
        }
    }
    if negative {
        return Ok(GoDuration((total as i128).wrapping_neg() as i64));
    }
    if total > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(GoDuration(total as i64))
}

/// The `quote` helper of Go's time package (used in its error texts).
fn time_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if (c as u32) < 0x80 {
            let b = c as u8;
            if b == b'"' || b == b'\\' {
                out.push('\\');
                out.push(c);
            } else if b < b' ' {
                out.push_str(&format!("\\x{b:02x}"));
            } else {
                out.push(c);
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String` (e.g. `1.306259ms`, `2s`, `1h0m0.5s`).
pub fn format_duration(d: GoDuration) -> String {
    let negative = d.0 < 0;
    let mut u = d.0.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (frac, int) = format_fraction(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (frac, rest) = format_fraction(u, 9);
        u = rest;
        let seconds = format!("{}{}s", u % 60, frac);
        u /= 60;
        if u > 0 {
            let minutes = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&seconds);
    }
    if negative {
        out.insert(0, '-');
    }
    out
}

/// Go's `fmtFrac`: the fraction of `v / 10^prec` without trailing zeros
/// (and without the point when zero), plus the integer part.
fn format_fraction(v: u64, prec: u32) -> (String, u64) {
    let mut v = v;
    let mut digits = Vec::new();
    let mut print = false;
    for _ in 0..prec {
        let digit = v % 10;
        print = print || digit != 0;
        if print {
            digits.push(char::from(b'0' + digit as u8));
        }
        v /= 10;
    }
    if !print {
        return (String::new(), v);
    }
    digits.push('.');
    (digits.into_iter().rev().collect(), v)
}

/// Escapes a string the way Go's `encoding/json` does (HTML-safe), quotes
/// included. Invalid UTF-8 bytes become U+FFFD.
pub fn json_string(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// go-humanize's `Bytes`: SI units with one decimal below 10 (`20 kB`).
pub fn humanize_bytes(size: u64) -> String {
    if size < 10 {
        return format!("{size} B");
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let s = size as f64;
    let exponent = (s.ln() / 1000f64.ln()).floor();
    let suffix = SIZES[(exponent as usize).min(SIZES.len() - 1)];
    let value = (s / 1000f64.powf(exponent) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {suffix}")
    } else {
        format!("{value:.0} {suffix}")
    }
}

/// Civil UTC time (year, month, day, hour, minute, second, microsecond) now.
fn utc_now() -> (i64, u32, u32, u32, u32, u32, u32) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let micros = since.subsec_micros();
    let days = secs.div_euclid(86_400);
    let day_secs = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        micros,
    )
}

/// zap's ISO8601 timestamp as etcdctl's client logger prints it, in UTC
/// (`2026-11-21T21:14:22.828Z`).
pub fn zap_timestamp_now() -> String {
    let (y, mo, d, h, mi, s, us) = utc_now();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        us / 1000
    )
}

/// capnslog's timestamp, in UTC (`2026-11-21 21:13:57.532763`).
pub fn capnslog_timestamp_now() -> String {
    let (y, mo, d, h, mi, s, us) = utc_now();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("foo"), "\"foo\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("\n\t\u{0}\u{7f}"), "\"\\n\\t\\x00\\x7f\"");
        assert_eq!(quote("héllo"), "\"héllo\"");
        assert_eq!(quote("\u{200b}"), "\"\\u200b\"");
        assert_eq!(quote_bytes(b"\xff\xfe"), "\"\\xff\\xfe\"");
    }

    #[test]
    fn parse_int_rules_and_errors() {
        assert_eq!(parse_int("42", 10), Ok(42));
        assert_eq!(parse_int("-42", 10), Ok(-42));
        assert_eq!(parse_int("0x10", 0), Ok(16));
        assert_eq!(parse_int("010", 0), Ok(8));
        assert_eq!(parse_int("1_000", 0), Ok(1000));
        assert_eq!(parse_int("ff", 16), Ok(255));
        assert_eq!(parse_int("-9223372036854775808", 10), Ok(i64::MIN));
        assert_eq!(
            parse_int("x", 10),
            Err("strconv.ParseInt: parsing \"x\": invalid syntax".to_string())
        );
        assert_eq!(
            parse_int("0x10", 16),
            Err("strconv.ParseInt: parsing \"0x10\": invalid syntax".to_string())
        );
        assert_eq!(
            parse_int("9223372036854775808", 10),
            Err(
                "strconv.ParseInt: parsing \"9223372036854775808\": value out of range".to_string()
            )
        );
        assert_eq!(
            parse_int("", 10),
            Err("strconv.ParseInt: parsing \"\": invalid syntax".to_string())
        );
    }

    #[test]
    fn parse_uint_rules_and_errors() {
        assert_eq!(parse_uint64("ffffffffffffffff", 16), Ok(u64::MAX));
        assert_eq!(
            parse_uint64("5b941b0d71c9917e", 16),
            Ok(0x5b94_1b0d_71c9_917e)
        );
        for bad in ["", "+1", "-1", "0x1", "zz"] {
            assert_eq!(
                parse_uint64(bad, 16),
                Err(format!(
                    "strconv.ParseUint: parsing {}: invalid syntax",
                    quote(bad)
                ))
            );
        }
        assert_eq!(
            parse_uint64("1ffffffffffffffff", 16),
            Err("strconv.ParseUint: parsing \"1ffffffffffffffff\": value out of range".to_string())
        );
        // Go stops at the digit that overflows.
        assert_eq!(
            parse_uint64("fffffffffffffffffffz", 16),
            Err(
                "strconv.ParseUint: parsing \"fffffffffffffffffffz\": value out of range"
                    .to_string()
            )
        );
        assert_eq!(
            parse_int("fffffffffffffffffz", 16),
            Err("strconv.ParseInt: parsing \"fffffffffffffffffz\": value out of range".to_string())
        );
    }

    #[test]
    fn durations_parse_and_print_like_go() {
        assert_eq!(parse_duration("2s"), Ok(GoDuration(2_000_000_000)));
        assert_eq!(parse_duration("1.5ms"), Ok(GoDuration(1_500_000)));
        assert_eq!(parse_duration("1h2m"), Ok(GoDuration(3_720_000_000_000)));
        assert_eq!(parse_duration("0"), Ok(GoDuration(0)));
        assert_eq!(
            parse_duration("x"),
            Err("time: invalid duration \"x\"".to_string())
        );
        assert_eq!(
            parse_duration("5"),
            Err("time: missing unit in duration \"5\"".to_string())
        );
        assert_eq!(
            parse_duration("5y"),
            Err("time: unknown unit \"y\" in duration \"5y\"".to_string())
        );
        assert_eq!(format_duration(GoDuration(0)), "0s");
        assert_eq!(format_duration(GoDuration(1_306_259)), "1.306259ms");
        assert_eq!(format_duration(GoDuration(850_000)), "850µs");
        assert_eq!(format_duration(GoDuration(999)), "999ns");
        assert_eq!(format_duration(GoDuration(2_000_000_000)), "2s");
        assert_eq!(format_duration(GoDuration(3_600_500_000_000)), "1h0m0.5s");
        assert_eq!(format_duration(GoDuration(-1_500_000)), "-1.5ms");
    }

    #[test]
    fn json_strings_are_html_safe() {
        assert_eq!(
            json_string(b"a<b>&\"\n"),
            "\"a\\u003cb\\u003e\\u0026\\\"\\n\""
        );
        assert_eq!(json_string(b"\x01"), "\"\\u0001\"");
    }

    #[test]
    fn humanize_matches_go_humanize() {
        assert_eq!(humanize_bytes(5), "5 B");
        assert_eq!(humanize_bytes(20_480), "20 kB");
        assert_eq!(humanize_bytes(1_500), "1.5 kB");
        assert_eq!(humanize_bytes(82_854_982), "83 MB");
        assert_eq!(humanize_bytes(999), "999 B");
    }

    #[test]
    fn bools_parse_like_go() {
        assert_eq!(parse_bool("T"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert_eq!(
            parse_bool("maybe"),
            Err("strconv.ParseBool: parsing \"maybe\": invalid syntax".to_string())
        );
    }
}
