//! Batch adjustments (issue 16): up to 1,000 lines, each `{productId, delta | quantity, reason,
//! reference?, version?}`, applied all or nothing in one write of the group commit, one ledger line per line
//! (kind `adjustment`, with its reason, reference and actor) and one event per changed item.
//!
//! A `delta` adds units to the shelf (negative: takes them, e.g. `damaged`); it may take only
//! available units, never reserved ones. A `quantity` is a shelf count: it sets on hand, and may
//! not fall below the reserved units. A line's `version` (or the request's `If-Match` when every
//! line names one product) must equal the item's version before the batch, else the whole batch
//! is refused with 412.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use sqlx::AnyConnection;
use stockmesh_core::{
    CorrelationId, Event, Item, ItemState, MovementKind, ProductId, Quantity, Version,
};

use crate::error::StoreError;
use crate::repository as repo;
use crate::service::{Change, StoreService};

/// The most lines one batch may hold.
pub const MAX_LINES: usize = 1000;

/// Why stock is adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Reason {
    /// A delivery arrived.
    Received,
    /// Goods were damaged and written off.
    Damaged,
    /// The shelf was counted.
    Count,
    /// A customer returned goods.
    Returned,
    /// A mistake is corrected.
    Correction,
}

const REASONS: [(Reason, &str); 5] = [
    (Reason::Received, "received"),
    (Reason::Damaged, "damaged"),
    (Reason::Count, "count"),
    (Reason::Returned, "returned"),
    (Reason::Correction, "correction"),
];

impl Reason {
    /// The ledger's name.
    pub fn as_str(self) -> &'static str {
        REASONS
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("correction", |(_, name)| name)
    }
}

/// A value outside its rule, with the rule in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule(String);

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Reason {
    type Error = Rule;
    fn try_from(name: String) -> Result<Self, Rule> {
        REASONS
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(r, _)| *r)
            .ok_or_else(|| {
                Rule("reason must be one of received, damaged, count, returned, correction".into())
            })
    }
}

impl utoipa::PartialSchema for Reason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(REASONS.iter().map(|(_, name)| *name)))
            .description(Some("Why the stock changes"))
            .into()
    }
}
impl utoipa::ToSchema for Reason {}

/// A change in units: a non-zero integer from −1,000,000,000 to 1,000,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Delta(i64);

impl TryFrom<i64> for Delta {
    type Error = Rule;
    fn try_from(value: i64) -> Result<Self, Rule> {
        let max = i64::from(stockmesh_core::quantity::MAX_QUANTITY);
        if value != 0 && (-max..=max).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Rule(format!(
                "delta must be a non-zero integer from -1,000,000,000 to 1,000,000,000, got {value}"
            )))
        }
    }
}

impl utoipa::PartialSchema for Delta {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let max = f64::from(stockmesh_core::quantity::MAX_QUANTITY);
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(-max))
            .maximum(Some(max))
            .description(Some(
                "Units added to the shelf (negative: taken); not zero, taking only available units",
            ))
            .into()
    }
}
impl utoipa::ToSchema for Delta {}

/// What a line refers to: 1 to 128 printable characters (a delivery note, an order number).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Reference(String);

impl TryFrom<String> for Reference {
    type Error = Rule;
    fn try_from(text: String) -> Result<Self, Rule> {
        if (1..=128).contains(&text.chars().count()) && !text.chars().any(char::is_control) {
            Ok(Self(text))
        } else {
            Err(Rule(
                "reference must be 1 to 128 characters without control characters".into(),
            ))
        }
    }
}

impl utoipa::PartialSchema for Reference {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some(r"^[^\u0000-\u001f\u007f-\u009f]+$"))
            .description(Some(
                "What the line refers to: a delivery note, an order number",
            ))
            .into()
    }
}
impl utoipa::ToSchema for Reference {}

/// One line as sent: exactly one of `delta` and `quantity`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineInput {
    /// The item.
    product_id: ProductId,
    /// Units added (negative: taken); give this or `quantity`.
    #[serde(default)]
    delta: Option<Delta>,
    /// The shelf count (sets on hand, not below what is reserved); give this or `delta`.
    #[serde(default)]
    quantity: Option<Quantity>,
    /// Why.
    reason: Reason,
    /// What it refers to.
    #[serde(default)]
    reference: Option<Reference>,
    /// The version the item must have before the batch (else the whole batch is refused, 412).
    #[serde(default)]
    version: Option<Version>,
}

/// What a line does to its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Add (or take) units.
    Delta(i64),
    /// Set on hand.
    Count(Quantity),
}

/// One valid line.
#[derive(Debug, Clone)]
pub struct Line {
    /// The item.
    pub product_id: ProductId,
    /// What it does.
    pub amount: Amount,
    /// Why.
    pub reason: Reason,
    /// What it refers to.
    pub reference: Option<String>,
    /// The version the item must have before the batch.
    pub version: Option<Version>,
}

/// The body: `{"lines": [...]}`; lines are checked one by one so that every bad line is named.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// 1 to 1,000 lines, applied all or none.
    #[schema(value_type = Vec<LineInput>, min_items = 1, max_items = 1000)]
    lines: Vec<serde_json::Value>,
}

