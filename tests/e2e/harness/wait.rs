//! Waiting for what a test is really waiting for: an answer, a row, a mail, a
//! log line; never a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`wait_until`] asks again.
const POLL: Duration = Duration::from_millis(50);

/// Asks `probe` every 50 ms until it gives `Some`, and returns that; panics
/// naming `what` when `within` has passed first.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}
