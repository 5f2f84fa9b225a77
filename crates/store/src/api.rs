//! The Store's HTTP API. Handlers extract, call the service and map the result; every error is a
//! problem+json response.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stockmesh_bus::LinkState;
use stockmesh_core::{Item, Movement, ProductId, Quantity, TransferId, Version};
use stockmesh_http::auth::{Access, Permission, Rule, Verifier};
use stockmesh_http::bodies::PurchaseRequest;
use stockmesh_http::openapi::ResourceLink;
use stockmesh_http::pagination::{KeysetParams, PageParams};
use stockmesh_http::uri::segment;
use stockmesh_http::{ApiJson, ApiPath, ApiQuery, Correlation, Paged, Problem};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::adjustment::{self, BatchInput};
use crate::error::StoreError;
use crate::service::{StoreService, StoreStatus};

type AppState = Arc<StoreService>;

/// Who may do what on a store: the one table its authorization reads (see
/// [`stockmesh_http::auth`]), and the spec's security requirements. A route missing here is
/// refused to everyone.
pub const ACCESS: &[Rule] = &[
    Rule::get("/", Permission::Public),
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
    // The page holds no data: it reads with the user's token. (`/healthz`, the spec and the
    // reference page are in the shared table, `stockmesh_http::auth::SHARED`.)
    Rule::get("/ui", Permission::Public),
];

/// The spec's tags.
#[derive(OpenApi)]
#[openapi(tags(
    (name = "inventory", description = "This store's stock and its ledger"),
    (name = "transfers", description = "Stock arriving from another store"),
    (name = "link", description = "The store's link to the broker"),
    (name = "operations", description = "Health, readiness, metrics, this description"),
))]
struct Tags;

/// The Store's routes and their OpenAPI description, built from one list so the two agree.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Tags::openapi())
        .routes(routes!(health))
        .routes(routes!(status))
        .routes(routes!(connect))
        .routes(routes!(disconnect))
        .routes(routes!(list_items, create_item))
        .routes(routes!(get_item, set_quantity))
        .routes(routes!(history))
        .routes(routes!(adjust).layer(axum::extract::DefaultBodyLimit::max(ADJUSTMENTS_BODY_LIMIT)))
        .routes(routes!(purchase))
        .routes(routes!(receive_transfer))
        .routes(routes!(metrics))
        .routes(routes!(readyz))
        .routes(routes!(ui))
}

/// The store's page: its stock, an item's ledger, the connect/disconnect switch (HTML, embedded
/// in the binary).
#[utoipa::path(get, path = "/ui", tag = "operations",
    responses((status = 200, description = "The store's page", body = String, content_type = "text/html")))]
async fn ui() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../ui/store.html"))
}

/// The Store's OpenAPI 3.1 description, as `GET /openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    let (_, mut spec) = documented().split_for_parts();
    stockmesh_http::openapi::complete(
        &mut spec,
        "stockmesh Store",
        "One store's stock, kept in its own database and sold even while it is offline. Errors \
         are RFC 9457 problem+json.",
        ACCESS,
    );
    stockmesh_http::openapi::with_links(&spec, &LINKS)
}

/// Where a created item leads (its `Location`, as OpenAPI links).
const LINKS: [ResourceLink; 4] = [
    ResourceLink::post("/inventory", "201", "get_item", "product_id", "productId"),
    ResourceLink::post(
        "/inventory",
        "201",
        "set_quantity",
        "product_id",
        "productId",
    ),
    ResourceLink::post("/inventory", "201", "history", "product_id", "productId"),
    ResourceLink::post("/inventory", "201", "purchase", "product_id", "productId"),
];

/// The Store's routes, with the shared conventions applied; tokens are checked against `auth`
/// (None: no authentication).
pub fn router(service: Arc<StoreService>, auth: Option<Arc<Verifier>>) -> Router {
    let (routes, _) = documented().split_for_parts();
    let routes = routes
        .with_state(service.clone())
        .merge(stockmesh_http::openapi::serve(openapi()));
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateItemRequest {
    /// The new product.
    product_id: ProductId,
}

/// `{"quantity": n}` with `n ≥ 0`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetQuantityRequest {
    /// The new stock count.
    quantity: Quantity,
}

/// The plain-text health line.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "The store is up", body = String, content_type = "text/plain")))]
async fn health(State(store): State<AppState>) -> String {
    format!("Store Server {}: OK", store.id())
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
async fn metrics(State(store): State<AppState>) -> Result<Response, Problem> {
    store.refresh_gauges().await?;
    Ok(stockmesh_http::metrics::exposition())
}

/// Ready when the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "Not ready, and why", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(store): State<AppState>) -> Response {
    stockmesh_http::metrics::readiness(store.readiness().await)
}

/// The store's link and outbox backlog.
#[utoipa::path(get, path = "/status", tag = "link",
    responses((status = 200, description = "The store's state", body = StoreStatus)))]
async fn status(State(store): State<AppState>) -> Result<Response, Problem> {
    Ok(Json(store.status().await?).into_response())
}

/// Connects the store to the broker: heartbeats, publishing and consumption resume.
#[utoipa::path(post, path = "/connected", tag = "link",
    responses((status = 200, description = "The store's state after the switch", body = StoreStatus)))]
