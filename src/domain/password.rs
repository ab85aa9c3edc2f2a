//! Human passwords: the policy, and argon2id hashing on the blocking pool behind a concurrency limit
//! with a bounded queue, so a login flood cannot stall the console or exhaust memory
//! (each hash holds 19 MiB while it runs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash as PhcHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Generous on purpose (passphrases); the bound only stops absurd inputs.
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("Use at least {MIN_PASSWORD_CHARS} characters.")]
    TooShort,
    #[error("Use at most {MAX_PASSWORD_CHARS} characters.")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewPasswordError {
    #[error(transparent)]
    Policy(#[from] PasswordPolicyError),
    #[error("The two passwords do not match.")]
    Mismatch,
}

/// A password that satisfies the policy. Any Unicode is allowed; length counts characters.
pub struct Password(SecretString);

impl Password {
    /// A new password, typed twice the same way.
    pub fn confirmed(
        typed: Option<&SecretString>,
        again: Option<&SecretString>,
    ) -> Result<Self, NewPasswordError> {
        let typed = typed.cloned().unwrap_or_else(|| SecretString::from(""));
        let password = Self::new(typed)?;
        match again {
            Some(again) if again.expose_secret() == password.0.expose_secret() => Ok(password),
            _ => Err(NewPasswordError::Mismatch),
        }
    }

    pub fn new(candidate: SecretString) -> Result<Self, PasswordPolicyError> {
        let chars = candidate.expose_secret().chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordPolicyError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordPolicyError::TooLong);
        }
        Ok(Self(candidate))
    }
}

/// A PHC-format argon2id hash. Not a secret, but never worth printing.
#[derive(Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many password checks are waiting; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
fn owasp_params() -> Result<Params, PasswordError> {
    Params::new(19 * 1024, 2, 1, None).map_err(hashing)
}

fn hashing(error: impl std::fmt::Display) -> PasswordError {
    PasswordError::Hashing(error.to_string())
}

/// Salt length for new hashes (the PHC recommendation).
const SALT_BYTES: usize = 16;

/// argon2's working memory (19 MiB a hash), kept from one hash to the next. Allocating and freeing
/// it for every sign-in fragmented glibc's heap so badly that a 20 s flood of failed sign-ins grew
/// the process past 1 GB, never returned; reused, the memory is `concurrency` × 19 MiB for good.
/// At most `concurrency` hashes run at once, so the pool never holds more buffers than that.
#[derive(Default)]
struct Workspaces {
    idle: Mutex<Vec<Vec<Block>>>,
}

impl Workspaces {
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        // A hash stored with other parameters needs another size: a buffer of its own.
        let mut memory = reused
            .filter(|memory| memory.len() == blocks)
            .unwrap_or_else(|| vec![Block::new(); blocks]);
        let result = work(&mut memory);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(memory);
        }
        result
    }
}

#[derive(Clone)]
pub struct PasswordService {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Semaphore,
    /// Checks running plus waiting; past `capacity` new ones are refused at once.
    in_flight: AtomicUsize,
    capacity: usize,
    /// Unknown e-mails are verified against this, so they cost the same time as wrong passwords.
    dummy_hash: PasswordHash,
    workspaces: Arc<Workspaces>,
}

/// Releases a place in the bounded queue when a check finishes or is abandoned.
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordService {
    pub fn new(concurrency: usize, queue: usize) -> Result<Self, PasswordError> {
        let workspaces = Arc::new(Workspaces::default());
        let dummy = crate::domain::secrets::generate();
        let dummy_hash = hash_blocking(&workspaces, &dummy)?;
        Ok(Self {
            inner: Arc::new(Inner {
                slots: Semaphore::new(concurrency.max(1)),
                in_flight: AtomicUsize::new(0),
                capacity: concurrency.max(1) + queue,
                dummy_hash,
                workspaces,
            }),
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordError> {
        let secret = password.0.clone();
        let workspaces = self.inner.workspaces.clone();
        self.run_limited(move || hash_blocking(&workspaces, &secret))
            .await?
    }

    /// Checks `candidate` against `stored`, or against a dummy hash when there is no account,
    /// so both paths take the same time and give the same answer.
    pub async fn verify(
        &self,
        candidate: &SecretString,
        stored: Option<&PasswordHash>,
    ) -> Result<bool, PasswordError> {
        let against = stored.unwrap_or(&self.inner.dummy_hash).clone();
        let candidate = candidate.clone();
        let workspaces = self.inner.workspaces.clone();
        let matches = self
            .run_limited(move || verify_blocking(&workspaces, &candidate, &against))
            .await??;
        Ok(matches && stored.is_some())
    }

    async fn run_limited<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let inner = &self.inner;
        if inner.in_flight.fetch_add(1, Ordering::SeqCst) >= inner.capacity {
            inner.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(PasswordError::Busy);
        }
        let _place = QueuePlace(&inner.in_flight);
        let _slot = inner
            .slots
            .acquire()
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))
    }
}

