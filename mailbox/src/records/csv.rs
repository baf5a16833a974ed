//! The few lines of CSV the records need (RFC 4180 quoting), with a UTF-8 byte
//! order mark so spreadsheet programs in Japan read the Japanese correctly.
//!
//! Cells that a spreadsheet would evaluate (starting with `=`, `+`, `-` or `@`
//! and not a number) are quoted with a leading `'`.

pub const BOM: &str = "\u{feff}";

/// One CSV line (CRLF-terminated) of `fields`.
pub fn line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let f = f.as_ref();
        // A leading =, +, - or @ would make a spreadsheet evaluate the cell.
        let risky = f.starts_with(['=', '+', '-', '@']) && f.parse::<f64>().is_err();
        if risky || f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            if risky {
                out.push('\'');
            }
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(
            line(&["a", "b,c", "d\"e", "", "-5"]),
            "a,\"b,c\",\"d\"\"e\",,-5\r\n"
        );
        assert_eq!(line(&["=1+1"]), "\"'=1+1\"\r\n");
    }
}
