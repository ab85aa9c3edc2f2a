//! Authentication events: what happened, to whom, by whom, from where. Append-only.
//! Details never carry a secret (no passwords, tokens, keys, session keys).

use serde_json::Value;

use crate::clock::Millis;
use crate::domain::ids::{TenantId, UserId, time_ordered_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Login,
    Logout,
    SetupCompleted,
    AdminCreated,
    PasskeyEnrolled,
    PasskeyRemoved,
    PasskeyUsed,
    PasskeyCounterRegressed,
    SecondFactorFailed,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    PasswordChanged,
    SessionEnded,
    LoginThrottled,
    LoginLocked,
    LoginUnlocked,
    TenantCreated,
    TenantSuspended,
    TenantReactivated,
    TenantLogoChanged,
    TenantUpdated,
    InvitationSent,
    InvitationAccepted,
    InvitationRevoked,
    RoleGranted,
    RoleRevoked,
    UserDeactivated,
    UserReactivated,
    RequestSubmitted,
    RequestConfirmed,
    RequestApproved,
    RequestDenied,
    RequestWithdrawn,
    ScopeAdded,
    ScopeRemoved,
    GrantCreated,
    CredentialMinted,
    CredentialRetrieved,
    CredentialRevoked,
    CredentialSecretRetired,
    CredentialKeyAdded,
    CredentialKeyRemoved,
    CredentialPolicyChanged,
    ClientNetworkRefused,
    TokenLimitReached,
    CredentialExpired,
    KeyPublished,
    KeyActivated,
    KeyRetiring,
    KeyRetired,
    // Emergency replacements before approvals existed; the log still holds them by these names.
    KeyEmergencyRequested,
    KeyEmergencyApproved,
    KeyEmergencyCancelled,
    TokenIssued,
    TokenRefused,
    TokenRevoked,
    ClientAuthFailed,
    RevokedTokenPresented,
    UnknownKeyPresented,
    AlertUpdated,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyRefused,
    AccountRecoveryStarted,
    AccountRecoveryUsed,
    ApprovalRequested,
    ApprovalApproved,
    ApprovalRejected,
    ApprovalCancelled,
    ApprovalExpired,
    ApprovalExecuted,
}

