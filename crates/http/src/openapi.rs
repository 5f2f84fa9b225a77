//! The OpenAPI 3.1 description both nodes serve: what every operation shares (the `X-Request-Id`
//! header both ways, a problem+json answer for every error status), the routes the shared router
//! adds (`/healthz`), the spec itself at `/openapi.json` and the API reference page at `/docs/`,
//! whose Swagger UI assets are compiled into the binary (nothing is fetched at build or run time).

use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{
    ContentBuilder, HttpMethod, OpenApi, PathItem, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::problem::{PROBLEM_JSON, Problem};

/// Where the spec is served.
pub const SPEC_PATH: &str = "/openapi.json";
/// Where the API reference page is served.
pub const DOCS_PATH: &str = "/docs";

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
/// operation, so no error status goes undocumented.
pub fn complete(spec: &mut OpenApi, title: &str, description: &str) {
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

    for item in spec.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            complete_operation(operation);
        }
    }
}

fn complete_operation(operation: &mut Operation) {
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
    let _: Option<&RequestBody> = operation.request_body.as_ref();
}

/// Serves `spec` at [`SPEC_PATH`] and the reference page at [`DOCS_PATH`]`/`.
pub fn serve(spec: OpenApi) -> Router {
    SwaggerUi::new(DOCS_PATH).url(SPEC_PATH, spec).into()
}
