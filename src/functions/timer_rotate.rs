//! `POST /TimerRotate`: the hourly rotation (`TimerRotate/function.json`, schedule `%TimerSchedule%`).
//!
//! Decision (see `../shared/PROTOCOL.md` §1 on failures): a successful or fresh run answers 200
//! with the report in `Logs`. A failed run writes its report to stderr (the host logs stderr
//! lines as errors) and answers HTTP 500, so the execution counts as failed in Application
//! Insights and alerts fire; the host discards `Logs` on a non-2xx answer, hence stderr.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::envelope::{empty_output, Invocation};
use super::{plain_error, read_body, AppState};
use crate::rotation::fleet::{summarize, Fleet};
use crate::rotation::{Failure, Request};

pub async fn handle(State(state): State<Arc<AppState>>, body: Body) -> Response {
    let bytes = match read_body(body, state.max_invocation_bytes).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let invocation = match Invocation::parse(&bytes) {
        Ok(i) => i,
        Err(e) => return plain_error(StatusCode::BAD_REQUEST, &e.0),
    };
    let past_due = invocation
        .data
        .get("timer")
        .and_then(|t| t.get("IsPastDue"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let fleet = match &state.fleet {
        Ok(f) => f.clone(),
        Err(errors) => return failed(&Failure::settings(errors)),
    };
    let Some(service) = fleet.single() else {
        return rotate_all(&fleet, past_due).await;
    };
    let outcome = fleet.rotate_one(service, Request::default()).await;
    match outcome.as_ref() {
        Ok(report) => {
            let mut logs = report.log_lines();
            if past_due {
                logs.insert(0, "the timer was past due".into());
            }
            for line in &logs {
                tracing::info!(target: "stsbridge::TimerRotate", "{line}");
            }
            for w in &report.warnings {
                tracing::warn!(target: "stsbridge::TimerRotate", "{w}");
            }
            logs.push(serde_json::to_string(report).unwrap_or_default());
            Json(empty_output(logs)).into_response()
        }
        Err(failure) => failed(failure),
    }
}

/// Every target of a targets file: one line per target and a summary; a failed target fails
/// the execution (HTTP 500, lines on stderr), as a failed single target does.
async fn rotate_all(fleet: &Fleet, past_due: bool) -> Response {
    let all = fleet.services.clone();
    let outcomes = fleet.rotate(&all, Request::default()).await;
    let (ok, body, mut logs) = summarize(&outcomes);
    if past_due {
        logs.insert(0, "the timer was past due".into());
    }
    for t in &outcomes {
        let (Ok(report), true) = (t.outcome.as_ref(), ok) else {
            continue;
        };
        for w in &report.warnings {
            tracing::warn!(target: "stsbridge::TimerRotate", "{}: {w}", t.name);
        }
    }
    for line in &logs {
        if ok {
            tracing::info!(target: "stsbridge::TimerRotate", "{line}");
        } else {
            tracing::error!(target: "stsbridge::TimerRotate", "{line}");
        }
    }
    logs.push(body.to_string());
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, Json(empty_output(logs))).into_response()
}

fn failed(failure: &Failure) -> Response {
    for line in failure.log_lines() {
        tracing::error!(target: "stsbridge::TimerRotate", "{line}");
    }
    let mut logs = failure.log_lines();
    logs.push(failure.body().to_string());
    (StatusCode::INTERNAL_SERVER_ERROR, Json(empty_output(logs))).into_response()
}
