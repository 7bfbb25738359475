//! steadctl's binary: connects the process's arguments, environment and
//! standard streams to [`steadctl::cli::run`] and exits with its status.
//! Everything else lives in the library.

use std::io::Write;
use std::os::unix::ffi::OsStringExt;

fn main() {
    // Go keeps arguments as raw bytes; invalid UTF-8 is replaced here.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| String::from_utf8_lossy(&a.into_vec()).into_owned())
        .collect();
    let env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k.into_vec()).into_owned(),
                String::from_utf8_lossy(&v.into_vec()).into_owned(),
            )
        })
        .collect();
    // Not `stdin().lock()`: the lock guard cannot move to the thread that
    // `watch -i` reads its input on.
    let stdin = Box::new(std::io::BufReader::new(std::io::stdin()));
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let stderr = std::io::stderr();
    let mut stderr = stderr.lock();
    let code = {
        let mut output = steadctl::output::Output::new(&mut stdout, &mut stderr);
        steadctl::cli::run(&args, &env, stdin, &mut output)
    };
    let _ = stdout.flush();
    let _ = stderr.flush();
    std::process::exit(code);
}
