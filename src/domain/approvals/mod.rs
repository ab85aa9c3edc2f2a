//! Four-eyes approvals: one mechanism for every dangerous action. A request names the action, its
//! reason and expiry (24 h) and is mailed to the people who may approve it; a different eligible
//! person — never the one it is about — approves or rejects it behind a fresh passkey (the route
//! table's step-up); approval executes it exactly once (see `store::approvals`). Every step is an
//! event; high-gravity actions also raise an alert.

mod action;
mod execute;

use std::time::Duration;

use secrecy::SecretString;

pub use action::{Action, Gravity, allowed, is_superadmin};

use crate::clock::{Millis, duration_ms, format_utc};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{UserId, time_ordered_id};
use crate::domain::keys::KeyError;
use crate::domain::paging;
use crate::domain::principal::Principal;
use crate::domain::users::{User, UserStatus};
use crate::mail;
use crate::store::StoreError;
use crate::store::approvals::{ApprovalFilter, ApprovalRow, Closing, NewApproval};
use crate::store::staff::OutgoingMail;

/// How long a request waits for its second person.
pub const APPROVAL_WINDOW: Duration = Duration::from_secs(24 * 3600);

const MAX_REASON_CHARS: usize = 500;

/// What asking for a change came to: done at once, or waiting for a second person.
#[derive(Debug)]
pub enum Change {
    Done,
    AwaitingApproval(Approval),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    Executed,
    Rejected,
    Cancelled,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Executed => "executed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Executed,
            Self::Rejected,
            Self::Cancelled,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// A request for approval, as everyone sees it.
#[derive(Debug, Clone)]
pub struct Approval {
    pub id: String,
    pub action: Action,
    pub reason: String,
    pub requested_by: UserId,
    pub requested_at: Millis,
    pub expires_at: Millis,
    pub status: ApprovalStatus,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<Millis>,
    pub note: Option<String>,
}

impl Approval {
    fn from_row(row: ApprovalRow) -> Result<Self, StoreError> {
        let action = Action::from_row(&row)?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("approval {}: {what}", row.id));
        Ok(Self {
            action,
            requested_by: UserId::parse(&row.requested_by).ok_or_else(|| corrupt("requester"))?,
            status: ApprovalStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            decided_by: row.decided_by.as_deref().and_then(UserId::parse),
            id: row.id,
            reason: row.reason,
            requested_at: row.requested_at,
            expires_at: row.expires_at,
            decided_at: row.decided_at,
            note: row.decision_note,
        })
    }

