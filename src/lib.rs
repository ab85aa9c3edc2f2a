//! Token Broker: multitenant access console and OAuth 2.0 token service.
//!
//! Layout: `web` is HTTP only (parse, authorize, call the domain, render), `domain` holds the rules,
//! `store` holds every SQL statement. `app` wires them together.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod mail;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod web;
