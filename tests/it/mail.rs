//! E-mail over real SMTP (the loopback server of scripts/test, storing into a Maildir): the
//! expiry and PIN notices arrive in the subscriber's language; with the server down a message
//! waits in the outbox, is retried with backoff and arrives once it is up (or is given up
//! after max_attempts, counted); two nodes send each message once; a message survives a
//! gateway restart and the claim of a node that died mid-send.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sigillo::mail::outbox::{self, MailStatus};
use sigillo::mail::{self, Locale, Message, StatusChange};
use sigillo::notices;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{
    captured_logs, env, random_suffix, test_config, TestApp, TestCredential, TestUser,
};
use sigillo::config::Config;

/// One stored message: its headers (unfolded) and its text (quoted-printable decoded).
struct Mail {
    headers: Vec<(String, String)>,
    text: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn decode_qp(text: &str) -> String {
    let bytes = text.replace("=\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn parse(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    // Single-part messages are quoted-printable; a multipart one is decoded part by part
    // where a test needs it (its text part is quoted-printable too).
    let text = decode_qp(body);
    Mail { headers, text }
}

/// Every message in the Maildir `dir` (new/ and cur/).
fn maildir(dir: &Path) -> Vec<Mail> {
    let mut mails = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(raw) = std::fs::read_to_string(entry.path()) {
                mails.push(parse(&raw));
            }
        }
    }
    mails
}

fn test_maildir() -> PathBuf {
    PathBuf::from(env("SIGILLO_TEST_MAILDIR"))
}

/// The messages in `dir` whose text contains `needle`, once at least `n` are there.
async fn wait_for(dir: &Path, needle: &str, n: usize, within: Duration) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found: Vec<Mail> = maildir(dir)
            .into_iter()
            .filter(|m| m.text.contains(needle))
            .collect();
        if found.len() >= n || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn serial_of(app: &TestApp, credential: &str) -> String {
    let id = Uuid::parse_str(credential).unwrap();
    sigillo::db::repo::credentials::find(&app.services().db, id)
        .await
        .unwrap()
        .unwrap()
        .serial_number
}

/// The enrolment's own mail (the setup link, the sealed envelopes), which the tests below
/// leave out of their counts.
const ENROLMENT_KINDS: &str = "('setup_link', 'envelope')";

