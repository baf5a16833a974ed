//! The wrong-patient guard: does the patient inside a DICOM file match the
//! patient entered on the request? Written forms differ without the patient
//! differing — full-width and half-width characters, hiragana and katakana,
//! spaces or `^` between family and given name, case, romaji long vowels
//! (Tarou/Taro), the `Alphabetic=Ideographic=Phonetic` groups of a DICOM
//! person name, zero-padded IDs — so both sides are normalised first. Names
//! are compared only between forms of the same script (kanji is not
//! transliterated), so a file with only a romaji name is judged by its ID.

use serde::{Deserialize, Serialize};

/// Full-width katakana for U+FF66..=U+FF9D (half-width ｦ..ﾝ).
const HALF_KANA: &str = "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";

fn widen(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        0xFF61 => '。',
        0xFF62 => '「',
        0xFF63 => '」',
        0xFF64 => '、',
        0xFF65 => '・',
        0xFF66..=0xFF9D => HALF_KANA
            .chars()
            .nth((c as u32 - 0xFF66) as usize)
            .unwrap_or(c),
        // Hiragana to katakana.
        0x3041..=0x3096 => char::from_u32(c as u32 + 0x60).unwrap_or(c),
        _ => c,
    }
}

/// Adds a (half-width) voiced or semi-voiced mark to the kana before it.
fn voice(prev: char, mark: char) -> Option<char> {
    let p = prev as u32;
    let voiced = mark == '\u{FF9E}' || mark == '\u{309B}' || mark == '\u{3099}';
    if voiced {
        if prev == 'ウ' {
            return Some('ヴ');
        }
        let plain = "カキクケコサシスセソタチツテトハヒフヘホ";
        plain
            .contains(prev)
            .then(|| char::from_u32(p + 1))
            .flatten()
    } else {
        "ハヒフヘホ"
            .contains(prev)
            .then(|| char::from_u32(p + 2))
            .flatten()
    }
}

/// One written form of a name, reduced to what identifies it.
fn fold_name(s: &str) -> (String, Vec<String>) {
    let mut chars: Vec<char> = Vec::with_capacity(s.len());
    for c in s.chars() {
        let is_mark = matches!(
            c,
            '\u{FF9E}' | '\u{FF9F}' | '\u{309B}' | '\u{309C}' | '\u{3099}' | '\u{309A}'
        );
        if is_mark
            && let Some(last) = chars.last_mut()
            && let Some(v) = voice(*last, c)
        {
            *last = v;
            continue;
        }
        let w = widen(c);
        let w = if w == '^' || w == '・' || w == ',' || w == '.' {
            ' '
        } else {
            w
        };
        if w == 'ー' {
            continue;
        }
        chars.extend(w.to_lowercase());
    }
    let text: String = chars.into_iter().collect();
    let fold_vowels = |w: &str| w.replace("ou", "o").replace("oo", "o").replace("uu", "u");
    let mut parts: Vec<String> = text
        .split_whitespace()
        .map(fold_vowels)
        .filter(|p| !p.is_empty())
        .collect();
    let joined = parts.concat();
    parts.sort();
    (joined, parts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Kana,
    /// Holds ideographs (kanji, hanzi, hangul).
    Ideographic,
}

fn script(folded: &str) -> Script {
    if folded.chars().any(|c| {
        matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF | 0x20000..=0x3FFFF)
    }) {
        Script::Ideographic
    } else if folded.chars().any(|c| matches!(c as u32, 0x30A0..=0x30FF)) {
        Script::Kana
    } else {
        Script::Latin
    }
}

/// `None` when no written form of the two shares a script (kanji entered,
/// only romaji in the file): nothing can be said from the name.
fn names_match(entered: &str, dicom: &str) -> Option<bool> {
    let groups = |s: &str| -> Vec<(String, Vec<String>)> {
        s.split(['=', '＝'])
            .map(fold_name)
            .filter(|(j, _)| !j.is_empty())
            .collect()
    };
    let (a, b) = (groups(entered), groups(dicom));
    let mut compared = false;
    for (ja, pa) in &a {
        for (jb, pb) in &b {
            if script(ja) != script(jb) {
                continue;
            }
            compared = true;
            if ja == jb || pa == pb {
                return Some(true);
            }
        }
    }
    compared.then_some(false)
}

fn fold_id(s: &str) -> String {
    let t: String = s
        .chars()
        .map(widen)
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let stripped = t.trim_start_matches('0');
        return if stripped.is_empty() {
            "0".into()
        } else {
            stripped.into()
        };
    }
    t
}

/// The outcome of comparing one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Same,
    Differs,
    /// One side is empty: nothing to compare.
    NotCompared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientMatch {
    pub id: Comparison,
    pub name: Comparison,
}

impl PatientMatch {
    pub fn differs(&self) -> bool {
        self.id == Comparison::Differs || self.name == Comparison::Differs
    }
}

