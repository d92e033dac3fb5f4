//! The route table — the one place that shows every endpoint — and the two listeners: the
//! public one (CSC, portal, operations) and the admin one.

use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::{web, App, HttpResponse, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::{threads_or_cores, Config};
use crate::error::ApiError;
use crate::services::{Services, StartError};
use crate::{admin, csc, health, portal};

/// The OpenAPI description of every endpoint, served at `/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../openapi/sigillo.yaml");

/// Public routes: CSC v2 and v1, the self-service portal API, operations.
pub fn public_routes(cfg: &mut web::ServiceConfig) {
    use csc::{auth, credentials as cred, info, signatures as sig};
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/openapi.yaml", web::get().to(openapi))
        .service(
            web::scope("/csc/v2")
                .route("/info", web::get().to(info::info_v2))
                .route("/info", web::post().to(info::info_v2))
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/revoke", web::post().to(auth::revoke))
                .route("/credentials/list", web::post().to(cred::list_v2))
                .route("/credentials/info", web::post().to(cred::info_v2_handler))
                .route("/credentials/sendOTP", web::post().to(cred::send_otp))
                .route("/credentials/authorize", web::post().to(cred::authorize_v2))
                .route(
                    "/credentials/extendTransaction",
                    web::post().to(cred::extend_v2),
                )
                .route("/signatures/signHash", web::post().to(sig::sign_hash_v2)),
        )
        .service(
            web::scope("/csc/v1")
                .route("/info", web::get().to(info::info_v1))
                .route("/info", web::post().to(info::info_v1))
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/revoke", web::post().to(auth::revoke))
                .route("/credentials/list", web::post().to(cred::list_v1))
                .route("/credentials/info", web::post().to(cred::info_v1_handler))
                .route("/credentials/sendOTP", web::post().to(cred::send_otp))
                .route("/credentials/authorize", web::post().to(cred::authorize_v1))
                .route(
                    "/credentials/extendTransaction",
                    web::post().to(cred::extend_v1),
                )
                .route("/signatures/signHash", web::post().to(sig::sign_hash_v1)),
        )
        .service(web::scope("/api/v1").route(
            "/credentials/{credential_id}/activate",
            web::post().to(portal::credentials::activate),
        ));
}

/// Admin routes (own listener).
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .service(
            web::scope("/admin/v1")
                .route("/users", web::post().to(admin::users::create_user))
                .route(
                    "/users/{user_id}/credentials",
                    web::post().to(admin::users::create_credential),
                ),
        );
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "invalid_request",
        "no such method",
    ))
}

/// JSON bodies: size-limited, and every parse failure is a CSC `invalid_request`.
fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _| {
            ApiError::invalid_request(format!("invalid JSON body: {err}")).into()
        })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| ApiError::invalid_request(err.to_string()).into())
}

/// A running gateway: both listeners bound, serving in the background.
pub struct Running {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub services: web::Data<Services>,
    public: ServerHandle,
    admin: ServerHandle,
    servers: tokio::task::JoinHandle<()>,
}

impl Running {
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

/// Builds the services and binds both listeners (port 0 picks a free port).
pub async fn start(config: Config) -> Result<Running, StartError> {
    let public_listener = TcpListener::bind(config.server.public_addr)?;
    let admin_listener = TcpListener::bind(config.server.admin_addr)?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let workers = threads_or_cores(config.server.workers);
    let body_limit = config.server.max_body_bytes;
    let services = web::Data::new(Services::build(config).await?);

    let data = services.clone();
    let public: Server = HttpServer::new(move || {
        let metrics = data.clone();
        App::new()
            .app_data(data.clone())
            .app_data(json_config(body_limit))
            .app_data(path_config())
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
            .wrap(TracingLogger::default())
            .configure(public_routes)
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .listen(public_listener)?
    .run();

    let data = services.clone();
    let admin: Server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(json_config(64 * 1024))
            .app_data(path_config())
            .wrap(TracingLogger::default())
            .configure(admin_routes)
            .default_service(web::to(not_found))
    })
    .workers(1)
    .listen(admin_listener)?
    .run();

    let (public_handle, admin_handle) = (public.handle(), admin.handle());
    let servers = tokio::spawn(async move {
        let (a, b) = tokio::join!(public, admin);
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
    })
}
