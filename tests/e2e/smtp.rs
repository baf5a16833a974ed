//! A real SMTP server for the notification tests: aiosmtpd (Debian's
//! python3-aiosmtpd, installed by scripts/test-all) with STARTTLS required, writing
//! every accepted mail into a Maildir that the tests read and decode.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One received mail, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The undecoded message, headers included.
    pub raw: String,
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpSink {
    /// Reserves a port and makes the relay's certificate; not started yet.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).expect("key");
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.path().join("maildir").join(sub)).expect("maildir");
        }
        Self {
            port,
            dir,
            child: None,
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The `[smtp]` section pointing Renkei at this relay.
    pub fn config(&self) -> String {
        format!(
            "[smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"starttls\"\n\
             from = \"Renkei <noreply@renkei.example>\"\nca_file = \"{}\"\n",
            self.port,
            self.cert_path().display()
        )
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let d = self.dir.path();
        let child = Command::new("aiosmtpd")
            .args(["-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .arg("--tlscert")
            .arg(d.join("cert.pem"))
            .arg("--tlskey")
            .arg(d.join("key.pem"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(d.join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(d.join("aiosmtpd.log"))
                    .expect("log"),
            ))
            .spawn()
            .expect("start aiosmtpd (python3-aiosmtpd)");
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not start listening");
    }

    /// The relay goes down: connections are refused until `start`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every mail received so far.
    pub fn mails(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.dir.path().join("maildir").join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let raw = std::fs::read(entry.path()).expect("mail file");
                let parsed = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .expect("a parsable mail");
                let to = parsed
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or_default()
                    .to_string();
                out.push(Mail {
                    to,
                    subject: parsed.subject().unwrap_or_default().to_string(),
                    body: parsed
                        .body_text(0)
                        .map(|b| b.into_owned())
                        .unwrap_or_default(),
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                });
            }
        }
        out
    }

    /// Waits until at least `n` mails have arrived; returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let mails = self.mails();
            if mails.len() >= n || std::time::Instant::now() > deadline {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.dir.path().join("aiosmtpd.log"))
        {
            eprintln!("--- aiosmtpd log ---\n{log}");
        }
    }
}
