//! E-mail: messages are rendered from askama templates (text + HTML), queued in the outbox table in
//! the same transaction as what caused them, and delivered by a background sender with retries, so
//! an SMTP outage loses nothing. The embedded default writes `.eml` files to a folder; SMTP when
//! `smtp_url` is configured.

use std::path::PathBuf;
use std::time::Duration;

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::staff::Invitation;
use crate::store::StoreError;
use crate::store::outbox::QueuedMail;
use crate::store::staff::OutgoingMail;

/// A rendered message, before it is queued.
#[derive(Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "mail/invitation.txt")]
struct InvitationText<'a> {
    name: &'a str,
    role: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/invitation.html")]
struct InvitationHtml<'a> {
    name: &'a str,
    role: &'a str,
    link: &'a str,
}

/// The invitation e-mail: a single-use link (72 h) and nothing else that grants access.
/// `role` says what it makes the person, tenant included ("Support for Acme Bank").
pub fn invitation(
    invitation: &Invitation,
    role: &str,
    link: &SecretString,
) -> Result<Rendered, askama::Error> {
    let (name, link) = (invitation.display_name.as_str(), link.expose_secret());
    Ok(Rendered {
        subject: "You are invited to Token Broker".into(),
        text: InvitationText { name, role, link }.render()?,
        html: InvitationHtml { name, role, link }.render()?,
    })
}

#[derive(Template)]
#[template(path = "mail/notice.txt")]
struct NoticeText<'a> {
    name: &'a str,
    paragraphs: &'a [String],
    link: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mail/notice.html")]
struct NoticeHtml<'a> {
    name: &'a str,
    paragraphs: &'a [String],
    link: Option<&'a str>,
    link_label: &'a str,
}

/// A rendered message addressed and ready for the outbox.
pub fn queued(recipient: &str, rendered: Rendered, now: Millis) -> OutgoingMail {
    OutgoingMail {
        id: crate::domain::ids::time_ordered_id(),
        recipient: recipient.to_owned(),
        subject: rendered.subject,
        body_text: rendered.text,
        body_html: rendered.html,
        created_at: now,
    }
}

