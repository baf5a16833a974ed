//! The plain-text phase of a STARTTLS listener (port 143 by convention):
//! nothing but CAPABILITY, NOOP, LOGOUT and STARTTLS is served before TLS, so
//! no password crosses the wire in clear.
//!
//! The plain-text phase has its own imap-next server, dropped with whatever the
//! client sent behind STARTTLS; the TLS phase starts from nothing (its greeting
//! is an untagged OK), so nothing injected before the handshake is ever
//! executed.

use imap_next::imap_types::command::CommandBody;
use imap_next::imap_types::core::Vec1;
use imap_next::imap_types::response::{Capability, Code, Data, Greeting, Status};
use imap_next::server::{Error as ServerError, Event, Options, Server};
use tokio::net::TcpStream;

use super::connection::{enqueue, status, tag_of};
use super::session::{bad, no, ok};
use super::wire::{Wire, WireError};

/// What a STARTTLS listener offers before TLS.
fn plaintext_capabilities() -> Vec1<Capability<'static>> {
    Vec1::from(Capability::Imap4Rev1)
        .into_iter()
        .chain([Capability::StartTls, Capability::LoginDisabled])
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}

/// The plain-text part of a STARTTLS connection: answers CAPABILITY, NOOP and
/// LOGOUT, refuses everything else, and hands the TCP stream back once the
/// client asked for TLS and got its OK. Whatever the client sent after its
/// STARTTLS line (in clear, so possibly injected) is dropped with this phase's
/// buffers; the TLS phase starts from nothing.
pub(super) async fn before_starttls(
    tcp: TcpStream,
    deadline: tokio::time::Instant,
) -> Option<TcpStream> {
    let mut options = Options::default();
    // No literal is needed for any command allowed here.
    options.max_literal_size = 0;
    options.max_command_size = 1024;
    let greeting = Greeting::ok(
        Some(Code::Capability(plaintext_capabilities())),
        "Renkei IMAP ready; STARTTLS first",
    )
    .ok()?;
    let mut server = Server::new(options, greeting);
    let mut wire = Wire::new(tcp);
    let mut bad_lines = 0u32;
    let mut upgrade = None;
    let mut closing = None;
    loop {
        let event = tokio::time::timeout_at(deadline, wire.next(&mut server))
            .await
            .ok()?;
        match event {
            Ok(Event::GreetingSent { .. }) => {}
            Ok(Event::ResponseSent { handle, .. }) => {
                if upgrade == Some(handle) {
                    tokio::time::timeout_at(deadline, wire.flush())
                        .await
                        .ok()?
                        .ok()?;
                    return Some(wire.into_inner());
                }
                if closing == Some(handle) {
                    return None;
                }
            }
            Ok(Event::CommandReceived { command }) => {
                let tag = command.tag;
                match command.body {
                    CommandBody::Capability => {
                        server.enqueue_data(Data::Capability(plaintext_capabilities()));
                        enqueue(&mut server, vec![ok(Some(tag), None, "CAPABILITY done")]);
                    }
                    CommandBody::Noop => {
                        enqueue(&mut server, vec![ok(Some(tag), None, "NOOP done")])
                    }
                    CommandBody::Logout => {
                        if let Ok(bye) = Status::bye(None, "logging out") {
                            server.enqueue_status(bye);
                        }
                        if let Some(s) = status(ok(Some(tag), None, "LOGOUT done")) {
                            closing = Some(server.enqueue_status(s));
                        }
                    }
                    CommandBody::StartTLS => {
                        if let Some(s) = status(ok(Some(tag), None, "begin TLS now")) {
                            upgrade = Some(server.enqueue_status(s));
                        }
                    }
                    CommandBody::Login { .. } => enqueue(
                        &mut server,
                        vec![no(Some(tag), None, "LOGINDISABLED: use STARTTLS first")],
                    ),
                    _ => enqueue(&mut server, vec![bad(Some(tag), "STARTTLS first")]),
                }
            }
            Ok(Event::CommandAuthenticateReceived {
                command_authenticate,
            }) => {
                if let Some(s) = status(no(
                    Some(command_authenticate.tag),
                    None,
                    "no authentication before STARTTLS",
                )) {
                    let _ = server.authenticate_finish(s);
                }
            }
            Ok(Event::IdleCommandReceived { tag }) => {
                if let Some(s) = status(bad(Some(tag), "STARTTLS first")) {
                    let _ = server.idle_reject(s);
                }
            }
            Ok(Event::AuthenticateDataReceived { .. } | Event::IdleDoneReceived) => {}
            Err(WireError::State(e)) => {
                bad_lines += 1;
                let bytes = match &e {
                    ServerError::LiteralTooLong { .. } => continue,
                    ServerError::CommandTooLong { discarded_bytes }
                    | ServerError::MalformedMessage { discarded_bytes }
                    | ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
                        discarded_bytes.declassify().to_vec()
                    }
                };
                enqueue(&mut server, vec![bad(tag_of(&bytes), "unparsable command")]);
                if bad_lines > 10
                    && let Ok(bye) = Status::bye(None, "too many bad commands")
                {
                    closing = Some(server.enqueue_status(bye));
                }
            }
            Err(_) => return None,
        }
    }
}
