//! Drives imap-next's server flow over any byte stream. imap-next's own
//! `Stream` is tied to `TcpStream` (and does TLS itself); this one takes any
//! `AsyncRead + AsyncWrite`, so the listeners (plain before STARTTLS, TLS after
//! it) and the fuzzer (an in-memory pipe) run the same connection loop.
//!
//! Like imap-next's `Stream`, it reads and writes at once while output is
//! pending (a client that writes while we write must not deadlock us). Unlike
//! it, the end of the input ends the flow only once every command already
//! received has been answered and the answers are written.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use imap_next::server::{Error as ServerError, Event, ResponseHandle, Server};
use imap_next::{Interrupt, Io, State};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the stream at once.
const CHUNK: usize = 16 * 1024;
/// Output buffer capacity kept between responses (a large message's buffer is
/// given back once written).
const KEEP_CAPACITY: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the connection was closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    State(ServerError),
}

/// A byte stream and the buffers between it and the server flow.
pub struct Wire<S> {
    stream: S,
    chunk: Box<[u8]>,
    /// Read but not yet handed to the flow.
    input: Vec<u8>,
    /// From the flow, not yet written (`output[written..]`).
    output: Vec<u8>,
    written: usize,
    /// Written but not yet flushed (TLS keeps records until flushed).
    unflushed: bool,
    /// The peer closed its side.
    eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            chunk: vec![0; CHUNK].into_boxed_slice(),
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            unflushed: false,
            eof: false,
        }
    }

    /// The stream back, with whatever was read but not handled dropped (call
    /// [`Wire::flush`] first so that nothing written is lost).
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Progresses `server` to its next event, reading and writing as it needs.
    pub async fn next(&mut self, server: &mut Server) -> Result<Event, WireError> {
        loop {
            if !self.input.is_empty() {
                server.enqueue_input(&self.input);
                self.input.clear();
            }
            match server.next() {
                Ok(event) => return Ok(event),
                Err(Interrupt::Error(e)) => return Err(WireError::State(e)),
                Err(Interrupt::Io(Io::Output(bytes))) => {
                    self.output.extend_from_slice(&bytes);
                    self.unflushed = true;
                }
                Err(Interrupt::Io(Io::NeedMoreInput)) => {
                    if self.eof {
                        self.flush().await?;
                        return Err(WireError::Closed);
                    }
                }
            }
            poll_fn(|cx| self.poll_progress(cx)).await?;
        }
    }

    /// Has the flow encode everything queued up to and including `handle`,
    /// and writes it, less `tail` at its end (see `stream`); nothing is read
    /// meanwhile, so the caller may write to the stream next. Returns whether
    /// the response ended with `tail`.
    pub async fn send_through(
        &mut self,
        server: &mut Server,
        handle: ResponseHandle,
        tail: &[u8],
    ) -> Result<bool, WireError> {
        loop {
            match server.next() {
                Ok(Event::ResponseSent { handle: h, .. }) if h == handle => break,
                // Responses queued before it, sent.
                Ok(_) => {}
                Err(Interrupt::Error(e)) => return Err(WireError::State(e)),
                Err(Interrupt::Io(Io::Output(bytes))) => {
                    self.output.extend_from_slice(&bytes);
                    self.unflushed = true;
                }
                // Nothing left to send before it: cannot happen while it is queued.
                Err(Interrupt::Io(Io::NeedMoreInput)) => return Ok(false),
            }
        }
        let cut = self.output.ends_with(tail);
        if cut {
            self.output.truncate(self.output.len() - tail.len());
        }
        self.flush().await?;
        Ok(cut)
    }

    /// Bytes written after everything the flow has handed out so far (after
    /// [`Wire::send_through`] cut a placeholder; see `connection::raw`).
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
        self.unflushed = true;
    }

    /// The stream, to write to directly once [`Wire::send_through`] has
    /// written everything before.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Writes and flushes everything the flow has handed out so far.
    pub async fn flush(&mut self) -> Result<(), WireError> {
        poll_fn(|cx| self.poll_write_all(cx)).await
    }

    fn writing(&self) -> bool {
        self.written < self.output.len() || self.unflushed
    }

    /// Ready once the pending output is written, or some input was read (or
    /// the input ended), whichever comes first.
    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        if self.writing() && self.poll_write_all(cx)?.is_ready() {
            return Poll::Ready(Ok(()));
        }
        if self.eof {
            // Only the write is left; it registered the waker.
            return Poll::Pending;
        }
        let mut buf = ReadBuf::new(&mut self.chunk);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().is_empty() {
                    self.eof = true;
                } else {
                    self.input.extend_from_slice(buf.filled());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        while self.written < self.output.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.output[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(WireError::Closed)),
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.output.capacity() > KEEP_CAPACITY {
            self.output = Vec::new();
        } else {
            self.output.clear();
        }
        self.written = 0;
        if self.unflushed {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_next::imap_types::response::Greeting;
    use imap_next::server::Options;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn answers_every_command_received_before_the_input_ended() {
        let (mut client, server_side) = tokio::io::duplex(64);
        let Ok(greeting) = Greeting::ok(None, "hello") else {
            panic!("greeting");
        };
        let mut server = Server::new(Options::default(), greeting);
        let mut wire = Wire::new(server_side);
        client
            .write_all(b"a NOOP\r\nb NOOP\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        client.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
        let serve = async {
            let mut commands = 0;
            loop {
                match wire.next(&mut server).await {
                    Ok(Event::CommandReceived { command }) => {
                        commands += 1;
                        if let Ok(s) = imap_next::imap_types::response::Status::ok(
                            Some(command.tag),
                            None,
                            "done",
                        ) {
                            server.enqueue_status(s);
                        }
                    }
                    Ok(_) => {}
                    Err(WireError::Closed) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            drop(wire);
            commands
        };
        let read = async {
            let mut out = Vec::new();
            let _ = client.read_to_end(&mut out).await;
            out
        };
        let (commands, out) = tokio::join!(serve, read);
        assert_eq!(commands, 2);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("* OK hello\r\n"), "{text}");
        assert!(text.ends_with("a OK done\r\nb OK done\r\n"), "{text}");
    }
}
