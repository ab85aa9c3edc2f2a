//! Tenants: the API-management company's customers. Each has a URL slug, a brand colour (the console
//! computes a readable text colour), an optional logo, and a status.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::approvals::{self, Action, ApprovalError, Change};
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::principal::Principal;
use crate::domain::rbac::{Permission, may};
use crate::domain::users::User;
use crate::store::StoreError;
use crate::store::tenants::TenantScope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub name: String,
    pub colour: BrandColour,
    pub status: TenantStatus,
    pub has_logo: bool,
    pub created_at: Millis,
    /// DPoP proofs at its token endpoint must carry a nonce the server handed out (RFC 9449 §8).
    pub dpop_nonce: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error(
        "Use 3 to 40 characters: lower-case letters, digits and single hyphens, starting with a letter."
    )]
    Malformed,
}

/// The tenant's name in URLs: `/t/{slug}/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let slug = raw.trim();
        let well_formed = (3..=40).contains(&slug.len())
            && slug.starts_with(|c: char| c.is_ascii_lowercase())
            && !slug.ends_with('-')
            && !slug.contains("--")
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if well_formed {
            Ok(Self(slug.to_owned()))
        } else {
            Err(SlugError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColourError {
    #[error("Pick a colour like #2851c8.")]
    Malformed,
}

/// A brand colour as `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandColour {
    rgb: [u8; 3],
}

impl BrandColour {
    pub fn parse(raw: &str) -> Result<Self, ColourError> {
        let hex = raw.trim().strip_prefix('#').ok_or(ColourError::Malformed)?;
        let expanded: String = match hex.len() {
            3 => hex.chars().flat_map(|c| [c, c]).collect(),
            6 => hex.to_owned(),
            _ => return Err(ColourError::Malformed),
        };
        let bytes = hex::decode(expanded).map_err(|_| ColourError::Malformed)?;
        let rgb: [u8; 3] = bytes.try_into().map_err(|_| ColourError::Malformed)?;
        Ok(Self { rgb })
    }

    pub fn hex(&self) -> String {
        format!("#{}", hex::encode(self.rgb))
    }

    /// Black or white, whichever contrasts more with the colour (WCAG relative luminance).
    pub fn text_colour(&self) -> &'static str {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.rgb;
        let luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
        let contrast_with_white = 1.05 / (luminance + 0.05);
        let contrast_with_black = (luminance + 0.05) / 0.05;
        if contrast_with_white >= contrast_with_black {
            "#ffffff"
        } else {
            "#000000"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantNameError {
    #[error("Enter the tenant's name.")]
    Empty,
    #[error("Use at most 80 characters.")]
    TooLong,
}

pub fn parse_name(raw: &str) -> Result<String, TenantNameError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().all(char::is_control) {
        return Err(TenantNameError::Empty);
    }
    if name.chars().count() > 80 {
        return Err(TenantNameError::TooLong);
    }
    Ok(name.chars().filter(|c| !c.is_control()).collect())
}

pub const MAX_LOGO_BYTES: usize = 512 * 1024;
const MAX_LOGO_SIDE: u32 = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoError {
    #[error("The logo must be at most 512 KB.")]
    TooLarge,
    #[error("The logo must be a PNG, JPEG or WebP image.")]
    NotAnImage,
    #[error("The logo could not be read as an image, or it is larger than 2048×2048 pixels.")]
    Undecodable,
}

/// A logo that decoded cleanly, within limits, as one of the accepted formats.
#[derive(Clone)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// Accepts PNG, JPEG and WebP only, judged by content (not by name or declared type), and only if the
/// whole image decodes within size and memory limits — so an HTML or SVG file renamed `.png` and a
/// decompression bomb are both refused.
pub fn validate_logo(bytes: Vec<u8>) -> Result<Logo, LogoError> {
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(LogoError::TooLarge);
    }
    let format = image::guess_format(&bytes).map_err(|_| LogoError::NotAnImage)?;
    let content_type = match format {
        ImageFormat::Png => "image/png",
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::WebP => "image/webp",
        _ => return Err(LogoError::NotAnImage),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_LOGO_SIDE);
    limits.max_image_height = Some(MAX_LOGO_SIDE);
    limits.max_alloc = Some(64 * 1024 * 1024);
    let mut reader = ImageReader::with_format(Cursor::new(&bytes), format);
    reader.limits(limits);
    reader.decode().map_err(|_| LogoError::Undecodable)?;
    Ok(Logo {
        bytes,
        content_type,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("That slug is already taken.")]
    SlugTaken,
    #[error("Type the tenant's slug exactly to confirm.")]
    ConfirmationMismatch,
    /// Suspension waits for a second person and could not be asked for.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct NewTenant {
    pub name: String,
    pub slug: Slug,
    pub colour: BrandColour,
    pub logo: Option<Logo>,
}

/// The tenant a URL names, whatever its status (a suspended tenant's pages still open for staff).
pub async fn by_slug(core: &Core, slug: &str) -> Result<Option<Tenant>, StoreError> {
    core.store.tenant_by_slug(slug).await
}

/// Tenants whose name or slug contains `search`, by name: every tenant for those who see all
/// (superadmin, security), otherwise the ones where the person holds a tenant role.
pub async fn visible_to(
    core: &Core,
    user: &User,
    search: &str,
    limit: i64,
) -> Result<Vec<Tenant>, StoreError> {
    page_visible_to(core, user, None, search, None, limit).await
}

/// [`visible_to`] among `only` (an automation key's tenants), continuing after the tenant
/// `(name, slug)` (keyset paging).
pub async fn page_visible_to(
    core: &Core,
    user: &User,
    only: Option<&[TenantId]>,
    search: &str,
    after: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<Tenant>, StoreError> {
    let scope = if may(user, Permission::SeeAllTenants, None) {
        TenantScope::All
    } else {
        TenantScope::AssignedTo(user.id)
    };
    core.store
        .search_tenants(scope, only, search, after, limit)
        .await
}

/// The tenants named by `slugs` (in that order) that `user` may still enter: a role removed since
/// they were last used takes them off the switcher's "recent" list.
pub async fn still_enterable(
    core: &Core,
    user: &User,
    slugs: &[String],
) -> Result<Vec<Tenant>, StoreError> {
    let mut found = Vec::with_capacity(slugs.len());
    for slug in slugs {
        if let Some(tenant) = core.store.tenant_by_slug(slug).await? {
            if may(user, Permission::EnterTenant, Some(tenant.id)) {
                found.push(tenant);
            }
        }
    }
    Ok(found)
}

/// The logo a tenant uploaded, with its validated content type.
pub async fn logo(core: &Core, slug: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
    match core.store.tenant_by_slug(slug).await? {
        Some(tenant) => core.store.tenant_logo(tenant.id).await,
        None => Ok(None),
    }
}

/// The tenants a role list or a key names by id, by name; ids of deleted tenants are left out.
pub async fn by_ids(core: &Core, ids: &[TenantId]) -> Result<Vec<Tenant>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    core.store.tenants_by_ids(ids).await
}

pub async fn by_id(core: &Core, id: TenantId) -> Result<Option<Tenant>, StoreError> {
    core.store.tenant_by_id(id).await
}

pub async fn create(
    core: &Core,
    actor: UserId,
    tenant: NewTenant,
    context: &RequestContext,
) -> Result<TenantId, TenantError> {
    let id = TenantId::new();
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::TenantCreated,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(id)
    .context(context)
    .detail("slug", tenant.slug.as_str())
    .detail("name", tenant.name.as_str());
    if core.store.insert_tenant(id, &tenant, now, &event).await? {
        Ok(id)
    } else {
        Err(TenantError::SlugTaken)
    }
}

/// Reactivates a tenant, or asks for its suspension (typing the slug to confirm; a second
/// superadmin approves, `reason` says why).
pub async fn set_status(
    core: &Core,
    actor: Principal<'_>,
    tenant: &Tenant,
    status: TenantStatus,
    confirmation: Option<&str>,
    reason: &str,
    context: &RequestContext,
) -> Result<Change, TenantError> {
    if status == TenantStatus::Suspended {
        if confirmation.map(str::trim) != Some(tenant.slug.as_str()) {
            return Err(TenantError::ConfirmationMismatch);
        }
        let action = Action::SuspendTenant { tenant: tenant.id };
        return Ok(Change::AwaitingApproval(
            approvals::request(core, actor, action, reason, context).await?,
        ));
    }
    let event = Event::new(
        core.clock.now_ms(),
        EventType::TenantReactivated,
        Outcome::Success,
        Actor::User(actor.user().id),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("before", tenant.status.as_str())
    .detail("after", status.as_str());
    core.store
        .set_tenant_status(tenant.id, status, core.clock.now_ms(), &event)
        .await?;
    core.revocations.catch_up(&core.store).await?;
    Ok(Change::Done)
}

/// Changes the tenant's name and brand colour (the slug, its URLs' name, never changes).
pub async fn update(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    name: String,
    colour: BrandColour,
    context: &RequestContext,
) -> Result<(), TenantError> {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::TenantUpdated,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("name", name.as_str())
    .detail("colour", colour.hex());
    core.store
        .rename_tenant(tenant.id, &name, &colour.hex(), core.clock.now_ms(), &event)
        .await?;
    Ok(())
}

/// Whether DPoP proofs at the tenant's token endpoint must carry a server nonce (RFC 9449 §8),
/// which limits a proof made in advance to the nonce's few minutes.
pub async fn set_dpop_nonce(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    required: bool,
    context: &RequestContext,
) -> Result<(), StoreError> {
    if tenant.dpop_nonce == required {
        return Ok(());
    }
    let event = Event::new(
        core.clock.now_ms(),
        EventType::TenantUpdated,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("dpop_nonce", required);
    core.store
        .set_tenant_dpop_nonce(
            tenant.id,
            tenant.slug.as_str(),
            required,
            core.clock.now_ms(),
            &event,
        )
        .await?;
    core.verified.forget_tenant(tenant.slug.as_str());
    Ok(())
}

pub async fn replace_logo(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    logo: Logo,
    context: &RequestContext,
) -> Result<(), TenantError> {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::TenantLogoChanged,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("content_type", logo.content_type)
    .detail("bytes", logo.bytes.len());
    core.store
        .set_tenant_logo(tenant.id, &logo, core.clock.now_ms(), &event)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_words_joined_by_single_hyphens() {
        assert!(Slug::parse("acme-bank").is_ok());
        assert!(Slug::parse("a1b").is_ok());
        for bad in [
            "ab",
            "Acme",
            "acme--bank",
            "-acme",
            "acme-",
            "1acme",
            "acme bank",
            "acmé",
            &"a".repeat(41),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_colour_is_readable_on_the_brand_colour() {
        assert_eq!(
            BrandColour::parse("#ffffff").unwrap().text_colour(),
            "#000000"
        );
        assert_eq!(
            BrandColour::parse("#1b2230").unwrap().text_colour(),
            "#ffffff"
        );
        assert_eq!(BrandColour::parse("#ff0").unwrap().text_colour(), "#000000");
        assert_eq!(BrandColour::parse("#FF0").unwrap().hex(), "#ffff00");
        for bad in ["red", "#12345", "#gggggg", "123456", "#1234567"] {
            assert!(BrandColour::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_real_png_jpeg_or_webp_logos_are_accepted() {
        let mut png = Vec::new();
        image::RgbaImage::new(4, 4)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(validate_logo(png).unwrap().content_type, "image/png");
        assert_eq!(
            validate_logo(b"<html><script>alert(1)</script>".to_vec()).err(),
            Some(LogoError::NotAnImage)
        );
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        assert_eq!(
            validate_logo(svg.to_vec()).err(),
            Some(LogoError::NotAnImage)
        );
        assert_eq!(
            validate_logo(vec![0; MAX_LOGO_BYTES + 1]).err(),
            Some(LogoError::TooLarge)
        );
    }
}
