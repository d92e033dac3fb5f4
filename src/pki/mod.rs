//! The gateway's services to relying parties: the RFC 3161 time-stamping authority (keys in
//! the HSM, certificates issued by `ca`).

pub mod tsa;
mod tsa_der;
mod tsa_signer;
