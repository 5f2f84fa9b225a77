//! Every SQL statement on Central's view tables (stores and their items). Purchases have their
//! own repository beside their flow.

use sqlx::{AnyConnection, AnyExecutor, AnyPool};
use stockmesh_bus::sql::SqlBuilder;
use stockmesh_core::{
    Item, ItemState, ProductId, Quantity, Stock, StoreId, Timestamp, Version, from_millis,
};
use stockmesh_core::{Seek, Slice, ViewKey};

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("corrupt {what} row: {error}").into())
}

/// A view row: `(store_id, product_id, quantity (available), reserved, version, updated_at)`.
type ItemRow = (String, String, i64, i64, i64, i64);

fn item_from_row(
    (store, product, quantity, reserved, version, updated_at): ItemRow,
) -> sqlx::Result<Item> {
    let quantity = Quantity::new(quantity).map_err(|e| corrupt("item", e))?;
    let reserved = Quantity::new(reserved).map_err(|e| corrupt("item", e))?;
    Ok(Item {
        store_id: StoreId::parse(store).map_err(|e| corrupt("item", e))?,
        product_id: ProductId::parse(product).map_err(|e| corrupt("item", e))?,
        quantity,
        states: Stock::new(quantity, reserved),
        version: Version::try_from(version).map_err(|e| corrupt("item", e))?,
        updated_at: from_millis(updated_at),
    })
}

