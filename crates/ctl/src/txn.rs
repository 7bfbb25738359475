//! etcdctl's transaction syntax, read from standard input: a block of
//! compares, a block of success requests and a block of failure requests,
//! each ended by an empty line.
//!
//! A compare is `<target>("<key>") <op> "<value>"` with target `ver`,
//! `create`, `mod`, `val` (or their long names) or `lease`, scanned as Go's
//! `fmt.Sscanf(rest, "%q) %s %q")` scans it. A request is a `get`, `put` or
//! `del` command line, split into words by etcdctl's `argify` regular
//! expression (double-quoted words unquoted Go-style) and parsed with that
//! command's flags. etcdctl's quirks are kept on purpose, since scripts see
//! them: single-quoted words are cut by the number of words on the line (a
//! bug in etcdctl that can make it panic), an unknown compare operator and
//! the `lease` target panic, a flag error prints cobra's default usage to
//! standard error.
//!
//! This module turns text into protobuf requests; running the transaction
//! and printing its result is the `txn` command's job.

use std::io::{BufRead, Read};

use bytes::Bytes;
use stead_proto::etcdserverpb::{
    Compare, RequestOp, compare::CompareResult, compare::CompareTarget, compare::TargetUnion,
    request_op::Request,
};

use crate::error::CtlError;
use crate::flags::FlagSet;
use crate::gofmt;
use crate::ops;
use crate::tree;

/// Reads one line the way Go's `bufio.Reader.ReadString('\n')` does: a
/// last line without its newline is an `EOF` error.
pub fn read_line(input: &mut dyn BufRead) -> Result<String, CtlError> {
    let mut line = Vec::new();
    match input.read_until(b'\n', &mut line) {
        Ok(_) if line.last() == Some(&b'\n') => Ok(String::from_utf8_lossy(&line).into_owned()),
        Ok(_) => Err(CtlError::InvalidInput("EOF".to_string())),
        Err(e) => Err(CtlError::InvalidInput(e.to_string())),
    }
}

/// Reads compares up to the first empty line.
pub fn read_compares(input: &mut dyn BufRead) -> Result<Vec<Compare>, CtlError> {
    let mut compares = Vec::new();
    loop {
        let line = read_line(input)?;
        let line = line.trim();
        if line.is_empty() {
            return Ok(compares);
        }
        compares.push(parse_compare(line)?);
    }
}

/// Reads requests up to the first empty line.
///
/// A `put` line without a value reads standard input in etcdctl, past the
/// 4 KiB its line reader has already buffered; for transaction texts of
/// that size or less (all practical ones) nothing is left, so it fails. A
/// `put` here always sees empty standard input.
pub fn read_requests<R: BufRead>(
    input: &mut R,
    usage_sink: &mut dyn FnMut(String),
) -> Result<Vec<RequestOp>, CtlError> {
    let mut requests = Vec::new();
    loop {
        let line = read_line(input)?;
        let line = line.trim();
        if line.is_empty() {
            return Ok(requests);
        }
        requests.push(parse_request(line, &mut std::io::empty(), usage_sink)?);
    }
}

/// A Go `fmt` scanner over one line, enough for etcdctl's compare format.
struct Scanner {
    chars: Vec<char>,
    pos: usize,
}

fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

impl Scanner {
    fn new(text: &str) -> Self {
        Scanner {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_go_space) {
            self.pos += 1;
        }
    }

    /// `%q`: a double-quoted (Go escapes) or back-quoted string.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.skip_space();
        match self.peek()? {
            '`' => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    let c = self.peek()?;
                    self.pos += 1;
                    if c == '`' {
                        return Some(out.into_bytes());
                    }
                    out.push(c);
                }
            }
            '"' => {
                self.pos += 1;
                let mut raw = String::from("\"");
                loop {
                    let c = self.peek()?;
                    self.pos += 1;
                    raw.push(c);
                    if c == '\\' {
                        raw.push(self.peek()?);
                        self.pos += 1;
                    } else if c == '"' {
                        break;
                    }
                }
                unquote(&raw)
            }
            _ => None,
        }
    }

    /// A literal character of the format.
    fn literal(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A space in the format: one or more spaces, or the end of input.
    fn space(&mut self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_go_space(c) => {
                self.skip_space();
                true
            }
            Some(_) => false,
        }
    }

    /// `%s`: a run of non-space characters.
    fn word(&mut self) -> Option<String> {
        self.skip_space();
        self.peek()?;
        let mut out = String::new();
        while let Some(c) = self.peek().filter(|c| !is_go_space(*c)) {
            out.push(c);
            self.pos += 1;
        }
        Some(out)
    }
}