/// Compares the patient entered on a request with the one inside a file.
pub fn same_patient(
    entered_id: &str,
    entered_name: &str,
    dicom_id: &str,
    dicom_name: &str,
) -> PatientMatch {
    let id = match (fold_id(entered_id), fold_id(dicom_id)) {
        (a, b) if a.is_empty() || b.is_empty() => Comparison::NotCompared,
        (a, b) if a == b => Comparison::Same,
        _ => Comparison::Differs,
    };
    let name = match names_match(entered_name, dicom_name) {
        None => Comparison::NotCompared,
        Some(true) => Comparison::Same,
        Some(false) => Comparison::Differs,
    };
    PatientMatch { id, name }
}

/// A file whose patient differs from the one entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub file: String,
    pub result: PatientMatch,
}

/// Every file (name, patient ID, patient name) whose patient differs.
pub fn differing_files<'a>(
    entered_id: &str,
    entered_name: &str,
    files: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Vec<Mismatch> {
    files
        .into_iter()
        .filter_map(|(file, id, name)| {
            let result = same_patient(entered_id, entered_name, id, name);
            result.differs().then(|| Mismatch {
                file: file.to_string(),
                result,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: (&str, &str), b: (&str, &str)) -> bool {
        !same_patient(a.0, a.1, b.0, b.1).differs()
    }

    #[test]
    fn written_forms_of_one_patient_match() {
        let dicom = ("0012345", "Yamada^Tarou=山田^太郎=やまだ^たろう");
        for entered in [
            ("12345", "山田 太郎"),
            ("１２３４５", "山田　太郎"),
            ("0012345", "山田太郎"),
            ("12345", "YAMADA TARO"),
            ("12345", "ｙａｍａｄａ　ｔａｒｏｕ"),
            ("12345", "ヤマダ タロウ"),
            ("12345", "ﾔﾏﾀﾞ ﾀﾛｳ"),
            ("12345", "やまだたろう"),
            ("12345", "Taro Yamada"),
            ("12345", ""),
        ] {
            assert!(same(entered, dicom), "{entered:?}");
        }
        assert!(same(("A-12", "yamada^taro"), ("a12", "YAMADA^TARO")));
    }

    #[test]
    fn another_patient_differs_and_says_which_field() {
        let r = same_patient("12345", "山田 太郎", "12346", "山田^太郎");
        assert_eq!(r.id, Comparison::Differs);
        assert_eq!(r.name, Comparison::Same);
        let r = same_patient("12345", "山田 太郎", "12345", "山田^花子");
        assert_eq!((r.id, r.name), (Comparison::Same, Comparison::Differs));
        assert!(same_patient("", "ヤマダ タロウ", "", "ﾔﾏﾀﾞ^ﾊﾅｺ").differs());
        // Nothing to compare is not a mismatch: no name, or no common script.
        assert!(!same_patient("", "", "1", "X^Y").differs());
        let r = same_patient("12345", "山田 太郎", "12345", "YAMADA^TARO");
        assert_eq!((r.id, r.name), (Comparison::Same, Comparison::NotCompared));

        let files = [
            ("a.dcm", "12345", "YAMADA^TARO"),
            ("b.dcm", "99999", "SUZUKI^ICHIRO"),
        ];
        let diff = differing_files("12345", "山田 太郎", files);
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].file, "b.dcm");
    }
}

/// A DICOM person name as people write it: `香川^花子` → `香川 花子`. Of the
/// `Alphabetic=Ideographic=Phonetic` groups the ideographic one comes first,
/// with the alphabetic one in brackets when both are there
/// (`Kagawa^Hanako=香川^花子` → `香川 花子（Kagawa Hanako）`); the phonetic
/// group is left out when another is present.
pub fn display_name(pn: &str) -> String {
    let group = |g: &str| {
        g.split('^')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut groups = pn.split('=').map(group);
    let alphabetic = groups.next().unwrap_or_default();
    let ideographic = groups.next().unwrap_or_default();
    let phonetic = groups.next().unwrap_or_default();
    match (ideographic.is_empty(), alphabetic.is_empty()) {
        (false, false) => format!("{ideographic}（{alphabetic}）"),
        (false, true) => ideographic,
        (true, false) => alphabetic,
        (true, true) => phonetic,
    }
}

#[cfg(test)]
mod display_tests {
    use super::display_name;

    #[test]
    fn person_names_read_as_people_write_them() {
        assert_eq!(display_name("香川^花子"), "香川 花子");
        assert_eq!(display_name("Kagawa^Hanako"), "Kagawa Hanako");
        assert_eq!(
            display_name("Kagawa^Hanako=香川^花子=かがわ^はなこ"),
            "香川 花子（Kagawa Hanako）"
        );
        assert_eq!(display_name("=香川^花子"), "香川 花子");
        assert_eq!(display_name("==かがわ^はなこ"), "かがわ はなこ");
        assert_eq!(display_name("Doe^John^^Dr^"), "Doe John Dr");
        assert_eq!(display_name(""), "");
    }
}