/// A short notice: greeting, paragraphs, and at most one link (a confirmation or retrieval link,
/// never a secret itself).
pub fn notice(
    subject: &str,
    name: &str,
    paragraphs: &[String],
    link: Option<(&str, &SecretString)>,
) -> Result<Rendered, askama::Error> {
    let (label, url) = match link {
        Some((label, url)) => (label, Some(url.expose_secret())),
        None => ("", None),
    };
    Ok(Rendered {
        subject: subject.to_owned(),
        text: NoticeText {
            name,
            paragraphs,
            link: url,
        }
        .render()?,
        html: NoticeHtml {
            name,
            paragraphs,
            link: url,
            link_label: label,
        }
        .render()?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the mail settings are invalid: {0}")]
    Config(String),
    #[error("sending failed: {0}")]
    Send(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Transport {
    Files(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Clone)]
pub struct Mailer {
    transport: std::sync::Arc<Transport>,
    from: Mailbox,
}

/// Retry after 10 s, then doubling, capped at 55 s: the outbox pass runs every 2 s (`jobs.rs`), so
/// once SMTP is back every waiting mail is retried, and delivered, within a minute.
fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.clamp(0, 6)).unwrap_or(6);
    Duration::from_secs(10)
        .saturating_mul(2u32.pow(doublings))
        .min(RETRY_CAP)
}

const RETRY_CAP: Duration = Duration::from_secs(55);
/// Retries stay bounded: a mail still undelivered this long after it was queued is given up (its
/// links have expired by then: invitations last 72 hours).
const GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 60 * 60);
const LEASE: Duration = Duration::from_secs(60);
const BATCH: i64 = 20;

impl Mailer {
    /// SMTP when `smtp_url` is set (`smtp://host:port`, `smtp://…?tls=required`, `smtps://…`);
    /// otherwise `.eml` files in `mail_dir`.
    pub fn new(
        smtp_url: Option<&SecretString>,
        mail_dir: PathBuf,
        from: &str,
    ) -> Result<Self, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::Config("mail_from is not an address".into()))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    // Never echo the URL: it may hold a password.
                    .map_err(|_| MailError::Config("smtp_url is not a valid SMTP URL".into()))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => {
                // Mail holds one-time links until it is scrubbed: owner only.
                crate::private_files::private_dir(&mail_dir).map_err(|e| {
                    MailError::Config(format!("cannot create {}: {e}", mail_dir.display()))
                })?;
                Transport::Files(AsyncFileTransport::new(mail_dir))
            }
        };
        Ok(Self {
            transport: std::sync::Arc::new(transport),
            from,
        })
    }

    async fn send(&self, mail: &QueuedMail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|_| MailError::Send("bad recipient".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.body_text.clone(),
                mail.body_html.clone(),
            ))
            .map_err(|e| MailError::Send(e.to_string()))?;
        match self.transport.as_ref() {
            Transport::Files(files) => files
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::Send(e.to_string())),
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }

    /// Delivers what is due now; returns how many were sent. Safe on every instance at once.
    pub async fn deliver_due(&self, core: &Core) -> Result<usize, MailError> {
        let now = core.clock.now_ms();
        let batch = core
            .store
            .claim_due_mail(now, now + duration_ms(LEASE), BATCH)
            .await?;
        let mut sent = 0;
        // One log line per pass, not one per mail: an SMTP outage fails every mail of the batch.
        let mut failed = 0usize;
        let mut abandoned = 0usize;
        let mut last_error = None;
        for mail in batch {
            match self.send(&mail).await {
                Ok(()) => {
                    core.store
                        .mark_mail_sent(&mail.id, core.clock.now_ms())
                        .await?;
                    sent += 1;
                }
                Err(error) => {
                    let now = core.clock.now_ms();
                    let reason = error.to_string();
                    if now.saturating_sub(mail.created_at) >= duration_ms(GIVE_UP_AFTER) {
                        core.store
                            .mark_mail_abandoned(&mail.id, now, &reason)
                            .await?;
                        abandoned += 1;
                    } else {
                        let retry_at: Millis = now + duration_ms(backoff(mail.attempts));
                        core.store
                            .mark_mail_failed(&mail.id, retry_at, &reason)
                            .await?;
                        failed += 1;
                    }
                    last_error = Some(reason);
                }
            }
        }
        let last_error = last_error.unwrap_or_default();
        if failed > 0 {
            tracing::warn!(
                failed,
                sent,
                error = %last_error,
                "mail not delivered; will retry (at most {} s apart)",
                RETRY_CAP.as_secs()
            );
        }
        if abandoned > 0 {
            tracing::error!(
                abandoned,
                error = %last_error,
                "gave up delivering mail queued {} days ago or more",
                GIVE_UP_AFTER.as_secs() / 86_400
            );
        }
        if sent > 0 {
            core.store.forget_scrubbed_bodies().await?;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_are_never_more_than_55_seconds_apart() {
        assert_eq!(backoff(0), Duration::from_secs(10));
        assert_eq!(backoff(1), Duration::from_secs(20));
        assert_eq!(backoff(2), Duration::from_secs(40));
        assert_eq!(backoff(3), Duration::from_secs(55));
        assert_eq!(backoff(9), Duration::from_secs(55));
        assert_eq!(backoff(i64::MAX), Duration::from_secs(55));
    }

    #[test]
    fn retries_within_a_minute_even_with_the_outbox_pass_interval() {
        // The outbox pass runs every 2 s; a retry may wait for the next pass.
        let pass = Duration::from_secs(2);
        assert!((0..100).all(|attempts| backoff(attempts) + pass <= Duration::from_secs(60)));
    }
}
