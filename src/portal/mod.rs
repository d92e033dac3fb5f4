//! The self-service API for MySign-style portals (`/api/v1`), called with the subscriber's
//! bearer token. Errors have the CSC shape.

pub mod credentials;
pub mod emergency;
pub mod otp;
pub mod recovery;
pub mod setup;
pub mod wire;
