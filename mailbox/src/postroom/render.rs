//! Rendered DICOM slices: one frame of one attachment as PNG, decrypted as a
//! stream and never held whole.
//!
//! The attachment is decrypted with the reader's key straight into an
//! [`imaging::FrameCapture`], which walks the header with the bounded scanner
//! and keeps only the requested frame (native: its byte range; encapsulated:
//! its fragments): a render holds the decryption's few 1 MiB buffers, the
//! header copy (at most 4 MiB) and one frame, whatever the file's size (a
//! 1 GiB multi-frame file included).
//!
//! Integrity: the decryption always runs to the end of the blob, the bytes
//! after the frame being read and discarded, and the frame is decoded only
//! once the whole plaintext matched the signed manifest's size and SHA-256.
//! Stopping after the frame would rest on the per-chunk authentication of the
//! SEIPDv2 stream alone, which proves only that the bytes were sealed with the
//! attachment's session key — a key every recipient holds, so a recipient with
//! write access to the blobs could reseal altered pixels under it; only the
//! manifest digest binds them to the sender's signature. So a damaged or
//! altered blob never renders (it is `Tampered("attachment")` and marked
//! damaged, as for a download), at the cost of decrypting the whole file per
//! render: about a second per GiB (see `bench/dicom`). A request that cannot
//! render (no such frame, an undecodable frame) still reads to the end, so
//! damage is reported over the render's own error.
//!
//! Concurrent renders are bounded by a semaphore (`[imaging] max_renders`,
//! default the core count): a render waits for a slot at most
//! `[imaging] render_wait_secs` (default 30 s), then is refused with
//! [`Error::RendersBusy`] (503). The wait starts after the item is opened and
//! the render audited, before a byte of the blob is read.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use super::Postroom;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::records::audit::{AuditEvent, action};

/// How many renders may run at once, and how long one waits for a slot.
#[derive(Debug, Clone)]
pub struct RenderLimit {
    pub max_renders: usize,
    pub wait: Duration,
}

impl Default for RenderLimit {
    fn default() -> Self {
        Self {
            max_renders: std::thread::available_parallelism().map_or(2, usize::from),
            wait: Duration::from_secs(30),
        }
    }
}

/// The render slots of one postroom.
pub(super) struct RenderGate {
    slots: Arc<tokio::sync::Semaphore>,
    wait: Duration,
}

impl RenderGate {
    pub(super) fn new(limit: &RenderLimit) -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(limit.max_renders.max(1))),
            wait: limit.wait,
        }
    }

    /// A slot, waited for at most the configured time.
    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Error::Internal("render slots closed".into())),
            Err(_) => Err(Error::RendersBusy),
        }
    }
}

/// The decrypted plaintext on its way into a frame capture; after the
/// capture fails, the rest is read and dropped (the digest still decides).
struct CaptureSink {
    capture: Option<imaging::FrameCapture>,
    failed: Option<imaging::RenderError>,
}

impl Write for CaptureSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(capture) = &mut self.capture
            && let Err(e) = capture.feed(buf)
        {
            self.capture = None;
            self.failed = Some(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Postroom {
    /// The render limit from the settings (the default until set).
    #[must_use]
    pub fn with_render_limit(mut self, limit: &RenderLimit) -> Self {
        self.renders = RenderGate::new(limit);
        self
    }

    /// Renders frame `frame` of the DICOM attachment `index` as PNG with the
    /// given window: decrypted with the reader's key as a stream, only that
    /// frame kept, checked whole against the signed manifest before it is
    /// decoded. Audited as a render. A slice that cannot be decoded is
    /// `Error::Render`; the file itself still downloads. With every render
    /// slot taken for the whole wait, `Error::RendersBusy`.
    pub async fn render_slice(
        &self,
        session: &CurrentSession,
        id: &str,
        index: usize,
        frame: u32,
        window: imaging::WindowChoice,
    ) -> Result<imaging::Rendered> {
        let (prepared, record) = self
            .prepare_attachment(session, id, |_| Some(index))
            .await?
            .ok_or(Error::NotFound("attachment"))?;
        if record == Some(index) {
            return Err(Error::NotFound("attachment"));
        }
        self.audit
            .record(
                AuditEvent::by(session, action::RENDER)
                    .item(id)
                    .detail(format!("dicom attachment={index} frame={frame}")),
            )
            .await?;
        let _slot = self.renders.enter().await?;
        let sink = CaptureSink {
            capture: Some(imaging::FrameCapture::new(frame, Some(prepared.info.size))),
            failed: None,
        };
        let (_, sink) = prepared.read_into(sink).await?;
        tokio::task::spawn_blocking(move || -> Result<imaging::Rendered> {
            match (sink.capture, sink.failed) {
                (_, Some(e)) => Err(e.into()),
                (Some(capture), None) => Ok(capture.render(window)?),
                (None, None) => Err(Error::Internal("render capture lost".into())),
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("render task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_render_waits_for_a_slot_then_is_refused_as_busy() {
        let gate = RenderGate::new(&RenderLimit {
            max_renders: 1,
            wait: Duration::from_millis(100),
        });
        let held = gate.enter().await.unwrap();
        let started = std::time::Instant::now();
        let refused = gate.enter().await.unwrap_err();
        assert!(matches!(refused, Error::RendersBusy), "{refused:?}");
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(refused.kind(), crate::ErrorKind::Busy);
        // A slot freed while one waits is taken at once.
        let waiting = tokio::spawn(async move { gate.enter().await.map(drop) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiting.await.unwrap().is_ok());
    }
}