/// Registers a store; returns whether it was new to Central.
pub async fn insert_store(
    conn: &mut AnyConnection,
    store: &StoreId,
    at: Timestamp,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO stores (store_id, first_seen) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(store.as_str())
    .bind(at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that an event from `store` was applied at `at`, registering the store if needed.
pub async fn touch_store(
    conn: &mut AnyConnection,
    store: &StoreId,
    at: Timestamp,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO stores (store_id, first_seen, last_event_at) VALUES ($1, $2, $2)
         ON CONFLICT (store_id) DO UPDATE SET last_event_at = $2",
    )
    .bind(store.as_str())
    .bind(at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether Central knows `store`.
pub async fn store_exists(pool: impl AnyExecutor<'_>, store: &StoreId) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM stores WHERE store_id = $1")
        .bind(store.as_str())
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

/// A store as `GET /stores` lists it, before liveness is added.
#[derive(Debug, Clone)]
pub struct StoreRow {
    /// The store.
    pub store_id: StoreId,
    /// Items Central holds for it.
    pub items: i64,
    /// When its last event was applied.
    pub last_event_at: Option<Timestamp>,
}

/// Every known store with its item count (from the summary rows the triggers keep: counting
/// the items themselves made start-up and `GET /stores` walk the whole view).
pub async fn list_stores(pool: &AnyPool) -> sqlx::Result<Vec<StoreRow>> {
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT s.store_id, COALESCE(m.items, 0), s.last_event_at
         FROM stores s LEFT JOIN store_summary m ON m.store_id = s.store_id
         ORDER BY s.store_id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(store, items, last)| {
            Ok(StoreRow {
                store_id: StoreId::parse(store).map_err(|e| corrupt("store", e))?,
                items,
                last_event_at: last.map(from_millis),
            })
        })
        .collect()
}

/// Applies many item states, each only if newer than the view's, in one statement per 400
/// items. The caller passes at most one state per (store, product): the newest of its batch.
/// Returns the (store, product) pairs it applied (those newer than the view's).
pub async fn apply_items(
    conn: &mut AnyConnection,
    states: &[(&StoreId, &ItemState)],
    received_at: Timestamp,
) -> sqlx::Result<Vec<(String, String)>> {
    let mut applied = Vec::new();
    for chunk in states.chunks(400) {
        let mut upsert = SqlBuilder::new(
            "INSERT INTO items
                (store_id, product_id, quantity, reserved, version, updated_at, received_at) ",
        );
        upsert.push_values(chunk, |row, (store, state)| {
            row.push_bind(store.as_str().to_owned())
                .push_bind(state.product_id.as_str().to_owned())
                .push_bind(i64::from(state.quantity))
                .push_bind(i64::from(state.reserved))
                .push_bind(i64::from(state.version))
                .push_bind(state.updated_at.timestamp_millis())
                .push_bind(received_at.timestamp_millis());
        });
        upsert.push(
            " ON CONFLICT (store_id, product_id) DO UPDATE SET
                quantity = excluded.quantity, reserved = excluded.reserved,
                version = excluded.version,
                updated_at = excluded.updated_at, received_at = excluded.received_at
             WHERE excluded.version > items.version
             RETURNING store_id, product_id",
        );
        applied.extend(
            upsert
                .query_as::<(String, String)>()?
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(applied)
}

/// One item of the view.
pub async fn find_item(
    pool: impl AnyExecutor<'_>,
    store: &StoreId,
    product: &ProductId,
) -> sqlx::Result<Option<Item>> {
    sqlx::query_as::<_, ItemRow>(
        "SELECT store_id, product_id, quantity, reserved, version, updated_at FROM items
         WHERE store_id = $1 AND product_id = $2",
    )
    .bind(store.as_str())
    .bind(product.as_str())
    .fetch_optional(pool)
    .await?
    .map(item_from_row)
    .transpose()
}

/// One page of the view in (store, product) order, optionally narrowed to a store and/or a
/// product: a numbered page, or the items after a key. Each narrowing gets the statement its index
/// can serve (the primary key, or `items_by_product`), so a key is found by a search rather than
/// a walk; the total comes from the per-store summary rows the triggers keep (counted through
/// `items_by_product` when narrowed to a product, at most one row per store).
pub async fn list_items(
    pool: &AnyPool,
    store: Option<&StoreId>,
    product: Option<&ProductId>,
    seek: &Seek<ViewKey>,
) -> sqlx::Result<Slice<Item>> {
    let Some(query) = page_query(
        "SELECT store_id, product_id, quantity, reserved, version, updated_at FROM items WHERE ",
        store,
        product,
        seek,
    ) else {
        // A store's items all come before a cursor in a later store.
        let total = match store {
            Some(store) => store_total(pool, store).await?,
            None => 0,
        };
        return Ok(Slice {
            items: Vec::new(),
            total: total.unsigned_abs(),
            more: false,
        });
    };
    let rows = query.query_as::<ItemRow>()?.fetch_all(pool).await?;
    let items = rows
        .into_iter()
        .map(item_from_row)
        .collect::<sqlx::Result<_>>()?;
    let total = match (store, product) {
        (None, None) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COALESCE(SUM(items), 0) AS BIGINT) FROM store_summary",
            )
            .fetch_one(pool)
            .await?
        }
        (Some(store), None) => store_total(pool, store).await?,
        (store, Some(product)) => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM items WHERE product_id = $1 AND ($2 IS NULL OR store_id = $2)",
        )
        .bind(product.as_str())
        .bind(store.map(StoreId::as_str))
        .fetch_one(pool)
        .await?,
    };
    Ok(Slice::from_rows(items, seek.size(), total.unsigned_abs()))
}

/// The statement of one page of the view, `select` first; `None` when the page is empty
/// without asking (narrowed to a store, after a key in a later store).
fn page_query<'a>(
    select: &str,
    store: Option<&'a StoreId>,
    product: Option<&'a ProductId>,
    seek: &'a Seek<ViewKey>,
) -> Option<SqlBuilder> {
    let key = seek.key();
    let mut query = SqlBuilder::new(select);
    match (store, product) {
        (Some(store), None) => {
            // Within one store the key is a product bound: after an earlier store's key every item
            // of this one follows; after a later store's, none does. (A row value here would let
            // SQLite seek only to the store, then walk its items.)
            let bound = match key {
                Some(key) if key.store == *store => key.product.as_str(),
                Some(key) if key.store > *store => return None,
                _ => "",
            };
            query
                .push("store_id = ")
                .push_bind(store.as_str())
                .push(" AND product_id > ")
                .push_bind(bound);
        }
        (store, product) => {
            if let Some(store) = store {
                query
                    .push("store_id = ")
                    .push_bind(store.as_str())
                    .push(" AND ");
            }
            if let Some(product) = product {
                query
                    .push("product_id = ")
                    .push_bind(product.as_str())
                    .push(" AND ");
            }
            // No id is empty: from the start of the list, every key follows ('', '').
            query
                .push("(store_id, product_id) > (")
                .push_bind(key.map_or("", |k| k.store.as_str()))
                .push(", ")
                .push_bind(key.map_or("", |k| k.product.as_str()))
                .push(")");
        }
    }
    query
        .push(" ORDER BY store_id, product_id LIMIT ")
        .push_bind(seek.fetch())
        .push(" OFFSET ")
        .push_bind(seek.offset());
    Some(query)
}

/// How many items the view holds for `store` (its summary row; none: zero).
async fn store_total(pool: &AnyPool, store: &StoreId) -> sqlx::Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT items FROM store_summary WHERE store_id = $1")
            .bind(store.as_str())
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// Fills an empty view with `stores` stores `store-000`, `store-001`, … of `per_store` synthetic
/// items `sku-00000000`, … each (quantity `i % 1000`, version 1), in key order and in one
/// statement: a catalogue for benchmarks, through the real schema and its triggers. The numbers
/// are zero-padded with `substr` and `||`, which both engines have (`printf` and `lpad` are not).
pub async fn fill_catalogue(
    conn: &mut AnyConnection,
    stores: u32,
    per_store: u64,
    at: Timestamp,
) -> sqlx::Result<()> {
    let per_store = i64::try_from(per_store).unwrap_or(i64::MAX);
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
         INSERT INTO stores (store_id, first_seen)
         SELECT 'store-' || substr('000' || i, length('000' || i) - 2), $2 FROM n",
    )
    .bind(i64::from(stores))
    .bind(at.timestamp_millis())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1 * $2)
         INSERT INTO items (store_id, product_id, quantity, version, updated_at, received_at)
         SELECT 'store-' || substr('000' || (i / $2), length('000' || (i / $2)) - 2),
                'sku-' || substr('00000000' || (i % $2), length('00000000' || (i % $2)) - 7),
                i % 1000, 1, $3, $3
         FROM n",
    )
    .bind(i64::from(stores))
    .bind(per_store)
    .bind(at.timestamp_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// The database's identity (random, made once by its migrations; see `crate::claim`).
pub async fn identity(pool: &AnyPool) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT id FROM central_identity")
        .fetch_one(pool)
        .await
}

