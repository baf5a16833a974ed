//! Tampering, opening many at once, and archives of a study or series.

use super::*;

#[tokio::test]
async fn tampering_gives_distinct_statuses() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let rad_s = n.sign_in(&rad).await;
    let files = [
        ("a.dcm", dicom(&[1u8; 70_000])),
        ("b.dcm", dicom(&[2u8; 50_000])),
    ];
    let id = n
        .send(
            &gp_s,
            vec![Recipient::Person(rad.id.clone())],
            "original",
            &files,
        )
        .await;
    let good = n.t.store.envelope(&id).await.unwrap().unwrap().body;

    // A flipped byte in the encrypted body.
    let mut body = good.clone();
    let last = body.len() - 20;
    body[last] ^= 0x01;
    n.t.store.overwrite_body(&id, &body).await.unwrap();
    assert!(matches!(
        n.post.open(&rad_s, &id).await,
        Err(Error::Tampered("body"))
    ));

    // A flipped byte inside the reader's key slot (the first packet: a PKESK whose
    // new-format header gives its length in the second byte).
    let mut body = good.clone();
    assert_eq!(body[0], 0xC1, "starts with a new-format PKESK packet");
    let first_len = 2 + body[1] as usize;
    body[first_len - 3] ^= 0x01;
    n.t.store.overwrite_body(&id, &body).await.unwrap();
    assert!(
        matches!(
            n.post.open(&rad_s, &id).await,
            Err(Error::Tampered("key_slot"))
        ),
        "{:?}",
        n.post.open(&rad_s, &id).await.err()
    );
    n.t.store.overwrite_body(&id, &good).await.unwrap();
    assert_eq!(
        n.post.open(&rad_s, &id).await.unwrap().signature,
        SignatureStatus::Valid
    );

    // A flipped byte in an attachment blob.
    let path0 = n.post.blobs().file_path(&format!("{id}/0")).unwrap();
    let path1 = n.post.blobs().file_path(&format!("{id}/1")).unwrap();
    let blob0 = std::fs::read(&path0).unwrap();
    let mut bad = blob0.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x80;
    std::fs::write(&path0, &bad).unwrap();
    assert!(matches!(
        n.attachment(&rad_s, &id, 0).await,
        Err(Error::Tampered("attachment"))
    ));
    // Swapped blobs: each is a fine OpenPGP message, but not the one the manifest signed.
    let blob1 = std::fs::read(&path1).unwrap();
    std::fs::write(&path0, &blob1).unwrap();
    std::fs::write(&path1, &blob0).unwrap();
    assert!(matches!(
        n.attachment(&rad_s, &id, 0).await,
        Err(Error::Tampered("attachment"))
    ));
    assert!(matches!(
        n.attachment(&rad_s, &id, 1).await,
        Err(Error::Tampered("attachment"))
    ));
    // Found damaged, each stays damaged: with the blobs whole again, both are
    // still refused (the blob is not read; see the test below).
    std::fs::write(&path0, &blob0).unwrap();
    std::fs::write(&path1, &blob1).unwrap();
    for index in [0, 1] {
        assert!(
            matches!(
                n.attachment(&rad_s, &id, index).await,
                Err(Error::Tampered("attachment"))
            ),
            "{index}"
        );
    }
}

/// Integrity states of an item's attachments, as its reader sees them.
async fn states(n: &Net, s: &CurrentSession, id: &str) -> Vec<(usize, AttachmentIntegrity)> {
    n.post.attachment_integrity(s, id).await.unwrap()
}

