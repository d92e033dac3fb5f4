//! sigillo: a remote-signing gateway. Subscribers' signing keys live in a PKCS#11 HSM; clients
//! reach them through the Cloud Signature Consortium API, portals through the self-service API,
//! operators through the admin API on its own listener.
//!
//! Layering: HTTP code (`app`, `csc`, `portal`, `admin`, `extract`, `error`) never sees PKCS#11,
//! Redis or PostgreSQL types; domain code (`activation`, `enrolment`, `auth`, `otp`, `ca`) never
//! sees actix types; PKCS#11 runs only on the worker threads of `hsm`.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing,
        clippy::await_holding_lock
    )
)]

pub mod activation;
pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod ca;
pub mod config;
pub mod credentials;
pub mod csc;
pub mod db;
pub mod der;
pub mod devices;
pub mod enrolment;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod health;
pub mod history;
pub mod hsm;
pub mod kv;
pub mod lifecycle;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod notices;
pub mod oauth2;
pub mod otp;
pub mod pki;
pub mod portal;
pub mod renewal;
pub mod secrets;
pub mod services;
pub mod signing;
pub mod telemetry;
pub mod text;
pub mod tls;
pub mod web;

#[cfg(test)]
mod proptests;