/// The outbox rows of `user_id` besides the enrolment's, oldest first: (mail_id, status).
async fn outbox_of(app: &TestApp, user_id: &str) -> Vec<(i64, MailStatus)> {
    let client = app.services().db.get().await.unwrap();
    let ids: Vec<i64> = client
        .query(
            &format!(
                "SELECT mail_id FROM mail_outbox WHERE user_id = $1 \
                 AND kind NOT IN {ENROLMENT_KINDS} ORDER BY mail_id"
            ),
            &[&user_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut rows = Vec::new();
    for id in ids {
        rows.push((
            id,
            outbox::status(&app.services().db, id)
                .await
                .unwrap()
                .unwrap(),
        ));
    }
    rows
}

async fn wait_status(
    app: &TestApp,
    mail_id: i64,
    want: impl Fn(&MailStatus) -> bool,
) -> MailStatus {
    for _ in 0..200 {
        let s = outbox::status(&app.services().db, mail_id)
            .await
            .unwrap()
            .unwrap();
        if want(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mail {mail_id} never reached the expected state");
}

/// A port on 127.0.0.1 that nobody listens on (bound once, then released).
/// A subscriber with a credential, enrolled (setup link, envelope) through a node of
/// `config`'s gateway whose mail works, stopped before the test's own nodes start: the tests
/// of an SMTP server that is down still get subscribers the way the operator makes them.
async fn enrolled_through_working_mail(config: &Config) -> (TestUser, TestCredential) {
    let helper = TestApp::spawn_node(config.clone()).await;
    let user = helper.create_user("sms").await;
    let credential = helper.create_credential(&user, "ec-p256", "signing").await;
    // Every enrolment mail marked sent (not only in the Maildir) before the node stops.
    let client = helper.services().db.get().await.unwrap();
    for _ in 0..100 {
        let unsent: i64 = client
            .query_one(
                "SELECT count(*) FROM mail_outbox WHERE status <> 'sent'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if unsent == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(client);
    helper.running.stop().await;
    (user, credential)
}

fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private SMTP server (scripts/smtp-maildir.py) on `port`, storing into `dir`; it stops
/// when dropped, or by itself after two minutes.
struct PrivateSmtp(Child);

impl PrivateSmtp {
    async fn start(port: u16, dir: &Path) -> PrivateSmtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/smtp-maildir.py");
        let mut child = Command::new(env("SIGILLO_TEST_SMTP_PYTHON"))
            .arg(script)
            .args(["--port", &port.to_string(), "--max-seconds", "120"])
            .arg("--maildir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return PrivateSmtp(child);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the private SMTP server did not start on port {port}");
    }
}

impl Drop for PrivateSmtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_pin_notices_arrive_over_smtp_in_the_users_language() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let dir = test_maildir();

    // An Italian subscriber (the default) changes the PIN.
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let serial = serial_of(&app, &credential).await;
    let otp = app.operation_otp(&token, &credential, "pin_change").await;
    let new_pin = if pin == "13572468" {
        "24681357"
    } else {
        "13572468"
    };
    let (status, body) = app
        .post(
            &format!("/api/v1/credentials/{credential}/pin"),
            Some(&token),
            json!({ "pin": pin, "new_pin": new_pin, "otp": otp }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let notice = format!("il PIN della credenziale di firma {serial}");
    let mails = wait_for(&dir, &notice, 1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "one PIN notice, in the Maildir");
    let m = &mails[0];
    assert!(
        m.text.contains(&format!(
            "il PIN della credenziale di firma {serial} è stato cambiato"
        )),
        "{}",
        m.text
    );
    assert!(m.text.contains("Gentile Mario Rossi"), "{}", m.text);
    assert_eq!(m.header("To"), Some(user.email.as_str()));
    assert_eq!(m.header("From"), Some("sigillo <noreply@sigillo.example>"));
    // The SMTP server has the message; the sender marks the row sent just after its reply.
    let mut rows = outbox_of(&app, &user.user_id).await;
    for _ in 0..50 {
        if rows.len() != 1 || rows[0].1.status == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        rows = outbox_of(&app, &user.user_id).await;
    }
    assert_eq!(rows.len(), 1);
    let (mail_id, row) = &rows[0];
    assert_eq!(
        (row.kind.as_str(), row.status.as_str()),
        ("pin_changed", "sent")
    );
    assert!(m
        .header("Message-ID")
        .is_some_and(|id| id.contains("@sigillo.example>")));
    assert!(*mail_id > 0);

    // An English subscriber gets the expiry notice in English.
    let en = app.create_user("sms").await;
    assert!(
        outbox::set_locale(&app.services().db, &en.user_id, Locale::En)
            .await
            .unwrap()
    );
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/users/{}/credentials", en.user_id),
            json!({ "key_algo": "ec-p256", "purpose": "signing", "validity_days": 40 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let expiring = body["serial_number"].as_str().unwrap().to_owned();
    let id = body["credential_id"].as_str().unwrap();
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(notices::run_once(app.services(), today).await.unwrap(), 1);
    let notice = format!("your signing certificate {expiring} expires on");
    let mails = wait_for(&dir, &notice, 1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "one expiry notice");
    let m = &mails[0];
    let expiry = (OffsetDateTime::now_utc() + time::Duration::days(40)).date();
    let subject = m.header("Subject").unwrap_or_default();
    assert!(
        subject.starts_with("Your signing certificate expires on 20"),
        "{subject}"
    );
    assert!(
        m.text
            .contains(&format!("your signing certificate {expiring} expires on")),
        "{}",
        m.text
    );
    assert!(
        m.text.contains(&format!("{id}/renew")) && m.text.contains("Dear Mario Rossi"),
        "{}",
        m.text
    );
    // The date is the certificate's (its validity may end a day off "now + 40 days").
    assert!(
        subject.contains(&expiry.to_string())
            || subject.contains(&(expiry - time::Duration::days(1)).to_string())
            || subject.contains(&(expiry + time::Duration::days(1)).to_string()),
        "{subject}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_smtp_server_down_a_message_waits_is_retried_and_arrives_once_it_is_up() {
    let port = dead_port();
    let mut config = test_config(&random_suffix());
    let (user, credential) = enrolled_through_working_mail(&config).await;
    config.mail.smtp_port = port;
    config.mail.retry_base_ms = 300;
    config.mail.retry_max_ms = 1200;
    config.mail.max_attempts = 100;
    let app = TestApp::spawn_node(config).await;
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/credentials/{}/suspend", credential.id),
            json!({ "reason": "lost phone" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = outbox_of(&app, &user.user_id).await;
    assert_eq!(rows.len(), 1, "the suspension queued its notice");
    let mail_id = rows[0].0;
    assert_eq!(rows[0].1.kind, "credential_suspended");

    // Nobody listens: the message stays pending, attempt after attempt, each later than the
    // one before (300 ms, 600 ms, then 1.2 s apart).
    let failing = wait_status(&app, mail_id, |s| s.attempts >= 3).await;
    assert_eq!(failing.status, "pending");
    assert!(
        failing
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("SMTP")),
        "{failing:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = outbox::status(&app.services().db, mail_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.status, "pending");
    assert!(
        later.attempts <= failing.attempts + 3,
        "backoff: at most one attempt per 1.2 s once at the cap ({} then {})",
        failing.attempts,
        later.attempts
    );
    assert!(app.services().metrics.mail_send_errors.get() >= 3);

    // The server comes up on that port: the message arrives, once.
    let private = tempfile::tempdir().unwrap();
    let _smtp = PrivateSmtp::start(port, private.path()).await;
    let serial = serial_of(&app, &credential.id).await;
    let sent = wait_status(&app, mail_id, |s| s.status == "sent").await;
    assert!(sent.sent_at.is_some() && sent.last_error.is_none());
    let mails = wait_for(private.path(), &serial, 1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].text.contains("è stata sospesa"),
        "{}",
        mails[0].text
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(maildir(private.path()).len(), 1, "sent once");
    assert_eq!(app.services().metrics.mail_failed.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_given_up_after_max_attempts_logged_and_counted() {
    let port = dead_port();
    let mut config = test_config(&random_suffix());
    let (user, credential) = enrolled_through_working_mail(&config).await;
    config.mail.smtp_port = port;
    config.mail.retry_base_ms = 100;
    config.mail.retry_max_ms = 100;
    config.mail.max_attempts = 3;
    let app = TestApp::spawn_node(config).await;
    let (status, _) = app
        .admin_post(
            &format!("/admin/v1/credentials/{}/revoke", credential.id),
            json!({ "reason": "test" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let rows = outbox_of(&app, &user.user_id).await;
    let mail_id = rows[0].0;
    let failed = wait_status(&app, mail_id, |s| s.status == "failed").await;
    assert_eq!(failed.attempts, 3);
    assert_eq!(app.services().metrics.mail_failed.get(), 1);
    let metrics = String::from_utf8(app.services().metrics.render()).unwrap();
    assert!(metrics.contains("sigillo_mail_failed_total 1"), "{metrics}");
    assert!(captured_logs()
        .lines()
        .any(|l| l.contains("mail given up") && l.contains(&format!("\"mail_id\":{mail_id}"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_message_exactly_once() {
    let mut config = test_config(&random_suffix());
    config.mail.batch = 2;
    config.mail.poll_interval_ms = 100;
    let (user, _) = enrolled_through_working_mail(&config).await;
    let a = TestApp::spawn_node(config.clone()).await;
    let b = TestApp::spawn_node(config).await;
    let tag = format!("twonodes-{}", random_suffix());
    let n = 30;
    {
        let mut client = a.services().db.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        for i in 0..n {
            let message = Message::StatusChanged {
                serial_number: format!("{tag}-{i:02}"),
                change: StatusChange::Resumed,
            };
            mail::enqueue(&tx, &user.user_id, &message).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    a.services().mail.wake();
    b.services().mail.wake();
    let mails = wait_for(&test_maildir(), &tag, n, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails_after: Vec<Mail> = maildir(&test_maildir())
        .into_iter()
        .filter(|m| m.text.contains(&tag))
        .collect();
    assert_eq!(mails.len(), n, "every message arrived");
    assert_eq!(mails_after.len(), n, "and none twice");
    for i in 0..n {
        let one = format!("{tag}-{i:02} ");
        assert_eq!(
            mails_after.iter().filter(|m| m.text.contains(&one)).count(),
            1,
            "{one}"
        );
    }
    let client = a.services().db.get().await.unwrap();
    let rows = client
        .query(
            &format!(
                "SELECT status, attempts, count(*) FROM mail_outbox \
                 WHERE kind NOT IN {ENROLMENT_KINDS} GROUP BY status, attempts"
            ),
            &[],
        )
        .await
        .unwrap();
    let summary: Vec<(String, i32, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        summary,
        vec![("sent".to_owned(), 1, 30)],
        "each sent on its first claim"
    );
    let sent = a.services().metrics.mail_sent.get() + b.services().metrics.mail_sent.get();
    assert_eq!(sent, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_survives_a_gateway_restart_and_a_dead_nodes_claim() {
    let mut config = test_config(&random_suffix());
    // The first node cannot reach any SMTP server.
    let mut down = config.clone();
    down.mail.smtp_port = dead_port();
    down.mail.retry_base_ms = 100;
    down.mail.retry_max_ms = 100;
    down.mail.max_attempts = 100;
    let (user, credential) = enrolled_through_working_mail(&config).await;
    let a = TestApp::spawn_node(down).await;
    let serial = serial_of(&a, &credential.id).await;
    let (status, _) = a
        .admin_post(
            &format!("/admin/v1/credentials/{}/suspend", credential.id),
            json!({ "reason": "test" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mail_id = outbox_of(&a, &user.user_id).await[0].0;
    wait_status(&a, mail_id, |s| s.attempts >= 1 && s.last_error.is_some()).await;
    a.running.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A node claims it and dies before sending (it never marks it): its lease holds the
    // message for 3 s, then it is due again.
    let db = sigillo::db::connect(&config.database).await.unwrap();
    let lease = Duration::from_secs(3);
    let mut dead = Vec::new();
    for _ in 0..150 {
        dead = outbox::claim(&db, "dead-node", lease, 10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1, "the dead node held the message");
    let held_until = outbox::status(&db, mail_id)
        .await
        .unwrap()
        .unwrap()
        .next_attempt_at;

    // A new gateway on the same database, with the SMTP server up, sends it after the lease.
    config.mail.poll_interval_ms = 200;
    let b = TestApp::spawn_node(config).await;
    let sent = wait_status(&b, mail_id, |s| s.status == "sent").await;
    assert!(
        sent.sent_at.unwrap() >= held_until,
        "sent at {:?}, while the dead node's lease held until {held_until}",
        sent.sent_at
    );
    let mails: Vec<Mail> = wait_for(&test_maildir(), &serial, 2, Duration::from_secs(5))
        .await
        .into_iter()
        .filter(|m| m.text.contains("sospesa"))
        .collect();
    assert_eq!(
        mails.len(),
        1,
        "the suspension notice, once (besides the envelope)"
    );
    // The dead node's claim is void: it cannot mark what another node sent.
    assert!(!outbox::mark_sent(&db, mail_id, dead[0].claim_token)
        .await
        .unwrap());
    assert!(
        !outbox::mark_failed(&db, mail_id, dead[0].claim_token, "x", None)
            .await
            .unwrap()
    );
    assert_eq!(
        outbox::status(&db, mail_id).await.unwrap().unwrap().status,
        "sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_travels_with_its_message_and_leaves_the_database_once_sent() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    assert!(
        outbox::set_locale(&app.services().db, &user.user_id, Locale::En)
            .await
            .unwrap()
    );
    let serial = format!("env-{}", random_suffix());
    let pdf: Vec<u8> = b"%PDF-2.0\n"
        .iter()
        .copied()
        .chain((0..3000u32).map(|i| (i % 251) as u8))
        .collect();
    let mail_id = {
        let client = app.services().db.get().await.unwrap();
        let message = Message::Envelope {
            serial_number: serial.clone(),
            pdf: pdf.clone(),
        };
        mail::enqueue(&client, &user.user_id, &message)
            .await
            .unwrap()
    };
    app.services().mail.wake();
    wait_status(&app, mail_id, |s| s.status == "sent").await;
    let raw = {
        let mut found = None;
        for _ in 0..50 {
            for sub in ["new", "cur"] {
                for entry in std::fs::read_dir(test_maildir().join(sub))
                    .unwrap()
                    .flatten()
                {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    if text.contains(&format!("busta-{serial}.pdf")) {
                        found = Some(text);
                    }
                }
            }
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found.expect("the envelope arrived")
    };
    let raw = raw.replace("\r\n", "\n");
    assert!(raw.contains("Content-Type: multipart/mixed"), "{raw}");
    assert!(raw.contains("Content-Type: application/pdf"), "{raw}");
    // The PDF's part, base64 as lettre writes it, decodes to the bytes queued.
    let part = raw
        .split("Content-Type: application/pdf")
        .nth(1)
        .unwrap()
        .split_once("\n\n")
        .unwrap()
        .1;
    let b64: String = part
        .lines()
        .take_while(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(crate::support::unb64(b64.trim()), pdf);
    assert!(decode_qp(&raw).contains(&format!(
        "sealed envelope of your signing credential {serial}"
    )));
    let client = app.services().db.get().await.unwrap();
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM mail_attachments WHERE mail_id = $1",
            &[&mail_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the attachment is dropped once sent");
}
