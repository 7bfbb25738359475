//! Command-line flags with spf13/pflag's semantics, which etcdctl's users
//! (and scripts) depend on: `--name value`, `--name=value`, `-x value`,
//! `-xvalue`, bool flags with an optional `=value`, `--` ending the flags,
//! flags interspersed with positional arguments, a string-slice flag that
//! replaces its default on first use and appends after, and pflag's error
//! texts (`unknown flag: --foo`, `invalid argument "x" for "--limit" flag:
//! ...`).
//!
//! This module owns flag definitions, values and the two flag listings
//! printed in usage screens (etcdctl's own format and pflag's default one).
//! It does not know which command a flag belongs to; the command tree does.

use std::collections::{BTreeMap, HashSet};

use crate::gofmt::{self, GoDuration};

/// The value type of a flag, as pflag names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    Bool,
    String,
    Int64,
    Duration,
    StringSlice,
}

/// One flag: its name, optional one-letter shorthand, type, default (as
/// pflag prints it) and help text.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    pub name: &'static str,
    pub shorthand: Option<char>,
    pub kind: FlagKind,
    pub default: &'static str,
    pub usage: &'static str,
}

impl FlagSpec {
    pub const fn new(
        name: &'static str,
        kind: FlagKind,
        default: &'static str,
        usage: &'static str,
    ) -> Self {
        FlagSpec {
            name,
            shorthand: None,
            kind,
            default,
            usage,
        }
    }

    pub const fn short(mut self, shorthand: char) -> Self {
        self.shorthand = Some(shorthand);
        self
    }

    /// pflag's `NoOptDefVal`: bools may be given without a value.
    fn takes_optional_value(&self) -> bool {
        self.kind == FlagKind::Bool
    }
}

/// A parsed flag value.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    Bool(bool),
    Str(String),
    Int(i64),
    Duration(GoDuration),
    List(Vec<String>),
}

/// A set of flags and their current values.
#[derive(Debug, Clone)]
pub struct FlagSet {
    specs: Vec<FlagSpec>,
    values: BTreeMap<&'static str, FlagValue>,
    changed: HashSet<&'static str>,
}

impl FlagSet {
    /// A set holding `specs` at their defaults. Defaults are written by us,
    /// so one that fails to parse is a programming error caught by tests;
    /// it falls back to the type's zero value.
    pub fn new(specs: Vec<FlagSpec>) -> Self {
        let mut values = BTreeMap::new();
        for spec in &specs {
            let value = match spec.kind {
                FlagKind::Bool => FlagValue::Bool(spec.default == "true"),
                FlagKind::String => FlagValue::Str(spec.default.to_string()),
                FlagKind::Int64 => FlagValue::Int(gofmt::parse_int(spec.default, 0).unwrap_or(0)),
                FlagKind::Duration => FlagValue::Duration(
                    gofmt::parse_duration(spec.default).unwrap_or(GoDuration(0)),
                ),
                FlagKind::StringSlice => {
                    let inner = spec.default.trim_start_matches('[').trim_end_matches(']');
                    FlagValue::List(if inner.is_empty() {
                        Vec::new()
                    } else {
                        inner.split(',').map(str::to_string).collect()
                    })
                }
            };
            values.insert(spec.name, value);
        }
        FlagSet {
            specs,
            values,
            changed: HashSet::new(),
        }
    }

    pub fn specs(&self) -> &[FlagSpec] {
        &self.specs
    }

    fn lookup(&self, name: &str) -> Option<&FlagSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    fn lookup_short(&self, c: char) -> Option<&FlagSpec> {
        self.specs.iter().find(|s| s.shorthand == Some(c))
    }

    /// Whether `--name` exists and may be given without a value.
    pub fn long_has_optional_value(&self, name: &str) -> bool {
        self.lookup(name)
            .is_some_and(FlagSpec::takes_optional_value)
    }

