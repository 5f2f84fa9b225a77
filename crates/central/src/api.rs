//! Central's HTTP API. Handlers extract, call the service and map the result; every error is a
//! problem+json response.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stockmesh_core::Page;
use stockmesh_core::{ProductId, PurchaseId, StoreId};
use stockmesh_http::auth::{Access, Permission, Rule, Verifier};
use stockmesh_http::bodies::PurchaseRequest;
use stockmesh_http::{
    ApiJson, ApiPath, ApiQuery, Correlation, MaybeIdempotencyKey, Paged, Problem,
};

use crate::error::CentralError;
use crate::purchase::PurchaseAnswer;
use crate::service::CentralService;

type AppState = Arc<CentralService>;

/// Who may do what at Central: the one table its authorization reads (see
/// [`stockmesh_http::auth`]). A route missing here is refused to everyone.
pub const ACCESS: &[Rule] = &[
    Rule::get("/", Permission::Public),
    Rule::get("/healthz", Permission::Public),
    Rule::get("/readyz", Permission::Public),
    Rule::get("/metrics", Permission::Metrics),
    Rule::get("/inventory", Permission::ViewRead),
    Rule::get("/inventory/{store_id}/{product_id}", Permission::ViewRead),
    Rule::get("/products/{product_id}", Permission::ViewRead),
    Rule::get("/stores", Permission::ViewRead),
    Rule::post("/stores", Permission::Admin),
    Rule::post("/purchase/{store_id}/{product_id}", Permission::Sell),
    Rule::get("/purchases/{purchase_id}", Permission::ViewRead),
    Rule::post("/reservations", Permission::Sell),
    Rule::get("/reservations/{reservation_id}", Permission::ViewRead),
    Rule::delete("/reservations/{reservation_id}", Permission::Sell),
    Rule::post("/reservations/{reservation_id}/commit", Permission::Sell),
    // Moving stock between shelves is the chain's decision, not a till's.
    Rule::post("/transfers", Permission::Admin),
    Rule::get("/transfers", Permission::ViewRead),
    Rule::get("/transfers/{transfer_id}", Permission::ViewRead),
    Rule::post("/transfers/{transfer_id}/cancel", Permission::Admin),
];

/// Central's routes, with the shared conventions applied; tokens are checked against `auth`
/// (None: no authentication).
pub fn router(service: Arc<CentralService>, auth: Option<Arc<Verifier>>) -> Router {
    let routes = Router::new()
        .route("/", get(health))
        .route("/inventory", get(list_items))
        .route("/inventory/{store_id}/{product_id}", get(get_item))
        .route("/products/{product_id}", get(product))
        .route("/stores", get(stores).post(provision))
        .route("/purchase/{store_id}/{product_id}", post(purchase))
        .route("/purchases/{purchase_id}", get(purchase_status))
        .merge(crate::reservation::api::routes())
        .merge(crate::transfer::api::routes())
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .with_state(service.clone());
    let access = Access {
        table: ACCESS,
        node_store: None,
        verifier: auth,
    };
    stockmesh_http::router::finish(routes, service.node(), access)
}

impl From<CentralError> for Problem {
    fn from(error: CentralError) -> Problem {
        let detail = error.to_string();
        match error {
            CentralError::StoreNotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "Store Not Found", detail)
            }
            CentralError::ProductNotFound { .. } | CentralError::ProductUnknown(_) => {
                Problem::new(StatusCode::NOT_FOUND, "Product Not Found", detail)
            }
            CentralError::PurchaseNotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "Purchase Not Found", detail)
            }
            CentralError::StoreUnavailable { .. } | CentralError::PurchaseExpired(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store Unavailable", detail)
            }
            CentralError::ReservationNotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "Reservation Not Found", detail)
            }
            CentralError::TransferNotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "Transfer Not Found", detail)
            }
            CentralError::TransferNotCancellable { .. } => {
                Problem::new(StatusCode::CONFLICT, "Transfer Not Cancellable", detail)
            }
            CentralError::ReservationNotOpen { .. } => {
                Problem::new(StatusCode::CONFLICT, "Reservation Not Open", detail)
            }
            CentralError::CommandExpired(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store Unavailable", detail)
            }
            CentralError::InsufficientStock { .. } | CentralError::NotAvailable { .. } => {
                Problem::new(StatusCode::CONFLICT, "Insufficient Stock", detail)
            }
            CentralError::IdempotencyMismatch(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency Key Mismatch",
                detail,
            ),
            CentralError::IdempotencyKeyInFlight => Problem::bad_request(detail),
            CentralError::Invariant(rule) => {
                tracing::error!(rule, "central invariant broken");
                Problem::internal()
            }
            CentralError::Database(cause) => {
                tracing::error!(error = %cause, "central database failure");
                Problem::internal()
            }
        }
    }
}

