//! The custom-handler HTTP server: `GET /` (readiness), `POST /TimerRotate`, `POST /HttpRotate`.
//!
//! Handlers are thin: parse the envelope ([`envelope`]), call the [`RotationService`], build the
//! envelope. Invalid settings do not stop the server (the host would restart it three times and
//! give up, hiding the cause): [`AppState::fleet`] holds the errors instead, and every
//! invocation answers with them. The library never binds a port: [`serve`] takes a bound listener.

pub mod envelope;
pub mod http_rotate;
pub mod timer_rotate;

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::rotation::fleet::Fleet;
use crate::settings::SettingsErrors;

/// Default limit on an invocation body (`MaxInvocationBytes`).
pub const DEFAULT_MAX_INVOCATION_BYTES: usize = 1024 * 1024;

/// What every handler shares.
pub struct AppState {
    /// Every target (one, implicitly, without a targets file), or the settings' errors.
    pub fleet: Result<Arc<Fleet>, SettingsErrors>,
    pub max_invocation_bytes: usize,
}

/// The router, for `serve` and for tests.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(ready))
        .route("/TimerRotate", post(timer_rotate::handle))
        .route("/HttpRotate", post(http_rotate::handle))
        .fallback(not_found)
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn ready() -> Json<serde_json::Value> {
    Json(json!({"status": "ready"}))
}

async fn not_found() -> Response {
    plain_error(
        StatusCode::NOT_FOUND,
        "no such function: the routes are POST /TimerRotate and POST /HttpRotate",
    )
}

/// A plain JSON error for requests that are not invocations (the host never sends these).
pub fn plain_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// Reads a body up to the limit; `Err` is the response to send.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the invocation is larger than MaxInvocationBytes ({limit} bytes) or could not be read"),
        )
    })
}
