//! The PDF scanner's own cases: each refused or passed, whole and byte by byte.
#![allow(clippy::unwrap_used)]
use super::*;

fn verdict(bytes: &[u8]) -> Result<(), IntakeError> {
    // Whole, and one byte at a time: the same answer.
    let whole = check_pdf(bytes);
    let mut s = PdfScanner::default();
    let bytewise = bytes
        .iter()
        .try_for_each(|b| s.feed(&[*b]))
        .and_then(|()| s.finish());
    assert_eq!(whole, bytewise);
    whole
}

fn active(what: ActiveContent) -> Result<(), IntakeError> {
    Err(found(what))
}

#[test]
fn names_are_compared_after_their_escapes_are_decoded() {
    assert_eq!(
        verdict(b"<</S/J#61vaScript/JS(x)>>"),
        active(ActiveContent::JavaScript)
    );
    assert_eq!(verdict(b"<</S /Launch>>"), active(ActiveContent::Launch));
    assert_eq!(
        verdict(b"<</#41A 3 0 R>>"),
        active(ActiveContent::AdditionalActions)
    );
    assert_eq!(verdict(b"<</Java#zzScript>>"), Ok(()));
    assert_eq!(verdict(b"<</JavaScripts 1>>"), Ok(()));
}

#[test]
fn an_open_action_may_only_be_a_destination() {
    assert_eq!(verdict(b"<</OpenAction[3 0 R/Fit]>>"), Ok(()));
    assert_eq!(verdict(b"<</OpenAction [3 0 R /Fit]>>"), Ok(()));
    assert_eq!(verdict(b"<</OpenAction 98 0 R>>"), Ok(()));
    assert_eq!(
        verdict(b"<</OpenAction/Print>>"),
        active(ActiveContent::OpenAction)
    );
    assert_eq!(
        verdict(b"<</OpenAction<</S/URI>>>>"),
        active(ActiveContent::OpenAction)
    );
}

#[test]
fn stream_data_is_searched_for_long_names_only() {
    let image = b"1 0 obj<</Length 8>>stream\n/JS /AA \nendstream endobj";
    assert_eq!(verdict(image), Ok(()));
    let js = b"1 0 obj<</Length 8>>stream\r\n/JavaScript\nendstream endobj /JS";
    assert_eq!(verdict(js), active(ActiveContent::JavaScript));
    // `stream` ended by blanks: the line's end is passed, the data is data.
    let blank = b"1 0 obj<</Length 8>>stream  \r\n/JS /AA \nendstream endobj";
    assert_eq!(verdict(blank), Ok(()));
    // After `endstream`, the short names count again.
    let after = b"1 0 obj<</Length 1>>stream\nx\nendstream endobj 2 0 obj<</AA 1>>";
    assert_eq!(verdict(after), active(ActiveContent::AdditionalActions));
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn object_streams_are_inflated_and_searched_for_every_name() {
    let objects = deflate(b"5 0 <</S/JS/JS(app.alert(1))>>");
    let mut pdf = b"3 0 obj<</Type/ObjStm/N 1/First 4/Filter/FlateDecode>>stream\n".to_vec();
    pdf.extend_from_slice(&objects);
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    assert_eq!(verdict(&pdf), active(ActiveContent::JavaScript));
    // The same objects harmless: accepted.
    let mut clean = b"3 0 obj<</N 1/First 4/Filter/FlateDecode>>stream\n".to_vec();
    clean.extend_from_slice(&deflate(b"5 0 <</S/GoTo/D[1 0 R/Fit]>>"));
    clean.extend_from_slice(b"\nendstream\nendobj\n");
    assert_eq!(verdict(&clean), Ok(()));
    // An object stream that cannot be read is refused.
    let broken = b"3 0 obj<</N 1/First 4/Filter/FlateDecode>>stream\nnot zlib\nendstream";
    assert_eq!(verdict(broken).unwrap_err().code(), "pdf_uncheckable");
    let hex = b"3 0 obj<</N 1/First 4/Filter[/AHx/Fl]>>stream\n00\nendstream";
    assert_eq!(verdict(hex).unwrap_err().code(), "pdf_uncheckable");
    let by_ref = b"3 0 obj<</N 1/First 4/Filter 9 0 R>>stream\n00\nendstream";
    assert_eq!(verdict(by_ref).unwrap_err().code(), "pdf_uncheckable");
}

#[test]
fn content_streams_are_inflated_and_searched_for_long_names() {
    let mut pdf = b"4 0 obj<</Length 9/Filter/FlateDecode>>stream\n".to_vec();
    pdf.extend_from_slice(&deflate(b"q /EmbeddedFile Do Q /JS /AA"));
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    assert_eq!(verdict(&pdf), active(ActiveContent::EmbeddedFile));
    let mut fine = b"4 0 obj<</Filter/FlateDecode>>stream\n".to_vec();
    fine.extend_from_slice(&deflate(b"q /JS Do /AA gs Q"));
    fine.extend_from_slice(b"\nendstream\nendobj\n");
    assert_eq!(verdict(&fine), Ok(()));
}

#[test]
fn inflating_past_the_bound_is_refused() {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..=(INFLATE_PER_STREAM >> 20) {
        e.write_all(&spaces).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(
        bomb.len() < 16 << 20,
        "a small file that inflates past the bound"
    );
    let mut pdf = b"4 0 obj<</Filter/FlateDecode>>stream\n".to_vec();
    pdf.extend_from_slice(&bomb);
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    assert_eq!(check_pdf(&pdf).unwrap_err().code(), "pdf_too_large");
}
