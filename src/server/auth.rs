//! Basic auth for the web endpoints, in one place: the `Authorization: Basic` header decoded,
//! the password checked against the user's bcrypt hash from the web config (with a decoy hash
//! for unknown users), and a cache of credentials that verified, so a 1 s scrape does not pay
//! bcrypt's cost each time.
//!
//! Does not: read or validate the web config (`config/web.rs` checks at load that every
//! password is a well-formed bcrypt hash), or build responses (the guard in `mod.rs` answers
//! 401).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{HeaderMap, header};
use tokio::sync::Semaphore;

use crate::config::web::BasicAuthUsers;

/// Successful credential checks remembered, so a 1 s scrape does not pay bcrypt's cost.
const MAX_CACHED_CREDENTIALS: usize = 256;
/// bcrypt checks running at once: wrong passwords cannot take more than this many cores.
const MAX_PASSWORD_CHECKS: usize = 2;

/// The users of `basic_auth_users` and what keeps checking them cheap and bounded.
pub(super) struct BasicAuth {
    passwords: Arc<Passwords>,
    /// SHA-256 of `user:password` of credentials that verified. Digests, never the
    /// credentials themselves. The users cannot change while the process runs (the web config
    /// is read once), so an entry never goes stale.
    verified: Mutex<HashSet<[u8; 32]>>,
    password_checks: Semaphore,
}

/// Users' hashes and the decoy: what a bcrypt check needs, shared with the blocking thread
/// that runs it.
struct Passwords {
    users: BasicAuthUsers,
    /// Checked for unknown users, so a wrong user name costs as much time as a wrong password
    /// and response times do not reveal which user names exist.
    decoy: String,
}

impl BasicAuth {
    /// Makes the decoy hash, at the highest cost among the users' hashes. The error (bcrypt
    /// cannot hash at that cost) is for the `basic_auth_users` field.
    pub(super) fn new(users: BasicAuthUsers) -> Result<Self, String> {
        // Any hash of the same cost works as the decoy; its password is irrelevant.
        let decoy = bcrypt::hash("streamprobe-decoy", users.max_cost())
            .map_err(|e| format!("basic_auth_users: cannot hash: {e}"))?;
        Ok(BasicAuth {
            passwords: Arc::new(Passwords { users, decoy }),
            verified: Mutex::default(),
            password_checks: Semaphore::new(MAX_PASSWORD_CHECKS),
        })
    }

    /// Whether the request's `Authorization` header names a user and their password.
    pub(super) async fn admits(&self, headers: &HeaderMap) -> bool {
        let Some((user, password)) = basic_credentials(headers) else {
            return false;
        };
        let key: [u8; 32] = {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(user.as_bytes());
            ctx.update(b":");
            ctx.update(&password);
            ctx.finish()
                .as_ref()
                .try_into()
                .expect("SHA-256 is 32 bytes")
        };
        if self.lock().contains(&key) {
            return true;
        }
        let Ok(_slot) = self.password_checks.acquire().await else {
            return false;
        };
        let passwords = self.passwords.clone();
        let ok = tokio::task::spawn_blocking(move || passwords.verify(&user, &password))
            .await
            .unwrap_or(false);
        if ok {
            let mut verified = self.lock();
            if verified.len() >= MAX_CACHED_CREDENTIALS {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<[u8; 32]>> {
        // A panic while holding the lock cannot leave the set inconsistent.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Passwords {
    /// Whether `password` is `user`'s. Slow by design (bcrypt): callers cache successes and
    /// run it off the async threads.
    fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.hash(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, &self.decoy);
                false
            }
        }
    }
}

/// `Authorization: Basic base64(user:password)`, decoded.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::http::HeaderValue;

    use super::*;
    use crate::config::web::load_str;

    fn auth(users: &[(&str, &str)]) -> BasicAuth {
        let mut text = String::from("basic_auth_users:\n");
        for (user, password) in users {
            let hash = bcrypt::hash(password, 4).unwrap();
            text.push_str(&format!("  {user}: '{hash}'\n"));
        }
        let web = load_str(&text, Path::new("web.yml")).unwrap();
        BasicAuth::new(web.users.unwrap()).unwrap()
    }

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn bcrypt_users_verify() {
        let users = auth(&[("alice", "s3cret")]).passwords;
        assert!(users.verify("alice", b"s3cret"));
        assert!(!users.verify("alice", b"wrong"));
        assert!(!users.verify("bob", b"s3cret"));
    }

    #[test]
    fn basic_credentials_are_decoded_leniently_about_the_scheme_only() {
        // alice:s3:cret — the password may contain ':'; the user may not.
        let alice = Some(("alice".to_owned(), b"s3:cret".to_vec()));
        assert_eq!(
            basic_credentials(&authorization("Basic YWxpY2U6czM6Y3JldA==")),
            alice
        );
        assert_eq!(
            basic_credentials(&authorization("basic  YWxpY2U6czM6Y3JldA== ")),
            alice
        );
        assert_eq!(
            basic_credentials(&authorization("Bearer YWxpY2U6czM6Y3JldA==")),
            None
        );
        // No colon, and not base64.
        assert_eq!(basic_credentials(&authorization("Basic YWxpY2U=")), None);
        assert_eq!(basic_credentials(&authorization("Basic %%%")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn verified_credentials_are_cached_and_wrong_ones_are_not() {
        let auth = auth(&[("alice", "s3cret")]);
        let good = authorization("Basic YWxpY2U6czNjcmV0");
        let bad = authorization("Basic YWxpY2U6d3Jvbmc=");
        assert!(!auth.admits(&bad).await);
        assert!(auth.lock().is_empty());
        assert!(auth.admits(&good).await);
        assert_eq!(auth.lock().len(), 1);
        assert!(auth.admits(&good).await);
        assert_eq!(auth.lock().len(), 1);
    }
}
