//! The subscriber portal's pages (`/portal/`), driven over HTTP as a browser would: a cookie
//! jar, forms with their hidden fields, redirects looked at one by one.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, TestUser};

/// A browser: a cookie jar and no automatic redirects.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    /// Set on every request (e.g. `Accept-Language`).
    pub accept_language: Option<String>,
}

/// A response as the browser got it.
pub struct Shown {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The page with the escapes of its attribute values undone (`&#x2f;` is `/`).
    pub body: String,
    /// The page as sent.
    pub raw: String,
}

/// `text` with the escapes minijinja writes undone.
pub fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Shown {
    /// The value of the first hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no hidden {name} in:\n{}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }

    pub fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no Location ({}):\n{}", self.status, self.body))
    }

    /// The `Set-Cookie` header of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with(&format!("{name}=")))
    }

    /// The text of the page's `role="alert"` box.
    pub fn alert(&self) -> String {
        let start = self
            .body
            .find("role=\"alert\"")
            .unwrap_or_else(|| panic!("no alert ({}):\n{}", self.status, self.body));
        let rest = &self.body[start..];
        let text = &rest[rest.find('>').unwrap() + 1..];
        text[..text.find('<').unwrap()].to_owned()
    }
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser::with_client(
            base,
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        )
    }

    pub fn with_client(base: &str, http: reqwest::Client) -> Browser {
        Browser {
            base: base.to_owned(),
            http,
            cookies: HashMap::new(),
            accept_language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn shown(&mut self, res: reqwest::Response) -> Shown {
        let status = res.status();
        let headers = res.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if value.contains("Max-Age=0") || v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let raw = res.text().await.unwrap();
        Shown {
            status,
            headers,
            body: unescape(&raw),
            raw,
        }
    }

    pub async fn get(&mut self, path: &str) -> Shown {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header());
        if let Some(lang) = &self.accept_language {
            req = req.header(ACCEPT_LANGUAGE, lang);
        }
        let res = req.send().await.unwrap();
        self.shown(res).await
    }

    /// POSTs `fields` as a form (exactly these: no CSRF token is added).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Shown {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(fields);
        if let Some(lang) = &self.accept_language {
            req = req.header(ACCEPT_LANGUAGE, lang);
        }
        let res = req.send().await.unwrap();
        self.shown(res).await
    }

    /// Submits the form of `page` posting to `action`: its CSRF token and `lang` plus `fields`.
    pub async fn submit(&mut self, page: &Shown, action: &str, fields: &[(&str, &str)]) -> Shown {
        let (csrf, lang) = (page.hidden("csrf"), page.hidden("lang"));
        let mut form = vec![("csrf", csrf.as_str()), ("lang", lang.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    /// Signs in through the sign-in page; returns the answer to the form (a 303 when signed in).
    pub async fn sign_in(&mut self, user_id: &str, password: &str) -> Shown {
        let page = self.get("/portal/login").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        self.submit(
            &page,
            "/portal/login",
            &[("user_id", user_id), ("password", password)],
        )
        .await
    }

    pub async fn signed_in(app: &TestApp, user: &TestUser) -> Browser {
        let mut browser = Browser::new(&app.public);
        let done = browser.sign_in(&user.user_id, &user.password).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), "/portal/");
        browser
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_read_the_same_in_both_languages() {
    let app = TestApp::spawn_with(|c| c.security.login_max_failures = 3).await;
    let user = app.create_user("sms").await;
    let mut browser = Browser::new(&app.public);
    let wrong = browser.sign_in(&user.user_id, "Wrong-Password-1!").await;
    let unknown = browser.sign_in("nobody-here", "Wrong-Password-1!").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.alert(), "Codice utente o password non corretti.");
    assert_eq!(wrong.alert(), unknown.alert());
    assert!(wrong.set_cookie("sigillo_portal").is_none());
    // The same login budget as auth/login: the third wrong password spends it.
    browser.accept_language = Some("en-GB,en;q=0.9".into());
    let wrong = browser.sign_in(&user.user_id, "Wrong-Password-2!").await;
    assert_eq!(wrong.alert(), "Wrong user ID or password.");
    let limited = browser.sign_in(&user.user_id, "Wrong-Password-3!").await;
    let limited = if limited.status == StatusCode::BAD_REQUEST {
        browser.sign_in(&user.user_id, &user.password).await
    } else {
        limited
    };
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(
        limited.alert(),
        "Too many attempts: try again in a few minutes."
    );
    // Even the right password now waits, and the JSON API sees the same budget.
    let right = browser.sign_in(&user.user_id, &user.password).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    let api = app
        .client
        .post(format!("{}/csc/v2/auth/login", app.public))
        .basic_auth(&user.user_id, Some(&user.password))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_ends_when_idle_or_signed_out() {
    let app = TestApp::spawn_with(|c| c.web.session_idle_secs = 2).await;
    let user = app.create_user("sms").await;
    let mut browser = Browser::new(&app.public);
    let done = browser.sign_in(&user.user_id, &user.password).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let cookie = done.set_cookie("sigillo_portal").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert_eq!(
        cookie.split(';').next().unwrap().len(),
        "sigillo_portal=".len() + 43
    );
    let home = browser.get("/portal/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains(&user.user_id));
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(!home.raw.contains("<script"), "no script on a page");

    // Idle for longer than web.session_idle_secs: signed out.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let idle = browser.get("/portal/").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER);
    assert!(idle.location().starts_with("/portal/login?"));

    // Sign-out ends the session on the server, not only in this browser.
    let done = browser.sign_in(&user.user_id, &user.password).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let session = browser.cookies["sigillo_portal"].clone();
    let home = browser.get("/portal/").await;
    let out = browser.submit(&home, "/portal/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/portal/login?done=signed_out&lang=it");
    assert!(!browser.cookies.contains_key("sigillo_portal"));
    browser.cookies.insert("sigillo_portal".into(), session);
    let replayed = browser.get("/portal/").await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.body);
}

#[tokio::test]
async fn without_a_session_a_page_goes_to_sign_in_and_next_never_leaves_the_portal() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let mut browser = Browser::new(&app.public);
    let away = browser.get("/portal/?lang=en").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(
        away.location(),
        "/portal/login?next=%2Fportal%2F%3Flang%3Den&lang=en"
    );
    let login = browser.get(&away.location()).await;
    assert_eq!(login.hidden("next"), "/portal/?lang=en");
    assert!(
        login.body.contains("Sign in to the portal"),
        "{}",
        login.body
    );
    let done = browser
        .submit(
            &login,
            "/portal/login",
            &[
                ("user_id", &user.user_id),
                ("password", &user.password),
                ("next", "/portal/?lang=en"),
            ],
        )
        .await;
    assert_eq!(done.location(), "/portal/?lang=en");

    // Every portal page (from the route table) but those reached without signing in (sign-in,
    // emergency suspension, password recovery) wants a session.
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let mut stranger = Browser::new(&app.public);
    for e in sigillo::app::public_endpoints() {
        if e.method.as_str() != "GET"
            || !e.path.starts_with("/portal/")
            || [
                "/portal/login",
                "/portal/emergency",
                "/portal/recovery",
                "/portal/setup",
            ]
            .contains(&e.path)
        {
            continue;
        }
        let path = e.path.replace("{credential_id}", &credential.id);
        let away = stranger.get(&path).await;
        assert_eq!(away.status, StatusCode::SEE_OTHER, "{path}");
        assert!(away.location().starts_with("/portal/login?next="), "{path}");
    }

    // `next` pointing anywhere but a portal path goes home instead.
    for next in [
        "https://evil.example/",
        "//evil.example/portal/",
        "/\\evil.example",
        "/portal//evil.example",
        "/oauth2/authorize",
    ] {
        let mut other = Browser::new(&app.public);
        let page = other
            .get(&format!(
                "/portal/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(page.hidden("next"), "/portal/", "{next}");
        let csrf = page.hidden("csrf");
        let done = other
            .post(
                "/portal/login",
                &[
                    ("csrf", &csrf),
                    ("user_id", &user.user_id),
                    ("password", &user.password),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(done.location(), "/portal/", "{next}");
    }
}

/// Every POST of the portal (from the route table), signed in, with the CSRF token missing or
/// wrong: 403 with a readable page, and nothing done.
#[tokio::test]
async fn every_portal_post_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let posts: Vec<String> = sigillo::app::public_endpoints()
        .iter()
        .filter(|e| e.method.as_str() == "POST" && e.path.starts_with("/portal/"))
        .map(|e| e.path.replace("{credential_id}", &credential.id))
        .collect();
    assert!(posts.len() >= 2, "{posts:?}");
    let mut browser = Browser::signed_in(&app, &user).await;
    let new_pin = "24681357";
    let fields = [
        ("user_id", user.user_id.as_str()),
        ("password", user.password.as_str()),
        ("new_password", "Another-Password-9?"),
        ("new_password2", "Another-Password-9?"),
        ("puk", credential.puk.as_str()),
        ("pin", new_pin),
        ("new_pin", new_pin),
        ("new_pin2", new_pin),
        ("otp", "123456"),
        ("action", "sms"),
    ];
    for path in &posts {
        for csrf in [None, Some("x".repeat(43))] {
            let mut form: Vec<(&str, &str)> = fields.to_vec();
            if let Some(csrf) = &csrf {
                form.push(("csrf", csrf));
            }
            let refused = browser.post(path, &form).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path} {csrf:?}");
            assert!(
                refused.alert().starts_with("Il modulo è scaduto"),
                "{path}: {}",
                refused.body
            );
        }
    }
    // Signed out, the CSRF check still comes first.
    let mut stranger = Browser::new(&app.public);
    for path in &posts {
        let refused = stranger.post(path, &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Still signed in, credential still inactive, password unchanged, no SMS sent.
    let home = browser.get("/portal/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("data-status=\"inactive\""),
        "{}",
        home.body
    );
    app.login(&user).await;
    assert!(
        !std::path::Path::new(&app.config.otp.outbox_path).exists()
            || std::fs::read_to_string(&app.config.otp.outbox_path)
                .unwrap()
                .is_empty()
    );
}

#[tokio::test]
async fn home_shows_a_card_per_credential_with_only_its_actions_in_either_language() {
    let app = TestApp::spawn().await;
    let (user, _, active, _) = app.active_credential("ec-p256", "signing").await;
    let inactive = app
        .create_credential(&user, "rsa-2048", "authentication")
        .await;
    let mut browser = Browser::signed_in(&app, &user).await;
    let home = browser.get("/portal/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    let card = |id: &str| -> String {
        let start = home
            .body
            .find(&format!("data-credential=\"{id}\""))
            .unwrap();
        let rest = &home.body[start..];
        rest[..rest.find("</section>").unwrap()].to_owned()
    };
    let (a, i) = (card(&active), card(&inactive.id));
    assert!(a.contains("Firma digitale") && a.contains("Attivo"), "{a}");
    assert!(
        a.contains(&format!("/portal/credentials/{active}/pin?lang=it")),
        "{a}"
    );
    assert!(!a.contains("/activate") && !a.contains("/unblock"), "{a}");
    assert!(
        a.contains("giorni rimasti") && a.contains("Numero di serie"),
        "{a}"
    );
    assert!(
        i.contains("Autenticazione") && i.contains("Da attivare"),
        "{i}"
    );
    assert!(
        i.contains("/activate?lang=it") && !i.contains("/pin?"),
        "{i}"
    );
    // A serial number as the JSON API gives it.
    let token = app.login(&user).await;
    let listed: Value = app
        .client
        .get(format!("{}/api/v1/credentials", app.public))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for c in listed["credentials"].as_array().unwrap() {
        let serial = c["serial_number"].as_str().unwrap();
        assert!(home.body.contains(serial), "{serial}");
    }
    // English by ?lang=en, and by the browser's language.
    let en = browser.get("/portal/?lang=en").await;
    assert!(en.body.contains("Digital signature") && en.body.contains("days left"));
    assert!(en.body.contains("<html lang=\"en\">"));
    assert!(
        en.body.contains("href=\"/portal/?lang=it\""),
        "the language switch"
    );
    browser.accept_language = Some("en-US,en;q=0.8".into());
    let en = browser.get("/portal/").await;
    assert!(en.body.contains("Your certificates"), "{}", en.body);
}

#[tokio::test]
async fn home_warns_inside_the_renewal_window() {
    let app = TestApp::spawn_with(|c| c.lifecycle.renewal_window_days = 4000).await;
    let (user, _, active, _) = app.active_credential("ec-p256", "signing").await;
    let mut browser = Browser::signed_in(&app, &user).await;
    let home = browser.get("/portal/?lang=en").await;
    assert!(
        home.body.contains("This certificate expires soon"),
        "{}",
        home.body
    );
    assert!(home
        .body
        .contains(&format!("/portal/credentials/{active}/renew?lang=en")));
}

#[tokio::test]
async fn under_tls_the_session_cookie_is_secure() {
    let tls = |name: &str| {
        std::path::PathBuf::from(crate::support::env("SIGILLO_TEST_TLS_DIR")).join(name)
    };
    let app = TestApp::spawn_with(|c| {
        c.tls.cert_file = tls("server.pem");
        c.tls.key_file = tls("server.key");
        c.tls.admin_client_ca_file = tls("ca.pem");
    })
    .await;
    let ca = std::fs::read(tls("ca.pem")).unwrap();
    let mut pem = std::fs::read(tls("client.pem")).unwrap();
    pem.extend(std::fs::read(tls("client.key")).unwrap());
    let client = |identity: bool| {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        if identity {
            b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        b.build().unwrap()
    };
    let mut admin = app;
    admin.admin = format!("https://{}", admin.running.admin_addr);
    // The setup of the new user goes to the public listener (TLS too).
    admin.public = format!("https://{}", admin.running.public_addr);
    admin.client = client(true);
    let user = admin.create_user("sms").await;
    let mut browser = Browser::with_client(
        &format!("https://{}", admin.running.public_addr),
        client(false),
    );
    let done = browser.sign_in(&user.user_id, &user.password).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let cookie = done.set_cookie("sigillo_portal").unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(browser.cookies.contains_key("__Host-sigillo_csrf"));
}

impl Browser {
    /// Opens the form at `path`, has the code for its operation texted ("send me an SMS")
    /// and returns the form page and the code.
    pub async fn form_with_code(&mut self, app: &TestApp, path: &str) -> (Shown, String) {
        let form = self.get(path).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let sent = self.submit(&form, path, &[("action", "sms")]).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
        assert!(sent.body.contains("role=\"status\""), "{}", sent.body);
        (sent, app.last_sms_code())
    }

    /// Submits a PIN form (`activate`, `pin` or `unblock`) of `credential` with a fresh code.
    pub async fn pin_form(
        &mut self,
        app: &TestApp,
        credential: &str,
        page: &str,
        secret: (&str, &str),
        new_pin: &str,
        new_pin2: &str,
        lang: &str,
    ) -> Shown {
        let path = format!("/portal/credentials/{credential}/{page}");
        let (form, otp) = self
            .form_with_code(app, &format!("{path}?lang={lang}"))
            .await;
        self.submit(
            &form,
            &path,
            &[
                ("action", "submit"),
                secret,
                ("new_pin", new_pin),
                ("new_pin2", new_pin2),
                ("otp", &otp),
            ],
        )
        .await
    }
}

/// True iff `pin` buys a SAD for `credential` and the SAD signs.
async fn signs_with(app: &TestApp, user: &TestUser, credential: &str, pin: &str) -> bool {
    use crate::support::{digests, Csc, OID_SHA256};
    let token = app.login(user).await;
    let hashes = digests(1, 32);
    let (status, body) = app
        .authorize(
            Csc::V2,
            &token,
            credential,
            pin,
            1,
            Some(&hashes),
            Some(OID_SHA256),
        )
        .await;
    if status != StatusCode::OK {
        return false;
    }
    let sad = body["SAD"].as_str().unwrap();
    let (status, body) = app
        .sign_hash(
            Csc::V2,
            &token,
            credential,
            sad,
            &hashes,
            Some(OID_SHA256),
            "1.2.840.10045.4.3.2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    true
}

async fn status_of(app: &TestApp, credential: &str) -> String {
    let id = uuid::Uuid::parse_str(credential).unwrap();
    sigillo::db::repo::credentials::find(&app.services().db, id)
        .await
        .unwrap()
        .unwrap()
        .status
        .as_str()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_in_the_portal_refuses_readably_and_sets_a_pin_that_signs() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let id = credential.id.as_str();
    let mut browser = Browser::signed_in(&app, &user).await;
    let pin = "13572468";
    let wrong_puk = if credential.puk == "00000000" {
        "11111111"
    } else {
        "00000000"
    };

    let refused = browser
        .pin_form(&app, id, "activate", ("puk", wrong_puk), pin, pin, "it")
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .alert()
            .starts_with("PUK non corretto. Tentativi rimasti:"),
        "{}",
        refused.alert()
    );
    let refused = browser
        .pin_form(&app, id, "activate", ("puk", wrong_puk), pin, pin, "en")
        .await;
    assert!(
        refused.alert().starts_with("Wrong PUK. Attempts left:"),
        "{}",
        refused.alert()
    );
    let differ = browser
        .pin_form(
            &app,
            id,
            "activate",
            ("puk", &credential.puk),
            pin,
            "86427531",
            "en",
        )
        .await;
    assert_eq!(differ.alert(), "The two new PINs do not match.");
    let short = browser
        .pin_form(
            &app,
            id,
            "activate",
            ("puk", &credential.puk),
            "123",
            "123",
            "it",
        )
        .await;
    assert_eq!(short.alert(), "Il PIN deve essere di 8 cifre.");
    // A wrong OTP.
    let form = browser
        .get(&format!("/portal/credentials/{id}/activate"))
        .await;
    let wrong_otp = browser
        .submit(
            &form,
            &format!("/portal/credentials/{id}/activate"),
            &[
                ("puk", &credential.puk),
                ("new_pin", pin),
                ("new_pin2", pin),
                ("otp", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong_otp.alert(), "Codice OTP non corretto o scaduto.");
    assert_eq!(status_of(&app, id).await, "inactive");

    let done = browser
        .pin_form(
            &app,
            id,
            "activate",
            ("puk", &credential.puk),
            pin,
            pin,
            "it",
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portal/?done=activated&lang=it");
    let home = browser.get(&done.location()).await;
    assert!(home.body.contains("Certificato attivato"), "{}", home.body);
    assert!(home.body.contains("data-status=\"active\""));
    assert_eq!(status_of(&app, id).await, "active");
    assert!(signs_with(&app, &user, id, pin).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_changes_blocks_after_three_wrong_and_unblocks_with_the_puk_in_the_portal() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let user = app.create_user("sms").await;
    let credential = app.create_credential(&user, "ec-p256", "signing").await;
    let id = credential.id.as_str();
    let mut browser = Browser::signed_in(&app, &user).await;
    let (first, second, third) = ("11223344", "55667788", "99001122");
    let done = browser
        .pin_form(
            &app,
            id,
            "activate",
            ("puk", &credential.puk),
            first,
            first,
            "it",
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);

    // Change: a wrong current PIN is counted and said so; the right one changes it.
    let wrong = browser
        .pin_form(&app, id, "pin", ("pin", "00000000"), second, second, "en")
        .await;
    assert_eq!(wrong.alert(), "Wrong PIN. Attempts left: 2");
    let same = browser
        .pin_form(&app, id, "pin", ("pin", first), first, first, "it")
        .await;
    assert_eq!(
        same.alert(),
        "Il nuovo PIN deve essere diverso da quello attuale."
    );
    let done = browser
        .pin_form(&app, id, "pin", ("pin", first), second, second, "it")
        .await;
    assert_eq!(done.location(), "/portal/?done=pin&lang=it");
    assert!(
        !signs_with(&app, &user, id, first).await,
        "the old PIN no longer signs"
    );
    assert!(
        signs_with(&app, &user, id, second).await,
        "the new PIN signs"
    );

    // Three wrong PINs on the change page block it (the domain's counter).
    let mut last = String::new();
    for _ in 0..3 {
        let wrong = browser
            .pin_form(&app, id, "pin", ("pin", "00000000"), third, third, "it")
            .await;
        last = wrong.alert();
    }
    assert_eq!(
        last,
        "PIN non corretto: il PIN ora è bloccato. Sbloccalo con il PUK."
    );
    assert_eq!(status_of(&app, id).await, "pin_blocked");
    let home = browser.get("/portal/").await;
    assert!(home
        .body
        .contains(&format!("/portal/credentials/{id}/unblock?lang=it")));
    assert!(!home
        .body
        .contains(&format!("/portal/credentials/{id}/pin?")));
    // The PIN page now refuses: not in this state.
    let refused = browser
        .pin_form(&app, id, "pin", ("pin", second), third, third, "en")
        .await;
    assert_eq!(
        refused.alert(),
        "This operation is not possible in the certificate's current state."
    );

    // Unblock: a wrong PUK, then the right one.
    let wrong = browser
        .pin_form(&app, id, "unblock", ("puk", "00000001"), third, third, "it")
        .await;
    assert!(
        wrong.alert().starts_with("PUK non corretto"),
        "{}",
        wrong.alert()
    );
    let done = browser
        .pin_form(
            &app,
            id,
            "unblock",
            ("puk", &credential.puk),
            third,
            third,
            "en",
        )
        .await;
    assert_eq!(done.location(), "/portal/?done=unblocked&lang=en");
    assert_eq!(status_of(&app, id).await, "active");
    assert!(signs_with(&app, &user, id, third).await);
}

#[tokio::test]
async fn the_password_changes_in_the_portal_and_every_session_ends() {
    let app = TestApp::spawn().await;
    let user = app.create_user("sms").await;
    let mut browser = Browser::signed_in(&app, &user).await;
    let new = "Nuova-Parola-2027!";
    let page = browser.get("/portal/password").await;
    let mut try_ = async |current: &str, new: &str, again: &str| {
        browser
            .submit(
                &page,
                "/portal/password",
                &[
                    ("password", current),
                    ("new_password", new),
                    ("new_password2", again),
                ],
            )
            .await
    };
    let wrong = try_("Wrong-Password-1!", new, new).await;
    assert_eq!(wrong.alert(), "La password attuale non è corretta.");
    let differ = try_(&user.password, new, "Nuova-Parola-2028!").await;
    assert_eq!(differ.alert(), "Le due nuove password non coincidono.");
    let weak = try_(&user.password, "nodigits-here!", "nodigits-here!").await;
    assert_eq!(
        weak.alert(),
        "La password deve contenere una lettera maiuscola."
    );
    let same = try_(&user.password, &user.password, &user.password).await;
    assert_eq!(
        same.alert(),
        "La nuova password deve essere diversa da quella attuale."
    );
    let done = try_(&user.password, new, new).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portal/login?done=password&lang=it");
    assert!(
        done.set_cookie("sigillo_portal").is_some(),
        "the cookie is cleared"
    );
    let home = browser.get("/portal/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER, "signed out");
    let changed = TestUser {
        password: new.into(),
        totp_uri: None,
        ..user.clone()
    };
    Browser::signed_in(&app, &changed).await;
    let old = Browser::new(&app.public)
        .sign_in(&user.user_id, &user.password)
        .await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_otp_moves_to_an_authenticator_app_with_the_qr_code_in_the_portal() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let user = app.create_user("sms").await;
    let mut browser = Browser::signed_in(&app, &user).await;
    let page = browser.get("/portal/otp/device?lang=en").await;
    assert!(page.body.contains("Authenticator app"), "{}", page.body);
    let wrong = browser
        .submit(
            &page,
            "/portal/otp/device",
            &[("action", "app_start"), ("password", "Wrong-Password-1!")],
        )
        .await;
    assert_eq!(wrong.alert(), "The current password is wrong.");
    let bad_phone = browser
        .submit(
            &page,
            "/portal/otp/device",
            &[
                ("action", "phone_start"),
                ("phone", "12"),
                ("password", &user.password),
            ],
        )
        .await;
    assert!(
        bad_phone.alert().starts_with("Invalid phone number"),
        "{}",
        bad_phone.alert()
    );
    let scan = browser
        .submit(
            &page,
            "/portal/otp/device",
            &[("action", "app_start"), ("password", &user.password)],
        )
        .await;
    assert_eq!(scan.status, StatusCode::OK, "{}", scan.body);
    assert!(
        scan.body.contains("src=\"data:image/svg+xml;base64,"),
        "{}",
        scan.body
    );
    let secret_at = scan.body.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let secret = &scan.body[secret_at..scan.body[secret_at..].find('<').unwrap() + secret_at];
    let current = app.last_sms_code();
    let (code, _) = crate::support::totp_codes(&format!(
        "otpauth://totp/sigillo:x?secret={secret}&issuer=sigillo"
    ));
    // A wrong code from the new app: refused, readable, nothing changed.
    let wrong = browser
        .submit(
            &scan,
            "/portal/otp/device",
            &[
                ("action", "app_confirm"),
                ("code", "000000"),
                ("otp", &current),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert_eq!(wrong.alert(), "The code from the new device is wrong.");
    let user_row = sigillo::db::repo::users::find(&app.services().db, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user_row.otp_method.as_str(), "sms");
    // Start again; the right codes move the OTP to the app and end every session.
    let scan = browser
        .submit(
            &page,
            "/portal/otp/device",
            &[("action", "app_start"), ("password", &user.password)],
        )
        .await;
    let secret_at = scan.body.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let secret = &scan.body[secret_at..scan.body[secret_at..].find('<').unwrap() + secret_at];
    let current = app.last_sms_code();
    let (code2, _) = crate::support::totp_codes(&format!(
        "otpauth://totp/sigillo:x?secret={secret}&issuer=sigillo"
    ));
    let _ = code;
    let done = browser
        .submit(
            &scan,
            "/portal/otp/device",
            &[
                ("action", "app_confirm"),
                ("code", &code2),
                ("otp", &current),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portal/login?done=device&lang=en");
    let user_row = sigillo::db::repo::users::find(&app.services().db, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user_row.otp_method.as_str(), "totp");
    assert_eq!(browser.get("/portal/").await.status, StatusCode::SEE_OTHER);
}

/// The subscriber's journey in Debian's Chromium, driven by Playwright
/// (tests/e2e/portal_journey.js): the setup link from the e-mail, password and passphrase on
/// the setup page, the envelope decrypted with pypdf for the PUK, sign in, activate with the PUK, change the PIN, block it with
/// three wrong PINs and unblock it with the PUK, change the password, renew with a coupon,
/// recover the password by the e-mailed link, sign out, enrol an authenticator app from the QR
/// code's key, and at the end suspend with the emergency code and resume with the PUK and a
/// new app; refusals read in Italian and English; axe-core finds nothing serious or critical on any
/// page. Screenshots of every page (it and en, desktop and 375 px) land in
/// target/portal-screenshots/journey/ (emptied first; the other portal runs keep their own
/// folders there) and are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_walks_the_subscriber_through_the_portal() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let modules = std::path::PathBuf::from(crate::support::env("SIGILLO_TEST_NODE_MODULES"));
    let axe = modules.join("axe-core/axe.min.js");
    assert!(
        modules.join("playwright-core").is_dir() && axe.is_file(),
        "playwright-core or axe-core missing from {}: run scripts/test (npm ci in tests/e2e)",
        modules.display()
    );
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/portal-screenshots/journey");
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["180", "node", "tests/e2e/portal_journey.js"])
        .args(["--base-url", &app.public, "--admin-url", &app.admin])
        .args(["--admin-token", &app.admin_token])
        .arg("--outbox")
        .arg(&app.config.otp.outbox_path)
        .arg("--out-dir")
        .arg(&out)
        .arg("--axe")
        .arg(&axe)
        .args(["--maildir", &crate::support::env("SIGILLO_TEST_MAILDIR")])
        .args(["--python", &crate::support::env("SIGILLO_TEST_PYTHON")]);
    let run = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("node runs (apt package nodejs)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the portal journey failed:\n{stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON summary ({e}):\n{stdout}\n{stderr}"));
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 13, "{summary}");
    let audited = summary["audited"].as_array().unwrap();
    assert!(audited.len() >= 20, "axe ran on every page: {summary}");
    let shots = summary["screenshots"].as_array().unwrap();
    assert_eq!(shots.len(), audited.len() * 2, "{summary}");
    for shot in shots {
        let shot = shot.as_str().unwrap();
        assert!(std::fs::metadata(shot).unwrap().len() > 1000, "{shot}");
        println!("screenshot: {shot}");
    }
}

/// The codes of the two newest SMS: (the one to `phone`, the other one).
fn codes_to(app: &TestApp, phone: &str) -> (String, String) {
    let outbox = std::fs::read_to_string(&app.config.otp.outbox_path).unwrap();
    let last: Vec<Value> = outbox
        .lines()
        .rev()
        .take(2)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let code = |to_phone: bool| {
        let m = last
            .iter()
            .find(|m| (m["to"].as_str() == Some(phone)) == to_phone)
            .unwrap_or_else(|| panic!("{last:?}"));
        let text = m["text"].as_str().unwrap();
        text.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap()
            .to_owned()
    };
    (code(true), code(false))
}

#[tokio::test]
async fn the_otp_moves_to_a_new_phone_in_the_portal() {
    let app = TestApp::spawn_with(|c| c.otp.send_limit = 100).await;
    let user = app.create_user("sms").await;
    let mut browser = Browser::signed_in(&app, &user).await;
    let page = browser.get("/portal/otp/device").await;
    let new_phone = "+393479876543";
    let start = [
        ("action", "phone_start"),
        ("phone", new_phone),
        ("password", user.password.as_str()),
    ];
    let sent = browser.submit(&page, "/portal/otp/device", &start).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent
        .body
        .contains("Abbiamo inviato un SMS con un codice al nuovo numero."));
    // A wrong current factor: refused, readable, the phone unchanged.
    let (new_code, _) = codes_to(&app, new_phone);
    let wrong = browser
        .submit(
            &sent,
            "/portal/otp/device",
            &[
                ("action", "phone_confirm"),
                ("code", &new_code),
                ("otp", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.alert(), "Codice OTP non corretto o scaduto.");
    let row = sigillo::db::repo::users::find(&app.services().db, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(row.phone, new_phone);
    // Again, with both codes right: the new phone is the OTP device, every session ended.
    let sent = browser.submit(&page, "/portal/otp/device", &start).await;
    let (new_code, current) = codes_to(&app, new_phone);
    let done = browser
        .submit(
            &sent,
            "/portal/otp/device",
            &[
                ("action", "phone_confirm"),
                ("code", &new_code),
                ("otp", &current),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portal/login?done=device&lang=it");
    let row = sigillo::db::repo::users::find(&app.services().db, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.phone, new_phone);
    assert_eq!(browser.get("/portal/").await.status, StatusCode::SEE_OTHER);
}

/// The code of `secret` (Base32) at the current 30-second step, as an authenticator app shows it.
fn app_code(secret: &str) -> String {
    let uri = format!("otpauth://totp/sigillo:x?secret={secret}&issuer=sigillo");
    crate::support::totp_codes(&uri).0
}

/// A subscriber's first steps: an authenticator-app user who completed the setup is sent to
/// `/portal/otp/app` from every other page until the app is enrolled there (QR code and key
/// shown, a wrong code refused readably, a right one enrols it once); one whose password the
/// operator set is sent to the password page first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_asks_for_an_own_password_then_for_the_app_before_anything_else() {
    let app = TestApp::spawn().await;
    let user = app.create_pending_user("totp").await;
    app.complete_setup(&user).await;
    let mut browser = Browser::signed_in(&app, &user).await;
    for path in ["/portal/", "/portal/notices", "/portal/otp/device"] {
        let got = browser.get(path).await;
        assert_eq!(got.status, StatusCode::SEE_OTHER, "{path}: {}", got.body);
        assert!(
            got.location().starts_with("/portal/otp/app"),
            "{path}: {}",
            got.location()
        );
    }
    let page = browser.get("/portal/otp/app").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let shown = browser
        .submit(&page, "/portal/otp/app", &[("action", "start")])
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(
        shown.body.contains("data:image/svg+xml;base64,"),
        "the QR code"
    );
    let start = shown.body.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let secret = shown.body[start..].split('<').next().unwrap().to_owned();
    let right = app_code(&secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let refused = browser
        .submit(
            &shown,
            "/portal/otp/app",
            &[("action", "confirm"), ("code", wrong)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(!refused.alert().is_empty(), "{}", refused.body);
    let done = browser
        .submit(
            &refused,
            "/portal/otp/app",
            &[("action", "confirm"), ("code", &right)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(
        done.location().starts_with("/portal/?"),
        "{}",
        done.location()
    );
    assert_eq!(browser.get("/portal/").await.status, StatusCode::OK);
    // Enrolled: the app's codes are the user's OTP now, and a second enrolment is refused.
    let stored = sigillo::db::repo::users::find(&app.services().db, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.totp_secret.is_some());
    let page = browser.get("/portal/otp/app").await;
    let again = browser
        .submit(&page, "/portal/otp/app", &[("action", "start")])
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(!again.alert().is_empty(), "{}", again.body);

    // A password the operator set (a row from before the setup, or the machine's CLI).
    let sms = app.create_user("sms").await;
    let client = app.services().db.get().await.unwrap();
    client
        .execute(
            "UPDATE users SET password_by_subscriber = false WHERE user_id = $1",
            &[&sms.user_id],
        )
        .await
        .unwrap();
    let mut browser = Browser::new(&app.public);
    let signed = browser.sign_in(&sms.user_id, &sms.password).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let home = browser.get("/portal/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER, "{}", home.body);
    assert!(
        home.location().starts_with("/portal/password"),
        "{}",
        home.location()
    );
    assert_eq!(browser.get("/portal/password").await.status, StatusCode::OK);
}
