//! `GET /metrics`: Prometheus text. Behind a bearer token when `metrics_token` is set; otherwise
//! only for callers on this machine (loopback), so it is never public by accident.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::Core;
use crate::domain::operations;
use crate::domain::secrets::constant_time_eq;
use crate::web::error::WebError;

/// Who may scrape.
#[derive(Clone)]
pub struct MetricsAccess {
    pub token: Option<SecretString>,
}

fn allowed(req: &HttpRequest, access: &MetricsAccess) -> Result<(), WebError> {
    match &access.token {
        Some(token) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if constant_time_eq(presented, token.expose_secret()) {
                Ok(())
            } else {
                Err(WebError::Forbidden)
            }
        }
        // Behind a proxy on this machine, the peer is loopback for everyone: the client counts.
        None => match crate::web::extractors::client_ip(req) {
            Some(ip) if is_loopback(ip) => Ok(()),
            _ => Err(WebError::Forbidden),
        },
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

pub async fn metrics_get(
    core: web::Data<Core>,
    access: web::Data<MetricsAccess>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    allowed(&req, &access)?;
    let Some(metrics) = crate::metrics::get() else {
        return Err(WebError::Unavailable(None));
    };
    let gauges = operations::gauges(&core).await?;
    metrics.open_alerts.set(gauges.open_alerts);
    metrics.outbox_backlog.set(gauges.outbox_backlog);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render()))
}
