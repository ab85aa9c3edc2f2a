//! Integration tests: the real server on a random port, a fresh database per test, real HTTP.
//! Every test that touches storage runs on SQLite and on PostgreSQL.

// Test code, not a request path: a panic here fails the run, which is what tests should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod client;
mod db_proxy;
mod helpers;
mod oauth_kit;
mod staff_kit;

mod alerts;
mod anonymous;
mod api_fuzz;
mod approvals;
mod architecture;
mod audit;
mod authorization;
mod automation;
mod bad_input;
mod browser;
mod cli;
mod client_assertions;
mod client_policies;
mod credentials;
mod csrf;
mod dpop;
mod event_log;
mod events;
mod geo;
mod headers;
mod health;
mod jobs;
mod keys;
mod log_summary;
mod login;
mod many;
mod metrics;
mod migrations;
mod multi_instance;
mod my_sessions;
mod oauth;
mod outage;
mod partners;
mod passkeys;
mod proxies;
mod recovery;
mod route_rules;
mod schema;
mod sessions;
mod setup;
mod shutdown;
mod staff;
mod stall;
mod step_up;
mod storage_files;
mod tenants;
mod throttle;
mod token_recording;
