//! The detectors. A pass reads the events after the detector cursor (a moment after they occur, so
//! concurrent transactions have committed), asks each detector about each event, and records the
//! alerts together with the cursor's move — only if the cursor is still where the pass read it, so
//! several instances never examine an event twice. Alerts are deduplicated per detector, subject and
//! window; every alert says in words why it fired.

use std::time::Duration;

use super::travel::{Sighting, Travellers, traveller_of};
use super::{DetectorPolicy, Severity, Traveller};
use crate::clock::duration_ms;
use crate::domain::Core;
use crate::domain::events::{EventRecord, EventType};
use crate::domain::ids::time_ordered_id;
use crate::mail;
use crate::store::StoreError;
use crate::store::alerts::NewAlert;
use crate::store::travellers::WhereaboutsUpdate;

/// Events are examined once they are this old.
pub const DETECT_DELAY: Duration = Duration::from_secs(2);
const BATCH: i64 = 500;
/// A client's secret or key used from outside its networks in this many minutes of the window: it
/// is in hands it should not be.
const NETWORK_REFUSAL_MINUTES: i64 = 3;
/// A client over its issuance limit in this many minutes of the window: not a burst, abuse.
const LIMIT_MINUTES: i64 = 3;

/// Runs passes until the detectors have caught up. Returns how many alert findings were recorded.
pub async fn run_detectors(core: &Core, policy: &DetectorPolicy) -> Result<u64, StoreError> {
    let mut found = 0;
    loop {
        let now = core.clock.now_ms();
        let (at, id) = core.store.detector_cursor().await?;
        let events = core
            .store
            .events_after((at, &id), now - duration_ms(DETECT_DELAY), BATCH)
            .await?;
        let Some(last) = events.last() else {
            return Ok(found);
        };
        let mut travellers = Travellers::of(core, &events).await?;
        let mut alerts = Vec::new();
        for event in &events {
            alerts.extend(examine(core, policy, &mut travellers, event).await?);
        }
        let security = if alerts.iter().any(|a| a.severity == Severity::High.as_str()) {
            core.store.security_staff_emails().await?
        } else {
            Vec::new()
        };
        let mails_for_new = |alert: &NewAlert| {
            if alert.severity != Severity::High.as_str() {
                return Vec::new();
            }
            let Ok(rendered) = mail::notice(
                "High-severity alert",
                "",
                &[
                    alert.reason.clone(),
                    "Open the alerts queue in the console to acknowledge it.".into(),
                ],
                None,
            ) else {
                return Vec::new();
            };
            security
                .iter()
                .map(|to| mail::queued(to, rendered.clone(), now))
                .collect()
        };
        if core
            .store
            .record_detections(
                (at, &id),
                (last.occurred_at, &last.id),
                &alerts,
                &WhereaboutsUpdate {
                    moved: travellers.moved(),
                    forget_before: last.occurred_at - duration_ms(policy.travel_window),
                },
                mails_for_new,
                now,
            )
            .await?
        {
            found += alerts.len() as u64;
        }
        if (events.len() as i64) < BATCH {
            return Ok(found);
        }
    }
}

fn alert(
    event: &EventRecord,
    detector: &'static str,
    severity: Severity,
    subject: Option<&str>,
    dedup_key: String,
    reason: String,
) -> NewAlert {
    NewAlert {
        id: time_ordered_id(),
        tenant_id: event.tenant_id.clone(),
        detector,
        severity: severity.as_str(),
        reason,
        subject: subject.map(str::to_owned),
        dedup_key,
        evidence: vec![event.id.clone()],
    }
}

fn detail(event: &EventRecord, key: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&event.details)
        .ok()?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

fn detail_flag(event: &EventRecord, key: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(&event.details)
        .ok()
        .and_then(|details| details.get(key)?.as_bool())
        .unwrap_or(false)
}

