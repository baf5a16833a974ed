//! Wiring: open the store, load TLS, bind, serve until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mailbox::Directory;
use mailbox::postroom::{BlobStore, Postroom};
use tokio::net::TcpListener;
use transport::tls;

use crate::config::Settings;

/// The blind-index key lives outside the database: `RENKEI_BLIND_INDEX_KEY` (hex),
/// or a key file (made on first start, mode 0600).
fn blind_index_key(settings: &Settings) -> anyhow::Result<renkei_crypto::BlindIndexKey> {
    if std::env::var_os("RENKEI_BLIND_INDEX_KEY").is_some() {
        return renkei_crypto::BlindIndexKey::from_env("RENKEI_BLIND_INDEX_KEY")
            .context("RENKEI_BLIND_INDEX_KEY");
    }
    let path = &settings.blind_index_key_file;
    if !path.exists() {
        let key =
            renkei_crypto::BlindIndexKey::generate().context("generating the blind-index key")?;
        crate::demo::write_private(path, key.to_hex().as_str())?;
        tracing::info!(path = %path.display(), "generated the blind-index key");
    }
    renkei_crypto::BlindIndexKey::from_file(path)
        .with_context(|| format!("reading {}", path.display()))
}

/// The directory and the postroom over one store.
pub async fn open_services(settings: &Settings) -> anyhow::Result<(Arc<Directory>, Arc<Postroom>)> {
    let directory = open_directory(settings).await?;
    let postroom = Arc::new(Postroom::new(
        directory.clone(),
        BlobStore::new(settings.data_dir.join("blobs")),
        Arc::new(blind_index_key(settings)?),
    ));
    Ok((directory, postroom))
}

/// The key TOTP secrets are sealed under: `RENKEI_SECOND_FACTOR_KEY` (hex), or a
/// key file (made on first start, mode 0600). Nodes sharing a database must
/// share this key too.
fn second_factor_key(settings: &Settings) -> anyhow::Result<mailbox::auth::SecondFactorKey> {
    use mailbox::auth::SecondFactorKey;
    if let Ok(hex) = std::env::var("RENKEI_SECOND_FACTOR_KEY") {
        return SecondFactorKey::from_hex(&hex).context("RENKEI_SECOND_FACTOR_KEY");
    }
    let path = &settings.second_factor_key_file;
    if !path.exists() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let key = SecondFactorKey::generate();
        crate::demo::write_private(path, key.to_hex().as_str())?;
        tracing::info!(path = %path.display(), "generated the second-factor key");
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SecondFactorKey::from_hex(&text).with_context(|| format!("reading {}", path.display()))
}

pub async fn open_directory(settings: &Settings) -> anyhow::Result<Arc<Directory>> {
    if let mailbox::store::StoreTarget::Sqlite(_) = settings.store {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
    }
    let store = mailbox::store::open(&settings.store)
        .await
        .with_context(|| format!("opening {}", settings.store.describe()))?;
    let (rp_id, origin) = webauthn_party(settings);
    Ok(Arc::new(
        Directory::new(store, settings.auth.clone(), settings.network.clone())
            .with_second_factor_key(second_factor_key(settings)?)
            .with_webauthn(&rp_id, &origin)
            .context("WebAuthn settings")?,
    ))
}

/// The WebAuthn relying party: the host of `[http] public_url` if set, else
/// `localhost` (any port). Security keys are bound to this name, so it must
/// not change once people have registered keys.
fn webauthn_party(settings: &Settings) -> (String, String) {
    if let Some(url) = &settings.public_url
        && let Some(rest) = url.strip_prefix("https://")
    {
        let host = rest
            .split(['/', ':'])
            .next()
            .unwrap_or("localhost")
            .to_string();
        return (host.clone(), format!("https://{host}"));
    }
    ("localhost".into(), "https://localhost".into())
}

/// A bound server, ready to run.
/// IMAP listeners (implicit TLS, STARTTLS), their TLS set-up and limits.
type ImapListeners = (
    Vec<(TcpListener, transport::imap::TlsMode)>,
    Arc<rustls::ServerConfig>,
    transport::imap::ImapSettings,
);

pub struct Server {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    directory: Arc<Directory>,
    postroom: Arc<Postroom>,
    relay: Option<transport::notify::RelaySettings>,
    notify: mailbox::notify::NotifyPolicy,
    public_url: Option<String>,
    records: crate::config::RecordsSettings,
    upload: webmail::UploadPolicy,
    imap: Option<ImapListeners>,
    pub fingerprint: String,
}

impl Server {
    pub async fn bind(
        settings: &Settings,
        directory: Arc<Directory>,
        postroom: Arc<Postroom>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
        let material =
            tls::load_or_generate(&settings.tls, &settings.data_dir, &settings.public_names)?;
        if material.generated {
            tracing::info!(path = %material.cert_path.display(), "generated a self-signed certificate");
        }
        let tls = tls::server_config(&material, &settings.tls, &[b"h2", b"http/1.1"])?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let mut imap_listeners = Vec::new();
        for (addr, mode) in [
            (settings.imap_listen, transport::imap::TlsMode::Implicit),
            (
                settings.imap_starttls_listen,
                transport::imap::TlsMode::StartTls,
            ),
        ] {
            if let Some(addr) = addr {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding IMAP {addr}"))?;
                imap_listeners.push((listener, mode));
            }
        }
        let imap = if imap_listeners.is_empty() {
            None
        } else {
            Some((
                imap_listeners,
                tls::server_config(&material, &settings.tls, &[b"imap"])?,
                settings.imap.clone(),
            ))
        };
        Ok(Self {
            listener,
            tls,
            directory,
            postroom,
            relay: settings.relay.clone(),
            notify: settings.notify.clone(),
            public_url: settings.public_url.clone(),
            records: settings.records.clone(),
            upload: settings.upload,
            imap,
            fingerprint: material.fingerprint(),
        })
    }