/// Every store's figure for `product`, with when Central received it.
pub async fn product_across_stores(
    pool: &AnyPool,
    product: &ProductId,
) -> sqlx::Result<Vec<(Item, Timestamp)>> {
    let rows: Vec<(String, String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT store_id, product_id, quantity, reserved, version, updated_at, received_at
         FROM items
         WHERE product_id = $1 ORDER BY store_id",
    )
    .bind(product.as_str())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(s, p, q, r, v, u, received)| {
            Ok((item_from_row((s, p, q, r, v, u))?, from_millis(received)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The view's pages by cursor: the right items under every narrowing, each found through an
    //! index search, never a scan.

    use stockmesh_bus::{Database, DbConfig};
    use stockmesh_core::{Cursor, Page};

    use super::*;

    /// A narrowing, a cursor, the keys of the page after it, and the narrowed total.
    type Case<'a> = (
        Option<&'a StoreId>,
        Option<&'a ProductId>,
        &'a str,
        &'a [&'a str],
        u64,
    );

    fn after(cursor: &str, size: u32) -> Seek<ViewKey> {
        Seek::After {
            key: ViewKey::from_cursor(cursor).expect("valid"),
            size,
        }
    }

    fn keys(slice: &Slice<Item>) -> Vec<String> {
        slice
            .items
            .iter()
            .map(|i| format!("{}~{}", i.store_id, i.product_id))
            .collect()
    }

    #[tokio::test]
    async fn every_narrowing_pages_by_cursor_through_an_index_search() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(
            &DbConfig::new(dir.path().join("c.db").display().to_string()),
            &crate::MIGRATIONS,
        )
        .await
        .expect("db");
        crate::fill_catalogue(&db, 3, 4).await.expect("filled");
        let store = StoreId::parse("store-001").expect("valid");
        let product = ProductId::parse("sku-00000002").expect("valid");
        let cases: [Case<'_>; 6] = [
            (
                None,
                None,
                "store-000~sku-00000003",
                &["store-001~sku-00000000", "store-001~sku-00000001"],
                12,
            ),
            (
                Some(&store),
                None,
                "store-000~sku-00000003",
                &["store-001~sku-00000000", "store-001~sku-00000001"],
                4,
            ),
            (
                Some(&store),
                None,
                "store-001~sku-00000002",
                &["store-001~sku-00000003"],
                4,
            ),
            (Some(&store), None, "store-002~sku-00000000", &[], 4),
            (
                None,
                Some(&product),
                "store-000~sku-00000002",
                &["store-001~sku-00000002", "store-002~sku-00000002"],
                3,
            ),
            (
                Some(&store),
                Some(&product),
                "store-001~sku-00000001",
                &["store-001~sku-00000002"],
                1,
            ),
        ];
        for (store, product, cursor, expected, total) in cases {
            let seek = after(cursor, 2);
            let slice = list_items(&db.reader, store, product, &seek)
                .await
                .expect("listed");
            assert_eq!(
                (keys(&slice), slice.total),
                (expected.iter().map(|k| (*k).to_owned()).collect(), total),
                "{store:?} {product:?} after {cursor}"
            );
            if let Some(query) = page_query(
                "EXPLAIN QUERY PLAN SELECT * FROM items WHERE ",
                store,
                product,
                &seek,
            ) {
                let plan: Vec<(i64, i64, i64, String)> = query
                    .query_as()
                    .expect("bound")
                    .fetch_all(&db.reader)
                    .await
                    .expect("plan");
                let plan: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
                assert!(
                    plan.iter()
                        .all(|step| step.starts_with("SEARCH items USING")),
                    "{store:?} {product:?}: {plan:?}"
                );
            }
        }
        let stores = list_stores(&db.reader).await.expect("stores");
        assert_eq!(
            stores.iter().map(|s| s.items).collect::<Vec<_>>(),
            [4, 4, 4]
        );
        // Numbered pages still count from the start.
        let page = Seek::Page(Page { number: 1, size: 5 });
        let slice = list_items(&db.reader, None, None, &page)
            .await
            .expect("listed");
        assert_eq!(
            keys(&slice).first().map(String::as_str),
            Some("store-001~sku-00000001")
        );
        assert!(slice.more);
    }
}
