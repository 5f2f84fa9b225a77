//! Transfer routes: `POST /transfers`, `GET /transfers?storeId&page&size`,
//! `GET /transfers/{id}`, `POST /transfers/{id}/cancel`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stockmesh_core::{Page, ProductId, PurchaseQuantity, StoreId, TransferId};
use stockmesh_http::openapi::{IdempotencyKeyHeader, StoreDecidedProblems};
use stockmesh_http::{
    ApiJson, ApiPath, ApiQuery, Correlation, MaybeIdempotencyKey, Paged, Problem,
};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Transfer, TransferAnswer};
use crate::service::CentralService;

type AppState = Arc<CentralService>;

/// The transfer routes and their description, merged into Central's.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(status))
        .routes(routes!(cancel))
}

/// `{"from","to","productId","quantity","confirmReceipt"?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateTransfer {
    /// The store that ships (and decides).
    from: StoreId,
    /// The store that receives; another store than `from`.
    to: StoreId,
    /// The product.
    product_id: ProductId,
    /// Units to move.
    quantity: PurchaseQuantity,
    /// Whether the receiver books the units only on `POST /transfers/{id}/receive` at the store
    /// (default: at once on arrival).
    #[serde(default)]
    confirm_receipt: bool,
}

/// `?storeId&page&size`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only transfers from or to this store.
    store_id: Option<StoreId>,
    /// Zero-based page number.
    #[param(minimum = 0)]
    page: Option<i64>,
    /// Transfers per page, 1 to 1000 (default 20).
    #[param(minimum = 1, maximum = 1000)]
    size: Option<i64>,
}

/// The transfer id in a path, parsed as a UUID.
#[derive(Debug)]
struct TransferPath(TransferId);

impl<'de> Deserialize<'de> for TransferPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TransferId::parse(&text)
            .map(TransferPath)
            .map_err(serde::de::Error::custom)
    }
}

/// Moves units from one store to another (admin); the sending store decides. 201 when it
/// shipped (or refused) within the wait limit, 202 while it has not decided; either way
/// `Location` names the transfer.
#[utoipa::path(post, operation_id = "create_transfer", path = "/transfers", tag = "transfers",
    params(IdempotencyKeyHeader),
    request_body = CreateTransfer,
    responses(
        (status = 201, description = "Decided by the sender (see `status` and `reason`)", body = Transfer,
            headers(("Location" = String, description = "The transfer: /transfers/{transferId}"))),
        (status = 202, description = "Sent to the sender, not decided yet", body = Transfer,
            headers(("Location" = String, description = "The transfer: /transfers/{transferId}"))),
        (status = 404, description = "Unknown store or product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough available stock at the sender", body = Problem, content_type = "application/problem+json"),
        StoreDecidedProblems,
    ))]
async fn create(
    State(central): State<AppState>,
    Correlation(correlation): Correlation,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    ApiJson(body): ApiJson<CreateTransfer>,
) -> Result<Response, Problem> {
    if body.from == body.to {
        return Err(Problem::bad_request("to must name another store than from"));
    }
    let answer = central
        .transfer(
            body.from,
            body.to,
            body.product_id,
            body.quantity,
            body.confirm_receipt,
            key,
            correlation,
        )
        .await?;
    let (status, transfer) = match answer {
        TransferAnswer::Decided(t) => (StatusCode::CREATED, t),
        TransferAnswer::Pending(t) => (StatusCode::ACCEPTED, t),
    };
    let location = format!("/transfers/{}", transfer.transfer_id);
    let mut response = (status, Json(transfer)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A transfer and where it stands.
#[utoipa::path(get, operation_id = "get_transfer", path = "/transfers/{transfer_id}", tag = "transfers",
    params(("transfer_id" = uuid::Uuid, Path, description = "The transfer")),
    responses(
        (status = 200, description = "The transfer", body = Transfer),
        (status = 404, description = "Unknown transfer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn status(
    State(central): State<AppState>,
    ApiPath(TransferPath(id)): ApiPath<TransferPath>,
) -> Result<Response, Problem> {
    Ok(Json(central.transfer_status(id).await?).into_response())
}

/// Cancels a transfer that has not shipped yet (admin).
#[utoipa::path(post, operation_id = "cancel_transfer", path = "/transfers/{transfer_id}/cancel", tag = "transfers",
    params(("transfer_id" = uuid::Uuid, Path, description = "The transfer")),
    responses(
        (status = 200, description = "The transfer after the cancellation", body = Transfer),
        (status = 404, description = "Unknown transfer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Shipped already: it can no longer be cancelled", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel(
    State(central): State<AppState>,
    ApiPath(TransferPath(id)): ApiPath<TransferPath>,
) -> Result<Response, Problem> {
    Ok(Json(central.cancel_transfer(id).await?).into_response())
}

/// Transfers, newest first, paginated, optionally only those a store sends or receives.
#[utoipa::path(get, operation_id = "list_transfers", path = "/transfers", tag = "transfers", params(ListQuery),
    responses((status = 200, description = "A page of transfers", body = Vec<Transfer>, headers(
            ("X-Total-Count" = u64, description = "How many transfers the whole list holds"),
            ("Link" = String, description = "RFC 8288 links to the first, prev, next and last pages"),
        ))))]
async fn list(
    State(central): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, Problem> {
    let page = Page::parse(query.page, query.size)?;
    let (items, total) = central.transfers(query.store_id.as_ref(), page).await?;
    let filters = query
        .store_id
        .map(|s| vec![("storeId", s.to_string())])
        .unwrap_or_default();
    Ok(Paged {
        items,
        page,
        total,
        path: "/transfers".into(),
        filters,
        next: None,
        after: false,
    }
    .into_response())
}
