//! Where each traveller was last seen, for the impossible-travel detector
//! (`domain::alerts::travel`). Saved only with the detector cursor's move, in its transaction.

use sqlx::{Any, Transaction};

use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::alerts::travel::{Sighting, TravellerKind, Whereabouts};

/// What a detector pass learnt of travellers: the whereabouts it moved, and the time before which
/// a last sighting can no longer count as travel (those rows are forgotten).
pub struct WhereaboutsUpdate<'a> {
    pub moved: Vec<&'a Whereabouts>,
    pub forget_before: Millis,
}

type Row = (
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

impl Store {
    pub async fn whereabouts(
        &self,
        kind: TravellerKind,
        id: &str,
    ) -> Result<Option<Whereabouts>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT last_country, last_at, last_event, elsewhere_country, elsewhere_at, elsewhere_event \
             FROM traveller_whereabouts WHERE traveller_kind = $1 AND traveller_id = $2",
        )
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(
            |(
                last_country,
                last_at,
                last_event,
                elsewhere_country,
                elsewhere_at,
                elsewhere_event,
            )| {
                Whereabouts {
                    kind,
                    id: id.to_owned(),
                    last: Sighting {
                        country: last_country,
                        at: last_at,
                        event: last_event,
                    },
                    elsewhere: match (elsewhere_country, elsewhere_at, elsewhere_event) {
                        (Some(country), Some(at), Some(event)) => {
                            Some(Sighting { country, at, event })
                        }
                        _ => None,
                    },
                }
            },
        ))
    }
}

pub(crate) async fn save_whereabouts_tx(
    tx: &mut Transaction<'_, Any>,
    update: &WhereaboutsUpdate<'_>,
) -> Result<(), StoreError> {
    for whereabouts in &update.moved {
        let elsewhere = whereabouts.elsewhere.as_ref();
        sqlx::query(
            "INSERT INTO traveller_whereabouts (traveller_kind, traveller_id, last_country, last_at, \
             last_event, elsewhere_country, elsewhere_at, elsewhere_event) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (traveller_kind, traveller_id) DO UPDATE SET \
             last_country = excluded.last_country, last_at = excluded.last_at, \
             last_event = excluded.last_event, elsewhere_country = excluded.elsewhere_country, \
             elsewhere_at = excluded.elsewhere_at, elsewhere_event = excluded.elsewhere_event",
        )
        .bind(whereabouts.kind.as_str())
        .bind(&whereabouts.id)
        .bind(&whereabouts.last.country)
        .bind(whereabouts.last.at)
        .bind(&whereabouts.last.event)
        .bind(elsewhere.map(|s| s.country.as_str()))
        .bind(elsewhere.map(|s| s.at))
        .bind(elsewhere.map(|s| s.event.as_str()))
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("DELETE FROM traveller_whereabouts WHERE last_at < $1")
        .bind(update.forget_before)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
