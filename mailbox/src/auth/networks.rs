//! Allowed networks per facility: the operator may give a facility CIDR
//! ranges (its VPN, the hospital network); its accounts then sign in (web,
//! API, IMAP) only from an address inside one of them. No range: anywhere.
//! The rule is checked when a session would be opened (`open_session`), after
//! the password and any second factor, so the refusal, with its own clear
//! message (`network_not_allowed`), tells nothing to someone without them; a
//! sign-in without an address (none came with the request) is refused too.
//! Set by `renkei admin facility networks` and the operator console, each
//! audited as a console action.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Auth;
use crate::account::Account;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::records::audit::Actor;

/// Parses the ranges an operator typed (comma, space or newline separated;
/// a bare address is one host), refusing any that is not a CIDR range.
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>> {
    let mut out: Vec<IpNet> = Vec::new();
    for word in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let net = match word.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => match word.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(Error::invalid(
                        "networks",
                        format!("{word:?} is not a CIDR range such as 192.0.2.0/24"),
                        format!("「{word}」はネットワーク範囲（例: 192.0.2.0/24）ではありません。"),
                    ));
                }
            },
        };
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Whether `addr` (as sessions store it: an IP address) is inside one of `nets`.
pub fn allowed(nets: &[IpNet], addr: Option<&str>) -> bool {
    if nets.is_empty() {
        return true;
    }
    let Some(ip) = addr.and_then(|a| a.trim().parse::<IpAddr>().ok()) else {
        return false;
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

impl Auth {
    /// The facility's ranges, parsed (rows are checked when stored).
    pub async fn facility_networks(&self, facility: &FacilityCode) -> Result<Vec<IpNet>> {
        let rows = self.store.facility_networks(facility.as_str()).await?;
        Ok(rows.iter().filter_map(|r| r.parse().ok()).collect())
    }

    /// Refuses a sign-in to `account` from outside its facility's networks.
    pub(crate) async fn refuse_outside_networks(
        &self,
        account: &Account,
        addr: Option<&str>,
    ) -> Result<()> {
        let Some(facility) = &account.facility else {
            return Ok(());
        };
        let nets = self.facility_networks(facility).await?;
        if allowed(&nets, addr) {
            return Ok(());
        }
        tracing::warn!(
            account = account.id.as_str(),
            "sign-in refused: not from one of the facility's networks"
        );
        Err(Error::NetworkNotAllowed)
    }

    /// Sets a facility's ranges (empty text: anywhere); the operator's console
    /// action, audited as `facility networks`. Returns what was stored.
    pub async fn set_facility_networks(
        &self,
        by: Actor<'_>,
        facility: &str,
        text: &str,
    ) -> Result<Vec<IpNet>> {
        let work = async {
            by.require_operator()?;
            let code = FacilityCode::parse(facility)?;
            if self.store.facility(&code).await?.is_none() {
                return Err(Error::NotFound("facility"));
            }
            let mut nets = parse_networks(text)?;
            nets.sort_by_key(ToString::to_string);
            let rows: Vec<String> = nets.iter().map(ToString::to_string).collect();
            self.store
                .set_facility_networks(code.as_str(), &rows)
                .await?;
            Ok(nets)
        };
        let item = FacilityCode::parse(facility).ok().map(|c| c.to_string());
        self.audit
            .console(by, "facility networks", item, work)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_and_matched() {
        let nets = parse_networks("10.20.0.0/16, 192.0.2.7\n2001:db8::/32").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(allowed(&nets, Some("10.20.3.4")));
        assert!(allowed(&nets, Some("192.0.2.7")));
        assert!(allowed(&nets, Some("::ffff:10.20.9.9")));
        assert!(allowed(&nets, Some("2001:db8::1")));
        assert!(!allowed(&nets, Some("10.21.0.1")));
        assert!(!allowed(&nets, Some("192.0.2.8")));
        assert!(!allowed(&nets, None));
        assert!(!allowed(&nets, Some("local")));
        assert!(allowed(&[], None), "no range: anywhere");
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("example.org").is_err());
        assert_eq!(parse_networks("  ").unwrap(), vec![]);
        assert_eq!(
            parse_networks("10.1.2.3/8").unwrap()[0].to_string(),
            "10.0.0.0/8"
        );
    }
}
