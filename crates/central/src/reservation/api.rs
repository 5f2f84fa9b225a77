//! Reservation routes: `POST /reservations`, `GET /reservations/{id}`,
//! `POST /reservations/{id}/commit`, `DELETE /reservations/{id}`. Handlers extract, call the
//! service and map the answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stockmesh_core::{ProductId, PurchaseQuantity, ReservationAction, ReservationId, StoreId, Ttl};
use stockmesh_http::{ApiJson, ApiPath, Correlation, MaybeIdempotencyKey, Problem};

use super::ReservationAnswer;
use crate::service::CentralService;

type AppState = Arc<CentralService>;

/// The reservation routes, merged into Central's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/reservations", post(create))
        .route(
            "/reservations/{reservation_id}",
            get(status).delete(release),
        )
        .route("/reservations/{reservation_id}/commit", post(commit))
}

/// `{"storeId","productId","quantity","ttl"}`: hold `quantity` units for `ttl` seconds.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateReservation {
    store_id: StoreId,
    product_id: ProductId,
    quantity: PurchaseQuantity,
    ttl: Ttl,
}

/// The reservation id in a path, parsed as a UUID.
#[derive(Debug)]
struct ReservationPath(ReservationId);

impl<'de> Deserialize<'de> for ReservationPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ReservationId::parse(&text)
            .map(ReservationPath)
            .map_err(serde::de::Error::custom)
    }
}

fn answer(decided: StatusCode, answer: ReservationAnswer) -> Response {
    let (status, reservation) = match answer {
        ReservationAnswer::Decided(r) => (decided, r),
        ReservationAnswer::Pending(r) => (StatusCode::ACCEPTED, r),
    };
    let location = format!("/reservations/{}", reservation.reservation_id);
    let mut response = (status, Json(reservation)).into_response();
    if status != StatusCode::OK
        && let Ok(location) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn create(
    State(central): State<AppState>,
    Correlation(correlation): Correlation,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    ApiJson(body): ApiJson<CreateReservation>,
) -> Result<Response, Problem> {
    let reply = central
        .reserve(
            body.store_id,
            body.product_id,
            body.quantity,
            body.ttl,
            key,
            correlation,
        )
        .await?;
    Ok(answer(StatusCode::CREATED, reply))
}

async fn status(
    State(central): State<AppState>,
    ApiPath(ReservationPath(id)): ApiPath<ReservationPath>,
) -> Result<Response, Problem> {
    Ok(Json(central.reservation(id).await?).into_response())
}

async fn commit(
    State(central): State<AppState>,
    Correlation(correlation): Correlation,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    ApiPath(ReservationPath(id)): ApiPath<ReservationPath>,
) -> Result<Response, Problem> {
    let reply = central
        .act_on_reservation(id, ReservationAction::Commit, key, correlation)
        .await?;
    Ok(answer(StatusCode::OK, reply))
}

async fn release(
    State(central): State<AppState>,
    Correlation(correlation): Correlation,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    ApiPath(ReservationPath(id)): ApiPath<ReservationPath>,
) -> Result<Response, Problem> {
    let reply = central
        .act_on_reservation(id, ReservationAction::Release, key, correlation)
        .await?;
    Ok(answer(StatusCode::OK, reply))
}
