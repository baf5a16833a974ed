//! `renkei admin …`: the operator's commands, on the same data as `serve`.

use std::sync::Arc;

use chrono::NaiveDate;
use mailbox::{AccountId, Directory, Error, Facility, FacilityCode, Result};

use mailbox::notify::{Notices, kind_labels};

use mailbox::records::audit::Audit;
use mailbox::records::{Actor, DeletionReport, Records};
use mailbox::store::Store;

mod user;

use crate::cli::{
    AdminCommand, AuditCommand, BlobsCommand, DeletionCommand, FacilityCommand, FacilityFields,
    GrantsCommand, NotificationsCommand, PatientArgs, RecoveryCommand, RetentionCommand,
    UserCommand,
};

async fn notifications(notices: &Notices, command: NotificationsCommand) -> Result<()> {
    match command {
        NotificationsCommand::Failed => {
            let rows = notices.failed_on_console().await?;
            println!("{} failed notification(s)", rows.len());
            for r in rows {
                let created = chrono::DateTime::from_timestamp_millis(r.created_at)
                    .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}\tattempts {}\t{}",
                    r.id,
                    created,
                    r.account_id,
                    r.reason,
                    kind_labels(r.kind.as_deref()).1,
                    r.attempts,
                    r.last_error.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// What the audit trail says of an operator command: its name and the
/// facility or account it concerns (never names, addresses or passwords).
fn describe(command: &AdminCommand) -> (String, Option<String>) {
    let (what, item): (&str, Option<&str>) = match command {
        AdminCommand::Facility { command } => match command {
            FacilityCommand::Add { code, .. } => ("facility add", Some(code)),
            FacilityCommand::List => ("facility list", None),
            FacilityCommand::Show { code } => ("facility show", Some(code)),
            FacilityCommand::Update { code, .. } => ("facility update", Some(code)),
            FacilityCommand::Escalation { code, .. } => ("facility escalation", Some(code)),
            FacilityCommand::Deactivate { code, .. } => ("facility deactivate", Some(code)),
            FacilityCommand::SecondFactor { code, .. } => ("facility second-factor", Some(code)),
        },
        AdminCommand::User { command } => match command {
            UserCommand::Add { .. } => ("user add", None),
            UserCommand::List { .. } => ("user list", None),
            UserCommand::Show { id } => ("user show", Some(id)),
            UserCommand::Lock { id } => ("user lock", Some(id)),
            UserCommand::Unlock { id } => ("user unlock", Some(id)),
            UserCommand::ResetPassword { id, .. } => ("user reset-password", Some(id)),
            UserCommand::Remove { id } => ("user remove", Some(id)),
            UserCommand::Factors => ("user factors", None),
            UserCommand::ResetSecondFactor { id } => ("user reset-second-factor", Some(id)),
        },
        AdminCommand::Recovery { .. } => ("recovery init", None),
        AdminCommand::Grants { command } => match command {
            GrantsCommand::List => ("grants list", None),
            GrantsCommand::Complete { .. } => ("grants complete", None),
        },
        AdminCommand::Blobs { .. } => ("blobs sweep", None),
        AdminCommand::Notifications { .. } => ("notifications failed", None),
        AdminCommand::Retention { command } => match command {
            RetentionCommand::Run { apply: true, .. } => ("retention run --apply", None),
            RetentionCommand::Run { .. } => ("retention run --dry-run", None),
        },
        AdminCommand::DeletionRequest { command } => match command {
            DeletionCommand::Find { patient } => ("deletion-request find", Some(&patient.facility)),
            DeletionCommand::Apply { patient, .. } => {
                ("deletion-request apply", Some(&patient.facility))
            }
        },
        AdminCommand::Billing { .. } => ("billing", None),
        AdminCommand::Backup { .. } => ("backup", None),
        AdminCommand::Restore { .. } => ("restore", None),
        AdminCommand::Audit { command } => match command {
            AuditCommand::Verify => ("audit verify", None),
            AuditCommand::Export { .. } => ("audit export", None),
        },
    };
    // Only well-formed codes and IDs reach the log, whatever was typed.
    let item = item.and_then(|i| {
        FacilityCode::parse(i)
            .map(|c| c.to_string())
            .or_else(|_| AccountId::parse(i).map(|a| a.as_str().to_string()))
            .ok()
    });
    (what.to_string(), item)
}

/// What the operator's commands work on.
pub struct Services<'a> {
    pub settings: &'a crate::config::Settings,
    pub store: &'a Arc<dyn Store>,
    pub audit: &'a Audit,
    pub directory: &'a Directory,
    pub postroom: &'a mailbox::postroom::Postroom,
    pub records: &'a Records,
    pub notices: &'a Notices,
}

/// Runs an operator command and appends it to the audit trail, done or refused.
pub async fn run(services: &Services<'_>, command: AdminCommand) -> Result<()> {
    let (what, item) = describe(&command);
    let result = match command {
        AdminCommand::Blobs { command } => blobs(services.postroom, command).await,
        AdminCommand::Backup { dir } => {
            crate::backup::backup(services.settings, services.store, &dir)
                .await
                .map_err(|e| Error::Internal(format!("{e:#}")))
        }
        AdminCommand::Retention { command } => retention(services.records, command).await,
        AdminCommand::DeletionRequest { command } => deletion(services.records, command).await,
        other => dispatch(services, other).await,
    };
    services
        .audit
        .admin(Actor::Cli, &what, item, result.is_ok())
        .await;
    result
}

async fn dispatch(services: &Services<'_>, command: AdminCommand) -> Result<()> {
    let (directory, notices) = (services.directory, services.notices);
    match command {
        AdminCommand::Audit { command } => audit(services.audit, command).await,
        AdminCommand::Billing { month, csv, pdf } => billing(directory, &month, csv, pdf).await,
        AdminCommand::Facility { command } => facility(directory, services.store, command).await,
        AdminCommand::User { command } => user::user(directory, notices, command).await,
        AdminCommand::Notifications { command } => notifications(notices, command).await,
        AdminCommand::Recovery { command } => recovery(directory, command).await,
        AdminCommand::Grants { command } => grants(directory, command).await,
        // Dispatched by `run`, which has the postroom.
        AdminCommand::Blobs { .. }
        | AdminCommand::Backup { .. }
        | AdminCommand::Restore { .. }
        | AdminCommand::Retention { .. }
        | AdminCommand::DeletionRequest { .. } => Err(Error::Internal("needs the postroom".into())),
    }
}

pub async fn blobs(postroom: &mailbox::postroom::Postroom, command: BlobsCommand) -> Result<()> {
    match command {
        BlobsCommand::Sweep { min_age_secs } => {
            let n = postroom
                .sweep_orphan_blobs(std::time::Duration::from_secs(min_age_secs))
                .await?;
            println!(
                "{n} orphaned blob entr{} removed",
                if n == 1 { "y" } else { "ies" }
            );
        }
    }
    Ok(())
}

fn read_recovery_key(path: &std::path::Path) -> Result<renkei_crypto::SecretKey> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(
            "recovery_key",
            format!("cannot read {}: {e}", path.display()),
            "復旧鍵ファイルを読めません。",
        )
    })?;
    renkei_crypto::SecretKey::from_armored_secret(&text).map_err(|_| {
        Error::invalid(
            "recovery_key",
            format!("{} is not a recovery key file", path.display()),
            "復旧鍵ファイルの形式が正しくありません。",
        )
    })
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))
}