    /// Its status as of `now`: a pending request past its expiry is expired even before the
    /// sweep records it.
    pub fn status_at(&self, now: Millis) -> ApprovalStatus {
        if self.status == ApprovalStatus::Pending && self.expires_at <= now {
            ApprovalStatus::Expired
        } else {
            self.status
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("That approval request does not exist.")]
    NotFound,
    #[error("Say why (up to 500 characters): the person who approves reads it.")]
    NoReason,
    #[error("You cannot decide your own request: a second person must.")]
    OwnRequest,
    #[error("This request is about you: someone else must decide it.")]
    AboutYou,
    #[error("Only {0} may decide this request.")]
    NotEligible(&'static str),
    #[error("Only the person who asked may cancel this request.")]
    NotRequester,
    #[error("This request was already {0}: nothing more can be done with it.")]
    AlreadyDecided(&'static str),
    #[error(
        "This request expired on {0} and can no longer be approved. Ask again if it is still needed."
    )]
    Expired(String),
    #[error(
        "Nobody else can approve this: it needs {0} other than you (and other than the person it is about). Give a second person that role first."
    )]
    NoSecondPerson(&'static str),
    #[error("The same change is already waiting for approval.")]
    AlreadyPending(String),
    /// The action cannot be asked for (or no longer applies): the message says why.
    #[error("{0}")]
    NotApplicable(String),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn get(core: &Core, id: &str) -> Result<Approval, ApprovalError> {
    let row = core
        .store
        .approval(id)
        .await?
        .ok_or(ApprovalError::NotFound)?;
    Ok(Approval::from_row(row)?)
}

/// The request waiting for this change, if any and not expired.
pub async fn pending_for(core: &Core, action: &Action) -> Result<Option<Approval>, StoreError> {
    let now = core.clock.now_ms();
    match core.store.pending_approval(&action.dedupe()).await? {
        Some(row) => {
            let approval = Approval::from_row(row)?;
            Ok((approval.status_at(now) == ApprovalStatus::Pending).then_some(approval))
        }
        None => Ok(None),
    }
}

/// The emergency replacement waiting for approval in `tenant`, if any (one at a time per tenant).
pub async fn pending_key_replacement(
    core: &Core,
    tenant: crate::domain::ids::TenantId,
) -> Result<Option<Approval>, StoreError> {
    let any_key = Action::ReplaceSigningKey {
        tenant,
        kid: String::new(),
    };
    pending_for(core, &any_key).await
}

/// A page of approvals, newest first, with the next page's cursor.
pub async fn page(
    core: &Core,
    pending_only: bool,
    cursor: Option<&str>,
    limit: i64,
) -> Result<(Vec<Approval>, Option<String>), StoreError> {
    let filter = ApprovalFilter {
        pending_only,
        before: cursor.and_then(paging::parse_cursor),
    };
    let mut rows = core.store.approvals_page(&filter, limit + 1).await?;
    let next = paging::next_cursor(&mut rows, limit, |row| (row.requested_at, &row.id));
    let approvals = rows
        .into_iter()
        .map(Approval::from_row)
        .collect::<Result<_, _>>()?;
    Ok((approvals, next))
}

/// Whether the action's subject is a superadmin (which decides who may recover them).
async fn subject_is_superadmin(core: &Core, action: &Action) -> Result<bool, StoreError> {
    Ok(match action.subject() {
        Some(user) => core
            .store
            .find_user(user)
            .await?
            .is_some_and(|u| is_superadmin(&u)),
        None => false,
    })
}

/// The people who could approve `action` if `requester` asked for it.
async fn approvers(
    core: &Core,
    requester: UserId,
    action: &Action,
    subject_is_superadmin: bool,
) -> Result<Vec<User>, StoreError> {
    let mut people = Vec::new();
    for id in core.store.global_staff().await? {
        let Some(id) = UserId::parse(&id) else {
            continue;
        };
        if id == requester || Some(id) == action.subject() {
            continue;
        }
        if let Some(person) = core.store.find_user(id).await?
            && person.status == UserStatus::Active
            && allowed(Principal::Person(&person), action, subject_is_superadmin)
        {
            people.push(person);
        }
    }
    Ok(people)
}

/// Whether someone besides `requester` (and the subject) could approve `action`: forms say so
/// plainly instead of offering a button that leads nowhere.
pub async fn second_person_exists(
    core: &Core,
    requester: &User,
    action: &Action,
) -> Result<bool, StoreError> {
    let superadmin = subject_is_superadmin(core, action).await?;
    Ok(!approvers(core, requester.id, action, superadmin)
        .await?
        .is_empty())
}

/// Who may approve `action`, in words ("a superadmin").
pub async fn approvers_in_words(core: &Core, action: &Action) -> Result<&'static str, StoreError> {
    Ok(action.approvers_in_words(subject_is_superadmin(core, action).await?))
}

fn approval_event(
    now: Millis,
    event_type: EventType,
    actor: UserId,
    approval_id: &str,
    action: &Action,
    context: &RequestContext,
) -> Event {
    let mut event = Event::new(now, event_type, Outcome::Success, Actor::User(actor))
        .context(context)
        .detail("approval", approval_id)
        .detail("kind", action.kind());
    if let Some(tenant) = action.tenant() {
        event = event.tenant(tenant);
    }
    if let Some(subject) = action.subject() {
        event = event.subject(subject);
    }
    if let Action::ReplaceSigningKey { kid, .. } = action {
        event = event.detail("kid", kid.as_str());
    }
    if action.gravity() == Gravity::High {
        event = event.detail("alert", true);
    }
    event
}

fn notice_mails(
    recipients: &[String],
    subject: &str,
    paragraphs: &[String],
    link: Option<(&str, &SecretString)>,
    now: Millis,
) -> Result<Vec<OutgoingMail>, StoreError> {
    let rendered = mail::notice(subject, "", paragraphs, link)
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    Ok(recipients
        .iter()
        .map(|to| mail::queued(to, rendered.clone(), now))
        .collect())
}

fn approval_link(core: &Core, id: &str) -> Result<SecretString, StoreError> {
    let link = core
        .public_url
        .join(&format!("/approvals/{id}"))
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    Ok(SecretString::from(link.to_string()))
}

fn clean_reason(reason: &str) -> Result<String, ApprovalError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApprovalError::NoReason);
    }
    Ok(reason.to_owned())
}

