//! The delivery worker: drains the durable queue through `mailbox::queue::delivery`.
//! Any number of workers, in one process or several sharing a PostgreSQL
//! database, can run at once; claims are leased, entries are idempotent.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mailbox::queue::delivery::Deliverer;

/// How often an idle worker looks for due entries.
pub const IDLE_POLL: Duration = Duration::from_millis(50);

/// Runs until `shutdown` resolves. A batch that found work is followed at once by
/// the next; errors are logged and retried after a pause.
pub async fn run(deliverer: Arc<Deliverer>, shutdown: impl Future<Output = ()>) {
    run_woken(deliverer, Arc::default(), shutdown).await
}

/// Like [`run`], and an idle worker also starts when `wake` is notified (the
/// postroom does after every committed submission); the poll still finds entries
/// submitted by other nodes or due for a retry.
pub async fn run_woken(
    deliverer: Arc<Deliverer>,
    wake: Arc<tokio::sync::Notify>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let pause = match deliverer.deliver_due().await {
            Ok(0) => IDLE_POLL,
            Ok(_) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(error = %e, "delivery batch failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
            () = wake.notified(), if !pause.is_zero() && pause <= IDLE_POLL => {}
        }
    }
}
