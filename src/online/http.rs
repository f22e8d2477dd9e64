//! The HTTP layer every online source goes through: one blocking client with a user agent and
//! timeouts, a concurrency limit per service, bounded retries with exponential backoff and
//! jitter, `Retry-After` on 429/503, and validation of every answer before the caller may cache
//! it.
//!
//! A request is retried when the failure may be the service's bad moment: a connection error, a
//! timeout, a body cut short, HTTP 408/429/5xx, or an answer that does not parse (Overpass
//! answers an overloaded query with HTTP 200 and an error remark). Other 4xx answers are the
//! request's fault and fail at once. After the last attempt the error names the service, the
//! URL and the last cause.

use crate::error::{Error, Result};
use indicatif::ProgressBar;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The user agent sent with every request: the services' usage policies ask clients to name
/// themselves.
pub const USER_AGENT: &str = concat!(
    "socialmapper-rs/",
    env!("CARGO_PKG_VERSION"),
    " (accessibility analysis; a Rust SocialMapper)"
);

/// Longest `Retry-After` the client waits for; a service asking for more is reported, not
/// waited on for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Answers larger than this get a byte progress bar.
const BAR_MIN_BYTES: u64 = 1 << 20;

/// How requests are retried and timed out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// Longest delay between attempts (before jitter).
    pub max_delay: Duration,
    /// Whole-request timeout (connect, send, and reading the answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            timeout: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0 for the first retry): `base · 2^attempt`,
    /// capped, times a random factor in [0.5, 1) so that clients that failed together do not
    /// come back together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
        exp.min(self.max_delay).mul_f64(0.5 + 0.5 * unit_random())
    }
}

/// A uniform number in [0, 1): SplitMix64 over a counter mixed with the clock. Jitter needs no
/// quality beyond "different between clients and attempts".
fn unit_random() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = STATE
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(nanos);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A counting semaphore: at most `n` requests to one service at a time.
struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Permits {
    fn new(n: usize) -> Self {
        Permits {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self) -> PermitGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        PermitGuard(self)
    }
}

