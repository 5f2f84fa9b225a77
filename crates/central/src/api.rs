//! Central's HTTP API. Handlers extract, call the service and map the result; every error is a
//! problem+json response.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use stockmesh_core::{ProductId, PurchaseId, StoreId, ViewKey};
use stockmesh_http::auth::{Access, Permission, Rule, Verifier};
use stockmesh_http::bodies::PurchaseRequest;
use stockmesh_http::openapi::{IdempotencyKeyHeader, ResourceLink, StoreDecidedProblems};
use stockmesh_http::{
    ApiJson, ApiPath, ApiQuery, Correlation, MaybeIdempotencyKey, Paged, Problem,
};
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::CentralError;
use crate::feed::{Change, Filter};
use crate::purchase::{Purchase, PurchaseAnswer, PurchasedItem};
use crate::service::CentralService;
use crate::service::{ProductAvailability, StoreBacklog, StoreSummary};
use stockmesh_core::Item;

type AppState = Arc<CentralService>;

/// Who may do what at Central: the one table its authorization reads (see
/// [`stockmesh_http::auth`]), and the spec's security requirements. A route missing here is
/// refused to everyone.
pub const ACCESS: &[Rule] = &[
    Rule::get("/", Permission::Public),
    Rule::get("/readyz", Permission::Public),
    Rule::get("/metrics", Permission::Metrics),
    Rule::get("/inventory", Permission::ViewRead),
    Rule::get("/inventory/{store_id}/{product_id}", Permission::ViewRead),
    Rule::get("/products/{product_id}", Permission::ViewRead),
    Rule::get("/stores", Permission::ViewRead),
    Rule::post("/stores", Permission::Admin),
    Rule::get("/stores/backlog", Permission::ViewRead),
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
    // The change feed shows what the view shows.
    Rule::get("/events", Permission::ViewRead),
    // The page holds no data: it reads with the user's token. (`/healthz`, the spec and the
    // reference page are in the shared table, `stockmesh_http::auth::SHARED`.)
    Rule::get("/ui", Permission::Public),
];

/// The spec's tags.
#[derive(OpenApi)]
#[openapi(tags(
    (name = "inventory", description = "The chain's view of every store's stock"),
    (name = "purchases", description = "Remote purchases decided by the owning store"),
    (name = "reservations", description = "Holds on a store's stock, decided by the store"),
    (name = "transfers", description = "Stock moved between stores, decided by the sender"),
    (name = "stores", description = "The stores and their liveness"),
    (name = "feed", description = "Changes as server-sent events"),
    (name = "operations", description = "Health, readiness, metrics, this description"),
))]
struct Tags;

/// Central's routes and their OpenAPI description, built from one list so the two agree.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Tags::openapi())
        .routes(routes!(health))
        .routes(routes!(list_items))
        .routes(routes!(get_item))
        .routes(routes!(product))
        .routes(routes!(stores, provision))
        .routes(routes!(purchase))
        .routes(routes!(purchase_status))
        .merge(crate::reservation::api::routes())
        .merge(crate::transfer::api::routes())
        .routes(routes!(metrics))
        .routes(routes!(readyz))
        .routes(routes!(events))
        .routes(routes!(backlogs))
        .routes(routes!(ui))
}

/// Central's OpenAPI 3.1 description, as `GET /openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    let (_, mut spec) = documented().split_for_parts();
    stockmesh_http::openapi::complete(
        &mut spec,
        "stockmesh Central",
        "The chain's global view of every store's stock, and the requests the owning store \
         decides: remote purchases, reservations, transfers. Errors are RFC 9457 problem+json.",
        ACCESS,
    );
    stockmesh_http::openapi::with_links(&spec, &LINKS)
}

/// Where each created or accepted resource leads (its `Location`, as OpenAPI links).
const LINKS: [ResourceLink; 8] = [
    ResourceLink::post(
        "/purchase/{store_id}/{product_id}",
        "202",
        "get_purchase",
        "purchase_id",
        "purchaseId",
    ),
    ResourceLink::post(
        "/reservations",
        "201",
        "get_reservation",
        "reservation_id",
        "reservationId",
    ),
    ResourceLink::post(
        "/reservations",
        "201",
        "commit_reservation",
        "reservation_id",
        "reservationId",
    ),
    ResourceLink::post(
        "/reservations",
        "201",
        "release_reservation",
        "reservation_id",
        "reservationId",
    ),
    ResourceLink::post(
        "/reservations",
        "202",
        "get_reservation",
        "reservation_id",
        "reservationId",
    ),
    ResourceLink::post(
        "/transfers",
        "201",
        "get_transfer",
        "transfer_id",
        "transferId",
    ),
    ResourceLink::post(
        "/transfers",
        "201",
        "cancel_transfer",
        "transfer_id",
        "transferId",
    ),
    ResourceLink::post(
        "/transfers",
        "202",
        "get_transfer",
        "transfer_id",
        "transferId",
    ),
];

