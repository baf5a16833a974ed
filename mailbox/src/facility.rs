//! Facilities (医療施設) and their 10-digit codes (医療機関番号).
//!
//! A code is 10 digits: a prefecture 01–47, a score-table digit 1, 3 or 4, and
//! a Luhn check over all ten digits. Each refused rule is its own
//! [`FacilityCodeError`] variant with English and Japanese text. What the
//! public list shows is decided here: name, city and departments always;
//! address, phone and the facility's note only when it chose to publish them
//! (`publish_details`).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::localized::Localized;

/// The prefecture a network serves unless configured otherwise: Kagawa.
pub const DEFAULT_HOME_PREFECTURE: u8 = 37;

/// A valid 10-digit facility code: prefecture (2) + score table (1) + institution
/// number (7, the last digit a Luhn check digit computed over all ten digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FacilityCode(String);

/// Why a facility code was refused; each variant names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FacilityCodeError {
    #[error("facility code must be exactly 10 digits, got {0} characters")]
    Length(usize),
    #[error("facility code must contain only digits (character {position} is '{found}')")]
    NotDigit { position: usize, found: char },
    #[error("prefecture (digits 1-2) must be 01-47, got {0:02}")]
    Prefecture(u8),
    #[error("score table (digit 3) must be 1 (medical), 3 (dental) or 4 (pharmacy), got {0}")]
    ScoreTable(u8),
    #[error(
        "check digit (digit 10) does not match the Luhn check over all ten digits; the code probably has a typo"
    )]
    CheckDigit,
}

impl Localized for FacilityCodeError {
    fn code(&self) -> &'static str {
        match self {
            Self::Length(_) => "facility_code_length",
            Self::NotDigit { .. } => "facility_code_not_digit",
            Self::Prefecture(_) => "facility_code_prefecture",
            Self::ScoreTable(_) => "facility_code_score_table",
            Self::CheckDigit => "facility_code_check_digit",
        }
    }

    fn message_ja(&self) -> String {
        match self {
            Self::Length(n) => format!("医療機関番号は10桁の数字です（入力は{n}文字）。"),
            Self::NotDigit { position, found } => {
                format!("医療機関番号は数字のみです（{position}文字目が「{found}」）。")
            }
            Self::Prefecture(p) => {
                format!("都道府県番号（1〜2桁目）は01〜47です（入力は{p:02}）。")
            }
            Self::ScoreTable(t) => format!(
                "点数表番号（3桁目）は1（医科）、3（歯科）、4（調剤）のいずれかです（入力は{t}）。"
            ),
            Self::CheckDigit => {
                "検証番号（10桁目）が一致しません。入力誤りの可能性があります。".to_string()
            }
        }
    }
}

/// Which fee schedule a facility bills under (点数表).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreTable {
    Medical,
    Dental,
    Pharmacy,
}

impl FacilityCode {
    /// Parses a code as a person types it: full-width digits, spaces and hyphens are
    /// tolerated, everything else must follow the rules.
    pub fn parse(input: &str) -> Result<Self, FacilityCodeError> {
        let cleaned: Vec<char> = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '　' | '－' | 'ー'))
            .map(|c| match c {
                '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
                other => other,
            })
            .collect();
        if cleaned.len() != 10 {
            return Err(FacilityCodeError::Length(cleaned.len()));
        }
        let mut digits = [0u8; 10];
        for (i, c) in cleaned.iter().enumerate() {
            match c.to_digit(10) {
                Some(d) if c.is_ascii_digit() => digits[i] = d as u8,
                _ => {
                    return Err(FacilityCodeError::NotDigit {
                        position: i + 1,
                        found: *c,
                    });
                }
            }
        }
        let prefecture = digits[0] * 10 + digits[1];
        if !(1..=47).contains(&prefecture) {
            return Err(FacilityCodeError::Prefecture(prefecture));
        }
        if !matches!(digits[2], 1 | 3 | 4) {
            return Err(FacilityCodeError::ScoreTable(digits[2]));
        }
        if !luhn_sum(&digits).is_multiple_of(10) {
            return Err(FacilityCodeError::CheckDigit);
        }
        Ok(Self(cleaned.into_iter().collect()))
    }

    /// Completes the first nine digits with their Luhn check digit.
    pub fn with_check_digit(first_nine: &str) -> Result<Self, FacilityCodeError> {
        let mut probe = format!("{first_nine}0");
        let digits: Vec<u8> = probe.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        if digits.len() == 10 && digits.iter().all(|d| *d < 10) {
            let check = (10 - luhn_sum(&digits) % 10) % 10;
            probe.pop();
            probe.push(char::from(b'0' + check as u8));
        }
        Self::parse(&probe)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn prefecture(&self) -> u8 {
        let b = self.0.as_bytes();
        (b[0] - b'0') * 10 + (b[1] - b'0')
    }

    pub fn score_table(&self) -> ScoreTable {
        match self.0.as_bytes()[2] {
            b'3' => ScoreTable::Dental,
            b'4' => ScoreTable::Pharmacy,
            _ => ScoreTable::Medical,
        }
    }
}