struct PermitGuard<'a>(&'a Permits);

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// What to send.
#[derive(Clone, Debug)]
pub enum Body {
    /// A GET with these query parameters.
    Get(Vec<(String, String)>),
    /// A POST of `application/x-www-form-urlencoded` fields.
    Form(Vec<(String, String)>),
    /// A POST of a ready body with its content type (multipart uploads).
    Raw {
        /// The `Content-Type` header.
        content_type: String,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// Why an answer cannot be used.
#[derive(Clone, Debug, PartialEq)]
pub enum Unusable {
    /// Garbled, cut or an error the service may not make next time: retried.
    Retry(String),
    /// A refusal that no retry changes (a rejected key): reported at once.
    Refused(String),
}

impl From<String> for Unusable {
    fn from(s: String) -> Self {
        Unusable::Retry(s)
    }
}

/// Requests made and bytes received by one service, for the run's report.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests sent (every attempt counts).
    pub requests: AtomicU64,
    /// Bytes of answers received.
    pub bytes: AtomicU64,
}

/// One remote service (Overpass, TIGER, the Census API, the geocoder): its base URL, its
/// concurrency limit and retry policy, sharing the run's client.
#[derive(Clone)]
pub struct Service {
    /// Name used in messages (`Overpass`).
    pub name: &'static str,
    /// Base URL, without a trailing slash.
    pub base_url: String,
    client: reqwest::blocking::Client,
    permits: Arc<Permits>,
    policy: RetryPolicy,
    quiet: bool,
    /// Requests and bytes so far.
    pub counters: Arc<Counters>,
    concurrency: usize,
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retry: bool,
    /// The wait the service asked for (429/503 `Retry-After`).
    retry_after: Option<Duration>,
}

impl Service {
    /// A service at `base_url` allowing `concurrency` requests at a time.
    ///
    /// # Errors
    /// [`Error::Config`] when the HTTP client cannot be built (no TLS backend).
    pub fn new(
        name: &'static str,
        base_url: &str,
        concurrency: usize,
        policy: RetryPolicy,
        quiet: bool,
    ) -> Result<Service> {
        let client = reqwest::blocking::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(30)))
            .gzip(true)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Service {
            name,
            base_url: base_url.trim_end_matches('/').to_string(),
            client,
            permits: Arc::new(Permits::new(concurrency)),
            policy,
            quiet,
            counters: Arc::default(),
            concurrency: concurrency.max(1),
        })
    }

    /// How many requests the service takes at a time.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The URL of `path` under the base URL.
    pub fn url(&self, path: &str) -> String {
        if path.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}/{}", self.base_url, path.trim_start_matches('/'))
        }
    }

    /// Sends `body` to `url` until an answer passes `validate`, retrying as the module
    /// describes; `what` names the request in messages and on the progress bar.
    ///
    /// `validate` sees the whole answer of a 2xx response and returns the parsed value, or why
    /// the answer is unusable: then the request is retried ([`Unusable::Retry`], or a plain
    /// `String`), or fails at once ([`Unusable::Refused`]). Nothing unvalidated reaches a
    /// cache.
    ///
    /// # Errors
    /// [`Error::Input`] naming the service and URL, with the last cause, when no attempt
    /// gave a valid answer.
    pub fn fetch<T, E: Into<Unusable>>(
        &self,
        url: &str,
        body: &Body,
        what: &str,
        validate: impl Fn(&[u8]) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let attempts = self.policy.retries + 1;
        let mut last = String::new();
        for attempt in 0..attempts {
            let failure = {
                let _permit = self.permits.acquire();
                match self.attempt(url, body, what) {
                    Ok(bytes) => match validate(&bytes).map_err(Into::into) {
                        Ok(v) => return Ok(v),
                        Err(Unusable::Retry(e)) => Failure {
                            message: format!("unusable answer: {e}"),
                            retry: true,
                            retry_after: None,
                        },
                        Err(Unusable::Refused(e)) => Failure {
                            message: format!("refused: {e}"),
                            retry: false,
                            retry_after: None,
                        },
                    },
                    Err(f) => f,
                }
            };
            last = failure.message;
            if !failure.retry {
                return Err(self.error(url, what, &last, attempt + 1));
            }
            if attempt + 1 == attempts {
                break;
            }
            let wait = match failure.retry_after {
                Some(w) if w > MAX_RETRY_AFTER => {
                    return Err(self.error(
                        url,
                        what,
                        &format!("{last}; the service asks to wait {} s", w.as_secs()),
                        attempt + 1,
                    ));
                }
                Some(w) => w,
                None => self.policy.backoff(attempt),
            };
            tracing::warn!(
                service = self.name,
                %url,
                attempt = attempt + 1,
                wait_ms = wait.as_millis() as u64,
                "{what}: {last}; retrying"
            );
            std::thread::sleep(wait);
        }
        Err(self.error(url, what, &last, attempts))
    }

    fn error(&self, url: &str, what: &str, cause: &str, attempts: u32) -> Error {
        let tries = if attempts == 1 {
            "1 attempt".to_string()
        } else {
            format!("{attempts} attempts")
        };
        Error::input(
            format!("{} {url}", self.name),
            format!("{what}: failed after {tries}: {cause}"),
        )
    }

    /// One request: the whole answer of a 2xx response, or why not.
    fn attempt(&self, url: &str, body: &Body, what: &str) -> std::result::Result<Vec<u8>, Failure> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let request = match body {
            Body::Get(query) => self.client.get(url).query(query),
            Body::Form(fields) => self
                .client
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form_encode(fields)),
            Body::Raw {
                content_type,
                bytes,
            } => self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, content_type.as_str())
                .body(bytes.clone()),
        };
        let started = Instant::now();
        let mut response = request.send().map_err(|e| Failure {
            message: describe(&e),
            retry: true,
            retry_after: None,
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let expected = response.content_length();
        let bar = match expected {
            Some(n) if n >= BAR_MIN_BYTES && status.is_success() => {
                crate::output::download_bar(&format!("{} {what}", self.name), n, self.quiet)
            }
            _ => ProgressBar::hidden(),
        };
        let mut bytes = Vec::with_capacity(expected.unwrap_or(0).min(64 << 20) as usize);
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            match response.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    bytes.extend_from_slice(&chunk[..n]);
                    bar.inc(n as u64);
                }
                Err(e) => {
                    bar.finish_and_clear();
                    return Err(Failure {
                        message: format!(
                            "answer cut short after {} bytes: {}",
                            bytes.len(),
                            describe_io(&e)
                        ),
                        retry: true,
                        retry_after: None,
                    });
                }
            }
        }
        bar.finish_and_clear();
        self.counters
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        tracing::debug!(
            service = self.name,
            %url,
            status = status.as_u16(),
            bytes = bytes.len(),
            ms = started.elapsed().as_millis() as u64,
            "{what}"
        );
        // With gzip the decoded length differs from Content-Length; reqwest checks the raw
        // length itself, so compare only when the answer was not compressed.
        if let Some(n) = expected
            && status.is_success()
            && (bytes.len() as u64) < n
        {
            return Err(Failure {
                message: format!("answer cut short: {} of {n} bytes", bytes.len()),
                retry: true,
                retry_after: None,
            });
        }
        if status.is_success() {
            return Ok(bytes);
        }
        let code = status.as_u16();
        let snippet = text_snippet(&bytes);
        Err(Failure {
            message: format!("HTTP {status}{snippet}"),
            retry: code == 408 || code == 429 || status.is_server_error(),
            retry_after: if code == 429 || code == 503 {
                retry_after
            } else {
                None
            },
        })
    }
}

