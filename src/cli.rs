//! The command line: `serve`, `demo` and `admin …`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "renkei",
    version,
    about = "Secure store-and-forward messaging for a regional medical network"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands; each can also come from the environment.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// The operator who runs `renkei admin` (their account ID); their password
    /// comes from RENKEI_OPERATOR_PASSWORD. See `src/admin/operator.rs`.
    #[arg(long, global = true, env = "RENKEI_OPERATOR")]
    pub operator: Option<String>,
    /// The second operator a use of the network recovery key needs (their
    /// account ID); their password comes from RENKEI_SECOND_OPERATOR_PASSWORD.
    #[arg(long, global = true, env = "RENKEI_SECOND_OPERATOR")]
    pub second_operator: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "RENKEI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data folder (SQLite database, certificate, demo account list).
    #[arg(long, global = true, env = "RENKEI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// postgres://… to use PostgreSQL instead of the embedded SQLite.
    #[arg(
        long,
        global = true,
        env = "RENKEI_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Prefecture number of the network's home (default 37, Kagawa).
    #[arg(long, global = true, env = "RENKEI_HOME_PREFECTURE")]
    pub home_prefecture: Option<u8>,
    /// HTTPS listen address (default 127.0.0.1:8443; port 0 picks a free port).
    #[arg(long, global = true, env = "RENKEI_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// IMAP over TLS listen address (off unless given; port 0 picks a free port).
    #[arg(long, global = true, env = "RENKEI_IMAP_LISTEN")]
    pub imap_listen: Option<SocketAddr>,
    /// IMAP with STARTTLS listen address (off unless given): plain IMAP until the
    /// client asks for TLS; nothing but CAPABILITY, NOOP and LOGOUT before it.
    #[arg(long, global = true, env = "RENKEI_IMAP_STARTTLS_LISTEN")]
    pub imap_starttls_listen: Option<SocketAddr>,
    #[arg(long, global = true, env = "RENKEI_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, global = true, env = "RENKEI_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Also accept TLS 1.2 (AEAD/ECDHE suites only) for old clients.
    #[arg(long, global = true, env = "RENKEI_ALLOW_TLS12")]
    pub allow_tls12: bool,
    /// Days items are kept before the retention job deletes them (default 365).
    #[arg(long, global = true, env = "RENKEI_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Senders are warned when an item's attachments add up to more than this
    /// many MiB (default 2048); the item is still sent.
    #[arg(long, global = true, env = "RENKEI_ATTACHMENTS_WARN_ABOVE_MIB")]
    pub attachments_warn_above_mib: Option<u64>,
    /// Failed sign-ins per (ID, address or device) before each further attempt
    /// waits a growing delay (default 5). Nothing locks an account but the help desk.
    #[arg(long, global = true, env = "RENKEI_DELAY_AFTER")]
    pub delay_after: Option<u32>,
    /// Idle timeout of a session in seconds (default 1800).
    #[arg(long, global = true, env = "RENKEI_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Network-wide second-factor rule: `required` (default) or `optional`.
    #[arg(long, global = true, env = "RENKEI_SECOND_FACTOR")]
    pub second_factor: Option<String>,
    /// Absolute lifetime of a session in seconds (default 43200).
    #[arg(long, global = true, env = "RENKEI_ABSOLUTE_TIMEOUT_SECS")]
    pub absolute_timeout_secs: Option<u64>,
    /// Seconds between two checks of the system clock (default 60).
    #[arg(long, global = true, env = "RENKEI_TIME_CHECK_SECS")]
    pub time_check_secs: Option<u64>,
    /// A command that says whether the clock is synchronised (`yes`/`no`, as
    /// `timedatectl show -p NTPSynchronized --value` prints), instead of the
    /// kernel's state; split on spaces, no shell.
    #[arg(long, global = true, env = "RENKEI_TIME_SYNC_COMMAND")]
    pub time_sync_command: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Create a demo network in the data folder (first run), list its accounts, and serve.
    Demo {
        /// Create the demo network and list the accounts, but do not serve.
        #[arg(long)]
        no_serve: bool,
    },
    /// Operator commands; they work on the same data while the server runs.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Participating facilities.
    Facility {
        #[command(subcommand)]
        command: FacilityCommand,
    },
    /// Accounts of people.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The network's offline recovery key.
    Recovery {
        #[command(subcommand)]
        command: RecoveryCommand,
    },
    /// Facility-key grants of members.
    Grants {
        #[command(subcommand)]
        command: GrantsCommand,
    },
    /// The blob folder.
    Blobs {
        #[command(subcommand)]
        command: BlobsCommand,
    },
    /// Notification mails.
    Notifications {
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// Deleting items whose retention period has ended.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// A patient's deletion request (様式2): every item of the patient goes.
    DeletionRequest {
        #[command(subcommand)]
        command: DeletionCommand,
    },
    /// The monthly statement: 6,500 JPY per facility active on any day of the month.
    Billing {
        /// YYYY-MM.
        #[arg(long)]
        month: String,
        /// Write the statement as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the statement as PDF here.
        #[arg(long)]
        pdf: Option<PathBuf>,
    },
    /// A consistent backup of database, blobs, and the blind-index and
    /// second-factor keys sealed to the recovery certificate, into DIR (a new
    /// folder), while the server runs.
    Backup { dir: PathBuf },
    /// Bring a backup back into a new data folder (and an empty PostgreSQL
    /// database when one is configured).
    Restore {
        dir: PathBuf,
        /// The recovery file (its passphrase in RENKEI_RECOVERY_PASSPHRASE), or
        /// two custodians' share files (the flag twice): it opens the backup's keys.
        #[arg(long = "recovery-key", required = true)]
        recovery_key: Vec<PathBuf>,
    },
    /// The hash-chained audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// List (`--dry-run`) or delete (`--apply`) every expired item.
    Run {
        #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
        dry_run: bool,
        #[arg(long)]
        apply: bool,
        /// Write the record of what was deleted (CSV) here too.
        #[arg(long)]
        record: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PatientArgs {
    /// Facility code from the form.
    #[arg(long)]
    pub facility: String,
    /// Patient ID from the form; read from standard input when left out, so it
    /// stays out of the shell history and the process list.
    #[arg(long)]
    pub patient: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeletionCommand {
    /// Show the patient's items as metadata only (kind, facility, date, size).
    Find {
        #[command(flatten)]
        patient: PatientArgs,
    },
    /// Delete them all; `--confirm` is the number of items `find` showed.
    Apply {
        #[command(flatten)]
        patient: PatientArgs,
        #[arg(long)]
        confirm: usize,
        /// Where to write the receipt (PDF); the same as CSV goes beside it.
        #[arg(long)]
        receipt: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain; names the first entry that does not fit (exit 65).
    Verify,
    /// Who opened, downloaded or handed on one patient's items (found through
    /// the blind index); the patient ID is read from standard input.
    Patient {
        #[command(flatten)]
        patient: PatientArgs,
    },
    /// Write the entries of a period as CSV (JST days, both inclusive).
    Export {
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// File to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Notices that could not be sent within the give-up time (no content shown).
    Failed,
}

#[derive(Debug, Subcommand)]
pub enum BlobsCommand {
    /// Remove blobs of submissions that never committed (left by a crash).
    Sweep {
        /// Only entries at least this old (default one hour).
        #[arg(long, default_value_t = 3600)]
        min_age_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// Make the recovery key: its certificate stays on the server, the secret half
    /// is never written in clear: locked under a passphrase (RENKEI_RECOVERY_PASSPHRASE)
    /// into FILE, or with --custodians split into three share files in the folder
    /// OUT, any two of which open it. Keep them offline, never on this server.
    Init {
        #[arg(long)]
        out: PathBuf,
        /// Three custodians' names, comma-separated: one share each, any two open the key.
        #[arg(long)]
        custodians: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// Members still waiting for a facility key.
    List,
    /// Complete every pending grant with the offline recovery key (two operators:
    /// --operator and --second-operator, each with their password).
    Complete {
        /// The recovery file (passphrase in RENKEI_RECOVERY_PASSPHRASE), or two share files.
        #[arg(long = "recovery-key", required = true)]
        recovery_key: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct FacilityFields {
    #[arg(long)]
    pub name: Option<String>,
    /// Municipality (市区町村), listed publicly with the name and departments.
    #[arg(long)]
    pub city: Option<String>,
    #[arg(long)]
    pub address: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    /// Comma-separated, e.g. "放射線科,内科"; listed publicly.
    #[arg(long)]
    pub departments: Option<String>,
    /// What the facility says of itself on the public list (hours, referral desk).
    #[arg(long)]
    pub public_note: Option<String>,
    /// Publish address, phone and the note on the public list (true/false).
    #[arg(long)]
    pub publish: Option<bool>,
    /// First day of participation, YYYY-MM-DD (default today).
    #[arg(long)]
    pub active_from: Option<String>,
    /// Steering committee approval reference (required outside the home prefecture).
    #[arg(long)]
    pub approval_ref: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum FacilityCommand {
    /// Register a facility.
    Add {
        #[arg(long)]
        code: String,
        #[command(flatten)]
        fields: Box<FacilityFields>,
    },
    List,
    Show {
        code: String,
    },
    Update {
        code: String,
        #[command(flatten)]
        fields: Box<FacilityFields>,
    },
    /// Hours an unopened item waits before the facility's liaisons and clerks are told.
    Escalation {
        code: String,
        hours: u32,
    },
    /// Whether the facility's accounts need a second factor: `required`,
    /// `optional`, or `network` (follow the network-wide rule).
    SecondFactor {
        code: String,
        rule: String,
    },
    /// The networks the facility's accounts may sign in from (web, API,
    /// IMAP): CIDR ranges separated by commas or spaces; "" for anywhere.
    /// Without `--set`, shows them.
    Networks {
        code: String,
        #[arg(long)]
        set: Option<String>,
    },
    /// End participation (the facility is billed through the month of the last day).
    Deactivate {
        code: String,
        /// Last active day, YYYY-MM-DD (default today).
        #[arg(long)]
        last_day: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; prints its ID and an issued password as a credential letter.
    Add {
        /// doctor, clerk, liaison or operator.
        #[arg(long)]
        role: String,
        /// Facility code (not for operators).
        #[arg(long)]
        facility: Option<String>,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Also write the credential letter as PDF (mode 0600) to print.
        #[arg(long)]
        letter_pdf: Option<PathBuf>,
    },
    List {
        #[arg(long)]
        facility: Option<String>,
    },
    Show {
        id: String,
    },
    /// Locks an account until unlocked (failed sign-ins never do).
    Lock {
        id: String,
        /// Why (on the audit trail; no patient data).
        #[arg(long)]
        reason: String,
    },
    Unlock {
        id: String,
    },
    /// Issue a new password (the person must change it at the next sign-in). With
    /// the recovery key (two operators: --operator and --second-operator) the
    /// person keeps their key and every old item.
    ResetPassword {
        id: String,
        /// The recovery file (passphrase in RENKEI_RECOVERY_PASSPHRASE), or two share files.
        #[arg(long = "recovery-key")]
        recovery_key: Vec<PathBuf>,
        /// Also write the credential letter as PDF (mode 0600) to print.
        #[arg(long)]
        letter_pdf: Option<PathBuf>,
    },
    /// Remove a member: every facility-key grant goes and the account stays locked.
    Remove {
        id: String,
    },
    /// Which accounts have which second factors (never a secret).
    Factors,
    /// After an identity check at the help desk: remove the person's TOTP and
    /// recovery codes (audited in the log; the person is told by mail).
    ResetSecondFactor {
        id: String,
    },
}