    /// Whether `-c` exists and may be given without a value.
    pub fn short_has_optional_value(&self, c: char) -> bool {
        self.lookup_short(c)
            .is_some_and(FlagSpec::takes_optional_value)
    }

    /// pflag's `FlagSet.Set`: parses and stores `value`, marking the flag
    /// changed. The error is pflag's full text.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let Some(spec) = self.lookup(name).copied() else {
            return Err(format!("no such flag -{name}"));
        };
        let parsed = match spec.kind {
            FlagKind::Bool => gofmt::parse_bool(value).map(FlagValue::Bool),
            FlagKind::String => Ok(FlagValue::Str(value.to_string())),
            FlagKind::Int64 => gofmt::parse_int(value, 0).map(FlagValue::Int),
            FlagKind::Duration => gofmt::parse_duration(value).map(FlagValue::Duration),
            FlagKind::StringSlice => {
                let items = split_csv(value);
                let mut list = match (self.changed.contains(spec.name), self.values.get(spec.name))
                {
                    (true, Some(FlagValue::List(existing))) => existing.clone(),
                    _ => Vec::new(),
                };
                list.extend(items);
                Ok(FlagValue::List(list))
            }
        };
        match parsed {
            Ok(v) => {
                self.values.insert(spec.name, v);
                self.changed.insert(spec.name);
                Ok(())
            }
            Err(e) => {
                let flag_name = match spec.shorthand {
                    Some(c) => format!("-{c}, --{}", spec.name),
                    None => format!("--{}", spec.name),
                };
                Err(format!(
                    "invalid argument {} for {} flag: {e}",
                    gofmt::quote(value),
                    gofmt::quote(&flag_name)
                ))
            }
        }
    }

    /// Parses `args` like pflag with interspersed flags; returns the
    /// positional arguments. The error is the text cobra prints.
    pub fn parse(&mut self, args: &[String]) -> Result<Vec<String>, String> {
        let mut positional = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg.len() < 2 || !arg.starts_with('-') {
                positional.push(arg.clone());
                continue;
            }
            if arg == "--" {
                positional.extend(args[i..].iter().cloned());
                break;
            }
            if let Some(long) = arg.strip_prefix("--") {
                if long.is_empty() || long.starts_with('-') || long.starts_with('=') {
                    return Err(format!("bad flag syntax: {arg}"));
                }
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let Some(spec) = self.lookup(name).copied() else {
                    return Err(format!("unknown flag: --{name}"));
                };
                let value = if let Some(v) = inline {
                    v.to_string()
                } else if spec.takes_optional_value() {
                    "true".to_string()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].clone()
                } else {
                    return Err(format!("flag needs an argument: {arg}"));
                };
                self.set(spec.name, &value)?;
            } else {
                let shorthands: Vec<char> = arg[1..].chars().collect();
                let mut k = 0;
                while k < shorthands.len() {
                    let c = shorthands[k];
                    let rest: String = shorthands[k..].iter().collect();
                    let Some(spec) = self.lookup_short(c).copied() else {
                        return Err(format!(
                            "unknown shorthand flag: {} in -{rest}",
                            go_quote_rune(c)
                        ));
                    };
                    let value = if shorthands.get(k + 1) == Some(&'=') {
                        let v: String = shorthands[k + 2..].iter().collect();
                        k = shorthands.len();
                        v
                    } else if spec.takes_optional_value() {
                        k += 1;
                        "true".to_string()
                    } else if k + 1 < shorthands.len() {
                        let v: String = shorthands[k + 1..].iter().collect();
                        k = shorthands.len();
                        v
                    } else if i < args.len() {
                        i += 1;
                        k += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(format!(
                            "flag needs an argument: {} in -{rest}",
                            go_quote_rune(c)
                        ));
                    };
                    self.set(spec.name, &value)?;
                }
            }
        }
        Ok(positional)
    }

    pub fn changed(&self, name: &str) -> bool {
        self.changed.contains(name)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(FlagValue::Bool(true)))
    }

    pub fn string(&self, name: &str) -> String {
        match self.values.get(name) {
            Some(FlagValue::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(FlagValue::Int(v)) => *v,
            _ => 0,
        }
    }

    pub fn duration(&self, name: &str) -> GoDuration {
        match self.values.get(name) {
            Some(FlagValue::Duration(d)) => *d,
            _ => GoDuration(0),
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(FlagValue::List(v)) => v.clone(),
            _ => Vec::new(),
        }
    }

    /// Whether a flag of this name is defined.
    pub fn has(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }
}

