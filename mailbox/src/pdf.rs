//! PDF exports of domain records: the `renkei-pdf` crate renders plain data;
//! this maps billing statements and deletion reports onto it and its errors
//! onto the domain's.

pub use renkei_pdf::{CredentialLetter, ItemPrint, item_title};

use crate::error::{Error, Result};

fn internal(e: renkei_pdf::Error) -> Error {
    Error::Internal(e.to_string())
}

pub fn item(p: &ItemPrint) -> Result<Vec<u8>> {
    renkei_pdf::item(p).map_err(internal)
}

pub fn credential_letter(c: &CredentialLetter<'_>) -> Result<Vec<u8>> {
    renkei_pdf::credential_letter(c).map_err(internal)
}

pub fn billing_statement(st: &crate::records::billing::Statement) -> Result<Vec<u8>> {
    let print = renkei_pdf::StatementPrint {
        month: st.month.clone(),
        first_day: st.first_day.to_string(),
        last_day: st.last_day.to_string(),
        monthly_fee_jpy: crate::records::billing::MONTHLY_FEE_JPY,
        lines: st
            .lines
            .iter()
            .map(|l| renkei_pdf::StatementLine {
                code: l.code.clone(),
                name: l.name.clone(),
                active_from: l.active_from.to_string(),
                active_until: l.active_until.map(|d| d.to_string()).unwrap_or_default(),
                amount_jpy: l.amount_jpy,
            })
            .collect(),
        total_jpy: st.total_jpy(),
    };
    renkei_pdf::billing_statement(&print).map_err(internal)
}

pub fn deletion_receipt(r: &crate::records::DeletionReport) -> Result<Vec<u8>> {
    let receipt = renkei_pdf::DeletionReceipt {
        patient_request: r.reason == "patient_request",
        run_id: r.run_id.clone(),
        deleted_at: chrono::DateTime::from_timestamp(r.at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
        total_bytes: r.total_bytes(),
        blobs_removed: r.blobs_removed,
        items: r
            .items
            .iter()
            .map(|i| renkei_pdf::DeletedItem {
                envelope_id: i.envelope_id.clone(),
                kind: i.kind.clone(),
                sender_facility: i.sender_facility.clone().unwrap_or_else(|| "-".into()),
                sealed_on: chrono::DateTime::from_timestamp(i.created_at, 0)
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                bytes: i.body_size + i.attachment_bytes,
                attachments: i.attachments,
            })
            .collect(),
    };
    renkei_pdf::deletion_receipt(&receipt).map_err(internal)
}
