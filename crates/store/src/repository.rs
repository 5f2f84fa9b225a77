//! Every SQL statement on the store's own tables. Writes take the caller's transaction; reads take
//! the reader pool.

use std::sync::LazyLock;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool};
use stockmesh_bus::{Leading, Outbox};
use stockmesh_core::{
    CorrelationId, Envelope, ItemState, Movement, MovementKind, ProductId, PurchaseId,
    PurchaseQuantity, Quantity, RequestId, ReservationEnd, ReservationId, StoreId, Timestamp,
    TransferId, Version,
};
use stockmesh_core::{Page, Seek, Slice};

/// An item row as stored: `(product_id, quantity (available), reserved, version, updated_at)`.
type ItemRow = (String, i64, i64, i64, i64);

fn corrupt(what: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("corrupt {what} row: {error}").into())
}

fn item_from_row(
    (product_id, quantity, reserved, version, updated_at): ItemRow,
) -> sqlx::Result<ItemState> {
    Ok(ItemState {
        product_id: ProductId::parse(product_id).map_err(|e| corrupt("item", e))?,
        quantity: Quantity::new(quantity).map_err(|e| corrupt("item", e))?,
        reserved: Quantity::new(reserved).map_err(|e| corrupt("item", e))?,
        version: Version::try_from(version).map_err(|e| corrupt("item", e))?,
        updated_at: stockmesh_core::from_millis(updated_at),
    })
}

fn items_from_rows(rows: Vec<ItemRow>) -> sqlx::Result<Vec<ItemState>> {
    rows.into_iter().map(item_from_row).collect()
}

/// One item, if the store carries it.
pub async fn find_item(
    conn: impl sqlx::AnyExecutor<'_>,
    product: &ProductId,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "SELECT product_id, quantity, reserved, version, updated_at FROM items WHERE product_id = ?",
    )
    .bind(product.as_str())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// One page of items ordered by product id (a numbered page, or the items after a product id:
/// the primary key finds that one without walking the ones before), with the total from the
/// summary row the triggers keep, so no request counts the whole table.
pub async fn list_items(pool: &AnyPool, seek: &Seek<ProductId>) -> sqlx::Result<Slice<ItemState>> {
    let rows = sqlx::query_as::<_, ItemRow>(
        "SELECT product_id, quantity, reserved, version, updated_at FROM items
         WHERE product_id > ?1 ORDER BY product_id LIMIT ?2 OFFSET ?3",
    )
    // No id is empty: from the start of the list, every item follows ''.
    .bind(seek.key().map_or("", ProductId::as_str))
    .bind(seek.fetch())
    .bind(seek.offset())
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT items FROM store_summary WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(Slice::from_rows(
        items_from_rows(rows)?,
        seek.size(),
        total.unsigned_abs(),
    ))
}