/// Go's `strconv.Unquote` for a double-quoted literal, producing bytes
/// (`\x` and octal escapes may make invalid UTF-8).
pub fn unquote(quoted: &str) -> Option<Vec<u8>> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let chars: Vec<char> = inner.chars().collect();
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    let hex = |digits: &[char]| -> Option<u32> {
        let s: String = digits.iter().collect();
        if s.chars().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(&s, 16).ok()
        } else {
            None
        }
    };
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let e = *chars.get(i)?;
                i += 1;
                match e {
                    'a' => out.push(7),
                    'b' => out.push(8),
                    'f' => out.push(12),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'v' => out.push(11),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'x' => {
                        let v = hex(chars.get(i..i + 2)?)?;
                        i += 2;
                        out.push(v as u8);
                    }
                    'u' | 'U' => {
                        let n = if e == 'u' { 4 } else { 8 };
                        let v = hex(chars.get(i..i + n)?)?;
                        i += n;
                        let ch = char::from_u32(v)?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    '0'..='7' => {
                        let digits = chars.get(i - 1..i + 2)?;
                        let mut v: u32 = 0;
                        for d in digits {
                            let d = d.to_digit(8)?;
                            v = v * 8 + d;
                        }
                        if v > 255 {
                            return None;
                        }
                        i += 2;
                        out.push(v as u8);
                    }
                    _ => return None,
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Some(out)
}

/// The partial results of scanning `"%q) %s %q"`: how many were assigned.
struct Scanned {
    count: usize,
    key: Vec<u8>,
    op: String,
    value: Vec<u8>,
}

fn scan_compare(rest: &str) -> Scanned {
    let mut scanned = Scanned {
        count: 0,
        key: Vec::new(),
        op: String::new(),
        value: Vec::new(),
    };
    let mut s = Scanner::new(rest);
    let Some(key) = s.quoted() else {
        return scanned;
    };
    scanned.key = key;
    scanned.count = 1;
    if !s.literal(')') || !s.space() {
        return scanned;
    }
    let Some(op) = s.word() else {
        return scanned;
    };
    scanned.op = op;
    scanned.count = 2;
    if !s.space() {
        return scanned;
    }
    let Some(value) = s.quoted() else {
        return scanned;
    };
    scanned.value = value;
    scanned.count = 3;
    scanned
}

/// etcdctl's `parseCompare`.
pub fn parse_compare(line: &str) -> Result<Compare, CtlError> {
    let Some((target, rest)) = line.split_once('(') else {
        return Err(CtlError::InvalidInput(format!(
            "malformed comparison: {line}"
        )));
    };
    let scanned = scan_compare(rest);
    if scanned.count != 3 {
        return Err(CtlError::InvalidInput(format!(
            "malformed comparison: {line}; got {target}({}) {} {}",
            gofmt::quote_bytes(&scanned.key),
            scanned.op,
            gofmt::quote_bytes(&scanned.value)
        )));
    }
    let value_text = String::from_utf8_lossy(&scanned.value).into_owned();
    let invalid = || CtlError::InvalidInput(format!("invalid txn compare request: {line}"));
    let (target, union) = match target {
        "ver" | "version" => (
            CompareTarget::Version,
            TargetUnion::Version(gofmt::parse_int(&value_text, 10).map_err(|_| invalid())?),
        ),
        "c" | "create" => (
            CompareTarget::Create,
            TargetUnion::CreateRevision(gofmt::parse_int(&value_text, 10).map_err(|_| invalid())?),
        ),
        "m" | "mod" => (
            CompareTarget::Mod,
            TargetUnion::ModRevision(gofmt::parse_int(&value_text, 10).map_err(|_| invalid())?),
        ),
        "val" | "value" => (
            CompareTarget::Value,
            TargetUnion::Value(Bytes::from(scanned.value.clone())),
        ),
        "lease" => {
            // clientv3.Compare checks the operator first, then panics on
            // the string operand etcdctl passes for a lease.
            compare_result(&scanned.op)?;
            return Err(CtlError::Panic("bad value".to_string()));
        }
        other => {
            return Err(CtlError::InvalidInput(format!(
                "malformed comparison: {line} (unknown target {other})"
            )));
        }
    };
    Ok(Compare {
        result: compare_result(&scanned.op)? as i32,
        target: target as i32,
        key: Bytes::from(scanned.key),
        range_end: Bytes::new(),
        target_union: Some(union),
    })
}

/// clientv3's operator names; anything else panics there.
fn compare_result(op: &str) -> Result<CompareResult, CtlError> {
    match op {
        "=" => Ok(CompareResult::Equal),
        "!=" => Ok(CompareResult::NotEqual),
        ">" => Ok(CompareResult::Greater),
        "<" => Ok(CompareResult::Less),
        _ => Err(CtlError::Panic("Unknown result op".to_string())),
    }
}

/// etcdctl's `argify`: words by the regular expression
/// `"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`, double-quoted words
/// unquoted, single-quoted words cut as etcdctl (mis)cuts them.
pub fn argify(line: &str) -> Result<Vec<String>, CtlError> {
    let bytes = line.as_bytes();
    let is_space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let mut words: Vec<&str> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let c = bytes[p];
        // Alternative 1: a double-quoted string with backslash escapes.
        if c == b'"' {
            let mut j = p + 1;
            let mut end = None;
            while j < bytes.len() {
                match bytes[j] {
                    b'"' => {
                        end = Some(j + 1);
                        break;
                    }
                    b'\\' => {
                        // `\\.`: any character but a newline.
                        match line[j + 1..].chars().next() {
                            Some(next) if next != '\n' => j += 1 + next.len_utf8(),
                            _ => break,
                        }
                    }
                    _ => j += 1,
                }
            }
            if let Some(end) = end {
                words.push(&line[p..end]);
                p = end;
                continue;
            }
        }
        // Alternative 2: a single-quoted string.
        if c == b'\''
            && let Some(close) = line[p + 1..].find('\'')
        {
            let end = p + 1 + close + 1;
            words.push(&line[p..end]);
            p = end;
            continue;
        }
        // Alternative 3: a word starting with neither quote nor space.
        if c != b'"' && c != b'\'' && !is_space(c) {
            let mut end = p;
            while end < bytes.len() && !is_space(bytes[end]) {
                end += 1;
            }
            words.push(&line[p..end]);
            p = end;
            continue;
        }
        // No match here: move on one character.
        p += line[p..].chars().next().map_or(1, char::len_utf8);
    }
    let count = words.len();
    let mut args = Vec::with_capacity(count);
    for word in words {
        if word.starts_with('\'') {
            // etcdctl slices with len(args) instead of len(args[i]).
            let high = count - 1;
            if high > word.len() {
                return Err(CtlError::Panic(format!(
                    "runtime error: slice bounds out of range [:{high}] with length {}",
                    word.len()
                )));
            }
            if high < 1 {
                return Err(CtlError::Panic(format!(
                    "runtime error: slice bounds out of range [1:{high}]"
                )));
            }
            args.push(String::from_utf8_lossy(&word.as_bytes()[1..high]).into_owned());
        } else if word.starts_with('"') {
            let mut s = Scanner::new(word);
            match s.quoted() {
                Some(v) => args.push(String::from_utf8_lossy(&v).into_owned()),
                None => return Err(CtlError::InvalidInput("invalid syntax".to_string())),
            }
        } else {
            args.push(word.to_string());
        }
    }
    Ok(args)
}

