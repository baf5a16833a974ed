//! Sign-in against the real server: an issued password must be changed first
//! and sign-out ends the session (a replayed cookie is refused); wrong
//! passwords delay but never lock, only the help desk locks; unknown, locked,
//! removed and wrong-password sign-ins look alike (answer and time); a stale
//! client behind a shared address shuts nobody out; idle sessions
//! expire; the pages' sign-in, forced change and sign-out; TLS 1.2 refused
//! unless configured; the CLI refusing bad facility codes with the broken rule.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{HOSPITAL, Network, csrf_from};

/// The idle timeout of [`idle_sessions_expire`]: the shortest the flag takes.
const IDLE: Duration = Duration::from_secs(1);

#[tokio::test]
async fn issued_password_must_be_changed_then_sign_out_ends_the_session() {
    let net = Network::new().await;
    net.add_hospital();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let server = net.serve(&[]);
    let client = server.client();
    let session_url = server.url("/api/v1/session");

    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );

    // Sign in with the issued password: the cookie is locked down, and nothing but a
    // password change is allowed.
    let r = client
        .post(&session_url)
        .json(&json!({ "id": id, "password": issued }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in [
        "__Host-renkei-session=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["must_change_password"], true);
    let r = client.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "password_change_required"
    );

    // A weak password is refused with what it lacks; the wrong current one too.
    let r = client
        .post(server.url("/api/v1/password"))
        .json(&json!({ "current_password": issued, "new_password": "kagawa2026" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "weak_password");
    let ja = err["message_ja"].as_str().unwrap();
    assert!(ja.contains("13文字以上") && ja.contains("記号"), "{ja}");
    // Long and mixed, but on the list of common passwords: refused, and said why.
    let r = client
        .post(server.url("/api/v1/password"))
        .json(&json!({ "current_password": issued, "new_password": "Password-2026!!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["message_ja"]
            .as_str()
            .unwrap()
            .contains("よく使われるパスワード"),
        "{err}"
    );
    assert!(!ja.contains("英字"), "letters are present: {ja}");
    let r = client
        .post(server.url("/api/v1/password"))
        .json(&json!({ "current_password": "guess", "new_password": "Sanuki-Udon-2026!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "wrong_current_password"
    );

    let new_pw = "Sanuki-Udon-2026!";
    let r = client
        .post(server.url("/api/v1/password"))
        .json(&json!({ "current_password": issued, "new_password": new_pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let me: Value = client
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "讃岐 一郎");
    assert_eq!(me["role"], "doctor");
    assert_eq!(me["facility"], HOSPITAL);
    assert_eq!(me["must_change_password"], false);

    // Sign out, then the old password no longer works and the new one does.
    let r = client.delete(&session_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let fresh = server.client();
    let (status, body) = server.post_session(&fresh, &id, &issued).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "bad_credentials");
    let (status, body) = server.post_session(&fresh, &id, new_pw).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["must_change_password"], false);
    let token = body["token"].as_str().unwrap().to_string();

    // After sign-out the old session token is refused.
    let r = fresh.delete(&session_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let bare = server.client();
    let r = bare
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_signed_in");
}

#[tokio::test]
async fn wrong_passwords_never_lock_only_the_help_desk_does() {
    let net = Network::new().await;
    net.add_hospital();
    let (id, issued) = net.add_user("clerk", HOSPITAL, "坂出 明美");
    let server = net.serve(&[]);
    let client = server.client();
    // Five failures are free, then each attempt waits a growing delay: the
    // answer stays "wrong ID or password" and then "wait", never "locked".
    for attempt in 1..=5 {
        let (status, body) = server
            .post_session(&client, &id, "Wrong-Password-99!")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(body["error"], "bad_credentials");
    }
    let (status, body) = server.post_session(&client, &id, &issued).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    assert!(
        body["message_ja"]
            .as_str()
            .unwrap()
            .contains("しばらく待って")
    );
    assert!(
        net.admin(&["user", "show", &id])
            .contains("locked:           false")
    );
    // The delay passes; the right password works.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = server.post_session(&client, &id, &issued).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The help desk locks: then only the right password learns it is locked.
    let out = net.admin(&["user", "lock", &id, "--reason", "端末紛失の届出"]);
    assert!(out.contains("locked"), "{out}");
    let fresh = server.client();
    let (status, body) = server.post_session(&fresh, &id, "Wrong-Password-99!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "bad_credentials");
    let (status, body) = server.post_session(&fresh, &id, &issued).await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(body["error"], "account_locked");
    assert!(body["message_ja"].as_str().unwrap().contains("ロック"));
    let out = net.admin(&["user", "unlock", &id]);
    assert!(out.contains("unlocked"), "{out}");
    let (status, body) = server.post_session(&fresh, &id, &issued).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Unknown, locked, removed and wrong-password sign-ins: the same status, the
/// same body, and the same time (medians of several attempts within 20%).
#[tokio::test]
async fn unknown_locked_removed_and_wrong_password_look_alike() {
    let net = Network::new().await;
    net.add_hospital();
    let (wrong, _) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (locked, _) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let (removed, _) = net.add_user("doctor", HOSPITAL, "丸亀 次郎");
    net.admin(&["user", "lock", &locked, "--reason", "退職"]);
    net.admin(&["user", "remove", &removed]);
    // No delays in the way of the repeated attempts.
    let server = net.serve(&["--delay-after", "1000"]);
    let client = server.client();
    const ROUNDS: usize = 41;
    let cases = [
        ("unknown", "K7M4-QX9R"),
        ("locked", &locked[..]),
        ("removed", &removed[..]),
        ("wrong", &wrong[..]),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut bodies = Vec::new();
    // Interleaved, each round starting with the next case, so a busy moment
    // of the machine and the position in the round fall on every case alike.
    for round in 0..ROUNDS {
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let id = cases[i].1;
            let started = std::time::Instant::now();
            let (status, body) = server.post_session(&client, id, "Wrong-Password-99!").await;
            times[i].push(started.elapsed());
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {body}", cases[i].0);
            if round == 0 {
                bodies.push((i, body));
            }
        }
    }
    for (i, body) in &bodies {
        assert_eq!(body, &bodies[0].1, "{} answers differently", cases[*i].0);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = times
        .iter()
        .map(|t| median(t.iter().map(Duration::as_secs_f64).collect()))
        .collect();
    // The machine's load drifts between rounds (other tests run alongside), so
    // each attempt is also taken relative to its own round's mean, and those
    // ratios' medians compared: drift cancels, a real difference stays.
    let relative: Vec<f64> = (0..cases.len())
        .map(|i| {
            median(
                (0..ROUNDS)
                    .map(|r| {
                        let mean = times.iter().map(|t| t[r].as_secs_f64()).sum::<f64>()
                            / cases.len() as f64;
                        times[i][r].as_secs_f64() / mean
                    })
                    .collect(),
            )
        })
        .collect();
    println!(
        "sign-in medians: {}",
        cases
            .iter()
            .zip(medians.iter().zip(&relative))
            .map(|((name, _), (m, r))| format!("{name} {:.1} ms ({r:.2} of its round)", m * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let fastest = relative.iter().copied().fold(f64::INFINITY, f64::min);
    let slowest = relative.iter().copied().fold(0.0, f64::max);
    assert!(
        slowest <= fastest * 1.2,
        "medians differ by more than 20%: {medians:?} s, relative {relative:?}"
    );
}

/// A clinic behind one NAT address: one mail client with a stale password
/// fails 100 times; a colleague signs in with the right password, and the
/// person behind the stale client signs in from a browser used before.
#[tokio::test]
async fn a_stale_client_behind_a_shared_address_shuts_nobody_out() {
    let net = Network::new().await;
    net.add_hospital();
    let (stale, stale_issued) = net.add_user("doctor", HOSPITAL, "讃岐 一郎");
    let (colleague, colleague_issued) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let server = net.serve(&[]);
    let browser = net.ready_client(&server, &stale, &stale_issued).await;
    let stale_pw = format!("{stale_issued}-Mine-2026");
    let mail_client = server.client();
    let mut refused = 0;
    for _ in 0..100 {
        let (status, _) = server
            .post_session(&mail_client, &stale, "Old-Password-2025!")
            .await;
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{status}"
        );
        refused += 1;
    }
    assert_eq!(refused, 100);
    // The same address, another account, the right password: signed in.
    let other = net
        .ready_client(&server, &colleague, &colleague_issued)
        .await;
    let (status, _) = server.get_answer(&other, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    // The stale client's own account, from the browser it used before.
    let (status, body) = server.post_session(&browser, &stale, &stale_pw).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The account was never locked.
    assert!(
        net.admin(&["user", "show", &stale])
            .contains("locked:           false")
    );
}

#[tokio::test]
async fn idle_sessions_expire() {
    let net = Network::new().await;
    net.add_hospital();
    let (id, issued) = net.add_user("liaison", HOSPITAL, "地域連携室");
    let server = net.serve(&["--idle-timeout-secs", &IDLE.as_secs().to_string()]);
    let client = server.client();
    let (status, _) = server.post_session(&client, &id, &issued).await;
    assert_eq!(status, StatusCode::OK);
    // Still there right away (the password change is pending, so 403, not 401).
    let r = client.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Only time passing ends it: any request in between would count as
    // activity, so there is nothing to poll. The window plus a margin.
    tokio::time::sleep(IDLE + Duration::from_millis(200)).await;
    let r = client.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "session_expired");

    // The page sends the browser to a sign-in page that says why.
    let (status, _) = server.post_session(&client, &id, &issued).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(IDLE + Duration::from_millis(200)).await;
    let r = client.get(server.url("/password")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?expired=1");
    let page = client
        .get(server.url("/login?expired=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("セッションの有効期限が切れました"), "{page}");
}

#[tokio::test]
async fn the_pages_sign_in_force_the_change_and_sign_out() {
    let net = Network::new().await;
    net.add_hospital();
    let (id, issued) = net.add_user("doctor", HOSPITAL, "高松 花子");
    let server = net.serve(&[]);
    let client = server.client();

    let page = client.get(server.url("/login")).send().await.unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains("ユーザーID") && page.contains("パスワード"),
        "{page}"
    );
    let english = client
        .get(server.url("/login?lang=en"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("Account ID"), "{english}");
    // The choice sticks until switched back.
    let r = client
        .post(server.url("/login"))
        .form(&[("id", "K7M4-QX9R"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("the ID or password is wrong")
    );
    let japanese = client
        .get(server.url("/login?lang=ja"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(japanese.contains("ユーザーID"));

    let r = client
        .post(server.url("/login"))
        .form(&[("id", id.as_str()), ("password", "Wrong-Password-99!")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("IDまたはパスワードが違います")
    );

    let r = client
        .post(server.url("/login"))
        .form(&[("id", id.as_str()), ("password", issued.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/password");
    let r = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(
        r.headers()["location"],
        "/password",
        "home waits for the change"
    );

    // A form post without the page's token is refused, and changes nothing.
    let r = client
        .post(server.url("/password"))
        .form(&[
            ("current_password", issued.as_str()),
            ("new_password", "Takamatsu-Port-2026#"),
            ("confirm_password", "Takamatsu-Port-2026#"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("ページを開き直して"));
    let csrf = csrf_from(&client, &server.url("/password")).await;
    let r = client
        .post(server.url("/password"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current_password", issued.as_str()),
            ("new_password", "short"),
            ("confirm_password", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("13文字以上にしてください"));

    let new_pw = "Takamatsu-Port-2026#";
    let r = client
        .post(server.url("/password"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current_password", issued.as_str()),
            ("new_password", new_pw),
            ("confirm_password", new_pw),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("パスワードを変更しました"));
    let home = client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("高松 花子") && home.contains("さぬき中央病院"),
        "{home}"
    );

    // A cross-site form post is refused even with the cookie.
    let r = client
        .post(server.url("/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Without the token sign-out is refused too; with it, it works.
    let r = client.post(server.url("/logout")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let csrf = csrf_from(&client, &server.url("/")).await;
    let r = client
        .post(server.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?signed_out=1");
    let r = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/login");
}

#[tokio::test]
async fn tls_1_2_is_refused_unless_configured() {
    let net = Network::new().await;
    let server = net.serve(&[]);
    let old = server
        .client_builder()
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert!(old.get(server.url("/healthz")).send().await.is_err());
    assert!(
        server
            .client()
            .get(server.url("/healthz"))
            .send()
            .await
            .is_ok()
    );
    drop(server);
    let server = net.serve(&["--allow-tls12"]);
    let old = server
        .client_builder()
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert_eq!(
        old.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cli_refuses_bad_facility_codes_with_the_rule() {
    let net = Network::new().await;
    let out = net.run(&[
        "admin",
        "facility",
        "add",
        "--code",
        "3710123459",
        "--name",
        "誤記病院",
    ]);
    assert_eq!(out.code, Some(65));
    assert!(
        out.stderr.contains("check digit") && out.stderr.contains("検証番号"),
        "{}",
        out.stderr
    );
    let out = net.run(&[
        "admin",
        "facility",
        "add",
        "--code",
        "0110113719",
        "--name",
        "北海道の病院",
    ]);
    assert_eq!(out.code, Some(65));
    assert!(out.stderr.contains("approval reference"), "{}", out.stderr);
    net.admin(&[
        "facility",
        "add",
        "--code",
        "0110113719",
        "--name",
        "北海道の病院",
        "--approval-ref",
        "承認2026-07",
    ]);
    let list = net.admin(&["facility", "list"]);
    assert!(list.contains("0110113719\t北海道の病院"), "{list}");
    let out = net.run(&[
        "admin",
        "user",
        "add",
        "--role",
        "doctor",
        "--facility",
        "0110113719",
        "--name",
        "a",
        "--email",
        "bad",
    ]);
    assert_eq!(out.code, Some(65), "{}", out.stderr);
    let out = net.run(&["admin", "user", "show", "K7M4-QX9R"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
}
