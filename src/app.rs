//! The route table — the one place that shows every endpoint — and the two listeners: the
//! public one (CSC, portal, operations) and the admin one (admin API, `/metrics`).
//!
//! Both listeners serve TLS when `tls.cert_file` is set (see `tls`); the admin one then may
//! require a client certificate, and the public one sends HSTS.
//!
//! Every response of both listeners, errors included, carries `X-Content-Type-Options: nosniff`
//! and `Cache-Control: no-store`: most of the API returns tokens, SADs, signatures, PUKs or
//! TOTP URIs, and one rule for all cannot forget one of them. The one exception is public by
//! nature: CRLs and CA certificates (`/pki/crl/...`, `/pki/ca/...`) say `public, max-age`.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServerHandle, Service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, ConnectionType, Method};
use actix_web::middleware::{from_fn, DefaultHeaders, Next};
use actix_web::{
    web, App, FromRequest, Handler, HttpMessage, HttpResponse, HttpServer, Responder, ResponseError,
};
use futures_util::StreamExt;
use tracing_actix_web::TracingLogger;

use crate::config::{threads_or_cores, Config};
use crate::error::ApiError;
use crate::services::{Services, StartError};
use crate::telemetry::RequestSpan;
use crate::{admin, csc, health, oauth2, pki, portal, web as pages};

/// The OpenAPI description of every endpoint, served at `/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../openapi/sigillo.yaml");

/// One endpoint: method, full path and handler. The route table is a list of these, so that
/// tests can compare it with the OpenAPI document.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    route: actix_web::Route,
}

fn endpoint<F, Args>(method: Method, path: &'static str, handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint {
        route: web::route().method(method.clone()).to(handler),
        method,
        path,
    }
}

