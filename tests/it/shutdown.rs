//! Graceful shutdown of the real binary under load: SIGTERM while 20 keep-alive connections
//! send signHash. Every request that was sent gets a complete answer (no reset connection),
//! each connection is told `Connection: close` by its last answer, the process exits within
//! its bound, and every signature returned has its audit row.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::support::{b64, digests, random_suffix, test_config, Csc, TestApp};

const ES256: &str = "1.2.840.10045.4.3.2";
const CONNECTIONS: usize = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What one keep-alive connection saw.
#[derive(Debug, Default)]
struct Seen {
    signed: usize,
    /// Answers other than 200 (status, body of the first few).
    refused: Vec<(StatusCode, String)>,
    /// Requests that got no complete answer.
    failed: Vec<String>,
    told_to_close: bool,
    /// The connection was still sending when SIGTERM came.
    ended_after_signal: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_every_request_sent_and_exits_within_its_bound() {
    let suffix = random_suffix();
    let mut config = test_config(&suffix);
    config.csc.scal = "1".into();
    // The in-process node prepares the subscriber, the credential and a SAD; the binary
    // under test is a second node of the same gateway (same schema, prefix, HSM labels).
    let node = TestApp::spawn_node(config.clone()).await;
    let (_, token, credential, pin) = node.active_credential("ec-p256", "signing").await;
    let (status, body) = node
        .authorize(Csc::V2, &token, &credential, &pin, 1000, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();

    let (public, admin) = (free_port(), free_port());
    let env = [
        ("SERVER__PUBLIC_ADDR", format!("127.0.0.1:{public}")),
        ("SERVER__ADMIN_ADDR", format!("127.0.0.1:{admin}")),
        ("SERVER__WORKERS", "2".into()),
        ("SERVER__SHUTDOWN_TIMEOUT_SECS", "10".into()),
        ("DATABASE__URL", config.database.url.expose().to_owned()),
        ("DATABASE__SCHEMA", config.database.schema.clone()),
        ("REDIS__URL", config.redis.url.expose().to_owned()),
        ("REDIS__KEY_PREFIX", config.redis.key_prefix.clone()),
        ("HSM__MODULE", config.hsm.module.display().to_string()),
        ("HSM__TOKEN_LABEL", config.hsm.token_label.clone()),
        ("HSM__PIN", config.hsm.pin.expose().to_owned()),
        ("HSM__WORKERS", "2".into()),
        ("HSM__LABEL_PREFIX", config.hsm.label_prefix.clone()),
        (
            "SECURITY__ADMIN_TOKEN",
            config.security.admin_token.expose().to_owned(),
        ),
        (
            "SECURITY__TOKEN_SECRET",
            config.security.token_secret.expose().to_owned(),
        ),
        ("CSC__SCAL", "1".into()),
        (
            "OTP__OUTBOX_PATH",
            config.otp.outbox_path.display().to_string(),
        ),
        ("MAIL__SMTP_HOST", config.mail.smtp_host.clone()),
        ("MAIL__SMTP_PORT", config.mail.smtp_port.to_string()),
        ("MAIL__TLS", "none".into()),
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_sigillo"));
    command.arg("serve").env("RUST_LOG", "warn");
    for (key, value) in &env {
        command.env(format!("SIGILLO__{key}"), value);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{public}");
    let probe = reqwest::Client::new();
    let started = Instant::now();
    while probe
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map_or(true, |r| r.status() != StatusCode::OK)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the binary did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 20 clients of one connection each, sending signHash back to back until an answer
    // tells them to close.
    let body = json!({ "credentialID": credential, "SAD": sad, "hashes": [b64(&digests(1, 32)[0])],
                       "signAlgo": ES256 });
    let signalled = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (url, token, body) = (
            format!("{base}/csc/v2/signatures/signHash"),
            token.clone(),
            body.clone(),
        );
        let signalled = signalled.clone();
        clients.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            for _ in 0..2000 {
                match client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(res) => {
                        let close = res
                            .headers()
                            .get("connection")
                            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                        let status = res.status();
                        match res.text().await {
                            Ok(_) if status == StatusCode::OK => seen.signed += 1,
                            Ok(text) => seen
                                .refused
                                .push((status, text.chars().take(200).collect())),
                            Err(e) => seen.failed.push(format!("body: {e}")),
                        }
                        if close {
                            seen.told_to_close = true;
                            break;
                        }
                    }
                    Err(e) => {
                        seen.failed.push(format!("{e:?}"));
                        break;
                    }
                }
            }
            seen.ended_after_signal = signalled.load(Ordering::SeqCst);
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    signalled.store(true, Ordering::SeqCst);
    let signal_at = Instant::now();
    // SAFETY: kill(2) on the child we spawned.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);

    let mut seen = Vec::new();
    for client in clients {
        seen.push(client.await.unwrap());
    }
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signal_at.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway did not exit within 15 s of SIGTERM (bound 10 s)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = signal_at.elapsed();

    let failed: Vec<&String> = seen.iter().flat_map(|s| &s.failed).collect();
    let refused: Vec<&(StatusCode, String)> = seen.iter().flat_map(|s| &s.refused).collect();
    let signed: usize = seen.iter().map(|s| s.signed).sum();
    assert_eq!(
        failed,
        Vec::<&String>::new(),
        "requests without an answer ({signed} signed, {} refused)",
        refused.len()
    );
    // A complete refusal is an answer (the SAD's 1000 signatures may run out first); a 5xx
    // is not.
    let server_errors: Vec<_> = refused
        .iter()
        .filter(|(s, _)| s.is_server_error())
        .collect();
    assert_eq!(
        server_errors,
        Vec::<&&(StatusCode, String)>::new(),
        "server errors"
    );
    assert!(
        seen.iter().all(|s| s.ended_after_signal),
        "the signal came during the load: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| s.told_to_close),
        "every connection was told to close: {seen:?}"
    );
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );

    // The audit writer drained: every signature returned has its committed row.
    let db = node.services().db.get().await.unwrap();
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE credential_id = $1 \
             AND action = 'signatures.signHash' AND outcome = 'ok'",
            &[&Uuid::parse_str(&credential).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, signed as i64, "audit rows of the signatures returned");
    assert!(signed > CONNECTIONS, "the load signed {signed}");
}