async fn connect(State(store): State<AppState>) -> Result<Response, Problem> {
    store.set_link(LinkState::Connected).await;
    status(State(store)).await
}

/// Disconnects the store: it keeps selling locally and queues its events.
#[utoipa::path(post, path = "/disconnected", tag = "link",
    responses((status = 200, description = "The store's state after the switch", body = StoreStatus)))]
async fn disconnect(State(store): State<AppState>) -> Result<Response, Problem> {
    store.set_link(LinkState::Disconnected).await;
    status(State(store)).await
}

/// This store's items, paginated.
#[utoipa::path(get, path = "/inventory", tag = "inventory", params(KeysetParams),
    responses((status = 200, description = "A page of items in product order", body = Vec<Item>, headers(
            ("X-Total-Count" = u64, description = "How many items the whole list holds"),
            ("X-Next-Cursor" = String, description = "Pass as `after` for the next page; absent on the last page"),
            ("Link" = String, description = "RFC 8288 links to the first, prev, next and last pages (after a cursor: first and next)"),
        ))))]
async fn list_items(
    State(store): State<AppState>,
    ApiQuery(params): ApiQuery<KeysetParams>,
) -> Result<Response, Problem> {
    let seek = params.validate::<ProductId>()?;
    let slice = store.list_items(&seek).await?;
    let next = slice.next(|item| item.product_id.clone());
    Ok(Paged::keyed(slice, &seek, next, "/inventory", vec![]).into_response())
}

/// Adds a product with quantity 0.
#[utoipa::path(post, path = "/inventory", tag = "inventory", request_body = CreateItemRequest,
    responses(
        (status = 201, description = "Created", body = Item,
            headers(("Location" = String, description = "The new item: /inventory/{productId}"))),
        (status = 409, description = "The product exists already", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// One item.
#[utoipa::path(get, operation_id = "get_item", path = "/inventory/{product_id}", tag = "inventory", params(("product_id" = ProductId, Path, description = "The product")),
    responses((status = 200, description = "The item", body = Item, headers(("ETag" = String, description = "The item's version, for If-Match"))), (status = 404, description = "Unknown product", body = Problem, content_type = "application/problem+json")))]
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

/// Sets the stock count (a delivery or a count); with `If-Match`, only if the item is still at
/// that version.
#[utoipa::path(put, operation_id = "set_quantity", path = "/inventory/{product_id}", tag = "inventory",
    params(
        ("product_id" = ProductId, Path, description = "The product"),
        ("If-Match" = Option<String>, Header, description = "The item's version as its ETag gives it (`\"3\"`, `W/\"3\"` or `*`)"),
    ),
    request_body = SetQuantityRequest,
    responses(
        (status = 204, description = "Set"),
        (status = 404, description = "Unknown product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Below the units reserved", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The item is no longer at the If-Match version", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// Applies a batch of adjustments to this store's stock in one transaction: all lines or none.
/// With `If-Match` (every line naming one product), only if that item is still at that version.
#[utoipa::path(post, path = "/inventory/adjustments", tag = "inventory",
    params(("If-Match" = Option<String>, Header, description = "The item's version as its ETag gives it (`\"3\"`); every line must then name that one product")),
    request_body = BatchInput,
    responses(
        (status = 200, description = "Applied: every item the batch changed, after it", body = Vec<Item>),
        (status = 404, description = "A line names an unknown product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A line would take stock below zero or below what is reserved", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The item is no longer at the If-Match version", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// A sale at the store's own till.
#[utoipa::path(post, operation_id = "purchase", path = "/purchase/{product_id}", tag = "inventory", params(("product_id" = ProductId, Path, description = "The product")),
    request_body = PurchaseRequest,
    responses(
        (status = 200, description = "Sold: the item after the sale", body = Item),
        (status = 404, description = "Unknown product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Insufficient stock", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// The item's ledger: every movement, oldest first, paginated.
#[utoipa::path(get, operation_id = "history", path = "/inventory/{product_id}/history", tag = "inventory", params(("product_id" = ProductId, Path, description = "The product"), PageParams),
    responses((status = 200, description = "A page of movements", body = Vec<Movement>, headers(
            ("X-Total-Count" = u64, description = "How many items the whole list holds"),
            ("Link" = String, description = "RFC 8288 links to the first, prev, next and last pages"),
        )), (status = 404, description = "Unknown product", body = Problem, content_type = "application/problem+json")))]
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
        next: None,
        after: false,
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

/// Books a transfer that arrived awaiting confirmation (`confirmReceipt`) onto this store's
/// shelf.
#[utoipa::path(post, path = "/transfers/{transfer_id}/receive", tag = "transfers",
    params(("transfer_id" = uuid::Uuid, Path, description = "The transfer")),
    responses(
        (status = 200, description = "Received: the item after the units were booked", body = Item),
        (status = 404, description = "No transfer awaits receipt here under this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Received already", body = Problem, content_type = "application/problem+json"),
    ))]
async fn receive_transfer(
    State(store): State<AppState>,
    Correlation(correlation): Correlation,
    ApiPath(TransferPath(id)): ApiPath<TransferPath>,
) -> Result<Response, Problem> {
    let item = crate::transfer::confirm_receipt(&store, id, Some(correlation)).await?;
    Ok(Json(item).into_response())
}
