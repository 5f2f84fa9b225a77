//! OpenAPI schemas of the domain types whose rules serde does not show (identifiers, quantities,
//! versions): each states the same rule its parser enforces.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::quantity::{MAX_QUANTITY, PurchaseQuantity, Quantity, Version};

/// A string identifier: 1 to `max_len` characters of `A-Za-z0-9._-`, neither `.` nor `..`.
pub(crate) fn id_schema(what: &str, max_len: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max_len))
        .pattern(Some("^[A-Za-z0-9._-]+$"))
        .description(Some(format!(
            "{what}: 1 to {max_len} characters of A-Za-z0-9._- other than `.` and `..`"
        )))
        .examples([serde_json::json!(if what == "storeId" {
            "store-1"
        } else {
            "sku-1"
        })])
        .into()
}

fn integer(min: u64, max: Option<u64>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(min as f64))
        .maximum(max.map(|m| m as f64))
        .description(Some(description))
        .into()
}

impl PartialSchema for Quantity {
    fn schema() -> RefOr<Schema> {
        integer(0, Some(u64::from(MAX_QUANTITY)), "units in stock")
    }
}
impl ToSchema for Quantity {}

impl PartialSchema for PurchaseQuantity {
    fn schema() -> RefOr<Schema> {
        integer(1, Some(u64::from(MAX_QUANTITY)), "units to buy")
    }
}
impl ToSchema for PurchaseQuantity {}

impl PartialSchema for Version {
    fn schema() -> RefOr<Schema> {
        integer(
            1,
            None,
            "the item's version at its store, one more with every change",
        )
    }
}
impl ToSchema for Version {}

impl PartialSchema for crate::reservation::Ttl {
    fn schema() -> RefOr<Schema> {
        integer(
            1,
            Some(u64::from(crate::reservation::MAX_TTL_SECONDS)),
            "seconds the store holds the units",
        )
    }
}
impl ToSchema for crate::reservation::Ttl {}