impl EventType {
    pub const ALL: [EventType; 71] = [
        Self::Login,
        Self::Logout,
        Self::SetupCompleted,
        Self::AdminCreated,
        Self::PasskeyEnrolled,
        Self::PasskeyRemoved,
        Self::PasskeyUsed,
        Self::PasskeyCounterRegressed,
        Self::SecondFactorFailed,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesRegenerated,
        Self::PasswordChanged,
        Self::SessionEnded,
        Self::LoginThrottled,
        Self::LoginLocked,
        Self::LoginUnlocked,
        Self::TenantCreated,
        Self::TenantSuspended,
        Self::TenantReactivated,
        Self::TenantLogoChanged,
        Self::TenantUpdated,
        Self::InvitationSent,
        Self::InvitationAccepted,
        Self::InvitationRevoked,
        Self::RoleGranted,
        Self::RoleRevoked,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::RequestSubmitted,
        Self::RequestConfirmed,
        Self::RequestApproved,
        Self::RequestDenied,
        Self::RequestWithdrawn,
        Self::ScopeAdded,
        Self::ScopeRemoved,
        Self::GrantCreated,
        Self::CredentialMinted,
        Self::CredentialRetrieved,
        Self::CredentialRevoked,
        Self::CredentialSecretRetired,
        Self::CredentialKeyAdded,
        Self::CredentialKeyRemoved,
        Self::CredentialPolicyChanged,
        Self::ClientNetworkRefused,
        Self::TokenLimitReached,
        Self::CredentialExpired,
        Self::KeyPublished,
        Self::KeyActivated,
        Self::KeyRetiring,
        Self::KeyRetired,
        Self::KeyEmergencyRequested,
        Self::KeyEmergencyApproved,
        Self::KeyEmergencyCancelled,
        Self::TokenIssued,
        Self::TokenRefused,
        Self::TokenRevoked,
        Self::ClientAuthFailed,
        Self::RevokedTokenPresented,
        Self::UnknownKeyPresented,
        Self::AlertUpdated,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::ApiKeyRefused,
        Self::AccountRecoveryStarted,
        Self::AccountRecoveryUsed,
        Self::ApprovalRequested,
        Self::ApprovalApproved,
        Self::ApprovalRejected,
        Self::ApprovalCancelled,
        Self::ApprovalExpired,
        Self::ApprovalExecuted,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Logout => "logout",
            Self::SetupCompleted => "setup_completed",
            Self::AdminCreated => "admin_created",
            Self::PasskeyEnrolled => "passkey_enrolled",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyUsed => "passkey_used",
            Self::PasskeyCounterRegressed => "passkey_counter_regressed",
            Self::SecondFactorFailed => "second_factor_failed",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::PasswordChanged => "password_changed",
            Self::SessionEnded => "session_ended",
            Self::LoginThrottled => "login_throttled",
            Self::LoginLocked => "login_locked",
            Self::LoginUnlocked => "login_unlocked",
            Self::TenantCreated => "tenant_created",
            Self::TenantSuspended => "tenant_suspended",
            Self::TenantReactivated => "tenant_reactivated",
            Self::TenantLogoChanged => "tenant_logo_changed",
            Self::TenantUpdated => "tenant_updated",
            Self::InvitationSent => "invitation_sent",
            Self::InvitationAccepted => "invitation_accepted",
            Self::InvitationRevoked => "invitation_revoked",
            Self::RoleGranted => "role_granted",
            Self::RoleRevoked => "role_revoked",
            Self::UserDeactivated => "user_deactivated",
            Self::UserReactivated => "user_reactivated",
            Self::RequestSubmitted => "request_submitted",
            Self::RequestConfirmed => "request_confirmed",
            Self::RequestApproved => "request_approved",
            Self::RequestDenied => "request_denied",
            Self::RequestWithdrawn => "request_withdrawn",
            Self::ScopeAdded => "scope_added",
            Self::ScopeRemoved => "scope_removed",
            Self::GrantCreated => "grant_created",
            Self::CredentialMinted => "credential_minted",
            Self::CredentialRetrieved => "credential_retrieved",
            Self::CredentialRevoked => "credential_revoked",
            Self::CredentialSecretRetired => "credential_secret_retired",
            Self::CredentialKeyAdded => "credential_key_added",
            Self::CredentialKeyRemoved => "credential_key_removed",
            Self::CredentialPolicyChanged => "credential_policy_changed",
            Self::ClientNetworkRefused => "client_network_refused",
            Self::TokenLimitReached => "token_limit_reached",
            Self::CredentialExpired => "credential_expired",
            Self::KeyPublished => "key_published",
            Self::KeyActivated => "key_activated",
            Self::KeyRetiring => "key_retiring",
            Self::KeyRetired => "key_retired",
            Self::KeyEmergencyRequested => "key_emergency_requested",
            Self::KeyEmergencyApproved => "key_emergency_approved",
            Self::KeyEmergencyCancelled => "key_emergency_cancelled",
            Self::TokenIssued => "token_issued",
            Self::TokenRefused => "token_refused",
            Self::TokenRevoked => "token_revoked",
            Self::ClientAuthFailed => "client_auth_failed",
            Self::RevokedTokenPresented => "revoked_token_presented",
            Self::UnknownKeyPresented => "unknown_key_presented",
            Self::AlertUpdated => "alert_updated",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::ApiKeyRefused => "api_key_refused",
            Self::AccountRecoveryStarted => "account_recovery_started",
            Self::AccountRecoveryUsed => "account_recovery_used",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalApproved => "approval_approved",
            Self::ApprovalRejected => "approval_rejected",
            Self::ApprovalCancelled => "approval_cancelled",
            Self::ApprovalExpired => "approval_expired",
            Self::ApprovalExecuted => "approval_executed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Someone not (yet) signed in: a login attempt, the setup page.
    Anonymous,
    User(UserId),
    /// A machine client, named by the credential it authenticated with (its id, never a secret).
    Client(String),
    /// A partner acting on their own access request (submitting, confirming, withdrawing it),
    /// named by the request.
    Partner(String),
    /// An operator at the server's command line.
    Cli,
    /// The service itself (background sweeps).
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::User(_) => "user",
            Self::Client(_) => "client",
            Self::Partner(_) => "partner",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Self::User(id) => Some(id.to_string()),
            Self::Client(credential) => Some(credential.clone()),
            Self::Partner(request) => Some(request.clone()),
            Self::Anonymous | Self::Cli | Self::System => None,
        }
    }
}

