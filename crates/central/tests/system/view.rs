//! Central's batched apply: duplicates within a batch count once, an older version never
//! regresses the view, a reply resolves its purchase once.

use std::sync::Arc;

use stockmesh_bus::{Database, DbConfig, Handler};
use stockmesh_central::repository as repo;
use stockmesh_central::view::ViewUpdater;
use stockmesh_central::waiters::Waiters;
use stockmesh_core::{
    Envelope, Event, ItemState, ProductId, Quantity, RemotePurchaseConfirmed, StoreId, Version,
};

fn state(product: &str, quantity: i64, version: u64) -> ItemState {
    let mut v = Version::FIRST;
    for _ in 1..version {
        v = v.next();
    }
    ItemState {
        product_id: ProductId::parse(product).expect("valid"),
        quantity: Quantity::new(quantity).expect("valid"),
        version: v,
        updated_at: stockmesh_core::now(),
    }
}

#[tokio::test]
async fn a_batch_applies_the_newest_state_once_whatever_its_order_and_repeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(
        &DbConfig::new(dir.path().join("c.db").display().to_string()),
        &stockmesh_central::MIGRATIONS,
    )
    .await
    .expect("db");
    let waiters = Arc::new(Waiters::default());
    let view = ViewUpdater::new("central-test", db.clone(), waiters);
    let store = StoreId::parse("s1").expect("valid");
    let update = |s: ItemState| Envelope::new(store.clone(), Event::InventoryItemUpdated(s), None);

    let v3 = update(state("p", 7, 3));
    let batch = vec![
        update(state("p", 10, 2)),
        v3.clone(),
        v3.clone(),
        update(state("p", 99, 1)),
        update(state("q", 4, 1)),
    ];
    view.handle(&batch).await.expect("applied");
    let p = repo::find_item(&db.reader, &store, &ProductId::parse("p").expect("valid"))
        .await
        .expect("query")
        .expect("item");
    assert_eq!((p.quantity.get(), p.version.get()), (7, 3));

    // A later batch with an older version and a repeat of an applied event changes nothing.
    view.handle(&[update(state("p", 1, 2)), v3])
        .await
        .expect("applied");
    let p = repo::find_item(&db.reader, &store, &ProductId::parse("p").expect("valid"))
        .await
        .expect("query")
        .expect("item");
    assert_eq!((p.quantity.get(), p.version.get()), (7, 3));
    let (items, total) = repo::list_items(
        &db.reader,
        Some(&store),
        None,
        stockmesh_http::Page {
            number: 0,
            size: 10,
        },
    )
    .await
    .expect("list");
    assert_eq!((items.len(), total), (2, 2));

    // A reply for a purchase Central does not know still updates the item, by version.
    let reply = Envelope::new(
        store.clone(),
        Event::RemotePurchaseConfirmed(RemotePurchaseConfirmed {
            purchase_id: stockmesh_core::PurchaseId::new(),
            quantity: stockmesh_core::PurchaseQuantity::new(2).expect("valid"),
            item: state("p", 5, 4),
        }),
        None,
    );
    view.handle(&[reply]).await.expect("applied");
    let p = repo::find_item(&db.reader, &store, &ProductId::parse("p").expect("valid"))
        .await
        .expect("query")
        .expect("item");
    assert_eq!((p.quantity.get(), p.version.get()), (5, 4));
}
