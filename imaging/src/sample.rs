//! Small, valid DICOM instances built byte by byte, for tests, fuzz seeds and
//! benchmarks elsewhere in the workspace: the UIDs and tags intake requires,
//! a UTF-8 patient, and an arbitrary payload in a private OB element (no
//! pixel data, so no geometry to match).

fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    let mut value = value.to_vec();
    if value.len() % 2 == 1 {
        value.push(if matches!(vr, b"UI" | b"OB") { 0 } else { b' ' });
    }
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT" | b"UC" | b"UR") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&value);
}

/// One instance `number` of series `series` in study `study`.
pub fn instance(
    study: &str,
    series: &str,
    number: u32,
    patient_id: &str,
    patient_name: &str,
    payload: &[u8],
) -> Vec<u8> {
    let sop = format!("{series}.{number}");
    let mut meta = Vec::new();
    element(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    element(
        &mut meta,
        0x0002,
        0x0002,
        b"UI",
        b"1.2.840.10008.5.1.4.1.1.7",
    );
    element(&mut meta, 0x0002, 0x0003, b"UI", sop.as_bytes());
    element(&mut meta, 0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1");
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    element(
        &mut out,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    out.extend_from_slice(&meta);
    element(&mut out, 0x0008, 0x0005, b"CS", b"ISO_IR 192");
    element(
        &mut out,
        0x0008,
        0x0016,
        b"UI",
        b"1.2.840.10008.5.1.4.1.1.7",
    );
    element(&mut out, 0x0008, 0x0018, b"UI", sop.as_bytes());
    element(&mut out, 0x0008, 0x0060, b"CS", b"OT");
    element(&mut out, 0x0009, 0x0010, b"LO", b"RENKEI TEST");
    element(&mut out, 0x0009, 0x1010, b"OB", payload);
    element(&mut out, 0x0010, 0x0010, b"PN", patient_name.as_bytes());
    element(&mut out, 0x0010, 0x0020, b"LO", patient_id.as_bytes());
    element(&mut out, 0x0020, 0x000D, b"UI", study.as_bytes());
    element(&mut out, 0x0020, 0x000E, b"UI", series.as_bytes());
    element(
        &mut out,
        0x0020,
        0x0013,
        b"IS",
        number.to_string().as_bytes(),
    );
    out
}

/// An instance carrying `payload`, with no patient (the guard has nothing to compare).
pub fn with_payload(payload: &[u8]) -> Vec<u8> {
    instance("2.25.1001", "2.25.1001.1", 1, "", "", payload)
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_pass_intake() {
        let bytes = super::instance("2.25.7", "2.25.7.1", 3, "P-1", "山田^太郎", b"abc");
        match crate::check_bytes("s.dcm", "application/dicom", &bytes) {
            Ok(crate::Checked::Dicom(m)) => {
                assert_eq!(m.patient_name, "山田^太郎");
                assert_eq!(m.instance_number, Some(3));
                assert_eq!(m.sop_instance_uid, "2.25.7.1.3");
            }
            other => panic!("{other:?}"),
        }
        assert!(crate::check_bytes("s.dcm", "", &super::with_payload(&[7; 9])).is_ok());
    }
}
