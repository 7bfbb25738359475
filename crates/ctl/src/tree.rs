//! The command tree and cobra's rules for walking it: which command a
//! command line names (`Find`, with unique-prefix matching), the
//! "unknown command" error and its "Did you mean this?" suggestions, and the
//! usage screens (etcdctl's custom template, and cobra's default one used
//! for the sub-commands of `txn`).
//!
//! The tree lists every etcdctl 3.4 command so that help screens, prefix
//! matching and suggestions behave as etcdctl's do; commands steadctl does
//! not implement are marked [`Action::Unimplemented`]. What each command
//! does lives in `commands`; this module only knows names, flags and text.

use crate::flags::{self, FlagKind, FlagSpec};
use crate::layout;

/// etcdctl's version strings, shown in the root help screen.
pub const ETCDCTL_VERSION: &str = "3.4.23";
pub const API_VERSION: &str = "3.4";

/// What running a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not runnable: only groups sub-commands (prints its usage).
    Group,
    Get,
    Put,
    Del,
    Txn,
    Compaction,
    EndpointHealth,
    EndpointStatus,
    MemberList,
    MemberAdd,
    MemberRemove,
    MemberUpdate,
    MemberPromote,
    MoveLeader,
    Watch,
    LeaseGrant,
    LeaseRevoke,
    LeaseTimeToLive,
    LeaseList,
    LeaseKeepAlive,
    /// cobra's `help [command]`.
    Help,
    /// An etcdctl command steadctl does not provide.
    Unimplemented,
}

/// One command: cobra's `Use`, `Short`, `Long`, flags and children.
#[derive(Debug, Clone)]
pub struct Command {
    pub use_line: &'static str,
    pub short: &'static str,
    pub long: &'static str,
    pub flags: Vec<FlagSpec>,
    pub persistent: Vec<FlagSpec>,
    pub action: Action,
    pub children: Vec<Command>,
}

impl Command {
    fn new(use_line: &'static str, short: &'static str, action: Action) -> Self {
        Command {
            use_line,
            short,
            long: "",
            flags: Vec::new(),
            persistent: Vec::new(),
            action,
            children: Vec::new(),
        }
    }

    fn long(mut self, long: &'static str) -> Self {
        self.long = long;
        self
    }

    fn flags(mut self, flags: Vec<FlagSpec>) -> Self {
        self.flags = flags;
        self
    }

    fn children(mut self, children: Vec<Command>) -> Self {
        self.children = children;
        self
    }

    /// The command's name: the first word of its `Use`.
    pub fn name(&self) -> &'static str {
        self.use_line.split(' ').next().unwrap_or(self.use_line)
    }

    fn runnable(&self) -> bool {
        self.action != Action::Group
    }

    /// Direct children sorted by name (cobra's `Commands()`).
    fn sorted_children(&self) -> Vec<&Command> {
        let mut children: Vec<&Command> = self.children.iter().collect();
        children.sort_by_key(|c| c.name());
        children
    }
}

const fn bool_flag(name: &'static str, usage: &'static str) -> FlagSpec {
    FlagSpec::new(name, FlagKind::Bool, "false", usage)
}

const fn string_flag(name: &'static str, default: &'static str, usage: &'static str) -> FlagSpec {
    FlagSpec::new(name, FlagKind::String, default, usage)
}

const fn int_flag(name: &'static str, usage: &'static str) -> FlagSpec {
    FlagSpec::new(name, FlagKind::Int64, "0", usage)
}