/// etcdctl's `parseRequestUnion`: one request line. `usage_sink` receives
/// the cobra usage text etcdctl writes to standard error on a flag error.
pub fn parse_request(
    line: &str,
    stdin: &mut dyn Read,
    usage_sink: &mut dyn FnMut(String),
) -> Result<RequestOp, CtlError> {
    let args = argify(line)?;
    if args.len() < 2 {
        return Err(CtlError::InvalidInput(format!(
            "invalid txn compare request: {line}"
        )));
    }
    let invalid = || CtlError::InvalidInput(format!("invalid txn request: {line}"));
    // cobra's Find on a nameless root holding put, get and del (and the
    // help and completion commands cobra adds, which never make a request).
    let mut root = tree::Command {
        use_line: "",
        short: "",
        long: "",
        flags: Vec::new(),
        persistent: Vec::new(),
        action: tree::Action::Group,
        children: Vec::new(),
    };
    for (use_line, action, flags) in [
        (tree::PUT_USE, tree::Action::Put, tree::put_flags()),
        (tree::GET_USE, tree::Action::Get, tree::get_flags()),
        (tree::DEL_USE, tree::Action::Del, tree::del_flags()),
        ("help [command]", tree::Action::Unimplemented, Vec::new()),
        ("completion", tree::Action::Unimplemented, Vec::new()),
    ] {
        root.children.push(tree::Command {
            use_line,
            short: "",
            long: "",
            flags,
            persistent: Vec::new(),
            action,
            children: Vec::new(),
        });
    }
    let words = tree::strip_flags(&args, &FlagSet::new(Vec::new()));
    let first_word = words.first().map(String::as_str).unwrap_or("");
    let command = tree::find_next(&root, first_word).ok_or_else(invalid)?;
    let mut rest = args.clone();
    if let Some(pos) = rest.iter().position(|a| a == first_word) {
        rest.remove(pos);
    }
    let mut specs = command.flags.clone();
    specs.push(crate::flags::FlagSpec {
        name: "help",
        shorthand: Some('h'),
        kind: crate::flags::FlagKind::Bool,
        default: "false",
        usage: "help",
    });
    let mut set = FlagSet::new(specs);
    let positional = match set.parse(&rest) {
        Ok(p) => p,
        Err(_) => {
            usage_sink(tree::cobra_default_usage(
                command.use_line,
                &command.flags,
                command.name(),
            ));
            return Err(invalid());
        }
    };
    if set.bool("help") {
        return Err(invalid());
    }
    let request = match command.action {
        tree::Action::Get => Request::RequestRange(ops::range_request(&positional, &set)?),
        tree::Action::Put => Request::RequestPut(ops::put_request(&positional, &set, stdin)?),
        tree::Action::Del => Request::RequestDeleteRange(ops::delete_request(&positional, &set)?),
        _ => return Err(invalid()),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn compares_parse_like_etcdctl() {
        let cmp = parse_compare("value(\"foo\") = \"bar\"").unwrap();
        assert_eq!(cmp.target, CompareTarget::Value as i32);
        assert_eq!(cmp.result, CompareResult::Equal as i32);
        assert_eq!(&cmp.key[..], b"foo");
        assert_eq!(
            cmp.target_union,
            Some(TargetUnion::Value(Bytes::from_static(b"bar")))
        );

        let cmp = parse_compare("mod(\"k\\x00\") > \"5\"").unwrap();
        assert_eq!(cmp.target, CompareTarget::Mod as i32);
        assert_eq!(&cmp.key[..], b"k\0");
        assert_eq!(cmp.target_union, Some(TargetUnion::ModRevision(5)));

        let cmp = parse_compare("ver(`raw\\n`) != \"0\"").unwrap();
        assert_eq!(&cmp.key[..], b"raw\\n");
        assert_eq!(cmp.result, CompareResult::NotEqual as i32);

        let cmp = parse_compare("c(\"k\") < \"3\"").unwrap();
        assert_eq!(cmp.target_union, Some(TargetUnion::CreateRevision(3)));
    }

    #[test]
    fn compare_errors_match_etcdctl_text() {
        assert_eq!(
            parse_compare("value(\"foo\") = bar"),
            Err(CtlError::InvalidInput(
                "malformed comparison: value(\"foo\") = bar; got value(\"foo\") = \"\"".into()
            ))
        );
        assert_eq!(
            parse_compare("nothing"),
            Err(CtlError::InvalidInput(
                "malformed comparison: nothing".into()
            ))
        );
        assert_eq!(
            parse_compare("size(\"k\") = \"1\""),
            Err(CtlError::InvalidInput(
                "malformed comparison: size(\"k\") = \"1\" (unknown target size)".into()
            ))
        );
        assert_eq!(
            parse_compare("ver(\"k\") = \"x\""),
            Err(CtlError::InvalidInput(
                "invalid txn compare request: ver(\"k\") = \"x\"".into()
            ))
        );
        assert_eq!(
            parse_compare("value(\"k\")= \"v\""),
            Err(CtlError::InvalidInput(
                "malformed comparison: value(\"k\")= \"v\"; got value(\"k\")  \"\"".into()
            ))
        );
        assert_eq!(
            parse_compare("value(\"k\") == \"v\""),
            Err(CtlError::Panic("Unknown result op".into()))
        );
        assert_eq!(
            parse_compare("lease(\"k\") = \"1\""),
            Err(CtlError::Panic("bad value".into()))
        );
    }

    #[test]
    fn argify_splits_and_unquotes() {
        assert_eq!(
            argify("put foo \"bar baz\"").unwrap(),
            words(&["put", "foo", "bar baz"])
        );
        assert_eq!(
            argify("put  k \"a\\\"b\\n\"").unwrap(),
            words(&["put", "k", "a\"b\n"])
        );
        // An unmatched quote is skipped, the word after it kept.
        assert_eq!(argify("put k \"v").unwrap(), words(&["put", "k", "v"]));
        // etcdctl's single-quote bug: cut to len(words)-1 bytes.
        assert_eq!(argify("put 'abcdef' x").unwrap(), words(&["put", "a", "x"]));
        assert_eq!(
            argify("put 'ab' x y z w"),
            Err(CtlError::Panic(
                "runtime error: slice bounds out of range [:5] with length 4".into()
            ))
        );
        assert_eq!(
            argify("'ab'"),
            Err(CtlError::Panic(
                "runtime error: slice bounds out of range [1:0]".into()
            ))
        );
        assert_eq!(
            argify("put k \"\\q\""),
            Err(CtlError::InvalidInput("invalid syntax".into()))
        );
    }

    #[test]
    fn requests_parse_with_command_flags() {
        let mut sink = |_: String| {};
        let op = parse_request("put k v --prev-kv", &mut &b""[..], &mut sink).unwrap();
        match op.request {
            Some(Request::RequestPut(p)) => {
                assert_eq!(&p.key[..], b"k");
                assert_eq!(&p.value[..], b"v");
                assert!(p.prev_kv);
            }
            other => panic!("unexpected {other:?}"),
        }
        let op = parse_request("g k --prefix", &mut &b""[..], &mut sink).unwrap();
        assert!(matches!(op.request, Some(Request::RequestRange(r)) if &r.range_end[..] == b"l"));
        assert_eq!(
            parse_request("get", &mut &b""[..], &mut sink).err(),
            Some(CtlError::InvalidInput(
                "invalid txn compare request: get".into()
            ))
        );
        assert_eq!(
            parse_request("foo bar", &mut &b""[..], &mut sink).err(),
            Some(CtlError::InvalidInput(
                "invalid txn request: foo bar".into()
            ))
        );
    }

    #[test]
    fn flag_errors_print_cobra_usage() {
        let mut printed = String::new();
        let mut sink = |text: String| printed.push_str(&text);
        let err = parse_request("get foo --bogus", &mut &b""[..], &mut sink).err();
        assert_eq!(
            err,
            Some(CtlError::InvalidInput(
                "invalid txn request: get foo --bogus".into()
            ))
        );
        assert!(
            printed.starts_with("Usage:\n   get [options] <key> [range_end] [flags]\n\nFlags:\n")
        );
        assert!(printed.contains("  -h, --help                 help for get\n"));
    }

    #[test]
    fn sections_end_at_blank_lines_and_need_newlines() {
        let mut input: &[u8] = b"value(\"a\") = \"1\"\n\nput a 2\n\nget a\n\n";
        let compares = read_compares(&mut input).unwrap();
        assert_eq!(compares.len(), 1);
        let mut sink = |_: String| {};
        assert_eq!(read_requests(&mut input, &mut sink).unwrap().len(), 1);
        assert_eq!(read_requests(&mut input, &mut sink).unwrap().len(), 1);
        let mut truncated: &[u8] = b"\nput a 1";
        read_compares(&mut truncated).unwrap();
        assert_eq!(
            read_requests(&mut truncated, &mut sink).err(),
            Some(CtlError::InvalidInput("EOF".into()))
        );
    }
}
