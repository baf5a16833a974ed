//! `renkei admin …`: the operator's commands, on the same data as `serve`.

use std::sync::Arc;

use chrono::NaiveDate;
use mailbox::{Directory, Error, Facility, FacilityCode, Result};

use mailbox::notify::{Notices, kind_labels};

use mailbox::records::audit::Audit;
use mailbox::records::{DeletionReport, Records};
use mailbox::store::Store;

pub mod operator;
pub mod recovery;
mod user;

use crate::cli::{
    AdminCommand, AuditCommand, BlobsCommand, DeletionCommand, FacilityCommand, FacilityFields,
    NotificationsCommand, PatientArgs, RetentionCommand,
};

async fn notifications(notices: &Notices, command: NotificationsCommand) -> Result<()> {
    match command {
        NotificationsCommand::Failed => {
            let rows = notices.failed_for_console(operator::actor()).await?;
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

/// Runs an operator command. Each is recorded on the audit trail, done or
/// refused, by the service method it calls (the same entry a console page
/// writes); only the backup, which no service makes, is recorded here.
pub async fn run(services: &Services<'_>, command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::Blobs { command } => blobs(services.postroom, command).await,
        AdminCommand::Backup { dir } => {
            let result = crate::backup::backup(services.settings, services.store, &dir)
                .await
                .map_err(|e| Error::Internal(format!("{e:#}")));
            services
                .audit
                .admin(operator::actor(), "backup", None, result.is_ok())
                .await;
            result
        }
        AdminCommand::Retention { command } => retention(services.records, command).await,
        AdminCommand::DeletionRequest { command } => deletion(services.records, command).await,
        other => dispatch(services, other).await,
    }
}

async fn dispatch(services: &Services<'_>, command: AdminCommand) -> Result<()> {
    let (directory, notices) = (services.directory, services.notices);
    match command {
        AdminCommand::Audit { command } => audit(services.audit, services.records, command).await,
        AdminCommand::Billing { month, csv, pdf } => {
            billing(services.records, &month, csv, pdf).await
        }
        AdminCommand::Facility { command } => facility(directory, command).await,
        AdminCommand::User { command } => {
            user::user(directory, notices, services.audit, command).await
        }
        AdminCommand::Notifications { command } => notifications(notices, command).await,
        AdminCommand::Recovery { command } => {
            recovery::recovery(directory, &services.settings.data_dir, command).await
        }
        AdminCommand::Grants { command } => {
            recovery::grants(directory, services.audit, command).await
        }
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
                .sweep_blobs(
                    operator::actor(),
                    std::time::Duration::from_secs(min_age_secs),
                )
                .await?;
            println!(
                "{n} orphaned blob entr{} removed",
                if n == 1 { "y" } else { "ies" }
            );
        }
    }
    Ok(())
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
            let report = records.retention_for(operator::actor(), apply).await?;
            print_report(&report);
            if let Some(path) = record {
                write_file(&path, &report.to_csv())?;
            }
        }
    }
    Ok(())
}

/// The patient ID from the flag, or one line of standard input.
fn patient_id(args: &PatientArgs) -> Result<String> {
    Ok(match &args.patient {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| {
                Error::Internal(format!("reading the patient ID from standard input: {e}"))
            })?;
            line.trim().to_string()
        }
    })
}