/// Asks for `action`: checked now (it must apply, and someone else must be able to approve it),
/// recorded with its event, and mailed to everyone who may approve it.
pub async fn request(
    core: &Core,
    requester: Principal<'_>,
    action: Action,
    reason: &str,
    context: &RequestContext,
) -> Result<Approval, ApprovalError> {
    let reason = clean_reason(reason)?;
    let superadmin = subject_is_superadmin(core, &action).await?;
    if !allowed(requester, &action, superadmin) {
        return Err(ApprovalError::NotEligible(
            action.approvers_in_words(superadmin),
        ));
    }
    let requester = requester.user();
    if action.subject() == Some(requester.id) {
        return Err(ApprovalError::AboutYou);
    }
    execute::check_applies(core, &action).await?;
    let approvers = approvers(core, requester.id, &action, superadmin).await?;
    if approvers.is_empty() {
        return Err(ApprovalError::NoSecondPerson(
            action.approvers_in_words(superadmin),
        ));
    }
    let now = core.clock.now_ms();
    let id = time_ordered_id();
    let described = action.describe(core).await?;
    let event = approval_event(
        now,
        EventType::ApprovalRequested,
        requester.id,
        &id,
        &action,
        context,
    )
    .detail("reason", reason.as_str())
    .detail("summary", described.as_str());
    let recipients: Vec<String> = approvers.into_iter().map(|p| p.email).collect();
    let expires_at = now + duration_ms(APPROVAL_WINDOW);
    let mails = notice_mails(
        &recipients,
        &format!("Approval needed: {described}"),
        &[
            format!("{} asks: {described}.", requester.email),
            format!("Their reason: “{reason}”."),
            format!(
                "It needs a second person's approval with a passkey before {}; until then nothing changes.",
                format_utc(expires_at)
            ),
        ],
        Some(("Open the request", &approval_link(core, &id)?)),
        now,
    )?;
    let (target, dedupe) = action.columns();
    let details = action.details();
    let new = NewApproval {
        id: &id,
        kind: action.kind(),
        tenant: action.tenant(),
        subject: action.subject(),
        target: &target,
        details: &details,
        dedupe: &dedupe,
        reason: &reason,
        requested_by: requester.id,
        requested_at: now,
        expires_at,
    };
    if !core.store.insert_approval(&new, &event, &mails).await? {
        let waiting = pending_for(core, &action).await?;
        return Err(ApprovalError::AlreadyPending(
            waiting.map(|a| a.id).unwrap_or_default(),
        ));
    }
    get(core, &id).await
}

/// Whether `person` may decide `approval` now: a different, eligible person, in time. The error
/// says why not (pages show it instead of a button).
pub async fn check_decider(
    core: &Core,
    person: &User,
    approval: &Approval,
) -> Result<(), ApprovalError> {
    let superadmin = subject_is_superadmin(core, &approval.action).await?;
    if !allowed(Principal::Person(person), &approval.action, superadmin) {
        return Err(ApprovalError::NotEligible(
            approval.action.approvers_in_words(superadmin),
        ));
    }
    match approval.status_at(core.clock.now_ms()) {
        ApprovalStatus::Pending => {}
        ApprovalStatus::Expired => {
            return Err(ApprovalError::Expired(format_utc(approval.expires_at)));
        }
        decided => return Err(ApprovalError::AlreadyDecided(decided.as_str())),
    }
    if approval.requested_by == person.id {
        return Err(ApprovalError::OwnRequest);
    }
    if approval.action.subject() == Some(person.id) {
        return Err(ApprovalError::AboutYou);
    }
    Ok(())
}

async fn decidable(core: &Core, person: &User, id: &str) -> Result<Approval, ApprovalError> {
    let approval = get(core, id).await?;
    check_decider(core, person, &approval).await?;
    Ok(approval)
}

/// Whether `person` may ask for `action` at all (forms offer it only then).
pub async fn may_request(core: &Core, person: &User, action: &Action) -> Result<bool, StoreError> {
    let superadmin = subject_is_superadmin(core, action).await?;
    Ok(allowed(Principal::Person(person), action, superadmin)
        && action.subject() != Some(person.id))
}

/// The second person approves: the action executes now, once.
pub async fn approve(
    core: &Core,
    approver: &User,
    id: &str,
    context: &RequestContext,
) -> Result<Approval, ApprovalError> {
    let approval = decidable(core, approver, id).await?;
    execute::run(core, approver, &approval, context).await?;
    get(core, id).await
}