/// Go's `%q` of a rune, as pflag prints shorthands (`'x'`).
fn go_quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '\\' => "'\\\\'".to_string(),
        c if gofmt::is_go_printable(c) => format!("'{c}'"),
        c => {
            let quoted = gofmt::quote(&c.to_string());
            format!("'{}'", &quoted[1..quoted.len() - 1])
        }
    }
}

/// pflag reads string-slice values as one CSV record.
fn split_csv(value: &str) -> Vec<String> {
    if value.is_empty() {
        return Vec::new();
    }
    if !value.contains('"') {
        return value.split(',').map(str::to_string).collect();
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// etcdctl's own flag listing (`etcdFlagUsages`): one line per flag,
/// sorted by name, `name=default` then a tab and the help text. Passed
/// through the tabwriter by the caller.
pub fn etcd_flag_usages(specs: &[FlagSpec]) -> String {
    let mut sorted: Vec<&FlagSpec> = specs.iter().collect();
    sorted.sort_by_key(|s| s.name);
    let mut out = String::new();
    for spec in sorted {
        let prefix = match spec.shorthand {
            Some(c) => format!("  -{c}, --{}", spec.name),
            None => format!("      --{}", spec.name),
        };
        let value = match spec.kind {
            FlagKind::Bool => format!("[={}]", spec.default),
            FlagKind::String => format!("={}", gofmt::quote(spec.default)),
            _ => format!("={}", spec.default),
        };
        out.push_str(&format!("{prefix}{value}\t{}\n", spec.usage));
    }
    out
}

/// pflag's default flag listing (`FlagUsages`), used by cobra's default
/// usage template; trailing whitespace trimmed as cobra does.
pub fn pflag_flag_usages(specs: &[FlagSpec]) -> String {
    let mut sorted: Vec<&FlagSpec> = specs.iter().collect();
    sorted.sort_by_key(|s| s.name);
    let mut lines = Vec::new();
    let mut max_len = 0;
    for spec in sorted {
        let mut line = match spec.shorthand {
            Some(c) => format!("  -{c}, --{}", spec.name),
            None => format!("      --{}", spec.name),
        };
        let type_name = match spec.kind {
            FlagKind::Bool => "",
            FlagKind::String => "string",
            FlagKind::Int64 => "int",
            FlagKind::Duration => "duration",
            FlagKind::StringSlice => "strings",
        };
        if !type_name.is_empty() {
            line.push(' ');
            line.push_str(type_name);
        }
        max_len = max_len.max(line.len());
        let zero = match spec.kind {
            FlagKind::Bool => spec.default == "false",
            FlagKind::String => spec.default.is_empty(),
            FlagKind::Int64 => spec.default == "0",
            FlagKind::Duration => spec.default == "0" || spec.default == "0s",
            FlagKind::StringSlice => spec.default == "[]",
        };
        let mut usage = spec.usage.to_string();
        if !zero {
            if spec.kind == FlagKind::String {
                usage.push_str(&format!(" (default {})", gofmt::quote(spec.default)));
            } else {
                usage.push_str(&format!(" (default {})", spec.default));
            }
        }
        lines.push((line, usage));
    }
    let mut out = String::new();
    for (line, usage) in lines {
        let padding = " ".repeat(max_len - line.len());
        out.push_str(&format!("{line}{padding}   {usage}\n"));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<FlagSpec> {
        vec![
            FlagSpec::new(
                "prefix",
                FlagKind::Bool,
                "false",
                "Get keys with matching prefix",
            ),
            FlagSpec::new("limit", FlagKind::Int64, "0", "Maximum number of results"),
            FlagSpec::new("write-out", FlagKind::String, "simple", "format").short('w'),
            FlagSpec::new("interactive", FlagKind::Bool, "false", "interactive").short('i'),
            FlagSpec::new(
                "endpoints",
                FlagKind::StringSlice,
                "[127.0.0.1:2379]",
                "gRPC endpoints",
            ),
            FlagSpec::new("dial-timeout", FlagKind::Duration, "2s", "dial timeout"),
        ]
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_interspersed_flags_and_double_dash() {
        let mut set = FlagSet::new(specs());
        let rest = set
            .parse(&args(&[
                "foo",
                "--prefix",
                "-w",
                "json",
                "--limit=3",
                "--",
                "-x",
            ]))
            .unwrap();
        assert_eq!(rest, args(&["foo", "-x"]));
        assert!(set.bool("prefix"));
        assert_eq!(set.string("write-out"), "json");
        assert_eq!(set.int("limit"), 3);
        assert!(set.changed("limit"));
        assert!(!set.changed("dial-timeout"));
        assert_eq!(set.duration("dial-timeout"), GoDuration(2_000_000_000));
    }

    #[test]
    fn short_flags_combine_and_take_attached_values() {
        let mut set = FlagSet::new(specs());
        set.parse(&args(&["-iwjson"])).unwrap();
        assert!(set.bool("interactive"));
        assert_eq!(set.string("write-out"), "json");
    }

    #[test]
    fn string_slice_replaces_default_then_appends() {
        let mut set = FlagSet::new(specs());
        assert_eq!(set.list("endpoints"), args(&["127.0.0.1:2379"]));
        set.parse(&args(&["--endpoints", "a,b", "--endpoints=c"]))
            .unwrap();
        assert_eq!(set.list("endpoints"), args(&["a", "b", "c"]));
    }

    #[test]
    fn errors_read_like_pflag() {
        let mut set = FlagSet::new(specs());
        assert_eq!(
            set.parse(&args(&["--foo"])),
            Err("unknown flag: --foo".into())
        );
        assert_eq!(
            set.parse(&args(&["-x"])),
            Err("unknown shorthand flag: 'x' in -x".into())
        );
        assert_eq!(
            set.parse(&args(&["-w"])),
            Err("flag needs an argument: 'w' in -w".into())
        );
        assert_eq!(
            set.parse(&args(&["--limit"])),
            Err("flag needs an argument: --limit".into())
        );
        assert_eq!(
            set.parse(&args(&["--limit", "x"])),
            Err("invalid argument \"x\" for \"--limit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(
            set.parse(&args(&["--prefix=maybe"])),
            Err("invalid argument \"maybe\" for \"--prefix\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax".into())
        );
        assert_eq!(
            set.parse(&args(&["---x"])),
            Err("bad flag syntax: ---x".into())
        );
    }

    #[test]
    fn etcd_usage_lists_sorted_with_defaults() {
        let text = etcd_flag_usages(&specs()[..3]);
        assert_eq!(
            text,
            "      --limit=0\tMaximum number of results\n      --prefix[=false]\tGet keys with matching prefix\n  -w, --write-out=\"simple\"\tformat\n"
        );
    }

    #[test]
    fn pflag_usage_aligns_and_shows_non_zero_defaults() {
        let text = pflag_flag_usages(&specs()[..3]);
        assert_eq!(
            text,
            "      --limit int          Maximum number of results\n      --prefix             Get keys with matching prefix\n  -w, --write-out string   format (default \"simple\")"
        );
    }
}