/// The first line or so of an error answer, for the message (services explain themselves
/// there: "Request Rejected", "error: unknown variable").
fn text_snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        String::new()
    } else {
        let cut: String = flat.chars().take(200).collect();
        format!(": {cut}")
    }
}

/// A reqwest error in a few words, with its source chain (reqwest's own text is often just
/// "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    with_sources(kind.to_string(), e)
}

/// An error reading a response body, with its source chain; marked as a time-out when it
/// says so.
fn describe_io(e: &std::io::Error) -> String {
    let msg = with_sources(e.to_string(), e);
    if msg.to_ascii_lowercase().contains("timed out") || msg.contains("timeout") {
        format!("timed out ({msg})")
    } else {
        msg
    }
}

/// `msg`, then each error in `e`'s source chain, joined by ": ".
fn with_sources(mut msg: String, e: &dyn std::error::Error) -> String {
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// `Retry-After` as seconds (the HTTP-date form is rare from these services and taken as one
/// minute, a safe middle).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    match v.parse::<u64>() {
        Ok(s) => Some(Duration::from_secs(s)),
        Err(_) => Some(Duration::from_secs(60)),
    }
}

/// `application/x-www-form-urlencoded` encoding of `fields`.
pub fn form_encode(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters; spaces become `+` (form encoding).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = RetryPolicy {
            retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            timeout: Duration::from_secs(1),
        };
        for attempt in 0..8 {
            let full = (100u64 << attempt).min(1000);
            for _ in 0..50 {
                let d = p.backoff(attempt).as_secs_f64() * 1000.0;
                assert!(
                    d >= full as f64 * 0.5 - 1e-6 && d < full as f64 + 1e-6,
                    "{attempt}: {d}"
                );
            }
        }
        // Jitter: not every delay is the same.
        let ds: std::collections::BTreeSet<u128> =
            (0..20).map(|_| p.backoff(3).as_micros()).collect();
        assert!(ds.len() > 5, "{ds:?}");
    }

    #[test]
    fn retry_after_and_form_encoding() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(
            form_encode(&[("data".into(), "[out:json];nwr[\"a\"=\"b c\"];".into())]),
            "data=%5Bout%3Ajson%5D%3Bnwr%5B%22a%22%3D%22b+c%22%5D%3B"
        );
    }
}
