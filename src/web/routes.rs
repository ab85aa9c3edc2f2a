//! The route table: every URL with its handler and its access rule, registered in one place. This
//! is the one place that says who may call what: registering wraps each handler in the rule's
//! check (`authz::enforce`), and a route cannot be registered without a rule. `route_table()` lists
//! them for the authorization-matrix test.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, Handler, Responder, guard};

use crate::domain::rbac::Permission::*;
use crate::web::authz::Access::{self, *};
use crate::web::authz::{Rule, enforce};
use crate::web::step_up::StepUp;
use crate::web::{
    account, account_recovery, alerts, api_keys, approvals, assets, auth, client_policies,
    credentials, dashboard, events, health, invitations, keys, metrics, mfa, oauth, partner_pages,
    requests, session_pages, setup, staff, step_up, tenants,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub step_up: Option<StepUp>,
}

/// Registers routes and remembers each one's rule.
pub struct Router<'a> {
    cfg: &'a mut ServiceConfig,
    table: Vec<RouteInfo>,
}

impl<'a> Router<'a> {
    pub fn new(cfg: &'a mut ServiceConfig) -> Self {
        Self {
            cfg,
            table: Vec::new(),
        }
    }

    fn add<F, Args>(
        &mut self,
        method: Method,
        path: &'static str,
        rule: Rule,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        // One resource per method and path: the router tries the next resource of the same path
        // when the method guard fails, so GET and POST of one path are registered separately.
        self.cfg.service(
            web::resource(path)
                .guard(guard::Method(method.clone()))
                .wrap(from_fn(move |req, next| enforce(rule, req, next)))
                .to(handler),
        );
        self.table.push(RouteInfo {
            method,
            path,
            access: rule.access,
            step_up: rule.step_up,
        });
        self
    }

    pub fn get<F, Args>(
        &mut self,
        path: &'static str,
        rule: impl Into<Rule>,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, path, rule.into(), handler)
    }

    pub fn post<F, Args>(
        &mut self,
        path: &'static str,
        rule: impl Into<Rule>,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::POST, path, rule.into(), handler)
    }

    pub fn patch<F, Args>(
        &mut self,
        path: &'static str,
        rule: impl Into<Rule>,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::PATCH, path, rule.into(), handler)
    }

    pub fn put<F, Args>(
        &mut self,
        path: &'static str,
        rule: impl Into<Rule>,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::PUT, path, rule.into(), handler)
    }

    pub fn delete<F, Args>(
        &mut self,
        path: &'static str,
        rule: impl Into<Rule>,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::DELETE, path, rule.into(), handler)
    }

    pub fn service(&mut self, service: impl HttpServiceFactory + 'static) -> &mut Self {
        self.cfg.service(service);
        self
    }

    pub fn into_table(self) -> Vec<RouteInfo> {
        self.table
    }
}

