//! Statuses, states and kinds cross the storage seam as the domain's enums, stored as their text.
//! Reading a word the enum does not know is an error (a corrupt or newer database), never a silent
//! default; writing one binds its text.

use sqlx::any::{Any, AnyTypeInfo, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::domain::alerts::{AlertStatus, Severity};
use crate::domain::keys::KeyState;
use crate::domain::partners::{CredentialKind, CredentialStatus};
use crate::domain::tenants::TenantStatus;

macro_rules! stored_as_text {
    ($($ty:ty),* $(,)?) => {$(
        impl Type<Any> for $ty {
            fn type_info() -> AnyTypeInfo {
                <str as Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <str as Type<Any>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Any> for $ty {
            fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
                let raw = <&str as Decode<Any>>::decode(value)?;
                <$ty>::parse(raw)
                    .ok_or_else(|| format!("unknown {} {raw:?}", stringify!($ty)).into())
            }
        }

        impl Encode<'_, Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Any>>::encode(self.as_str(), buf)
            }
        }
    )*};
}

stored_as_text!(
    AlertStatus,
    Severity,
    KeyState,
    CredentialKind,
    CredentialStatus,
    TenantStatus,
);
