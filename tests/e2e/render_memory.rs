//! Rendering streams: a 1 GiB multi-frame DICOM file (2,046 frames of
//! 512×512 16-bit MONOCHROME2, written here), sent once through
//! `POST /api/v1/envelopes` as a stream, then rendered by the radiologist
//! 20 times at once at 20 different frames, on a server allowed two renders
//! at a time (`[imaging] max_renders = 2`, the others waiting). Every answer
//! is 200 with exactly that frame's pixels through the window asked for, and
//! the server's peak resident memory (`VmHWM` in /proc/PID/status, upload
//! included) stays under 512 MiB — a render holds one frame, not the file
//! (it used to decrypt the whole file into memory: 1 GiB per render). The
//! first and the last frame rendered alone are timed and printed. Then one
//! byte of the blob flipped far past frame 0 makes frame 0 refused as
//! `tampered_attachment` and the file `damaged`.
//! `RENKEI_RENDER_CONCURRENCY=N` renders N at once instead, with the server's
//! own defaults (no `[imaging]` section: to measure an older server).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;

use crate::dicom_support::{PATIENT, Reading};
use crate::harness::Db;

const SIZE: usize = 512;
/// Just under 1 GiB of pixels: the most the in-memory renderer took.
const FRAMES: usize = 2046;
const WINDOW: imaging::Window = imaging::Window {
    center: 2048.0,
    width: 4096.0,
};

/// The stored value of pixel (x, y) of `frame`: a ramp shifted by row and
/// frame, the first row the frame's own number.
fn value(frame: usize, x: usize, y: usize) -> u16 {
    if y == 0 {
        (frame * 2 % 4096) as u16
    } else {
        (((y * 3 + frame) % 4096 + x) * 4 % 4096) as u16
    }
}

fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    let mut value = value.to_vec();
    if value.len() % 2 == 1 {
        value.push(if vr == b"UI" { 0 } else { b' ' });
    }
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&value);
}