/// What the detectors make of one event.
async fn examine(
    core: &Core,
    policy: &DetectorPolicy,
    travellers: &mut Travellers,
    event: &EventRecord,
) -> Result<Vec<NewAlert>, StoreError> {
    let window = duration_ms(policy.window);
    let bucket = event.occurred_at / window.max(1);
    let failed = event.outcome == "failure";
    let subject = event.subject.as_deref();
    let mut alerts = Vec::new();
    match EventType::parse(&event.event_type) {
        Some(EventType::AccountRecoveryStarted) => alerts.push(alert(
            event,
            "account_recovery_started",
            Severity::High,
            subject,
            format!("assisted-recovery:{}", event.id),
            format!(
                "Every passkey, recovery code and session of account {} was removed and a recovery link issued ({}): make sure its owner asked for it.",
                subject.unwrap_or("?"),
                if event.actor_kind == "cli" { "from the server's command line" } else { "in the console" }
            ),
        )),
        // One alert per high-gravity request: raised when it is asked for, and its execution
        // joins it as evidence.
        Some(event_type @ (EventType::ApprovalRequested | EventType::ApprovalExecuted))
            if detail_flag(event, "alert") =>
        {
            let approval = detail(event, "approval").unwrap_or_else(|| "?".into());
            let summary = detail(event, "summary").unwrap_or_else(|| "a dangerous action".into());
            let what = if event_type == EventType::ApprovalRequested {
                "was asked for and waits for a second person's approval"
            } else {
                "was approved and carried out"
            };
            alerts.push(alert(
                event,
                "four_eyes_action",
                Severity::High,
                subject,
                format!("approval:{approval}"),
                format!("{summary} {what} (request {approval})."),
            ));
        }
        Some(EventType::RecoveryCodeUsed) if !failed => alerts.push(alert(
            event,
            "recovery_code_used",
            Severity::High,
            subject,
            format!("recovery:{}", event.id),
            format!(
                "A recovery code was used to sign in to account {}: its owner may have lost their passkey — or someone else holds the codes.",
                subject.unwrap_or("?")
            ),
        )),
        Some(EventType::PasskeyCounterRegressed) => alerts.push(alert(
            event,
            "passkey_counter_regressed",
            Severity::High,
            subject,
            format!("counter:{}", event.id),
            format!(
                "A passkey of account {} presented a signature counter lower than before: the authenticator may have been cloned.",
                subject.unwrap_or("?")
            ),
        )),
        Some(EventType::UnknownKeyPresented) => {
            let why = detail(event, "reason").unwrap_or_default();
            alerts.push(alert(
                event,
                "unknown_key",
                Severity::Medium,
                None,
                format!("unknown-key:{}:{bucket}", event.tenant_id.as_deref().unwrap_or("-")),
                format!(
                    "A token this tenant's keys did not sign was presented for introspection ({why}): a forged token, or one from another tenant."
                ),
            ));
        }
        Some(EventType::RevokedTokenPresented) => {
            let credential = detail(event, "credential").unwrap_or_else(|| "?".into());
            alerts.push(alert(
                event,
                "revoked_credential_presented",
                Severity::Medium,
                Some(&credential),
                format!("revoked:{credential}:{bucket}"),
                format!(
                    "Credential {credential} is revoked or expired, yet a token of it is still being presented."
                ),
            ));
        }
        Some(EventType::ClientAuthFailed) => {
            let reason = detail(event, "reason").unwrap_or_default();
            let client = detail(event, "client_id").unwrap_or_else(|| "?".into());
            if reason == "revoked" || reason == "expired" {
                alerts.push(alert(
                    event,
                    "revoked_credential_presented",
                    Severity::Medium,
                    Some(&client),
                    format!("revoked-client:{client}:{bucket}"),
                    format!(
                        "Client {client} authenticated with a {reason} secret: someone still holds it."
                    ),
                ));
            }
            if let Some(ip) = event.ip.as_deref() {
                let count = core
                    .store
                    .client_auth_failures(ip, event.occurred_at - window, event.occurred_at)
                    .await?;
                if count >= policy.client_failures {
                    alerts.push(alert(
                        event,
                        "client_auth_burst",
                        Severity::Medium,
                        Some(ip),
                        format!("client-burst:{ip}:{bucket}"),
                        format!(
                            "{count} failed client authentications from {ip} within {} minutes.",
                            policy.window.as_secs() / 60
                        ),
                    ));
                }
            }
        }
        Some(EventType::ClientNetworkRefused) => {
            let client = detail(event, "client_id").unwrap_or_else(|| "?".into());
            if let Some(credential) = event.actor_id.as_deref() {
                let minutes = core
                    .store
                    .minutes_with(
                        EventType::ClientNetworkRefused,
                        credential,
                        event.occurred_at - window,
                        event.occurred_at,
                    )
                    .await?;
                if minutes >= NETWORK_REFUSAL_MINUTES {
                    alerts.push(alert(
                        event,
                        "client_outside_networks",
                        Severity::Medium,
                        Some(credential),
                        format!("outside-networks:{credential}:{bucket}"),
                        format!(
                            "Client {client} authenticated correctly from outside its allowed networks in {minutes} different minutes within {} minutes (last from {}): its secret or key may be in someone else's hands.",
                            policy.window.as_secs() / 60,
                            event.ip.as_deref().unwrap_or("an unknown address")
                        ),
                    ));
                }
            }
        }
        Some(EventType::TokenLimitReached) => {
            let client = detail(event, "client_id").unwrap_or_else(|| "?".into());
            if let Some(credential) = event.actor_id.as_deref() {
                let minutes = core
                    .store
                    .minutes_with(
                        EventType::TokenLimitReached,
                        credential,
                        event.occurred_at - window,
                        event.occurred_at,
                    )
                    .await?;
                if minutes >= LIMIT_MINUTES {
                    alerts.push(alert(
                        event,
                        "issuance_limit_abuse",
                        Severity::Medium,
                        Some(credential),
                        format!("issuance-limit:{credential}:{bucket}"),
                        format!(
                            "Client {client} ran into its limit of tokens per minute in {minutes} different minutes within {} minutes: a runaway job, or someone else using its credentials.",
                            policy.window.as_secs() / 60
                        ),
                    ));
                }
            }
        }
        Some(EventType::ApiKeyRefused) => {
            // A run of wrong keys from one address is someone guessing (or a leaked key that was
            // revoked and is still being tried): the same threshold as client authentication.
            if let Some(ip) = event.ip.as_deref() {
                let count = core
                    .store
                    .api_key_refusals(ip, event.occurred_at - window, event.occurred_at)
                    .await?;
                if count >= policy.client_failures {
                    alerts.push(alert(
                        event,
                        "api_key_guessing",
                        Severity::High,
                        Some(ip),
                        format!("api-key-burst:{ip}:{bucket}"),
                        format!(
                            "{count} refused automation keys from {ip} within {} minutes.",
                            policy.window.as_secs() / 60
                        ),
                    ));
                }
            }
        }
        Some(EventType::Login) if failed => {
            alerts.extend(login_bursts(core, policy, event, bucket).await?);
        }
        Some(EventType::Login | EventType::TokenIssued) => {
            alerts.extend(impossible_travel(policy, travellers, event));
        }
        _ => {}
    }
    Ok(alerts)
}

