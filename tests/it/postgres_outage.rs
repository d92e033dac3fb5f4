//! PostgreSQL lost under signHash (every connection cut, new ones refused, as a stopped server
//! looks from the gateway): signHash fails closed — no signature leaves without its audit row
//! — the SAD keeps what the failed request took, and the gateway serves again by itself once
//! PostgreSQL is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sigillo::config::Secret;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{digests, env, random_suffix, test_config, Csc, TestApp};

const ES256: &str = "1.2.840.10045.4.3.2";

/// A TCP relay in front of the test PostgreSQL that the test can cut and restore.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up_, links_) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up_.load(Ordering::SeqCst) {
                    continue; // dropped at once: the server is "down"
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links_.lock().unwrap().push(link);
            }
        });
        Relay {
            port,
            up,
            links,
            accept,
        }
    }

    /// Every open connection cut, new ones refused.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signhash_fails_closed_while_postgresql_is_gone_and_recovers_by_itself() {
    // postgres://user@host:port/db: the relay stands where host:port was.
    let real = env("SIGILLO_TEST_DATABASE_URL");
    let (head, rest) = real.split_once('@').unwrap();
    let (address, tail) = rest.split_once('/').unwrap();
    let relay = Relay::start(address.to_owned()).await;
    let via_relay = format!("{head}@127.0.0.1:{}/{tail}", relay.port);
    let mut config = test_config(&random_suffix());
    config.database.url = Secret::new(via_relay);
    config.otp.send_limit = 100;
    config.csc.scal = "1".into();
    let app = TestApp::spawn_node(config).await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (status, body) = app
        .authorize(Csc::V2, &token, &credential, &pin, 2, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let hash = digests(1, 32);
    let sign = || app.sign_hash(Csc::V2, &token, &credential, &sad, &hash, None, ES256, None);
    let (status, body) = sign().await;
    assert_eq!(status, StatusCode::OK, "{body}");

    relay.cut();
    for _ in 0..3 {
        let (status, body) = sign().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        assert!(
            body.get("signatures").is_none(),
            "no signature without its audit row"
        );
    }

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let (status, body) = sign().await;
        if status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        status.0,
        StatusCode::OK,
        "served again with no restart: {}",
        status.1
    );
    // The SAD had 2: one before the outage, one after; the failed ones took nothing.
    let (status, _) = sign().await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let client = app.services().db.get().await.unwrap();
    let ok: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE actor = $1 AND action = 'signatures.signHash' \
             AND outcome = 'ok'",
            &[&user.user_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ok, 2,
        "every signature returned has its audit row, and only those"
    );
}