/// Every endpoint of the public listener: CSC v2 and v1, the portal API, operations.
pub fn public_endpoints() -> Vec<Endpoint> {
    use csc::{auth, credentials as cred, info, signatures as sig};
    use Method as M;
    vec![
        endpoint(M::GET, "/healthz", health::healthz),
        endpoint(M::GET, "/readyz", health::readyz),
        endpoint(M::GET, "/openapi.yaml", openapi),
        // CSC v2
        endpoint(M::GET, "/csc/v2/info", info::info_v2),
        endpoint(M::POST, "/csc/v2/info", info::info_v2),
        endpoint(M::POST, "/csc/v2/auth/login", auth::login_v2),
        endpoint(M::POST, "/csc/v2/auth/revoke", auth::revoke),
        endpoint(M::POST, "/csc/v2/credentials/list", cred::list_v2),
        endpoint(M::POST, "/csc/v2/credentials/info", cred::info_v2_handler),
        endpoint(M::POST, "/csc/v2/credentials/sendOTP", cred::send_otp),
        endpoint(
            M::POST,
            "/csc/v2/credentials/getChallenge",
            cred::get_challenge,
        ),
        endpoint(M::POST, "/csc/v2/credentials/authorize", cred::authorize_v2),
        endpoint(
            M::POST,
            "/csc/v2/credentials/extendTransaction",
            cred::extend_v2,
        ),
        endpoint(M::POST, "/csc/v2/signatures/signHash", sig::sign_hash_v2),
        endpoint(
            M::POST,
            "/csc/v2/signatures/timestamp",
            csc::timestamp::timestamp_v2,
        ),
        // CSC v1.0.4.0
        endpoint(M::GET, "/csc/v1/info", info::info_v1),
        endpoint(M::POST, "/csc/v1/info", info::info_v1),
        endpoint(M::POST, "/csc/v1/auth/login", auth::login_v1),
        endpoint(M::POST, "/csc/v1/auth/revoke", auth::revoke),
        endpoint(M::POST, "/csc/v1/credentials/list", cred::list_v1),
        endpoint(M::POST, "/csc/v1/credentials/info", cred::info_v1_handler),
        endpoint(M::POST, "/csc/v1/credentials/sendOTP", cred::send_otp),
        endpoint(M::POST, "/csc/v1/credentials/authorize", cred::authorize_v1),
        endpoint(
            M::POST,
            "/csc/v1/credentials/extendTransaction",
            cred::extend_v1,
        ),
        endpoint(M::POST, "/csc/v1/signatures/signHash", sig::sign_hash_v1),
        endpoint(
            M::POST,
            "/csc/v1/signatures/timestamp",
            csc::timestamp::timestamp_v1,
        ),
        // RFC 3161 time-stamping authority
        endpoint(M::POST, "/tsa", csc::timestamp::rfc3161),
        // Self-service portal
        endpoint(M::GET, "/api/v1/credentials", portal::credentials::list),
        endpoint(
            M::POST,
            "/api/v1/credentials/{credential_id}/pin",
            portal::credentials::change_pin,
        ),
        endpoint(
            M::POST,
            "/api/v1/credentials/{credential_id}/unblock",
            portal::credentials::unblock,
        ),
        endpoint(
            M::GET,
            "/api/v1/credentials/{credential_id}/history",
            portal::history::history,
        ),
        endpoint(
            M::GET,
            "/api/v1/notifications",
            portal::credentials::notifications,
        ),
        endpoint(M::POST, "/api/v1/otp/totp", portal::otp::start_totp),
        endpoint(
            M::POST,
            "/api/v1/otp/totp/confirm",
            portal::otp::confirm_totp,
        ),
        endpoint(M::POST, "/api/v1/otp/sms", portal::otp::start_sms),
        endpoint(M::POST, "/api/v1/otp/sms/confirm", portal::otp::confirm_sms),
        endpoint(
            M::POST,
            "/api/v1/credentials/{credential_id}/renew",
            portal::credentials::renew,
        ),
        endpoint(
            M::POST,
            "/api/v1/password",
            portal::credentials::change_password,
        ),
        endpoint(
            M::POST,
            "/api/v1/credentials/{credential_id}/activate",
            portal::credentials::activate,
        ),
        endpoint(
            M::POST,
            "/api/v1/credentials/{credential_id}/otp",
            portal::otp::send_operation_otp,
        ),
        endpoint(
            M::POST,
            "/api/v1/emergency-suspension",
            portal::emergency::suspend,
        ),
        endpoint(
            M::POST,
            "/api/v1/credentials/{credential_id}/resume",
            portal::emergency::resume,
        ),
        endpoint(M::POST, "/api/v1/setup", portal::setup::setup),
        endpoint(
            M::POST,
            "/api/v1/password-policy",
            portal::setup::password_policy,
        ),
        endpoint(M::POST, "/api/v1/otp/totp/enrol", portal::setup::enrol_totp),
        endpoint(
            M::POST,
            "/api/v1/otp/totp/enrol/confirm",
            portal::setup::confirm_totp_enrolment,
        ),
        endpoint(M::POST, "/api/v1/recovery", portal::recovery::request),
        endpoint(M::POST, "/api/v1/recovery/otp", portal::recovery::send_otp),
        endpoint(
            M::POST,
            "/api/v1/recovery/complete",
            portal::recovery::complete,
        ),
        // CSC v2 authorization server (OAuth2) and its pages
        endpoint(
            M::GET,
            "/.well-known/oauth-authorization-server",
            oauth2::endpoints::metadata,
        ),
        endpoint(
            M::POST,
            "/oauth2/pushed_authorize",
            oauth2::endpoints::pushed_authorize,
        ),
        endpoint(M::GET, "/oauth2/authorize", oauth2::pages::authorize_page),
        endpoint(
            M::POST,
            "/oauth2/authorize",
            oauth2::pages::authorize_submit,
        ),
        endpoint(M::POST, "/oauth2/token", oauth2::endpoints::token),
        endpoint(M::POST, "/oauth2/revoke", oauth2::endpoints::revoke),
        endpoint(M::GET, "/static/sigillo.css", pages::stylesheet),
        // The subscriber portal's pages
        endpoint(M::GET, "/portal/", pages::portal::home::home),
        endpoint(M::GET, "/portal/login", pages::portal::login::form),
        endpoint(M::POST, "/portal/login", pages::portal::login::submit),
        endpoint(M::POST, "/portal/logout", pages::portal::login::logout),
        endpoint(
            M::GET,
            "/portal/credentials/{credential_id}/activate",
            pages::portal::credentials::activate_page,
        ),
        endpoint(
            M::POST,
            "/portal/credentials/{credential_id}/activate",
            pages::portal::credentials::activate_submit,
        ),
        endpoint(
            M::GET,
            "/portal/credentials/{credential_id}/pin",
            pages::portal::credentials::pin_page,
        ),
        endpoint(
            M::POST,
            "/portal/credentials/{credential_id}/pin",
            pages::portal::credentials::pin_submit,
        ),
        endpoint(
            M::GET,
            "/portal/credentials/{credential_id}/unblock",
            pages::portal::credentials::unblock_page,
        ),
        endpoint(
            M::POST,
            "/portal/credentials/{credential_id}/unblock",
            pages::portal::credentials::unblock_submit,
        ),
        endpoint(
            M::GET,
            "/portal/password",
            pages::portal::account::password_form,
        ),
        endpoint(
            M::POST,
            "/portal/password",
            pages::portal::account::password_submit,
        ),
        endpoint(
            M::GET,
            "/portal/otp/device",
            pages::portal::account::device_form,
        ),
        endpoint(
            M::POST,
            "/portal/otp/device",
            pages::portal::account::device_submit,
        ),
        endpoint(
            M::GET,
            "/portal/credentials/{credential_id}/resume",
            pages::portal::account::resume_form,
        ),
        endpoint(
            M::POST,
            "/portal/credentials/{credential_id}/resume",
            pages::portal::account::resume_submit,
        ),
        endpoint(M::GET, "/portal/otp/app", pages::portal::app::app_form),
        endpoint(M::POST, "/portal/otp/app", pages::portal::app::app_submit),
        endpoint(M::GET, "/portal/setup", pages::portal::setup::setup_page),
        endpoint(M::POST, "/portal/setup", pages::portal::setup::setup_submit),
        endpoint(M::GET, "/static/setup.js", pages::portal::setup::script),
        // The portal's pages reached without signing in, and the signing history
        endpoint(M::GET, "/portal/emergency", pages::portal::emergency::form),
        endpoint(
            M::POST,
            "/portal/emergency",
            pages::portal::emergency::submit,
        ),
        endpoint(M::GET, "/portal/recovery", pages::portal::recovery::page),
        endpoint(M::POST, "/portal/recovery", pages::portal::recovery::submit),
        endpoint(
            M::GET,
            "/portal/credentials/{credential_id}/history",
            pages::portal::history::history,
        ),
        endpoint(M::GET, "/portal/notices", pages::portal::notices::notices),
        endpoint(
            M::GET,
            "/portal/credentials/{credential_id}/renew",
            pages::portal::renew::form,
        ),
        endpoint(
            M::POST,
            "/portal/credentials/{credential_id}/renew",
            pages::portal::renew::submit,
        ),
        // Relying parties: certificate status and CA certificates
        endpoint(M::GET, "/pki/crl/{issuer}.crl", pki::handlers::crl),
        endpoint(M::GET, "/pki/ca/{name}.cer", pki::handlers::ca_certificate),
        endpoint(M::POST, "/pki/ocsp", pki::handlers::ocsp_post),
        endpoint(M::GET, "/pki/ocsp/{request}", pki::handlers::ocsp_get),
    ]
}

