//! Who an item is sealed to: the recipients checked, the sender, and the
//! oversight key of every facility involved.
//!
//! The slots are resolved in two queries however many recipients there are:
//! accounts, then certificates.

use renkei_crypto::Certificate;

use crate::account::Role;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::keys::Principal;
use crate::postroom::Postroom;
use crate::postroom::Recipient;

impl Postroom {
    /// The principal a recipient stands for, checked: a person must be an active
    /// member of a facility, a liaison inbox must have its key.
    pub(crate) async fn recipient_principal(&self, r: &Recipient) -> Result<Principal> {
        match r {
            Recipient::Person(id) => {
                let account = self
                    .directory
                    .account(id)
                    .await
                    .map_err(|_| Error::NotFound("recipient"))?;
                if account.removed || account.role == Role::Operator {
                    return Err(Error::NotFound("recipient"));
                }
                Ok(Principal::Account(id.clone()))
            }
            Recipient::LiaisonInbox(code) => {
                if self.facility_cert(code, "liaison").await?.is_none() {
                    return Err(Error::invalid(
                        "to",
                        format!("facility {code} has no liaison office account yet"),
                        "宛先の施設には地域連携室IDがまだありません。",
                    ));
                }
                Ok(Principal::LiaisonInbox(code.clone()))
            }
        }
    }

    /// Key slots for `principals`, the sender, and the oversight key of every
    /// facility involved (clerks follow their facility's items).
    pub(crate) async fn slots_with_oversight(
        &self,
        sender: &crate::account::Account,
        principals: Vec<Principal>,
    ) -> Result<Vec<(Principal, Certificate)>> {
        self.resolve_slots(sender, &[], principals).await
    }

    /// Checks `recipients` (as `recipient_principal` does) and returns the key
    /// slots for them, `principals`, the sender, and the oversight key of every
    /// facility involved — with two queries however many there are (a lookup
    /// per principal made each submission wait on half a dozen round trips).
    pub(crate) async fn resolve_slots(
        &self,
        sender: &crate::account::Account,
        recipients: &[Recipient],
        principals: Vec<Principal>,
    ) -> Result<Vec<(Principal, Certificate)>> {
        let store = &self.store;
        let mut all: Vec<Principal> = recipients.iter().map(Recipient::principal).collect();
        all.extend(principals);
        all.push(Principal::Account(sender.id.clone()));
        let mut unique: Vec<Principal> = Vec::with_capacity(all.len());
        for p in all {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        // Accounts other than the sender (known from the session): their
        // facilities, and whether a person addressed may still receive.
        let others: Vec<&str> = unique
            .iter()
            .filter_map(|p| match p {
                Principal::Account(id) if *id != sender.id => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let accounts = if others.is_empty() {
            Vec::new()
        } else {
            store.accounts_by_ids(&others).await?
        };
        for r in recipients {
            if let Recipient::Person(id) = r {
                let ok = *id == sender.id
                    || accounts
                        .iter()
                        .any(|a| a.id == *id && !a.removed && a.role != Role::Operator);
                if !ok {
                    return Err(Error::NotFound("recipient"));
                }
            }
        }
        let mut facilities: Vec<FacilityCode> = sender.facility.iter().cloned().collect();
        for p in &unique {
            match p {
                Principal::Account(id) => {
                    if let Some(a) = accounts.iter().find(|a| a.id == *id) {
                        facilities.extend(a.facility.clone());
                    }
                }
                Principal::LiaisonInbox(code) | Principal::Oversight(code) => {
                    facilities.push(code.clone())
                }
            }
        }
        facilities.dedup();
        let account_ids: Vec<&str> = unique
            .iter()
            .filter_map(|p| match p {
                Principal::Account(id) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let mut codes: Vec<&str> = facilities.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        let certs = store.slot_certs(&account_ids, &codes).await?;
        let cert_of = |p: &Principal| -> Result<Option<Certificate>> {
            let key = p.key();
            match certs.iter().find(|(k, _)| *k == key) {
                Some((_, bytes)) => self.parse_cert(bytes).map(Some),
                None => Ok(None),
            }
        };
        let mut slots: Vec<(Principal, Certificate)> = Vec::with_capacity(unique.len() + 2);
        for p in unique {
            if let Some(cert) = cert_of(&p)? {
                slots.push((p, cert));
                continue;
            }
            let addressed_inbox = |code: &FacilityCode| {
                recipients
                    .iter()
                    .any(|r| matches!(r, Recipient::LiaisonInbox(c) if c == code))
            };
            return Err(match &p {
                Principal::LiaisonInbox(code) if addressed_inbox(code) => Error::invalid(
                    "to",
                    format!("facility {code} has no liaison office account yet"),
                    "宛先の施設には地域連携室IDがまだありません。",
                ),
                _ => Error::NotFound("recipient"),
            });
        }
        for code in facilities {
            let p = Principal::Oversight(code);
            if slots.iter().any(|(q, _)| *q == p) {
                continue;
            }
            if let Some(cert) = cert_of(&p)? {
                slots.push((p, cert));
            }
        }
        Ok(slots)
    }
}
