//! Keyset paging shared by the lists: a cursor is `created_at.id` of the last row of a page.

use crate::clock::Millis;

/// A cursor this crate gave out, as `(created_at, id)`; anything else is `None`.
pub(crate) fn parse_cursor(raw: &str) -> Option<(i64, &str)> {
    let (time, id) = raw.split_once('.')?;
    Some((time.parse::<i64>().ok()?, id))
}

/// Cuts a page fetched with one row too many to `limit`, and names the cursor after its last row.
pub(crate) fn next_cursor<T>(
    rows: &mut Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (Millis, &str),
) -> Option<String> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    if !more {
        return None;
    }
    rows.last().map(|row| {
        let (time, id) = key(row);
        format!("{time}.{id}")
    })
}