/// Every endpoint of the admin listener.
pub fn admin_endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        endpoint(M::GET, "/healthz", health::healthz),
        // Off the public listener: it tells load, queue depths and key counts.
        endpoint(M::GET, "/metrics", health::metrics),
        endpoint(M::POST, "/admin/v1/users", admin::users::create_user),
        endpoint(
            M::POST,
            "/admin/v1/users/{user_id}/credentials",
            admin::users::create_credential,
        ),
        endpoint(
            M::POST,
            "/admin/v1/users/{user_id}/setup-link",
            admin::users::send_setup_link,
        ),
        endpoint(
            M::POST,
            "/admin/v1/credentials/{credential_id}/envelope",
            admin::users::replace_envelope,
        ),
        endpoint(
            M::POST,
            "/admin/v1/coupons",
            admin::credentials::create_coupons,
        ),
        endpoint(
            M::POST,
            "/admin/v1/credentials/{credential_id}/suspend",
            admin::credentials::suspend,
        ),
        endpoint(
            M::POST,
            "/admin/v1/credentials/{credential_id}/resume",
            admin::credentials::resume,
        ),
        endpoint(
            M::POST,
            "/admin/v1/credentials/{credential_id}/revoke",
            admin::credentials::revoke,
        ),
        endpoint(
            M::POST,
            "/admin/v1/oauth2/clients",
            admin::oauth2_clients::register,
        ),
        endpoint(
            M::GET,
            "/admin/v1/oauth2/clients",
            admin::oauth2_clients::list,
        ),
        endpoint(
            M::DELETE,
            "/admin/v1/oauth2/clients/{client_id}",
            admin::oauth2_clients::delete,
        ),
    ]
}

