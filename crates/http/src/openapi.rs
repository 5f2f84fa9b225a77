//! The OpenAPI 3.1 description both nodes serve: what every operation shares (the `X-Request-Id`
//! header both ways, a problem+json answer for every error status, the bearer token and its
//! 401/403 answers wherever the node's access table asks for one), the routes the shared router
//! adds (`/healthz`), the spec itself at `/openapi.json` and the API reference page at `/docs/`,
//! whose Swagger UI assets are compiled into the binary (nothing is fetched at build or run time).

use axum::Router;
use axum::http::Method;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HttpMethod, OpenApi, PathItem, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{Permission, Rule};
use crate::problem::{PROBLEM_JSON, Problem};

pub use crate::paths::{DOCS_PATH, SPEC_PATH};

/// The name of the bearer security scheme in the spec.
pub const BEARER: &str = "bearer";

/// The optional `Idempotency-Key` request header, for `params(...)` of operations that take it.
pub struct IdempotencyKeyHeader;

impl utoipa::IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "1 to 255 visible ASCII characters: a retry with the same key and body gets \
                     the first answer; the same key with another body is refused with 422.",
                ))
                .schema(Some(string_schema(255).pattern(Some("^[!-~]+$"))))
                .build(),
        ]
    }
}

/// The answers every store-decided request shares (remote purchases, reservations and their
/// actions, transfers), for `responses(...)`: 422 for an `Idempotency-Key` reused with another
/// request, 503 when the store is offline or did not decide before the request's deadline.
pub struct StoreDecidedProblems;

impl utoipa::IntoResponses for StoreDecidedProblems {
    fn responses() -> std::collections::BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            (
                "422".to_owned(),
                problem_response("Idempotency-Key reused with another request"),
            ),
            (
                "503".to_owned(),
                problem_response(
                    "The deciding store is offline, or did not decide before the request's \
                     deadline",
                ),
            ),
        ]
        .into()
    }
}

/// A string header's schema.
fn string_schema(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
}

/// The `X-Request-Id` response header.
pub fn request_id_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "The request's correlation id: the client's `X-Request-Id`, else the trace id of its \
             `traceparent`, else a new one. Carried into every event the request causes.",
        ))
        .build()
}

/// The `Location` response header of a created or accepted resource.
pub fn location_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some("The path of the created or accepted resource."))
        .build()
}

/// The `X-Total-Count` header of a paginated list.
pub fn total_count_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0.0)),
        )
        .description(Some("How many items the whole list holds."))
        .build()
}

/// The RFC 8288 `Link` header of a paginated list.
pub fn link_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "RFC 8288 links to the `first`, `prev`, `next` and `last` pages, filters kept.",
        ))
        .build()
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .header("X-Request-Id", request_id_header())
        .into()
}

fn text_operation(id: &str, summary: &str, media: &str) -> Operation {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .tag("operations")
        .response(
            "200",
            ResponseBuilder::new().description("OK").content(
                media,
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(
                        if media.contains("json") {
                            Type::Object
                        } else {
                            Type::String
                        },
                    )))
                    .build(),
            ),
        )
        .build()
}

/// Completes a node's spec: title, the shared routes, the `X-Request-Id` header on every
/// operation, and a problem+json `default` answer (plus 400 wherever input is parsed) on every
/// operation, so no error status goes undocumented. `access` is the node's route table: every
/// operation it does not make public requires the bearer token and documents 401 and 403.
pub fn complete(spec: &mut OpenApi, title: &str, description: &str, access: &[Rule]) {
    spec.info.title = title.to_owned();
    spec.info.version = env!("CARGO_PKG_VERSION").to_owned();
    spec.info.description = Some(description.to_owned());
    spec.info.license = None;
    spec.info.contact = None;
    spec.openapi = utoipa::openapi::OpenApiVersion::Version31;

    let shared = [
        (
            "/healthz",
            text_operation("healthz", "Liveness of the process: `ok`.", "text/plain"),
        ),
        (
            SPEC_PATH,
            text_operation(
                "openapi",
                "This OpenAPI 3.1 description.",
                "application/json",
            ),
        ),
        (
            "/docs/",
            text_operation(
                "docs",
                "The API reference page (Swagger UI, served from the binary).",
                "text/html",
            ),
        ),
    ];
    for (path, operation) in shared {
        spec.paths
            .paths
            .insert(path.to_owned(), PathItem::new(HttpMethod::Get, operation));
    }

    let components = spec.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Problem".to_owned(),
        <Problem as utoipa::PartialSchema>::schema(),
    );
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("JWT".to_owned());
    bearer.description = Some(
        "An Ed25519-signed JWT naming a role (admin, store, sales, viewer, metrics), minted with \
         `stockmesh token`. Required only when the node was started with public keys \
         (`--auth-public-key`); without them every route is open."
            .to_owned(),
    );
    components
        .security_schemes
        .insert(BEARER.to_owned(), SecurityScheme::Http(bearer));

    for (path, item) in spec.paths.paths.iter_mut() {
        for (method, operation) in [
            (Method::GET, &mut item.get),
            (Method::POST, &mut item.post),
            (Method::PUT, &mut item.put),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ] {
            if let Some(operation) = operation {
                let permission = crate::auth::required(access, &method, path);
                complete_operation(operation, permission);
            }
        }
    }
}