/// Fills an empty store with `count` synthetic items `sku-00000000`, `sku-00000001`, … (quantity
/// `i % 1000`, version 1) in one statement: a catalogue for benchmarks, through the real schema
/// and its triggers.
pub async fn fill_catalogue(
    conn: &mut AnyConnection,
    count: u64,
    at: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
         INSERT INTO items (product_id, quantity, version, updated_at)
         SELECT printf('sku-%08d', i), i % 1000, 1, ?2 FROM n",
    )
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .bind(at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every item in product order, `limit` at a time after `after` (for snapshots).
pub async fn items_after(
    conn: impl sqlx::AnyExecutor<'_>,
    after: Option<&ProductId>,
    limit: i64,
) -> sqlx::Result<Vec<ItemState>> {
    let rows = sqlx::query_as::<_, ItemRow>(
        "SELECT product_id, quantity, reserved, version, updated_at FROM items
         WHERE product_id > ? ORDER BY product_id LIMIT ?",
    )
    .bind(after.map_or("", ProductId::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    items_from_rows(rows)
}

/// Inserts a new item with quantity 0 at version 1; `None` if the product already exists.
pub async fn insert_item(
    conn: &mut AnyConnection,
    product: &ProductId,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "INSERT INTO items (product_id, quantity, version, updated_at) VALUES (?, 0, 1, ?)
         ON CONFLICT (product_id) DO NOTHING
         RETURNING product_id, quantity, reserved, version, updated_at",
    )
    .bind(product.as_str())
    .bind(at.timestamp_millis())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// Sets an item's units on hand (a shelf count) and bumps its version: the reserved units stay
/// reserved and the rest become available. `None` if the product does not exist or holds more
/// reserved units than `on_hand`.
pub async fn set_quantity(
    conn: &mut AnyConnection,
    product: &ProductId,
    on_hand: Quantity,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "UPDATE items SET quantity = ?1 - reserved, version = version + 1, updated_at = ?2
         WHERE product_id = ?3 AND reserved <= ?1
         RETURNING product_id, quantity, reserved, version, updated_at",
    )
    .bind(i64::from(on_hand))
    .bind(at.timestamp_millis())
    .bind(product.as_str())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// The guarded take of [`take_stock`]: it can lead a write ([`Leading`]).
pub static TAKE_STOCK: LazyLock<Leading> = LazyLock::new(|| {
    Leading::new(
        "UPDATE items SET quantity = quantity - ?1, version = version + 1, updated_at = ?2
         WHERE product_id = ?3 AND quantity >= ?1
         RETURNING product_id, quantity, reserved, version, updated_at",
    )
});

/// Takes `amount` units if at least that many are in stock, bumping the version; `None` when the
/// product is missing or short. The check and the decrement are one statement, so two purchases
/// can never both take the last unit. `statement` is [`TAKE_STOCK`]'s text: alone, or as a
/// leading write's [`Mark`](stockmesh_bus::Mark) gives it (which may put statements without
/// rows in front, hence every row is fetched, not the first result).
pub async fn take_stock(
    conn: &mut AnyConnection,
    statement: &'static str,
    product: &ProductId,
    amount: PurchaseQuantity,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(statement)
        .bind(i64::from(amount))
        .bind(at.timestamp_millis())
        .bind(product.as_str())
        .fetch_all(conn)
        .await?
        .into_iter()
        .next()
        .map(item_from_row)
        .transpose()
}

/// The ledger line's insert, up to its values.
const INSERT_MOVEMENT: &str = "INSERT INTO movements
    (product_id, kind, delta, quantity, reserved, version, at, correlation_id,
     purchase_id, reservation_id, reason, reference, actor, transfer_id)";

/// `count` numbered parameters from `$first` on, as a `VALUES` list.
fn values_from(first: usize, count: usize) -> String {
    let numbered: Vec<String> = (first..first + count).map(|n| format!("${n}")).collect();
    format!("VALUES ({})", numbered.join(", "))
}

/// The ledger line's insert alone (values `$1` to `$14`).
static MOVEMENT: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_MOVEMENT} {}", values_from(1, MOVEMENT_VALUES)));

/// The outbox row's insert ([`Outbox::APPEND`], values `$1` to `$5`) and then `insert` with its
/// `count` values (`$6` on), as one statement list: one round trip to the database.
fn after_event(insert: &str, count: usize) -> String {
    format!("{}; {insert} {}", Outbox::APPEND, values_from(6, count))
}

/// The outbox row's insert and the ledger line's, sent as one.
static EVENT_AND_MOVEMENT: LazyLock<String> =
    LazyLock::new(|| after_event(INSERT_MOVEMENT, MOVEMENT_VALUES));

/// Appends a ledger line for `product`.
pub async fn append_movement(
    conn: &mut AnyConnection,
    product: &ProductId,
    movement: &Movement,
) -> sqlx::Result<()> {
    bind_movement(sqlx::query(MOVEMENT.as_str()), product, movement)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends a ledger line for `product` and the outbox row of `envelope`, bound for `stream`, in
/// one round trip to the database (the store's writes wait on one connection, one statement
/// after another: a round trip fewer is a write sooner).
pub async fn append_movement_and_event(
    conn: &mut AnyConnection,
    product: &ProductId,
    movement: &Movement,
    stream: &str,
    envelope: &Envelope,
) -> sqlx::Result<()> {
    let query = Outbox::bind_append(sqlx::query(EVENT_AND_MOVEMENT.as_str()), stream, envelope);
    bind_movement(query, product, movement)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many values [`bind_movement`] binds.
const MOVEMENT_VALUES: usize = 14;

/// Binds the ledger line's values ([`MOVEMENT_VALUES`] of them, in the order of
/// [`INSERT_MOVEMENT`]) after those `query` holds.
fn bind_movement<'q>(
    query: Query<'q, Any, AnyArguments>,
    product: &'q ProductId,
    movement: &'q Movement,
) -> Query<'q, Any, AnyArguments> {
    query
        .bind(product.as_str())
        .bind(movement.kind.as_str())
        .bind(movement.delta)
        .bind(i64::from(movement.quantity))
        .bind(i64::from(movement.reserved))
        .bind(i64::from(movement.version))
        .bind(movement.at.timestamp_millis())
        .bind(movement.correlation_id.as_ref().map(CorrelationId::as_str))
        .bind(movement.purchase_id.map(|id| id.to_string()))
        .bind(movement.reservation_id.map(|id| id.to_string()))
        .bind(movement.reason.as_deref())
        .bind(movement.reference.as_deref())
        .bind(movement.actor.as_deref())
        .bind(movement.transfer_id.map(|id| id.to_string()))
}

/// A movement row as stored.
#[derive(sqlx::FromRow)]
struct MovementRow {
    kind: String,
    delta: i64,
    quantity: i64,
    reserved: i64,
    version: i64,
    at: i64,
    correlation_id: Option<String>,
    purchase_id: Option<String>,
    reservation_id: Option<String>,
    reason: Option<String>,
    reference: Option<String>,
    actor: Option<String>,
    transfer_id: Option<String>,
}

fn movement_from_row(row: MovementRow) -> sqlx::Result<Movement> {
    let MovementRow {
        kind,
        delta,
        quantity,
        reserved,
        version,
        at,
        correlation_id: correlation,
        purchase_id: purchase,
        reservation_id,
        reason,
        reference,
        actor,
        transfer_id,
    } = row;
    Ok(Movement {
        kind: MovementKind::from_name(&kind).ok_or_else(|| corrupt("movement", &kind))?,
        delta,
        quantity: Quantity::new(quantity).map_err(|e| corrupt("movement", e))?,
        reserved: Quantity::new(reserved).map_err(|e| corrupt("movement", e))?,
        version: Version::try_from(version).map_err(|e| corrupt("movement", e))?,
        at: stockmesh_core::from_millis(at),
        correlation_id: correlation.as_deref().and_then(CorrelationId::from_client),
        purchase_id: purchase
            .as_deref()
            .map(PurchaseId::parse)
            .transpose()
            .map_err(|e| corrupt("movement", e))?,
        reservation_id: reservation_id
            .as_deref()
            .map(ReservationId::parse)
            .transpose()
            .map_err(|e| corrupt("movement", e))?,
        reason,
        reference,
        actor,
        transfer_id: transfer_id
            .as_deref()
            .map(TransferId::parse)
            .transpose()
            .map_err(|e| corrupt("movement", e))?,
    })
}

/// One page of an item's ledger, newest first, and how many lines it has in all.
pub async fn list_movements(
    pool: &AnyPool,
    product: &ProductId,
    page: Page,
) -> sqlx::Result<(Vec<Movement>, u64)> {
    let rows = sqlx::query_as::<_, MovementRow>(
        "SELECT kind, delta, quantity, reserved, version, at, correlation_id, purchase_id,
                reservation_id, reason, reference, actor, transfer_id
         FROM movements WHERE product_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
    )
    .bind(product.as_str())
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM movements WHERE product_id = ?")
        .bind(product.as_str())
        .fetch_one(pool)
        .await?;
    let movements = rows
        .into_iter()
        .map(movement_from_row)
        .collect::<sqlx::Result<_>>()?;
    Ok((movements, total.unsigned_abs()))
}

/// Whether the store has already decided request `request`, of any kind.
pub async fn is_decided(
    conn: impl sqlx::AnyExecutor<'_>,
    request: RequestId,
) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM decisions WHERE request_id = ?")
        .bind(request.to_string())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// A decision on a store-decided request, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRow<'a> {
    /// The request decided.
    pub request: RequestId,
    /// Its kind, e.g. `REMOTE_PURCHASE`.
    pub kind: &'static str,
    /// The product it concerns.
    pub product: &'a ProductId,
    /// The units it asked for.
    pub quantity: i64,
    /// `CONFIRMED`, or the rejection reason.
    pub outcome: &'static str,
    /// When it was decided.
    pub at: Timestamp,
    /// The reply event sent to Central (JSON), kept to tell it again when asked.
    pub reply: &'a str,
}

/// The decision's insert, up to its values ([`DECISION_VALUES`] of them).
const INSERT_DECISION: &str =
    "INSERT INTO decisions (request_id, kind, product_id, quantity, outcome, decided_at, reply)";

/// The outbox row's insert and the decision's, sent as one.
static REPLY_AND_DECISION: LazyLock<String> =
    LazyLock::new(|| after_event(INSERT_DECISION, DECISION_VALUES));

/// How many values [`record_decision_and_reply`] binds for the decision.
const DECISION_VALUES: usize = 7;

/// Records a decision and appends the outbox row of its reply `envelope`, bound for `stream`, in
/// one round trip; fails with a unique violation if the request was decided before.
pub async fn record_decision_and_reply(
    conn: &mut AnyConnection,
    decision: DecisionRow<'_>,
    stream: &str,
    envelope: &Envelope,
) -> sqlx::Result<()> {
    Outbox::bind_append(sqlx::query(REPLY_AND_DECISION.as_str()), stream, envelope)
        .bind(decision.request.to_string())
        .bind(decision.kind)
        .bind(decision.product.as_str())
        .bind(decision.quantity)
        .bind(decision.outcome)
        .bind(decision.at.timestamp_millis())
        .bind(decision.reply)
        .execute(conn)
        .await?;
    Ok(())
}

/// The reply event (JSON) sent for a decided request: `None` if undecided, `Some(None)` if
/// decided before replies were kept.
pub async fn decided_reply(
    conn: impl sqlx::AnyExecutor<'_>,
    request: RequestId,
) -> sqlx::Result<Option<Option<String>>> {
    sqlx::query_scalar("SELECT reply FROM decisions WHERE request_id = ?")
        .bind(request.to_string())
        .fetch_optional(conn)
        .await
}

/// Moves `amount` units from available to reserved if that many are available, bumping the
/// version; `None` when the product is missing or short. One guarded statement, like
/// [`take_stock`], so a reservation and a sale can never both take the last unit.
pub async fn reserve_stock(
    conn: &mut AnyConnection,
    product: &ProductId,
    amount: PurchaseQuantity,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "UPDATE items SET quantity = quantity - ?1, reserved = reserved + ?1,
            version = version + 1, updated_at = ?2
         WHERE product_id = ?3 AND quantity >= ?1
         RETURNING product_id, quantity, reserved, version, updated_at",
    )
    .bind(i64::from(amount))
    .bind(at.timestamp_millis())
    .bind(product.as_str())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// Ends `amount` reserved units: a commit takes them off the shelf, a release or an expiry makes
/// them available again. `None` when fewer are reserved (an invariant break).
pub async fn unreserve_stock(
    conn: &mut AnyConnection,
    product: &ProductId,
    amount: PurchaseQuantity,
    end: ReservationEnd,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    let back = match end {
        ReservationEnd::Committed => 0,
        ReservationEnd::Released | ReservationEnd::Expired => i64::from(amount),
    };
    sqlx::query_as::<_, ItemRow>(
        "UPDATE items SET reserved = reserved - ?1, quantity = quantity + ?2,
            version = version + 1, updated_at = ?3
         WHERE product_id = ?4 AND reserved >= ?1
         RETURNING product_id, quantity, reserved, version, updated_at",
    )
    .bind(i64::from(amount))
    .bind(back)
    .bind(at.timestamp_millis())
    .bind(product.as_str())
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// A reservation as this store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRow {
    /// The reservation.
    pub reservation_id: ReservationId,
    /// The product.
    pub product_id: ProductId,
    /// Units held.
    pub quantity: PurchaseQuantity,
    /// `None` while open; how it ended otherwise.
    pub end: Option<ReservationEnd>,
    /// When the store releases it by itself.
    pub expires_at: Timestamp,
}

type StoredReservation = (String, String, i64, String, i64);

fn reservation_from_row(
    (id, product, quantity, state, expires_at): StoredReservation,
) -> sqlx::Result<ReservationRow> {
    Ok(ReservationRow {
        reservation_id: ReservationId::parse(&id).map_err(|e| corrupt("reservation", e))?,
        product_id: ProductId::parse(product).map_err(|e| corrupt("reservation", e))?,
        quantity: PurchaseQuantity::new(quantity).map_err(|e| corrupt("reservation", e))?,
        end: match state.as_str() {
            "OPEN" => None,
            other => Some(
                ReservationEnd::from_name(other).ok_or_else(|| corrupt("reservation", other))?,
            ),
        },
        expires_at: stockmesh_core::from_millis(expires_at),
    })
}

/// Records a reservation as open until `expires_at`.
pub async fn insert_reservation(
    conn: &mut AnyConnection,
    reservation: ReservationId,
    product: &ProductId,
    quantity: PurchaseQuantity,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reservations
            (reservation_id, product_id, quantity, state, created_at, expires_at)
         VALUES (?, ?, ?, 'OPEN', ?, ?)",
    )
    .bind(reservation.to_string())
    .bind(product.as_str())
    .bind(i64::from(quantity))
    .bind(created_at.timestamp_millis())
    .bind(expires_at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// One reservation.
pub async fn find_reservation(
    conn: impl sqlx::AnyExecutor<'_>,
    reservation: ReservationId,
) -> sqlx::Result<Option<ReservationRow>> {
    sqlx::query_as::<_, StoredReservation>(
        "SELECT reservation_id, product_id, quantity, state, expires_at FROM reservations
         WHERE reservation_id = ?",
    )
    .bind(reservation.to_string())
    .fetch_optional(conn)
    .await?
    .map(reservation_from_row)
    .transpose()
}

/// Ends an open reservation; returns whether it was open (so it ends exactly once).
pub async fn end_reservation(
    conn: &mut AnyConnection,
    reservation: ReservationId,
    end: ReservationEnd,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE reservations SET state = ?, ended_at = ?
         WHERE reservation_id = ? AND state = 'OPEN'",
    )
    .bind(end.as_str())
    .bind(at.timestamp_millis())
    .bind(reservation.to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Up to `limit` open reservations whose time ran out by `now`, soonest first.
pub async fn due_reservations(
    conn: impl sqlx::AnyExecutor<'_>,
    now: Timestamp,
    limit: i64,
) -> sqlx::Result<Vec<ReservationRow>> {
    sqlx::query_as::<_, StoredReservation>(
        "SELECT reservation_id, product_id, quantity, state, expires_at FROM reservations
         WHERE state = 'OPEN' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
    )
    .bind(now.timestamp_millis())
    .bind(limit)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(reservation_from_row)
    .collect()
}

/// Adds `delta` units to an item's shelf (negative: takes them), bumping its version; the
/// reserved units are untouched, so a negative delta may take only available units. `None` when
/// the product is missing, or the result would fall below zero available or above the maximum
/// on hand.
pub async fn adjust_stock(
    conn: &mut AnyConnection,
    product: &ProductId,
    delta: i64,
    at: Timestamp,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_as::<_, ItemRow>(
        "UPDATE items SET quantity = quantity + ?1, version = version + 1, updated_at = ?2
         WHERE product_id = ?3 AND quantity + ?1 >= 0 AND quantity + reserved + ?1 <= ?4
         RETURNING product_id, quantity, reserved, version, updated_at",
    )
    .bind(delta)
    .bind(at.timestamp_millis())
    .bind(product.as_str())
    .bind(i64::from(stockmesh_core::quantity::MAX_QUANTITY))
    .fetch_optional(conn)
    .await?
    .map(item_from_row)
    .transpose()
}

/// A store's side of a transfer, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    /// The transfer.
    pub transfer_id: TransferId,
    /// The product.
    pub product_id: ProductId,
    /// Units moved.
    pub quantity: PurchaseQuantity,
    /// The other store.
    pub peer: StoreId,
    /// `SHIPPED`, `AWAITING` or `RECEIVED`.
    pub state: String,
}

/// Records this store's side of a transfer (`OUT` or `IN`) in `state`.
pub async fn insert_transfer(
    conn: &mut AnyConnection,
    direction: &str,
    row: &TransferRow,
    at: Timestamp,
) -> sqlx::Result<()> {
    let received = (row.state == "RECEIVED").then(|| at.timestamp_millis());
    sqlx::query(
        "INSERT INTO transfers
            (transfer_id, direction, product_id, quantity, peer_store, state, at, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(row.transfer_id.to_string())
    .bind(direction)
    .bind(row.product_id.as_str())
    .bind(i64::from(row.quantity))
    .bind(row.peer.as_str())
    .bind(&row.state)
    .bind(at.timestamp_millis())
    .bind(received)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks an incoming transfer awaiting confirmation as received; returns it if it was awaiting.
pub async fn confirm_incoming(
    conn: &mut AnyConnection,
    transfer: TransferId,
    at: Timestamp,
) -> sqlx::Result<Option<TransferRow>> {
    let row: Option<(String, String, i64, String, String)> = sqlx::query_as(
        "UPDATE transfers SET state = 'RECEIVED', received_at = ?
         WHERE transfer_id = ? AND direction = 'IN' AND state = 'AWAITING'
         RETURNING transfer_id, product_id, quantity, peer_store, state",
    )
    .bind(at.timestamp_millis())
    .bind(transfer.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(transfer_from_row).transpose()
}

fn transfer_from_row(
    (id, product, quantity, peer, state): (String, String, i64, String, String),
) -> sqlx::Result<TransferRow> {
    Ok(TransferRow {
        transfer_id: TransferId::parse(&id).map_err(|e| corrupt("transfer", e))?,
        product_id: ProductId::parse(product).map_err(|e| corrupt("transfer", e))?,
        quantity: PurchaseQuantity::new(quantity).map_err(|e| corrupt("transfer", e))?,
        peer: StoreId::parse(peer).map_err(|e| corrupt("transfer", e))?,
        state,
    })
}

/// This store's incoming side of a transfer, if any.
pub async fn find_incoming(
    conn: impl sqlx::AnyExecutor<'_>,
    transfer: TransferId,
) -> sqlx::Result<Option<TransferRow>> {
    let row: Option<(String, String, i64, String, String)> = sqlx::query_as(
        "SELECT transfer_id, product_id, quantity, peer_store, state FROM transfers
         WHERE transfer_id = ? AND direction = 'IN'",
    )
    .bind(transfer.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(transfer_from_row).transpose()
}
