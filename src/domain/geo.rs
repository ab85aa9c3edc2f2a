//! Where a request came from, country-level: a trusted proxy's country header when one is
//! configured, else a MaxMind-format GeoIP database. Unknown is a valid answer — nothing ever
//! raises an alert from an unknown location alone.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, geoip2};

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error(
        "cannot open the GeoIP database {path}: {cause} (set geoip_optional = true to run without locations)"
    )]
    Unreadable { path: String, cause: String },
}

#[derive(Default)]
pub struct Locator {
    reader: Option<Reader<Vec<u8>>>,
    /// A header set by a trusted proxy (e.g. `CF-IPCountry`), read only when configured.
    header: Option<String>,
}

impl Locator {
    /// Opens the database at `path`. A missing or corrupt file is an error unless `optional`, when
    /// the service runs without locations and says so.
    pub fn open(
        path: Option<&Path>,
        optional: bool,
        header: Option<String>,
    ) -> Result<Self, GeoError> {
        let reader = match path {
            None => None,
            Some(path) => match Reader::open_readfile(path) {
                Ok(reader) => Some(reader),
                Err(cause) if optional => {
                    tracing::warn!(path = %path.display(), error = %cause,
                        "GeoIP database unusable; running without locations");
                    None
                }
                Err(cause) => {
                    return Err(GeoError::Unreadable {
                        path: path.display().to_string(),
                        cause: cause.to_string(),
                    });
                }
            },
        };
        Ok(Self { reader, header })
    }

    /// The configured trusted-proxy header, if any.
    pub fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// ISO 3166-1 alpha-2 code of `ip`, when the database knows it.
    pub fn country_of(&self, ip: IpAddr) -> Option<String> {
        let reader = self.reader.as_ref()?;
        let found = reader.lookup(ip).ok()?;
        let country: geoip2::Country<'_> = found.decode().ok()??;
        country.country.iso_code.map(str::to_owned)
    }
}

/// A two-letter country code as a proxy header sends it (`XX` and junk mean unknown).
pub fn parse_country(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    (code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) && code != "XX")
        .then_some(code)
}
