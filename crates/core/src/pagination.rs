//! Offset pagination for list operations.
//!
//! Schematic's list operations take `limit` (default 100) and `offset` (default 0) and return a
//! plain array; there is no cursor or total. A page shorter than the limit is the last one.

use crate::operation::Operation;

/// The page size the API uses when `limit` is not sent.
pub const DEFAULT_PAGE_LIMIT: i64 = 100;

/// A list operation paged by `limit`/`offset`, whose output is a `Vec` of items.
///
/// ```
/// use flagwire_core::pagination::Paginated;
/// use flagwire_core::schematic::companies::ListCompanies;
///
/// let first = ListCompanies::new().limit(2);
/// // The first page came back full, so there may be more.
/// let next = first.next_page(2).expect("a full page has a successor");
/// assert_eq!(next.page_offset(), 2);
/// // A short page is the last one.
/// assert!(next.next_page(1).is_none());
/// ```
pub trait Paginated: Operation<Output = Vec<Self::Item>> + Clone {
    /// One element of a page.
    type Item;

    /// The requested page size, if set.
    fn page_limit(&self) -> Option<i64>;

    /// The requested offset (0 when unset).
    fn page_offset(&self) -> i64;

    /// Sets the offset of the page to fetch.
    fn set_page_offset(&mut self, offset: i64);

    /// The request for the page after one that returned `page_len` items, or `None` when that
    /// page was the last one (shorter than the limit, or empty).
    fn next_page(&self, page_len: usize) -> Option<Self> {
        let limit = self.page_limit().unwrap_or(DEFAULT_PAGE_LIMIT);
        let len = i64::try_from(page_len).ok()?;
        if len == 0 || len < limit {
            return None;
        }
        let mut next = self.clone();
        next.set_page_offset(self.page_offset().checked_add(len)?);
        Some(next)
    }
}
