//! Settings: built-in defaults, then a TOML file, then environment variables and
//! flags (clap reads both). Nothing is required; `renkei serve` runs with none.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use mailbox::notify::NotifyPolicy;
use mailbox::store::StoreTarget;
use mailbox::{AuthPolicy, NetworkPolicy};
use serde::Deserialize;
use transport::notify::{RelaySecurity, RelaySettings};
use transport::tls::TlsSettings;

use crate::cli::GlobalArgs;

#[path = "config_check.rs"]
mod check;
pub use check::{AdminSection, ConfigError, bad, public_url_host};

/// The file format; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub home_prefecture: Option<u8>,
    pub blind_index_key_file: Option<PathBuf>,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub auth: AuthSection,
    /// The relay notification mails go through; without it none are queued.
    pub smtp: Option<SmtpSection>,
    #[serde(default)]
    pub notify: NotifySection,
    #[serde(default)]
    pub imap: ImapSection,
    #[serde(default)]
    pub records: RecordsSection,
    #[serde(default)]
    pub attachments: AttachmentsSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub imaging: ImagingSection,
    #[serde(default)]
    pub time: TimeSection,
    #[serde(default)]
    pub admin: AdminSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Key file of the audit key that signs checkpoints (default: in the data folder).
    pub key_path: Option<PathBuf>,
    /// How often each node signs a checkpoint of the chain's head (default 300 s).
    pub checkpoint_secs: Option<u64>,
    /// The write-once checkpoint file (default: in the data folder).
    pub checkpoint_file: Option<PathBuf>,
    /// Days audit entries are kept (default 0: forever).
    pub retain_days: Option<u32>,
    /// This node's name on its checkpoints (default: the host name).
    pub node: Option<String>,
}

/// The audit trail as evidence, resolved.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub key_file: PathBuf,
    pub checkpoint_every: Duration,
    pub checkpoint_file: PathBuf,
    /// 0: entries are kept forever.
    pub retain_days: u32,
    pub node: String,
    /// The operator's address checkpoints are mailed to (with a relay).
    pub mail_to: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagingSection {
    /// Slices rendered at once (default: the core count).
    pub max_renders: Option<usize>,
    /// Seconds a render waits for a slot before it is refused (default 30).
    pub render_wait_secs: Option<u64>,
}

