//! `renkei admin` names the operator who runs it, and the audit trail records
//! that person as the actor (channel `cli`): `bootstrap` before the first
//! operator exists, then the configured operator for scripts
//! (`RENKEI_ADMIN_OPERATOR`, as the harness runs every command), or an
//! operator ID with their password; unnamed, a command is refused with exit
//! 78 saying what to set, and a wrong password is refused.

use std::process::Command;

use crate::harness::{HOSPITAL, Network, bin};

/// The audit lines of `renkei admin` commands.
fn admin_rows(csv: &str) -> Vec<String> {
    csv.lines()
        .filter(|l| l.contains(",admin,"))
        .map(str::to_string)
        .collect()
}

/// `renkei admin facility list` with exactly `env` (no harness operator).
fn list_as(net: &Network, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(bin())
        .args(net.args())
        .args(args)
        .args(["admin", "facility", "list"])
        .env_remove("RENKEI_ADMIN_OPERATOR")
        .env_remove("RENKEI_OPERATOR")
        .env_remove("RENKEI_OPERATOR_PASSWORD")
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn admin_commands_are_recorded_as_the_operator_who_ran_them() {
    let net = Network::new().await;
    net.add_hospital();
    let letter = net.admin(&["user", "add", "--role", "operator", "--name", "運営 花子"]);
    let (op, op_password) = crate::harness::parse_letter(&letter);
    let stored = op.replace('-', "");
    net.add_user("doctor", HOSPITAL, "讃岐 一郎");

    // Unnamed: refused, saying what to set.
    let out = list_as(&net, &[], &[]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("admin.operator") && stderr.contains("RENKEI_OPERATOR_PASSWORD"),
        "{stderr}"
    );
    // An operator ID with a wrong password: refused; with theirs: done.
    let out = list_as(
        &net,
        &["--operator", &op],
        &[("RENKEI_OPERATOR_PASSWORD", "wrong-password")],
    );
    assert_ne!(out.status.code(), Some(0));
    let out = list_as(
        &net,
        &["--operator", &op],
        &[("RENKEI_OPERATOR_PASSWORD", &op_password)],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A configured operator that is not one: refused.
    let (doctor, _) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let out = list_as(&net, &[], &[("RENKEI_ADMIN_OPERATOR", &doctor)]);
    assert_eq!(out.status.code(), Some(78));

    let csv = net.audit_export();
    let rows = admin_rows(&csv);
    let facility_add = rows.iter().find(|l| l.contains("facility add")).unwrap();
    assert!(facility_add.contains(",bootstrap,"), "{facility_add}");
    let user_adds: Vec<&String> = rows.iter().filter(|l| l.contains("user add")).collect();
    assert!(
        user_adds[0].contains(",bootstrap,"),
        "the first operator: {:?}",
        user_adds[0]
    );
    assert!(
        user_adds[1..]
            .iter()
            .all(|l| l.contains(&format!(",{stored},"))),
        "{user_adds:?}"
    );
    assert!(
        rows.iter()
            .filter(|l| l.contains("facility list"))
            .all(|l| l.contains(&format!(",{stored},"))),
        "{rows:?}"
    );
    let actors: Vec<&str> = rows.iter().filter_map(|l| l.split(',').nth(2)).collect();
    assert!(
        actors.iter().all(|a| *a == "bootstrap" || *a == stored),
        "no anonymous actor: {actors:?}"
    );
    assert!(
        rows.iter().all(|l| l.trim_end().ends_with(",cli")),
        "channel cli: {rows:?}"
    );
}
