//! The first look at a folder: whole messages for a FETCH of many bodies,
//! opened in batches and rendered on both cores, ahead of the per-message
//! loop (which then finds them in the session's cache).
//!
//! One batch: the items opened together (`peek_many`: two queries, one audit
//! write, the crypto on both cores), then their attachments decrypted a few
//! messages at a time, each message rendered and summarized on a blocking
//! thread. A batch never holds more than the cache keeps, and messages that
//! would be streamed are left alone. Failures are left for the message's own
//! FETCH to report.

use std::sync::Arc;

use mailbox::CurrentSession;
use tokio::task::JoinSet;

use super::streamed::STREAM_OVER;
use super::{Session, State};
use crate::imap::layout::base64_mime_len;
use crate::imap::render::{Rendered, SharedBuf, Summary, render, summarize};

/// Messages opened together.
pub(super) const BATCH: usize = 64;
/// Messages whose attachments are read at once.
const AT_ONCE: usize = 4;

type Made = Option<(String, Rendered, Summary)>;

impl Session {
    /// Renders the messages at `indices` not in the cache yet (see the module doc).
    pub(super) async fn prefetch_rendered(&mut self, session: &CurrentSession, indices: &[usize]) {
        let State::Selected(sel) = &self.state else {
            return;
        };
        let missing: Vec<String> = indices
            .iter()
            .filter_map(|i| sel.messages.get(*i))
            .map(|m| m.envelope_id.clone())
            .filter(|id| !self.decrypted.has_rendered(id))
            .collect();
        if missing.len() < 2 {
            return;
        }
        let Ok(opened) = self.services.folders.peek_many(session, &missing).await else {
            return;
        };
        let mut jobs: JoinSet<Made> = JoinSet::new();
        for (id, item) in opened {
            let Ok(item) = item else { continue };
            let attached: u64 = item
                .attachments
                .iter()
                .map(|a| base64_mime_len(a.size))
                .sum();
            if attached > STREAM_OVER {
                continue;
            }
            let parties = self.parties(session, &item.sender_id).await;
            let postroom = self.services.postroom.clone();
            let session = session.clone();
            while jobs.len() >= AT_ONCE {
                self.keep_made(jobs.join_next().await);
            }
            jobs.spawn(async move {
                let mut files = Vec::with_capacity(item.attachments.len());
                for a in &item.attachments {
                    let buf = SharedBuf::default();
                    postroom
                        .open_attachment(&session, &id, a.index, buf.clone())
                        .await
                        .ok()?;
                    files.push(buf.take());
                }
                tokio::task::spawn_blocking(move || {
                    let rendered = render(&item, &parties, &files).ok()?;
                    let summary = summarize(&item, &parties).ok()?;
                    Some((id, rendered, summary))
                })
                .await
                .ok()
                .flatten()
            });
        }
        while let Some(done) = jobs.join_next().await {
            self.keep_made(Some(done));
        }
    }

    fn keep_made(&mut self, done: Option<Result<Made, tokio::task::JoinError>>) {
        if let Some(Ok(Some((id, rendered, summary)))) = done {
            if !self.decrypted.summaries.contains_key(&id) {
                self.decrypted.keep_summary(&id, Arc::new(summary));
            }
            self.decrypted.keep_rendered(&id, Arc::new(rendered));
        }
    }
}
