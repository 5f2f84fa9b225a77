//! Keyset paging: a page that starts just after the last key of the previous one. Unlike an
//! offset, which the database walks and discards row by row, a key is found through the index
//! that orders the list, so the thousandth page costs what the first does.
//!
//! A cursor travels as an opaque string (the `after` query parameter, the `X-Next-Cursor` header):
//! clients pass back what they were given and read nothing into it.

use crate::ids::{ProductId, StoreId};
use crate::page::Page;

/// A list's sort key, written into a cursor and read back from one.
pub trait Cursor: Sized {
    /// What a valid cursor of this list looks like, for the message that refuses a bad one.
    const RULE: &'static str;

    /// The cursor that continues after this key.
    fn to_cursor(&self) -> String;

    /// The key a cursor names; `None` for anything [`Cursor::to_cursor`] could not have written.
    fn from_cursor(text: &str) -> Option<Self>;
}

/// A store's items are ordered by product id: the cursor is the last product id.
impl Cursor for ProductId {
    const RULE: &'static str = "a productId (1 to 64 characters of A-Za-z0-9._-)";

    fn to_cursor(&self) -> String {
        self.as_str().to_owned()
    }

    fn from_cursor(text: &str) -> Option<Self> {
        ProductId::parse(text).ok()
    }
}

/// The key of Central's view: items are ordered by store, then product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewKey {
    /// The item's store.
    pub store: StoreId,
    /// The item's product.
    pub product: ProductId,
}

/// Separates the two ids in a view cursor; no id may contain it.
const VIEW_KEY_SEPARATOR: char = '~';

impl Cursor for ViewKey {
    const RULE: &'static str = "storeId~productId, as X-Next-Cursor gave it";

    fn to_cursor(&self) -> String {
        format!("{}{VIEW_KEY_SEPARATOR}{}", self.store, self.product)
    }

    fn from_cursor(text: &str) -> Option<Self> {
        let (store, product) = text.split_once(VIEW_KEY_SEPARATOR)?;
        Some(ViewKey {
            store: StoreId::parse(store).ok()?,
            product: ProductId::parse(product).ok()?,
        })
    }
}

/// Where a page of a keyed list starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seek<K> {
    /// A numbered page (`?page`): offset paging, kept for existing clients.
    Page(Page),
    /// The `size` items after `key` (`?after`).
    After {
        /// The last key of the previous page.
        key: K,
        /// Items per page, `1..=1000`.
        size: u32,
    },
}

impl<K> Seek<K> {
    /// Items per page.
    pub fn size(&self) -> u32 {
        match self {
            Seek::Page(page) => page.size,
            Seek::After { size, .. } => *size,
        }
    }

    /// Rows to fetch: one more than the page holds, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.size()) + 1
    }

    /// Rows to skip (zero after a key).
    pub fn offset(&self) -> i64 {
        match self {
            Seek::Page(page) => page.offset(),
            Seek::After { .. } => 0,
        }
    }

    /// The key to start after, if any.
    pub fn key(&self) -> Option<&K> {
        match self {
            Seek::Page(_) => None,
            Seek::After { key, .. } => Some(key),
        }
    }
}

/// One page of a keyed list, the total, and whether more items follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice<T> {
    /// The items on this page, in key order.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: u64,
    /// Whether items follow the last one of this page.
    pub more: bool,
}

impl<T> Slice<T> {
    /// A page from the rows a query fetched with [`Seek::fetch`]: the extra row, if it came, only
    /// says that more follow.
    pub fn from_rows(mut rows: Vec<T>, size: u32, total: u64) -> Self {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        Slice {
            items: rows,
            total,
            more,
        }
    }

    /// The cursor that continues after this page, when more items follow.
    pub fn next<K: Cursor>(&self, key: impl Fn(&T) -> K) -> Option<String> {
        if self.more {
            self.items.last().map(|last| key(last).to_cursor())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(store: &str, product: &str) -> ViewKey {
        ViewKey {
            store: StoreId::parse(store).expect("valid"),
            product: ProductId::parse(product).expect("valid"),
        }
    }

    #[test]
    fn a_view_key_survives_its_cursor() {
        let k = key("store-1", "sku.9_x");
        assert_eq!(k.to_cursor(), "store-1~sku.9_x");
        assert_eq!(ViewKey::from_cursor(&k.to_cursor()), Some(k));
    }

    #[test]
    fn malformed_cursors_name_no_key() {
        for bad in [
            "",
            "store-1",
            "store-1~",
            "~sku",
            "a~b~c",
            "..~sku",
            "st re~sku",
        ] {
            assert_eq!(ViewKey::from_cursor(bad), None, "{bad:?}");
        }
        for bad in ["", "..", "a~b", &"x".repeat(65)] {
            assert_eq!(ProductId::from_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_extra_row_means_more_and_is_not_returned() {
        let slice = Slice::from_rows(vec![1, 2, 3], 2, 10);
        assert_eq!((slice.items.as_slice(), slice.more), (&[1, 2][..], true));
        let last = Slice::from_rows(vec![1, 2], 2, 2);
        assert!(!last.more);
        assert_eq!(
            last.next(|i: &i32| ProductId::parse(i.to_string()).expect("valid")),
            None
        );
        assert_eq!(
            slice
                .next(|i: &i32| ProductId::parse(format!("p{i}")).expect("valid"))
                .as_deref(),
            Some("p2")
        );
    }
}
