//! The connection pools. Every connection has `search_path` set to the configured schema, so a
//! test (or a tenant) can live in its own schema with unqualified SQL.
//!
//! Two kinds of connection: the owner's, which creates the schema and runs the migrations
//! ([`connect_owner`], `database.migration_url` or else `database.url`), and the runtime pool
//! ([`connect`]), which takes `database.runtime_role` at connect time: that role may add audit
//! rows but never change or remove them (grants in migration 0006).

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
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
    let mut pg =
        tokio_postgres::Config::from_str(url).map_err(|e| DbError::Config(e.to_string()))?;
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
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}