/// etcdctl's global (root persistent) flags.
pub fn global_flags() -> Vec<FlagSpec> {
    vec![
        FlagSpec::new(
            "endpoints",
            FlagKind::StringSlice,
            "[127.0.0.1:2379]",
            "gRPC endpoints",
        ),
        bool_flag("debug", "enable client-side debug logging"),
        string_flag(
            "write-out",
            "simple",
            "set the output format (fields, json, protobuf, simple, table)",
        )
        .short('w'),
        bool_flag("hex", "print byte strings as hex encoded strings"),
        FlagSpec::new(
            "dial-timeout",
            FlagKind::Duration,
            "2s",
            "dial timeout for client connections",
        ),
        FlagSpec::new(
            "command-timeout",
            FlagKind::Duration,
            "5s",
            "timeout for short running command (excluding dial timeout)",
        ),
        FlagSpec::new(
            "keepalive-time",
            FlagKind::Duration,
            "2s",
            "keepalive time for client connections",
        ),
        FlagSpec::new(
            "keepalive-timeout",
            FlagKind::Duration,
            "6s",
            "keepalive timeout for client connections",
        ),
        FlagSpec::new(
            "insecure-transport",
            FlagKind::Bool,
            "true",
            "disable transport security for client connections",
        ),
        FlagSpec::new(
            "insecure-discovery",
            FlagKind::Bool,
            "true",
            "accept insecure SRV records describing cluster endpoints",
        ),
        bool_flag(
            "insecure-skip-tls-verify",
            "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)",
        ),
        string_flag(
            "cert",
            "",
            "identify secure client using this TLS certificate file",
        ),
        string_flag("key", "", "identify secure client using this TLS key file"),
        string_flag(
            "cacert",
            "",
            "verify certificates of TLS-enabled secure servers using this CA bundle",
        ),
        string_flag(
            "user",
            "",
            "username[:password] for authentication (prompt if password is not supplied)",
        ),
        string_flag(
            "password",
            "",
            "password for authentication (if this option is used, --user option shouldn't include password)",
        ),
        string_flag(
            "discovery-srv",
            "",
            "domain name to query for SRV records describing cluster endpoints",
        )
        .short('d'),
        string_flag(
            "discovery-srv-name",
            "",
            "service name to query when using DNS discovery",
        ),
    ]
}

/// `get`'s flags (also accepted by `get` inside a transaction).
pub fn get_flags() -> Vec<FlagSpec> {
    vec![
        string_flag("consistency", "l", "Linearizable(l) or Serializable(s)"),
        string_flag(
            "order",
            "",
            "Order of results; ASCEND or DESCEND (ASCEND by default)",
        ),
        string_flag(
            "sort-by",
            "",
            "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION",
        ),
        int_flag("limit", "Maximum number of results"),
        bool_flag("prefix", "Get keys with matching prefix"),
        bool_flag(
            "from-key",
            "Get keys that are greater than or equal to the given key using byte compare",
        ),
        int_flag("rev", "Specify the kv revision"),
        bool_flag("keys-only", "Get only the keys"),
        // etcdctl 3.5's flag (3.4 has none): the count of matching keys.
        bool_flag("count-only", "Get only the count"),
        bool_flag(
            "print-value-only",
            "Only write values when using the \"simple\" output format",
        ),
    ]
}

/// `put`'s flags.
pub fn put_flags() -> Vec<FlagSpec> {
    vec![
        string_flag(
            "lease",
            "0",
            "lease ID (in hexadecimal) to attach to the key",
        ),
        bool_flag(
            "prev-kv",
            "return the previous key-value pair before modification",
        ),
        bool_flag("ignore-value", "updates the key using its current value"),
        bool_flag("ignore-lease", "updates the key using its current lease"),
    ]
}

/// `del`'s flags.
pub fn del_flags() -> Vec<FlagSpec> {
    vec![
        bool_flag("prefix", "delete keys with matching prefix"),
        bool_flag("prev-kv", "return deleted key-value pairs"),
        bool_flag(
            "from-key",
            "delete keys that are greater than or equal to the given key using byte compare",
        ),
    ]
}

/// `watch`'s flags (also what each line of `watch -i` is parsed with).
pub fn watch_flags() -> Vec<FlagSpec> {
    vec![
        bool_flag("interactive", "Interactive mode").short('i'),
        bool_flag("prefix", "Watch on a prefix if prefix is set"),
        int_flag("rev", "Revision to start watching"),
        bool_flag(
            "prev-kv",
            "get the previous key-value pair before the event happens",
        ),
        // etcdctl 3.5's (3.4 lacks it).
        bool_flag(
            "progress-notify",
            "get periodic watch progress notification from server",
        ),
    ]
}

pub const WATCH_USE: &str =
    "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]";

