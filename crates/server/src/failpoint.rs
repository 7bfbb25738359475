//! Fault injection for crash tests: `STEAD_FAILPOINT=<name>` makes the member abort where the
//! code names that point, as a crash would (nothing flushed, nothing cleaned up). Read once.
//! Owns nothing else; a point costs one comparison when the variable is unset.

use std::sync::OnceLock;

/// The environment variable naming the point to crash at.
const FAILPOINT_VAR: &str = "STEAD_FAILPOINT";

/// Aborts the process if `STEAD_FAILPOINT` names `point`.
pub(crate) fn crash_at(point: &str) {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| std::env::var(FAILPOINT_VAR).ok());
    if chosen.as_deref() == Some(point) {
        tracing::error!(point, "failpoint reached: aborting");
        std::process::abort();
    }
}
