//! Errors: the crate's `Error` (start-up and I/O) and `ApiError`, an HTTP error answered in
//! OpenAI's shape `{"error":{"message","type","param","code"}}` with a string `code`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Errors of the server crate outside request handling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Engine(#[from] marlin_engine::Error),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// A bad option or benchmark input.
    #[error("{0}")]
    Config(String),
}

/// Result alias of the server crate.
pub type Result<T> = std::result::Result<T, Error>;

/// An error response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

/// Messages are capped so that an error body never grows with the input.
const MAX_MESSAGE: usize = 512;

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: Option<&'static str>,
        msg: String,
    ) -> Self {
        let mut message = msg;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        Self {
            status,
            message,
            kind,
            param: None,
            code,
        }
    }

    /// 400 `invalid_request_error` about field `param` (code `invalid_value`).
    pub fn invalid(param: &str, msg: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("invalid_value"),
            msg.into(),
        );
        e.param = Some(param.to_string());
        e
    }

    /// 400 `invalid_request_error` about the request as a whole (bad JSON, content type).
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            msg.into(),
        )
    }

    /// 400 `context_length_exceeded` about `param`.
    pub fn context_length(param: &str, msg: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("context_length_exceeded"),
            msg.into(),
        );
        e.param = Some(param.to_string());
        e
    }

    /// 401 `invalid_api_key`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            Some("invalid_api_key"),
            "missing or invalid API key (send `Authorization: Bearer KEY`)".into(),
        )
    }

    /// 404 for a model this server does not serve.
    pub fn model_not_found(name: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some("model_not_found"),
            format!("The model `{name}` does not exist"),
        );
        e.param = Some("model".into());
        e
    }

    /// 404 for an unknown route.
    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some("not_found"),
            format!("no route {path}"),
        )
    }

    /// 405 for a known route with the wrong method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            Some("method_not_allowed"),
            "method not allowed on this route".into(),
        )
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("the request body is over the limit of {limit} bytes"),
        )
    }

    /// 408: the body did not arrive in time.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            Some("request_timeout"),
            "the request body did not arrive in time".into(),
        )
    }

    /// 429: too many requests in flight.
    pub fn overloaded() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some("overloaded"),
            "the server is overloaded; retry later".into(),
        )
    }

    /// 503: shutting down (or not ready).
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("unavailable"),
            msg.into(),
        )
    }

    /// 500 with a fixed message (internal details stay in the log).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            None,
            "internal server error".into(),
        )
    }

    /// 400 `unsupported_parameter` for an OpenAI field this server does not implement.
    pub fn unsupported(param: &str, msg: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("unsupported_parameter"),
            msg.into(),
        );
        e.param = Some(param.to_string());
        e
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl From<marlin_engine::Error> for ApiError {
    fn from(e: marlin_engine::Error) -> Self {
        use marlin_engine::Error as E;
        match e {
            E::Overloaded => Self::overloaded(),
            E::ShuttingDown => Self::unavailable("the server is shutting down"),
            E::InvalidRequest(m) => Self::bad_request(m),
            other => {
                tracing::error!("engine error: {other}");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}
