//! Every probe in flight holds one socket, so the open-file limit bounds the concurrency.
//! Container runtimes often leave the soft limit at 1024 under a much higher hard limit;
//! raising the soft limit is allowed without privileges.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// File descriptors kept free for stdio, the runtime and the termination log.
const RESERVED: u64 = 64;
/// Used when the hard limit is "unlimited", which the kernel would refuse as a soft limit.
const UNLIMITED_CAP: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard limit and returns the limit now in force.
pub fn raise() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(UNLIMITED_CAP);
    let soft = limit.current.unwrap_or(UNLIMITED_CAP);
    if soft >= hard {
        return soft;
    }
    let raised = Rlimit { current: Some(hard), maximum: limit.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => hard,
        Err(err) => {
            tracing::debug!(%err, soft, hard, "cannot raise the open-file limit");
            soft
        }
    }
}

/// The concurrency to use: what was asked, within what the open-file limit allows.
pub fn cap_concurrency(requested: usize, fd_limit: u64) -> usize {
    let allowed = usize::try_from(fd_limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    requested.min(allowed).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_by_the_limit() {
        assert_eq!(cap_concurrency(4096, 1024), 960);
        assert_eq!(cap_concurrency(100, 1024), 100);
        assert_eq!(cap_concurrency(100, 10), 1);
        assert!(raise() >= 64);
    }
}
