//! The connection pool. Every connection has `search_path` set to the configured schema, so a
//! test (or a tenant) can live in its own schema with unqualified SQL.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::DbError;
use crate::config::{is_identifier, DatabaseConfig};

/// A cheap-to-clone handle on the pool.
pub type Db = Pool;

/// Builds the pool (connections open lazily) after creating the schema if it is missing.
pub async fn connect(config: &DatabaseConfig) -> Result<Db, DbError> {
    if !is_identifier(&config.schema) {
        return Err(DbError::Config("schema is not a plain identifier".into()));
    }
    let mut pg = tokio_postgres::Config::from_str(config.url.expose())
        .map_err(|e| DbError::Config(e.to_string()))?;
    pg.options(format!(
        "-c search_path={} -c client_min_messages=warning",
        config.schema
    ));
    pg.application_name("sigillo");
    pg.connect_timeout(std::time::Duration::from_secs(5));
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(config.pool_size)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))?;
    let client = pool.get().await?;
    // `IF NOT EXISTS` alone races when several nodes start at once: serialise on a lock.
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('sigillo-schema:{schema}')); \
             CREATE SCHEMA IF NOT EXISTS {schema}; COMMIT;",
            schema = config.schema
        ))
        .await?;
    Ok(pool)
}