/// Registers `endpoints`, one resource per path (with a route per method); any other method
/// on a known path answers 405 with the `Allow` header listing the path's methods (RFC 9110).
fn register(endpoints: Vec<Endpoint>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let mut resources: Vec<(&'static str, actix_web::Resource, Vec<Method>)> = Vec::new();
        for e in endpoints {
            match resources.iter_mut().find(|(path, _, _)| *path == e.path) {
                Some((_, resource, methods)) => {
                    let taken = std::mem::replace(resource, web::resource(e.path));
                    *resource = taken.route(e.route);
                    methods.push(e.method);
                }
                None => {
                    resources.push((e.path, web::resource(e.path).route(e.route), vec![e.method]))
                }
            }
        }
        for (_, resource, methods) in resources {
            let allow = methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            cfg.service(resource.default_service(web::to(move || {
                let allow = allow.clone();
                async move { method_not_allowed(allow) }
            })));
        }
    }
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}

/// The public listener's unknown paths: under `/csc/v1/` and `/csc/v2/` a CSC method this
/// service does not implement, 501 (CSC §10.1); elsewhere 404.
async fn public_not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.path();
    if path.starts_with("/csc/v2/") || path.starts_with("/csc/v1/") {
        return Err(crate::error::csc_not_implemented());
    }
    not_found().await
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "invalid_request",
        "no such method",
    ))
}

fn method_not_allowed(allow: String) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "method not allowed on this path",
    ));
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// JSON bodies: size-limited, and every parse failure is a CSC `invalid_request`.
fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _| {
            ApiError::invalid_request(format!("invalid JSON body: {err}")).into()
        })
}

