//! Starts the real `renkei` binary on a free port with a fresh data folder (and a
//! fresh PostgreSQL database when `RENKEI_TEST_BACKEND=postgres`), and runs its CLI.
//!
//! Browser tests share `clients/browser.cjs` (launch headless Chromium through
//! playwright-core, sign in, screenshots, download and hash) and
//! `clients/thread_page.cjs`, started by [`run_browser`]; screenshots land in
//! `artifacts/screenshots/`. `RENKEI_TEST_BIN` points the harness at a copy of
//! the binary (worktrees sharing one target folder overwrite each other's
//! `target/debug/renkei`).

mod api;
mod db;
mod wait;

pub use api::{answer, no_files, upload_form};
pub use db::Db;
pub use wait::wait_until;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BUILT_BIN: &str = env!("CARGO_BIN_EXE_renkei");

/// The binary under test: `RENKEI_TEST_BIN` if set, else the one Cargo built.
/// (Worktrees sharing one `CARGO_TARGET_DIR` overwrite each other's
/// `target/debug/renkei`; a copy named here cannot change under a test run.)
pub fn bin() -> String {
    std::env::var("RENKEI_TEST_BIN").unwrap_or_else(|_| BUILT_BIN.to_string())
}

/// Where a test's data lives: a temp folder, plus a database URL on PostgreSQL runs.
pub struct Network {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    /// libfaketime's offset for every process started from now on (`-400d`):
    /// what they seal is signed and stored at that time, as if sent then.
    clock: std::sync::Mutex<Option<String>>,
    /// The first operator registered through [`Network::admin`]: the operator
    /// every later `renkei admin` runs as (`RENKEI_ADMIN_OPERATOR`, the
    /// configured operator for scripts). Before one exists, commands run as
    /// `bootstrap`.
    operator: std::sync::Mutex<Option<String>>,
}

/// The two facilities most tests use: a hospital and a clinic in Kagawa (37).
pub const HOSPITAL: &str = "3710123450";
pub const CLINIC: &str = "3710300017";

impl Network {
    /// Registers [`HOSPITAL`] (さぬき中央病院).
    pub fn add_hospital(&self) {
        self.admin(&[
            "facility",
            "add",
            "--code",
            HOSPITAL,
            "--name",
            "さぬき中央病院",
        ]);
    }

