//! Logging setup shared by every verb: human-readable on a terminal, JSON lines otherwise
//! (so that a pod's log is machine-readable), filtered by `RUST_LOG` or `--log-level`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Logs go to stderr so that stdout stays the verb's output.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.with_target(false).init();
    } else {
        builder.json().with_current_span(false).init();
    }
}
