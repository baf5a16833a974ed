//! What a deletion run removed: a plain record (no service behind it), for
//! the receipt PDF, the CSV and the command line.

use crate::records::csv;
use crate::store::records::DeletionLogRow;

/// What a run deleted (or, dry, would delete).
#[derive(Debug, Clone)]
pub struct DeletionReport {
    pub run_id: String,
    /// `retention` or `patient_request`.
    pub reason: &'static str,
    pub applied: bool,
    /// Unix seconds.
    pub at: i64,
    pub items: Vec<DeletionLogRow>,
    /// Blob files removed from the blob folder.
    pub blobs_removed: u64,
}

impl DeletionReport {
    pub fn total_bytes(&self) -> i64 {
        self.items
            .iter()
            .map(|i| i.body_size + i.attachment_bytes)
            .sum()
    }

    /// The record as CSV: one line per item, then the totals.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(csv::BOM);
        out.push_str(&csv::line(&[
            "run",
            "reason",
            "applied",
            "item",
            "kind",
            "sender_facility",
            "sealed_on",
            "body_bytes",
            "attachments",
            "attachment_bytes",
        ]));
        for i in &self.items {
            out.push_str(&csv::line(&[
                self.run_id.clone(),
                self.reason.to_string(),
                self.applied.to_string(),
                i.envelope_id.clone(),
                i.kind.clone(),
                i.sender_facility.clone().unwrap_or_default(),
                day(i.created_at),
                i.body_size.to_string(),
                i.attachments.to_string(),
                i.attachment_bytes.to_string(),
            ]));
        }
        out.push_str(&csv::line(&[
            self.run_id.clone(),
            self.reason.to_string(),
            self.applied.to_string(),
            format!("total {} items", self.items.len()),
            String::new(),
            String::new(),
            day(self.at),
            String::new(),
            self.blobs_removed.to_string(),
            self.total_bytes().to_string(),
        ]));
        out
    }
}

fn day(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}
