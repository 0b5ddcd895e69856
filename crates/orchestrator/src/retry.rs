//! Retries of API calls that can succeed a moment later: a dropped connection, an API
//! server restarting behind its load balancer, throttling (429) or a 5xx. A run's deadline
//! bounds it all; an error that persists ends the run as inconclusive.

use std::future::Future;
use std::time::Duration;

use tokio::time::sleep;
use tracing::warn;

use crate::error::Error;

/// Attempts in all, and the first wait (doubled each time).
const ATTEMPTS: u32 = 4;
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// Whether an error says nothing about the request itself.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or the attempts are spent.
pub async fn with_backoff<T, F, Fut>(what: &str, mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut wait = FIRST_WAIT;
    for attempt in 1.. {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < ATTEMPTS && is_transient(&error) => {
                warn!(%error, attempt, what, "API call failed; retrying");
                sleep(wait).await;
                wait *= 2;
            }
            Err(source) => return Err(Error::Kube { context: what.to_string(), source }),
        }
    }
    unreachable!("the loop returns on the last attempt")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use kube::core::Status;

    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(Status { code, ..Status::default() }))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_then_reported() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = with_backoff("list pods", || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(status(503)) }
        })
        .await;
        assert_eq!(calls.load(Ordering::Relaxed), ATTEMPTS);
        assert!(result.unwrap_err().to_string().starts_with("kubernetes API: list pods"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_can_succeed() {
        let calls = AtomicU32::new(0);
        let result = with_backoff("create pod", || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move { if n < 2 { Err(status(429)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_about_the_request_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = with_backoff("create pod", || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(status(403)) }
        })
        .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert!(result.is_err());
    }
}