/// Central's routes, with the shared conventions applied; tokens are checked against `auth`
/// (None: no authentication).
pub fn router(service: Arc<CentralService>, auth: Option<Arc<Verifier>>) -> Router {
    let (routes, _) = documented().split_for_parts();
    let routes = routes
        .with_state(service.clone())
        .merge(stockmesh_http::openapi::serve(openapi()));
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
            CentralError::Write(cause) => {
                tracing::error!(error = %cause, "central write not done");
                Problem::internal()
            }
        }
    }
}

/// The plain-text health line.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "Central is up", body = String, content_type = "text/plain")))]
async fn health() -> &'static str {
    "Central Server: OK"
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
async fn metrics(State(central): State<AppState>) -> Result<Response, Problem> {
    central.refresh_gauges().await?;
    Ok(stockmesh_http::metrics::exposition())
}

/// Ready when the database and the broker answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "Not ready, and why", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(central): State<AppState>) -> Response {
    stockmesh_http::metrics::readiness(central.readiness().await)
}

/// `?page&size&after&storeId&productId`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct InventoryQuery {
    /// Zero-based page number (offset paging; not with `after`).
    #[param(minimum = 0)]
    page: Option<i64>,
    /// Items per page, 1 to 1000 (default 20).
    #[param(minimum = 1, maximum = 1000)]
    size: Option<i64>,
    /// Continue after this cursor: the `X-Next-Cursor` of the previous page (keyset paging, as
    /// fast at any depth; not with `page`).
    #[param(
        min_length = 3,
        max_length = 129,
        pattern = "^[A-Za-z0-9._-]+~[A-Za-z0-9._-]+$"
    )]
    after: Option<String>,
    /// Only this store's items.
    store_id: Option<StoreId>,
    /// Only this product's items.
    product_id: Option<ProductId>,
}

/// Every item in the view, paginated, optionally filtered by store and product.
#[utoipa::path(get, path = "/inventory", tag = "inventory", params(InventoryQuery),
    responses((status = 200, description = "A page of items in (store, product) order", body = Vec<Item>, headers(
            ("X-Total-Count" = u64, description = "How many items the whole list holds"),
            ("X-Next-Cursor" = String, description = "Pass as `after` for the next page; absent on the last page"),
            ("Link" = String, description = "RFC 8288 links to the first, prev, next and last pages (after a cursor: first and next)"),
        ))))]
async fn list_items(
    State(central): State<AppState>,
    ApiQuery(query): ApiQuery<InventoryQuery>,
) -> Result<Response, Problem> {
    let seek = stockmesh_http::pagination::seek::<ViewKey>(
        query.page,
        query.size,
        query.after.as_deref(),
    )?;
    let slice = central
        .items(query.store_id.as_ref(), query.product_id.as_ref(), &seek)
        .await?;
    let next = slice.next(|item| ViewKey {
        store: item.store_id.clone(),
        product: item.product_id.clone(),
    });
    let mut filters = Vec::new();
    if let Some(store) = &query.store_id {
        filters.push(("storeId", store.to_string()));
    }
    if let Some(product) = &query.product_id {
        filters.push(("productId", product.to_string()));
    }
    Ok(Paged::keyed(slice, &seek, next, "/inventory", filters).into_response())
}

/// One store's item as Central last saw it.
#[utoipa::path(get, path = "/inventory/{store_id}/{product_id}", tag = "inventory",
    params(("store_id" = StoreId, Path, description = "The store"), ("product_id" = ProductId, Path, description = "The product")),
    responses(
        (status = 200, description = "The item", body = Item),
        (status = 404, description = "Unknown store or item", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_item(
    State(central): State<AppState>,
    ApiPath((store, product)): ApiPath<(StoreId, ProductId)>,
) -> Result<Response, Problem> {
    Ok(Json(central.item(&store, &product).await?).into_response())
}

/// A product across the chain: stock per store and in total.
#[utoipa::path(get, path = "/products/{product_id}", tag = "inventory",
    params(("product_id" = ProductId, Path, description = "The product")),
    responses(
        (status = 200, description = "Stock per store and totals", body = ProductAvailability),
        (status = 404, description = "No store carries it", body = Problem, content_type = "application/problem+json"),
    ))]
async fn product(
    State(central): State<AppState>,
    ApiPath(product): ApiPath<ProductId>,
) -> Result<Response, Problem> {
    Ok(Json(central.product(&product).await?).into_response())
}

