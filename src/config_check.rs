//! What is wrong with a setting ([`ConfigError`], exit 78), the check of
//! `[http] public_url`, and the `[admin]` section.

use std::time::Duration;

use serde::Deserialize;

/// A setting that cannot be used: which one and what is wrong with it. The
/// binary exits 78 (EX_CONFIG) with this message.
#[derive(Debug)]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The error of a setting that cannot be used.
pub fn bad(setting: &'static str, problem: impl Into<String>) -> anyhow::Error {
    ConfigError {
        setting,
        problem: problem.into(),
    }
    .into()
}

/// The host of `[http] public_url` (`https://host[:port][/…]`), checked.
pub fn public_url_host(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| {
        bad(
            "http.public_url",
            format!("must start with https://, got {url:?}"),
        )
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_string()
    } else {
        authority.split(':').next().unwrap_or_default().to_string()
    };
    let port_ok = match authority
        .rsplit_once(']')
        .map_or(authority, |(_, p)| p)
        .split_once(':')
    {
        Some((_, port)) => port.parse::<u16>().is_ok(),
        None => true,
    };
    if host.is_empty() || !port_ok || host.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(bad(
            "http.public_url",
            format!("must be https://host[:port], got {url:?}"),
        ));
    }
    Ok(host)
}

/// `renkei admin` for scripts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// The operator account scheduled commands run as (also `RENKEI_ADMIN_OPERATOR`).
    pub operator: Option<String>,
}

/// `RENKEI_ADMIN_OPERATOR`, else `[admin] operator`.
pub(super) fn admin_operator(section: AdminSection) -> Option<String> {
    std::env::var("RENKEI_ADMIN_OPERATOR")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or(section.operator)
}

/// `[auth] reauth_secs` (default five minutes).
pub(super) fn reauth_window(secs: Option<u64>) -> anyhow::Result<Duration> {
    match secs {
        Some(0) => Err(bad("auth.reauth_secs", "must be at least 1")),
        Some(s) => Ok(Duration::from_secs(s)),
        None => Ok(mailbox::auth::REAUTH_VALID_FOR),
    }
}
