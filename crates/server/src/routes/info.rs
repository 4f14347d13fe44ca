//! `GET /v1/models`, `GET /v1/models/{id}`, `GET /health` and `GET /metrics`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

fn model_card(s: &AppState) -> Value {
    json!({
        "id": s.opts.served_model_name,
        "object": "model",
        "created": s.created,
        "owned_by": "metal-marlin",
        "max_model_len": s.limits.capacity,
    })
}

/// The one model served.
pub async fn models(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [model_card(&s)]}))
}

/// One model by id.
pub async fn model(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    if id == s.opts.served_model_name {
        Json(model_card(&s)).into_response()
    } else {
        ApiError::model_not_found(&id).into_response()
    }
}

/// 200 while serving, 503 while draining.
pub async fn health(State(s): State<Arc<AppState>>) -> Response {
    if s.engine.is_draining() {
        ApiError::unavailable("the server is shutting down").into_response()
    } else {
        (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
    }
}

/// Prometheus text format.
pub async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let text = s.metrics.render(&s.engine.stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