/// Waits (up to two seconds) until the states are `want`: a verified
/// state is written on a task of its own, a moment after the read.
async fn settled(n: &Net, s: &CurrentSession, id: &str, want: &[(usize, AttachmentIntegrity)]) {
    for _ in 0..200 {
        if states(n, s, id).await == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(states(n, s, id).await, want);
}

/// The `attachment_damaged` entries of the trail: (actor, item, detail).
async fn damage_entries(n: &Net) -> Vec<(String, String, String)> {
    n.audit
        .all_entries(0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "attachment_damaged")
        .map(|e| {
            (
                e.actor.unwrap_or_default(),
                e.item.unwrap_or_default(),
                e.detail.unwrap_or_default(),
            )
        })
        .collect()
}

/// A read that finds an attachment changed, cut short or gone marks it
/// damaged, once, with one audit entry naming its index; from then on every
/// read of it is refused before its blob is read, even once the blob is whole
/// again, and a whole read of a sound one marks it verified. The state shows
/// to the item's readers only.
#[tokio::test]
async fn a_damaged_attachment_is_marked_once_and_refused_from_then_on() {
    use AttachmentIntegrity::{Damaged, Unknown, Verified};
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let other = n.person(Role::Doctor, Some(HOSPITAL), "other").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let rad_s = n.sign_in(&rad).await;
    let files = [
        ("a.dcm", dicom(&[1u8; 30_000])),
        ("b.dcm", dicom(&[2u8; 30_000])),
        ("c.dcm", dicom(&[3u8; 30_000])),
        ("d.dcm", dicom(&[4u8; 30_000])),
    ];
    let id = n
        .send(&gp_s, vec![Recipient::Person(rad.id.clone())], "", &files)
        .await;
    let all_unknown = states(&n, &rad_s, &id).await;
    assert_eq!(all_unknown.len(), 5, "four files and the intake record");
    assert!(
        all_unknown.iter().all(|(_, s)| *s == Unknown),
        "{all_unknown:?}"
    );
    let other_s = n.sign_in(&other).await;
    assert!(matches!(
        n.post.attachment_integrity(&other_s, &id).await,
        Err(Error::NotFound(_))
    ));

    // A sound file read whole: verified, written once.
    assert!(n.attachment(&rad_s, &id, 0).await.unwrap() == files[0].1);
    let mut want: Vec<_> = (0..5).map(|i| (i, Unknown)).collect();
    want[0].1 = Verified;
    settled(&n, &rad_s, &id, &want).await;
    let first = n.t.store.attachment_integrity_of(&id, 0).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(n.attachment(&rad_s, &id, 0).await.is_ok());
    let again = n.t.store.attachment_integrity_of(&id, 0).await.unwrap();
    assert_eq!(first, again, "verified once, not on every read");
    assert!(first.unwrap().integrity_at.is_some());

    // A flipped byte: refused, marked damaged, one audit entry by the reader.
    let blob = |i: usize| n.post.blobs().file_path(&format!("{id}/{i}")).unwrap();
    let good1 = std::fs::read(blob(1)).unwrap();
    let mut bad = good1.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    std::fs::write(blob(1), &bad).unwrap();
    assert!(matches!(
        n.attachment(&rad_s, &id, 1).await,
        Err(Error::Tampered("attachment"))
    ));
    assert_eq!(states(&n, &rad_s, &id).await[1], (1, Damaged));
    let one = vec![(
        rad.id.as_str().to_string(),
        id.clone(),
        "attachment=1".to_string(),
    )];
    assert_eq!(damage_entries(&n).await, one);

    // Whole again, yet refused without reading: no second entry, no way back.
    std::fs::write(blob(1), &good1).unwrap();
    assert!(matches!(
        n.attachment(&rad_s, &id, 1).await,
        Err(Error::Tampered("attachment"))
    ));
    assert!(matches!(
        n.post.attachment(&rad_s, &id, 1).await,
        Err(Error::Tampered("attachment"))
    ));
    assert_eq!(damage_entries(&n).await, one, "marked once");
    let now = mailbox::clock::now_millis();
    assert!(
        !n.t.store
            .set_attachment_integrity(&id, 1, Verified, now)
            .await
            .unwrap(),
        "damaged never goes back to verified"
    );
    assert_eq!(states(&n, &rad_s, &id).await[1], (1, Damaged));

    // A blob cut short, found by the check a whole download gets before it
    // answers: refused, and marked at once.
    let good2 = std::fs::read(blob(2)).unwrap();
    std::fs::write(blob(2), &good2[..good2.len() - 100]).unwrap();
    let cut = n.post.attachment(&rad_s, &id, 2).await.unwrap();
    assert!(matches!(
        cut.checked_whole().await,
        Err(Error::Tampered("attachment"))
    ));
    assert_eq!(states(&n, &rad_s, &id).await[2], (2, Damaged));

    // A blob gone (its key pointing at nothing).
    std::fs::remove_file(blob(3)).unwrap();
    assert!(matches!(
        n.post.attachment(&rad_s, &id, 3).await,
        Err(Error::Tampered("attachment"))
    ));
    assert_eq!(states(&n, &rad_s, &id).await[3], (3, Damaged));
    let mut details: Vec<String> = damage_entries(&n).await.into_iter().map(|e| e.2).collect();
    details.sort();
    assert_eq!(details, ["attachment=1", "attachment=2", "attachment=3"]);

    // An archive holding a damaged file is refused before any byte; the
    // sound file still downloads.
    assert!(matches!(
        n.post.archive(&rad_s, &id, ArchiveScope::Item).await,
        Err(Error::Tampered("attachment"))
    ));
    let sound = n.post.attachment(&rad_s, &id, 0).await.unwrap();
    assert_eq!(sound.info.index, 0);
    let mut out = Vec::new();
    sound.stream(&mut out).unwrap();
    assert!(out == files[0].1);
    // The intake record was read whole by the archive.
    settled(
        &n,
        &rad_s,
        &id,
        &[
            (0, Verified),
            (1, Damaged),
            (2, Damaged),
            (3, Damaged),
            (4, Verified),
        ],
    )
    .await;
}

/// Opening many at once (a mail client listing a folder) gives, item by item,
/// what opening each alone gives: the same content and signature status, a
/// tampered body refused without failing the others, an item the reader holds
/// no slot of `NotFound`, and nothing marked seen.
#[tokio::test]
async fn opening_many_answers_each_item_as_opening_it_alone() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let colleague = n.person(Role::Doctor, Some(HOSPITAL), "colleague").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let rad_s = n.sign_in(&rad).await;
    let mut mine = Vec::new();
    for i in 0..7 {
        let body = format!("所見をお願いします {i}");
        let files = [("a.dcm", dicom(&vec![i as u8; 1000 + i]))];
        mine.push(
            n.send(
                &gp_s,
                vec![Recipient::Person(rad.id.clone())],
                &body,
                &files,
            )
            .await,
        );
    }
    let theirs = n
        .send(
            &gp_s,
            vec![Recipient::Person(colleague.id.clone())],
            "別の方へ",
            &[],
        )
        .await;
    let tampered = mine[3].clone();
    let mut body = n.t.store.envelope(&tampered).await.unwrap().unwrap().body;
    let last = body.len() - 20;
    body[last] ^= 0x01;
    n.t.store.overwrite_body(&tampered, &body).await.unwrap();

    let mut ids = mine.clone();
    ids.push(theirs.clone());
    ids.push("01NOSUCHITEM000000000000".into());
    let many = n.post.peek_many(&rad_s, &ids).await.unwrap();
    assert_eq!(many.len(), ids.len(), "one answer per ID");
    for (id, got) in &many {
        let alone = n.post.peek(&rad_s, id).await;
        match (got, alone) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.body, b.body);
                assert_eq!(a.subject, b.subject);
                assert_eq!(a.signature, b.signature);
                assert_eq!(a.signature, SignatureStatus::Valid);
                assert_eq!(a.attachments.len(), 1);
                assert_eq!(a.attachments[0].size, b.attachments[0].size);
            }
            (Err(Error::Tampered(x)), Err(Error::Tampered(y))) => {
                assert_eq!(*id, tampered);
                assert_eq!(*x, y);
            }
            (Err(Error::NotFound(_)), Err(Error::NotFound(_))) => {
                assert!(*id == theirs || id.starts_with("01NOSUCH"), "{id}");
            }
            (a, b) => panic!("{id}: together {:?}, alone {:?}", a.as_ref().err(), b.err()),
        }
    }
    let ok = many.iter().filter(|(_, r)| r.is_ok()).count();
    assert_eq!(ok, 6, "the six untouched items open");
    let deliverer = mailbox::delivery::Deliverer::new(
        n.t.store.clone(),
        mailbox::delivery::DeliveryPolicy::default(),
    );
    while deliverer.deliver_due().await.unwrap() > 0 {}
    n.post.peek_many(&rad_s, &mine).await.unwrap();
    let inbox =
        n.t.store
            .mailbox(&format!("account:{}", rad.id.as_str()), "inbox", false)
            .await
            .unwrap();
    assert_eq!(inbox.len(), 7, "delivered");
    assert!(inbox.iter().all(|e| !e.seen), "peeking marks nothing seen");
}