async fn health() -> &'static str {
    "Central Server: OK"
}

async fn metrics(State(central): State<AppState>) -> Result<Response, Problem> {
    central.refresh_gauges().await?;
    Ok(stockmesh_http::metrics::exposition())
}

async fn readyz(State(central): State<AppState>) -> Response {
    stockmesh_http::metrics::readiness(central.readiness().await)
}

/// `?page&size&storeId&productId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InventoryQuery {
    page: Option<i64>,
    size: Option<i64>,
    store_id: Option<StoreId>,
    product_id: Option<ProductId>,
}

async fn list_items(
    State(central): State<AppState>,
    ApiQuery(query): ApiQuery<InventoryQuery>,
) -> Result<Response, Problem> {
    let page = Page::parse(query.page, query.size)?;
    let (items, total) = central
        .items(query.store_id.as_ref(), query.product_id.as_ref(), page)
        .await?;
    let mut filters = Vec::new();
    if let Some(store) = &query.store_id {
        filters.push(("storeId", store.to_string()));
    }
    if let Some(product) = &query.product_id {
        filters.push(("productId", product.to_string()));
    }
    Ok(Paged {
        items,
        page,
        total,
        path: "/inventory".into(),
        filters,
    }
    .into_response())
}

async fn get_item(
    State(central): State<AppState>,
    ApiPath((store, product)): ApiPath<(StoreId, ProductId)>,
) -> Result<Response, Problem> {
    Ok(Json(central.item(&store, &product).await?).into_response())
}

async fn product(
    State(central): State<AppState>,
    ApiPath(product): ApiPath<ProductId>,
) -> Result<Response, Problem> {
    Ok(Json(central.product(&product).await?).into_response())
}

async fn stores(State(central): State<AppState>) -> Result<Response, Problem> {
    Ok(Json(central.stores().await?).into_response())
}

/// `{"storeId": "..."}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProvisionRequest {
    store_id: StoreId,
}

/// `POST /stores`: provisions a store (admin). 201 when new, 200 when it already was.
async fn provision(
    State(central): State<AppState>,
    ApiJson(body): ApiJson<ProvisionRequest>,
) -> Result<Response, Problem> {
    let new = central.provision(&body.store_id).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::json!({ "storeId": body.store_id })),
    )
        .into_response())
}

async fn purchase(
    State(central): State<AppState>,
    Correlation(correlation): Correlation,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    ApiPath((store, product)): ApiPath<(StoreId, ProductId)>,
    ApiJson(body): ApiJson<PurchaseRequest>,
) -> Result<Response, Problem> {
    let answer = central
        .purchase(store, product, body.quantity, key, correlation)
        .await?;
    Ok(match answer {
        PurchaseAnswer::Confirmed(item) => Json(item).into_response(),
        PurchaseAnswer::Pending(purchase) => {
            let location = format!("/purchases/{}", purchase.purchase_id);
            let mut response = (StatusCode::ACCEPTED, Json(purchase)).into_response();
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    })
}

/// The purchase id in `/purchases/{id}`, parsed as a UUID.
#[derive(Debug)]
struct PurchasePath(PurchaseId);

impl<'de> Deserialize<'de> for PurchasePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PurchaseId::parse(&text)
            .map(PurchasePath)
            .map_err(serde::de::Error::custom)
    }
}

async fn purchase_status(
    State(central): State<AppState>,
    ApiPath(PurchasePath(id)): ApiPath<PurchasePath>,
) -> Result<Response, Problem> {
    Ok(Json(central.purchase_status(id).await?).into_response())
}
