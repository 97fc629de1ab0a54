//! The asynchronous-invocation worker: runs `Event` invocations from the durable queue.
//!
//! The worker leases due events from the [`gust_store::EventQueue`] (woken at once by an
//! enqueue, otherwise polling every second or at the next scheduled retry), runs each through
//! the [`gust_runtime::Invoker`] and then:
//!
//! - success: completes the event;
//! - function error or platform error: retries after `event_retry_delays[attempt]` (Lambda:
//!   twice, after about one and two minutes), then drops it with a warning (destinations and
//!   dead-letter queues are not implemented yet);
//! - throttled: tries again later without spending a retry, for as long as the event is
//!   younger than six hours (Lambda's default maximum event age). The delay grows with the
//!   event's age (an eighth of it, from one second up to five minutes), which approximates
//!   Lambda's exponential throttle back-off without storing a throttle count;
//! - the function was deleted: drops the event.
//!
//! A lease outlasts the longest function timeout, so an event is not run twice while its first
//! run is still going; if Gust stops mid-invocation the lease expires and the event runs again
//! (delivery is at least once, as in Lambda). At most [`MAX_IN_FLIGHT`] events run at once;
//! the invoker's own limits throttle beyond that. On shutdown the worker stops leasing and
//! waits for the events already running.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gust_model::{limits, now_ms, QueuedEvent};
use gust_runtime::{InvokeError, InvokeRequest};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle, JoinSet};

use crate::handlers::find;
use crate::{shared, Api, LambdaState};

/// Most queued events running at once.
pub const MAX_IN_FLIGHT: usize = limits::DEFAULT_GLOBAL_CONCURRENCY as usize;
/// How often the queue is polled when nothing wakes the worker.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A leased event is not handed out again for this long: the longest timeout plus a margin.
const LEASE_MS: i64 = (limits::MAX_TIMEOUT_S as i64 + 60) * 1000;
/// Shortest and longest delay before a throttled event is tried again.
const THROTTLE_RETRY_MS: (i64, i64) = (1000, 300_000);
/// Events older than this are dropped instead of being tried again (Lambda's default).
const MAX_EVENT_AGE_MS: i64 = 6 * 3600 * 1000;

/// Starts the worker for `state`; it runs until `shutdown` becomes `true` (or its sender is
/// dropped), then waits for the events it has started.
pub fn spawn_event_worker(
    state: Arc<LambdaState>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let api = Api {
        shared: shared(&state),
        state,
    };
    tokio::spawn(run(api, shutdown))
}

async fn run(api: Api, mut shutdown: watch::Receiver<bool>) {
    let mut tasks: JoinSet<Option<i64>> = JoinSet::new();
    // The earliest retry this worker scheduled, so short retry delays are honoured promptly.
    let mut next_retry: Option<i64> = None;
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        let free = MAX_IN_FLIGHT.saturating_sub(tasks.len());
        if free > 0 {
            let now = now_ms();
            if next_retry.is_some_and(|t| t <= now) {
                next_retry = None;
            }
            match api.state.store.due(now, LEASE_MS, free).await {
                Ok(events) => {
                    for event in events {
                        tasks.spawn(run_event(api.clone(), event));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the event queue"),
            }
        }
        let sleep_for = match next_retry {
            Some(t) => Duration::from_millis(
                (t - now_ms()).clamp(0, POLL_INTERVAL.as_millis() as i64) as u64,
            ),
            None => POLL_INTERVAL,
        };
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = api.shared.wake.notified() => {}
            _ = tokio::time::sleep(sleep_for) => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => note_done(done, &mut next_retry),
        }
        while let Some(done) = tasks.try_join_next() {
            note_done(done, &mut next_retry);
        }
    }
    if !tasks.is_empty() {
        tracing::info!(
            in_flight = tasks.len(),
            "event worker stopping; waiting for running events"
        );
    }
    let mut ignored = None;
    while let Some(done) = tasks.join_next().await {
        note_done(done, &mut ignored);
    }
}

fn note_done(done: Result<Option<i64>, JoinError>, next_retry: &mut Option<i64>) {
    match done {
        Ok(Some(t)) => *next_retry = Some(next_retry.map_or(t, |n| n.min(t))),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "event task failed"),
    }
}

/// What to do with an event after one attempt.
enum Outcome {
    Done,
    Failed(String),
    /// Try again at this time without counting an attempt.
    Later(i64),
    /// Hand the event back untouched (shutting down).
    Release,
}

/// Runs one leased event; returns the time of its retry, if one was scheduled.
async fn run_event(api: Api, event: QueuedEvent) -> Option<i64> {
    let QueuedEvent {
        id,
        function,
        payload,
        attempts,
        enqueued_ms,
        ..
    } = event;
    let record = match find(&api, &function).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::warn!(
                function,
                request_id = id,
                "function no longer exists; event dropped"
            );
            complete(&api, &id).await;
            return None;
        }
        Err(e) => {
            tracing::warn!(function, request_id = id, error = %e, "cannot load the function; the event runs again when its lease expires");
            return None;
        }
    };
    if now_ms() - enqueued_ms > MAX_EVENT_AGE_MS {
        tracing::warn!(
            function,
            request_id = id,
            attempts,
            "event older than six hours; dropped"
        );
        complete(&api, &id).await;
        return None;
    }
    let request = InvokeRequest {
        function: record,
        payload: Bytes::from(payload),
        request_id: id.clone(),
        client_context: None,
        tail_log: false,
    };
    let outcome = match api.state.invoker.invoke(request).await {
        Ok(resp) => match resp.function_error {
            None => Outcome::Done,
            Some(kind) => {
                let excerpt = String::from_utf8_lossy(&resp.payload[..resp.payload.len().min(512)])
                    .into_owned();
                Outcome::Failed(format!("function error {kind}: {excerpt}"))
            }
        },
        Err(InvokeError::Throttled { .. }) => {
            let now = now_ms();
            let (min, max) = THROTTLE_RETRY_MS;
            Outcome::Later(now + ((now - enqueued_ms) / 8).clamp(min, max))
        }
        Err(InvokeError::ShuttingDown) => Outcome::Release,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    match outcome {
        Outcome::Done => {
            complete(&api, &id).await;
            None
        }
        Outcome::Later(at) => retry(&api, &id, attempts, at).await,
        Outcome::Release => {
            retry(&api, &id, attempts, now_ms()).await;
            None
        }
        Outcome::Failed(why) => {
            let made = attempts + 1;
            match api.state.event_retry_delays.get(attempts as usize) {
                Some(delay) => {
                    tracing::info!(function, request_id = id, attempt = made, reason = %why, "event failed; will retry");
                    retry(&api, &id, made, now_ms() + delay.as_millis() as i64).await
                }
                None => {
                    tracing::warn!(function, request_id = id, attempts = made, reason = %why, "event failed after its last retry; dropped");
                    complete(&api, &id).await;
                    None
                }
            }
        }
    }
}

async fn complete(api: &Api, id: &str) {
    if let Err(e) = api.state.store.complete(id).await {
        tracing::warn!(request_id = id, error = %e, "cannot complete the event; it runs again when its lease expires");
    }
}

async fn retry(api: &Api, id: &str, attempts: u32, at: i64) -> Option<i64> {
    match api.state.store.retry(id, attempts, at).await {
        Ok(()) => Some(at),
        Err(e) => {
            tracing::warn!(request_id = id, error = %e, "cannot reschedule the event; it runs again when its lease expires");
            None
        }
    }
}