    pub fn url(&self) -> anyhow::Result<String> {
        let addr = self.listener.local_addr()?;
        let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        };
        Ok(format!("https://{host}:{}/", addr.port()))
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Blobs of submissions a crash cut off before their commit: swept beside
        // serving rather than before it, since the scan grows with the stored items.
        let postroom = self.postroom.clone();
        tokio::spawn(async move {
            match postroom.sweep_orphan_blobs(Duration::from_secs(3600)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "swept orphaned blobs"),
                Err(e) => tracing::warn!(error = %e, "sweeping orphaned blobs failed"),
            }
        });
        if let Some((listeners, _, _)) = &self.imap {
            // Printed before the HTTPS line, which tests and scripts wait for.
            for (listener, mode) in listeners {
                match mode {
                    transport::imap::TlsMode::Implicit => {
                        println!("renkei imap listening on {}", listener.local_addr()?)
                    }
                    transport::imap::TlsMode::StartTls => println!(
                        "renkei imap starttls listening on {}",
                        listener.local_addr()?
                    ),
                }
            }
        }
        let addr = self.listener.local_addr()?;
        // Tests and scripts wait for this exact line.
        println!("renkei listening on https://{addr}");
        let directory = self.directory.clone();
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = directory.purge_expired_sessions().await {
                    tracing::warn!(error = %e, "purging expired sessions failed");
                }
            }
        });
        let records = Arc::new(mailbox::records::Records::new(
            self.postroom.vault(),
            self.records.retention_days,
        ));
        let retention = {
            let records = records.clone();
            let every = self.records.retention_interval;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match records
                        .run_retention(mailbox::records::Actor::System, chrono::Utc::now(), true)
                        .await
                    {
                        Ok(r) if r.items.is_empty() => {}
                        Ok(r) => tracing::info!(
                            run = r.run_id,
                            items = r.items.len(),
                            blobs = r.blobs_removed,
                            "retention deleted expired items"
                        ),
                        Err(e) => tracing::warn!(error = %e, "retention run failed"),
                    }
                }
            })
        };
        let store = self.directory.store().clone();
        let notices = Arc::new(mailbox::notify::Notices::new(
            store.clone(),
            self.notify.clone(),
        ));
        let deliverer = Arc::new(
            mailbox::delivery::Deliverer::new(
                store.clone(),
                mailbox::delivery::DeliveryPolicy::default(),
            )
            .notifying(notices.clone()),
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(transport::delivery::run_woken(
            deliverer,
            self.postroom.delivery_wake(),
            async move {
                let mut rx = stop_rx;
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ));
        let notifier = match &self.relay {
            Some(relay) => {
                let base_url = match &self.public_url {
                    Some(url) => url.clone(),
                    None => self.url()?,
                };
                let notifier = Arc::new(transport::notify::Notifier::new(
                    relay,
                    store.clone(),
                    notices.clone(),
                    base_url,
                )?);
                let mut rx = stop_tx.subscribe();
                Some(tokio::spawn(transport::notify::run(notifier, async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })))
            }
            None => {
                tracing::info!("no smtp relay configured: notification mails are off");
                None
            }
        };
        let threads = Arc::new(
            mailbox::threads::Threads::new(self.directory.clone(), self.postroom.clone())
                .notifying(notices.clone()),
        );
        let directory_for_imap = self.directory.clone();
        let postroom_for_imap = self.postroom.clone();
        let app = webmail::router(webmail::AppState {
            directory: self.directory,
            postroom: self.postroom,
            threads,
            notices,
            records,
            upload: self.upload,
        });
        let mut imap = Vec::new();
        if let Some((listeners, tls, settings)) = self.imap {
            let services = transport::imap::session::Services {
                folders: Arc::new(mailbox::postroom::folders::Folders::new(
                    directory_for_imap.clone(),
                    postroom_for_imap.clone(),
                )),
                directory: directory_for_imap,
                postroom: postroom_for_imap,
            };
            for (listener, mode) in listeners {
                let mut rx = stop_tx.subscribe();
                imap.push(tokio::spawn(transport::imap::serve_with(
                    listener,
                    mode,
                    tls.clone(),
                    services.clone(),
                    settings.clone(),
                    async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    },
                )));
            }
        }
        webmail::serve_https(self.listener, self.tls, app, shutdown).await;
        let _ = stop_tx.send(true);
        for listener in imap {
            let _ = listener.await;
        }
        let _ = worker.await;
        if let Some(notifier) = notifier {
            let _ = notifier.await;
        }
        purge.abort();
        retention.abort();
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