/// Luhn sum over all digits, doubling every second digit from the right
/// (the rightmost digit itself is not doubled).
fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

impl fmt::Display for FacilityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FacilityCode {
    type Error = FacilityCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FacilityCode> for String {
    fn from(value: FacilityCode) -> Self {
        value.0
    }
}

/// A participating facility as the operator registers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facility {
    pub code: FacilityCode,
    pub name: String,
    /// Municipality (市区町村); listed publicly with the name and departments.
    pub city: String,
    pub address: String,
    pub phone: String,
    /// Departments (診療科); listed publicly.
    pub departments: Vec<String>,
    /// What the facility says of itself on the public list (hours, referral
    /// desk, equipment); shown only with its published details.
    pub public_note: String,
    /// Whether address, phone and the note appear on the public list.
    pub publish_details: bool,
    pub active_from: NaiveDate,
    pub active_until: Option<NaiveDate>,
    /// The steering committee's approval reference; required outside the home prefecture.
    pub approval_ref: Option<String>,
}

impl Facility {
    /// A facility with only its code, name and first day; every other detail empty.
    pub fn new(code: FacilityCode, name: impl Into<String>, active_from: NaiveDate) -> Self {
        Self {
            code,
            name: name.into(),
            city: String::new(),
            address: String::new(),
            phone: String::new(),
            departments: Vec::new(),
            public_note: String::new(),
            publish_details: false,
            active_from,
            active_until: None,
            approval_ref: None,
        }
    }

    /// Whether the facility is active on the given day (billing counts any such day).
    pub fn is_active_on(&self, day: NaiveDate) -> bool {
        self.active_from <= day && self.active_until.is_none_or(|until| day <= until)
    }

    /// What the public list (参加医療施設一覧) shows of this facility: name,
    /// city and departments always; address, phone and note only when the
    /// facility chose to publish them.
    pub fn public_listing(&self) -> PublicListing {
        let published = |v: &str| {
            let v = v.trim();
            (self.publish_details && !v.is_empty()).then(|| v.to_string())
        };
        PublicListing {
            code: self.code.clone(),
            name: self.name.clone(),
            city: self.city.clone(),
            departments: self.departments.clone(),
            address: published(&self.address),
            phone: published(&self.phone),
            note: published(&self.public_note),
        }
    }
}

/// One line of the public list of participating facilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicListing {
    pub code: FacilityCode,
    pub name: String,
    pub city: String,
    pub departments: Vec<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
}

