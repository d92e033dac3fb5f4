//! The operator API (`/admin/v1`), served on its own listener and guarded by the admin token.
//! Input rejects unknown fields.

pub mod credentials;
pub mod oauth2_clients;
pub mod users;
pub mod wire;