pub const GET_USE: &str = "get [options] <key> [range_end]";
pub const GET_SHORT: &str = "Gets the key or a range of keys";
pub const PUT_USE: &str = "put [options] <key> <value> (<value> can also be given from stdin)";
pub const PUT_SHORT: &str = "Puts the given key into the store";
pub const DEL_USE: &str = "del [options] <key> [range_end]";
pub const DEL_SHORT: &str = "Removes the specified key or range of keys [key, range_end)";

const PUT_LONG: &str = "
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
";

/// `lease` and its sub-commands, in etcdctl's registration order.
fn lease() -> Command {
    Command::new(
        "lease <subcommand>",
        "Lease related commands",
        Action::Group,
    )
    .children(vec![
        Command::new("grant <ttl>", "Creates leases", Action::LeaseGrant),
        Command::new("revoke <leaseID>", "Revokes leases", Action::LeaseRevoke),
        Command::new(
            "timetolive <leaseID> [options]",
            "Get lease information",
            Action::LeaseTimeToLive,
        )
        .flags(vec![bool_flag("keys", "Get keys attached to this lease")]),
        Command::new("list", "List all active leases", Action::LeaseList),
        Command::new(
            "keep-alive [options] <leaseID>",
            "Keeps leases alive (renew)",
            Action::LeaseKeepAlive,
        )
        .flags(vec![bool_flag(
            "once",
            "Resets the keep-alive time to its original value and exits immediately",
        )]),
    ])
}

/// A leaf etcdctl has and steadctl does not.
fn unimplemented(use_line: &'static str, short: &'static str) -> Command {
    Command::new(use_line, short, Action::Unimplemented)
}

/// A group of commands steadctl does not implement.
fn unimplemented_group(name: &'static str, children: &[(&'static str, &'static str)]) -> Command {
    Command::new(name, "", Action::Unimplemented).children(
        children
            .iter()
            .map(|(use_line, short)| unimplemented(use_line, short))
            .collect(),
    )
}

