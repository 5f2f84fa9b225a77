//! The Store's HTTP API. Handlers extract, call the service and map the result; every error is a
//! problem+json response.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use stockmesh_bus::LinkState;
use stockmesh_core::{ProductId, Quantity, TransferId, Version};
use stockmesh_http::auth::{Access, Permission, Rule, Verifier};
use stockmesh_http::bodies::PurchaseRequest;
use stockmesh_http::pagination::PageParams;
use stockmesh_http::uri::segment;
use stockmesh_http::{ApiJson, ApiPath, ApiQuery, Correlation, Paged, Problem};

use crate::adjustment::{self, BatchInput};
use crate::error::StoreError;
use crate::service::StoreService;

type AppState = Arc<StoreService>;

/// Who may do what on a store: the one table its authorization reads (see
/// [`stockmesh_http::auth`]). A route missing here is refused to everyone.
pub const ACCESS: &[Rule] = &[
    Rule::get("/", Permission::Public),
    Rule::get("/healthz", Permission::Public),
    Rule::get("/readyz", Permission::Public),
    Rule::get("/metrics", Permission::Metrics),
    Rule::get("/status", Permission::StoreRead),
    Rule::post("/connected", Permission::StoreWrite),
    Rule::post("/disconnected", Permission::StoreWrite),
    Rule::get("/inventory", Permission::StoreRead),
    Rule::post("/inventory", Permission::StoreWrite),
    Rule::get("/inventory/{product_id}", Permission::StoreRead),
    Rule::put("/inventory/{product_id}", Permission::StoreWrite),
    Rule::get("/inventory/{product_id}/history", Permission::StoreRead),
    Rule::post("/purchase/{product_id}", Permission::StoreWrite),
    Rule::post("/inventory/adjustments", Permission::StoreWrite),
    Rule::post("/transfers/{transfer_id}/receive", Permission::StoreWrite),
];

/// The Store's routes, with the shared conventions applied; tokens are checked against `auth`
/// (None: no authentication).
pub fn router(service: Arc<StoreService>, auth: Option<Arc<Verifier>>) -> Router {
    let routes = Router::new()
        .route("/", get(health))
        .route("/status", get(status))
        .route("/connected", post(connect))
        .route("/disconnected", post(disconnect))
        .route("/inventory", get(list_items).post(create_item))
        .route("/inventory/{product_id}", get(get_item).put(set_quantity))
        .route("/inventory/{product_id}/history", get(history))
        .route(
            "/inventory/adjustments",
            post(adjust).layer(axum::extract::DefaultBodyLimit::max(ADJUSTMENTS_BODY_LIMIT)),
        )
        .route("/purchase/{product_id}", post(purchase))
        .route("/transfers/{transfer_id}/receive", post(receive_transfer))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .with_state(service.clone());
    let access = Access {
        table: ACCESS,
        node_store: Some(service.id().to_string()),
        verifier: auth,
    };
    stockmesh_http::router::finish(routes, service.id().as_str(), access)
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Problem {
        match &error {
            StoreError::ProductNotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "Product Not Found",
                error.to_string(),
            ),
            StoreError::ProductAlreadyExists(_) => Problem::new(
                StatusCode::CONFLICT,
                "Product Already Exists",
                error.to_string(),
            ),
            StoreError::BelowReserved { .. } => Problem::new(
                StatusCode::CONFLICT,
                "Quantity Below Reserved",
                error.to_string(),
            ),
            StoreError::TransferNotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "Transfer Not Found",
                error.to_string(),
            ),
            StoreError::TransferAlreadyReceived(_) => Problem::new(
                StatusCode::CONFLICT,
                "Transfer Already Received",
                error.to_string(),
            ),
            StoreError::Stale(_) => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "Precondition Failed",
                error.to_string(),
            ),
            StoreError::AdjustmentRefused(_) => Problem::new(
                StatusCode::CONFLICT,
                "Adjustment Refused",
                error.to_string(),
            ),
            StoreError::InsufficientStock { .. } => Problem::new(
                StatusCode::CONFLICT,
                "Insufficient Stock",
                error.to_string(),
            ),
            StoreError::Invariant(rule) => {
                tracing::error!(rule, "store invariant broken");
                Problem::internal()
            }
            StoreError::Database(cause) => {
                tracing::error!(error = %cause, "store database failure");
                Problem::internal()
            }
            StoreError::Write(cause) => {
                tracing::error!(error = %cause, "store write not done");
                Problem::internal()
            }
        }
    }
}

/// `{"productId": "..."}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateItemRequest {
    product_id: ProductId,
}

/// `{"quantity": n}` with `n ≥ 0`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetQuantityRequest {
    quantity: Quantity,
}

