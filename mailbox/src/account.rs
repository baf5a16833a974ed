//! Accounts: one person each, with a system-assigned ID and one role.
//!
//! An [`AccountId`] is 8 characters from a 23-symbol alphabet with no
//! look-alikes, shown as `XXXX-XXXX`.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::facility::FacilityCode;

/// Characters that cannot be confused when read over the phone or from a letter:
/// no 0/O, 1/I/L, 5/S, 2/Z, 8/B, U/V.
const ID_ALPHABET: &[u8] = b"34679ACDEFGHJKMNPQRTWXY";
const ID_LEN: usize = 8;

/// A system-assigned account ID such as `K7M4-QX9R`; stored without the hyphen.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn generate() -> Self {
        let mut rng = OsRng;
        Self(
            (0..ID_LEN)
                .map(|_| char::from(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())]))
                .collect(),
        )
    }

    /// Accepts what a person types: any case, optional hyphen or spaces, full-width.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let cleaned: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '　' | '－'))
            .map(|c| match c {
                // Full-width ASCII block to ASCII.
                '！'..='～' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                other => other,
            })
            .collect::<String>()
            .to_ascii_uppercase();
        if cleaned.len() == ID_LEN && cleaned.bytes().all(|b| ID_ALPHABET.contains(&b)) {
            Ok(Self(cleaned))
        } else {
            Err(Error::invalid(
                "account_id",
                "an account ID is 8 characters like K7M4-QX9R",
                "ユーザーIDは K7M4-QX9R のような8文字です。",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form printed on credential letters and shown on screen.
    pub fn display_grouped(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_grouped())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

impl TryFrom<String> for AccountId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountId> for String {
    fn from(value: AccountId) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 医師ID: reads and acts on own items only.
    Doctor,
    /// 事務員ID: read-only overseer of the own facility (bookings excepted).
    Clerk,
    /// 地域連携室ID: works the facility's shared inbox.
    Liaison,
    /// 運営者: runs the network, never reads content.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Doctor => "doctor",
            Self::Clerk => "clerk",
            Self::Liaison => "liaison",
            Self::Operator => "operator",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Doctor => "医師",
            Self::Clerk => "事務員",
            Self::Liaison => "地域連携室",
            Self::Operator => "運営者",
        }
    }

    /// Every role but the operator belongs to exactly one facility.
    pub fn needs_facility(self) -> bool {
        !matches!(self, Self::Operator)
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "doctor" | "医師" => Ok(Self::Doctor),
            "clerk" | "事務員" => Ok(Self::Clerk),
            "liaison" | "地域連携室" => Ok(Self::Liaison),
            "operator" | "運営者" => Ok(Self::Operator),
            _ => Err(Error::invalid(
                "role",
                "role must be doctor, clerk, liaison or operator",
                "役割は医師・事務員・地域連携室・運営者のいずれかです。",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub role: Role,
    pub facility: Option<FacilityCode>,
    pub name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub password: PasswordDigest,
    /// Set for issued passwords (credential letters); cleared by the person's own change.
    pub must_change_password: bool,
    pub locked: bool,
    pub failed_attempts: u32,
    pub has_second_factor: bool,
    /// A removed member keeps the row (items refer to it) but no grants, and stays locked.
    pub removed: bool,
    pub created_at: i64,
}

/// A PHC-format Argon2id hash, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordDigest(pub String);

impl fmt::Debug for PasswordDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordDigest([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unambiguous_and_parse_leniently() {
        for _ in 0..100 {
            let id = AccountId::generate();
            assert_eq!(AccountId::parse(&id.display_grouped()).unwrap(), id);
            assert_eq!(AccountId::parse(&id.as_str().to_lowercase()).unwrap(), id);
        }
        assert!(
            AccountId::parse("K7M4-QX9O").is_err(),
            "O is not in the alphabet"
        );
        assert!(AccountId::parse("K7M4").is_err());
        assert_eq!(
            AccountId::parse("ｋ７ｍ４－ｑｘ９ｒ").unwrap().as_str(),
            "K7M4QX9R"
        );
    }
}