async fn deletion(records: &Records, command: DeletionCommand) -> Result<()> {
    match command {
        DeletionCommand::Find { patient } => {
            let found = records
                .patient_matches_for(operator::actor(), &patient.facility, || {
                    patient_id(&patient)
                })
                .await?;
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
            let report = records
                .delete_patient_for(
                    operator::actor(),
                    &patient.facility,
                    || patient_id(&patient),
                    confirm,
                )
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
    records: &Records,
    month: &str,
    csv: Option<std::path::PathBuf>,
    pdf: Option<std::path::PathBuf>,
) -> Result<()> {
    let statement = records.billing_for(operator::actor(), month).await?;
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

/// What `audit verify` found, one finding a line.
fn print_verification(v: &mailbox::records::audit::Verification) {
    if let Some((line, why)) = v.bad_checkpoint {
        println!("audit checkpoint line {line} is not valid: {why}");
    }
    if let Some(r) = &v.rewritten {
        let from = match r.intact {
            Some(seq) => format!("checkpoint at seq {seq} (intact)"),
            None => format!("the first retained entry (seq {})", v.starts_after + 1),
        };
        println!(
            "audit chain rewritten between {from} and checkpoint at seq {} (differs)",
            r.differs
        );
        if let Some(seq) = r.first_differing {
            println!("first differing entry: {seq}");
        }
    }
    if let Some((seq, reason)) = v.first_broken {
        println!("audit chain broken at entry {seq}: {reason}");
    }
    if v.intact() {
        print!("audit chain intact: {} entries", v.entries);
        print!(", {} checkpoints matched", v.checkpoints);
        if v.starts_after > 0 {
            print!(", retained from seq {}", v.starts_after + 1);
        }
        println!();
    }
}

async fn audit(trail: &Audit, records: &Records, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Patient { patient } => {
            let facility = FacilityCode::parse(&patient.facility)?;
            let rows = records
                .patient_access(operator::actor(), &facility, &patient_id(&patient)?)
                .await?;
            eprintln!("{} access entr(ies)", rows.len());
            print!("{}", mailbox::records::audit::to_csv(&rows));
        }
        AuditCommand::Verify => {
            let v = trail.verify_for(operator::actor()).await?;
            print_verification(&v);
            if !v.intact() {
                return Err(Error::Tampered("audit_log"));
            }
        }
        AuditCommand::Export { from, to, out } => {
            let rows = trail
                .export_for(operator::actor(), || {
                    Ok((parse_date("from", &from)?, parse_date("to", &to)?))
                })
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

fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            field,
            format!("{field} must be a date like 2026-04-01, got {s:?}"),
            "日付は 2026-04-01 の形式で入力してください。",
        )
    })
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

async fn facility(directory: &Directory, command: FacilityCommand) -> Result<()> {
    let by = operator::actor();
    match command {
        FacilityCommand::Add { code, fields } => {
            let f = directory
                .register_facility(by, &code, |f| apply(f, *fields))
                .await?;
            println!("registered facility {} {}", f.code, f.name);
        }
        FacilityCommand::List => {
            println!("code\tname\tactive_from\tactive_until\tpublished");
            for f in directory.list_facilities(by).await? {
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
            print_facility(&directory.show_facility(by, &code).await?);
        }
        FacilityCommand::Update { code, fields } => {
            let f = directory
                .edit_facility(by, &code, |f| apply(f, *fields))
                .await?;
            print_facility(&f);
        }
        FacilityCommand::Networks { code, set } => {
            let nets = match set {
                Some(text) => directory.set_facility_networks(by, &code, &text).await?,
                None => {
                    directory.show_facility(by, &code).await?;
                    directory
                        .facility_networks(&FacilityCode::parse(&code)?)
                        .await?
                }
            };
            if nets.is_empty() {
                println!("Accounts of {code} sign in from any network.");
            } else {
                let list: Vec<String> = nets.iter().map(ToString::to_string).collect();
                println!("Accounts of {code} sign in only from: {}", list.join(", "));
            }
        }
        FacilityCommand::Escalation { code, hours } => {
            let hours = directory.set_escalation(by, &code, hours).await?;
            let code = FacilityCode::parse(&code)?;
            println!("Unopened items for {code} escalate after {hours} hour(s).");
        }
        FacilityCommand::SecondFactor { code, rule } => {
            directory.set_second_factor_rule(by, &code, &rule).await?;
            let code = FacilityCode::parse(&code)?;
            println!("Second factor for {code}: {rule}.");
        }
        FacilityCommand::Deactivate { code, last_day } => {
            let f = directory
                .end_facility(by, &code, || {
                    last_day
                        .as_deref()
                        .map(|d| parse_date("last_day", d))
                        .transpose()
                })
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