/// Trusted time: how often the clock is checked and how far nodes may differ.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSection {
    /// Seconds between two checks (default 60).
    pub check_secs: Option<u64>,
    /// Largest difference allowed between nodes, and the largest estimated
    /// error of the kernel clock, in ms (default 1000).
    pub max_skew_ms: Option<u64>,
    /// A command that says whether the clock is synchronised, instead of the
    /// kernel's state (e.g. `chronyc -n tracking`); split on spaces, no shell.
    pub sync_command: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentsSection {
    /// Above this total (MiB) an item's sender is warned; it is still sent.
    pub warn_above_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSection {
    /// Days an item is kept (default 365); then the retention job deletes it.
    pub retention_days: Option<u32>,
    /// How often `serve` runs the retention job, in seconds (default 3600).
    pub retention_interval_secs: Option<u64>,
}

/// Retention, resolved.
#[derive(Debug, Clone)]
pub struct RecordsSettings {
    pub retention_days: u32,
    pub retention_interval: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSection {
    /// IMAP over implicit TLS; off unless set.
    pub listen: Option<SocketAddr>,
    /// IMAP with STARTTLS; off unless set.
    pub starttls_listen: Option<SocketAddr>,
    pub max_literal_bytes: Option<u32>,
    /// Signed-in connections at once per (address, account).
    pub max_connections_per_address: Option<usize>,
    /// Connections at once per address that have not signed in yet.
    pub max_unauthenticated_per_address: Option<usize>,
    /// Seconds from connecting to signing in (default 60).
    pub login_timeout_secs: Option<u64>,
    /// Seconds between the checks of an idling connection's session (default 5).
    pub session_recheck_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    pub port: Option<u16>,
    /// `starttls` (default), `implicit` or `plain` (a relay on the same host only).
    pub security: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub ca_file: Option<PathBuf>,
    /// The operator's address: audit checkpoints are mailed there.
    pub operator_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    pub give_up_hours: Option<u64>,
    /// Finer than hours, for tests and relays that are known to be flaky.
    pub give_up_secs: Option<u64>,
    pub base_backoff_secs: Option<u64>,
    pub max_backoff_secs: Option<u64>,
    /// Hour of the day (Japan time, 0-23) the daily digest goes out.
    pub digest_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen: Option<SocketAddr>,
    /// Host names the self-signed certificate should also cover.
    #[serde(default)]
    pub public_names: Vec<String>,
    /// The address people use to reach the pages; links in mails start with it.
    pub public_url: Option<String>,
    /// Whom to call, as the sign-in page says it (e.g. "県医師会 ヘルプデスク 087-000-0000（平日 9–17時）").
    pub help_desk: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub allow_tls12: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub delay_after: Option<u32>,
    /// Seconds a sign-in or re-authentication covers whole downloads, PDF
    /// exports, forwards and deletion requests (default 300).
    pub reauth_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub absolute_timeout_secs: Option<u64>,
    /// `required` (default) or `optional`: the network-wide second-factor rule;
    /// facilities can override it (`renkei admin facility second-factor`).
    pub second_factor: Option<String>,
    /// Failed sign-ins one address may make within the window (web and IMAP).
    pub address_failures: Option<u32>,
    pub address_window_secs: Option<u64>,
    /// Key file TOTP secrets are sealed under (default: in the data folder).
    pub second_factor_key_file: Option<PathBuf>,
}

/// The resolved settings every command works from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub store: StoreTarget,
    pub network: NetworkPolicy,
    pub auth: AuthPolicy,
    pub listen: SocketAddr,
    pub public_names: Vec<String>,
    pub tls: TlsSettings,
    /// AES key TOTP secrets are sealed under; kept outside the database.
    pub second_factor_key_file: PathBuf,
    /// HMAC key of the patient blind index; kept outside the database.
    pub blind_index_key_file: PathBuf,
    pub relay: Option<RelaySettings>,
    pub notify: NotifyPolicy,
    /// Links in mails start with this; by default the listening address.
    /// The operator scripted `renkei admin` commands run as (`[admin] operator`).
    pub admin_operator: Option<String>,
    /// How long a sign-in or re-authentication covers exports and forwards.
    pub reauth_window: Duration,
    pub public_url: Option<String>,
    /// The help desk's contact on the sign-in page (`[http] help_desk`).
    pub help_desk: Option<String>,
    /// IMAP over TLS, when configured.
    pub imap_listen: Option<SocketAddr>,
    pub imap_starttls_listen: Option<SocketAddr>,
    pub imap: transport::imap::ImapSettings,
    pub records: RecordsSettings,
    /// When senders are warned that an item is large (never a limit).
    pub upload: webmail::UploadPolicy,
    pub audit: AuditSettings,
    /// Rendered slices at once, and how long one waits for a slot.
    pub renders: mailbox::postroom::RenderLimit,
    /// The trusted-time check.
    pub time: mailbox::timesync::TimePolicy,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

impl Settings {
    pub fn resolve(args: &GlobalArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("renkei-data"));
        let store = store_target(args.database_url.clone().or(file.database_url), &data_dir)?;
        let home_prefecture = args
            .home_prefecture
            .or(file.home_prefecture)
            .unwrap_or(mailbox::facility::DEFAULT_HOME_PREFECTURE);
        if !(1..=47).contains(&home_prefecture) {
            return Err(bad(
                "home_prefecture",
                format!("must be 01-47, got {home_prefecture}"),
            ));
        }
        let auth = auth_policy(args, &file.auth)?;
        let second_factor_key_file = file
            .auth
            .second_factor_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("second-factor.key"));
        let listen = match args.listen.or(file.http.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let blind_index_key_file = file
            .blind_index_key_file
            .unwrap_or_else(|| data_dir.join("blind-index.key"));
        let operator_address = file.smtp.as_ref().and_then(|s| s.operator_address.clone());
        let audit = audit_settings(file.audit, &data_dir, operator_address);
        let relay = relay_settings(file.smtp)?;
        let notify = notify_policy(file.notify, relay.is_some())?;
        let imap = imap_settings(&file.imap);
        let records = records_settings(args, &file.records)?;
        let upload = upload_policy(args, &file.attachments)?;
        let renders = render_limit(&file.imaging)?;
        let time = time_policy(args, &file.time)?;
        Ok(Self {
            renders,
            time,
            records,
            upload,
            audit,
            imap_listen: args.imap_listen.or(file.imap.listen),
            imap_starttls_listen: args.imap_starttls_listen.or(file.imap.starttls_listen),
            imap,
            relay,
            notify,
            admin_operator: check::admin_operator(file.admin),
            reauth_window: check::reauth_window(file.auth.reauth_secs)?,
            public_url: match file.http.public_url {
                Some(url) => public_url_host(&url).map(|_| Some(url))?,
                None => None,
            },
            help_desk: match file.http.help_desk.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) if text.chars().count() > 300 => {
                    return Err(bad("http.help_desk", "must be at most 300 characters"));
                }
                Some(text) => Some(text.to_string()),
            },
            blind_index_key_file,
            second_factor_key_file,
            data_dir,
            store,
            network: NetworkPolicy { home_prefecture },
            auth,
            listen,
            public_names: file.http.public_names,
            tls: TlsSettings {
                cert_path: args.tls_cert.clone().or(file.tls.cert),
                key_path: args.tls_key.clone().or(file.tls.key),
                allow_tls12: args.allow_tls12 || file.tls.allow_tls12.unwrap_or(false),
            },
        })
    }
}

