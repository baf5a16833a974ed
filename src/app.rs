//! Wiring: build the services once over one store, bind the listeners,
//! serve until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mailbox::Directory;
use mailbox::clock::SharedClock;
use mailbox::delivery::{Deliverer, DeliveryPolicy};
use mailbox::notify::Notices;
use mailbox::postroom::folders::Folders;
use mailbox::postroom::{BlobStore, Postroom};
use mailbox::records::Records;
use mailbox::records::audit::Audit;
use mailbox::store::Store;
use mailbox::threads::Threads;
use mailbox::timesync::TimeSync;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
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

/// The WebAuthn relying party: the host of `[http] public_url` if set, else
/// `localhost` (any port). Security keys are bound to this name, so it must
/// not change once people have registered keys. `None` when `public_url`
/// names an IP address: security keys need a host name, so they are off (the
/// pages work, and say so when someone tries to register one).
fn webauthn_party(settings: &Settings) -> anyhow::Result<Option<(String, String)>> {
    let Some(url) = &settings.public_url else {
        return Ok(Some(("localhost".into(), "https://localhost".into())));
    };
    let host = crate::config::public_url_host(url)?;
    if host.parse::<std::net::IpAddr>().is_ok() {
        tracing::warn!(
            public_url = url.as_str(),
            "[http] public_url is an IP address: security keys (WebAuthn) need a host name, so they are off; pages, the API and IMAP work"
        );
        eprintln!(
            "note: [http] public_url is an IP address: security keys (WebAuthn) need a host name and are off"
        );
        return Ok(None);
    }
    Ok(Some((host.clone(), format!("https://{host}"))))
}

/// The services of one node, built once over one store and one audit trail,
/// each handed what it needs. The key and sign-in services are built by the
/// directory, which hands them the same store, audit trail and clock.
pub struct Application {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    pub audit: Audit,
    pub directory: Arc<Directory>,
    pub postroom: Arc<Postroom>,
    pub threads: Arc<Threads>,
    pub notices: Arc<Notices>,
    pub records: Arc<Records>,
    pub folders: Arc<Folders>,
    pub deliverer: Arc<Deliverer>,
    /// Signed checkpoints of the audit chain and the audit retention job.
    pub evidence: Arc<crate::evidence::Evidence>,
    /// The trusted-time check (its state goes to the console and checkpoints).
    pub time: Arc<TimeSync>,
}

