//! The well-known paths every node serves beside its own routes, named once for the router, the
//! access tables and the spec.

/// Where the spec is served.
pub const SPEC_PATH: &str = "/openapi.json";
/// Where the API reference page is served.
pub const DOCS_PATH: &str = "/docs";