fn print_report(report: &DeletionReport) {
    println!(
        "{} {} item(s), {} bytes{} (run {})",
        if report.applied {
            "deleted"
        } else {
            "would delete"
        },
        report.items.len(),
        report.total_bytes(),
        if report.applied {
            format!(", {} blob file(s) removed", report.blobs_removed)
        } else {
            String::new()
        },
        report.run_id
    );
    println!("item\tkind\tsender_facility\tsealed_on\tbytes\tattachments");
    for i in &report.items {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            i.envelope_id,
            i.kind,
            i.sender_facility.as_deref().unwrap_or("-"),
            chrono::DateTime::from_timestamp(i.created_at, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            i.body_size + i.attachment_bytes,
            i.attachments
        );
    }
}

async fn retention(records: &Records, command: RetentionCommand) -> Result<()> {
    match command {
        RetentionCommand::Run { apply, record, .. } => {
            let report = records
                .run_retention(Actor::Cli, chrono::Utc::now(), apply)
                .await?;
            print_report(&report);
            if let Some(path) = record {
                write_file(&path, &report.to_csv())?;
            }
        }
    }
    Ok(())
}

/// The patient ID from the flag, or one line of standard input.
fn patient_id(args: &PatientArgs) -> Result<(FacilityCode, String)> {
    let facility = FacilityCode::parse(&args.facility)?;
    let id = match &args.patient {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| {
                Error::Internal(format!("reading the patient ID from standard input: {e}"))
            })?;
            line.trim().to_string()
        }
    };
    Ok((facility, id))
}

