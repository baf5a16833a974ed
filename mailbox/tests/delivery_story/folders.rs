//! Folders as mail clients and the folder pages see them.

use super::*;

#[tokio::test]
async fn mail_client_folders_keep_stable_growing_uids_and_archive_instead_of_deleting() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    let col = n.person(Role::Doctor, HOSPITAL, "col").await;
    let clerk = n.person(Role::Clerk, HOSPITAL, "clerk").await;
    let folders = Folders::new(n.post.clone(), n.t.store.clone());
    let d = deliverer(&n, Duration::from_secs(30));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            n.send(&gp, vec![Recipient::Person(rad.account.id.clone())])
                .await,
        );
        d.deliver_due().await.unwrap();
    }
    let uids = |l: &FolderListing| -> Vec<(i64, String)> {
        l.messages
            .iter()
            .map(|m| (m.uid, m.envelope_id.clone()))
            .collect()
    };
    let inbox = folders.listing(&rad, Folder::Inbox).await.unwrap();
    let first = uids(&inbox);
    assert_eq!(
        first.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        ids,
        "arrival order"
    );
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(inbox.uid_next > first[2].0);
    assert_eq!(
        uids(&folders.listing(&rad, Folder::Inbox).await.unwrap()),
        first,
        "stable"
    );

    // Reading without marking, then marking.
    folders.open(&rad, &ids[0], false).await.unwrap();
    let l = folders.listing(&rad, Folder::Inbox).await.unwrap();
    assert!(!l.messages[0].seen, "a peek marks nothing");
    folders
        .set_flags(&rad, Folder::Inbox, &ids[0], Some(true), Some(true))
        .await
        .unwrap();
    let l = folders.listing(&rad, Folder::Inbox).await.unwrap();
    assert!(l.messages[0].seen && l.messages[0].flagged);
    assert!(
        n.post.mailbox(&rad, "inbox").await.unwrap()[2].seen,
        "the web sees it too"
    );

    // EXPUNGE archives; coming back gives a new, higher UID.
    folders.expunge(&rad, Folder::Inbox, &ids[1]).await.unwrap();
    let inbox = uids(&folders.listing(&rad, Folder::Inbox).await.unwrap());
    assert_eq!(inbox, vec![first[0].clone(), first[2].clone()]);
    let archive = uids(&folders.listing(&rad, Folder::Archive).await.unwrap());
    assert_eq!(archive.len(), 1);
    assert!(archive[0].0 > first[2].0);
    folders
        .expunge(&rad, Folder::Archive, &ids[1])
        .await
        .unwrap();
    assert!(
        folders
            .listing(&rad, Folder::Archive)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    let inbox = uids(&folders.listing(&rad, Folder::Inbox).await.unwrap());
    assert_eq!(inbox.len(), 3);
    assert_eq!(inbox[2].1, ids[1]);
    assert!(
        inbox[2].0 > archive[0].0,
        "back in INBOX above everything seen"
    );
    assert!(
        n.post.open(&rad, &ids[1]).await.is_ok(),
        "nothing destroyed"
    );

    // A colleague sees none of it; a doctor has no facility folder.
    assert!(
        folders
            .listing(&col, Folder::Inbox)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(folders.listing(&col, Folder::Facility).await.is_err());
    assert!(folders.open(&col, &ids[0], false).await.is_err());

    // The clerk's facility folder holds every item of the hospital, read-only.
    assert_eq!(
        folders.available(&clerk).unwrap(),
        vec![
            Folder::Inbox,
            Folder::Sent,
            Folder::Archive,
            Folder::Facility
        ]
    );
    let facility = folders.listing(&clerk, Folder::Facility).await.unwrap();
    assert_eq!(facility.messages.len(), 3);
    assert!(folders.open(&clerk, &ids[2], false).await.is_ok());
    assert!(matches!(
        folders
            .set_flags(&clerk, Folder::Facility, &ids[2], Some(true), None)
            .await,
        Err(mailbox::Error::Forbidden)
    ));
    assert!(matches!(
        folders.expunge(&clerk, Folder::Facility, &ids[2]).await,
        Err(mailbox::Error::Forbidden)
    ));
    // The IMAP names of the folders are transport's (transport/src/imap/names.rs).
}

#[tokio::test]
async fn an_item_deleted_by_a_records_run_vanishes_for_qresync_clients() {
    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    let folders = Folders::new(n.post.clone(), n.t.store.clone());
    let d = deliverer(&n, Duration::from_secs(30));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            n.send(&gp, vec![Recipient::Person(rad.account.id.clone())])
                .await,
        );
        d.deliver_due().await.unwrap();
    }
    let before = folders.listing(&rad, Folder::Inbox).await.unwrap();
    let doomed = before.messages[1].uid;
    assert_eq!(before.messages[1].envelope_id, ids[1]);

    // Retention and deletion requests delete through the records store.
    n.t.store
        .delete_items(std::slice::from_ref(&ids[1]), &[])
        .await
        .unwrap();
    let after = folders.listing(&rad, Folder::Inbox).await.unwrap();
    assert_eq!(
        after.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![before.messages[0].uid, before.messages[2].uid]
    );
    assert!(
        after.highest_modseq > before.highest_modseq,
        "HIGHESTMODSEQ moves, so a resyncing client asks"
    );
    assert_eq!(
        folders
            .vanished_since(&rad, Folder::Inbox, before.highest_modseq)
            .await
            .unwrap(),
        vec![doomed],
        "VANISHED (EARLIER) names the deleted item's UID"
    );
    assert!(
        folders
            .vanished_since(&rad, Folder::Inbox, after.highest_modseq)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn folder_pages_list_in_one_query_with_filters_paging_unread_counts_and_search() {
    use mailbox::postroom::listing::{FolderFilter, MailFolder};
    use mailbox::threads::StepInput;
    use mailbox::workflow::{Step, ThreadState};

    let n = net().await;
    let gp = n.person(Role::Doctor, CLINIC, "gp").await;
    let rad = n.person(Role::Doctor, HOSPITAL, "rad").await;
    let threads = Threads::new(
        n.dir.clone(),
        n.post.clone(),
        n.t.store.clone(),
        n.audit.clone(),
    );
    let mut opened = Vec::new();
    for i in 0..5 {
        let mut new = reading_request(Recipient::Person(rad.account.id.clone()));
        new.body = format!("ご高診をお願いします item-{i}");
        opened.push(threads.open(&gp, new, vec![]).await.unwrap());
    }
    // One plain item, outside any thread.
    n.send(&gp, vec![Recipient::Person(rad.account.id.clone())])
        .await;
    let d = deliverer(&n, Duration::from_secs(30));
    assert_eq!(d.deliver_due().await.unwrap(), 6);

    let all = FolderFilter::default();
    let page1 = n
        .post
        .folder_page(&rad, MailFolder::Inbox, all, 1, 4)
        .await
        .unwrap();
    assert_eq!(page1.rows.len(), 4);
    assert!(page1.has_more);
    let page2 = n
        .post
        .folder_page(&rad, MailFolder::Inbox, all, 2, 4)
        .await
        .unwrap();
    assert_eq!(page2.rows.len(), 2);
    assert!(!page2.has_more);
    // Newest first, no item twice, the sending facility on every row.
    let rows: Vec<_> = page1.rows.iter().chain(&page2.rows).collect();
    assert!(
        rows.windows(2)
            .all(|w| w[0].delivered_at >= w[1].delivered_at)
    );
    let mut ids: Vec<_> = rows.iter().map(|r| r.envelope_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    assert!(
        rows.iter()
            .all(|r| r.counterpart_facility.as_deref() == Some(CLINIC)
                && r.counterpart_name.as_deref() == Some(&*format!("施設 {CLINIC}")))
    );
    assert_eq!(n.post.unread_in_inbox(&rad).await.unwrap(), 6);

    // The sender's Sent names the other party's facility, with the thread's state.
    let sent = n
        .post
        .folder_page(&gp, MailFolder::Sent, all, 1, 50)
        .await
        .unwrap();
    assert_eq!(sent.rows.len(), 6);
    assert!(
        sent.rows.iter().filter(|r| r.thread_id.is_some()).all(|r| r
            .counterpart_facility
            .as_deref()
            == Some(HOSPITAL)
            && r.thread_state.as_deref() == Some("delivered"))
    );
    // A plain item names its addressee's facility too (its original key slot).
    let plain: Vec<_> = sent.rows.iter().filter(|r| r.thread_id.is_none()).collect();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].counterpart_facility.as_deref(), Some(HOSPITAL));
    assert_eq!(
        plain[0].counterpart_name.as_deref(),
        Some(&*format!("施設 {HOSPITAL}"))
    );

    // Opening one and accepting another: unread count and the state filter follow.
    let view = threads.view_each(&rad, &opened[0].thread_id).await.unwrap();
    assert!(view.steps.iter().all(|s| s.opened.is_ok()));
    assert_eq!(n.post.unread_in_inbox(&rad).await.unwrap(), 5);
    threads
        .act(
            &rad,
            &opened[1].thread_id,
            StepInput {
                step: Step::Accept,
                body: String::new(),
                fields: vec![],
                next_facility: None,
            },
            vec![],
        )
        .await
        .unwrap();
    let accepted = FolderFilter {
        kind: None,
        state: Some(ThreadState::Accepted),
    };
    let only = n
        .post
        .folder_page(&rad, MailFolder::Inbox, accepted, 1, 50)
        .await
        .unwrap();
    assert_eq!(only.rows.len(), 1);
    assert_eq!(
        only.rows[0].thread_id.as_deref(),
        Some(&*opened[1].thread_id)
    );
    let by_kind = FolderFilter {
        kind: Some(ThreadKind::ReadingRequest),
        state: None,
    };
    assert_eq!(
        n.post
            .folder_page(&rad, MailFolder::Inbox, by_kind, 1, 50)
            .await
            .unwrap()
            .rows
            .len(),
        6,
        "the plain item's kind is reading_request too"
    );

    // Archiving moves an item from the Inbox page to the Archive page.
    n.post
        .set_flags(&rad, &opened[2].envelope_id, None, None, Some(true))
        .await
        .unwrap();
    let archive = n
        .post
        .folder_page(&rad, MailFolder::Archive, all, 1, 50)
        .await
        .unwrap();
    assert_eq!(archive.rows.len(), 1);
    assert_eq!(archive.rows[0].envelope_id, opened[2].envelope_id);
    assert_eq!(
        n.post
            .folder_page(&rad, MailFolder::Inbox, all, 1, 50)
            .await
            .unwrap()
            .rows
            .len(),
        5
    );

    // Search reads the sealed text: archived items included, others' not.
    let hits = n.post.search(&rad, "ITEM-2", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].envelope_id, opened[2].envelope_id);
    assert_eq!(n.post.search(&rad, "item-", 10).await.unwrap().len(), 5);
    assert!(
        n.post
            .search(&rad, "no such words", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(n.post.search(&rad, "  ", 10).await.is_err());
    let colleague = n.person(Role::Doctor, HOSPITAL, "colleague").await;
    assert!(
        n.post
            .search(&colleague, "item-", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A damaged step is reported in its place; the others still open.
    let good =
        n.t.store
            .envelope(&opened[0].envelope_id)
            .await
            .unwrap()
            .unwrap()
            .body;
    let mut bad = good.clone();
    let at = bad.len() - 20;
    bad[at] ^= 0x01;
    n.t.store
        .overwrite_body(&opened[0].envelope_id, &bad)
        .await
        .unwrap();
    let view = threads.view_each(&gp, &opened[0].thread_id).await.unwrap();
    assert!(matches!(
        view.steps[0].opened,
        Err(mailbox::Error::Tampered("body"))
    ));
    assert!(threads.view(&gp, &opened[0].thread_id).await.is_err());
}
