//! Transfers between stores (issue 17): the commands and replies of the saga. The sending store
//! decides the shipment (enough available units → they leave its shelf, in transit); the
//! receiving store adds them on receipt (at once, or when a person confirms it there). A transfer
//! cancelled at Central while its shipment crossed the cancel is returned to its sender.

use serde::{Deserialize, Serialize};

use crate::{ItemState, ProductId, PurchaseQuantity, StoreId, Timestamp, TransferId};

/// Central → sending store: ship `quantity` units of `product_id` to `to` if they are available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferShipCommand {
    /// The transfer; shipped at most once.
    pub transfer_id: TransferId,
    /// The product.
    pub product_id: ProductId,
    /// Units to send.
    pub quantity: PurchaseQuantity,
    /// The receiving store.
    pub to: StoreId,
    /// After this instant the store must refuse the command.
    pub deadline: Timestamp,
}

/// Store → Central: the units left the shelf and are in transit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferShipped {
    /// The transfer.
    pub transfer_id: TransferId,
    /// Units sent.
    pub quantity: PurchaseQuantity,
    /// The sending store's item after the shipment.
    pub item: ItemState,
}

/// Store → Central: the shipment was refused; nothing moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferRejected {
    /// The transfer.
    pub transfer_id: TransferId,
    /// The product.
    pub product_id: ProductId,
    /// Why.
    pub reason: crate::RejectionReason,
    /// The sending store's item, when it exists.
    #[serde(default)]
    pub item: Option<ItemState>,
}

/// Central → receiving store (or back to the sender, for a cancelled transfer that had shipped):
/// add the units in transit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferReceiveCommand {
    /// The transfer.
    pub transfer_id: TransferId,
    /// The product (the store creates the item if it does not carry it).
    pub product_id: ProductId,
    /// Units arriving.
    pub quantity: PurchaseQuantity,
    /// The store they come from.
    pub from: StoreId,
    /// Wait for `POST /transfers/{id}/receive` at the store instead of adding them at once.
    pub confirm: bool,
    /// The units return to their sender (the transfer was cancelled as it shipped).
    pub returning: bool,
}

/// Store → Central: the units arrived and wait for a person to confirm receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferArrived {
    /// The transfer.
    pub transfer_id: TransferId,
}

/// Store → Central: the units are on the receiving shelf (or back on the sender's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferReceived {
    /// The transfer.
    pub transfer_id: TransferId,
    /// Units added.
    pub quantity: PurchaseQuantity,
    /// They returned to the sender.
    pub returned: bool,
    /// The item after the receipt.
    pub item: ItemState,
}