fn hash_blocking(
    workspaces: &Workspaces,
    secret: &SecretString,
) -> Result<PasswordHash, PasswordError> {
    let params = owasp_params()?;
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    workspaces
        .with(params.block_count(), |memory| {
            argon2.hash_password_into_with_memory(
                secret.expose_secret().as_bytes(),
                &salt,
                &mut output,
                memory,
            )
        })
        .map_err(hashing)?;
    let phc = PhcHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hashing)?,
        salt: Some(Salt::new(&salt).map_err(hashing)?),
        hash: Some(Output::new(&output).map_err(hashing)?),
    };
    Ok(PasswordHash(phc.to_string()))
}

/// Recomputes the stored hash from `candidate` with the stored algorithm, version, parameters and
/// salt (so older hashes keep verifying after a policy change), and compares in constant time.
fn verify_blocking(
    workspaces: &Workspaces,
    candidate: &SecretString,
    stored: &PasswordHash,
) -> Result<bool, PasswordError> {
    let parsed = PhcHash::new(stored.as_str()).map_err(hashing)?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(PasswordError::Hashing(
            "stored hash lacks salt or output".into(),
        ));
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(hashing)?;
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .map_err(hashing)?;
    let params = Params::try_from(&parsed).map_err(hashing)?;
    let mut output = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    workspaces
        .with(params.block_count(), |memory| {
            argon2.hash_password_into_with_memory(
                candidate.expose_secret().as_bytes(),
                salt.as_ref(),
                &mut output,
                memory,
            )
        })
        .map_err(hashing)?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(&output).map_err(hashing)? == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_characters_not_bytes() {
        assert_eq!(
            Password::new("short".into()).err(),
            Some(PasswordPolicyError::TooShort)
        );
        // 12 characters of 4-byte emoji: long enough by characters.
        assert!(Password::new("🔑".repeat(12).into()).is_ok());
        assert!(Password::new("x".repeat(128).into()).is_ok());
        assert_eq!(
            Password::new("x".repeat(MAX_PASSWORD_CHARS + 1).into()).err(),
            Some(PasswordPolicyError::TooLong)
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_argon2id_parameters() {
        let service = PasswordService::new(1, 1).unwrap();
        let password = Password::new("correct horse battery".into()).unwrap();
        let hash = service.hash(&password).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            service
                .verify(&"correct horse battery".into(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !service
                .verify(&"wrong horse battery".into(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !service
                .verify(&"anything at all!".into(), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_and_hashes_of_other_parameters_still_verify() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let service = PasswordService::new(1, 1).unwrap();
        let password = "correct horse battery";

        // Ours, checked by the argon2 crate's own verifier.
        let ours = service
            .hash(&Password::new(password.into()).unwrap())
            .await
            .unwrap();
        assert!(
            Argon2::default()
                .verify_password(password.as_bytes(), ours.as_str())
                .is_ok()
        );

        // The argon2 crate's, with smaller (older) parameters: a workspace of another size.
        let older = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, None).unwrap(),
        )
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string();
        let older = PasswordHash::from_stored(older);
        assert!(
            service
                .verify(&password.into(), Some(&older))
                .await
                .unwrap()
        );
        assert!(
            !service
                .verify(&"wrong horse battery".into(), Some(&older))
                .await
                .unwrap()
        );
        // And the usual size again, after the odd one.
        assert!(service.verify(&password.into(), Some(&ours)).await.unwrap());
    }

    #[tokio::test]
    async fn checks_past_the_queue_bound_are_refused_at_once() {
        let service = PasswordService::new(1, 1).unwrap();
        let password: SecretString = "correct horse battery".into();
        let (a, b, c) = tokio::join!(
            service.verify(&password, None),
            service.verify(&password, None),
            service.verify(&password, None),
        );
        let busy = [a, b, c]
            .into_iter()
            .filter(|r| matches!(r, Err(PasswordError::Busy)))
            .count();
        assert_eq!(busy, 1);
    }
}
