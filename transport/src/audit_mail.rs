//! Mails each signed audit checkpoint line to the operator's address (`[smtp]
//! operator_address`), through the same relay as the notification mails: a
//! copy of the evidence outside the server. The line carries no patient data
//! (node name, time, sequence number, hashes, clock state, signature). A failed
//! mail is logged by the caller; the checkpoint file already holds the line.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::notify::{NotifyError, RelaySettings, plain_mail, relay_transport};

pub struct CheckpointMailer {
    relay: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Mailbox,
}

impl CheckpointMailer {
    pub fn new(settings: &RelaySettings, to: &str) -> Result<Self, NotifyError> {
        let parse = |what: &str, address: &str| -> Result<Mailbox, NotifyError> {
            address
                .parse()
                .map_err(|e| NotifyError::Config(format!("{what}: {e}")))
        };
        Ok(Self {
            relay: relay_transport(settings)?,
            from: parse("smtp from address", &settings.from)?,
            to: parse("smtp operator_address", to)?,
        })
    }

    /// Sends one checkpoint line (`node` and `seq` go into the subject).
    pub async fn send(&self, node: &str, seq: i64, line: &str) -> Result<(), NotifyError> {
        let body = format!(
            "Renkei 監査証跡のチェックポイントです（署名付き、患者情報は含みません）。\n\
             保管してください。`renkei admin audit verify` がこの記録と照合します。\n\n{line}\n"
        );
        let message = plain_mail(
            &self.from,
            self.to.clone(),
            format!("[Renkei] 監査チェックポイント {node} seq {seq}"),
            body,
            &format!("checkpoint-{node}-{seq}"),
        )
        .map_err(|e| NotifyError::Smtp(format!("building the mail: {e}")))?;
        self.relay
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| NotifyError::Smtp(format!("sending the checkpoint mail: {e}")))
    }
}
