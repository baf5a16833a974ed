//! A FETCH literal written as it is decrypted: large messages are never whole
//! in memory.
//!
//! The session answers a body item of a large message (whole, TEXT, a part,
//! any `<partial>`) with a [`Streamed`] reply: the FETCH response with an
//! empty literal for that item, put last, and the [`BodyStream`] that fills
//! it. The connection lets imap-next encode the response, cuts the empty
//! literal off the encoded bytes, writes `{n}` with the real length (known
//! from the summary), then the message's pieces: the skeleton's bytes, and
//! each attachment decrypted on a blocking thread and base64-encoded chunk by
//! chunk (a bounded channel between them keeps a few chunks in memory).
//!
//! A stream that fails after its first byte (a blob found damaged at its end)
//! cannot be taken back: the connection is closed, and the client sees a
//! truncated literal rather than wrong bytes.

use std::io::Write;
use std::sync::Arc;

use imap_next::imap_types::response::Data;
use mailbox::CurrentSession;
use mailbox::postroom::Postroom;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::layout::{LineEncoder, Piece, base64_mime_len};
use super::render::Summary;

/// Chunks of plaintext in flight between the decrypting thread and the socket.
const CHANNEL_CHUNKS: usize = 4;
/// Encoded bytes gathered before a write to the socket.
const WRITE_CHUNK: usize = 256 * 1024;

/// What the encoded FETCH response ends with when its last item is an empty
/// literal: the part [`BodyStream`] replaces.
pub const EMPTY_LITERAL_TAIL: &[u8] = b"{0}\r\n)\r\n";

/// A FETCH response whose last item's literal is streamed.
pub struct Streamed {
    /// The response, its last item an empty literal.
    pub data: Data<'static>,
    pub body: BodyStream,
}

/// The bytes of one literal: ranges of a message's pieces.
pub struct BodyStream {
    pub len: u64,
    /// The message's summary: its skeleton is what goes around the attachments.
    pub summary: Arc<Summary>,
    pub pieces: Vec<Piece>,
    /// The manifest index of each attachment gap.
    pub attachments: Vec<usize>,
    pub envelope_id: String,
    pub postroom: Arc<Postroom>,
    pub session: CurrentSession,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the attachment could not be read: {0}")]
    Attachment(String),
    #[error("the literal came out {got} bytes long, not {want}")]
    Length { got: u64, want: u64 },
}

/// Hands decrypted chunks to the async side, waiting while the channel is full.
struct ChannelWriter(mpsc::Sender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(buf.to_vec())
            .map_err(|_| std::io::Error::other("the connection stopped reading"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BodyStream {
    /// Writes `{len}\r\n`, the literal and the response's closing `)\r\n`.
    pub async fn write_to<W: AsyncWrite + Unpin>(self, out: &mut W) -> Result<(), StreamError> {
        out.write_all(format!("{{{}}}\r\n", self.len).as_bytes())
            .await?;
        let mut written = 0u64;
        let mut buf = Vec::with_capacity(WRITE_CHUNK + 128);
        for piece in &self.pieces {
            match piece {
                Piece::Skeleton(r) => {
                    let bytes = self
                        .summary
                        .skeleton
                        .bytes
                        .get(r.clone())
                        .unwrap_or_default();
                    out.write_all(bytes).await?;
                    written += bytes.len() as u64;
                }
                Piece::Attachment { gap, skip, take } => {
                    let index = self.attachments.get(*gap).copied().unwrap_or(usize::MAX);
                    let text = self
                        .summary
                        .skeleton
                        .gaps
                        .get(*gap)
                        .map_or(0, |g| base64_mime_len(g.1));
                    // Stopping before the end skips the whole-file check,
                    // so only a range that ends early may stop early.
                    let may_stop = skip + take < text;
                    written += self
                        .attachment(index, (*skip, *take, may_stop), out, &mut buf)
                        .await?;
                }
            }
        }
        if written != self.len {
            return Err(StreamError::Length {
                got: written,
                want: self.len,
            });
        }
        out.write_all(b")\r\n").await?;
        out.flush().await?;
        Ok(())
    }

    /// One attachment's base64 text, bytes `skip..skip + take` of it.
    async fn attachment<W: AsyncWrite + Unpin>(
        &self,
        index: usize,
        (skip, take, may_stop): (u64, u64, bool),
        out: &mut W,
        buf: &mut Vec<u8>,
    ) -> Result<u64, StreamError> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CHANNEL_CHUNKS);
        let postroom = self.postroom.clone();
        let session = self.session.clone();
        let id = self.envelope_id.clone();
        let reading = tokio::spawn(async move {
            postroom
                .open_attachment(&session, &id, index, ChannelWriter(tx))
                .await
        });
        let mut enc = LineEncoder::new(skip, take);
        let mut written = 0u64;
        buf.clear();
        while let Some(chunk) = rx.recv().await {
            enc.push(&chunk, buf);
            if buf.len() >= WRITE_CHUNK {
                out.write_all(buf).await?;
                written += buf.len() as u64;
                buf.clear();
            }
            if may_stop && enc.done() {
                // The rest of the text is not wanted: stop decrypting.
                break;
            }
        }
        let stopped_early = may_stop && enc.done();
        drop(rx);
        let outcome = reading
            .await
            .map_err(|e| StreamError::Attachment(e.to_string()))?;
        if !stopped_early {
            outcome.map_err(|e| StreamError::Attachment(e.to_string()))?;
            enc.finish(buf);
        }
        out.write_all(buf).await?;
        written += buf.len() as u64;
        buf.clear();
        Ok(written)
    }
}