impl BatchInput {
    /// The valid lines, or every bad line named (`lines[3]: reason must be …`).
    pub fn validate(self) -> Result<Vec<Line>, String> {
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return Err(format!(
                "lines must hold 1 to {MAX_LINES} lines, got {}",
                self.lines.len()
            ));
        }
        let mut good = Vec::with_capacity(self.lines.len());
        let mut bad = Vec::new();
        for (i, value) in self.lines.iter().enumerate() {
            let bytes = serde_json::to_vec(value).unwrap_or_default();
            match stockmesh_http::extract::parse_json::<LineInput>(&bytes) {
                Err(problem) => bad.push(format!("lines[{i}]: {}", problem.detail)),
                Ok(line) => {
                    let amount = match (line.delta, line.quantity) {
                        (Some(Delta(d)), None) => Amount::Delta(d),
                        (None, Some(q)) => Amount::Count(q),
                        _ => {
                            bad.push(format!("lines[{i}]: give exactly one of delta or quantity"));
                            continue;
                        }
                    };
                    good.push(Line {
                        product_id: line.product_id,
                        amount,
                        reason: line.reason,
                        reference: line.reference.map(|r| r.0),
                        version: line.version,
                    });
                }
            }
        }
        if bad.is_empty() {
            Ok(good)
        } else {
            Err(bad.join("; "))
        }
    }
}

/// Applies `lines` all or nothing; `if_match` applies to every line (the caller checked that
/// they name one product). Returns the changed items.
pub async fn apply(
    store: &StoreService,
    lines: Vec<Line>,
    if_match: Option<Version>,
    correlation: Option<CorrelationId>,
) -> Result<Vec<Item>, StoreError> {
    let count = lines.len();
    let after = store
        .write(move |store, conn| {
            Box::pin(async move { apply_in(&store, conn, &lines, if_match, correlation).await })
        })
        .await?;
    store.outbox_signal().notify();
    for _ in 0..count {
        store.count_mutation(MovementKind::Adjustment);
    }
    Ok(after.into_iter().map(|s| store.item(s)).collect())
}

/// The write of [`apply`], inside the group's transaction: the changed items' new states.
async fn apply_in(
    store: &StoreService,
    tx: &mut AnyConnection,
    lines: &[Line],
    if_match: Option<Version>,
    correlation: Option<CorrelationId>,
) -> Result<Vec<ItemState>, StoreError> {
    let now = stockmesh_core::now();
    let mut before: BTreeMap<ProductId, Option<ItemState>> = BTreeMap::new();
    for line in lines {
        if !before.contains_key(&line.product_id) {
            let item = repo::find_item(&mut *tx, &line.product_id).await?;
            before.insert(line.product_id.clone(), item);
        }
    }
    let mut stale = Vec::new();
    let mut refused = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let expected = line.version.or(if_match);
        match (
            before.get(&line.product_id).and_then(Option::as_ref),
            expected,
        ) {
            (None, _) => refused.push(format!(
                "lines[{i}]: product {} not found at this store",
                line.product_id
            )),
            (Some(item), Some(version)) if item.version != version => stale.push(format!(
                "lines[{i}]: product {} is at version {}, not {version}",
                line.product_id, item.version
            )),
            _ => {}
        }
    }
    if !stale.is_empty() {
        return Err(StoreError::Stale(stale.join("; ")));
    }
    if !refused.is_empty() {
        return Err(StoreError::AdjustmentRefused(refused.join("; ")));
    }
    let mut after: BTreeMap<ProductId, ItemState> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let current = after
            .get(&line.product_id)
            .or_else(|| before.get(&line.product_id).and_then(Option::as_ref))
            .cloned()
            .ok_or(StoreError::Invariant("an adjusted item vanished"))?;
        let state = match line.amount {
            Amount::Delta(delta) => {
                repo::adjust_stock(&mut *tx, &line.product_id, delta, now).await?
            }
            Amount::Count(on_hand) if on_hand >= current.reserved => {
                repo::set_quantity(&mut *tx, &line.product_id, on_hand, now).await?
            }
            Amount::Count(_) => None,
        };
        let Some(state) = state else {
            refused.push(match line.amount {
                Amount::Delta(delta) => format!(
                    "lines[{i}]: delta {delta} would leave product {} with {} available (reserved units cannot be adjusted away) or over 1,000,000,000 on hand",
                    line.product_id,
                    i64::from(current.quantity) + delta
                ),
                Amount::Count(q) => format!(
                    "lines[{i}]: quantity {q} is below the {} reserved units of product {}",
                    current.reserved, line.product_id
                ),
            });
            continue;
        };
        let change = Change {
            reason: Some(line.reason.as_str().to_owned()),
            reference: line.reference.clone(),
            ..Change::plain(
                MovementKind::Adjustment,
                i64::from(state.quantity) - i64::from(current.quantity),
            )
        };
        store
            .record_movement(tx, &state, change, correlation.as_ref())
            .await?;
        after.insert(line.product_id.clone(), state);
    }
    if !refused.is_empty() {
        return Err(StoreError::AdjustmentRefused(refused.join("; ")));
    }
    for state in after.values() {
        store
            .emit(
                tx,
                Event::InventoryItemUpdated(state.clone()),
                correlation.clone(),
            )
            .await?;
    }
    Ok(after.into_values().collect())
}
