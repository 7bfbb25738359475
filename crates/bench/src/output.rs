//! The one place that writes to stdout and stderr.
//!
//! stdout carries results only: the text report, or with `--json` exactly
//! one JSON line, so scripts can read it. stderr carries the progress line
//! (only when stderr is a terminal) and fatal errors.
//!
//! Does not own: what reports say (see `report`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::error::BenchError;
use crate::report::Outcome;

/// Whether a progress line would be seen by a person.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Prints a run's outcome: the text report, or the JSON line.
pub fn emit(outcome: &Outcome, json: bool) -> Result<(), BenchError> {
    let text = if json {
        let mut line = outcome.headline.to_json_line(outcome.workload)?;
        line.push('\n');
        line
    } else {
        outcome.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(BenchError::Output)
}

/// Redraws the progress line: done/total, percent and rate.
pub fn progress(label: &str, done: u64, total: u64, elapsed: Duration) {
    let line = progress_line(label, done, total, elapsed);
    let mut stderr = std::io::stderr().lock();
    // A progress line that cannot be drawn is not worth stopping a run for.
    let _ = write!(stderr, "\r{line}\x1b[K");
    let _ = stderr.flush();
}

/// Ends the progress line so later output starts on a fresh line.
pub fn progress_end() {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr);
}

/// The text of the progress line.
pub fn progress_line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let percent = if total > 0 {
        done as f64 * 100.0 / total as f64
    } else {
        100.0
    };
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    format!("{label} {done}/{total} ({percent:.0}%) {rate:.0}/s {seconds:.1}s")
}

/// Reports a fatal error.
pub fn error(error: &BenchError) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "stead-bench: error: {error}");
}

/// Prints clap's usage, help or version message (to stdout or stderr, as
/// clap decides) and returns the exit code clap wants.
pub fn clap_message(error: &clap::Error) -> i32 {
    let _ = error.print();
    error.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_done_total_percent_and_rate() {
        let line = progress_line("put", 250, 1000, Duration::from_millis(500));
        assert_eq!(line, "put 250/1000 (25%) 500/s 0.5s");
        assert_eq!(
            progress_line("x", 0, 0, Duration::ZERO),
            "x 0/0 (100%) 0/s 0.0s"
        );
    }
}