/// The whole tree, children in etcdctl's registration order (which decides
/// the order of suggestions).
pub fn root() -> Command {
    let mut endpoint = Command::new("endpoint <subcommand>", "Endpoint related commands", Action::Group)
        .children(vec![
            Command::new(
                "health",
                "Checks the healthiness of endpoints specified in `--endpoints` flag",
                Action::EndpointHealth,
            ),
            Command::new(
                "status",
                "Prints out the status of endpoints specified in `--endpoints` flag",
                Action::EndpointStatus,
            )
            .long("When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
"),
            unimplemented("hashkv", "Prints the KV history hash for each endpoint in --endpoints"),
        ]);
    endpoint.persistent = vec![bool_flag(
        "cluster",
        "use all endpoints from the cluster member list",
    )];

    let member = Command::new("member <subcommand>", "Membership related commands", Action::Group)
        .children(vec![
            Command::new(
                "add <memberName> [options]",
                "Adds a member into the cluster",
                Action::MemberAdd,
            )
            .flags(vec![
                string_flag("peer-urls", "", "comma separated peer URLs for the new member."),
                bool_flag("learner", "indicates if the new member is raft learner"),
            ]),
            Command::new(
                "remove <memberID>",
                "Removes a member from the cluster",
                Action::MemberRemove,
            ),
            Command::new(
                "update <memberID> [options]",
                "Updates a member in the cluster",
                Action::MemberUpdate,
            )
            .flags(vec![string_flag(
                "peer-urls",
                "",
                "comma separated peer URLs for the updated member.",
            )]),
            Command::new("list", "Lists all members in the cluster", Action::MemberList).long(
                "When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
",
            ),
            Command::new(
                "promote <memberID>",
                "Promotes a non-voting member in the cluster",
                Action::MemberPromote,
            )
            .long("Promotes a non-voting learner member to a voting one in the cluster.
"),
        ]);

    let mut root = Command::new("etcdctl", "A simple command line client for etcd3.", Action::Group)
        .children(vec![
            Command::new(GET_USE, GET_SHORT, Action::Get).flags(get_flags()),
            Command::new(PUT_USE, PUT_SHORT, Action::Put)
                .long(PUT_LONG)
                .flags(put_flags()),
            Command::new(DEL_USE, DEL_SHORT, Action::Del).flags(del_flags()),
            Command::new(
                "txn [options]",
                "Txn processes all the requests in one transaction",
                Action::Txn,
            )
            .flags(vec![
                bool_flag("interactive", "Input transaction in interactive mode").short('i'),
            ]),
            Command::new(
                "compaction [options] <revision>",
                "Compacts the event history in etcd",
                Action::Compaction,
            )
            .flags(vec![bool_flag(
                "physical",
                "'true' to wait for compaction to physically remove all old revisions",
            )]),
            unimplemented_group(
                "alarm",
                &[("disarm", "Disarms all alarms"), ("list", "Lists all alarms")],
            ),
            unimplemented(
                "defrag",
                "Defragments the storage of the etcd members with given endpoints",
            ),
            endpoint,
            Command::new(
                "move-leader <transferee-member-id>",
                "Transfers leadership to another etcd cluster member.",
                Action::MoveLeader,
            ),
            Command::new(
                WATCH_USE,
                "Watches events stream on keys or prefixes",
                Action::Watch,
            )
            .flags(watch_flags()),
            unimplemented("version", "Prints the version of etcdctl"),
            lease(),
            member,
            unimplemented_group(
                "snapshot",
                &[
                    ("save", "Stores an etcd node backend snapshot to a given file"),
                    ("restore", "Restores an etcd member snapshot to an etcd directory"),
                    ("status", "Gets backend snapshot status of a given file"),
                ],
            ),
            unimplemented("make-mirror", "Makes a mirror at the destination etcd cluster"),
            unimplemented("migrate", "Migrates keys in a v2 store to a mvcc store"),
            unimplemented("lock", "Acquires a named lock"),
            unimplemented("elect", "Observes and participates in leader election"),
            unimplemented_group(
                "auth",
                &[
                    ("enable", "Enables authentication"),
                    ("disable", "Disables authentication"),
                ],
            ),
            unimplemented_group(
                "user",
                &[
                    ("add", "Adds a new user"),
                    ("delete", "Deletes a user"),
                    ("get", "Gets detailed information of a user"),
                    ("list", "Lists all users"),
                    ("passwd", "Changes password of user"),
                    ("grant-role", "Grants a role to a user"),
                    ("revoke-role", "Revokes a role from a user"),
                ],
            ),
            unimplemented_group(
                "role",
                &[
                    ("add", "Adds a new role"),
                    ("delete", "Deletes a role"),
                    ("get", "Gets detailed information of a role"),
                    ("list", "Lists all roles"),
                    ("grant-permission", "Grants a key to a role"),
                    ("revoke-permission", "Revokes a key from a role"),
                ],
            ),
            unimplemented_group(
                "check",
                &[
                    ("perf", "Check the performance of the etcd cluster"),
                    (
                        "datascale",
                        "Check the memory usage of holding data for different workloads on a given server endpoint.",
                    ),
                ],
            ),
            // cobra adds these two at execution time.
            Command::new("help [command]", "Help about any command", Action::Help).long(
                "Help provides help for any command in the application.
Simply type etcdctl help [path to command] for full details.",
            ),
            unimplemented_group(
                "completion",
                &[
                    ("bash", "Generate the autocompletion script for bash"),
                    ("zsh", "Generate the autocompletion script for zsh"),
                    ("fish", "Generate the autocompletion script for fish"),
                    ("powershell", "Generate the autocompletion script for powershell"),
                ],
            ),
        ]);
    root.persistent = global_flags();
    root
}

/// A command found in the tree: the chain of commands from the root.
pub struct Found<'a> {
    pub chain: Vec<&'a Command>,
}

impl<'a> Found<'a> {
    pub fn command(&self) -> &'a Command {
        self.chain[self.chain.len() - 1]
    }

    pub fn is_root(&self) -> bool {
        self.chain.len() == 1
    }

    /// `etcdctl endpoint health`.
    pub fn command_path(&self) -> String {
        self.chain
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Flags inherited from ancestors (their persistent flags).
    pub fn inherited_flags(&self) -> Vec<FlagSpec> {
        let mut specs = Vec::new();
        for ancestor in &self.chain[..self.chain.len() - 1] {
            specs.extend(ancestor.persistent.iter().copied());
        }
        specs
    }

    /// The command's own flags (local and persistent), without `--help`.
    pub fn local_flags(&self) -> Vec<FlagSpec> {
        let command = self.command();
        let mut specs = command.flags.clone();
        specs.extend(command.persistent.iter().copied());
        specs
    }

    /// The `--help` flag cobra adds to the command it runs.
    pub fn help_flag(&self) -> FlagSpec {
        FlagSpec {
            name: "help",
            shorthand: Some('h'),
            kind: FlagKind::Bool,
            default: "false",
            usage: help_usage(self.command().name()),
        }
    }

    /// Every flag the command accepts (what pflag parses).
    pub fn all_flags(&self) -> Vec<FlagSpec> {
        let mut specs = self.local_flags();
        specs.extend(self.inherited_flags());
        specs.push(self.help_flag());
        specs
    }
}

/// cobra's help text for `--help` ("help for get").
fn help_usage(name: &'static str) -> &'static str {
    match name {
        "etcdctl" => "help for etcdctl",
        "get" => "help for get",
        "put" => "help for put",
        "del" => "help for del",
        "txn" => "help for txn",
        "compaction" => "help for compaction",
        "endpoint" => "help for endpoint",
        "health" => "help for health",
        "status" => "help for status",
        "member" => "help for member",
        "list" => "help for list",
        "add" => "help for add",
        "remove" => "help for remove",
        "update" => "help for update",
        "promote" => "help for promote",
        "move-leader" => "help for move-leader",
        "watch" => "help for watch",
        "lease" => "help for lease",
        "grant" => "help for grant",
        "revoke" => "help for revoke",
        "timetolive" => "help for timetolive",
        "keep-alive" => "help for keep-alive",
        "help" => "help for help",
        // Usage screens of unimplemented commands are never shown.
        _ => "help for this command",
    }
}

/// cobra's `stripFlags`: the words of `args` that are not flags or flag
/// values, judged with the flags known at this level.
pub fn strip_flags(args: &[String], known: &flags::FlagSet) -> Vec<String> {
    let mut commands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s == "--" {
            break;
        }
        let long_needs_value =
            s.starts_with("--") && !s.contains('=') && !known.long_has_optional_value(&s[2..]);
        let short_needs_value = !s.starts_with("--")
            && s.starts_with('-')
            && !s.contains('=')
            && s.len() == 2
            && !s[1..]
                .chars()
                .next()
                .is_some_and(|c| known.short_has_optional_value(c));
        if long_needs_value || short_needs_value {
            if args.len() - i <= 1 {
                break;
            }
            i += 1;
            continue;
        }
        if !s.is_empty() && !s.starts_with('-') {
            commands.push(s.clone());
        }
    }
    commands
}

/// The outcome of cobra's `Find`: the command and its remaining arguments,
/// or the "unknown command" error text.
pub fn find<'a>(root: &'a Command, args: &[String]) -> Result<(Found<'a>, Vec<String>), String> {
    let mut found = Found { chain: vec![root] };
    let mut rest: Vec<String> = args.to_vec();
    loop {
        let mut specs = found.local_flags();
        specs.extend(found.inherited_flags());
        let known = flags::FlagSet::new(specs);
        let words = strip_flags(&rest, &known);
        let Some(next) = words.first() else { break };
        let command = found.command();
        let Some(child) = find_next(command, next) else {
            break;
        };
        found.chain.push(child);
        if let Some(pos) = rest.iter().position(|a| a == next) {
            rest.remove(pos);
        }
    }
    // cobra's legacyArgs: only the root rejects leftover words.
    if found.is_root() && !root.children.is_empty() {
        let known = flags::FlagSet::new(root.persistent.clone());
        let words = strip_flags(&rest, &known);
        if let Some(word) = words.first() {
            return Err(format!(
                "unknown command {} for {}{}",
                crate::gofmt::quote(word),
                crate::gofmt::quote(root.name()),
                suggestions(root, word)
            ));
        }
    }
    Ok((found, rest))
}

