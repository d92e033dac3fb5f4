#![allow(clippy::too_many_arguments, clippy::type_complexity)]
//! Integration tests: one binary, against the real Redis, PostgreSQL and SoftHSM2 token that
//! `scripts/test` starts. Each test spawns its own gateway with its own database schema, Redis
//! key prefix and HSM label prefix, so tests run in parallel without seeing each other.

mod activation;
mod admin;
mod audit_chain;
mod bootstrap;
mod ca;
mod chaos;
mod cluster;
mod csc_api;
mod csc_flow;
mod csc_refusals;
mod csc_v2_strict;
mod devices;
mod emergency;
mod enrolment;
mod hsm_faults;
mod http_hygiene;
mod keystore;
mod kv;
mod lifecycle;
mod login;
mod mail;
mod notices;
mod oauth2;
mod ops;
mod otp;
mod pin_race;
mod pki;
mod postgres_outage;
mod pyhanko;
mod recovery;
mod redis_stall;
mod renewal;
mod schema_refusals;
mod secrecy;
mod sessions;
mod shutdown;
mod sole_control;
mod support;
mod tls;
mod tsa;
mod wire_text;
