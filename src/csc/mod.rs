//! The Cloud Signature Consortium API (v2 under `/csc/v2`): thin handlers over the domain,
//! with the wire shapes in `v2_wire`. Field names and error codes follow the CSC spec.

pub mod auth;
pub mod credentials;
pub mod v2_wire;