/// JSON request bodies are never arrays: serde reads a derived struct from an array too, by
/// position, so `[]` would pass for a request whose fields are all optional (CSC
/// `credentials/list`, `auth/login`). Checked once here for every JSON endpoint, on the body
/// the handler then parses (read once, never parsed twice); a body over `limit` is refused
/// like the JSON extractor refuses it.
async fn json_objects_only(
    limit: usize,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if json {
        let mut payload = req.take_payload();
        let mut body = web::BytesMut::new();
        let mut refused = None;
        while let Some(chunk) = payload.next().await {
            match chunk {
                Ok(chunk) if body.len() + chunk.len() <= limit => body.extend_from_slice(&chunk),
                Ok(_) => {
                    refused = Some(ApiError::invalid_request(
                        "invalid JSON body: larger than the limit",
                    ));
                    break;
                }
                Err(e) => {
                    refused = Some(ApiError::invalid_request(format!("invalid JSON body: {e}")));
                    break;
                }
            }
        }
        // An array is what a struct would read by position; any other non-object (null, a
        // string, a number) fails the handler's own parsing anyway.
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if refused.is_none() && first == Some(&b'[') {
            refused = Some(ApiError::invalid_request(
                "the JSON body must be an object, not an array",
            ));
        }
        if let Some(error) = refused {
            return Ok(req.into_response(error.error_response()));
        }
        req.set_payload(Payload::from(body.freeze()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Form bodies (the OAuth2 endpoints and pages): size-limited, parse failures `invalid_request`.
fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(limit)
        .error_handler(|err, _| {
            ApiError::invalid_request(format!("invalid form body: {err}")).into()
        })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| ApiError::invalid_request(err.to_string()).into())
}

/// Marks the response `Connection: close` once the gateway is shutting down, so that the
/// client sends nothing more on this connection and the server closes it after this answer.
async fn close_when_draining<B>(
    draining: Arc<AtomicBool>,
    response: impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let mut res = response.await?;
    if draining.load(Ordering::SeqCst) {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

/// The headers every response of both listeners carries (unless the handler set its own).
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// The public listener's headers: with TLS on, also HSTS, so that a browser that once reached
/// the portal over HTTPS never sends a password or token over plain HTTP to this host again.
fn public_headers(hsts: Option<String>) -> DefaultHeaders {
    match hsts {
        Some(value) => security_headers().add((header::STRICT_TRANSPORT_SECURITY, value)),
        None => security_headers(),
    }
}

/// A running gateway: both listeners bound, serving in the background.
pub struct Running {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub services: web::Data<Services>,
    public: ServerHandle,
    admin: ServerHandle,
    servers: tokio::task::JoinHandle<()>,
    /// Set at shutdown: every response from then on closes its connection.
    draining: Arc<AtomicBool>,
    /// The listening sockets (duplicates of the servers' own), shut at shutdown.
    listening: [TcpListener; 2],
}

/// How long a shutdown keeps idle connections open for what their clients may already have
/// sent (each answer then closes its connection), before closing those still idle.
const DRAIN_PERIOD: Duration = Duration::from_secs(1);

impl Running {
    /// Serves until SIGTERM or SIGINT, then shuts down gracefully within
    /// `server.shutdown_timeout_secs`: stops accepting connections, answers every request the
    /// open connections carry (each answer says `Connection: close`), closes the connections
    /// still idle after [`DRAIN_PERIOD`], waits for in-flight requests, and drains the audit
    /// writer before returning.
    pub async fn serve_until_signal(mut self) {
        let signal = async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                tracing::error!("cannot listen for SIGTERM; only SIGINT stops the gateway");
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        tokio::select! {
            () = signal => {}
            _ = &mut self.servers => {
                tracing::error!("the servers stopped by themselves");
                return;
            }
        }
        let bound = Duration::from_secs(self.services.config.server.shutdown_timeout_secs);
        tracing::info!(bound_secs = bound.as_secs(), "shutting down");
        if tokio::time::timeout(bound, self.shutdown()).await.is_err() {
            tracing::error!(
                bound_secs = bound.as_secs(),
                "shutdown did not finish within its bound; exiting anyway"
            );
        }
    }

    /// The steps of a graceful shutdown (see [`Running::serve_until_signal`]).
    async fn shutdown(self) {
        self.draining.store(true, Ordering::SeqCst);
        // No new connection is accepted from here (they wait in the backlog and are refused
        // when the listeners close below).
        self.public.pause().await;
        self.admin.pause().await;
        // A paused listener still lets the kernel complete new connections into its backlog;
        // closing it after the drain resets them once their clients have sent a request, which
        // a client cannot tell from a request dropped half-way. Shut the sockets now: a new
        // connection is refused at once, and one in the backlog never carried an answer.
        for listener in &self.listening {
            refuse_new_connections(listener);
        }
        tokio::time::sleep(DRAIN_PERIOD).await;
        // Closes the listeners and the idle connections; waits for in-flight requests (up to
        // the servers' shutdown_timeout).
        tokio::join!(self.public.stop(true), self.admin.stop(true));
        let _ = self.servers.await;
        self.services.audit.drain().await;
        tracing::info!("stopped");
    }

    /// Stops both listeners gracefully.
    pub async fn stop(self) {
        self.public.stop(true).await;
        self.admin.stop(true).await;
        let _ = self.servers.await;
    }

    /// Waits until both servers have stopped (on SIGINT/SIGTERM).
    pub async fn wait(self) {
        let _ = self.servers.await;
    }
}

/// Stops the kernel from completing connections on `listener` (shutdown(2) of a listening
/// socket: new ones are refused, those not yet accepted are reset). The server's own copy of
/// the socket stays open until the server stops.
fn refuse_new_connections(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: shutdown(2) on a socket this process owns; no memory is passed.
    let rc = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RD) };
    if rc != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not shut a listening socket; new connections wait for the drain"
        );
    }
}

