//! metal-marlin's OpenAI-compatible HTTP server (axum): chat and text completions (streamed
//! as SSE or whole), models, health, Prometheus metrics and perplexity, over the engine's
//! continuous batching; plus `bench`, a load generator for such servers.

pub mod app;
pub mod bench;
pub mod error;
pub mod fields;
pub mod format;
pub mod gen;
pub mod metrics;
pub mod routes;
pub mod schema;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

pub use app::{router, serve, signal};
pub use error::{ApiError, Error, Result};
pub use state::{AppState, ServerOptions};

use marlin_engine::serve::EngineHandle;

/// Binds `addr` and serves `engine` until Ctrl-C / SIGTERM, on a runtime of its own (for
/// callers without tokio, like the CLI). `on_ready` gets the bound address.
pub fn run_blocking(
    engine: EngineHandle,
    opts: ServerOptions,
    addr: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        on_ready(listener.local_addr()?);
        let state = Arc::new(AppState::new(engine, opts));
        serve(listener, state, signal()).await?;
        Ok(())
    })
}
