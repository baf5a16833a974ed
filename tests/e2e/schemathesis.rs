//! Schemathesis, an independent property-based API tester from PyPI (pinned
//! and installed by `scripts/test-all` into a virtual environment under the
//! cache folder, `RENKEI_SCHEMATHESIS` naming its `st`), over every operation
//! of `/api/v1/openapi.json` against a throwaway server: generated valid and
//! invalid requests, each answer checked against the document (status,
//! media type, headers, schema), no 5xx, invalid input refused, 405s with
//! `Allow`. Seeded and short (see `schemathesis.toml` beside this file).
//! It runs as a doctor over every operation but signing out, as a clerk and
//! as the operator over the operations of their roles, and finally signs the
//! doctor out.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Network, Server};
use crate::openapi::signed_in;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/schemathesis.toml");
const VERSION: &str = "4.32.5";

/// The `st` of the pinned Schemathesis.
fn schemathesis() -> PathBuf {
    std::env::var_os("RENKEI_SCHEMATHESIS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                PathBuf::from(h).join(format!(".cache/renkei/schemathesis-{VERSION}/bin/st"))
            })
        })
        .filter(|p| p.exists())
        .expect("schemathesis: run scripts/test-all, which installs it, or set RENKEI_SCHEMATHESIS")
}

/// Runs Schemathesis as the holder of `token` over the operations `filter`
/// selects; panics with its report unless it passes.
fn run(server: &Server, who: &str, token: &str, filter: &[&str]) -> String {
    let base = server.url("/api/v1");
    let out = Command::new(schemathesis())
        .args(["--config-file", CONFIG, "run"])
        .arg(format!("{base}/openapi.json"))
        .args(["--url", &base])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(filter)
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "schemathesis as {who} found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

#[tokio::test]
async fn schemathesis_passes_over_every_operation() {
    let net = Network::new().await;
    net.add_hospital_and_clinic();
    let server = net.serve(&[]);
    let (_, doctor) = signed_in(&net, &server, "doctor").await;
    let (_, clerk) = signed_in(&net, &server, "clerk").await;
    let (_, operator) = signed_in(&net, &server, "operator").await;

    let report = run(
        &server,
        "doctor",
        &doctor,
        &["--exclude-name", "DELETE /session"],
    );
    let tested = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(
        tested.is_some_and(|n| n > 60),
        "operations tested: {report}"
    );
    let office = ["--include-path-regex", "^/(stats|audit|facility|admin)"];
    run(&server, "clerk", &clerk, &office);
    run(&server, "operator", &operator, &office);
    run(
        &server,
        "doctor",
        &doctor,
        &["--include-name", "DELETE /session"],
    );
}