    /// Registers [`HOSPITAL`] (さぬき中央病院) and [`CLINIC`] (ことひら内科クリニック).
    pub fn add_hospital_and_clinic(&self) {
        self.add_hospital();
        self.admin(&[
            "facility",
            "add",
            "--code",
            CLINIC,
            "--name",
            "ことひら内科クリニック",
        ]);
    }

    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match std::env::var("RENKEI_TEST_BACKEND").as_deref() {
            Ok("postgres") => Some(create_pg_database().await),
            _ => None,
        };
        Self {
            dir,
            database_url,
            clock: std::sync::Mutex::new(None),
            operator: std::sync::Mutex::new(None),
        }
    }

    /// Moves the clock of the processes started from now on (`None`: today).
    /// Monotonic time is left alone, so timers behave.
    pub fn set_clock(&self, offset: Option<&str>) {
        if let Ok(mut c) = self.clock.lock() {
            *c = offset.map(str::to_string);
        }
    }

    /// The environment that moves a process's clock, when one is set.
    fn clock_env(&self) -> Vec<(&'static str, String)> {
        match self.clock.lock().ok().and_then(|c| c.clone()) {
            None => Vec::new(),
            Some(offset) => vec![
                (
                    "LD_PRELOAD",
                    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into(),
                ),
                ("FAKETIME", offset),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
                ("FAKETIME_DONT_RESET", "1".into()),
            ],
        }
    }

    /// A second node of the same network: its own data folder (certificate,
    /// blobs, log), the same database.
    pub fn second_node(&self) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            database_url: self.database_url.clone(),
            clock: std::sync::Mutex::new(None),
            operator: std::sync::Mutex::new(self.operator()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// What this network's time source says, read by the servers' clock
    /// check (`--time-sync-command`, as `timedatectl show -p NTPSynchronized
    /// --value` answers): synchronised unless a test says otherwise, since a
    /// test machine's kernel may well report an unsynchronised clock.
    pub fn set_time_synchronised(&self, synchronised: bool) {
        let answer = if synchronised { "yes\n" } else { "no\n" };
        std::fs::write(self.time_source(), answer).expect("time source");
    }

    fn time_source(&self) -> std::path::PathBuf {
        self.data_dir().join("time-synchronised")
    }

    /// The global options every command of this network gets.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.data_dir().display().to_string(),
        ];
        if let Some(url) = &self.database_url {
            args.push("--database-url".into());
            args.push(url.clone());
        }
        args
    }

    /// The operator `renkei admin` runs as, once one is registered.
    pub fn operator(&self) -> Option<String> {
        self.operator.lock().ok().and_then(|o| o.clone())
    }

    /// Runs `renkei <args…>` to completion (an admin command as [`Network::operator`]).
    pub fn run(&self, args: &[&str]) -> CommandOutput {
        let output = Command::new(bin())
            .args(self.args())
            .args(args)
            .envs(self.clock_env())
            .envs(self.operator().map(|id| ("RENKEI_ADMIN_OPERATOR", id)))
            // Tests of other features run with the second factor optional; the
            // two-factor tests pass `--second-factor required`.
            .env("RENKEI_SECOND_FACTOR", "optional")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run renkei");
        CommandOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs an admin command that must succeed.
    pub fn admin(&self, args: &[&str]) -> String {
        let mut full = vec!["admin"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        assert_eq!(out.code, Some(0), "renkei {full:?} failed: {}", out.stderr);
        if args.starts_with(&["user", "add"])
            && args.windows(2).any(|w| w == ["--role", "operator"])
            && let Ok(mut op) = self.operator.lock()
            && op.is_none()
        {
            *op = Some(parse_letter(&out.stdout).0);
        }
        out.stdout
    }

    /// Registers a facility and an account; returns (id, issued password).
    pub fn add_user(&self, role: &str, facility: &str, name: &str) -> (String, String) {
        let letter = self.admin(&[
            "user",
            "add",
            "--role",
            role,
            "--facility",
            facility,
            "--name",
            name,
        ]);
        parse_letter(&letter)
    }

    /// Signs in with an issued password, changes it, and returns a ready client.
    pub async fn ready_client(&self, server: &Server, id: &str, issued: &str) -> reqwest::Client {
        let client = server.client();
        let (status, _) = server.post_session(&client, id, issued).await;
        assert_eq!(status, reqwest::StatusCode::OK, "sign-in of {id}");
        let r = client
            .post(server.url("/api/v1/password"))
            .json(&serde_json::json!({ "current_password": issued, "new_password": format!("{issued}-Mine-2026") }))
            .send()
            .await
            .expect("change password");
        assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
        client
    }

    pub fn serve(&self, extra: &[&str]) -> Server {
        Server::start(self, "serve", extra)
    }

    /// The whole audit trail, as `renkei admin audit export` prints it.
    pub fn audit_export(&self) -> String {
        self.admin(&[
            "audit",
            "export",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
        ])
    }
}

/// A server whose clock is moved back would make its self-signed certificate
/// (397 days from its own today) expired for the test's client, which lives
/// in the present: the certificate is made here first, valid from today, and
/// the server keeps it (it is far from its end by the server's clock too).
fn present_certificate(dir: &Path) {
    let (cert, key) = (dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
    if cert.exists() && key.exists() {
        return;
    }
    let ymd = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    let today = chrono::Utc::now().date_naive();
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut params = rcgen::CertificateParams::new(names).expect("names");
    params.not_before = ymd(today.pred_opt().expect("yesterday"));
    params.not_after = ymd(today + chrono::Days::new(396));
    let pair = rcgen::KeyPair::generate().expect("key");
    let made = params.self_signed(&pair).expect("certificate");
    std::fs::write(&key, pair.serialize_pem()).expect("key file");
    std::fs::write(&cert, made.pem()).expect("certificate file");
}

pub struct CommandOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Reads the ID and password off a credential letter.
pub fn parse_letter(letter: &str) -> (String, String) {
    let field = |label: &str| {
        letter
            .lines()
            .find(|l| l.contains(label))
            .and_then(|l| l.rsplit(": ").next())
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {label} in letter:\n{letter}"))
    };
    (field("ユーザーID / ID"), field("Initial password"))
}

async fn create_pg_database() -> String {
    use sqlx::Connection;
    let admin =
        std::env::var("RENKEI_TEST_PG_URL").expect("RENKEI_TEST_PG_URL for the postgres backend");
    let name = format!("renkei_e2e_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("URL with a path");
    format!("{base}/{name}")
}

/// A running `renkei serve` or `renkei demo`, stopped on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub stdout_head: String,
    cert_pem: Vec<u8>,
    log: std::path::PathBuf,
}

impl Server {
    pub fn start(network: &Network, command: &str, extra: &[&str]) -> Self {
        if !network.time_source().exists() {
            network.set_time_synchronised(true);
        }
        if !network.clock_env().is_empty() {
            present_certificate(network.data_dir());
        }
        let mut child = Command::new(bin())
            .args(network.args())
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .arg(command)
            .envs(network.clock_env())
            .env(
                "RENKEI_TIME_SYNC_COMMAND",
                format!("cat {}", network.time_source().display()),
            )
            .env("RENKEI_SECOND_FACTOR", "optional")
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            // The server's log goes into the data folder, where the stolen-store test
            // searches it too; a failing test prints it.
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(network.data_dir().join("server.log"))
                    .expect("server log"),
            ))
            .spawn()
            .expect("start renkei");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut head = String::new();
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    head.push_str(&line);
                    head.push('\n');
                    if let Some(addr) = line.strip_prefix("renkei listening on https://") {
                        let _ = tx.send((addr.trim().to_string(), head.clone()));
                        sent = true;
                    }
                }
            }
        });
        let (addr, stdout_head) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.kill();
                panic!("renkei did not report its listening address");
            }
        };
        let cert_pem = std::fs::read(network.data_dir().join("tls-cert.pem")).expect("certificate");
        Self {
            log: network.data_dir().join("server.log"),
            child,
            addr: addr.parse().expect("address"),
            stdout_head,
            cert_pem,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// `GET path` answered 200 with JSON, as `client` sees it.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> serde_json::Value {
        let r = client.get(self.url(path)).send().await.expect("GET");
        assert_eq!(r.status(), reqwest::StatusCode::OK, "GET {path}");
        r.json().await.expect("JSON")
    }

    /// The server process's ID (for reading its counters under /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client that trusts exactly this server's certificate and keeps cookies.
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().expect("client")
    }

    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert_pem).expect("pem"))
            .tls_built_in_root_certs(false)
            .resolve("localhost", self.addr)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
    }
}

