//! The subscriber portal's pages (`/portal/`).

pub mod setup;
