//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/api/v1/openapi.json`. A test checks that its paths are exactly the registered `/api/v1` routes.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::web::api::{
    alerts, approvals, client_keys, client_policies, credentials, events, keys, me, problem,
    requests, scopes, staff, tenants,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Token Broker automation API",
        version = "1",
        description = "Every call acts as the key's owner, limited to the key's permissions and tenants. Errors are RFC 9457 problem documents."
    ),
    paths(
        me::get,
        tenants::list,
        tenants::create,
        tenants::get,
        tenants::update,
        tenants::put_logo,
        tenants::suspend,
        tenants::reactivate,
        tenants::revoke_everything,
        scopes::list,
        scopes::add,
        scopes::remove,
        requests::list,
        requests::get,
        requests::approve,
        requests::deny,
        credentials::grant,
        credentials::grants,
        credentials::list,
        credentials::get,
        credentials::retire_secret,
        credentials::mint,
        credentials::revoke,
        credentials::revoke_grant,
        credentials::revoke_partner,
        credentials::add_secret,
        client_keys::add,
        client_keys::remove,
        client_policies::update,
        events::list,
        events::export,
        events::tenant_list,
        alerts::list,
        alerts::tenant_list,
        alerts::get,
        alerts::work,
        keys::list,
        keys::rotate,
        keys::set_dpop_nonce,
        keys::request_emergency,
        approvals::list,
        approvals::get,
        approvals::cancel,
        staff::list,
        staff::get,
        staff::invite,
        staff::invitations,
        staff::withdraw_invitation,
        staff::grant_role,
        staff::revoke_role,
        staff::deactivate,
        staff::recover,
        staff::reactivate,
        staff::list_sessions,
        staff::end_sessions,
    ),
    components(schemas(problem::Problem)),
    // Every operation takes a key, as either header.
    security(("bearer" = []), ("api_key" = [])),
    modifiers(&SecuritySchemes),
    tags(
        (name = "me", description = "The key itself"),
        (name = "tenants", description = "Tenants"),
        (name = "scopes", description = "A tenant's API scopes"),
        (name = "requests", description = "Partners' access requests"),
        (name = "credentials", description = "Grants and credentials"),
        (name = "events", description = "The event log"),
        (name = "alerts", description = "Suspicious-activity alerts"),
        (name = "keys", description = "Signing keys"),
        (name = "approvals", description = "Dangerous actions waiting for a second person (approved in the console, with a passkey)"),
        (name = "staff", description = "Staff, their roles and sessions"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An automation key: `Authorization: Bearer tba_live_…`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An automation key, as a header of its own",
            ))),
        );
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