/// Builds the services and binds both listeners (port 0 picks a free port).
pub async fn start(mut config: Config) -> Result<Running, StartError> {
    let public_listener = TcpListener::bind(config.server.public_addr)?;
    let admin_listener = TcpListener::bind(config.server.admin_addr)?;
    let listening = [public_listener.try_clone()?, admin_listener.try_clone()?];
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let scheme = if config.tls.enabled() {
        "https"
    } else {
        "http"
    };
    if config.oauth2.issuer.is_empty() {
        // The OAuth2 issuer defaults to the public listener as bound.
        config.oauth2.issuer = format!("{scheme}://{public_addr}");
    }
    if config.pki.base_url.is_empty() {
        // Certificates must name a URL that answers: this node's, as bound.
        config.pki.base_url = format!("{scheme}://{public_addr}");
    }
    let workers = threads_or_cores(config.server.workers);
    let body_limit = config.server.max_body_bytes;
    let tls = config.tls.clone();
    // Fail before the services start (migrations, HSM) if a certificate or key is unusable.
    if tls.enabled() {
        crate::tls::acceptor(&tls, None)?;
    }
    let hsts = (tls.enabled() && tls.hsts_max_age_secs > 0)
        .then(|| format!("max-age={}", tls.hsts_max_age_secs));
    let shutdown_timeout = config.server.shutdown_timeout_secs;
    let services = web::Data::new(Services::build(config).await?);
    let readiness = web::Data::new(health::Readiness::default());
    let draining = Arc::new(AtomicBool::new(false));

    let data = services.clone();
    let closing = draining.clone();
    let public = HttpServer::new(move || {
        let metrics = data.clone();
        let closing = closing.clone();
        App::new()
            .app_data(data.clone())
            .app_data(readiness.clone())
            .app_data(json_config(body_limit))
            .app_data(form_config(body_limit))
            .app_data(path_config())
            .wrap(from_fn(move |req, next| {
                json_objects_only(body_limit, req, next)
            }))
            .wrap_fn(move |req, srv| {
                let started = Instant::now();
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let method = req.method().to_string();
                let metrics = metrics.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let m = &metrics.metrics;
                    m.http_requests
                        .with_label_values(&[&route, &method, res.status().as_str()])
                        .inc();
                    m.http_duration
                        .with_label_values(&[&route])
                        .observe(started.elapsed().as_secs_f64());
                    Ok(res)
                }
            })
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap(public_headers(hsts.clone()))
            .wrap_fn(move |req, srv| close_when_draining(closing.clone(), srv.call(req)))
            .configure(register(public_endpoints()))
            .default_service(web::to(public_not_found))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(shutdown_timeout);
    let public = if tls.enabled() {
        public.listen_openssl(public_listener, crate::tls::acceptor(&tls, None)?)?
    } else {
        public.listen(public_listener)?
    }
    .run();

    let data = services.clone();
    let closing = draining.clone();
    let admin = HttpServer::new(move || {
        let closing = closing.clone();
        App::new()
            .app_data(data.clone())
            .app_data(json_config(64 * 1024))
            .app_data(path_config())
            .wrap(from_fn(|req, next| json_objects_only(64 * 1024, req, next)))
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap(security_headers())
            .wrap_fn(move |req, srv| close_when_draining(closing.clone(), srv.call(req)))
            .configure(register(admin_endpoints()))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(shutdown_timeout);
    let client_ca = Some(tls.admin_client_ca_file.as_path()).filter(|p| !p.as_os_str().is_empty());
    let admin = if tls.enabled() {
        admin.listen_openssl(admin_listener, crate::tls::acceptor(&tls, client_ca)?)?
    } else {
        admin.listen(admin_listener)?
    }
    .run();

    let notice_interval =
        std::time::Duration::from_secs(services.config.lifecycle.notice_interval_secs.max(60));
    let notice_task = tokio::spawn(crate::notices::scheduler(services.clone(), notice_interval));
    let mail_task = tokio::spawn(crate::mail::sender::run(services.clone()));
    let pki_task = tokio::spawn(crate::pki::watch(services.clone()));

    let (public_handle, admin_handle) = (public.handle(), admin.handle());
    let servers = tokio::spawn(async move {
        let (a, b) = tokio::join!(public, admin);
        notice_task.abort();
        mail_task.abort();
        pki_task.abort();
        for result in [a, b] {
            if let Err(e) = result {
                tracing::error!(error = %e, "server stopped with an error");
            }
        }
    });
    tracing::info!(%public_addr, %admin_addr, "sigillo listening");
    Ok(Running {
        public_addr,
        admin_addr,
        services,
        public: public_handle,
        admin: admin_handle,
        servers,
        draining,
        listening,
    })
}
