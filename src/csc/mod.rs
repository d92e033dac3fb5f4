//! The Cloud Signature Consortium API, v2 under `/csc/v2` and v1.0.4.0 under `/csc/v1`: one
//! domain layer, two thin wire adapters (`v2_wire`, `v1_wire`), shared checks in `common`.
//! Field names and error codes follow the CSC spec, so existing CSC clients work unchanged.

pub mod auth;
pub mod common;
pub mod credentials;
pub mod info;
pub mod signatures;
pub mod timestamp;
pub mod v1_wire;
pub mod v2_wire;