impl Application {
    /// Opens the store (creating the data folder for SQLite) and builds the services.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if let mailbox::store::StoreTarget::Sqlite(_) = settings.store {
            std::fs::create_dir_all(&settings.data_dir)
                .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
        }
        let store = mailbox::store::open(&settings.store)
            .await
            .with_context(|| format!("opening {}", settings.store.describe()))?;
        let clock = mailbox::clock::system();
        let audit = Audit::new(store.clone())
            .with_checkpoints(crate::evidence::checkpoint_files(&settings)?);
        let evidence = Arc::new(crate::evidence::Evidence::build(
            &settings,
            store.clone(),
            audit.clone(),
        )?);
        let mut directory = Directory::assemble(
            store.clone(),
            audit.clone(),
            clock.clone(),
            settings.auth.clone(),
            settings.network.clone(),
        )
        .with_second_factor_key(second_factor_key(&settings)?)
        .with_reauth_window(settings.reauth_window);
        if let Some((rp_id, origin)) = webauthn_party(&settings)? {
            directory = directory
                .with_webauthn(&rp_id, &origin)
                .map_err(|e| crate::config::bad("http.public_url", e.to_string()))?;
        }
        let directory = Arc::new(directory);
        let postroom = Arc::new(
            Postroom::new(
                directory.clone(),
                store.clone(),
                audit.clone(),
                BlobStore::new(settings.data_dir.join("blobs")),
                Arc::new(blind_index_key(&settings)?),
            )
            .with_clock(clock.clone())
            .with_render_limit(&settings.renders),
        );
        let notices = Arc::new(
            Notices::new(store.clone(), settings.notify.clone())
                .with_clock(clock.clone())
                .with_audit(audit.clone()),
        );
        let records = Arc::new(
            Records::new(postroom.vault(), settings.records.retention_days)
                .with_clock(clock.clone()),
        );
        let threads = Arc::new(
            Threads::new(
                directory.clone(),
                postroom.clone(),
                store.clone(),
                audit.clone(),
            )
            .with_clock(clock.clone())
            .notifying(notices.clone()),
        );
        let folders = Arc::new(Folders::new(postroom.clone(), store.clone()));
        let deliverer = Arc::new(
            Deliverer::new(store.clone(), DeliveryPolicy::default()).notifying(notices.clone()),
        );
        let time = Arc::new(TimeSync::new(
            store.clone(),
            audit.clone(),
            settings.time.clone(),
        ));
        Ok(Self {
            time,
            settings,
            store,
            clock,
            audit,
            directory,
            postroom,
            threads,
            notices,
            records,
            folders,
            deliverer,
            evidence,
        })
    }

    /// `serve` says at start that the network has no recovery key yet (the
    /// operator console says so too, on every page, until it exists).
    pub async fn warn_without_recovery_key(&self) {
        match self.directory.keys().recovery_certificate().await {
            Ok(Some(_)) => {}
            Ok(None) => tracing::warn!(
                "the network has no recovery key: a forgotten password loses the person's items and backups cannot be taken; run `renkei admin recovery init` and keep its files offline"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot check the recovery key"),
        }
    }

    /// Binds the HTTPS listener and the configured IMAP listeners (port 0
    /// picks a free port), loading or making the TLS certificate first.
    pub async fn bind(&self) -> anyhow::Result<Listeners> {
        let settings = &self.settings;
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
        let material =
            tls::load_or_generate(&settings.tls, &settings.data_dir, &settings.public_names)?;
        if material.generated {
            tracing::info!(path = %material.cert_path.display(), "generated a self-signed certificate");
        }
        let tls = tls::server_config(&material, &settings.tls, &[b"h2", b"http/1.1"])?;
        let https = TcpListener::bind(settings.listen)
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
            Some(ImapListeners {
                listeners: imap_listeners,
                tls: tls::server_config(&material, &settings.tls, &[b"imap"])?,
            })
        };
        Ok(Listeners {
            https,
            tls,
            imap,
            fingerprint: material.fingerprint(),
        })
    }

    /// Serves on `listeners` until `shutdown` resolves, with the background
    /// work (blob sweep, session purge, retention, clock check, delivery,
    /// notification mails) beside it; waits for the workers to stop.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.sweep_orphan_blobs();
        // The clock-sync state each checkpoint carries (`unknown` until the
        // time check gives one).
        let time = self.time.clone();
        let clock_state = move || time.checked().map(|s| s.as_str().into_owned());
        self.evidence.checkpoint(clock_state().as_deref()).await;
        let evidence = self.evidence.clone().spawn(clock_state.clone());
        listeners.announce()?;
        let purge = self.purge_sessions();
        let retention = self.retention();
        let time_check = self.check_time();
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(transport::delivery::run_woken(
            self.deliverer.clone(),
            self.postroom.delivery_wake(),
            stopped(stop_rx),
        ));
        let notifier = self.notifier(&listeners, &stop_tx)?;
        let site = self.site_info(&listeners);
        let imap = self.serve_imap(listeners.imap, &stop_tx);
        let app = webmail::router(webmail::AppState {
            directory: self.directory,
            postroom: self.postroom,
            threads: self.threads,
            notices: self.notices,
            records: self.records,
            audit: self.audit,
            time: self.time,
            upload: self.settings.upload,
            site,
        });
        webmail::serve_https(listeners.https, listeners.tls, app, shutdown).await;
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
        evidence.abort();
        self.evidence.checkpoint(clock_state().as_deref()).await;
        time_check.abort();
        tracing::info!("server stopped");
        Ok(())
    }

    /// Blobs of submissions a crash cut off before their commit: swept beside
    /// serving rather than before it, since the scan grows with the stored items.
    fn sweep_orphan_blobs(&self) {
        let postroom = self.postroom.clone();
        tokio::spawn(async move {
            match postroom.sweep_orphan_blobs(Duration::from_secs(3600)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "swept orphaned blobs"),
                Err(e) => tracing::warn!(error = %e, "sweeping orphaned blobs failed"),
            }
        });
    }

    /// Every minute: expired sessions, and Idempotency-Keys older than 24 hours.
    fn purge_sessions(&self) -> JoinHandle<()> {
        let directory = self.directory.clone();
        let postroom = self.postroom.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = directory.purge_expired_sessions().await {
                    tracing::warn!(error = %e, "purging expired sessions failed");
                }
                if let Err(e) = postroom.sweep_idempotency_keys().await {
                    tracing::warn!(error = %e, "sweeping old idempotency keys failed");
                }
            }
        })
    }

    fn retention(&self) -> JoinHandle<()> {
        let records = self.records.clone();
        let every = self.settings.records.retention_interval;
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
    }

    /// The trusted-time check, at start and every `[time] check_secs`.
    fn check_time(&self) -> JoinHandle<()> {
        let time = self.time.clone();
        let every = time.policy().check_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                time.check().await;
            }
        })
    }

    /// The notification mail worker, if a relay is configured.
    fn notifier(
        &self,
        listeners: &Listeners,
        stop: &watch::Sender<bool>,
    ) -> anyhow::Result<Option<JoinHandle<()>>> {
        let Some(relay) = &self.settings.relay else {
            tracing::info!("no smtp relay configured: notification mails are off");
            return Ok(None);
        };
        let base_url = match &self.settings.public_url {
            Some(url) => url.clone(),
            None => listeners.url()?,
        };
        let notifier = Arc::new(transport::notify::Notifier::new(
            relay,
            self.store.clone(),
            self.notices.clone(),
            base_url,
        )?);
        Ok(Some(tokio::spawn(transport::notify::run(
            notifier,
            stopped(stop.subscribe()),
        ))))
    }

    /// The help desk and the IMAP server as the pages show them: the host of
    /// `[http] public_url` (else the first extra certificate name, else the
    /// address the pages are served on) and the ports actually bound.
    fn site_info(&self, listeners: &Listeners) -> webmail::SiteInfo {
        let host = self
            .settings
            .public_url
            .as_deref()
            .and_then(|u| crate::config::public_url_host(u).ok())
            .or_else(|| self.settings.public_names.first().cloned())
            .or_else(|| {
                listeners
                    .url()
                    .ok()
                    .and_then(|u| crate::config::public_url_host(u.trim_end_matches('/')).ok())
            })
            .unwrap_or_else(|| "localhost".into());
        let port = |wanted: transport::imap::TlsMode| {
            listeners.imap.as_ref().and_then(|imap| {
                imap.listeners
                    .iter()
                    .find(|(_, mode)| *mode == wanted)
                    .and_then(|(l, _)| l.local_addr().ok())
                    .map(|a| a.port())
            })
        };
        webmail::SiteInfo {
            help_desk: self.settings.help_desk.clone(),
            imap_host: host,
            imap_tls_port: port(transport::imap::TlsMode::Implicit),
            imap_starttls_port: port(transport::imap::TlsMode::StartTls),
        }
    }

    fn serve_imap(
        &self,
        imap: Option<ImapListeners>,
        stop: &watch::Sender<bool>,
    ) -> Vec<JoinHandle<()>> {
        let Some(imap) = imap else {
            return Vec::new();
        };
        let services = transport::imap::session::Services {
            directory: self.directory.clone(),
            postroom: self.postroom.clone(),
            folders: self.folders.clone(),
        };
        imap.listeners
            .into_iter()
            .map(|(listener, mode)| {
                tokio::spawn(transport::imap::serve_with(
                    listener,
                    mode,
                    imap.tls.clone(),
                    services.clone(),
                    self.settings.imap.clone(),
                    stopped(stop.subscribe()),
                ))
            })
            .collect()
    }
}

/// Resolves once the stop flag is raised.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// IMAP listeners (implicit TLS, STARTTLS) and their TLS set-up.
struct ImapListeners {
    listeners: Vec<(TcpListener, transport::imap::TlsMode)>,
    tls: Arc<rustls::ServerConfig>,
}

/// The bound listeners, ready to serve.
pub struct Listeners {
    https: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    imap: Option<ImapListeners>,
    pub fingerprint: String,
}

impl Listeners {
    pub fn url(&self) -> anyhow::Result<String> {
        let addr = self.https.local_addr()?;
        let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        };
        Ok(format!("https://{host}:{}/", addr.port()))
    }

    /// The lines tests and scripts wait for: IMAP first, HTTPS last.
    fn announce(&self) -> anyhow::Result<()> {
        if let Some(imap) = &self.imap {
            for (listener, mode) in &imap.listeners {
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
        // Tests and scripts wait for this exact line.
        println!("renkei listening on https://{}", self.https.local_addr()?);
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
