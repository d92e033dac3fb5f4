//! The portal pages reached without signing in — the emergency suspension and "Non riesco ad
//! accedere" — and the signing history (page and JSON API), the expiry notices and the
//! renewal, driven like a browser (a cookie jar, the forms' CSRF tokens): each changes the real
//! state (the credential is suspended and signHash refused; the old password fails and the new
//! one works), refuses readably in Italian and English, refuses a form without its CSRF token
//! and leaves the state as it was, and answers byte for byte the same for an unknown and a
//! known user id.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::emergency::mails_with;
use crate::support::{assert_error, digests, random_suffix, Csc, TestApp, TestUser, OID_SHA256};

const ES256: &str = "1.2.840.10045.4.3.2";
const NEW_PASSWORD: &str = "Nuova-Password-2027!";

/// A browser: its cookies, no redirects followed.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// A page as the browser got it.
pub struct Got {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Got {
    /// The value of the page's first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        field(&self.body, "csrf").unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body))
    }
}

/// The value of the first `name="<name>"` input of `html`.
pub fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.public.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn answer(&mut self, res: reqwest::Response) -> Got {
        self.keep(res.headers());
        let status = res.status();
        let location = res
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        Got {
            status,
            location,
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Got {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.answer(res).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Got {
        self.submit(path, form).await
    }

    /// POST of any serializable form.
    pub async fn submit<T: serde::Serialize + ?Sized>(&mut self, path: &str, form: &T) -> Got {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.answer(res).await
    }

    /// Signs in through the portal's sign-in page.
    pub async fn sign_in(&mut self, user: &TestUser) {
        let form = self.get("/portal/login").await;
        let csrf = form.csrf();
        let got = self
            .post(
                "/portal/login",
                &[
                    ("csrf", &csrf),
                    ("user_id", &user.user_id),
                    ("password", &user.password),
                ],
            )
            .await;
        assert_eq!(got.status, StatusCode::SEE_OTHER, "{}", got.body);
        assert!(got.location.is_some_and(|l| l.starts_with("/portal/")));
    }
}

/// Gives `user` a fresh emergency code through the domain function the envelope uses.
async fn new_code(app: &TestApp, user: &TestUser) -> String {
    let (code, digest) =
        sigillo::activation::emergency::new_code_for(app.services(), &user.user_id)
            .await
            .unwrap();
    sigillo::activation::emergency::store_digest(app.services(), &user.user_id, &digest)
        .await
        .unwrap();
    code
}

async fn status_of(app: &TestApp, credential: &str) -> String {
    sigillo::db::repo::credentials::find(&app.services().db, credential.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .status
        .as_str()
        .to_owned()
}

async fn sign(app: &TestApp, token: &str, credential: &str, sad: &str, n: usize) -> StatusCode {
    app.sign_hash(
        Csc::V2,
        token,
        credential,
        sad,
        &digests(n, 32),
        Some(OID_SHA256),
        ES256,
        None,
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emergency_page_suspends_every_credential_and_signhash_is_refused() {
    let app = TestApp::spawn_with(|c| {
        c.csc.scal = "1".into();
        c.otp.send_limit = 100;
    })
    .await;
    let (user, token, active, pin) = app.active_credential("ec-p256", "signing").await;
    let inactive = app.create_credential(&user, "ec-p256", "signing").await;
    let (status, body) = app
        .authorize(Csc::V2, &token, &active, &pin, 5, None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sad = body["SAD"].as_str().unwrap().to_owned();
    let code = new_code(&app, &user).await;
    let mut browser = Browser::new(&app);

    // The form, in Italian by default, every input labelled.
    let form = browser.get("/portal/emergency").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("Sospensione di emergenza"),
        "{}",
        form.body
    );
    assert!(form.body.contains("<label for=\"user_id\">"));
    assert!(form.body.contains("<label for=\"emergency_code\">"));
    let csrf = form.csrf();

    // A form without its CSRF token (another site's) changes nothing.
    let forged = browser
        .post(
            "/portal/emergency",
            &[
                ("csrf", "x"),
                ("user_id", &user.user_id),
                ("emergency_code", &code),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.body.contains("Il modulo è scaduto"),
        "{}",
        forged.body
    );
    assert_eq!(status_of(&app, &active).await, "active");

    // A wrong code for a known user id and any code for an unknown one: the same page.
    let known = browser
        .post(
            "/portal/emergency",
            &[
                ("csrf", &csrf),
                ("user_id", &user.user_id),
                ("emergency_code", "0000-0000-0000"),
            ],
        )
        .await;
    let nobody = format!("nobody-{}", random_suffix());
    let unknown = browser
        .post(
            "/portal/emergency",
            &[
                ("csrf", &csrf),
                ("user_id", &nobody),
                ("emergency_code", "0000-0000-0000"),
            ],
        )
        .await;
    assert_eq!(known.status, StatusCode::BAD_REQUEST);
    assert!(
        known
            .body
            .contains("Codice utente o codice di emergenza non corretti."),
        "{}",
        known.body
    );
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    let english = browser
        .post(
            "/portal/emergency",
            &[
                ("csrf", &csrf),
                ("lang", "en"),
                ("user_id", &user.user_id),
                ("emergency_code", "0000-0000-0000"),
            ],
        )
        .await;
    assert_eq!(english.status, StatusCode::BAD_REQUEST);
    assert!(
        english.body.contains("Wrong user ID or emergency code."),
        "{}",
        english.body
    );
    assert_eq!(status_of(&app, &active).await, "active");

    // The right code, typed in lower case with spaces: both credentials are suspended.
    let typed = code.to_lowercase().replace('-', " ");
    let done = browser
        .post(
            "/portal/emergency",
            &[
                ("csrf", &csrf),
                ("user_id", &user.user_id),
                ("emergency_code", &typed),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body
            .contains("i tuoi certificati di firma sono sospesi"),
        "{}",
        done.body
    );
    assert!(
        done.body.contains("<dd id=\"suspended-count\">2</dd>"),
        "{}",
        done.body
    );
    for id in [&active, &inactive.id] {
        assert_eq!(status_of(&app, id).await, "suspended", "{id}");
    }
    // The SAD given before signs nothing now.
    assert_eq!(
        sign(&app, &token, &active, &sad, 1).await,
        StatusCode::BAD_REQUEST
    );
}

/// The link tokens of the recovery e-mails sent to `user_id`, once `n` have arrived.
async fn recovery_tokens(user_id: &str, n: usize) -> Vec<String> {
    let mails = mails_with(
        &[user_id, "portal.test/portal/recovery?token="],
        n,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(mails.len(), n, "recovery e-mails for {user_id}");
    mails
        .iter()
        .map(|m| {
            let at = m.find("?token=").unwrap() + 7;
            m[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .collect()
        })
        .collect()
}

async fn login_status(app: &TestApp, user_id: &str, password: &str) -> StatusCode {
    app.client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(user_id, Some(password))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_pages_set_a_new_password_and_end_every_session() {
    let app = TestApp::spawn_with(|c| {
        c.recovery.link = "http://portal.test/portal/recovery?token={token}".into();
    })
    .await;
    let user = app.create_user("sms").await;
    let old_token = app.login(&user).await;
    let mut browser = Browser::new(&app);

    let form = browser.get("/portal/recovery").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("Non riesco ad accedere"),
        "{}",
        form.body
    );
    assert!(form.body.contains("<label for=\"user_id\">"));
    let csrf = form.csrf();

    // Known and unknown user ids: byte for byte the same page.
    let nobody = format!("nobody-{}", random_suffix());
    let unknown = browser
        .post(
            "/portal/recovery",
            &[("csrf", &csrf), ("action", "ask"), ("user_id", &nobody)],
        )
        .await;
    let known = browser
        .post(
            "/portal/recovery",
            &[
                ("csrf", &csrf),
                ("action", "ask"),
                ("user_id", &user.user_id),
            ],
        )
        .await;
    assert_eq!(known.status, StatusCode::OK, "{}", known.body);
    assert!(
        known.body.contains("Se il codice utente è registrato"),
        "{}",
        known.body
    );
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));

    let token = recovery_tokens(&user.user_id, 1).await.remove(0);
    let link = format!("/portal/recovery?token={token}");
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for label in ["otp", "new_password", "new_password_again"] {
        assert!(
            page.body.contains(&format!("<label for=\"{label}\">")),
            "{label}"
        );
    }
    assert!(
        page.body.contains("value=\"sms\""),
        "an SMS user gets the button"
    );
    let sms = browser
        .post(
            "/portal/recovery",
            &[("csrf", &csrf), ("action", "sms"), ("token", &token)],
        )
        .await;
    assert_eq!(sms.status, StatusCode::OK, "{}", sms.body);
    assert!(
        sms.body.contains("Ti abbiamo inviato un SMS"),
        "{}",
        sms.body
    );
    let otp = app.last_sms_code();
    let completion = |csrf: &str, lang: &str, password: &str, again: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("lang", lang.to_owned()),
            ("action", "complete".to_owned()),
            ("token", token.clone()),
            ("otp", otp.clone()),
            ("new_password", password.to_owned()),
            ("new_password_again", again.to_owned()),
        ]
    };

    // Two passwords that differ, in both languages: refused, the link stays live.
    for (lang, words) in [
        ("it", "Le due password non coincidono."),
        ("en", "The two passwords differ."),
    ] {
        let form = completion(&csrf, lang, NEW_PASSWORD, "Altra-Password-2027!");
        let got = browser.submit("/portal/recovery", &form).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
        assert!(got.body.contains(words), "{lang}: {}", got.body);
    }
    // A password the policy refuses, in both languages: the link stays live.
    for (lang, words) in [("it", "carattere speciale"), ("en", "special character")] {
        let form = completion(&csrf, lang, "Password2027", "Password2027");
        let got = browser.submit("/portal/recovery", &form).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
        assert!(got.body.contains(words), "{lang}: {}", got.body);
    }
    // Without its CSRF token: refused, and the old password still works.
    let forged = browser
        .submit(
            "/portal/recovery",
            &completion("x", "it", NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        login_status(&app, &user.user_id, &user.password).await,
        StatusCode::OK
    );

    let form = completion(&csrf, "it", NEW_PASSWORD, NEW_PASSWORD);
    let done = browser.submit("/portal/recovery", &form).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("Ogni sessione aperta è terminata"),
        "{}",
        done.body
    );

    // The old password and the old access token stop working; the new password works.
    assert_eq!(
        login_status(&app, &user.user_id, &user.password).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        login_status(&app, &user.user_id, NEW_PASSWORD).await,
        StatusCode::OK
    );
    let res = app
        .client
        .get(format!("{}/api/v1/credentials", app.public))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The link worked once: now it reads as gone, in both languages.
    let again = browser.get(&link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(
        again.body.contains("Il link non è valido"),
        "{}",
        again.body
    );
    let english = browser.get(&format!("{link}&lang=en")).await;
    assert!(
        english.body.contains("The link is not valid"),
        "{}",
        english.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_otp_on_the_recovery_page_spends_the_link_and_says_so() {
    let app = TestApp::spawn_with(|c| {
        c.recovery.link = "http://portal.test/portal/recovery?token={token}".into();
    })
    .await;
    let user = app.create_user("sms").await;
    let mut browser = Browser::new(&app);
    let csrf = browser.get("/portal/recovery?lang=en").await.csrf();
    let asked = browser
        .post(
            "/portal/recovery",
            &[
                ("csrf", &csrf),
                ("lang", "en"),
                ("action", "ask"),
                ("user_id", &user.user_id),
            ],
        )
        .await;
    assert!(
        asked.body.contains("If the user ID is registered"),
        "{}",
        asked.body
    );
    let token = recovery_tokens(&user.user_id, 1).await.remove(0);
    let wrong = browser
        .post(
            "/portal/recovery",
            &[
                ("csrf", &csrf),
                ("lang", "en"),
                ("action", "complete"),
                ("token", &token),
                ("otp", "000000"),
                ("new_password", NEW_PASSWORD),
                ("new_password_again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body.contains("Wrong or expired OTP code."),
        "{}",
        wrong.body
    );
    let page = browser
        .get(&format!("/portal/recovery?token={token}"))
        .await;
    assert!(page.body.contains("Il link non è valido"), "{}", page.body);
    assert_eq!(
        login_status(&app, &user.user_id, &user.password).await,
        StatusCode::OK
    );
}

async fn history(app: &TestApp, token: &str, credential: &str, query: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .get(format!(
            "{}/api/v1/credentials/{credential}/history{query}",
            app.public
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_history_shows_exactly_the_signatures_made_and_never_another_users() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, token, credential, pin) = app.active_credential("ec-p256", "signing").await;
    let (other, other_token, other_credential, other_pin) =
        app.active_credential("ec-p256", "signing").await;

    // Two signHash calls (2 and 3 signatures) and a replayed SAD that signs nothing.
    let mut made = Vec::new();
    for n in [2usize, 3] {
        let hashes = digests(n, 32);
        let sad = app
            .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
            .await;
        let got = app
            .sign_hash(
                Csc::V2,
                &token,
                &credential,
                &sad,
                &hashes,
                Some(OID_SHA256),
                ES256,
                None,
            )
            .await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        let replay = app
            .sign_hash(
                Csc::V2,
                &token,
                &credential,
                &sad,
                &hashes,
                Some(OID_SHA256),
                ES256,
                None,
            )
            .await;
        assert_ne!(replay.0, StatusCode::OK);
        made.push(n);
    }
    // The other subscriber signs once too.
    let hashes = digests(1, 32);
    let sad = app
        .sad_for(
            Csc::V2,
            &other_token,
            &other_credential,
            &other_pin,
            &hashes,
            OID_SHA256,
        )
        .await;
    let got = app
        .sign_hash(
            Csc::V2,
            &other_token,
            &other_credential,
            &sad,
            &hashes,
            Some(OID_SHA256),
            ES256,
            None,
        )
        .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);

    // The JSON API: newest first, exactly the signatures made.
    let (status, body) = history(&app, &token, &credential, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_signatures"], 5, "{body}");
    let counts: Vec<u64> = body["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [3, 2], "{body}");
    assert_eq!(body["next"], Value::Null);
    assert_eq!(body["signatures"][0]["client_addr"], "127.0.0.1");
    // One at a time: the cursor leads to the older one, then to nothing.
    let (_, first) = history(&app, &token, &credential, "?limit=1").await;
    assert_eq!(first["signatures"][0]["count"], 3, "{first}");
    let next = first["next"].as_str().unwrap().to_owned();
    let (_, second) = history(
        &app,
        &token,
        &credential,
        &format!("?limit=1&before={next}"),
    )
    .await;
    assert_eq!(second["signatures"][0]["count"], 2, "{second}");
    assert_eq!(second["next"], Value::Null);
    // Bounds of a page.
    for bad in ["?limit=0", "?limit=101", "?before=x", "?page=2"] {
        let got = history(&app, &token, &credential, bad).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Another subscriber's credential answers exactly like a missing one.
    let theirs = history(&app, &token, &other_credential, "").await;
    let missing = history(&app, &token, &uuid::Uuid::new_v4().to_string(), "").await;
    assert_error(&theirs, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(theirs, missing);
    let (_, own) = history(&app, &other_token, &other_credential, "").await;
    assert_eq!(own["total_signatures"], 1, "{own}");

    // The page shows the same entries, and never the other subscriber's.
    let mut browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let page = browser
        .get(&format!("/portal/credentials/{credential}/history"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("Cronologia delle firme"),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("class=\"history-entry\"").count(), 2);
    let shown: Vec<&str> = page
        .body
        .match_indices("data-count=\"")
        .map(|(at, _)| &page.body[at + 12..at + 13])
        .collect();
    assert_eq!(shown, ["3", "2"], "{}", page.body);
    assert!(page.body.contains("<strong>5</strong>"), "{}", page.body);
    let english = browser
        .get(&format!(
            "/portal/credentials/{other_credential}/history?lang=en"
        ))
        .await;
    assert_eq!(english.status, StatusCode::NOT_FOUND);
    assert!(
        english.body.contains("Unknown certificate."),
        "{}",
        english.body
    );
    assert!(!english.body.contains("history-entry"));
    let italian = browser
        .get(&format!("/portal/credentials/{other_credential}/history"))
        .await;
    assert!(
        italian.body.contains("Certificato sconosciuto."),
        "{}",
        italian.body
    );
    drop(other);
}

/// The pages in Debian's Chromium (tests/e2e/portal_public.js): axe-core finds no serious or
/// critical violation on any of them, in Italian and English, at a desktop width and at
/// 375 px; the screenshots land in target/portal-screenshots/public/ (emptied first; the
/// other portal runs keep their own folders there) and are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_visits_the_pages_and_axe_finds_nothing_serious() {
    let app = TestApp::spawn_with(|c| {
        c.otp.send_limit = 100;
        c.recovery.link = "http://portal.test/portal/recovery?token={token}".into();
    })
    .await;
    let (user, token, credential, pin) = short_lived_credential(&app).await;
    let hashes = digests(2, 32);
    let sad = app
        .sad_for(Csc::V2, &token, &credential, &pin, &hashes, OID_SHA256)
        .await;
    let got = app
        .sign_hash(
            Csc::V2,
            &token,
            &credential,
            &sad,
            &hashes,
            Some(OID_SHA256),
            ES256,
            None,
        )
        .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let code = new_code(&app, &user).await;
    let (status, body) = app
        .post("/api/v1/recovery", None, json!({ "user_id": user.user_id }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let link = recovery_tokens(&user.user_id, 1).await.remove(0);

    let modules = crate::support::env("SIGILLO_TEST_NODE_MODULES");
    assert!(
        std::path::Path::new(&modules).join("axe-core").is_dir(),
        "axe-core missing from {modules}: run scripts/test (npm ci in tests/e2e)"
    );
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/portal-screenshots/public");
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["90", "node", "tests/e2e/portal_public.js"])
        .args(["--base-url", &app.public])
        .args(["--user", &user.user_id, "--password", &user.password])
        .args(["--credential-id", &credential])
        .args(["--emergency-code", &code, "--recovery-token", &link])
        .arg("--out-dir")
        .arg(&dir);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs (apt package nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(summary["serious"], json!([]), "{summary}");
    assert_eq!(summary["history_entries"], 1, "{summary}");
    assert_eq!(summary["suspended"], 1, "{summary}");
    assert_eq!(status_of(&app, &credential).await, "suspended");
    let shots = summary["screenshots"].as_array().unwrap();
    assert!(shots.len() >= 27, "{summary}");
    for shot in shots {
        let shot = shot.as_str().unwrap();
        assert!(std::fs::metadata(shot).unwrap().len() > 1000, "{shot}");
        println!("screenshot: {shot}");
    }
}

/// A subscriber with an active credential valid 30 days (inside the renewal window):
/// (user, token, credential id, PIN).
async fn short_lived_credential(app: &TestApp) -> (TestUser, String, String, String) {
    let user = app.create_user("sms").await;
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/users/{}/credentials", user.user_id),
            json!({ "key_algo": "ec-p256", "purpose": "signing", "validity_days": 30 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["credential_id"].as_str().unwrap().to_owned();
    let serial = body["serial_number"].as_str().unwrap();
    let puk = crate::support::envelope_of(&user.email, serial, &user.passphrase, &[])
        .await
        .puk;
    let token = app.login(&user).await;
    let otp = app.sms_otp(&token, &id).await;
    let (status, _) = app.activate(&token, &id, &puk, "24681357", &otp).await;
    assert_eq!(status, StatusCode::OK);
    (user, token, id, "24681357".into())
}

/// The renewal page's "send me an SMS" button.
async fn renew_sms(browser: &mut Browser, path: &str, csrf: &str) {
    let got = browser
        .post(path, &[("csrf", csrf), ("action", "sms")])
        .await;
    assert!(
        got.body.contains("Ti abbiamo inviato un SMS"),
        "{}",
        got.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notices_and_renewal_pages_renew_with_a_coupon_and_show_the_new_expiry_date() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let (user, _, id, _) = short_lived_credential(&app).await;
    let (status, body) = app
        .admin_post("/admin/v1/coupons", json!({ "count": 1 }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let coupon = body["coupons"][0].as_str().unwrap().to_owned();
    let find = || async {
        sigillo::db::repo::credentials::find(&app.services().db, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
    };
    let before = find().await;
    let today = time::OffsetDateTime::now_utc().date();
    assert_eq!(
        sigillo::notices::run_once(app.services(), today)
            .await
            .unwrap(),
        1
    );

    let mut browser = Browser::new(&app);
    browser.sign_in(&user).await;
    // The expiry notice, with the way to the renewal.
    let notices = browser.get("/portal/notices").await;
    assert_eq!(notices.status, StatusCode::OK, "{}", notices.body);
    assert!(
        notices.body.contains("Avvisi di scadenza"),
        "{}",
        notices.body
    );
    assert_eq!(notices.body.matches("class=\"notice-entry\"").count(), 1);
    assert!(
        notices.body.contains(&before.serial_number),
        "{}",
        notices.body
    );
    let renew_path = format!("/portal/credentials/{id}/renew");
    let links = notices.body.replace("&#x2f;", "/");
    assert!(links.contains(&format!("{renew_path}?lang=it")), "{links}");

    // The identity data the new certificate will carry, to confirm.
    let page = browser.get(&renew_path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for shown in ["Mario", "Rossi", "RSSMRA80A01H501U", "Confermo"] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    for label in ["confirm_identity", "coupon", "pin", "otp"] {
        assert!(
            page.body.contains(&format!("<label for=\"{label}\">")),
            "{label}"
        );
    }
    let csrf = page.csrf();
    let renew = |confirm: &'static str, lang: &'static str, otp: String, coupon: String| {
        vec![
            ("csrf", csrf.clone()),
            ("lang", lang.to_owned()),
            ("action", "renew".to_owned()),
            ("confirm_identity", confirm.to_owned()),
            ("coupon", coupon),
            ("pin", "24681357".to_owned()),
            ("otp", otp),
        ]
    };

    // Not confirmed, a wrong coupon (each in its language), no CSRF token: nothing renewed.
    renew_sms(&mut browser, &renew_path, &csrf).await;
    let got = browser
        .submit(
            &renew_path,
            &renew("", "it", app.last_sms_code(), coupon.clone()),
        )
        .await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert!(got.body.contains("Conferma i tuoi dati"), "{}", got.body);
    let got = browser
        .submit(
            &renew_path,
            &renew(
                "yes",
                "en",
                app.last_sms_code(),
                "RNW-NOSUCHCOUPON1234".into(),
            ),
        )
        .await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert!(got.body.contains("The coupon is not valid"), "{}", got.body);
    renew_sms(&mut browser, &renew_path, &csrf).await;
    let mut forged = renew("yes", "it", app.last_sms_code(), coupon.clone());
    forged[0].1 = "x".into();
    let got = browser.submit(&renew_path, &forged).await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    assert_eq!(find().await.valid_to, before.valid_to);

    // Confirmed, with the coupon, PIN and OTP: renewed, and the page shows the new expiry.
    let done = browser
        .submit(
            &renew_path,
            &renew("yes", "it", app.last_sms_code(), coupon.clone()),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("Certificato rinnovato."),
        "{}",
        done.body
    );
    let after = find().await;
    assert_eq!(after.valid_to, before.valid_to + time::Duration::days(1095));
    assert_ne!(after.serial_number, before.serial_number);
    let shown = format!(
        "datetime=\"{}\">{:02}/{:02}/{}</time>",
        after.valid_to.date(),
        after.valid_to.day(),
        u8::from(after.valid_to.month()),
        after.valid_to.year()
    );
    let text = done.body.replace("&#x2f;", "/");
    assert!(text.contains(&shown), "{shown}: {text}");
    // Once only: the page now says so.
    let again = browser.get(&renew_path).await;
    assert!(
        again.body.contains("Il certificato è già stato rinnovato."),
        "{}",
        again.body
    );
    assert!(!again.body.contains("id=\"renew-form\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_without_sign_in_are_bounded_and_say_so_alike_for_any_user_id() {
    let app = TestApp::spawn_with(|c| {
        c.security.login_max_failures = 2;
        c.recovery.max_per_user = 1;
        c.recovery.link = "http://portal.test/portal/recovery?token={token}".into();
    })
    .await;
    let user = app.create_user("sms").await;
    let code = new_code(&app, &user).await;
    let mut browser = Browser::new(&app);
    let csrf = browser.get("/portal/emergency").await.csrf();
    let wrong = |lang: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("lang", lang.to_owned()),
            ("user_id", user.user_id.clone()),
            ("emergency_code", "0000-0000-0000".to_owned()),
        ]
    };
    for _ in 0..2 {
        let got = browser.submit("/portal/emergency", &wrong("it")).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
    }
    // Past the budget, even the right code is not checked: readable in both languages.
    for (lang, words) in [("it", "Troppi tentativi"), ("en", "Too many attempts")] {
        let got = browser.submit("/portal/emergency", &wrong(lang)).await;
        assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS, "{}", got.body);
        assert!(got.body.contains(words), "{lang}: {}", got.body);
    }
    let mut right = wrong("it");
    right[3].1 = code;
    let got = browser.submit("/portal/emergency", &right).await;
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS);

    // Recovery: one request per user id in the window, known or not, then the same refusal.
    let nobody = format!("nobody-{}", random_suffix());
    let mut pages = Vec::new();
    for id in [&user.user_id, &nobody] {
        for _ in 0..2 {
            let got = browser
                .post(
                    "/portal/recovery",
                    &[("csrf", &csrf), ("action", "ask"), ("user_id", id)],
                )
                .await;
            pages.push((got.status, got.body));
        }
    }
    assert_eq!(pages[0].0, StatusCode::OK);
    assert_eq!(pages[1].0, StatusCode::TOO_MANY_REQUESTS);
    assert!(pages[1].1.contains("Troppi tentativi"), "{}", pages[1].1);
    assert_eq!(pages[0], pages[2], "first request: known and unknown alike");
    assert_eq!(
        pages[1], pages[3],
        "second request: known and unknown alike"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_users_recovery_link_asks_for_the_apps_code_and_sends_no_sms() {
    let app = TestApp::spawn_with(|c| {
        c.recovery.link = "http://portal.test/portal/recovery?token={token}".into();
    })
    .await;
    let user = app.create_user("totp").await;
    let (status, body) = app
        .post("/api/v1/recovery", None, json!({ "user_id": user.user_id }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = recovery_tokens(&user.user_id, 1).await.remove(0);
    let mut browser = Browser::new(&app);
    let page = browser
        .get(&format!("/portal/recovery?token={token}&lang=en"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("authenticator app"), "{}", page.body);
    assert!(!page.body.contains("value=\"sms\""));
    let csrf = page.csrf();
    let got = browser
        .post(
            "/portal/recovery",
            &[
                ("csrf", &csrf),
                ("lang", "en"),
                ("action", "sms"),
                ("token", &token),
            ],
        )
        .await;
    assert_eq!(got.status, StatusCode::BAD_REQUEST);
    assert!(
        got.body.contains("authenticator app, not by SMS"),
        "{}",
        got.body
    );
    let totp = user.totp_uri.as_deref().map(crate::support::totp_codes);
    if let Some((now, _)) = totp {
        let got = browser
            .post(
                "/portal/recovery",
                &[
                    ("csrf", &csrf),
                    ("action", "complete"),
                    ("token", &token),
                    ("otp", &now),
                    ("new_password", NEW_PASSWORD),
                    ("new_password_again", NEW_PASSWORD),
                ],
            )
            .await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.body);
        assert_eq!(
            login_status(&app, &user.user_id, NEW_PASSWORD).await,
            StatusCode::OK
        );
    }
}