/// A successful sign-in (or token issuance) from one country soon after one from another.
/// Unknown locations never fire. An account is one person: high. A credential may legitimately
/// serve a partner's deployments in several regions: medium, and once per credential and window.
fn impossible_travel(
    policy: &DetectorPolicy,
    travellers: &mut Travellers,
    event: &EventRecord,
) -> Option<NewAlert> {
    let traveller = traveller_of(event)?;
    let country = event.country.as_deref()?;
    let travel_window = duration_ms(policy.travel_window);
    let here = Sighting {
        country: country.to_owned(),
        at: event.occurred_at,
        event: event.id.clone(),
    };
    let earlier = travellers.sighted(traveller, here, travel_window)?;
    let (from, minutes) = (&earlier.country, (event.occurred_at - earlier.at) / 60_000);
    let mut found = match traveller {
        Traveller::Account(account) => alert(
            event,
            "impossible_travel",
            Severity::High,
            Some(account),
            format!("travel:{account}:{}", event.id),
            format!(
                "Account {account} signed in from {from} and then from {country} {minutes} minutes later — faster than anyone travels."
            ),
        ),
        Traveller::Credential(credential) => alert(
            event,
            "impossible_travel",
            Severity::Medium,
            Some(credential),
            format!(
                "travel-credential:{credential}:{}",
                event.occurred_at / travel_window.max(1)
            ),
            format!(
                "Credential {credential} obtained tokens from {from} and then from {country} {minutes} minutes later: its secret may be in a second pair of hands (or the partner runs in both places)."
            ),
        ),
    };
    found.evidence.insert(0, earlier.event);
    Some(found)
}

async fn login_bursts(
    core: &Core,
    policy: &DetectorPolicy,
    event: &EventRecord,
    bucket: i64,
) -> Result<Vec<NewAlert>, StoreError> {
    let window = duration_ms(policy.window);
    let minutes = policy.window.as_secs() / 60;
    let since = event.occurred_at - window;
    let mut alerts = Vec::new();
    if let Some(account) = event.subject.as_deref() {
        let (count, _) = core
            .store
            .login_failures(Some(account), None, since, event.occurred_at)
            .await?;
        if count >= policy.account_failures {
            alerts.push(alert(
                event,
                "login_failure_burst",
                Severity::Medium,
                Some(account),
                format!("burst-account:{account}:{bucket}"),
                format!("{count} failed sign-ins on account {account} within {minutes} minutes."),
            ));
        }
    }
    if let Some(ip) = event.ip.as_deref() {
        let (count, accounts) = core
            .store
            .login_failures(None, Some(ip), since, event.occurred_at)
            .await?;
        if count >= policy.ip_failures && accounts >= policy.spraying_accounts {
            alerts.push(alert(
                event,
                "password_spraying",
                Severity::High,
                Some(ip),
                format!("spraying:{ip}:{bucket}"),
                format!(
                    "Password spraying from {ip}: {count} failed sign-ins on {accounts} different accounts within {minutes} minutes."
                ),
            ));
        } else if count >= policy.ip_failures {
            alerts.push(alert(
                event,
                "login_failure_burst",
                Severity::Medium,
                Some(ip),
                format!("burst-ip:{ip}:{bucket}"),
                format!("{count} failed sign-ins from {ip} within {minutes} minutes."),
            ));
        }
    }
    Ok(alerts)
}