/// Every store Central knows, with its liveness.
#[utoipa::path(get, path = "/stores", tag = "stores",
    responses((status = 200, description = "The stores", body = Vec<StoreSummary>)))]
async fn stores(State(central): State<AppState>) -> Result<Response, Problem> {
    Ok(Json(central.stores().await?).into_response())
}

/// `{"storeId": "..."}`: the store to provision.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProvisionRequest {
    /// The store Central is to read from now on.
    store_id: StoreId,
}

/// Provisions a store: Central records it and reads its events from now on (admin). 201 when
/// it is new, 200 when it already was.
#[utoipa::path(post, path = "/stores", tag = "stores", request_body = ProvisionRequest,
    responses(
        (status = 201, description = "Provisioned now", body = ProvisionRequest),
        (status = 200, description = "Was provisioned already", body = ProvisionRequest),
    ))]
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
    Ok((status, Json(body)).into_response())
}

/// Buys units at a store through Central; the store decides. Answers 200 when the store
/// confirmed within the wait limit, else 202 with the purchase to poll at `Location`.
#[utoipa::path(post, operation_id = "purchase", path = "/purchase/{store_id}/{product_id}", tag = "purchases",
    params(
        ("store_id" = StoreId, Path, description = "The store that supplies it"),
        ("product_id" = ProductId, Path, description = "The product"),
        IdempotencyKeyHeader,
    ),
    request_body = PurchaseRequest,
    responses(
        (status = 200, description = "Confirmed by the store", body = PurchasedItem),
        (status = 202, description = "Sent to the store, not decided yet", body = Purchase,
            headers(("Location" = String, description = "The purchase's status resource: /purchases/{id}"))),
        (status = 404, description = "Unknown store or product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Insufficient stock", body = Problem, content_type = "application/problem+json"),
        StoreDecidedProblems,
    ))]
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

/// `?storeId&productId` of the change feed.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Only this store's changes.
    store_id: Option<StoreId>,
    /// Only this product's changes (store online/offline events still pass).
    product_id: Option<ProductId>,
}

/// The change feed as server-sent events: `item` (a view change), `purchase` (a remote purchase
/// decided), `reservation` (held, refused or ended), `transfer` (shipped, refused or received),
/// `store` (online/offline); each with an `id`. A client without `Last-Event-ID` (or after a
/// `reset`) first gets every store's latest `store` event, without an `id`. Reconnect with `Last-Event-ID` to resume: within
/// the last 1024 events of this replica the missed ones are replayed, else a `reset` event comes
/// first (reload, then follow). A client more than 256 events behind gets a final `overflow`
/// event and is disconnected (closed 5 s later if it does not read). With authentication on,
/// send the token as `Authorization: Bearer` (a browser reads the stream with `fetch`, as the
/// dashboard does; the token is never taken from the URL).
#[utoipa::path(get, path = "/events", tag = "feed",
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    responses((status = 200, description = "A stream of `item`, `purchase`, `reservation`, `transfer`, `store`, `reset` and `overflow` events; the data of the first five is a Change",
        body = Change, content_type = "text/event-stream")))]
async fn events(
    State(central): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Response {
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let filter = Filter {
        store: query.store_id,
        product: query.product_id,
    };
    crate::feed::sse::response(central.feed().subscribe(filter, last))
}

/// Every store's backlog in the broker.
#[utoipa::path(get, path = "/stores/backlog", tag = "stores",
    responses((status = 200, description = "Per store: consumer lag and pending, command backlog", body = Vec<StoreBacklog>)))]
async fn backlogs(State(central): State<AppState>) -> Result<Response, Problem> {
    Ok(Json(central.backlogs().await?).into_response())
}

/// The live dashboard: stores, product search, recent purchases (HTML, embedded in the binary).
#[utoipa::path(get, path = "/ui", tag = "operations",
    responses((status = 200, description = "The dashboard page", body = String, content_type = "text/html")))]
async fn ui() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../ui/central.html"))
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

/// A remote purchase and where it stands.
#[utoipa::path(get, operation_id = "get_purchase", path = "/purchases/{purchase_id}", tag = "purchases",
    params(("purchase_id" = uuid::Uuid, Path, description = "The purchase")),
    responses(
        (status = 200, description = "The purchase", body = Purchase),
        (status = 404, description = "Unknown purchase", body = Problem, content_type = "application/problem+json"),
    ))]
async fn purchase_status(
    State(central): State<AppState>,
    ApiPath(PurchasePath(id)): ApiPath<PurchasePath>,
) -> Result<Response, Problem> {
    Ok(Json(central.purchase_status(id).await?).into_response())
}
