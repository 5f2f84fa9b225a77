//! A subscription as a `text/event-stream` body: a `reset` event if the client must reload, the
//! current store states (without ids), the replayed events, then live ones; a final `overflow` event when the client was too slow, and
//! the end of the stream when the node stops.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use stockmesh_http::server::Streaming;

use super::{Published, Reset, Subscription};

/// A published change as an SSE event, with its id unless it is a current state (a client's
/// `Last-Event-ID` must only ever point into the sequence it followed).
fn event(published: &Published, with_id: bool) -> Event {
    let event = Event::default()
        .event(published.change.name())
        .data(published.data.clone());
    if with_id {
        event.id(published.id.clone())
    } else {
        event
    }
}

fn control(name: &str, detail: &str) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::json!({ "detail": detail }).to_string())
}

enum Phase {
    Start(Subscription),
    /// Events to send before the live ones, each with whether it carries its id.
    Replay(
        Subscription,
        std::vec::IntoIter<(std::sync::Arc<Published>, bool)>,
    ),
    Live(Subscription),
    Done,
}

/// The stream of `subscription`.
fn events(subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(Phase::Start(subscription), |phase| async move {
        let mut phase = phase;
        loop {
            match phase {
                Phase::Start(mut sub) => {
                    let current = std::mem::take(&mut sub.current).into_iter();
                    let replay = std::mem::take(&mut sub.replay).into_iter();
                    let replay: Vec<_> = current
                        .map(|p| (p, false))
                        .chain(replay.map(|p| (p, true)))
                        .collect();
                    let replay = replay.into_iter();
                    if let Some(reset) = sub.reset.take() {
                        let detail = match reset {
                            Reset::Missed => {
                                "events after your Last-Event-ID left the window: reload the state, then follow"
                            }
                            Reset::Unknown => {
                                "your Last-Event-ID is not from this replica's run: reload the state, then follow"
                            }
                        };
                        return Some((Ok(control("reset", detail)), Phase::Replay(sub, replay)));
                    }
                    phase = Phase::Replay(sub, replay);
                }
                Phase::Replay(sub, mut replay) => match replay.next() {
                    Some((published, with_id)) => {
                        return Some((Ok(event(&published, with_id)), Phase::Replay(sub, replay)));
                    }
                    None => phase = Phase::Live(sub),
                },
                Phase::Live(mut sub) => {
                    let next = tokio::select! {
                        next = sub.live.recv() => next,
                        () = sub.closed.cancelled() => None,
                    };
                    match next {
                        Some(published) => {
                            return Some((Ok(event(&published, true)), Phase::Live(sub)));
                        }
                        None if sub.overflowed.load(Ordering::Acquire) => {
                            let last = control(
                                "overflow",
                                "this client fell too far behind and was disconnected: reconnect with Last-Event-ID",
                            );
                            return Some((Ok(last), Phase::Done));
                        }
                        None => return None,
                    }
                }
                Phase::Done => return None,
            }
        }
    })
}

/// The SSE response for `subscription`, marked as a stream the server may hang up.
pub fn response(subscription: Subscription) -> Response {
    let streaming = Streaming {
        hangup: subscription.hangup.clone(),
    };
    let mut response = Sse::new(events(subscription))
        .keep_alive(KeepAlive::default())
        .into_response();
    response.extensions_mut().insert(streaming);
    response
}