async fn health(State(store): State<AppState>) -> String {
    format!("Store Server {}: OK", store.id())
}

async fn metrics(State(store): State<AppState>) -> Result<Response, Problem> {
    store.refresh_gauges().await?;
    Ok(stockmesh_http::metrics::exposition())
}

async fn readyz(State(store): State<AppState>) -> Response {
    stockmesh_http::metrics::readiness(store.readiness().await)
}

async fn status(State(store): State<AppState>) -> Result<Response, Problem> {
    Ok(Json(store.status().await?).into_response())
}

async fn connect(State(store): State<AppState>) -> Result<Response, Problem> {
    store.set_link(LinkState::Connected).await;
    status(State(store)).await
}

async fn disconnect(State(store): State<AppState>) -> Result<Response, Problem> {
    store.set_link(LinkState::Disconnected).await;
    status(State(store)).await
}

async fn list_items(
    State(store): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Response, Problem> {
    let page = params.validate()?;
    let (items, total) = store.list_items(page).await?;
    Ok(Paged {
        items,
        page,
        total,
        path: "/inventory".into(),
        filters: vec![],
    }
    .into_response())
}

async fn create_item(
    State(store): State<AppState>,
    Correlation(correlation): Correlation,
    ApiJson(body): ApiJson<CreateItemRequest>,
) -> Result<Response, Problem> {
    let item = store
        .create_item(body.product_id, Some(correlation))
        .await?;
    let location = format!("/inventory/{}", segment(item.product_id.as_str()));
    let mut response = (StatusCode::CREATED, Json(item)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn get_item(
    State(store): State<AppState>,
    ApiPath(product): ApiPath<ProductId>,
) -> Result<Response, Problem> {
    let item = store.get_item(&product).await?;
    let etag = format!("\"{}\"", item.version);
    let mut response = Json(item).into_response();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// The largest batch adjustment body: 1,000 lines of about 200 bytes each.
const ADJUSTMENTS_BODY_LIMIT: usize = 256 * 1024;

/// The `If-Match` header as an item version: `"3"`, `W/"3"` or `3`; `*` or no header: none.
struct IfMatch(Option<Version>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        bare.parse::<i64>()
            .ok()
            .and_then(|v| Version::try_from(v).ok())
            .map(|v| Self(Some(v)))
            .ok_or_else(|| {
                Problem::bad_request(
                    "If-Match must be an item version as its ETag gives it, e.g. \"3\"",
                )
            })
    }
}

async fn set_quantity(
    State(store): State<AppState>,
    Correlation(correlation): Correlation,
    IfMatch(expected): IfMatch,
    ApiPath(product): ApiPath<ProductId>,
    ApiJson(body): ApiJson<SetQuantityRequest>,
) -> Result<StatusCode, Problem> {
    store
        .set_quantity_if(product, body.quantity, expected, Some(correlation))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn adjust(
    State(store): State<AppState>,
    Correlation(correlation): Correlation,
    IfMatch(expected): IfMatch,
    ApiJson(body): ApiJson<BatchInput>,
) -> Result<Response, Problem> {
    let lines = body.validate().map_err(Problem::bad_request)?;
    let first = lines.first().map(|l| l.product_id.clone());
    if expected.is_some() && lines.iter().any(|l| Some(&l.product_id) != first.as_ref()) {
        return Err(Problem::bad_request(
            "If-Match applies to one item: every line must name the same product (or give each line its own version)",
        ));
    }
    let items = adjustment::apply(&store, lines, expected, Some(correlation)).await?;
    Ok(Json(items).into_response())
}

async fn purchase(
    State(store): State<AppState>,
    Correlation(correlation): Correlation,
    ApiPath(product): ApiPath<ProductId>,
    ApiJson(body): ApiJson<PurchaseRequest>,
) -> Result<Response, Problem> {
    let item = store
        .purchase(product, body.quantity, Some(correlation))
        .await?;
    Ok(Json(item).into_response())
}

async fn history(
    State(store): State<AppState>,
    ApiPath(product): ApiPath<ProductId>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Response, Problem> {
    let page = params.validate()?;
    let (items, total) = store.history(&product, page).await?;
    Ok(Paged {
        items,
        page,
        total,
        path: format!("/inventory/{}/history", segment(product.as_str())),
        filters: vec![],
    }
    .into_response())
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

async fn receive_transfer(
    State(store): State<AppState>,
    Correlation(correlation): Correlation,
    ApiPath(TransferPath(id)): ApiPath<TransferPath>,
) -> Result<Response, Problem> {
    let item = crate::transfer::confirm_receipt(&store, id, Some(correlation)).await?;
    Ok(Json(item).into_response())
}