/// cobra's `findNext`: an exact name, else a unique name prefix.
pub fn find_next<'a>(command: &'a Command, word: &str) -> Option<&'a Command> {
    if let Some(exact) = command.children.iter().find(|c| c.name() == word) {
        return Some(exact);
    }
    let mut matches = command
        .children
        .iter()
        .filter(|c| c.name().starts_with(word));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// cobra's suggestion block for an unknown command (empty if none).
fn suggestions(root: &Command, typed: &str) -> String {
    let typed_lower = typed.to_lowercase();
    let mut names = Vec::new();
    for child in &root.children {
        let name = child.name();
        // cobra never suggests its own help command.
        if name == "help" {
            continue;
        }
        let by_distance = levenshtein(&typed_lower, &name.to_lowercase()) <= 2;
        let by_prefix = name.to_lowercase().starts_with(&typed_lower);
        if by_distance || by_prefix {
            names.push(name);
        }
    }
    if names.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n\nDid you mean this?\n");
    for name in names {
        out.push('\t');
        out.push_str(name);
        out.push('\n');
    }
    out
}

/// cobra's `ld`: Levenshtein distance over bytes.
fn levenshtein(s: &str, t: &str) -> usize {
    let s = s.as_bytes();
    let t = t.as_bytes();
    let mut d = vec![vec![0usize; t.len() + 1]; s.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for j in 1..=t.len() {
        for i in 1..=s.len() {
            d[i][j] = if s[i - 1] == t[j - 1] {
                d[i - 1][j - 1]
            } else {
                1 + d[i - 1][j].min(d[i][j - 1]).min(d[i - 1][j - 1])
            };
        }
    }
    d[s.len()][t.len()]
}

/// etcdctl's usage screen for the found command (its `usageFunc`).
pub fn etcd_usage(found: &Found<'_>) -> String {
    etcd_usage_with(found, true)
}

/// The usage screen, with or without the `--help` flag cobra adds only to
/// commands it has run (or shown help for).
pub fn etcd_usage_with(found: &Found<'_>, with_help_flag: bool) -> String {
    let command = found.command();
    let mut text = String::from("NAME:\n");
    let relative_name = found.chain[1..]
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(" ");
    if found.is_root() {
        text.push_str(&format!("\t{} - {}\n", command.name(), command.short));
    } else {
        text.push_str(&format!("\t{relative_name} - {}\n", command.short));
    }
    text.push_str("\nUSAGE:\n");
    text.push_str(&format!("\t{}\n", use_line(found)));
    if found.is_root() {
        text.push_str(&format!("\nVERSION:\n\t{ETCDCTL_VERSION}\n"));
    }
    if !command.children.is_empty() {
        text.push_str(&format!("\nAPI VERSION:\n\t{API_VERSION}\n"));
        text.push_str("\n\nCOMMANDS:\n");
        let mut listed = Vec::new();
        collect_runnable(command, "", &mut listed);
        for (name, short) in listed {
            text.push_str(&format!("\t{name}\t{short}\n"));
        }
    }
    if !command.long.is_empty() {
        text.push_str("\nDESCRIPTION:\n");
        for line in command.long.trim_matches(['\n', '\t', ' ']).split('\n') {
            text.push_str(&format!("\t{line}\n"));
        }
    }
    let mut local = found.local_flags();
    if with_help_flag {
        local.push(found.help_flag());
    }
    text.push_str("\nOPTIONS:\n");
    text.push_str(&flags::etcd_flag_usages(&local));
    if !found.is_root() {
        text.push_str("\nGLOBAL OPTIONS:\n");
        text.push_str(&flags::etcd_flag_usages(&found.inherited_flags()));
    }
    text.push('\n');
    layout::tabwrite(&text)
}

/// cobra's `UseLine`: the parent's path, the command's `Use`, `[flags]`.
fn use_line(found: &Found<'_>) -> String {
    let command = found.command();
    let mut line = if found.is_root() {
        command.use_line.to_string()
    } else {
        let parent: Vec<&str> = found.chain[..found.chain.len() - 1]
            .iter()
            .map(|c| c.name())
            .collect();
        format!("{} {}", parent.join(" "), command.use_line)
    };
    if !line.contains("[flags]") {
        line.push_str(" [flags]");
    }
    line
}

fn collect_runnable(command: &Command, prefix: &str, out: &mut Vec<(String, &'static str)>) {
    for child in command.sorted_children() {
        let name = if prefix.is_empty() {
            child.name().to_string()
        } else {
            format!("{prefix} {}", child.name())
        };
        if child.runnable() && child.children.is_empty() {
            out.push((name.clone(), child.short));
        }
        collect_runnable(child, &name, out);
    }
}

/// cobra's default usage template for a sub-command of an unnamed root (as
/// etcdctl's txn parser builds them), followed by the blank line cobra's
/// `Println` adds.
pub fn cobra_default_usage(use_line: &str, local: &[FlagSpec], name: &'static str) -> String {
    let mut specs = local.to_vec();
    specs.push(FlagSpec {
        name: "help",
        shorthand: Some('h'),
        kind: FlagKind::Bool,
        default: "false",
        usage: help_usage(name),
    });
    format!(
        "Usage:\n   {use_line} [flags]\n\nFlags:\n{}\n\n",
        flags::pflag_flag_usages(&specs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn find_skips_global_flag_values() {
        let root = root();
        let (found, rest) = find(&root, &args(&["-w", "json", "get", "foo"])).unwrap();
        assert_eq!(found.command().action, Action::Get);
        assert_eq!(rest, args(&["-w", "json", "foo"]));
    }

    #[test]
    fn find_matches_unique_prefixes() {
        let root = root();
        let (found, _) = find(&root, &args(&["member", "lis"])).unwrap();
        assert_eq!(found.command().action, Action::MemberList);
        assert_eq!(found.command_path(), "etcdctl member list");
        let (found, _) = find(&root, &args(&["endpoint", "he"])).unwrap();
        assert_eq!(found.command().action, Action::EndpointHealth);
    }

    #[test]
    fn unknown_commands_get_suggestions_in_registration_order() {
        let root = root();
        let err = find(&root, &args(&["m"])).err().unwrap();
        assert_eq!(
            err,
            "unknown command \"m\" for \"etcdctl\"\n\nDid you mean this?\n\tmove-leader\n\tmember\n\tmake-mirror\n\tmigrate\n"
        );
        let err = find(&root, &args(&["bogus"])).err().unwrap();
        assert_eq!(err, "unknown command \"bogus\" for \"etcdctl\"");
        // An unknown flag at the root swallows the next word as its value.
        let err = find(&root, &args(&["--foo", "get", "x"])).err().unwrap();
        assert!(err.starts_with("unknown command \"x\" for \"etcdctl\""));
    }

    #[test]
    fn usage_screen_for_a_leaf() {
        let root = root();
        let (found, _) = find(&root, &args(&["txn"])).unwrap();
        let usage = etcd_usage(&found);
        assert!(usage.starts_with(
            "NAME:\n\ttxn - Txn processes all the requests in one transaction\n\nUSAGE:\n\tetcdctl txn [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\t\thelp for txn\n  -i, --interactive[=false]\tInput transaction in interactive mode\n\nGLOBAL OPTIONS:\n"
        ));
        assert!(usage.ends_with("  -w, --write-out=\"simple\"\t\t\tset the output format (fields, json, protobuf, simple, table)\n\n"));
    }

    #[test]
    fn usage_screen_for_a_group_lists_runnable_children() {
        let root = root();
        let (found, _) = find(&root, &args(&["endpoint"])).unwrap();
        let usage = etcd_usage(&found);
        assert!(usage.contains(
            "API VERSION:\n\t3.4\n\n\nCOMMANDS:\n\thashkv\tPrints the KV history hash for each endpoint in --endpoints\n\thealth\tChecks"
        ));
        assert!(usage.contains("OPTIONS:\n      --cluster[=false]\tuse all endpoints from the cluster member list\n  -h, --help[=false]\thelp for endpoint\n"));
    }

    #[test]
    fn cobra_default_usage_for_txn_get() {
        let text = cobra_default_usage(GET_USE, &get_flags(), "get");
        assert!(text.starts_with("Usage:\n   get [options] <key> [range_end] [flags]\n\nFlags:\n      --consistency string   Linearizable(l) or Serializable(s) (default \"l\")\n"));
        assert!(text.ends_with(
            "      --sort-by string       Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION\n\n"
        ));
    }
}