/// Departments as typed: separated by commas or Japanese commas (、，), blanks
/// and duplicates dropped.
pub fn parse_departments(input: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in input.split([',', '、', '，', '\n']).map(str::trim) {
        if !d.is_empty() && !out.iter().any(|o| o == d) {
            out.push(d.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_public_listing_shows_details_only_when_published() {
        let mut f = Facility::new(
            FacilityCode::parse("3710123450").unwrap(),
            "さぬき中央病院",
            day("2026-04-01"),
        );
        f.city = "高松市".into();
        f.departments = vec!["放射線科".into(), "内科".into()];
        f.address = "香川県高松市番町1-1-1".into();
        f.phone = "087-000-0000".into();
        f.public_note = "紹介受付 平日9時〜17時".into();
        let hidden = f.public_listing();
        assert_eq!(hidden.name, "さぬき中央病院");
        assert_eq!(hidden.city, "高松市");
        assert_eq!(hidden.departments, ["放射線科", "内科"]);
        assert_eq!(
            (hidden.address, hidden.phone, hidden.note),
            (None, None, None)
        );

        f.publish_details = true;
        f.phone = "  ".into();
        let shown = f.public_listing();
        assert_eq!(shown.address.as_deref(), Some("香川県高松市番町1-1-1"));
        assert_eq!(shown.phone, None, "an empty detail is not listed");
        assert_eq!(shown.note.as_deref(), Some("紹介受付 平日9時〜17時"));
    }

    #[test]
    fn departments_split_on_either_comma_and_drop_blanks_and_repeats() {
        assert_eq!(
            parse_departments("放射線科、内科, 外科,,内科，整形外科 "),
            ["放射線科", "内科", "外科", "整形外科"]
        );
        assert!(parse_departments(" 、 ").is_empty());
    }

    #[test]
    fn valid_codes() {
        for (input, normalised) in [
            ("0110113719", "0110113719"), // the design's example (Hokkaido, medical)
            ("3710123450", "3710123450"), // Kagawa, medical, check digit computed by hand
            ("3730045675", "3730045675"), // Kagawa, dental
            ("3740012343", "3740012343"), // Kagawa, pharmacy
            ("37-1-0123450", "3710123450"),
            ("３７１０１２３４５０", "3710123450"), // full-width digits as typed in Japanese IMEs
        ] {
            let code = FacilityCode::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(code.as_str(), normalised);
        }
        let kagawa = FacilityCode::parse("3710123450").unwrap();
        assert_eq!(kagawa.prefecture(), 37);
        assert_eq!(kagawa.score_table(), ScoreTable::Medical);
        assert_eq!(
            FacilityCode::parse("3730045675").unwrap().score_table(),
            ScoreTable::Dental
        );
        assert_eq!(FacilityCode::with_check_digit("371012345").unwrap(), kagawa);
    }

    #[test]
    fn each_rule_has_its_own_message() {
        let table: &[(&str, FacilityCodeError, &str, &str)] = &[
            (
                "011011371",
                FacilityCodeError::Length(9),
                "exactly 10 digits",
                "10桁",
            ),
            (
                "01101137190",
                FacilityCodeError::Length(11),
                "got 11",
                "11文字",
            ),
            ("", FacilityCodeError::Length(0), "got 0", "0文字"),
            (
                "01101A3719",
                FacilityCodeError::NotDigit {
                    position: 6,
                    found: 'A',
                },
                "character 6 is 'A'",
                "6文字目",
            ),
            (
                "0010113719",
                FacilityCodeError::Prefecture(0),
                "01-47, got 00",
                "01〜47",
            ),
            (
                "4810113712",
                FacilityCodeError::Prefecture(48),
                "got 48",
                "48",
            ),
            (
                "3720123450",
                FacilityCodeError::ScoreTable(2),
                "got 2",
                "点数表番号",
            ),
            (
                "3750123450",
                FacilityCodeError::ScoreTable(5),
                "got 5",
                "（入力は5）",
            ),
            (
                "0110113718",
                FacilityCodeError::CheckDigit,
                "Luhn",
                "検証番号",
            ),
            (
                "3710123459",
                FacilityCodeError::CheckDigit,
                "typo",
                "入力誤り",
            ),
            // A transposition of two neighbouring digits is caught by the check digit.
            (
                "1010113719",
                FacilityCodeError::CheckDigit,
                "check digit",
                "検証番号",
            ),
        ];
        for (input, expected, en, ja) in table {
            let err = FacilityCode::parse(input).expect_err(input);
            assert_eq!(&err, expected, "{input}");
            assert!(err.to_string().contains(en), "{input}: {err}");
            assert!(
                err.message_ja().contains(ja),
                "{input}: {}",
                err.message_ja()
            );
        }
    }
}