/// Completes one operation; `permission` is what the access table requires of it (None: the
/// route is refused to everyone, documented as needing a token like any other).
fn complete_operation(operation: &mut Operation, permission: Option<Permission>) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    parameters.push(
        ParameterBuilder::new()
            .name("X-Request-Id")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "A correlation id of 1 to 128 visible ASCII characters; any other value is \
                 replaced by a new id.",
            ))
            .schema(Some(string_schema(128)))
            .build(),
    );
    let takes_input =
        !parameters.iter().all(|p| p.name == "X-Request-Id") || operation.request_body.is_some();
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response
                .headers
                .entry("X-Request-Id".to_owned())
                .or_insert_with(request_id_header);
        }
    }
    if takes_input {
        operation
            .responses
            .responses
            .entry("400".to_owned())
            .or_insert_with(|| {
                problem_response("Invalid input: the `detail` names the field and the rule.")
            });
    }
    if permission == Some(Permission::Public) {
        // An empty requirement overrides nothing and states that no token is needed.
        operation.security = Some(vec![SecurityRequirement::default()]);
    } else {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        let responses = &mut operation.responses.responses;
        responses.entry("401".to_owned()).or_insert_with(|| {
            problem_response(
                "Authentication is on and the bearer token is missing, malformed, expired or \
                 not signed by a known key (with `WWW-Authenticate: Bearer`).",
            )
        });
        responses.entry("403".to_owned()).or_insert_with(|| {
            problem_response("The token's role (or store) does not grant this operation.")
        });
    }
    operation
        .responses
        .responses
        .entry("default".to_owned())
        .or_insert_with(|| {
            problem_response(
                "Any other error, as problem+json: 404 unknown route, 405 method, 413 body too \
                 large, 415 media type, 500, 503.",
            )
        });
}

/// An OpenAPI link: the answer `status` of `method` on `path` names the resource that the
/// operation `target` takes, by its `parameter` read from the answer's body field `field`.
#[derive(Debug, Clone)]
pub struct ResourceLink {
    /// The path of the operation that answers.
    pub path: &'static str,
    /// Its method.
    pub method: Method,
    /// The answer's status.
    pub status: &'static str,
    /// The `operationId` of the operation the link leads to.
    pub target: &'static str,
    /// The target's path parameter.
    pub parameter: &'static str,
    /// The answer's body field that holds the parameter (`reservationId`).
    pub field: &'static str,
}

impl ResourceLink {
    /// A link from the answer `status` of `POST path`.
    pub const fn post(
        path: &'static str,
        status: &'static str,
        target: &'static str,
        parameter: &'static str,
        field: &'static str,
    ) -> Self {
        Self {
            path,
            method: Method::POST,
            status,
            target,
            parameter,
            field,
        }
    }
}

/// The spec as JSON with `links` added to the answers they start from, so a client (or a
/// fuzzer's stateful phase) knows which operations a created resource leads to instead of
/// guessing from `Location`. Links are written into the JSON because utoipa 5.5 serializes a
/// link's `operationId` as `operation_id`, which no OpenAPI tool reads.
pub fn with_links(spec: &OpenApi, links: &[ResourceLink]) -> serde_json::Value {
    let mut json = serde_json::to_value(spec).unwrap_or_default();
    for link in links {
        let method = link.method.as_str().to_ascii_lowercase();
        let Some(response) = json
            .get_mut("paths")
            .and_then(|paths| paths.get_mut(link.path))
            .and_then(|item| item.get_mut(method.as_str()))
            .and_then(|operation| operation.get_mut("responses"))
            .and_then(|responses| responses.get_mut(link.status))
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        let links = response
            .entry("links")
            .or_insert_with(|| serde_json::json!({}));
        links[link.target] = serde_json::json!({
            "operationId": link.target,
            "parameters": { link.parameter: format!("$response.body#/{}", link.field) },
        });
    }
    json
}

/// Serves `spec` at [`SPEC_PATH`] and the reference page at [`DOCS_PATH`]`/`.
pub fn serve(spec: serde_json::Value) -> Router {
    SwaggerUi::new(DOCS_PATH)
        .external_url_unchecked(SPEC_PATH, spec)
        .into()
}