/// Where the data lives: a PostgreSQL URL, a `sqlite:` path, or the data folder.
fn store_target(url: Option<String>, data_dir: &Path) -> anyhow::Result<StoreTarget> {
    Ok(match url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            StoreTarget::Postgres(url)
        }
        Some(url) if url.starts_with("sqlite:") => {
            StoreTarget::Sqlite(PathBuf::from(url.trim_start_matches("sqlite:")))
        }
        Some(_) => {
            return Err(bad(
                "database_url",
                "must start with postgres:// or sqlite:",
            ));
        }
        None => StoreTarget::Sqlite(data_dir.join("renkei.db")),
    })
}

/// Sign-in rules: the command line over the file over the defaults.
fn auth_policy(args: &GlobalArgs, auth: &AuthSection) -> anyhow::Result<AuthPolicy> {
    let defaults = AuthPolicy::default();
    Ok(AuthPolicy {
        delay_after: args
            .delay_after
            .or(auth.delay_after)
            .unwrap_or(defaults.delay_after),
        max_delay: defaults.max_delay,
        idle_timeout: args
            .idle_timeout_secs
            .or(auth.idle_timeout_secs)
            .map(Duration::from_secs)
            .unwrap_or(defaults.idle_timeout),
        absolute_timeout: args
            .absolute_timeout_secs
            .or(auth.absolute_timeout_secs)
            .map(Duration::from_secs)
            .unwrap_or(defaults.absolute_timeout),
        key_lock: defaults.key_lock,
        second_factor_required: match args
            .second_factor
            .clone()
            .or(auth.second_factor.clone())
            .as_deref()
        {
            None => defaults.second_factor_required,
            Some("required") => true,
            Some("optional") => false,
            Some(other) => {
                return Err(bad(
                    "auth.second_factor",
                    format!("must be `required` or `optional`, got {other:?}"),
                ));
            }
        },
        address_limit: mailbox::auth::AddressLimit {
            failures: auth
                .address_failures
                .unwrap_or(defaults.address_limit.failures)
                .max(1),
            window: auth
                .address_window_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.address_limit.window),
        },
    })
}

/// The audit key, checkpoints and audit retention.
fn audit_settings(audit: AuditSection, data_dir: &Path, mail_to: Option<String>) -> AuditSettings {
    AuditSettings {
        key_file: audit.key_path.unwrap_or_else(|| data_dir.join("audit.key")),
        checkpoint_every: Duration::from_secs(audit.checkpoint_secs.unwrap_or(300).max(1)),
        checkpoint_file: audit
            .checkpoint_file
            .unwrap_or_else(|| data_dir.join("audit-checkpoints.jsonl")),
        retain_days: audit.retain_days.unwrap_or(0),
        node: audit.node.unwrap_or_else(|| {
            hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "renkei".into())
        }),
        mail_to,
    }
}

/// The relay notification mails go through, if the file names one.
fn relay_settings(smtp: Option<SmtpSection>) -> anyhow::Result<Option<RelaySettings>> {
    Ok(match smtp {
        Some(s) => {
            let security = RelaySecurity::parse(s.security.as_deref().unwrap_or("starttls"))?;
            let port = s.port.unwrap_or(match security {
                RelaySecurity::Implicit => 465,
                RelaySecurity::StartTls => 587,
                RelaySecurity::Plain => 25,
            });
            Some(RelaySettings {
                host: s.host,
                port,
                security,
                username: s.username,
                password: s.password,
                from: s.from,
                ca_file: s.ca_file,
            })
        }
        None => None,
    })
}

