//! Database errors, classified by SQLSTATE (never by message text).

use tokio_postgres::error::SqlState;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("a row with this key already exists ({constraint})")]
    UniqueViolation { constraint: String },
    #[error("database query: {}", describe(.0))]
    Query(tokio_postgres::Error),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("stored value is invalid: {0}")]
    Corrupt(&'static str),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => DbError::UniqueViolation {
                constraint: db.constraint().unwrap_or_default().to_owned(),
            },
            _ => DbError::Query(err),
        }
    }
}

/// The server's message when there is one ("db error" alone says nothing).
fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}
