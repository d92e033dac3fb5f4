//! Repositories: the SQL of each table, typed in and out.

pub mod audit;
pub mod ca;
pub mod coupons;
pub mod credentials;
pub mod notices;
pub mod oauth2_clients;
pub mod pki;
pub mod sads;
pub mod tsa;
pub mod users;
