//! Request bodies that both services accept. Unknown fields are refused, and each field parses
//! through its domain type, so a handler only ever sees valid values.

use serde::Deserialize;
use stockmesh_core::PurchaseQuantity;

/// `{"quantity": n}` with `n ≥ 1`: a purchase at a store or through Central.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// Units to buy.
    pub quantity: PurchaseQuantity,
}