/// Writes the 1 GiB file (explicit VR little endian, the patient of
/// [`PATIENT`] as the generated studies name it).
pub(crate) fn write_file(path: &Path) {
    const SOP_CLASS: &[u8] = b"1.2.840.10008.5.1.4.1.1.7.3";
    const INSTANCE: &[u8] = b"1.2.826.0.1.3680043.8.498.7701.1";
    let mut meta = Vec::new();
    element(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    element(&mut meta, 0x0002, 0x0002, b"UI", SOP_CLASS);
    element(&mut meta, 0x0002, 0x0003, b"UI", INSTANCE);
    element(&mut meta, 0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1");
    element(
        &mut meta,
        0x0002,
        0x0012,
        b"UI",
        b"1.2.826.0.1.3680043.8.498.1",
    );
    let mut head = vec![0u8; 128];
    head.extend_from_slice(b"DICM");
    element(
        &mut head,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    head.extend_from_slice(&meta);
    let us = |v: u16| v.to_le_bytes();
    element(&mut head, 0x0008, 0x0005, b"CS", b"ISO_IR 192");
    element(&mut head, 0x0008, 0x0016, b"UI", SOP_CLASS);
    element(&mut head, 0x0008, 0x0018, b"UI", INSTANCE);
    element(&mut head, 0x0008, 0x0020, b"DA", b"20261120");
    element(&mut head, 0x0008, 0x0060, b"CS", b"OT");
    element(
        &mut head,
        0x0010,
        0x0010,
        b"PN",
        "Yamada^Tarou=山田^太郎=やまだ^たろう".as_bytes(),
    );
    element(&mut head, 0x0010, 0x0020, b"LO", b"0012345");
    element(
        &mut head,
        0x0020,
        0x000D,
        b"UI",
        b"1.2.826.0.1.3680043.8.498.7701.2",
    );
    element(
        &mut head,
        0x0020,
        0x000E,
        b"UI",
        b"1.2.826.0.1.3680043.8.498.7701.3",
    );
    element(&mut head, 0x0020, 0x0013, b"IS", b"1");
    element(&mut head, 0x0028, 0x0002, b"US", &us(1));
    element(&mut head, 0x0028, 0x0004, b"CS", b"MONOCHROME2");
    element(
        &mut head,
        0x0028,
        0x0008,
        b"IS",
        FRAMES.to_string().as_bytes(),
    );
    element(&mut head, 0x0028, 0x0010, b"US", &us(SIZE as u16));
    element(&mut head, 0x0028, 0x0011, b"US", &us(SIZE as u16));
    element(&mut head, 0x0028, 0x0100, b"US", &us(16));
    element(&mut head, 0x0028, 0x0101, b"US", &us(12));
    element(&mut head, 0x0028, 0x0102, b"US", &us(11));
    element(&mut head, 0x0028, 0x0103, b"US", &us(0));
    head.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
    head.extend_from_slice(&((FRAMES * SIZE * SIZE * 2) as u32).to_le_bytes());
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    out.write_all(&head).unwrap();
    // Row y ≥ 1 of a frame is a slice of one ramp, starting (y × 3 + frame)
    // mod 4096 values in: 1 GiB written without computing each pixel.
    let ramp: Vec<u8> = (0..4096 + SIZE)
        .flat_map(|k| ((k * 4 % 4096) as u16).to_le_bytes())
        .collect();
    for frame in 0..FRAMES {
        let first: Vec<u8> = (0..SIZE)
            .flat_map(|x| value(frame, x, 0).to_le_bytes())
            .collect();
        out.write_all(&first).unwrap();
        for y in 1..SIZE {
            let start = (y * 3 + frame) % 4096;
            out.write_all(&ramp[start * 2..(start + SIZE) * 2]).unwrap();
        }
    }
    out.flush().unwrap();
}

/// The grey levels `frame` must render as through [`WINDOW`].
fn expected(frame: usize) -> Vec<u8> {
    (0..SIZE * SIZE)
        .map(|i| imaging::apply_window(f64::from(value(frame, i % SIZE, i / SIZE)), WINDOW))
        .collect()
}

fn grey(png_bytes: &[u8]) -> Vec<u8> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (SIZE as u32, SIZE as u32));
    buf.truncate(info.buffer_size());
    buf
}

/// Peak resident memory of process `pid` so far, in MiB.
pub(crate) fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test]
async fn twenty_concurrent_renders_of_a_1_gib_file_stay_under_512_mib() {
    let concurrency: Option<usize> = std::env::var("RENKEI_RENDER_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok());
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("renkei.toml");
    let limit = "[imaging]\nmax_renders = 2\nrender_wait_secs = 300\n";
    std::fs::write(&config, if concurrency.is_some() { "" } else { limit }).unwrap();
    let r = Reading::start_with(&["--config", config.to_str().unwrap()]).await;
    let file = tmp.path().join("multi-frame.dcm");
    write_file(&file);
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(len > 1023 << 20, "{len} bytes");

    // Sent once, streamed from disk.
    let name = "multi-frame.dcm";
    let spec = json!({
        "kind": "reading_request",
        "to": [{ "account": r.rad }],
        "subject": "マルチフレーム 読影依頼",
        "patient_id": PATIENT.0,
        "patient_name": PATIENT.1,
        "body": "ご高診をお願いします。",
        "consent": { "obtained_on": "2026-11-20", "method": "written", "obtained_by": "坂出 明美" },
        "attachments": [{ "name": name }],
    });
    let body = reqwest::Body::from(tokio::fs::File::open(&file).await.unwrap());
    let form = Form::new()
        .part(
            "envelope",
            Part::text(spec.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            Part::stream_with_length(body, len).file_name(name.to_string()),
        );
    let sent = Instant::now();
    let answer = r
        .gp_c
        .post(r.server.url("/api/v1/envelopes"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    eprintln!("sent 1 GiB in {:.1} s", sent.elapsed().as_secs_f64());
    std::fs::remove_file(&file).unwrap();
    let after_upload = peak_mib(r.server.pid());

    let render = |frame: usize| {
        let client = r.rad_c.clone();
        let url = r.server.url(&format!(
            "/api/v1/envelopes/{id}/attachments/0/render?frame={frame}&center={}&width={}",
            WINDOW.center, WINDOW.width
        ));
        async move {
            let started = Instant::now();
            let answer = client.get(url).send().await.unwrap();
            let status = answer.status();
            let frames = answer.headers().get("x-renkei-frames").cloned();
            let bytes = answer.bytes().await.unwrap();
            assert_eq!(status, StatusCode::OK, "frame {frame}: {bytes:?}");
            assert_eq!(frames.unwrap(), FRAMES.to_string().as_str());
            assert!(grey(&bytes) == expected(frame), "frame {frame} differs");
            started.elapsed()
        }
    };
    let first = render(0).await;
    let last = render(FRAMES - 1).await;
    eprintln!(
        "alone: first frame {:.2} s, last frame {:.2} s",
        first.as_secs_f64(),
        last.as_secs_f64()
    );

    let concurrency = concurrency.unwrap_or(20);
    let frames: Vec<usize> = (0..concurrency).map(|k| k * 101 % FRAMES).collect();
    let started = Instant::now();
    let tasks: Vec<_> = frames
        .iter()
        .map(|&frame| tokio::spawn(render(frame)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let peak = peak_mib(r.server.pid());
    eprintln!(
        "{concurrency} concurrent renders in {:.1} s; server peak {peak} MiB (after the upload {after_upload} MiB)",
        started.elapsed().as_secs_f64()
    );
    assert!(peak < 512, "server peak resident memory {peak} MiB");

    // One flipped byte three quarters into the blob, far past frame 0: the
    // whole file is checked before a frame is shown, so frame 0 is refused
    // (422, nothing of it) and the file is marked damaged.
    let db = Db::open(&r.net).await;
    let key = db
        .strings(&format!(
            "SELECT blob_key FROM attachments WHERE envelope_id = '{id}' AND idx = 0"
        ))
        .await[0]
        .clone()
        .unwrap();
    let blob = r.net.data_dir().join("blobs").join(key);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&blob)
        .unwrap();
    let at = f.metadata().unwrap().len() / 4 * 3;
    let mut byte = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[byte[0] ^ 1]).unwrap();
    drop(f);
    let answer = r
        .rad_c
        .get(r.server.url(&format!(
            "/api/v1/envelopes/{id}/attachments/0/render?frame=0"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refusal: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(refusal["error"], "tampered_attachment", "{refusal}");
    let item = r
        .server
        .get_json(&r.rad_c, &format!("/api/v1/envelopes/{id}"))
        .await;
    assert_eq!(item["attachments"][0]["integrity"], "damaged", "{item}");
}
