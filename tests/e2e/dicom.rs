//! DICOM intake through the real server: a generated 300-slice CT study sent
//! over `POST /api/v1/envelopes`, its studies and series read back from the
//! sealed intake record, one slice rendered by the server and compared with
//! pydicom's decoding; a text file renamed `.dcm`, a truncated file and one
//! without a Study Instance UID each refused with its own message and nothing
//! stored; the wrong-patient guard firing for another patient's files, not for
//! the same patient written differently, and recorded once confirmed.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dicom_support::{PATIENT, Reading, generated_study, named, oracle, sorted_files};
use crate::harness::{Network, Server};

/// Every file under the blob folder (a refused item must leave none).
fn blob_files(net: &Network) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        1 + walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
    }
    walk(&net.data_dir().join("blobs"))
}

async fn sent_count(server: &Server, client: &reqwest::Client) -> usize {
    let list = server.get_json(client, "/api/v1/envelopes").await;
    list.as_array().unwrap().len()
}

pub(crate) fn png_gray(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[tokio::test]
async fn a_ct_study_is_checked_grouped_rendered_and_guarded_over_the_api() {
    let tmp = tempfile::tempdir().unwrap();
    let study_dir = tmp.path().join("study");
    let study: Vec<(String, Vec<u8>)> = generated_study(&study_dir, 300, 256)
        .iter()
        .map(|p| named(p))
        .collect();
    let other_dir = tmp.path().join("other");
    oracle(&[
        "study",
        other_dir.to_str().unwrap(),
        "2",
        "64",
        "99999",
        "Suzuki^Ichiro=鈴木^一郎",
    ]);

    let reading = Reading::start().await;
    let (net, server, gp_c, rad_c) = (&reading.net, &reading.server, &reading.gp_c, &reading.rad_c);

    // The same patient, entered without the zero padding and with a
    // full-width space: the guard stays quiet.
    let id = reading.sent(("12345", "山田　太郎"), &study, &[]).await;

    let item = server
        .get_json(rad_c, &format!("/api/v1/envelopes/{id}"))
        .await;
    let attachments = item["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 300, "the intake record is not listed");
    let record = reading.studies(&id).await;
    let studies = record["studies"].as_array().unwrap();
    assert_eq!(studies.len(), 1, "{record}");
    assert_eq!(studies[0]["study_date"], "2026-11-20");
    let series = studies[0]["series"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["modality"], "CT");
    assert_eq!(series[0]["body_part"], "CHEST");
    assert_eq!(series[0]["description"], "Chest 1.0mm");
    let instances = series[0]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 300);
    assert_eq!(instances[149]["instance_number"], 150);
    assert_eq!(
        record["files"][0]["dicom"]["patient_name"],
        "Yamada^Tarou=山田^太郎=やまだ^たろう"
    );
    assert_eq!(record["patient_check"]["mismatches"], json!([]));

    // Slice 150 rendered by the server with the lung preset, against pydicom.
    let index = instances[149]["attachment"].as_u64().unwrap();
    let r = rad_c
        .get(server.url(&format!(
            "/api/v1/envelopes/{id}/attachments/{index}/render?preset=lung"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-renkei-window"], "-600 1500");
    let (w, h, ours) = png_gray(&r.bytes().await.unwrap());
    assert_eq!((w, h), (256, 256));
    let slice_path = study_dir.join(&study[index as usize].0);
    let raw = tmp.path().join("pydicom.raw");
    oracle(&[
        "render",
        slice_path.to_str().unwrap(),
        "0",
        "-600",
        "1500",
        raw.to_str().unwrap(),
    ]);
    let theirs = std::fs::read(&raw).unwrap();
    let max = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert_eq!(ours.len(), theirs.len());
    assert!(max <= 1, "rendered slice differs from pydicom's by {max}");
    // A preset that does not exist, and a frame that does not.
    let r = rad_c
        .get(server.url(&format!(
            "/api/v1/envelopes/{id}/attachments/0/render?preset=liver"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = rad_c
        .get(server.url(&format!(
            "/api/v1/envelopes/{id}/attachments/0/render?frame=1"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "dicom_no_such_frame");
    // Only a reader renders: the sender's colleague elsewhere gets nothing.
    let other_c = reading.colleague("高松 花子").await;
    let r = other_c
        .get(server.url(&format!("/api/v1/envelopes/{id}/attachments/0/render")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Three bad files, each refused with its own message; nothing stored.
    let good = study[0].clone();
    let text = (
        "referral-notes.dcm".to_string(),
        "紹介状の本文です\n".repeat(40).into_bytes(),
    );
    let truncated = (
        "IM-truncated.dcm".to_string(),
        study[1].1[..study[1].1.len() / 2].to_vec(),
    );
    let no_study_path = tmp.path().join("no-study.dcm");
    oracle(&[
        "without",
        study_dir.join(&study[2].0).to_str().unwrap(),
        "StudyInstanceUID",
        no_study_path.to_str().unwrap(),
    ]);
    let no_study = named(&no_study_path);
    let blobs_before = blob_files(net);
    let sent_before = sent_count(server, gp_c).await;
    let mut messages = std::collections::HashSet::new();
    for (bad, code) in [
        (&text, "not_dicom"),
        (&truncated, "dicom_truncated"),
        (&no_study, "dicom_missing_study_instance_uid"),
    ] {
        let (status, body) = reading
            .send(PATIENT, &[good.clone(), bad.clone()], &[])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], code, "{body}");
        let en = body["message"].as_str().unwrap();
        let ja = body["message_ja"].as_str().unwrap();
        assert!(en.contains(&bad.0) && ja.contains(&bad.0), "{body}");
        messages.insert(en.to_string());
        messages.insert(ja.to_string());
    }
    assert_eq!(messages.len(), 6, "each refusal has its own text");
    assert_eq!(
        blob_files(net),
        blobs_before,
        "a refused item leaves no blob"
    );
    assert_eq!(sent_count(server, gp_c).await, sent_before);

    // Another patient's files: refused with the list, nothing stored …
    let others: Vec<(String, Vec<u8>)> = sorted_files(&other_dir)
        .iter()
        .map(|p| {
            let (n, b) = named(p);
            (format!("other-{n}"), b)
        })
        .collect();
    let mut mixed = vec![good.clone()];
    mixed.extend(others.iter().cloned());
    let (status, body) = reading.send(PATIENT, &mixed, &[]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "patient_mismatch");
    let en = body["message"].as_str().unwrap();
    assert!(
        en.contains(&others[0].0) && en.contains(&others[1].0),
        "{en}"
    );
    assert!(!en.contains(&format!("\"{}\"", good.0)), "{en}");
    assert!(
        body["message_ja"].as_str().unwrap().contains("患者ID"),
        "{body}"
    );
    assert_eq!(blob_files(net), blobs_before);
    assert_eq!(sent_count(server, gp_c).await, sent_before);
    // … confirming only one of them is not enough …
    let (status, _) = reading.send(PATIENT, &mixed, &[&others[0].0]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // … confirming both sends, and the confirmation is sealed with the item.
    let confirm: Vec<&str> = others.iter().map(|(n, _)| n.as_str()).collect();
    let confirmed_id = reading.sent(PATIENT, &mixed, &confirm).await;
    let record = reading.studies(&confirmed_id).await;
    assert_eq!(record["studies"].as_array().unwrap().len(), 2);
    assert_eq!(
        record["patient_check"]["confirmed_by"],
        reading.gp.replace('-', "")
    );
    let mismatched: Vec<&str> = record["patient_check"]["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["file"].as_str().unwrap())
        .collect();
    assert_eq!(mismatched, confirm);
    assert_eq!(
        record["patient_check"]["mismatches"][0]["result"]["id"],
        "differs"
    );
    // And in the audit trail, as a count (no names).
    let audit = net.audit_export();
    assert!(audit.contains("patient_mismatch_confirmed=2"), "{audit}");
    assert!(
        audit.contains(&format!("dicom attachment={index} frame=0")),
        "render audited"
    );
}
