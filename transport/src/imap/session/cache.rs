//! What a session keeps of what it decrypted: rendered messages and summaries,
//! in this process's memory only and dropped with the session.
//!
//! Summaries (up to about 64 MiB) serve message lists; whole rendered messages
//! (32 MiB, least recently used) serve bodies. Signer certificates are looked
//! up once per process (a fingerprint names one certificate forever), sender
//! names once per session.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::imap::render::{Rendered, Summary};

/// Rendered messages (plaintext, in this process's memory only, like the
/// keyring) kept for the session, most recent last, up to this many bytes: a
/// client that fetches a message in pieces, or a list of them twice, is
/// served without decrypting again.
const RENDERED_BYTES: usize = 32 << 20;
/// Summaries (size, header, ENVELOPE, BODYSTRUCTURE) kept for the session, up
/// to about this many bytes: what a client asks for of every message in a
/// folder each time it looks.
const SUMMARY_BYTES: usize = 64 << 20;
/// What a summary costs besides its header bytes (envelope, structure).
const SUMMARY_OVERHEAD: usize = 1024;

/// Per-session memory of what was decrypted, dropped with the session.
#[derive(Default)]
pub(super) struct Decrypted {
    rendered: VecDeque<(String, Arc<Rendered>)>,
    rendered_bytes: usize,
    pub(super) summaries: HashMap<String, Arc<Summary>>,
    summary_bytes: usize,
    /// Sender account ID → (name, facility name).
    pub(super) senders: HashMap<String, (String, Option<String>)>,
}

impl Decrypted {
    pub(super) fn rendered(&mut self, id: &str) -> Option<Arc<Rendered>> {
        let at = self.rendered.iter().position(|(k, _)| k == id)?;
        let entry = self.rendered.remove(at)?;
        let r = entry.1.clone();
        self.rendered.push_back(entry);
        Some(r)
    }

    pub(super) fn has_rendered(&self, id: &str) -> bool {
        self.rendered.iter().any(|(k, _)| k == id)
    }

    pub(super) fn keep_rendered(&mut self, id: &str, r: Arc<Rendered>) {
        if r.bytes.len() > RENDERED_BYTES {
            return;
        }
        self.rendered_bytes += r.bytes.len();
        self.rendered.push_back((id.to_string(), r));
        while self.rendered_bytes > RENDERED_BYTES {
            match self.rendered.pop_front() {
                Some((_, old)) => self.rendered_bytes -= old.bytes.len(),
                None => break,
            }
        }
    }

    pub(super) fn keep_summary(&mut self, id: &str, sum: Arc<Summary>) {
        if self.summary_bytes > SUMMARY_BYTES {
            // Rare (a folder of tens of thousands): start over rather than
            // keep an eviction order for every entry.
            self.summaries.clear();
            self.summary_bytes = 0;
        }
        self.summary_bytes += sum.skeleton.bytes.len() + SUMMARY_OVERHEAD;
        self.summaries.insert(id.to_string(), sum);
    }
}
