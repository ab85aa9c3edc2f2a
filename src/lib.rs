//! Token Broker: multitenant access console and OAuth 2.0 token service.
//!
//! Layout: `web` is HTTP only (parse, authorize, call the domain, render), `domain` holds the rules,
//! `store` holds every SQL statement. `app` wires them together; `jobs` runs the periodic work.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod private_files;
pub mod refusals;
pub mod store;
pub mod streak;
pub mod telemetry;
pub mod web;