async fn deletion(records: &Records, command: DeletionCommand) -> Result<()> {
    match command {
        DeletionCommand::Find { patient } => {
            let (facility, id) = patient_id(&patient)?;
            let found = records.patient_matches(Actor::Cli, &facility, &id).await?;
            println!("{} matching item(s)", found.len());
            println!("item\tkind\tsender_facility\tsealed_on\tbytes\tthread");
            for c in found {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    c.envelope_id,
                    c.kind,
                    c.sender_facility.as_deref().unwrap_or("-"),
                    chrono::DateTime::from_timestamp(c.created_at, 0)
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    c.body_size,
                    c.thread_id.as_deref().unwrap_or("-")
                );
            }
        }
        DeletionCommand::Apply {
            patient,
            confirm,
            receipt,
        } => {
            let (facility, id) = patient_id(&patient)?;
            let report = records
                .delete_patient(Actor::Cli, &facility, &id, confirm)
                .await?;
            let pdf = mailbox::pdf::deletion_receipt(&report)?;
            std::fs::write(&receipt, pdf)
                .map_err(|e| Error::Internal(format!("writing {}: {e}", receipt.display())))?;
            let csv_path = receipt.with_extension("csv");
            write_file(&csv_path, &report.to_csv())?;
            print_report(&report);
            println!(
                "receipt written to {} (and {})",
                receipt.display(),
                csv_path.display()
            );
        }
    }
    Ok(())
}

async fn billing(
    directory: &Directory,
    month: &str,
    csv: Option<std::path::PathBuf>,
    pdf: Option<std::path::PathBuf>,
) -> Result<()> {
    let statement = mailbox::records::billing::statement(&directory.facilities().await?, month)?;
    println!(
        "statement {}: {} facilities, total {} JPY",
        statement.month,
        statement.lines.len(),
        statement.total_jpy()
    );
    for l in &statement.lines {
        println!("{}\t{}\t{}", l.code, l.amount_jpy, l.name);
    }
    if let Some(path) = csv {
        write_file(&path, &statement.to_csv())?;
    }
    if let Some(path) = pdf {
        let bytes = mailbox::pdf::billing_statement(&statement)?;
        std::fs::write(&path, bytes)
            .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))?;
    }
    Ok(())
}

async fn audit(trail: &Audit, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify => {
            let v = trail.verify().await?;
            match v.first_broken {
                None => println!("audit chain intact: {} entries", v.entries),
                Some((seq, reason)) => {
                    println!("audit chain broken at entry {seq}: {reason}");
                    return Err(Error::Tampered("audit_log"));
                }
            }
        }
        AuditCommand::Export { from, to, out } => {
            let rows = trail
                .export(
                    Actor::Cli,
                    parse_date("from", &from)?,
                    parse_date("to", &to)?,
                )
                .await?;
            let csv = mailbox::records::audit::to_csv(&rows);
            match out {
                Some(path) => {
                    std::fs::write(&path, csv)
                        .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))?;
                    eprintln!("{} entries written to {}", rows.len(), path.display());
                }
                None => print!("{csv}"),
            }
        }
    }
    Ok(())
}

async fn recovery(directory: &Directory, command: RecoveryCommand) -> Result<()> {
    match command {
        RecoveryCommand::Init { out } => {
            if out.exists() {
                return Err(Error::Conflict(format!(
                    "{} already exists; not overwriting it",
                    out.display()
                )));
            }
            let key = directory.init_recovery().await?;
            let armored = key
                .to_armored_secret()
                .map_err(|e| Error::Internal(format!("exporting the recovery key: {e}")))?;
            crate::demo::write_private(&out, armored.as_str())
                .map_err(|e| Error::Internal(format!("{e:#}")))?;
            println!(
                "recovery certificate stored; fingerprint {}",
                key.fingerprint()
            );
            println!(
                "the secret half is in {} — move it offline and delete it from this server",
                out.display()
            );
        }
    }
    Ok(())
}