/// Where a request came from, captured at the HTTP edge.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    /// ISO country code of the address, when known.
    pub country: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The public handle of the console session the request belongs to (never its key), so the
    /// log can show everything one session did.
    pub session: Option<String>,
    /// The automation key the request came with (its id, never the key): the owner acts, and the
    /// log says through which key.
    pub api_key: Option<String>,
}

impl RequestContext {
    /// The context of a sign-in: the session about to be created gets its public handle now, so
    /// the sign-in event already names it.
    pub fn for_new_session(&self) -> Self {
        Self {
            session: Some(time_ordered_id()),
            ..self.clone()
        }
    }

    /// A refused sign-in created no session: its events name none.
    pub fn without_session(&self) -> Self {
        Self {
            session: None,
            ..self.clone()
        }
    }
}

/// Reason codes for failed sign-ins. `InvalidCredentials` covers both an unknown e-mail and a wrong
/// password, so the log never tells which e-mails have accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    InvalidCredentials,
    AccountDeactivated,
    /// The password was right, but the account's passkeys were removed for an assisted recovery:
    /// only the recovery link leads on.
    AwaitingRecovery,
}

impl LoginFailure {
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::AccountDeactivated => "account_deactivated",
            Self::AwaitingRecovery => "awaiting_recovery",
        }
    }
}

/// One event, ready to append.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub occurred_at: Millis,
    pub tenant_id: Option<String>,
    pub actor: Actor,
    pub subject: Option<UserId>,
    pub event_type: EventType,
    pub outcome: Outcome,
    pub context: RequestContext,
    pub details: Value,
}

impl Event {
    pub fn new(now: Millis, event_type: EventType, outcome: Outcome, actor: Actor) -> Self {
        Self {
            id: time_ordered_id(),
            occurred_at: now,
            tenant_id: None,
            actor,
            subject: None,
            event_type,
            outcome,
            context: RequestContext::default(),
            details: Value::Object(Default::default()),
        }
    }

    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant_id = Some(tenant.to_string());
        self
    }

    pub fn subject(mut self, subject: UserId) -> Self {
        self.subject = Some(subject);
        self
    }

    pub fn context(mut self, context: &RequestContext) -> Self {
        self.context = context.clone();
        match &context.api_key {
            Some(key) => self.detail("api_key", key.as_str()),
            None => self,
        }
    }

    /// The partner behind an access request did this (the request names them in the log; the
    /// store fills it in where only the link's token was known up front).
    pub fn by_partner_of(mut self, request: &str) -> Self {
        self.actor = Actor::Partner(request.to_owned());
        self.detail("request", request)
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

/// An event as read back (for the dashboard's recent activity and, later, the event log).
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: String,
    pub occurred_at: Millis,
    pub tenant_id: Option<String>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub subject: Option<String>,
    pub event_type: String,
    pub outcome: String,
    pub ip: Option<String>,
    pub country: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub session: Option<String>,
    pub details: String,
}
