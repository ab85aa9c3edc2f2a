#![allow(dead_code)] // each benchmark uses part of the shared seeding
//! Seeds a benchmark database directly (SQL, in batches): one tenant, one grant, and `total` API
//! tokens with retrieved secrets. Shared by the benchmarks that need "a million credentials stored".

use std::time::Instant;

use secrecy::ExposeSecret;
use tokenbroker::domain::secrets::SecretDigest;
use tokenbroker::domain::tokens::{self, SecretKind};

const BATCH: usize = 400;

/// A numeric setting of a benchmark from the environment.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
pub const TENANT_ID: &str = "00000000-0000-4000-8000-0000000000aa";
pub const TENANT_SLUG: &str = "bench";
pub const USER_ID: &str = "00000000-0000-4000-8000-000000000001";

/// The tenant, a staff user, an approved request and its grant (scope `read`).
pub async fn fixtures(pool: &sqlx::AnyPool) {
    for sql in [
        format!(
            "INSERT INTO tenants (id, slug, name, brand_colour, status, created_at, updated_at) VALUES ('{TENANT_ID}', '{TENANT_SLUG}', 'Bench', '#336699', 'active', 0, 0)"
        ),
        format!(
            "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at) VALUES ('{USER_ID}', 'b@example.com', 'b@example.com', 'B', 'active', 0, 0)"
        ),
        format!(
            "INSERT INTO access_requests (id, tenant_id, organisation, contact_name, email, email_normalized, scopes, justification, status, confirm_token_hash, created_at) VALUES ('r', '{TENANT_ID}', 'P', 'P', 'p@example.com', 'p@example.com', '[\"read\"]', 'x', 'approved', 'h', 0)"
        ),
        format!(
            "INSERT INTO grants (id, tenant_id, request_id, organisation, contact_email, scopes, max_lifetime_days, created_at, created_by) VALUES ('g', '{TENANT_ID}', 'r', 'P', 'p@example.com', '[\"read\"]', 365, 0, '{USER_ID}')"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("fixture");
    }
}

/// Stores `total` API tokens valid for a year; returns every `sample_every`-th token in full.
pub async fn api_tokens(
    pool: &sqlx::AnyPool,
    total: usize,
    sample_every: usize,
    now: i64,
) -> Vec<String> {
    let started = Instant::now();
    let mut sample = Vec::new();
    let expires = now + 365 * 86_400_000;
    for batch_start in (0..total).step_by(BATCH) {
        let n = BATCH.min(total - batch_start);
        let mut credentials = String::from(
            "INSERT INTO credentials (id, tenant_id, grant_id, kind, status, created_at, created_by, expires_at) VALUES ",
        );
        let mut secrets = String::from(
            "INSERT INTO credential_secrets (id, tenant_id, credential_id, secret_hash, display_prefix, created_at, expires_at, retrieval_token_hash, retrieval_expires_at, retrieved_at) VALUES ",
        );
        for i in 0..n {
            let id = batch_start + i;
            let issued = tokens::issue(SecretKind::ApiToken, "live");
            let hash = SecretDigest::of(issued.secret.expose_secret());
            if id % sample_every == 0 {
                sample.push(issued.secret.expose_secret().to_owned());
            }
            let sep = if i == 0 { "" } else { "," };
            credentials.push_str(&format!("{sep}('c{id}', '{TENANT_ID}', 'g', 'api_token', 'active', {id}, '{USER_ID}', {expires})"));
            secrets.push_str(&format!(
                "{sep}('s{id}', '{TENANT_ID}', 'c{id}', '{}', 'tbk_live_x', 0, {expires}, 'rt{id}', 0, 0)",
                hash.as_hex()
            ));
        }
        let mut tx = pool.begin().await.expect("tx");
        sqlx::query(sqlx::AssertSqlSafe(credentials))
            .execute(&mut *tx)
            .await
            .expect("credentials");
        sqlx::query(sqlx::AssertSqlSafe(secrets))
            .execute(&mut *tx)
            .await
            .expect("secrets");
        tx.commit().await.expect("commit");
    }
    println!(
        "stored {total} credentials in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    sample
}

/// A client credential with a known secret; `gateway` makes it a resource server.
pub async fn client(pool: &sqlx::AnyPool, name: &str, gateway: bool, now: i64) -> (String, String) {
    let client_id = format!("tbc_live_{name}");
    let secret = tokens::issue(SecretKind::ClientSecret, "live");
    let hash = SecretDigest::of(secret.secret.expose_secret());
    let expires = now + 365 * 86_400_000;
    let credential = format!(
        "INSERT INTO credentials (id, tenant_id, grant_id, kind, client_id, status, created_at, created_by, expires_at, may_introspect, tokens_per_minute) \
         VALUES ('client-{name}', '{TENANT_ID}', 'g', 'client', '{client_id}', 'active', {now}, '{USER_ID}', {expires}, {}, {BENCH_TOKENS_PER_MINUTE})",
        i64::from(gateway)
    );
    let stored_secret = format!(
        "INSERT INTO credential_secrets (id, tenant_id, credential_id, secret_hash, display_prefix, created_at, expires_at, retrieval_token_hash, retrieval_expires_at, retrieved_at) \
         VALUES ('secret-{name}', '{TENANT_ID}', 'client-{name}', '{}', 'tbs_live_x', {now}, {expires}, 'rt-{name}', 0, {now})",
        hash.as_hex()
    );
    for sql in [credential, stored_secret] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("client");
    }
    (client_id, secret.secret.expose_secret().to_owned())
}

/// A bench client obtains tokens as fast as the server signs them: its issuance limit is far
/// above any rate one machine reaches (the default, 60 a minute, would measure 429s).
const BENCH_TOKENS_PER_MINUTE: i64 = 1_000_000;

/// Registers a public key (a JWK) for a client seeded by [`client`], for `private_key_jwt`.
pub async fn client_key(pool: &sqlx::AnyPool, name: &str, jwk: &str, now: i64) {
    let sql = format!(
        "INSERT INTO credential_keys (id, tenant_id, credential_id, thumbprint, algorithm, public_jwk, created_at) \
         VALUES ('key-{name}', '{TENANT_ID}', 'client-{name}', 'bench-{name}', 'EdDSA', '{jwk}', {now})"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .expect("client key");
}