/// Notification mail retries and the digest hour; on only with a relay.
fn notify_policy(n: NotifySection, enabled: bool) -> anyhow::Result<NotifyPolicy> {
    let d = NotifyPolicy::default();
    Ok(NotifyPolicy {
        enabled,
        give_up_after: n
            .give_up_secs
            .or(n.give_up_hours.map(|h| h.saturating_mul(3600)))
            .map(Duration::from_secs)
            .unwrap_or(d.give_up_after),
        retry: mailbox::queue::BackOff {
            base: n
                .base_backoff_secs
                .map(Duration::from_secs)
                .unwrap_or(d.retry.base),
            max: n
                .max_backoff_secs
                .map(Duration::from_secs)
                .unwrap_or(d.retry.max),
        },
        digest_hour: match n.digest_hour {
            Some(h) if h > 23 => {
                return Err(bad("notify.digest_hour", format!("must be 0-23, got {h}")));
            }
            Some(h) => h,
            None => d.digest_hour,
        },
        confirm_valid_for: d.confirm_valid_for,
    })
}

fn imap_settings(imap: &ImapSection) -> transport::imap::ImapSettings {
    let imap_defaults = transport::imap::ImapSettings::default();
    transport::imap::ImapSettings {
        max_literal: imap.max_literal_bytes.unwrap_or(imap_defaults.max_literal),
        max_per_address: imap
            .max_connections_per_address
            .unwrap_or(imap_defaults.max_per_address)
            .max(1),
        max_unauthenticated_per_address: imap
            .max_unauthenticated_per_address
            .unwrap_or(imap_defaults.max_unauthenticated_per_address)
            .max(1),
        login_timeout: imap
            .login_timeout_secs
            .map_or(imap_defaults.login_timeout, |s| {
                Duration::from_secs(s.max(1))
            }),
        session_recheck: imap
            .session_recheck_secs
            .map_or(imap_defaults.session_recheck, |s| {
                Duration::from_secs(s.max(1))
            }),
        ..imap_defaults
    }
}

fn records_settings(
    args: &GlobalArgs,
    records: &RecordsSection,
) -> anyhow::Result<RecordsSettings> {
    Ok(RecordsSettings {
        retention_days: match args.retention_days.or(records.retention_days) {
            Some(0) => return Err(bad("records.retention_days", "must be at least 1")),
            Some(d) => d,
            None => mailbox::records::DEFAULT_RETENTION_DAYS,
        },
        retention_interval: Duration::from_secs(
            records.retention_interval_secs.unwrap_or(3600).max(1),
        ),
    })
}

/// When senders are warned that an item is large.
fn upload_policy(
    args: &GlobalArgs,
    attachments: &AttachmentsSection,
) -> anyhow::Result<webmail::UploadPolicy> {
    Ok(webmail::UploadPolicy {
        warn_above_bytes: match args
            .attachments_warn_above_mib
            .or(attachments.warn_above_mib)
        {
            Some(0) => return Err(bad("attachments.warn_above_mib", "must be at least 1")),
            Some(mib) => mib
                .checked_mul(1024 * 1024)
                .ok_or_else(|| bad("attachments.warn_above_mib", format!("is too large: {mib}")))?,
            None => webmail::UploadPolicy::default().warn_above_bytes,
        },
    })
}

/// How many slices render at once (at least 1), and the wait for a slot.
fn render_limit(imaging: &ImagingSection) -> anyhow::Result<mailbox::postroom::RenderLimit> {
    let defaults = mailbox::postroom::RenderLimit::default();
    Ok(mailbox::postroom::RenderLimit {
        max_renders: match imaging.max_renders {
            Some(0) => return Err(bad("imaging.max_renders", "must be at least 1")),
            Some(n) => n,
            None => defaults.max_renders,
        },
        wait: imaging
            .render_wait_secs
            .map_or(defaults.wait, Duration::from_secs),
    })
}

