//! Keyset paging of `/inventory`: `?after=<cursor>` continues from the `X-Next-Cursor` of the
//! previous page, so a walk neither skips nor repeats items while the list changes under it.

use std::collections::BTreeSet;

use stockmesh_testkit::http::{Api, Reply};
use stockmesh_testkit::spawn_store;

fn ids(reply: &Reply) -> Vec<String> {
    reply
        .json()
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|i| i["productId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn create(api: &Api, ids: impl IntoIterator<Item = String>) {
    for id in ids {
        api.create_item(&id).await.expect(201);
    }
}

#[tokio::test]
async fn paging_with_after_visits_every_item_once_in_order_while_items_are_added() {
    let store = spawn_store().await;
    let mut existing: BTreeSet<u32> = (0..20).map(|i| i * 3).collect();
    create(&store.api, existing.iter().map(|n| format!("p{n:03}"))).await;

    // Between pages, items land just behind the walk (never to be seen) and ahead of it (to be
    // seen once): the walk must show every item present at the start and every one added ahead.
    let mut expected: BTreeSet<u32> = existing.clone();
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/inventory?size=4".to_owned();
    loop {
        let reply = store.api.get(&path).await.expect(200);
        seen.extend(ids(&reply));
        let last: u32 = seen
            .last()
            .and_then(|id| id.trim_start_matches('p').parse().ok())
            .expect("a page of items");
        let Some(next) = reply.header("x-next-cursor") else {
            break;
        };
        for added in [last.saturating_sub(1), last + 2, last + 4] {
            if added < 100 && existing.insert(added) {
                create(&store.api, [format!("p{added:03}")]).await;
                if added > last {
                    expected.insert(added);
                }
            }
        }
        // The first page was asked for without a cursor: its links number pages (as before).
        let link = reply.header("link").expect("a Link header");
        assert!(
            !path.contains("after=")
                || link.contains(&format!("</inventory?after={next}&size=4>; rel=\"next\"")),
            "{link}"
        );
        path = format!("/inventory?after={next}&size=4");
    }

    let expected: Vec<String> = expected.iter().map(|n| format!("p{n:03}")).collect();
    assert_eq!(seen, expected, "every item once, in product order");
    assert!(
        existing.len() > expected.len(),
        "some items landed behind the walk"
    );
}

#[tokio::test]
async fn after_the_last_item_the_page_is_empty_and_has_no_next() {
    let store = spawn_store().await;
    create(&store.api, ["a".to_owned(), "b".to_owned()]).await;
    let first = store.api.get("/inventory?size=2").await.expect(200);
    assert_eq!(ids(&first), ["a", "b"]);
    assert_eq!(first.header("x-next-cursor"), None, "the list ends here");
    let after = store.api.get("/inventory?after=b").await.expect(200);
    assert_eq!(ids(&after), Vec::<String>::new());
    assert_eq!(after.header("x-total-count"), Some("2"));
    assert_eq!(
        after.header("link"),
        Some("</inventory?size=20>; rel=\"first\"")
    );
    // A cursor need not name an item that exists: the list continues after it.
    let between = store.api.get("/inventory?after=a0").await.expect(200);
    assert_eq!(ids(&between), ["b"]);
}

#[tokio::test]
async fn a_malformed_cursor_is_a_400_that_names_after() {
    let store = spawn_store().await;
    for bad in ["", "..", "a%20b", "store-1~sku-1", &"x".repeat(65)] {
        let reply = store
            .api
            .get(&format!("/inventory?after={bad}"))
            .await
            .expect(400);
        assert_eq!(reply.content_type(), "application/problem+json");
        let detail = reply.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            detail.starts_with("after must be the cursor of a previous page"),
            "{bad:?}: {detail}"
        );
    }
}

#[tokio::test]
async fn after_together_with_page_is_refused_with_a_400() {
    let store = spawn_store().await;
    create(&store.api, ["a".to_owned()]).await;
    let reply = store.api.get("/inventory?page=0&after=a").await.expect(400);
    let detail = reply.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.starts_with("after cannot be combined with page"),
        "{detail}"
    );
}
