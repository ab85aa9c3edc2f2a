//! Probes for load balancers: `/healthz` says the process is alive, `/readyz` that it can serve
//! (schema migrated, database answering, not draining before a stop).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::domain::Core;
use crate::domain::operations::{self, Readiness};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

pub async fn readyz(core: web::Data<Core>) -> HttpResponse {
    if operations::is_draining(&core) {
        return HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }));
    }
    let readiness = operations::readiness(&core).await;
    let database = readiness.as_str();
    if readiness == Readiness::Ready {
        HttpResponse::Ok().json(json!({ "status": "ready", "database": database }))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "database": database }))
    }
}
