//! The connection pools. Every connection has `search_path` set to the configured schema, so a
//! test (or a tenant) can live in its own schema with unqualified SQL.
//!
//! Two kinds of connection: the owner's, which creates the schema and runs the migrations
//! ([`connect_owner`], `database.migration_url` or else `database.url`), and the runtime pool
//! ([`connect`]), which takes `database.runtime_role` at connect time: that role may add audit
//! rows but never change or remove them (grants in migration 0006).
//!
//! TLS: with `database.ca_file` set, or `sslmode=verify-full` or `require` in the URL, every
//! connection is TLS and the server must present a certificate that chains to the configured
//! CA (or the system's) for the host it was reached at — libpq's `verify-full`. A weaker mode
//! (TLS without checking who answers) is not offered: it would hand the audit log and every
//! credential row to whoever sits on the path.

use std::path::Path;
use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;

use super::DbError;
use crate::config::{is_identifier, DatabaseConfig};

/// A cheap-to-clone handle on the pool.
pub type Db = Pool;

/// The runtime pool (connections open lazily), as `database.runtime_role` when one is set.
/// The schema must exist: [`connect_owner`] creates it.
pub async fn connect(config: &DatabaseConfig) -> Result<Db, DbError> {
    let role = Some(config.runtime_role.as_str()).filter(|r| !r.is_empty());
    build(config, config.url.expose(), role, config.pool_size)
}

/// One connection as the schema's owner, for migrations, after creating the schema if it is
/// missing.
pub async fn connect_owner(config: &DatabaseConfig) -> Result<Db, DbError> {
    let url = match config.migration_url.is_empty() {
        true => config.url.expose(),
        false => config.migration_url.expose(),
    };
    let pool = build(config, url, None, 1)?;
    let client = pool.get().await?;
    // `IF NOT EXISTS` alone races when several nodes start at once: serialise on a lock.
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('sigillo-schema:{schema}')); \
             CREATE SCHEMA IF NOT EXISTS {schema}; COMMIT;",
            schema = config.schema
        ))
        .await?;
    drop(client);
    Ok(pool)
}

fn build(
    config: &DatabaseConfig,
    url: &str,
    role: Option<&str>,
    size: usize,
) -> Result<Db, DbError> {
    if !is_identifier(&config.schema) {
        return Err(DbError::Config("schema is not a plain identifier".into()));
    }
    if role.is_some_and(|r| !is_identifier(r)) {
        return Err(DbError::Config(
            "runtime_role is not a plain identifier".into(),
        ));
    }
    let (url, verify_full) = without_verify_full(url);
    let mut pg =
        tokio_postgres::Config::from_str(&url).map_err(|e| DbError::Config(e.to_string()))?;
    let mut options = format!(
        "-c search_path={} -c client_min_messages=warning",
        config.schema
    );
    if let Some(role) = role {
        // The same as `SET ROLE` on every connection, before any statement runs.
        options.push_str(&format!(" -c role={role}"));
    }
    pg.options(options);
    pg.application_name("sigillo");
    pg.connect_timeout(std::time::Duration::from_secs(5));
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let tls = verify_full || pg.get_ssl_mode() == SslMode::Require;
    let manager = if tls || !config.ca_file.as_os_str().is_empty() {
        pg.ssl_mode(SslMode::Require);
        Manager::from_config(pg, tls_connector(&config.ca_file)?, manager_config)
    } else {
        Manager::from_config(pg, NoTls, manager_config)
    };
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// The URL with `sslmode=verify-full` (which tokio-postgres does not parse) made `require`,
/// and whether it said so: our TLS connector always verifies, so `require` here is verify-full.
fn without_verify_full(url: &str) -> (std::borrow::Cow<'_, str>, bool) {
    const VERIFY_FULL: &str = "sslmode=verify-full";
    if url.contains(VERIFY_FULL) {
        (url.replace(VERIFY_FULL, "sslmode=require").into(), true)
    } else {
        (url.into(), false)
    }
}

/// A TLS 1.2+ connector that checks the server's certificate chain (against `ca_file` and
/// the system's trust store) and its host name.
fn tls_connector(ca_file: &Path) -> Result<MakeTlsConnector, DbError> {
    let tls_error = |e: openssl::error::ErrorStack| {
        DbError::Config(format!("TLS (database.ca_file {}): {e}", ca_file.display()))
    };
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(tls_error)?;
    if !ca_file.as_os_str().is_empty() {
        builder.set_ca_file(ca_file).map_err(tls_error)?;
    }
    Ok(MakeTlsConnector::new(builder.build()))
}

#[cfg(test)]
mod tests {
    use super::without_verify_full;

    #[test]
    fn verify_full_is_read_as_tls_with_verification() {
        let (url, tls) =
            without_verify_full("postgres://u@db.example:5432/sigillo?sslmode=verify-full");
        assert!(tls);
        assert_eq!(url, "postgres://u@db.example:5432/sigillo?sslmode=require");
        let (url, tls) = without_verify_full("host=db.example sslmode=verify-full user=u");
        assert!(tls);
        assert_eq!(url, "host=db.example sslmode=require user=u");
        let (url, tls) = without_verify_full("postgres://u@127.0.0.1/sigillo");
        assert!(!tls);
        assert_eq!(url, "postgres://u@127.0.0.1/sigillo");
    }
}
