//! `/api/docs`: the API reference for people, rendered by the console from the same OpenAPI
//! document the API serves — no script, nothing fetched from elsewhere, the strict CSP intact.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use serde_json::Value;
use utoipa::OpenApi;

use crate::web::api::openapi::ApiDoc;
use crate::web::error::WebError;
use crate::web::{Nav, render};

pub struct Operation {
    anchor: String,
    method: String,
    path: String,
    summary: String,
    parameters: Vec<Parameter>,
    body: Option<String>,
    responses: Vec<(String, String)>,
}

pub struct Parameter {
    name: String,
    location: String,
    required: bool,
    description: String,
}

pub struct Section {
    tag: String,
    description: String,
    operations: Vec<Operation>,
}

pub struct Schema {
    name: String,
    fields: Vec<(String, String, bool, String)>,
}

#[derive(Template)]
#[template(path = "api/docs.html")]
pub struct DocsPage {
    nav: Option<Nav>,
    title: String,
    description: String,
    sections: Vec<Section>,
    schemas: Vec<Schema>,
}

/// The value at a JSON pointer, or null: the document is ours, but nothing here may panic.
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// `#/components/schemas/TenantBody` → `TenantBody`; arrays and generics by their item.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", schema_name(items));
    }
    match schema.get("type") {
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        Some(kind) => text(kind),
        None => "object".into(),
    }
}

fn operation(method: &str, path: &str, op: &Value) -> Operation {
    let parameters = at(op, "/parameters")
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| Parameter {
                    name: text(at(p, "/name")),
                    location: text(at(p, "/in")),
                    required: at(p, "/required").as_bool().unwrap_or(false),
                    description: text(at(p, "/description")),
                })
                .collect()
        })
        .unwrap_or_default();
    let body = at(op, "/requestBody/content/application~1json")
        .get("schema")
        .map(schema_name);
    let responses = at(op, "/responses")
        .as_object()
        .map(|all| {
            all.iter()
                .map(|(status, r)| {
                    let schema = at(r, "/content")
                        .as_object()
                        .and_then(|c| c.values().next())
                        .and_then(|c| c.get("schema"))
                        .map(schema_name);
                    let description = match schema {
                        Some(name) if text(at(r, "/description")).is_empty() => name,
                        Some(name) => format!("{} ({name})", text(at(r, "/description"))),
                        None => text(at(r, "/description")),
                    };
                    (status.clone(), description)
                })
                .collect()
        })
        .unwrap_or_default();
    Operation {
        anchor: format!("{method}-{path}")
            .replace(['/', '{', '}'], "-")
            .trim_matches('-')
            .to_owned(),
        method: method.to_uppercase(),
        path: path.to_owned(),
        summary: text(at(op, "/summary")),
        parameters,
        body,
        responses,
    }
}

pub async fn page() -> Result<HttpResponse, WebError> {
    let document = serde_json::to_value(ApiDoc::openapi()).map_err(WebError::unexpected)?;
    let mut sections: Vec<Section> = at(&document, "/tags")
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| Section {
                    tag: text(at(t, "/name")),
                    description: text(at(t, "/description")),
                    operations: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(paths) = at(&document, "/paths").as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let tag = at(op, "/tags/0").as_str().unwrap_or_default();
                if let Some(section) = sections.iter_mut().find(|s| s.tag == tag) {
                    section.operations.push(operation(method, path, op));
                }
            }
        }
    }
    let schemas = at(&document, "/components/schemas")
        .as_object()
        .map(|all| {
            all.iter()
                .map(|(name, schema)| {
                    let required: Vec<&str> = at(schema, "/required")
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let fields = at(schema, "/properties")
                        .as_object()
                        .map(|props| {
                            props
                                .iter()
                                .map(|(field, spec)| {
                                    (
                                        field.clone(),
                                        schema_name(spec),
                                        required.contains(&field.as_str()),
                                        text(at(spec, "/description")),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Schema {
                        name: name.clone(),
                        fields,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let view = DocsPage {
        nav: None,
        title: text(at(&document, "/info/title")),
        description: text(at(&document, "/info/description")),
        sections,
        schemas,
    };
    render(&view, StatusCode::OK)
}
