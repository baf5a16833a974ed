//! `bench/dicom`: ingest and rendering of a CT study through the postroom, the
//! same service the API calls. Run through `bench/dicom/run.sh`, which makes the
//! study, times `cp` of the same files and DCMTK's `dcmdump`.
//!
//! - ingest: one item carrying every file of STUDY_DIR, each streamed from disk
//!   through the attachment policy and DICOM intake into its sealed blob
//!   (fsynced), then the envelope, the intake record and the rows committed on
//!   SQLite — `Postroom::send` end to end. Wall time, and the process's peak
//!   resident memory (VmHWM) afterwards.
//! - render: `Postroom::render_slice` (open the envelope with the reader's key,
//!   decrypt one instance, decode, window, PNG) for N slices, and
//!   `imaging::render_png` alone on the same files in memory.
//!
//! Usage: bench_dicom WORK_DIR STUDY_DIR [RENDER_SLICES]
//! Prints human-readable lines and `RESULT key=value` lines for run.sh.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use mailbox::postroom::{
    BlobStore, Consent, ConsentMethod, Outgoing, OutgoingAttachment, Postroom, Recipient,
};
use mailbox::store::StoreTarget;
use mailbox::{
    AuthPolicy, CurrentSession, Directory, Facility, FacilityCode, NetworkPolicy, NewAccount,
    Password, Role,
};
use renkei_crypto::{BlindIndexKey, LockParams};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";

/// A file opened on its first read, as an upload's parts arrive one after
/// the other (thousands of open files would exhaust the descriptors).
struct LazyFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl std::io::Read for LazyFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.file.is_none() {
            self.file = Some(std::fs::File::open(&self.path)?);
        }
        match &mut self.file {
            Some(f) => f.read(buf),
            None => Ok(0),
        }
    }
}

async fn person(
    dir: &Directory,
    role: Role,
    facility: &str,
    name: &str,
) -> Res<(CurrentSession, mailbox::Account)> {
    let pw = Password::new(format!("Bench-{name}-2026!pass"));
    let a = dir
        .add_account_with_password(
            NewAccount {
                role,
                facility: Some(FacilityCode::parse(facility)?),
                name: name.into(),
                email: None,
            },
            &pw,
            false,
        )
        .await?;
    let (_, session) = dir.sign_in(a.id.as_str(), &pw, None).await?;
    Ok((session, a))
}

#[tokio::main]
async fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_dicom WORK_DIR STUDY_DIR [RENDER_SLICES (0: ingest only)]";
    let work = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let study = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let render_n: usize = args.next().map_or(Ok(100), |s| s.parse())?;

    let store = mailbox::store::open(&StoreTarget::Sqlite(work.join("renkei.db"))).await?;
    let policy = AuthPolicy {
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    let audit = mailbox::records::audit::Audit::new(store.clone());
    let dir = Arc::new(Directory::assemble(
        store.clone(),
        audit.clone(),
        mailbox::clock::system(),
        policy,
        NetworkPolicy::default(),
    ));
    for code in [HOSPITAL, CLINIC] {
        dir.add_facility(Facility {
            code: FacilityCode::parse(code)?,
            name: format!("施設 {code}"),
            city: String::new(),
            address: String::new(),
            phone: String::new(),
            departments: vec![],
            publish_details: false,
            public_note: String::new(),
            active_from: NaiveDate::from_ymd_opt(2026, 4, 1).ok_or("date")?,
            active_until: None,
            approval_ref: None,
        })
        .await?;
    }
    let (sender, _) = person(&dir, Role::Doctor, CLINIC, "gp").await?;
    let (reader, reader_account) = person(&dir, Role::Doctor, HOSPITAL, "rad").await?;
    let post = Postroom::new(
        dir.clone(),
        store,
        audit,
        BlobStore::new(work.join("blobs")),
        Arc::new(BlindIndexKey::generate()?),
    );

    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&study)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut attachments = Vec::with_capacity(files.len());
    for f in &files {
        attachments.push(OutgoingAttachment {
            name: f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            media_type: "application/dicom".into(),
            source: Box::new(LazyFile {
                path: f.clone(),
                file: None,
            }),
        });
    }
    let rss_before = support::peak_rss_mib();
    let start = Instant::now();
    let id = post
        .send(
            &sender,
            Outgoing {
                kind: "reading_request".into(),
                to: vec![Recipient::Person(reader_account.id.clone())],
                subject: "胸部CT 読影依頼".into(),
                patient_id: "12345".into(),
                patient_name: "山田 太郎".into(),
                body: "ご高診をお願いします。".into(),
                consent: Some(Consent {
                    obtained_on: chrono::Local::now().date_naive(),
                    method: ConsentMethod::Written,
                    obtained_by: "坂出 明美".into(),
                    given_by: mailbox::postroom::ConsentGiver::Patient,
                }),
            },
            attachments,
        )
        .await?;
    let ingest = start.elapsed().as_secs_f64();
    let rss = support::peak_rss_mib();
    println!(
        "ingest: {} files, {:.0} MiB in {ingest:.2} s ({:.0} MiB/s), peak RSS {rss:.0} MiB (before: {rss_before:.0})",
        files.len(),
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / ingest
    );
    println!("RESULT ingest_secs={ingest:.3}");
    println!("RESULT ingest_peak_rss_mib={rss:.0}");
    println!("RESULT files={}", files.len());
    if render_n == 0 {
        // An ingest-only round of bench/dicom/run.sh.
        return Ok(());
    }

    let record = post
        .intake_record(&reader, &id)
        .await?
        .ok_or("no intake record")?;
    let images: usize = record.studies.iter().map(|s| s.image_count()).sum();
    println!(
        "intake record: {} studies, {images} images",
        record.studies.len()
    );

    // Rendering: the middle slices, from the sealed item and from memory.
    let step = (files.len() / render_n.max(1)).max(1);
    let picks: Vec<usize> = (0..files.len()).step_by(step).take(render_n).collect();
    let mut sealed_ms = Vec::new();
    for &i in &picks {
        let t = Instant::now();
        let r = post
            .render_slice(
                &reader,
                &id,
                i,
                0,
                imaging::WindowChoice::Preset(imaging::Preset::Lung),
            )
            .await?;
        sealed_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if r.width != 512 {
            println!("slice {i} is {}x{}", r.width, r.height);
        }
    }
    let mut plain_ms = Vec::new();
    for &i in &picks {
        let data = std::fs::read(&files[i])?;
        let t = Instant::now();
        imaging::render_png(
            &data,
            0,
            imaging::WindowChoice::Preset(imaging::Preset::Lung),
        )?;
        plain_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let p95 = |v: &Vec<f64>| v[(v.len() * 95 / 100).min(v.len() - 1)];
    let (sm, pm) = (median(&mut sealed_ms), median(&mut plain_ms));
    println!(
        "render 512x512 ({} slices): from the sealed item median {sm:.1} ms (p95 {:.1}); decode+window+PNG alone median {pm:.1} ms (p95 {:.1})",
        picks.len(),
        p95(&sealed_ms),
        p95(&plain_ms)
    );
    println!("RESULT render_sealed_median_ms={sm:.2}");
    println!("RESULT render_plain_median_ms={pm:.2}");
    Ok(())
}
