//! Transfer routes: `POST /transfers`, `GET /transfers?storeId&page&size`,
//! `GET /transfers/{id}`, `POST /transfers/{id}/cancel`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stockmesh_core::{Page, ProductId, PurchaseQuantity, StoreId, TransferId};
use stockmesh_http::{
    ApiJson, ApiPath, ApiQuery, Correlation, MaybeIdempotencyKey, Paged, Problem,
};

use super::TransferAnswer;
use crate::service::CentralService;

type AppState = Arc<CentralService>;

/// The transfer routes, merged into Central's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/transfers", post(create).get(list))
        .route("/transfers/{transfer_id}", get(status))
        .route("/transfers/{transfer_id}/cancel", post(cancel))
}

/// `{"from","to","productId","quantity","confirmReceipt"?}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateTransfer {
    from: StoreId,
    to: StoreId,
    product_id: ProductId,
    quantity: PurchaseQuantity,
    #[serde(default)]
    confirm_receipt: bool,
}

/// `?storeId&page&size`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    store_id: Option<StoreId>,
    page: Option<i64>,
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

async fn status(
    State(central): State<AppState>,
    ApiPath(TransferPath(id)): ApiPath<TransferPath>,
) -> Result<Response, Problem> {
    Ok(Json(central.transfer_status(id).await?).into_response())
}

async fn cancel(
    State(central): State<AppState>,
    ApiPath(TransferPath(id)): ApiPath<TransferPath>,
) -> Result<Response, Problem> {
    Ok(Json(central.cancel_transfer(id).await?).into_response())
}

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
    }
    .into_response())
}
