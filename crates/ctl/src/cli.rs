//! The command line as cobra handles it for etcdctl: `ETCDCTL_API`, finding
//! the command, parsing its flags, `--help` and usage screens, and the
//! error lines and exit statuses of each failure (`Error: ...` printed
//! twice for usage errors, as cobra and etcdctl each print it once).
//!
//! This is the entry point the binary calls; it returns the exit status
//! and writes only through [`Output`].

use std::io::BufRead;

use crate::commands::{self, Context};
use crate::error::CtlError;
use crate::flags::FlagSet;
use crate::output::Output;
use crate::tree::{self, Action};

/// Runs steadctl with `args` (without the program name) and the process
/// environment `env`; returns the exit status.
///
/// Standard input is owned (and `Send`) because `watch -i` reads it on a
/// thread of its own while watch events are printed; when `run` returns
/// while that thread still waits for input, the process exits from under
/// it, as etcdctl's `os.Exit` does.
pub fn run(
    args: &[String],
    env: &[(String, String)],
    stdin: Box<dyn BufRead + Send>,
    out: &mut Output<'_>,
) -> i32 {
    let code = match run_inner(args, env, stdin, out) {
        Ok(()) => 0,
        Err(error) => {
            let _ = error.report(out.err_writer());
            error.exit_code()
        }
    };
    out.flush();
    code
}

fn run_inner(
    args: &[String],
    env: &[(String, String)],
    stdin: Box<dyn BufRead + Send>,
    out: &mut Output<'_>,
) -> Result<(), CtlError> {
    // etcdctl reads ETCDCTL_API and removes it from its environment.
    let api = env
        .iter()
        .find(|(k, _)| k == "ETCDCTL_API")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !api.is_empty() && api != "3" {
        out.err(format!("unsupported API version {api}\n"));
        return Err(CtlError::Exit(1));
    }
    let env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "ETCDCTL_API")
        .cloned()
        .collect();

    let root = tree::root();
    let (found, rest) = match tree::find(&root, args) {
        Ok(found) => found,
        Err(message) => {
            out.err(format!(
                "Error: {message}\nRun 'etcdctl --help' for usage.\n"
            ));
            return Err(CtlError::General(message));
        }
    };
    // steadctl does not know the flags of commands it does not implement.
    if found.command().action == Action::Unimplemented {
        return Err(commands::not_implemented(&found));
    }
    let mut flags = FlagSet::new(found.all_flags());
    let positional = match flags.parse(&rest) {
        Ok(positional) => positional,
        Err(message) => {
            out.err(format!("Error: {message}\n"));
            out.out(tree::etcd_usage(&found));
            out.err("\n");
            return Err(CtlError::General(message));
        }
    };
    if flags.bool("help") || found.command().action == Action::Group {
        out.out(tree::etcd_usage(&found));
        return Ok(());
    }
    let mut ctx = Context {
        found: &found,
        flags,
        args: positional,
        raw_args: args,
        env: &env,
        stdin,
        out,
    };
    commands::run(&mut ctx)
}
