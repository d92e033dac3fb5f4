//! PostgreSQL: the pool, the migrations, and one repository file per table. Durable state
//! only (users, credentials, CA, audit); short-lived security state lives in Redis (`kv`).

mod error;
pub mod migrate;
mod pool;
pub mod repo;

pub use error::DbError;
pub use pool::{connect, connect_owner, Db};