impl Server {
    /// Stops the server and waits for its end, so that another can take its
    /// data folder.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, as a power cut or the OOM killer would.
    pub fn kill(&self) {
        // `Child::kill` needs `&mut`; signal by PID so shared handles can do it.
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(&self.log)
        {
            eprintln!("--- server log ---\n{log}");
        }
    }
}

/// `GET url` with `Range: range`, and `If-Range: if_range` when given.
pub async fn get_range(
    client: &reqwest::Client,
    url: &str,
    range: &str,
    if_range: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(url).header("range", range);
    if let Some(v) = if_range {
        request = request.header("if-range", v);
    }
    request.send().await.expect("GET with a range")
}

/// A response header that must be there.
pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// A 206's `Content-Range: bytes FIRST-LAST/LENGTH`: the bytes it holds and
/// the whole body's length.
pub fn content_range(r: &reqwest::Response) -> (std::ops::Range<usize>, usize) {
    let value = header(r, "content-range");
    value
        .strip_prefix("bytes ")
        .and_then(|s| s.split_once('/'))
        .and_then(|(span, len)| {
            let (first, last) = span.split_once('-')?;
            Some((
                first.parse().ok()?..last.parse::<usize>().ok()? + 1,
                len.parse().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("not a byte range: {value}"))
}

/// The CSRF token a page put in its forms (`<input type="hidden" name="csrf" value="…">`).
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no CSRF field in the page: {html}"));
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Fetches a signed-in page and returns its CSRF token.
pub async fn csrf_from(client: &reqwest::Client, url: &str) -> String {
    let page = client
        .get(url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page text");
    csrf_of(&page)
}

/// Where playwright-core was installed by the test command.
pub fn node_path() -> String {
    std::env::var("RENKEI_NODE_PATH").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/renkei/node/node_modules")
    })
}

/// Runs a browser script from `tests/e2e/clients/` with node and returns the
/// JSON object it printed last; panics with its output if there is none or it
/// reports an `error`.
pub fn run_browser(script: &str, args: &[&str]) -> serde_json::Value {
    let path = format!("{}/tests/e2e/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("node")
        .arg(&path)
        .args(args)
        .env("NODE_PATH", node_path())
        .env(
            "RENKEI_SCREENSHOTS",
            std::env::var("RENKEI_SCREENSHOTS").unwrap_or_else(|_| {
                format!("{}/artifacts/screenshots", env!("CARGO_MANIFEST_DIR"))
            }),
        )
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| {
            panic!(
                "{script} printed no result: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(v.get("error").is_none(), "{script}: {v}");
    v
}

/// SHA-256 of `bytes` in lowercase hex, as pages and headers show it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
