//! Impossible travel in constant work per event. For each traveller the store keeps two sightings:
//! the last located use, and the last one from a country other than that. Those two answer "when
//! was this traveller last seen anywhere but here?" exactly, whatever `here` is: if the last use
//! was elsewhere it is the answer, otherwise the one before it elsewhere is. A detector pass loads
//! the whereabouts of the travellers in its batch once, moves them along event by event, and saves
//! the changed ones with its cursor, so instances never see a half-examined batch.

use std::collections::HashMap;

use crate::clock::Millis;
use crate::domain::events::EventRecord;
use crate::store::StoreError;

use super::Traveller;

/// Which kind of traveller, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TravellerKind {
    Account,
    Credential,
}

impl TravellerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Credential => "credential",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Account, Self::Credential]
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }
}

impl Traveller<'_> {
    fn key(self) -> (TravellerKind, String) {
        match self {
            Self::Account(account) => (TravellerKind::Account, account.to_owned()),
            Self::Credential(credential) => (TravellerKind::Credential, credential.to_owned()),
        }
    }
}

/// One located use: where, when, and the event that says so (the alert's evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub country: String,
    pub at: Millis,
    pub event: String,
}

/// What the detector knows of one traveller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whereabouts {
    pub kind: TravellerKind,
    pub id: String,
    pub last: Sighting,
    /// The latest use from a country other than `last`'s.
    pub elsewhere: Option<Sighting>,
}

impl Whereabouts {
    /// The latest use from anywhere but `country`.
    fn last_seen_away_from(&self, country: &str) -> Option<&Sighting> {
        if self.last.country != country {
            Some(&self.last)
        } else {
            self.elsewhere.as_ref()
        }
    }

    fn moves_to(&mut self, sighting: Sighting) {
        // Events arrive in order; one older than what is known (a clock step back) must not
        // rewind the traveller.
        if sighting.at < self.last.at {
            return;
        }
        if sighting.country == self.last.country {
            self.last = sighting;
        } else {
            self.elsewhere = Some(std::mem::replace(&mut self.last, sighting));
        }
    }
}

/// The whereabouts of the travellers in one batch of events, as they move through it.
#[derive(Default)]
pub struct Travellers {
    known: HashMap<(TravellerKind, String), Whereabouts>,
    moved: Vec<(TravellerKind, String)>,
}

impl Travellers {
    /// Loads what the store knows of every traveller who has a located use in `events`.
    pub async fn of(
        core: &crate::domain::Core,
        events: &[EventRecord],
    ) -> Result<Self, StoreError> {
        let mut wanted: Vec<(TravellerKind, String)> = events
            .iter()
            .filter(|event| event.country.is_some())
            .filter_map(traveller_of)
            .map(Traveller::key)
            .collect();
        wanted.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        wanted.dedup();
        let mut known = HashMap::with_capacity(wanted.len());
        for (kind, id) in wanted {
            if let Some(found) = core.store.whereabouts(kind, &id).await? {
                known.insert((kind, id), found);
            }
        }
        Ok(Self {
            known,
            moved: Vec::new(),
        })
    }

    /// Records a located use and answers the latest use from another country within `window`
    /// before it, if there was one.
    pub fn sighted(
        &mut self,
        traveller: Traveller<'_>,
        here: Sighting,
        window: Millis,
    ) -> Option<Sighting> {
        let key = traveller.key();
        let since = here.at - window;
        let earlier = self.known.get(&key).and_then(|whereabouts| {
            whereabouts
                .last_seen_away_from(&here.country)
                .filter(|away| away.at >= since && away.at <= here.at)
                .cloned()
        });
        match self.known.get_mut(&key) {
            Some(whereabouts) => whereabouts.moves_to(here),
            None => {
                self.known.insert(
                    key.clone(),
                    Whereabouts {
                        kind: key.0,
                        id: key.1.clone(),
                        last: here,
                        elsewhere: None,
                    },
                );
            }
        }
        if !self.moved.contains(&key) {
            self.moved.push(key);
        }
        earlier
    }

    /// The whereabouts that changed in this batch, to be saved with the detector's cursor.
    pub fn moved(&self) -> Vec<&Whereabouts> {
        self.moved
            .iter()
            .filter_map(|key| self.known.get(key))
            .collect()
    }
}

/// Whose travel an event is evidence of: a successful sign-in's account, or the credential a
/// token was issued to.
pub fn traveller_of(event: &EventRecord) -> Option<Traveller<'_>> {
    if event.outcome != "success" {
        return None;
    }
    match event.event_type.as_str() {
        "login" => event.subject.as_deref().map(Traveller::Account),
        "token_issued" if event.actor_kind == "client" => {
            event.actor_id.as_deref().map(Traveller::Credential)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(country: &str, at: Millis) -> Sighting {
        Sighting {
            country: country.into(),
            at,
            event: format!("{country}@{at}"),
        }
    }

    const HOUR: Millis = 3_600_000;

    #[test]
    fn the_latest_use_elsewhere_is_found_whichever_country_comes_next() {
        let mut travellers = Travellers::default();
        let me = Traveller::Credential("c1");
        assert_eq!(travellers.sighted(me, seen("DE", 0), 2 * HOUR), None);
        assert_eq!(travellers.sighted(me, seen("DE", 10), 2 * HOUR), None);
        assert_eq!(
            travellers.sighted(me, seen("JP", 20), 2 * HOUR),
            Some(seen("DE", 10))
        );
        // Back in Japan: the last use elsewhere is still Germany's.
        assert_eq!(
            travellers.sighted(me, seen("JP", 30), 2 * HOUR),
            Some(seen("DE", 10))
        );
        // A third country: Japan was the last use anywhere.
        assert_eq!(
            travellers.sighted(me, seen("FR", 40), 2 * HOUR),
            Some(seen("JP", 30))
        );
        assert_eq!(travellers.moved().len(), 1);
    }

    #[test]
    fn uses_older_than_the_window_are_not_travel() {
        let mut travellers = Travellers::default();
        let me = Traveller::Account("u1");
        travellers.sighted(me, seen("DE", 0), 2 * HOUR);
        assert_eq!(travellers.sighted(me, seen("JP", 3 * HOUR), 2 * HOUR), None);
        assert_eq!(
            travellers.sighted(me, seen("DE", 3 * HOUR + 5), 2 * HOUR),
            Some(seen("JP", 3 * HOUR))
        );
    }

    #[test]
    fn an_account_and_a_credential_of_the_same_id_are_different_travellers() {
        let mut travellers = Travellers::default();
        travellers.sighted(Traveller::Account("x"), seen("DE", 0), 2 * HOUR);
        assert_eq!(
            travellers.sighted(Traveller::Credential("x"), seen("JP", 1), 2 * HOUR),
            None
        );
    }
}