/// The second person says no; the requester hears of it.
pub async fn reject(
    core: &Core,
    approver: &User,
    id: &str,
    note: &str,
    context: &RequestContext,
) -> Result<Approval, ApprovalError> {
    let approval = decidable(core, approver, id).await?;
    let note = note.trim();
    let note = (!note.is_empty()).then(|| note.chars().take(MAX_REASON_CHARS).collect::<String>());
    let now = core.clock.now_ms();
    let mut event = approval_event(
        now,
        EventType::ApprovalRejected,
        approver.id,
        &approval.id,
        &approval.action,
        context,
    )
    .detail("requested_by", approval.requested_by.to_string());
    if let Some(note) = &note {
        event = event.detail("note", note.as_str());
    }
    let described = approval.action.describe(core).await?;
    let mut paragraphs = vec![format!(
        "{} rejected your request: {described}. Nothing changed.",
        approver.email
    )];
    if let Some(note) = &note {
        paragraphs.push(format!("Their note: “{note}”."));
    }
    let mails = requester_mail(core, &approval, "Request rejected", &paragraphs, now).await?;
    close(
        core,
        &approval,
        ApprovalStatus::Rejected,
        Some(approver.id),
        note.as_deref(),
        &event,
        &mails,
    )
    .await
}

/// The requester withdraws their own request.
pub async fn cancel(
    core: &Core,
    requester: &User,
    id: &str,
    context: &RequestContext,
) -> Result<Approval, ApprovalError> {
    let approval = get(core, id).await?;
    if approval.requested_by != requester.id {
        return Err(ApprovalError::NotRequester);
    }
    if approval.status != ApprovalStatus::Pending {
        return Err(ApprovalError::AlreadyDecided(approval.status.as_str()));
    }
    let event = approval_event(
        core.clock.now_ms(),
        EventType::ApprovalCancelled,
        requester.id,
        &approval.id,
        &approval.action,
        context,
    );
    close(
        core,
        &approval,
        ApprovalStatus::Cancelled,
        Some(requester.id),
        None,
        &event,
        &[],
    )
    .await
}

async fn close(
    core: &Core,
    approval: &Approval,
    status: ApprovalStatus,
    by: Option<UserId>,
    note: Option<&str>,
    event: &Event,
    mails: &[OutgoingMail],
) -> Result<Approval, ApprovalError> {
    let closing = Closing {
        id: &approval.id,
        status: status.as_str(),
        by,
        note,
        at: core.clock.now_ms(),
    };
    if !core.store.close_approval(&closing, event, mails).await? {
        let now = get(core, &approval.id).await?;
        return Err(ApprovalError::AlreadyDecided(now.status.as_str()));
    }
    get(core, &approval.id).await
}

async fn requester_mail(
    core: &Core,
    approval: &Approval,
    subject: &str,
    paragraphs: &[String],
    now: Millis,
) -> Result<Vec<OutgoingMail>, StoreError> {
    let Some(requester) = core.store.find_user(approval.requested_by).await? else {
        return Ok(Vec::new());
    };
    notice_mails(&[requester.email], subject, paragraphs, None, now)
}

/// Requests whose 24 hours ran out are closed as expired, each with its event (safe on every
/// instance at once: closing is conditional). Returns how many.
pub async fn expire_lapsed(core: &Core) -> Result<u64, StoreError> {
    let now = core.clock.now_ms();
    let mut expired = 0;
    for row in core.store.lapsed_approvals(now, 500).await? {
        let approval = Approval::from_row(row)?;
        let mut event = Event::new(
            now,
            EventType::ApprovalExpired,
            Outcome::Success,
            Actor::System,
        )
        .detail("approval", approval.id.as_str())
        .detail("kind", approval.action.kind())
        .detail("requested_by", approval.requested_by.to_string());
        if let Some(tenant) = approval.action.tenant() {
            event = event.tenant(tenant);
        }
        if let Some(subject) = approval.action.subject() {
            event = event.subject(subject);
        }
        let described = approval.action.describe(core).await?;
        let mails = requester_mail(
            core,
            &approval,
            "Request expired",
            &[format!(
                "Nobody approved your request within 24 hours, so it lapsed: {described}. Nothing changed."
            )],
            now,
        )
        .await?;
        let closing = Closing {
            id: &approval.id,
            status: ApprovalStatus::Expired.as_str(),
            by: None,
            note: None,
            at: now,
        };
        if core.store.close_approval(&closing, &event, &mails).await? {
            expired += 1;
        }
    }
    Ok(expired)
}