/// Routes added to the console by whoever builds the application (see `Application::build_with_routes`).
pub type ExtraRoutes = fn(&mut Router<'_>);

pub fn no_extra_routes(_: &mut Router<'_>) {}

/// The automation API: keys, never cookies (it sits outside the session scope), JSON in and out.
fn automation_api(router: &mut Router<'_>) {
    use crate::web::api::{
        alerts, approvals, client_keys, client_policies, credentials, docs, events, keys, me,
        openapi, requests, scopes, staff, tenants,
    };
    router
        .get("/api/docs", Public, docs::page)
        .get("/api/v1/openapi.json", Public, openapi::document)
        .get("/api/v1/me", AnyKey, me::get)
        .get("/api/v1/tenants", AnyKey, tenants::list)
        .post("/api/v1/tenants", Key(ManageTenants), tenants::create)
        .get(
            "/api/v1/tenants/{tenant}",
            KeyInTenant(EnterTenant),
            tenants::get,
        )
        .patch(
            "/api/v1/tenants/{tenant}",
            KeyInTenant(ManageTenants),
            tenants::update,
        )
        .put(
            "/api/v1/tenants/{tenant}/logo",
            KeyInTenant(ManageTenants),
            tenants::put_logo,
        )
        .post(
            "/api/v1/tenants/{tenant}/suspend",
            KeyInTenant(ManageTenants),
            tenants::suspend,
        )
        .post(
            "/api/v1/tenants/{tenant}/reactivate",
            KeyInTenant(ManageTenants),
            tenants::reactivate,
        )
        .get(
            "/api/v1/tenants/{tenant}/scopes",
            KeyInTenant(ManageScopes),
            scopes::list,
        )
        .post(
            "/api/v1/tenants/{tenant}/scopes",
            KeyInTenant(ManageScopes),
            scopes::add,
        )
        .delete(
            "/api/v1/tenants/{tenant}/scopes/{id}",
            KeyInTenant(ManageScopes),
            scopes::remove,
        )
        .get(
            "/api/v1/tenants/{tenant}/requests",
            KeyInTenant(ViewRequests),
            requests::list,
        )
        .get(
            "/api/v1/tenants/{tenant}/requests/{id}",
            KeyInTenant(ViewRequests),
            requests::get,
        )
        .post(
            "/api/v1/tenants/{tenant}/requests/{id}/approve",
            KeyInTenant(DecideRequests),
            requests::approve,
        )
        .post(
            "/api/v1/tenants/{tenant}/requests/{id}/deny",
            KeyInTenant(DecideRequests),
            requests::deny,
        )
        .get(
            "/api/v1/tenants/{tenant}/grants",
            KeyInTenant(ViewCredentials),
            credentials::grants,
        )
        .get(
            "/api/v1/tenants/{tenant}/grants/{id}",
            KeyInTenant(ViewCredentials),
            credentials::grant,
        )
        .post(
            "/api/v1/tenants/{tenant}/grants/{id}/credentials",
            KeyInTenant(MintCredentials),
            credentials::mint,
        )
        .post(
            "/api/v1/tenants/{tenant}/grants/{id}/revoke",
            KeyInTenant(RevokeCredentials),
            credentials::revoke_grant,
        )
        .post(
            "/api/v1/tenants/{tenant}/grants/{id}/revoke-partner",
            KeyInTenant(RevokeCredentials),
            credentials::revoke_partner,
        )
        .post(
            "/api/v1/tenants/{tenant}/credentials/{id}/secrets",
            KeyInTenant(MintCredentials),
            credentials::add_secret,
        )
        .get(
            "/api/v1/tenants/{tenant}/credentials",
            KeyInTenant(ViewCredentials),
            credentials::list,
        )
        .get(
            "/api/v1/tenants/{tenant}/credentials/{id}",
            KeyInTenant(ViewCredentials),
            credentials::get,
        )
        .delete(
            "/api/v1/tenants/{tenant}/credentials/{id}/secrets/{secret}",
            KeyInTenant(RevokeCredentials),
            credentials::retire_secret,
        )
        .post(
            "/api/v1/tenants/{tenant}/credentials/{id}/revoke",
            KeyInTenant(RevokeCredentials),
            credentials::revoke,
        )
        .post(
            "/api/v1/tenants/{tenant}/credentials/{id}/keys",
            KeyInTenant(MintCredentials),
            client_keys::add,
        )
        .delete(
            "/api/v1/tenants/{tenant}/credentials/{id}/keys/{key}",
            KeyInTenant(RevokeCredentials),
            client_keys::remove,
        )
        .patch(
            "/api/v1/tenants/{tenant}/credentials/{id}/policy",
            KeyInTenant(MintCredentials),
            client_policies::update,
        )
        .get("/api/v1/events", Key(ViewEvents), events::list)
        .get("/api/v1/events/export", Key(ViewEvents), events::export)
        .get(
            "/api/v1/tenants/{tenant}/events",
            KeyInTenant(ViewEvents),
            events::tenant_list,
        )
        .get("/api/v1/alerts", Key(ViewAlerts), alerts::list)
        .get("/api/v1/alerts/{id}", Key(ViewAlerts), alerts::get)
        .post("/api/v1/alerts/{id}", Key(ManageAlerts), alerts::work)
        .get(
            "/api/v1/tenants/{tenant}/alerts",
            KeyInTenant(ViewAlerts),
            alerts::tenant_list,
        )
        .get(
            "/api/v1/tenants/{tenant}/keys",
            KeyInTenant(ViewKeys),
            keys::list,
        )
        .post(
            "/api/v1/tenants/{tenant}/keys/rotate",
            KeyInTenant(RotateKeys),
            keys::rotate,
        )
        .put(
            "/api/v1/tenants/{tenant}/dpop-nonce",
            KeyInTenant(RotateKeys),
            keys::set_dpop_nonce,
        )
        .post(
            "/api/v1/tenants/{tenant}/keys/emergency",
            KeyInTenant(ReplaceKeysInEmergency),
            keys::request_emergency,
        )
        .get("/api/v1/approvals", Key(DecideApprovals), approvals::list)
        .get(
            "/api/v1/approvals/{id}",
            Key(DecideApprovals),
            approvals::get,
        )
        .post(
            "/api/v1/approvals/{id}/cancel",
            Key(DecideApprovals),
            approvals::cancel,
        )
        .post(
            "/api/v1/tenants/{tenant}/revoke-everything",
            KeyInTenant(RevokeEverything),
            tenants::revoke_everything,
        )
        .get("/api/v1/staff", Key(ViewStaff), staff::list)
        .get(
            "/api/v1/staff/invitations",
            Key(ManageStaff),
            staff::invitations,
        )
        .post("/api/v1/staff/invitations", Key(ManageStaff), staff::invite)
        .delete(
            "/api/v1/staff/invitations/{id}",
            Key(ManageStaff),
            staff::withdraw_invitation,
        )
        .get("/api/v1/staff/{id}", Key(ViewStaff), staff::get)
        .post(
            "/api/v1/staff/{id}/roles",
            Key(ManageStaff),
            staff::grant_role,
        )
        .delete(
            "/api/v1/staff/{id}/roles/{assignment}",
            Key(ManageStaff),
            staff::revoke_role,
        )
        .post(
            "/api/v1/staff/{id}/deactivate",
            Key(ManageStaff),
            staff::deactivate,
        )
        .post(
            "/api/v1/staff/{id}/recovery",
            Key(RecoverAccounts),
            staff::recover,
        )
        .post(
            "/api/v1/staff/{id}/reactivate",
            Key(ManageStaff),
            staff::reactivate,
        )
        .get(
            "/api/v1/staff/{id}/sessions",
            Key(ManageStaffSessions),
            staff::list_sessions,
        )
        .post(
            "/api/v1/staff/{id}/sessions/end-all",
            Key(ManageStaffSessions),
            staff::end_sessions,
        );
}

/// The token service, probes and static files: no session, so they keep answering when the session
/// store cannot. The token service comes first: it is the hot path.
pub fn sessionless(router: &mut Router<'_>) {
    // The token service: machine clients, no session.
    router
        .post("/t/{tenant}/oauth/token", TenantClient, oauth::token_post)
        .post(
            "/t/{tenant}/oauth/introspect",
            TenantClient,
            oauth::introspect_post,
        )
        .post("/t/{tenant}/oauth/revoke", TenantClient, oauth::revoke_post)
        .get(
            "/t/{tenant}/revocations",
            TenantClient,
            oauth::revocations_get,
        )
        .get("/t/{tenant}/.well-known/jwks.json", Public, oauth::jwks_get)
        .get(
            "/.well-known/oauth-authorization-server/t/{tenant}",
            Public,
            oauth::metadata_get,
        );
    automation_api(router);
    router
        // Guarded by its own bearer token (or loopback only), not by a staff session.
        .get("/metrics", Public, metrics::metrics_get)
        .get("/healthz", Public, health::healthz)
        .get("/readyz", Public, health::readyz)
        .get("/static/{path:.*}", Public, assets::asset_get);
}

/// Every console page. These run inside the session and CSRF middleware.
pub fn console(router: &mut Router<'_>) {
    // First run, invitations, signing in.
    router
        .get("/setup", Public, setup::setup_get)
        .post("/setup", Public, setup::setup_post)
        .get("/invite", Public, invitations::invite_get)
        .post("/invite", Public, invitations::invite_post)
        .get("/login", Public, auth::login_get)
        .post("/login", Public, auth::login_post)
        .post("/login/passkey-only", Public, auth::passwordless_post)
        .get("/recover", Public, account_recovery::recover_get)
        .post("/recover", Public, account_recovery::recover_post)
        .get("/login/passkey", PartlySignedIn, mfa::second_factor_get)
        .post("/login/passkey", PartlySignedIn, mfa::second_factor_post)
        .get("/login/recovery", PartlySignedIn, mfa::recovery_get)
        .post("/login/recovery", PartlySignedIn, mfa::recovery_post)
        .get("/mfa/enrol", PartlySignedIn, mfa::enrol_get)
        .post("/mfa/enrol", PartlySignedIn, mfa::enrol_post)
        .post("/logout", Public, auth::logout_post);
    // My account.
    router
        .get("/", SignedIn, dashboard::index_get)
        .get("/account/security", SignedIn, account::security_get)
        .post(
            "/account/passkeys/{id}/rename",
            SignedIn,
            account::passkey_rename_post,
        )
        .post(
            "/account/passkeys/{id}/remove",
            SignedIn.with_step_up("Remove a passkey"),
            account::passkey_remove_post,
        )
        .post(
            "/account/recovery-codes",
            SignedIn.with_step_up("Replace your recovery codes"),
            account::recovery_codes_post,
        )
        .get(
            "/account/password",
            SignedIn.with_step_up_reopening("Change your password"),
            account::password_get,
        )
        .post(
            "/account/password",
            SignedIn.with_step_up_reopening("Change your password"),
            account::password_post,
        )
        .get("/account/api-keys", SignedIn, api_keys::list_get)
        .post(
            "/account/api-keys",
            SignedIn.with_step_up("Create an API key"),
            api_keys::create_post,
        )
        .post(
            "/account/api-keys/{id}/revoke",
            SignedIn,
            api_keys::revoke_post,
        )
        .get("/account/sessions", SignedIn, session_pages::mine_get)
        .post(
            "/account/sessions/end-others",
            SignedIn,
            session_pages::mine_end_others_post,
        )
        .post(
            "/account/sessions/{id}/end",
            SignedIn,
            session_pages::mine_end_post,
        )
        .get("/step-up", SignedIn, step_up::step_up_get)
        .post("/step-up", SignedIn, step_up::step_up_post);
    // Tenants.
    router
        .get("/tenants", SignedIn, tenants::switcher_get)
        .get("/tenants/suggest", SignedIn, tenants::suggest_get)
        .get(
            "/admin/tenants",
            Global(ManageTenants),
            tenants::admin_list_get,
        )
        .post(
            "/admin/tenants",
            Global(ManageTenants),
            tenants::create_post,
        )
        .get("/t/{tenant}", InTenant(EnterTenant), tenants::home_get)
        .get("/t/{tenant}/logo", Public, tenants::logo_get)
        .get("/t/{tenant}/theme.css", Public, tenants::theme_get)
        .get(
            "/t/{tenant}/settings",
            InTenant(ManageTenants),
            tenants::settings_get,
        )
        .post(
            "/t/{tenant}/logo",
            InTenant(ManageTenants),
            tenants::logo_post,
        )
        .post(
            "/t/{tenant}/suspend",
            InTenant(ManageTenants),
            tenants::suspend_post,
        )
        .post(
            "/t/{tenant}/reactivate",
            InTenant(ManageTenants),
            tenants::reactivate_post,
        );
    // Partner access: public pages, then the tenant's staff pages.
    router
        .get(
            "/t/{tenant}/request-access",
            Public,
            partner_pages::request_get,
        )
        .post(
            "/t/{tenant}/request-access",
            Public,
            partner_pages::request_post,
        )
        .post(
            "/t/{tenant}/request-access/withdraw",
            Public,
            partner_pages::withdraw_post,
        )
        .get(
            "/t/{tenant}/request-access/confirm",
            Public,
            partner_pages::confirm_get,
        )
        .get("/retrieve", Public, partner_pages::retrieve_get)
        .post("/retrieve", Public, partner_pages::retrieve_post)
        .get(
            "/t/{tenant}/scopes",
            InTenant(ManageScopes),
            requests::scopes_get,
        )
        .post(
            "/t/{tenant}/scopes",
            InTenant(ManageScopes),
            requests::scope_add_post,
        )
        .post(
            "/t/{tenant}/scopes/{id}/remove",
            InTenant(ManageScopes),
            requests::scope_remove_post,
        )
        .get(
            "/t/{tenant}/requests",
            InTenant(ViewRequests),
            requests::requests_get,
        )
        .get(
            "/t/{tenant}/requests/{id}",
            InTenant(ViewRequests),
            requests::request_get,
        )
        .post(
            "/t/{tenant}/requests/{id}/approve",
            InTenant(DecideRequests),
            requests::approve_post,
        )
        .post(
            "/t/{tenant}/requests/{id}/deny",
            InTenant(DecideRequests),
            requests::deny_post,
        )
        .get(
            "/t/{tenant}/grants/{id}",
            InTenant(ViewCredentials),
            credentials::grant_get,
        )
        .post(
            "/t/{tenant}/grants/{id}/revoke",
            InTenant(RevokeCredentials).with_step_up("Revoke credentials in bulk"),
            credentials::grant_revoke_post,
        )
        .post(
            "/t/{tenant}/grants/{id}/revoke-partner",
            InTenant(RevokeCredentials).with_step_up("Revoke credentials in bulk"),
            credentials::partner_revoke_post,
        )
        .post(
            "/t/{tenant}/grants/{id}/mint",
            InTenant(MintCredentials).with_step_up("Create a credential in {tenant}"),
            credentials::mint_post,
        )
        .get(
            "/t/{tenant}/credentials",
            InTenant(ViewCredentials),
            credentials::credentials_get,
        )
        .get(
            "/t/{tenant}/credentials/{id}",
            InTenant(ViewCredentials),
            credentials::credential_get,
        )
        .post(
            "/t/{tenant}/credentials/{id}/secrets/{secret}/retire",
            InTenant(RevokeCredentials),
            credentials::retire_secret_post,
        )
        .post(
            "/t/{tenant}/credentials/{id}/secrets",
            InTenant(MintCredentials).with_step_up("Create another client secret"),
            credentials::add_secret_post,
        )
        .post(
            "/t/{tenant}/credentials/{id}/revoke",
            InTenant(RevokeCredentials),
            credentials::revoke_post,
        )
        .post(
            "/t/{tenant}/credentials/{id}/keys",
            InTenant(MintCredentials).with_step_up("Register a client's public key"),
            credentials::key_add_post,
        )
        .post(
            "/t/{tenant}/credentials/{id}/keys/{key}/remove",
            InTenant(RevokeCredentials),
            credentials::key_remove_post,
        )
        .post(
            "/t/{tenant}/credentials/{id}/policy",
            InTenant(MintCredentials)
                .with_step_up("Change a client's networks, limit or DPoP rule"),
            client_policies::policy_post,
        )
        .post(
            "/t/{tenant}/revoke-everything",
            InTenant(RevokeEverything).with_step_up("Ask to revoke everything of {tenant}"),
            credentials::revoke_everything_post,
        );
    // Signing keys.
    router
        .get("/t/{tenant}/keys", InTenant(ViewKeys), keys::catalogue_get)
        .post(
            "/t/{tenant}/keys/rotate",
            InTenant(RotateKeys).with_step_up("Rotate the signing key of {tenant}"),
            keys::rotate_post,
        )
        .post(
            "/t/{tenant}/dpop-nonce",
            InTenant(RotateKeys),
            keys::dpop_nonce_post,
        )
        .post(
            "/t/{tenant}/keys/emergency",
            InTenant(ReplaceKeysInEmergency).with_step_up("Request an emergency key replacement"),
            keys::emergency_post,
        );
    // Four-eyes approvals: the queue, and deciding behind a fresh passkey. Whether this person
    // may decide this request (a different, eligible person) is the request's own rule.
    router
        .get("/approvals", Global(DecideApprovals), approvals::queue_get)
        .get(
            "/approvals/{id}",
            Global(DecideApprovals),
            approvals::approval_get,
        )
        .post(
            "/approvals/{id}/approve",
            Global(DecideApprovals).with_step_up("Approve a dangerous action"),
            approvals::approve_post,
        )
        .post(
            "/approvals/{id}/reject",
            Global(DecideApprovals).with_step_up("Reject a request"),
            approvals::reject_post,
        )
        .post(
            "/approvals/{id}/cancel",
            Global(DecideApprovals),
            approvals::cancel_post,
        );
    // Alerts.
    router
        .get("/admin/alerts", Global(ViewAlerts), alerts::queue_get)
        .get("/admin/alerts/{id}", Global(ViewAlerts), alerts::alert_get)
        .post(
            "/admin/alerts/{id}",
            Global(ManageAlerts),
            alerts::work_post,
        )
        .post(
            "/admin/alerts/{id}/respond",
            Global(ManageAlerts).with_step_up("Respond to an alert"),
            alerts::respond_post,
        )
        .get(
            "/t/{tenant}/alerts",
            InTenant(ViewAlerts),
            alerts::tenant_queue_get,
        );
    // The event log.
    router
        .get("/admin/events", Global(ViewEvents), events::global_get)
        .get(
            "/admin/events/export",
            Global(ViewEvents),
            events::global_export,
        )
        .post(
            "/admin/events/verify",
            Global(ViewEvents),
            events::verify_post,
        )
        .get(
            "/t/{tenant}/events",
            InTenant(ViewEvents),
            events::tenant_get,
        )
        .get(
            "/t/{tenant}/events/export",
            InTenant(ViewEvents),
            events::tenant_export,
        );
    // Staff administration.
    router
        .get("/admin/users", Global(ViewStaff), staff::list_get)
        .get("/admin/users/{id}", Global(ViewStaff), staff::detail_get)
        .post(
            "/admin/users/{id}/roles",
            Global(ManageStaff).with_step_up("Grant a staff member a role"),
            staff::role_grant_post,
        )
        .post(
            "/admin/users/{id}/roles/{assignment}/revoke",
            Global(ManageStaff).with_step_up("Remove a staff member's role"),
            staff::role_revoke_post,
        )
        .post(
            "/admin/users/{id}/deactivate",
            Global(ManageStaff).with_step_up("Deactivate a staff member"),
            staff::deactivate_post,
        )
        .post(
            "/admin/users/{id}/recover",
            Global(RecoverAccounts).with_step_up("Ask to recover a staff member's account"),
            staff::recover_post,
        )
        .post(
            "/admin/users/{id}/reactivate",
            Global(ManageStaff).with_step_up("Reactivate a staff member"),
            staff::reactivate_post,
        )
        .get(
            "/admin/users/{id}/sessions",
            Global(ManageStaffSessions),
            session_pages::user_sessions_get,
        )
        .post(
            "/admin/users/{id}/sessions/end-all",
            Global(ManageStaffSessions).with_step_up("End every session of a staff member"),
            session_pages::user_sessions_end_all_post,
        )
        .post(
            "/admin/users/{id}/sessions/{session}/end",
            Global(ManageStaffSessions).with_step_up("End a session of a staff member"),
            session_pages::user_session_end_post,
        )
        .get(
            "/admin/invitations",
            Global(ManageStaff),
            invitations::invitations_get,
        )
        .post(
            "/admin/invitations",
            Global(ManageStaff),
            invitations::invite_create_post,
        )
        .post(
            "/admin/invitations/{id}/revoke",
            Global(ManageStaff),
            invitations::invite_revoke_post,
        );
}

/// Every route with its rule, as registered.
pub fn route_table() -> Vec<RouteInfo> {
    let mut table = Vec::new();
    let _ = actix_web::App::new().configure(|cfg| {
        let mut router = Router::new(cfg);
        sessionless(&mut router);
        console(&mut router);
        table = router.into_table();
    });
    table
}