#[tokio::test]
async fn an_archive_holds_the_files_of_its_study_or_series_and_streams_them_checked() {
    let n = net().await;
    let rad = n.person(Role::Doctor, Some(HOSPITAL), "rad").await;
    let other = n.person(Role::Doctor, Some(HOSPITAL), "other").await;
    let gp = n.person(Role::Doctor, Some(CLINIC), "gp").await;
    let gp_s = n.sign_in(&gp).await;
    let slice = |series: &str, k: u32| {
        imaging::sample::instance("2.25.9", series, k, "", "", &[k as u8; 5000])
    };
    let files = [
        ("a1.dcm", slice("2.25.9.1", 1)),
        ("b1.dcm", slice("2.25.9.2", 1)),
        ("a2.dcm", slice("2.25.9.1", 2)),
    ];
    let id = n
        .send(&gp_s, vec![Recipient::Person(rad.id.clone())], "", &files)
        .await;
    let rad_s = n.sign_in(&rad).await;

    let all = n
        .post
        .archive(&rad_s, &id, ArchiveScope::Item)
        .await
        .unwrap();
    let names: Vec<&str> = all.files.iter().map(|f| f.info.name.as_str()).collect();
    assert_eq!(
        names,
        ["a1.dcm", "b1.dcm", "a2.dcm"],
        "not the intake record"
    );
    assert_eq!(all.record.as_ref().unwrap().studies[0].series.len(), 2);
    let a = all.files[0].place.unwrap();
    let b = all.files[1].place.unwrap();
    assert_eq!(all.files[2].place, Some(a));
    assert_ne!(all.files[1].place, Some(a));
    for (i, (_, bytes)) in files.iter().enumerate() {
        let mut out = Vec::new();
        all.stream(i, &mut out).unwrap();
        assert!(out == *bytes, "{i} streams byte for byte");
    }

    let series = n
        .post
        .archive(
            &rad_s,
            &id,
            ArchiveScope::Series {
                study: a.0,
                series: a.1,
            },
        )
        .await
        .unwrap();
    let names: Vec<&str> = series.files.iter().map(|f| f.info.name.as_str()).collect();
    assert_eq!(names, ["a1.dcm", "a2.dcm"]);
    let study = n
        .post
        .archive(&rad_s, &id, ArchiveScope::Study(0))
        .await
        .unwrap();
    assert_eq!(study.files.len(), 3);
    assert!(matches!(
        n.post.archive(&rad_s, &id, ArchiveScope::Study(1)).await,
        Err(Error::NotFound("study"))
    ));
    assert!(matches!(
        n.post
            .archive(
                &rad_s,
                &id,
                ArchiveScope::Series {
                    study: 0,
                    series: 2
                }
            )
            .await,
        Err(Error::NotFound("series"))
    ));
    let other_s = n.sign_in(&other).await;
    assert!(matches!(
        n.post.archive(&other_s, &id, ArchiveScope::Item).await,
        Err(Error::NotFound(_))
    ));

    // A changed blob stops the stream with `Tampered`.
    let path = n.post.blobs().file_path(&format!("{id}/2")).unwrap();
    let mut blob = std::fs::read(&path).unwrap();
    let mid = blob.len() / 2;
    blob[mid] ^= 0x40;
    std::fs::write(&path, &blob).unwrap();
    assert!(matches!(
        all.stream(2, Vec::new()),
        Err(Error::Tampered("attachment"))
    ));
    // The stream's failure marks the file damaged, with its audit entry (on a
    // task of its own), and an archive holding it is then refused before any byte.
    let mut marked = false;
    for _ in 0..200 {
        if states(&n, &rad_s, &id).await[2] == (2, AttachmentIntegrity::Damaged)
            && !damage_entries(&n).await.is_empty()
        {
            marked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(marked, "{:?}", states(&n, &rad_s, &id).await);
    assert_eq!(
        damage_entries(&n).await,
        [(
            rad.id.as_str().to_string(),
            id.clone(),
            "attachment=2".to_string()
        )]
    );
    assert!(matches!(
        n.post.archive(&rad_s, &id, ArchiveScope::Item).await,
        Err(Error::Tampered("attachment"))
    ));
    assert!(
        n.post
            .archive(
                &rad_s,
                &id,
                ArchiveScope::Series {
                    study: b.0,
                    series: b.1
                }
            )
            .await
            .is_ok(),
        "a series without the damaged file"
    );
}
