//! What the DICOM tests share: pydicom's side of them (the imaging oracle,
//! which generates the studies) and a reading request's network — a GP at
//! the clinic sending DICOM files to a radiologist at the hospital, both
//! signed in on a running server.
//!
//! This file is the DICOM tests' shared setup: the oracle
//! (pydicom) that generates studies, and `Reading` (a GP at the clinic sending to a
//! radiologist at the hospital, both signed in; `send`/`sent`, `studies`,
//! `colleague`, `restart`). `tests/e2e/dicom_zip.rs` resumes a study ZIP;
//! `tests/e2e/file_range.rs` sends a 40 MiB multi-frame DICOM file and a PDF and
//! breaks the file's download off half-way with Python's `http.client`
//! (`clients/resume_download.py`), resumes it with `Range` + `If-Range` and checks
//! the joined SHA-256; mid-file and suffix ranges against the original's slices,
//! stale/weak `If-Range`, several ranges and garbage give 200 whole, past the end
//! 416, no key slot 404; the server's `/proc/PID/io` read count shows a range at
//! the start stops the decryption (a few MiB read) while a suffix range reads the
//! whole blob; the ETag survives a restart; each answer is one audit row.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CLINIC, HOSPITAL, Network, Server};

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/imaging/tests/py/oracle.py");

/// Runs Python (`RENKEI_PYTHON`, else `python3`; scripts/test-all installs
/// pydicom and numpy) with `args`, which must succeed: what it printed.
pub fn python(args: &[&str]) -> String {
    let python = std::env::var("RENKEI_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python).args(args).output().unwrap();
    let shown: Vec<&str> = args
        .iter()
        .map(|a| if a.contains('\n') { "<script>" } else { a })
        .collect();
    assert!(
        out.status.success(),
        "python {shown:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the imaging oracle (pydicom's side) and returns what it printed.
pub fn oracle(args: &[&str]) -> String {
    python(&[&[ORACLE], args].concat())
}

pub fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// A generated CT study of `slices` sections of `size`² pixels (one series,
/// new UIDs, the patient of [`PATIENT`]): its files, in instance order.
pub fn generated_study(dir: &Path, slices: usize, size: usize) -> Vec<PathBuf> {
    oracle(&[
        "study",
        dir.to_str().unwrap(),
        &slices.to_string(),
        &size.to_string(),
    ]);
    sorted_files(dir)
}

/// A file as it is sent: its name and bytes.
pub fn named(path: &Path) -> (String, Vec<u8>) {
    (
        path.file_name().unwrap().to_string_lossy().into_owned(),
        std::fs::read(path).unwrap(),
    )
}

/// The patient of the reading request, as the GP enters it (the generated
/// files say `0012345`, `Yamada^Tarou=山田^太郎=やまだ^たろう`).
pub const PATIENT: (&str, &str) = ("12345", "山田 太郎");

/// A reading request's network: [`HOSPITAL`] and [`CLINIC`], a GP at the
/// clinic who sends, a radiologist at the hospital who reads, both signed
/// in (their passwords changed after the first sign-in).
pub struct Reading {
    pub net: Network,
    pub server: Server,
    pub gp: String,
    pub gp_pw: String,
    pub gp_c: reqwest::Client,
    pub rad: String,
    pub rad_pw: String,
    pub rad_c: reqwest::Client,
}

impl Reading {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// As [`Reading::start`], the server started with `extra` options.
    pub async fn start_with(extra: &[&str]) -> Self {
        let net = Network::new().await;
        net.add_hospital_and_clinic();
        let (gp, gp_issued) = net.add_user("doctor", CLINIC, "琴平 健");
        let (rad, rad_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
        let server = net.serve(extra);
        let gp_c = net.ready_client(&server, &gp, &gp_issued).await;
        let rad_c = net.ready_client(&server, &rad, &rad_issued).await;
        Self {
            net,
            server,
            gp,
            gp_pw: format!("{gp_issued}-Mine-2026"),
            gp_c,
            rad,
            rad_pw: format!("{rad_issued}-Mine-2026"),
            rad_c,
        }
    }

    /// A signed-in doctor at the hospital who holds no key slot of anything
    /// sent so far.
    pub async fn colleague(&self, name: &str) -> reqwest::Client {
        let (id, issued) = self.net.add_user("doctor", HOSPITAL, name);
        self.net.ready_client(&self.server, &id, &issued).await
    }

    /// The GP sends `files` to the radiologist for `patient`, confirming the
    /// files named in `confirm` where the wrong-patient guard fires: the
    /// answer's status and JSON.
    pub async fn send(
        &self,
        patient: (&str, &str),
        files: &[(String, Vec<u8>)],
        confirm: &[&str],
    ) -> (StatusCode, Value) {
        let envelope = json!({
            "kind": "reading_request",
            "to": [{ "account": self.rad }],
            "subject": "胸部CT 読影依頼",
            "patient_id": patient.0,
            "patient_name": patient.1,
            "body": "ご高診をお願いします。",
            "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
            "attachments": files.iter().map(|(n, _)| json!({ "name": n })).collect::<Vec<_>>(),
            "confirm_patient_mismatch": confirm,
        });
        self.server
            .send_envelope(&self.gp_c, &envelope, files.to_vec())
            .await
    }

    /// As [`Reading::send`], for files the server must accept: the item's ID.
    pub async fn sent(
        &self,
        patient: (&str, &str),
        files: &[(String, Vec<u8>)],
        confirm: &[&str],
    ) -> String {
        let (status, body) = self.send(patient, files, confirm).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// The item's sealed intake record, as the radiologist reads it.
    pub async fn studies(&self, id: &str) -> Value {
        self.server
            .get_json(&self.rad_c, &format!("/api/v1/envelopes/{id}/studies"))
            .await
    }

    /// Stops the server, starts it again on the same data, and signs both
    /// doctors in anew.
    pub async fn restart(&mut self) {
        self.server.stop();
        self.server = self.net.serve(&[]);
        self.gp_c = self.server.sign_in(&self.gp, &self.gp_pw).await.unwrap();
        self.rad_c = self.server.sign_in(&self.rad, &self.rad_pw).await.unwrap();
    }
}
