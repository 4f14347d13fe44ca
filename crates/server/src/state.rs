//! `AppState`: what every handler shares (the engine handle, limits, metrics, options).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use marlin_engine::serve::EngineHandle;

use crate::metrics::Metrics;
use crate::schema::Limits;

/// Server options (the parts of `metal-marlin serve`'s flags the HTTP layer uses).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The model id clients name (`/v1/models`).
    pub served_model_name: String,
    /// When set, `/v1/*` routes need `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// Most choices (`n`) per request.
    pub max_n: usize,
    /// How long a client may take to send its body (slow-loris bodies get 408).
    pub body_timeout: Duration,
    /// How long a client may take to send its request headers (then the connection closes).
    pub header_timeout: Duration,
    /// Most open connections; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            served_model_name: "default".into(),
            api_key: None,
            body_limit: 4 << 20,
            max_n: 8,
            body_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Shared state of the handlers.
pub struct AppState {
    pub engine: EngineHandle,
    pub opts: ServerOptions,
    pub limits: Limits,
    pub metrics: Metrics,
    /// Unix time the server started (the model's `created`).
    pub created: u64,
}

impl AppState {
    /// State over a started engine.
    pub fn new(engine: EngineHandle, opts: ServerOptions) -> Self {
        let limits = Limits {
            capacity: engine.capacity(),
            max_n: opts.max_n.max(1),
        };
        Self {
            engine,
            opts,
            limits,
            metrics: Metrics::default(),
            created: unix_now(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
