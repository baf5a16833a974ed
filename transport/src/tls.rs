//! TLS material shared by every listener (HTTPS and IMAP): load the configured
//! certificate, or make a self-signed one (rcgen) into the data folder on first
//! start. The self-signed one is valid for [`SELF_SIGNED_DAYS`] (397, the CA/B
//! limit browsers hold any certificate to) and made anew at start-up when it
//! has less than [`RENEW_WITHIN_DAYS`] left or is not one of ours (an older
//! one valid for longer, an unreadable one). rustls with the ring provider limited to AEAD/ECDHE suites; TLS 1.3
//! only unless `allow_tls12`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// How long a self-signed certificate is valid, counted from an hour ago.
pub const SELF_SIGNED_DAYS: i64 = 397;
/// A self-signed certificate with less than this left is replaced at start-up.
pub const RENEW_WITHIN_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain and key; when absent, a self-signed pair in the data folder.
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
    /// TLS 1.3 only unless the operator opts into 1.2 for old clients (CRYPTREC
    /// high-security profile: 1.3, or 1.2 with AEAD/ECDHE suites only).
    pub allow_tls12: bool,
}

/// The loaded certificate and key.
pub struct TlsMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// Whether this run generated the certificate.
    pub generated: bool,
    pub cert_path: PathBuf,
}

impl TlsMaterial {
    /// SHA-256 fingerprint of the leaf certificate, as browsers show it.
    pub fn fingerprint(&self) -> String {
        self.chain
            .first()
            .map(|leaf| {
                Sha256::digest(leaf.as_ref())
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

/// Whether the self-signed certificate at `cert` must be made anew: missing,
/// unreadable, valid for longer than [`SELF_SIGNED_DAYS`], or within
/// [`RENEW_WITHIN_DAYS`] of its end.
fn needs_renewal(cert: &Path, now: time::OffsetDateTime) -> bool {
    let Ok(pem) = fs::read(cert) else {
        return true;
    };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem) else {
        return true;
    };
    let Ok(parsed) = pem.parse_x509() else {
        return true;
    };
    let validity = parsed.validity();
    let (start, end) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    let day = 24 * 60 * 60;
    end - start > (SELF_SIGNED_DAYS + 1) * day
        || end - now.unix_timestamp() < RENEW_WITHIN_DAYS * day
}

/// A self-signed certificate for `names`, valid from an hour ago for
/// [`SELF_SIGNED_DAYS`] days, as (certificate PEM, key PEM).
fn self_signed(
    names: Vec<String>,
    now: time::OffsetDateTime,
) -> Result<(String, String), TlsError> {
    let mut params = rcgen::CertificateParams::new(names)?;
    params.not_before = now - time::Duration::hours(1);
    params.not_after = params.not_before + time::Duration::days(SELF_SIGNED_DAYS);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Loads the configured pair, or the self-signed pair in `data_dir`, generating it
/// (for localhost and 127.0.0.1 plus `extra_names`) if it does not exist yet or
/// is near its end (see [`needs_renewal`]).
pub fn load_or_generate(
    settings: &TlsSettings,
    data_dir: &Path,
    extra_names: &[String],
) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path, generated) = match (&settings.cert_path, &settings.key_path) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false),
        _ => {
            let cert = data_dir.join("tls-cert.pem");
            let key = data_dir.join("tls-key.pem");
            let now = time::OffsetDateTime::now_utc();
            let generated = !key.exists() || needs_renewal(&cert, now);
            if generated {
                let mut names = vec![
                    "localhost".to_string(),
                    "127.0.0.1".to_string(),
                    "::1".to_string(),
                ];
                names.extend(extra_names.iter().cloned());
                let (cert_pem, key_pem) = self_signed(names, now)?;
                write_private(&key, key_pem.as_bytes())?;
                write_private(&cert, cert_pem.as_bytes())?;
            }
            (cert, key, generated)
        }
    };
    let cert_pem = read(&cert_path)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(|c| c.ok())
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let key_pem = read(&key_path)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or(TlsError::NoKey { path: key_path })?;
    Ok(TlsMaterial {
        chain,
        key,
        generated,
        cert_path,
    })
}

/// The crypto provider every listener uses: ring, restricted to AEAD + ECDHE suites.
pub fn provider() -> CryptoProvider {
    let mut provider = ring::default_provider();
    provider.cipher_suites.retain(|suite| match suite {
        rustls::SupportedCipherSuite::Tls13(_) => true,
        // ring's TLS 1.2 suites are all ECDHE with AES-GCM or ChaCha20-Poly1305.
        rustls::SupportedCipherSuite::Tls12(s) => {
            let name = format!("{:?}", s.common.suite);
            name.contains("ECDHE") && (name.contains("GCM") || name.contains("CHACHA20_POLY1305"))
        }
    });
    provider
}

/// A rustls server configuration for the given ALPN protocols.
pub fn server_config(
    material: &TlsMaterial,
    settings: &TlsSettings,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = if settings.allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_single_cert(material.chain.clone(), material.key.clone_key())?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reloads_the_same_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings {
            cert_path: None,
            key_path: None,
            allow_tls12: false,
        };
        let first = load_or_generate(&settings, dir.path(), &[]).unwrap();
        assert!(first.generated);
        let again = load_or_generate(&settings, dir.path(), &[]).unwrap();
        assert!(!again.generated);
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        server_config(&again, &settings, &[b"http/1.1"]).unwrap();
    }

    fn validity(path: &Path) -> (i64, i64) {
        let pem = fs::read(path).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let v = cert.validity();
        (v.not_before.timestamp(), v.not_after.timestamp())
    }

    #[test]
    fn self_signed_certificates_last_397_days_and_are_renewed_near_their_end() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings {
            cert_path: None,
            key_path: None,
            allow_tls12: false,
        };
        let first = load_or_generate(&settings, dir.path(), &[]).unwrap();
        let (start, end) = validity(&first.cert_path);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(start <= now && now - start < 2 * 3600, "{start} vs {now}");
        assert_eq!(end - start, 397 * 86_400);

        // One that is 20 days from its end is replaced at the next start.
        let old = time::OffsetDateTime::now_utc() - time::Duration::days(377);
        let (cert, key) = self_signed(vec!["localhost".into()], old).unwrap();
        fs::write(dir.path().join("tls-cert.pem"), cert).unwrap();
        fs::write(dir.path().join("tls-key.pem"), key).unwrap();
        let renewed = load_or_generate(&settings, dir.path(), &[]).unwrap();
        assert!(renewed.generated);
        let (_, end) = validity(&renewed.cert_path);
        assert!(end - now > 390 * 86_400);

        // So is one valid for longer than 397 days (as rcgen's default made them).
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        fs::write(dir.path().join("tls-cert.pem"), pair.cert.pem()).unwrap();
        fs::write(
            dir.path().join("tls-key.pem"),
            pair.key_pair.serialize_pem(),
        )
        .unwrap();
        assert!(
            load_or_generate(&settings, dir.path(), &[])
                .unwrap()
                .generated
        );
        // And a fresh one is kept.
        assert!(
            !load_or_generate(&settings, dir.path(), &[])
                .unwrap()
                .generated
        );
    }

    #[test]
    fn only_aead_ecdhe_suites_are_offered() {
        for suite in provider().cipher_suites {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.starts_with("TLS13_") || name.contains("ECDHE"),
                "{name}"
            );
            assert!(!name.contains("CBC"), "{name}");
        }
    }
}