/// The trusted-time check: the command line over the file over the defaults.
fn time_policy(
    args: &GlobalArgs,
    time: &TimeSection,
) -> anyhow::Result<mailbox::timesync::TimePolicy> {
    let d = mailbox::timesync::TimePolicy::default();
    let sync_command = match args
        .time_sync_command
        .as_ref()
        .or(time.sync_command.as_ref())
    {
        Some(c) if c.trim().is_empty() => return Err(bad("time.sync_command", "is empty")),
        Some(c) => Some(c.split_whitespace().map(str::to_string).collect()),
        None => None,
    };
    Ok(mailbox::timesync::TimePolicy {
        check_every: match args.time_check_secs.or(time.check_secs) {
            Some(0) => return Err(bad("time.check_secs", "must be at least 1")),
            Some(s) => Duration::from_secs(s),
            None => d.check_every,
        },
        max_skew: match time.max_skew_ms {
            Some(0) => return Err(bad("time.max_skew_ms", "must be at least 1")),
            Some(ms) => Duration::from_millis(ms),
            None => d.max_skew,
        },
        sync_command,
    })
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| bad("config", format!("{} is not valid: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Settings from a config file holding `toml`, with `args` on top.
    fn resolve_with(toml: &str, args: GlobalArgs) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("renkei.toml");
        std::fs::write(&path, toml)?;
        Settings::resolve(&GlobalArgs {
            config: Some(path),
            ..args
        })
    }

    fn resolve(toml: &str) -> anyhow::Result<Settings> {
        resolve_with(toml, GlobalArgs::default())
    }

    #[test]
    fn the_large_item_warning_is_read_from_the_attachments_section() {
        let s = resolve("[attachments]\nwarn_above_mib = 300\n").unwrap();
        assert_eq!(s.upload.warn_above_bytes, 300 * MIB);
    }

    #[test]
    fn the_large_item_warning_defaults_to_two_gibibytes() {
        let s = Settings::resolve(&GlobalArgs::default()).unwrap();
        assert_eq!(s.upload.warn_above_bytes, 2048 * MIB);
        let s = resolve("[records]\nretention_days = 30\n").unwrap();
        assert_eq!(s.upload.warn_above_bytes, 2048 * MIB);
    }

    #[test]
    fn the_audit_section_has_safe_defaults_and_is_read() {
        let s = resolve("data_dir = \"/srv/r\"\n").unwrap();
        assert_eq!(s.audit.key_file, PathBuf::from("/srv/r/audit.key"));
        assert_eq!(
            s.audit.checkpoint_file,
            PathBuf::from("/srv/r/audit-checkpoints.jsonl")
        );
        assert_eq!(s.audit.checkpoint_every, Duration::from_secs(300));
        assert_eq!(s.audit.retain_days, 0);
        assert_eq!(s.audit.mail_to, None);
        let s = resolve(
            "[audit]\nkey_path = \"/k\"\ncheckpoint_secs = 60\ncheckpoint_file = \"/log/c\"\n\
             retain_days = 3650\nnode = \"n1\"\n\
             [smtp]\nhost = \"h\"\nfrom = \"a@b.jp\"\noperator_address = \"ops@b.jp\"\n",
        )
        .unwrap();
        assert_eq!(s.audit.key_file, PathBuf::from("/k"));
        assert_eq!(s.audit.checkpoint_file, PathBuf::from("/log/c"));
        assert_eq!(s.audit.checkpoint_every, Duration::from_secs(60));
        assert_eq!((s.audit.retain_days, s.audit.node.as_str()), (3650, "n1"));
        assert_eq!(s.audit.mail_to.as_deref(), Some("ops@b.jp"));
    }

    #[test]
    fn the_flag_wins_over_the_file() {
        let s = resolve_with(
            "[attachments]\nwarn_above_mib = 300\n",
            GlobalArgs {
                attachments_warn_above_mib: Some(1),
                ..GlobalArgs::default()
            },
        )
        .unwrap();
        assert_eq!(s.upload.warn_above_bytes, MIB);
    }

    #[test]
    fn render_slots_come_from_the_imaging_section() {
        let e = resolve("[imaging]\nmax_renders = 0\n").unwrap_err();
        assert!(format!("{e:#}").contains("imaging.max_renders: must be at least 1"));
        let s = resolve("[imaging]\nmax_renders = 3\nrender_wait_secs = 5\n").unwrap();
        assert_eq!(s.renders.max_renders, 3);
        assert_eq!(s.renders.wait, Duration::from_secs(5));
        let s = resolve("").unwrap();
        assert!(s.renders.max_renders >= 1);
        assert_eq!(s.renders.wait, Duration::from_secs(30));
    }

    #[test]
    fn a_zero_threshold_is_refused_with_its_own_message() {
        let e = resolve("[attachments]\nwarn_above_mib = 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration: attachments.warn_above_mib: must be at least 1"
        );
        let e = Settings::resolve(&GlobalArgs {
            attachments_warn_above_mib: Some(0),
            ..GlobalArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration: attachments.warn_above_mib: must be at least 1"
        );
    }

    #[test]
    fn a_threshold_past_u64_bytes_and_a_misspelt_key_are_refused() {
        let e = resolve(&format!(
            "[attachments]\nwarn_above_mib = {}\n",
            u64::MAX / 2
        ))
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("attachments.warn_above_mib: is too large"),
            "{e:#}"
        );
        let e = resolve("[attachments]\nwarn_above_mb = 5\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown field `warn_above_mb`"),
            "{e:#}"
        );
    }

    /// The keys `deny_unknown_fields` accepts in `section` (top level when
    /// empty), as its error message lists them; `None` when `section` is no
    /// table of the file.
    fn keys_of(section: &str) -> Option<Vec<String>> {
        let toml = if section.is_empty() {
            "zz_no_such_key = 1\n".to_string()
        } else {
            format!("[{section}]\nzz_no_such_key = 1\n")
        };
        let e = format!("{:#}", resolve(&toml).err()?);
        // serde lists them as "expected `a`", "expected `a` or `b`" or
        // "expected one of `a`, `b`, …".
        let (_, listed) = e.split_once("unknown field `zz_no_such_key`, expected ")?;
        Some(
            listed
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect(),
        )
    }

    #[test]
    fn the_readme_settings_table_names_every_key_of_the_file() {
        let readme = include_str!("../README.md");
        let table = &readme[readme
            .find("| setting | TOML key |")
            .expect("the settings table")..];
        let table = &table[..table.find("\n\n").unwrap_or(table.len())];
        // The TOML column of each row, `[auth] delay_after` read as `[auth] `delay_after``.
        let columns: Vec<String> = table
            .lines()
            .filter_map(|row| row.split('|').nth(2))
            .map(|c| {
                let c = c.trim();
                match c.strip_prefix("`[").and_then(|c| c.split_once("] ")) {
                    Some((section, rest)) => format!("[{section}] `{rest}"),
                    None => c.to_string(),
                }
            })
            .collect();
        let top = keys_of("").expect("the top-level keys");
        let mut missing = Vec::new();
        let mut sections = 0;
        for key in &top {
            if let Some(keys) = keys_of(key) {
                sections += 1;
                for k in keys {
                    if !columns.iter().any(|c| {
                        c.starts_with(&format!("[{key}]")) && c.contains(&format!("`{k}`"))
                    }) {
                        missing.push(format!("[{key}] {k}"));
                    }
                }
            } else if !columns
                .iter()
                .any(|c| !c.starts_with('[') && c.contains(&format!("`{key}`")))
            {
                missing.push(key.clone());
            }
        }
        assert!(sections >= 8 && top.len() > sections, "{top:?}");
        assert!(
            missing.is_empty(),
            "not in the README's settings table: {missing:?}"
        );
    }

    #[test]
    fn the_time_section_is_read_and_the_flags_win() {
        let s = Settings::resolve(&GlobalArgs::default()).unwrap();
        assert_eq!(s.time, mailbox::timesync::TimePolicy::default());
        assert_eq!(s.time.check_every, Duration::from_secs(60));
        let s = resolve_with(
            "[time]\ncheck_secs = 30\nmax_skew_ms = 500\nsync_command = \"chronyc -n tracking\"\n",
            GlobalArgs {
                time_check_secs: Some(2),
                ..GlobalArgs::default()
            },
        )
        .unwrap();
        assert_eq!(s.time.check_every, Duration::from_secs(2));
        assert_eq!(s.time.max_skew, Duration::from_millis(500));
        assert_eq!(
            s.time.sync_command,
            Some(vec!["chronyc".into(), "-n".into(), "tracking".into()])
        );
        let e = resolve("[time]\ncheck_secs = 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration: time.check_secs: must be at least 1"
        );
    }
}
