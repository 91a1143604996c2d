//! What `--http.config` asks of every request, in Prometheus' order: the rate limit (429),
//! the extra response headers, then basic authentication (401 with `WWW-Authenticate: Basic`).
//!
//! bcrypt is slow on purpose, so verdicts are cached by user, hash and a digest of the
//! password, and one check runs at a time, off the async workers. An unknown user is checked
//! against a hash of our own so that its answer takes as long as a known user's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::web_config::{RateLimit, WebConfig};

/// Cached verdicts beyond which the cache starts over.
const VERDICT_CACHE_MAX: usize = 1024;

/// The state of the checks: the configuration, the verdict cache and the rate limiter.
pub struct Guard {
    web: Arc<WebConfig>,
    verdicts: Mutex<BTreeMap<[u8; 32], bool>>,
    bcrypt_turn: Arc<tokio::sync::Mutex<()>>,
    limiter: Mutex<Option<Bucket>>,
}

/// A token bucket: `tokens` left as of `at`, for the limit it was made for.
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    at: Instant,
}

impl Guard {
    /// Checks requests against `web`'s configuration in force.
    pub fn new(web: Arc<WebConfig>) -> Guard {
        Guard {
            web,
            verdicts: Mutex::new(BTreeMap::new()),
            bcrypt_turn: Arc::new(tokio::sync::Mutex::new(())),
            limiter: Mutex::new(None),
        }
    }

    /// Whether one more request fits in `limit` at `now`.
    fn admit(&self, limit: Option<RateLimit>, now: Instant) -> bool {
        let mut bucket = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(limit) = limit else {
            *bucket = None;
            return true;
        };
        let b = match bucket.as_mut() {
            Some(b) if b.limit == limit => b,
            _ => bucket.insert(Bucket {
                limit,
                tokens: f64::from(limit.burst),
                at: now,
            }),
        };
        let earned = now.duration_since(b.at).as_secs_f64() / limit.interval.as_secs_f64();
        b.tokens = (b.tokens + earned).min(f64::from(limit.burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether `user`/`password` is one of `users` (bcrypt, cached).
    async fn authenticated(
        &self,
        users: &BTreeMap<String, String>,
        user: &str,
        password: &str,
    ) -> bool {
        let known = users.get(user);
        let hash = known
            .cloned()
            .unwrap_or_else(|| unknown_user_hash().to_string());
        let key = verdict_key(user, &hash, password);
        let cached = self
            .verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        let verdict = match cached {
            Some(v) => v,
            None => {
                let _turn = self.bcrypt_turn.lock().await;
                let password = password.to_string();
                let matches = tokio::task::spawn_blocking(move || {
                    bcrypt::verify(password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                let v = known.is_some() && matches;
                let mut verdicts = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
                if verdicts.len() >= VERDICT_CACHE_MAX {
                    verdicts.clear();
                }
                verdicts.insert(key, v);
                v
            }
        };
        verdict
    }
}

/// A bcrypt hash no password is known for, checked for unknown users.
fn unknown_user_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let secret = format!("{:?}{:?}", Instant::now(), std::process::id());
        bcrypt::hash(secret, bcrypt::DEFAULT_COST).unwrap_or_default()
    })
}

fn verdict_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// The user and password of an `Authorization: Basic` header, as Go's `Request.BasicAuth`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("Basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn refuse(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("");
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

/// The middleware: applies the checks, then the route.
pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let settings = guard.web.current();
    if !guard.admit(settings.rate_limit, Instant::now()) {
        return refuse(StatusCode::TOO_MANY_REQUESTS);
    }
    let allowed = settings.users.is_empty()
        || match basic_credentials(request.headers()) {
            Some((user, password)) => guard.authenticated(&settings.users, &user, &password).await,
            None => false,
        };
    let mut response = if allowed {
        next.run(request).await
    } else {
        let mut r = refuse(StatusCode::UNAUTHORIZED);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic"),
        );
        r
    };
    for (name, value) in &settings.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn guard() -> (tempfile::TempDir, Guard) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.yml");
        std::fs::write(&path, "").expect("write");
        let web = WebConfig::load(&path).expect("load");
        (dir, Guard::new(Arc::new(web)))
    }

    #[test]
    fn the_rate_limit_admits_a_burst_then_one_request_per_interval() {
        let (_dir, g) = guard();
        let limit = Some(RateLimit {
            burst: 2,
            interval: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        assert!(g.admit(limit, t0) && g.admit(limit, t0));
        assert!(!g.admit(limit, t0), "the burst is spent");
        assert!(!g.admit(limit, t0 + Duration::from_secs(9)));
        assert!(
            g.admit(limit, t0 + Duration::from_secs(19)),
            "one more after an interval"
        );
        assert!(!g.admit(limit, t0 + Duration::from_secs(19)));
        assert!(g.admit(None, t0), "no limit, no refusal");
    }

    #[test]
    fn basic_credentials_parse_like_go() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_credentials(&h), None);
        // "admin:pa:ss" — the password may hold colons.
        h.insert(
            header::AUTHORIZATION,
            "basic YWRtaW46cGE6c3M=".parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("admin".into(), "pa:ss".into()))
        );
        h.insert(
            header::AUTHORIZATION,
            "Bearer YWRtaW46cGE6c3M=".parse().unwrap(),
        );
        assert_eq!(basic_credentials(&h), None);
    }

    #[tokio::test]
    async fn only_a_known_user_with_the_right_password_passes() {
        let (_dir, g) = guard();
        let users = BTreeMap::from([("admin".to_string(), bcrypt::hash("s3cret", 4).unwrap())]);
        assert!(g.authenticated(&users, "admin", "s3cret").await);
        assert!(g.authenticated(&users, "admin", "s3cret").await, "cached");
        assert!(!g.authenticated(&users, "admin", "wrong").await);
        assert!(!g.authenticated(&users, "root", "s3cret").await);
    }
}
