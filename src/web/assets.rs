//! Self-hosted CSS and scripts (no CDN), compiled into the binary so a release build is one file.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use rust_embed::RustEmbed;

use crate::web::error::WebError;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

pub async fn asset_get(path: web::Path<String>) -> Result<HttpResponse, WebError> {
    let path = path.into_inner();
    let file = Assets::get(&path).ok_or(WebError::NotFound)?;
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime.essence_str().to_owned()))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(file.data.into_owned()))
}
