//! Reading `multipart/form-data` bodies (logo uploads) with a hard size cap, via multer.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::web::error::WebError;

/// The largest multipart body accepted (a 512 KB logo plus the form's other fields).
pub const MAX_UPLOAD_BYTES: usize = 1024 * 1024;

pub fn is_multipart(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| ct.starts_with("multipart/form-data"))
}

/// Reads the whole body, refusing past `MAX_UPLOAD_BYTES` with 413.
pub async fn read_body<S>(payload: &mut S) -> Result<Bytes, WebError>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| WebError::BadRequest("The upload was interrupted."))?;
        if body.len() + chunk.len() > MAX_UPLOAD_BYTES {
            return Err(WebError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// One field of a multipart form: text, or a file's bytes.
pub struct Field {
    pub file_name: Option<String>,
    pub data: Bytes,
}

impl Field {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Parses a buffered multipart body into its fields (the first of each name wins).
pub async fn parse(content_type: &str, body: Bytes) -> Result<HashMap<String, Field>, WebError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| WebError::BadRequest("The form could not be read."))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = HashMap::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| WebError::BadRequest("The form could not be read."))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let data = field
            .bytes()
            .await
            .map_err(|_| WebError::BadRequest("The form could not be read."))?;
        fields.entry(name).or_insert(Field { file_name, data });
    }
    Ok(fields)
}

/// Reads and parses a multipart request (handlers of upload forms).
pub async fn form(
    req: &actix_web::HttpRequest,
    payload: &mut actix_web::web::Payload,
) -> Result<HashMap<String, Field>, WebError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(content_type) = content_type.filter(|ct| is_multipart(Some(ct))) else {
        return Err(WebError::BadRequest(
            "This form must be sent as multipart/form-data.",
        ));
    };
    let body = read_body(payload).await?;
    parse(&content_type, body).await
}
