//! Reservation routes: `POST /reservations`, `GET /reservations/{id}`,
//! `POST /reservations/{id}/commit`, `DELETE /reservations/{id}`. Handlers extract, call the
//! service and map the answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stockmesh_core::{ProductId, PurchaseQuantity, ReservationAction, ReservationId, StoreId, Ttl};
use stockmesh_http::openapi::{IdempotencyKeyHeader, StoreDecidedProblems};
use stockmesh_http::{ApiJson, ApiPath, Correlation, MaybeIdempotencyKey, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Reservation, ReservationAnswer};
use crate::service::CentralService;

type AppState = Arc<CentralService>;

/// The reservation routes and their description, merged into Central's.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(status, release))
        .routes(routes!(commit))
}

/// `{"storeId","productId","quantity","ttl"}`: hold `quantity` units for `ttl` seconds.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateReservation {
    /// The store whose stock is held.
    store_id: StoreId,
    /// The product.
    product_id: ProductId,
    /// Units to hold.
    quantity: PurchaseQuantity,
    /// Seconds the hold lasts unless committed or released first.
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

/// Holds units at a store for a while; the store decides. 201 when the store held them within
/// the wait limit, 202 while it has not decided; either way `Location` names the reservation.
#[utoipa::path(post, operation_id = "create_reservation", path = "/reservations", tag = "reservations",
    params(IdempotencyKeyHeader),
    request_body = CreateReservation,
    responses(
        (status = 201, description = "Held by the store (or rejected: see `status` and `reason`)", body = Reservation,
            headers(("Location" = String, description = "The reservation: /reservations/{reservationId}"))),
        (status = 202, description = "Sent to the store, not decided yet", body = Reservation,
            headers(("Location" = String, description = "The reservation: /reservations/{reservationId}"))),
        (status = 404, description = "Unknown store or product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough available stock", body = Problem, content_type = "application/problem+json"),
        StoreDecidedProblems,
    ))]
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

/// A reservation and where it stands.
#[utoipa::path(get, operation_id = "get_reservation", path = "/reservations/{reservation_id}", tag = "reservations",
    params(("reservation_id" = uuid::Uuid, Path, description = "The reservation")),
    responses(
        (status = 200, description = "The reservation", body = Reservation),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
    ))]
async fn status(
    State(central): State<AppState>,
    ApiPath(ReservationPath(id)): ApiPath<ReservationPath>,
) -> Result<Response, Problem> {
    Ok(Json(central.reservation(id).await?).into_response())
}

/// Commits a held reservation: the store sells the held units. 200 once the store decided,
/// 202 (with `Location`) while it has not.
#[utoipa::path(post, operation_id = "commit_reservation", path = "/reservations/{reservation_id}/commit", tag = "reservations",
    params(("reservation_id" = uuid::Uuid, Path, description = "The reservation"), IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Decided: the reservation after the commit", body = Reservation),
        (status = 202, description = "Sent to the store, not decided yet", body = Reservation,
            headers(("Location" = String, description = "The reservation: /reservations/{reservationId}"))),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The reservation is not held any more", body = Problem, content_type = "application/problem+json"),
        StoreDecidedProblems,
    ))]
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

/// Releases a held reservation: the units become available again. 200 once the store decided,
/// 202 (with `Location`) while it has not.
#[utoipa::path(delete, operation_id = "release_reservation", path = "/reservations/{reservation_id}", tag = "reservations",
    params(("reservation_id" = uuid::Uuid, Path, description = "The reservation"), IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Decided: the reservation after the release", body = Reservation),
        (status = 202, description = "Sent to the store, not decided yet", body = Reservation,
            headers(("Location" = String, description = "The reservation: /reservations/{reservationId}"))),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The reservation is not held any more", body = Problem, content_type = "application/problem+json"),
        StoreDecidedProblems,
    ))]
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
