//! Text values under the file's Specific Character Set (0008,0005), including
//! the ISO 2022 code extensions Japanese files use (`ISO 2022 IR 6\ISO 2022 IR
//! 87`, with JIS X 0201 katakana in G1 from `ISO 2022 IR 13`), and files that
//! say ISO_IR 13 or nothing at all but hold Shift_JIS, as some modalities write.
//!
//! Also KS X 1001 and GB 2312 code extensions, JIS X 0212, the ISO 8859 family,
//! UTF-8 and GB18030/GBK; the results equal pydicom's on all of its charset
//! test files.

use encoding_rs::{
    EUC_JP, EUC_KR, Encoding, GB18030, GBK, ISO_8859_2, ISO_8859_3, ISO_8859_4, ISO_8859_5,
    ISO_8859_6, ISO_8859_7, ISO_8859_8, ISO_8859_15, SHIFT_JIS, UTF_8, WINDOWS_874, WINDOWS_1252,
    WINDOWS_1254,
};

/// Strips the padding DICOM puts around values (spaces, NUL).
pub fn trim_value(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(start, |p| p + 1);
    &b[start..end.max(start)]
}

/// The character sets a file declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Charsets {
    terms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum G0 {
    Ascii,
    JisRoman,
    Jis0208,
    Jis0212,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum G1 {
    None,
    Katakana,
    Single(&'static Encoding),
    /// Two-byte sets used in G1 with their high bits set (KS X 1001, GB 2312).
    Double(&'static Encoding),
}

fn single_byte(term: &str) -> Option<&'static Encoding> {
    let number = term
        .trim_start_matches("ISO 2022 IR ")
        .trim_start_matches("ISO_IR ");
    Some(match number {
        "100" => WINDOWS_1252,
        "101" => ISO_8859_2,
        "109" => ISO_8859_3,
        "110" => ISO_8859_4,
        "144" => ISO_8859_5,
        "127" => ISO_8859_6,
        "126" => ISO_8859_7,
        "138" => ISO_8859_8,
        "148" => WINDOWS_1254,
        "166" => WINDOWS_874,
        "203" => ISO_8859_15,
        _ => return None,
    })
}

impl Charsets {
    pub fn from_value(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(trim_value(raw)).into_owned();
        Self {
            terms: text.split('\\').map(|t| t.trim().to_string()).collect(),
        }
    }

    fn has(&self, term: &str) -> bool {
        self.terms.iter().any(|t| t == term)
    }

    fn first(&self) -> &str {
        self.terms.first().map_or("", String::as_str)
    }

    /// Decodes one value (padding removed). Never fails: bytes that do not
    /// fit the declared set come out as U+FFFD.
    pub fn decode(&self, raw: &[u8]) -> String {
        let raw = trim_value(raw);
        if raw.is_ascii() && !raw.contains(&0x1B) {
            return String::from_utf8_lossy(raw).into_owned();
        }
        if self.has("ISO_IR 192") {
            return UTF_8.decode_without_bom_handling(raw).0.into_owned();
        }
        if self.has("GB18030") {
            return GB18030.decode_without_bom_handling(raw).0.into_owned();
        }
        if self.has("GBK") {
            return GBK.decode_without_bom_handling(raw).0.into_owned();
        }
        let extended = self.terms.iter().any(|t| t.starts_with("ISO 2022"))
            || self.has("ISO_IR 87")
            || raw.contains(&0x1B);
        let first = self.first();
        if extended {
            return self.decode_iso2022(raw);
        }
        if first == "ISO_IR 13" {
            // JIS X 0201; many Japanese systems write Shift_JIS under this term,
            // whose single-byte half is the same set.
            return SHIFT_JIS.decode_without_bom_handling(raw).0.into_owned();
        }
        if let Some(enc) = single_byte(first) {
            return enc.decode_without_bom_handling(raw).0.into_owned();
        }
        // Undeclared (the default repertoire is ASCII) but not ASCII: guess
        // in the order such files are met here.
        for enc in [UTF_8, SHIFT_JIS] {
            if let Some(s) = enc.decode_without_bom_handling_and_without_replacement(raw) {
                return s.into_owned();
            }
        }
        WINDOWS_1252.decode_without_bom_handling(raw).0.into_owned()
    }

    fn initial(&self) -> (G0, G1) {
        let first = self.first();
        let g0 = if first.ends_with("IR 13") {
            G0::JisRoman
        } else {
            G0::Ascii
        };
        let g1 = if first.ends_with("IR 13") {
            G1::Katakana
        } else if first.ends_with("IR 149") {
            G1::Double(EUC_KR)
        } else if first.ends_with("IR 58") {
            G1::Double(GBK)
        } else {
            single_byte(first).map_or(G1::None, G1::Single)
        };
        (g0, g1)
    }

    fn decode_iso2022(&self, raw: &[u8]) -> String {
        let (g0_start, g1_start) = self.initial();
        let (mut g0, mut g1) = (g0_start, g1_start);
        let mut out = String::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if b == 0x1B {
                let rest = &raw[i + 1..];
                let (len, change) = escape(rest);
                match change {
                    Some(Designation::G0(set)) => g0 = set,
                    Some(Designation::G1(set)) => g1 = set,
                    None => out.push('\u{FFFD}'),
                }
                i += 1 + len;
                continue;
            }
            match (b, g0) {
                (0x21..=0x7E, G0::Jis0208 | G0::Jis0212) => {
                    let mut euc = Vec::new();
                    while i + 1 < raw.len()
                        && (0x21..=0x7E).contains(&raw[i])
                        && (0x21..=0x7E).contains(&raw[i + 1])
                    {
                        if g0 == G0::Jis0212 {
                            euc.push(0x8F);
                        }
                        euc.push(raw[i] | 0x80);
                        euc.push(raw[i + 1] | 0x80);
                        i += 2;
                    }
                    if euc.is_empty() {
                        out.push('\u{FFFD}');
                        i += 1;
                    } else {
                        out.push_str(&EUC_JP.decode_without_bom_handling(&euc).0);
                    }
                    continue;
                }
                (0x00..=0x7F, _) => {
                    let c = match (b, g0) {
                        (b'\\', G0::JisRoman) => '¥',
                        (b'~', G0::JisRoman) => '‾',
                        _ => b as char,
                    };
                    out.push(c);
                    // Delimiters return to the initial designations (PS3.5 6.1.2.5.3).
                    if matches!(b, b'\\' | b'^' | b'=' | b'\r' | b'\n' | b'\t' | 0x0C) {
                        g0 = g0_start;
                        g1 = g1_start;
                    }
                }
                _ => match g1 {
                    G1::Katakana if (0xA1..=0xDF).contains(&b) => {
                        out.push(char::from_u32(0xFF61 + (b - 0xA1) as u32).unwrap_or('\u{FFFD}'));
                    }
                    G1::Single(enc) => out.push_str(&enc.decode_without_bom_handling(&[b]).0),
                    G1::Double(enc) if i + 1 < raw.len() && raw[i + 1] >= 0xA1 => {
                        out.push_str(&enc.decode_without_bom_handling(&raw[i..i + 2]).0);
                        i += 1;
                    }
                    _ => out.push('\u{FFFD}'),
                },
            }
            i += 1;
        }
        out
    }
}

enum Designation {
    G0(G0),
    G1(G1),
}

/// Reads an escape sequence (after ESC): its length and what it designates.
fn escape(rest: &[u8]) -> (usize, Option<Designation>) {
    let table: &[(&[u8], Designation)] = &[
        (b"(B", Designation::G0(G0::Ascii)),
        (b"(J", Designation::G0(G0::JisRoman)),
        (b"$B", Designation::G0(G0::Jis0208)),
        (b"$@", Designation::G0(G0::Jis0208)),
        (b"$(D", Designation::G0(G0::Jis0212)),
        (b")I", Designation::G1(G1::Katakana)),
        (b"-A", Designation::G1(G1::Single(WINDOWS_1252))),
        (b"-B", Designation::G1(G1::Single(ISO_8859_2))),
        (b"-L", Designation::G1(G1::Single(ISO_8859_5))),
        (b"-F", Designation::G1(G1::Single(ISO_8859_7))),
        (b"-G", Designation::G1(G1::Single(ISO_8859_6))),
        (b"-H", Designation::G1(G1::Single(ISO_8859_8))),
        (b"-M", Designation::G1(G1::Single(WINDOWS_1254))),
        (b"-T", Designation::G1(G1::Single(WINDOWS_874))),
        (b"$)C", Designation::G1(G1::Double(EUC_KR))),
        (b"$)A", Designation::G1(G1::Double(GBK))),
    ];
    for (seq, d) in table {
        if rest.starts_with(seq) {
            let d = match d {
                Designation::G0(s) => Designation::G0(*s),
                Designation::G1(s) => Designation::G1(*s),
            };
            return (seq.len(), Some(d));
        }
    }
    // Unknown: skip intermediate bytes (0x20–0x2F) and the final byte.
    let len = rest
        .iter()
        .take_while(|b| (0x20..=0x2F).contains(*b))
        .count();
    ((len + 1).min(rest.len()), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(v: &str) -> Charsets {
        Charsets::from_value(v.as_bytes())
    }

    #[test]
    fn japanese_person_names_in_iso_2022() {
        // PS3.5 H.3.1: Yamada^Tarou=山田^太郎=やまだ^たろう
        let raw =
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
        assert_eq!(
            cs("\\ISO 2022 IR 87").decode(raw),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
        // H.3.2: half-width katakana in G1 with IR 13.
        let raw = b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J";
        assert_eq!(
            cs("ISO 2022 IR 13\\ISO 2022 IR 87").decode(raw),
            "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"
        );
    }

    #[test]
    fn utf8_shift_jis_and_latin() {
        assert_eq!(
            cs("ISO_IR 192").decode("山田^太郎 ".as_bytes()),
            "山田^太郎"
        );
        let (sjis, _, _) = SHIFT_JIS.encode("山田^太郎");
        assert_eq!(cs("ISO_IR 13").decode(&sjis), "山田^太郎");
        assert_eq!(cs("").decode(&sjis), "山田^太郎");
        assert_eq!(cs("ISO_IR 100").decode(b"Buc^J\xe9r\xf4me"), "Buc^Jérôme");
        let (cyrillic, _, _) = ISO_8859_5.encode("Люксембург");
        assert_eq!(cs("ISO_IR 144").decode(&cyrillic), "Люксембург");
    }
}