async fn grants(directory: &Directory, command: GrantsCommand) -> Result<()> {
    match command {
        GrantsCommand::List => {
            println!("facility_code\tkey\taccount\twaiting_since");
            for g in directory.pending_grants().await? {
                let since = chrono::DateTime::from_timestamp(g.created_at, 0)
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}",
                    g.facility_code, g.role, g.account_id, since
                );
            }
        }
        GrantsCommand::Complete { recovery_key } => {
            let key = read_recovery_key(&recovery_key)?;
            let n = directory.complete_grants_with_recovery(&key).await?;
            println!("{n} pending grant(s) completed");
        }
    }
    Ok(())
}

fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            field,
            format!("{field} must be a date like 2026-04-01, got {s:?}"),
            "日付は 2026-04-01 の形式で入力してください。",
        )
    })
}

fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

fn apply(f: &mut Facility, fields: FacilityFields) -> Result<()> {
    if let Some(v) = fields.name {
        f.name = v;
    }
    if let Some(v) = fields.city {
        f.city = v.trim().to_string();
    }
    if let Some(v) = fields.address {
        f.address = v;
    }
    if let Some(v) = fields.phone {
        f.phone = v;
    }
    if let Some(v) = fields.departments {
        f.departments = mailbox::facility::parse_departments(&v);
    }
    if let Some(v) = fields.public_note {
        f.public_note = v;
    }
    if let Some(v) = fields.publish {
        f.publish_details = v;
    }
    if let Some(v) = fields.active_from {
        f.active_from = parse_date("active_from", &v)?;
    }
    if let Some(v) = fields.approval_ref {
        f.approval_ref = Some(v).filter(|r| !r.trim().is_empty());
    }
    Ok(())
}

fn print_facility(f: &Facility) {
    println!("code:          {}", f.code);
    println!("name:          {}", f.name);
    println!("city:          {}", f.city);
    println!("address:       {}", f.address);
    println!("phone:         {}", f.phone);
    println!("departments:   {}", f.departments.join(", "));
    println!("public note:   {}", f.public_note);
    println!("published:     {}", f.publish_details);
    println!("active from:   {}", f.active_from);
    println!(
        "active until:  {}",
        f.active_until
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "approval ref:  {}",
        f.approval_ref.as_deref().unwrap_or("-")
    );
}

async fn facility(
    directory: &Directory,
    store: &Arc<dyn Store>,
    command: FacilityCommand,
) -> Result<()> {
    match command {
        FacilityCommand::Add { code, fields } => {
            let mut f = Facility::new(FacilityCode::parse(&code)?, String::new(), today());
            apply(&mut f, *fields)?;
            let f = directory.add_facility(f).await?;
            println!("registered facility {} {}", f.code, f.name);
        }
        FacilityCommand::List => {
            println!("code\tname\tactive_from\tactive_until\tpublished");
            for f in directory.facilities().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    f.code,
                    f.name,
                    f.active_from,
                    f.active_until
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into()),
                    f.publish_details
                );
            }
        }
        FacilityCommand::Show { code } => {
            print_facility(&directory.facility(&FacilityCode::parse(&code)?).await?);
        }
        FacilityCommand::Update { code, fields } => {
            let mut f = directory.facility(&FacilityCode::parse(&code)?).await?;
            apply(&mut f, *fields)?;
            print_facility(&directory.update_facility(f).await?);
        }
        FacilityCommand::Escalation { code, hours } => {
            let code = FacilityCode::parse(&code)?;
            directory.facility(&code).await?;
            store
                .set_escalation_hours(code.as_str(), i64::from(hours.max(1)))
                .await?;
            println!(
                "Unopened items for {code} escalate after {} hour(s).",
                hours.max(1)
            );
        }
        FacilityCommand::SecondFactor { code, rule } => {
            let code = FacilityCode::parse(&code)?;
            let required = match rule.as_str() {
                "required" => Some(true),
                "optional" => Some(false),
                "network" => None,
                _ => {
                    return Err(mailbox::Error::invalid(
                        "rule",
                        "the rule is `required`, `optional` or `network`",
                        "設定は required・optional・network のいずれかです。",
                    ));
                }
            };
            directory
                .set_facility_second_factor(&code, required)
                .await?;
            println!("Second factor for {code}: {rule}.");
        }
        FacilityCommand::Deactivate { code, last_day } => {
            let last = match last_day {
                Some(d) => parse_date("last_day", &d)?,
                None => today(),
            };
            let f = directory
                .deactivate_facility(&FacilityCode::parse(&code)?, last)
                .await?;
            println!(
                "facility {} active until {}",
                f.code,
                f.active_until.map(|d| d.to_string()).unwrap_or_default()
            );
        }
    }
    Ok(())
}
