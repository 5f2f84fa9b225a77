//! A subscription as a `text/event-stream` body: a `reset` event if the client must reload, the
//! replayed events, then live ones; a final `overflow` event when the client was too slow, and
//! the end of the stream when the node stops.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use stockmesh_http::server::Streaming;

use super::{Published, Reset, Subscription};

fn event(published: &Published) -> Event {
    Event::default()
        .event(published.change.name())
        .id(published.id.clone())
        .data(published.data.clone())
}

fn control(name: &str, detail: &str) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::json!({ "detail": detail }).to_string())
}

enum Phase {
    Start(Subscription),
    Replay(Subscription, std::vec::IntoIter<std::sync::Arc<Published>>),
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
                    let replay = std::mem::take(&mut sub.replay).into_iter();
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
                    Some(published) => {
                        return Some((Ok(event(&published)), Phase::Replay(sub, replay)));
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
                            return Some((Ok(event(&published)), Phase::Live(sub)));
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
