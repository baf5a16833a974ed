//! What the edges see of a thread: its clear state, and where each step sits.
//! Built from the store's rows, which stay inside `mailbox`.

use crate::store::thread::{StepRow, ThreadRow};

/// A thread's clear state (nothing in it is patient data): kind, state,
/// parties, urgency, dates and the liaison office's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: String,
    pub kind: String,
    pub state: String,
    /// Counts the thread's steps (1 once opened).
    pub version: i64,
    /// The opening item.
    pub opener_id: String,
    pub requester_id: String,
    pub requester_facility: Option<String>,
    /// The addressed principal (`account:…` or `liaison:…`).
    pub target: String,
    pub target_facility: String,
    pub claimed_by: Option<String>,
    pub assignee_id: Option<String>,
    pub reader_id: Option<String>,
    pub urgency: String,
    pub wanted_by: Option<String>,
    pub resource_id: Option<String>,
    pub booked_slot: Option<String>,
    pub template: Option<String>,
    pub stage: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
    pub opened_at: Option<i64>,
    pub opened_by: Option<String>,
    pub closed_at: Option<i64>,
    pub escalated_at: Option<i64>,
}

impl From<ThreadRow> for Thread {
    fn from(r: ThreadRow) -> Self {
        let ThreadRow {
            id,
            kind,
            state,
            version,
            opener_id,
            requester_id,
            requester_facility,
            target,
            target_facility,
            claimed_by,
            assignee_id,
            reader_id,
            urgency,
            wanted_by,
            resource_id,
            booked_slot,
            template,
            stage,
            created_at,
            updated_at,
            delivered_at,
            opened_at,
            opened_by,
            closed_at,
            escalated_at,
        } = r;
        Self {
            id,
            kind,
            state,
            version,
            opener_id,
            requester_id,
            requester_facility,
            target,
            target_facility,
            claimed_by,
            assignee_id,
            reader_id,
            urgency,
            wanted_by,
            resource_id,
            booked_slot,
            template,
            stage,
            created_at,
            updated_at,
            delivered_at,
            opened_at,
            opened_by,
            closed_at,
            escalated_at,
        }
    }
}

/// Where a step sits in its thread, from the clear row: shown in place of a
/// step that cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub envelope_id: String,
    /// The step's kind (`open`, `report`, …) as the row says.
    pub step: Option<String>,
    pub sender_id: String,
    pub sender_facility: Option<String>,
    pub created_at: i64,
    /// The step's sequence number as the row says.
    pub thread_seq: Option<i64>,
}

impl From<StepRow> for StepRecord {
    fn from(r: StepRow) -> Self {
        Self {
            envelope_id: r.envelope_id,
            step: r.step,
            sender_id: r.sender_id,
            sender_facility: r.sender_facility,
            created_at: r.created_at,
            thread_seq: r.thread_seq,
        }
    }
}
