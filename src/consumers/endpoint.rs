//! The local credentials endpoint behind `stsbridge serve-credentials` and `exec --ecs-server`
//! (issue #19): the AWS *container credentials provider* protocol, answered from memory.
//!
//! The protocol, as botocore's `ContainerProvider` and aws-config's `ecs` provider read it
//! (`../shared/PROTOCOL.md` §4): the client sends `GET <AWS_CONTAINER_CREDENTIALS_FULL_URI>` with
//! the token, as is, in `Authorization`; a 200 carries JSON `AccessKeyId`, `SecretAccessKey`,
//! `Token` (not `SessionToken`), `Expiration` and optionally `AccountId`. botocore gives up after
//! 2 s and retries any non-200 three times; aws-config allows 2 s to connect and 5 s to read and
//! retries 5xx only. So a request never waits for Key Vault or STS: every answer comes from the
//! set cached *before* the endpoint was announced, and a background task keeps that set fresh
//! ([`next_wait`]): the bundle is polled (a rotation or a revocation publishes a new version at
//! any time), minted sets are renewed `--min-remaining` before they expire (capped at half their
//! lifetime). An expired set is never served: 503 with a JSON `Code`/`Message` instead.
//!
//! The library never binds: [`serve`] takes a bound listener, so tests bind port 0.
//!
//! Any local user can connect, token or not (issue #27, F5), so [`serve`] bounds what a
//! connection can hold: its request headers must arrive within [`HEADER_READ_TIMEOUT`], and at
//! most [`MAX_CONNECTIONS`] are open at once — at the bound, a new connection closes the oldest
//! one that is waiting for its client rather than wait for a free place, so connections that
//! never finish their headers cannot keep a client holding the token out, nor use up the
//! process's file descriptors (which the Key Vault poll needs too). A wrong token is answered after [`FAILED_ATTEMPT_DELAY`] (F6), never locked out.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::source::{Fresh, Source};

/// A set this close to its expiry is not served: a client could not finish a call with it.
const SERVE_FLOOR: chrono::Duration = chrono::Duration::seconds(5);
/// Failed refreshes are retried after 1, 2, 4 … s, never more than a minute apart.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long a connection may take to send a request's headers: from connecting, and again
/// between requests on a kept-alive connection. Both SDKs send the whole request at once, so
/// this is generous. hyper 1.x runs one timer for both (it starts whenever the connection waits
/// for a request head), so an idle kept-alive connection is also closed after 5 s — Node.js's
/// default too — not after the 60 s issue #27 suggested: keeping it open longer would need a
/// timer of our own around hyper's I/O and buys nothing here, since clients ask once every few
/// minutes and reconnect to a loopback port in microseconds.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once. Far above what the endpoint's clients need (they ask every few
/// minutes; 1000 concurrent requests are answered through these), far below the common limit of
/// 1024 open files.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a request with a wrong token waits for its 403: a client holding the right token is
/// never slowed nor refused, and guessing costs this much per attempt and connection.
pub const FAILED_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// How long in-flight answers may take to finish once the endpoint stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The set being served, rendered once: every request copies the same bytes.
struct Served {
    body: SecretString,
    access_key_id: String,
    expiration: DateTime<Utc>,
    fetched_at: DateTime<Utc>,
    version: Option<String>,
}

#[derive(Default)]
struct Cached {
    set: Option<Arc<Served>>,
    last_error: Option<String>,
    failures: u32,
}

/// The endpoint's state: the source, the token, and the cached set.
pub struct Endpoint {
    source: Source,
    token: SecretString,
    margin: chrono::Duration,
    poll: Duration,
    // A std lock, not a tokio one: no await happens while it is held, and readers only clone
    // an `Arc`.
    cached: RwLock<Cached>,
}

/// botocore's advisory refresh window: a client re-fetches once its set expires within this.
const BOTOCORE_REFRESH_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// The expiry a polled set is advertised with: its own, or — when later — 15 minutes plus two
/// poll intervals after this render. Clients re-fetch on *their* schedule, from the expiry they
/// were told (botocore 15 minutes before it, aws-config seconds before it); told the real expiry
/// of a 2-hour set, a client would hold a set for up to 1 h 45 min after a rotation or a
/// revocation replaced it. Told this, botocore fetches again one to two poll intervals after
/// each render (the body is rendered anew at every poll), so a new set reaches it within about
/// a minute; aws-config within about 16 minutes. A shorter expiry only makes clients ask
/// sooner: the set itself is unchanged, and the endpoint's own 503 rule uses the real expiry.
pub fn advertised_expiry(
    real: DateTime<Utc>,
    now: DateTime<Utc>,
    poll: Option<Duration>,
) -> DateTime<Utc> {
    let Some(poll) = poll.and_then(|p| chrono::Duration::from_std(p).ok()) else {
        return real;
    };
    real.min(now + BOTOCORE_REFRESH_WINDOW + poll * 2)
}

/// The container-protocol JSON for a set, advertised as expiring at `expiration`.
pub fn render(fresh: &Fresh, expiration: DateTime<Utc>) -> SecretString {
    let c = &fresh.credentials;
    let mut doc = serde_json::json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose_secret(),
        "Token": c.session_token.expose_secret(),
        "Expiration": expiration.to_rfc3339_opts(SecondsFormat::Secs, true),
    });
    if let Some(account) = &fresh.account_id {
        doc["AccountId"] = account.clone().into();
    }
    SecretString::from(doc.to_string())
}

fn served(fresh: &Fresh, now: DateTime<Utc>, poll: Option<Duration>) -> Served {
    Served {
        body: render(
            fresh,
            advertised_expiry(fresh.credentials.expiration, now, poll),
        ),
        access_key_id: fresh.credentials.access_key_id.clone(),
        expiration: fresh.credentials.expiration,
        fetched_at: now,
        version: fresh.version.clone(),
    }
}

/// How long the refresher sleeps before its next fetch. Pure: takes `now`.
///
/// - After a failure: 1, 2, 4 … s (at most a minute, and at most the poll interval).
/// - A polled source (the bundle): the poll interval.
/// - A minted set: until `margin` before its expiry, the margin capped at half the set's
///   lifetime (a 15-minute set and a 20-minute margin would otherwise mean a mint a second).
pub fn next_wait(
    now: DateTime<Utc>,
    set: Option<(DateTime<Utc>, DateTime<Utc>)>,
    margin: chrono::Duration,
    poll: Option<Duration>,
    failures: u32,
) -> Duration {
    if failures > 0 {
        let backoff = Duration::from_secs(1u64 << (failures - 1).min(6)).min(MAX_BACKOFF);
        return poll.map_or(backoff, |p| p.min(backoff));
    }
    if let Some(p) = poll {
        return p;
    }
    let Some((expiration, fetched_at)) = set else {
        return Duration::from_secs(1);
    };
    let margin = margin.min((expiration - fetched_at) / 2);
    (expiration - margin - now)
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

/// Whether the `Authorization` header matches the token, in constant time.
fn authorize(
    token: &SecretString,
    given: Option<&[u8]>,
) -> Result<(), (StatusCode, &'static str, &'static str)> {
    match given {
        None => Err((StatusCode::UNAUTHORIZED, "Unauthorized", "no Authorization header: set AWS_CONTAINER_AUTHORIZATION_TOKEN (or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) as serve-credentials printed it")),
        Some(given) if bool::from(given.ct_eq(token.expose_secret().as_bytes())) => Ok(()),
        Some(_) => Err((StatusCode::FORBIDDEN, "Forbidden", "the Authorization header does not hold this endpoint's token")),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"Code": code, "Message": message}).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl Endpoint {
    /// Reads the first set (errors end the command before anything is announced), then holds it.
    pub async fn start(
        source: Source,
        token: SecretString,
        margin: chrono::Duration,
        poll: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        let fresh = source
            .fetch()
            .await
            .with_context(|| format!("reading {}", source.describe()))?;
        let now = Utc::now();
        let polled = source.polls().then_some(poll);
        let endpoint = Arc::new(Self {
            source,
            token,
            margin,
            poll,
            cached: RwLock::new(Cached {
                set: Some(Arc::new(served(&fresh, now, polled))),
                ..Default::default()
            }),
        });
        if fresh.credentials.expiration - now <= SERVE_FLOOR {
            tracing::warn!(
                "{}; answering 503 until a fresh set comes",
                endpoint.source.when_expired(fresh.credentials.expiration)
            );
        }
        Ok(endpoint)
    }

    /// What is served now: the access key id and its expiry (never a secret).
    pub fn current(&self) -> Option<(String, DateTime<Utc>)> {
        let cached = self.cached.read().expect("no panic while held");
        cached
            .set
            .as_ref()
            .map(|s| (s.access_key_id.clone(), s.expiration))
    }

    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// The answer to one request.
    pub fn answer(&self, method: &Method, headers: &HeaderMap, now: DateTime<Utc>) -> Response {
        if method != Method::GET {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "only GET",
            );
        }
        if let Err((status, code, message)) = authorize(
            &self.token,
            headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
        ) {
            return error(status, code, message);
        }
        let (set, last_error) = {
            let cached = self.cached.read().expect("no panic while held");
            (cached.set.clone(), cached.last_error.clone())
        };
        match set {
            Some(set) if set.expiration - now > SERVE_FLOOR => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                set.body.expose_secret().to_string(),
            )
                .into_response(),
            Some(set) => {
                let message = match last_error {
                    Some(e) => format!(
                        "no unexpired credentials: the cached set expired at {}, and the last refresh failed: {e}",
                        set.expiration.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                    None => self.source.when_expired(set.expiration),
                };
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "CredentialsExpired",
                    &message,
                )
            }
            None => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "CredentialsUnavailable",
                last_error.as_deref().unwrap_or("no credentials yet"),
            ),
        }
    }

    /// One refresh: fetch, and replace the cached set (or record why not).
    async fn refresh(&self) {
        let result = self.source.fetch().await;
        let now = Utc::now();
        let mut cached = self.cached.write().expect("no panic while held");
        match result {
            Ok(fresh) => {
                let changed = cached.set.as_ref().is_none_or(|s| {
                    s.access_key_id != fresh.credentials.access_key_id || s.version != fresh.version
                });
                if changed {
                    tracing::info!(
                        "now serving {} (expires {}{})",
                        fresh.credentials.access_key_id,
                        fresh
                            .credentials
                            .expiration
                            .to_rfc3339_opts(SecondsFormat::Secs, true),
                        fresh
                            .version
                            .as_deref()
                            .map(|v| format!(", version {v}"))
                            .unwrap_or_default()
                    );
                }
                let mut next = served(&fresh, now, self.source.polls().then_some(self.poll));
                if !changed {
                    // Keep the time of the first fetch: it dates the set's lifetime.
                    if let Some(old) = &cached.set {
                        next.fetched_at = old.fetched_at;
                    }
                }
                cached.set = Some(Arc::new(next));
                cached.last_error = None;
                cached.failures = 0;
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::warn!(
                    "refreshing {} failed (still serving the cached set until it expires): {message}",
                    self.source.describe()
                );
                cached.last_error = Some(message);
                cached.failures = cached.failures.saturating_add(1);
            }
        }
    }

    /// Keeps the cached set fresh until aborted.
    pub async fn refresh_forever(self: Arc<Self>) {
        loop {
            let wait = {
                let cached = self.cached.read().expect("no panic while held");
                next_wait(
                    Utc::now(),
                    cached.set.as_ref().map(|s| (s.expiration, s.fetched_at)),
                    self.margin,
                    self.source.polls().then_some(self.poll),
                    cached.failures,
                )
            };
            tokio::time::sleep(wait).await;
            self.refresh().await;
        }
    }
}

/// The router: every path answers the same (the printed URL names one).
pub fn app(endpoint: Arc<Endpoint>) -> Router {
    async fn handle(
        State(endpoint): State<Arc<Endpoint>>,
        method: Method,
        headers: HeaderMap,
    ) -> Response {
        let response = endpoint.answer(&method, &headers, Utc::now());
        if response.status() == StatusCode::FORBIDDEN {
            tokio::time::sleep(FAILED_ATTEMPT_DELAY).await;
        }
        response
    }
    Router::new().fallback(handle).with_state(endpoint)
}

/// Serves until `shutdown` completes, refreshing in the background.
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Arc<Endpoint>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = tokio::spawn(endpoint.clone().refresh_forever());
    let result = serve_bounded(
        listener,
        app(endpoint),
        shutdown,
        HEADER_READ_TIMEOUT,
        MAX_CONNECTIONS,
    )
    .await;
    refresher.abort();
    result
}

/// HTTP/1.1 with a header-read timeout and a bound on open connections; `axum::serve` has
/// neither. Connections live in a `JoinSet` (aborted when this returns) and, in the order they
/// came, in `open`.
///
/// At the bound, the oldest connection that is *waiting for its client* — its last read found
/// nothing: headers left unfinished, or idle between requests — is closed to make room for the
/// new one. One that has not been read yet, or has a request in hand, is never closed: under a
/// burst of real requests the accept loop runs ahead of the connections' tasks, and closing
/// those unread would drop requests that were about to be answered. When no connection is
/// waiting, accepting waits for one to finish (the kernel's backlog holds the rest).
async fn serve_bounded(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    header_read_timeout: Duration,
    max_connections: usize,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::collections::VecDeque;

    struct Open {
        task: tokio::task::AbortHandle,
        waiting: Arc<WaitingSince>,
    }
    /// Closes the oldest connection that has waited for its client for [`WAITING_GRACE`];
    /// `false` when none has.
    fn close_oldest_waiting(open: &mut VecDeque<Open>) -> bool {
        match open
            .iter()
            .position(|c| c.waiting.longer_than(WAITING_GRACE))
        {
            Some(i) => {
                if let Some(c) = open.remove(i) {
                    // Aborting its task drops its socket.
                    c.task.abort();
                }
                true
            }
            None => false,
        }
    }

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let service = hyper_util::service::TowerToHyperService::new(router);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut open: VecDeque<Open> = VecDeque::new();
    tokio::pin!(shutdown);
    'accepting: loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (other work in the process holds some): make room, and
                // give the aborted task a moment to close its socket. Any other error belongs
                // to one connection that went away before it was accepted.
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    tracing::debug!("accepting a connection: {e}; closing the oldest idle one");
                    close_oldest_waiting(&mut open);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        // Room for it: a connection that finished, or the oldest waiting one closed. Until
        // then nothing else is accepted (the kernel's backlog holds the next ones).
        loop {
            while connections.try_join_next().is_some() {}
            open.retain(|c| !c.task.is_finished());
            if open.len() < max_connections || close_oldest_waiting(&mut open) {
                break;
            }
            tokio::select! {
                _ = &mut shutdown => break 'accepting,
                _ = connections.join_next() => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        let waiting = Arc::new(WaitingSince::default());
        let io = TokioIo::new(Watched {
            stream,
            waiting: waiting.clone(),
        });
        let connection = http.serve_connection(io, service.clone());
        let mut stopping = stopping.clone();
        let task = connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    // Finishes an answer in flight, then closes (idle ones close at once).
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        open.push_back(Open { task, waiting });
    }
    drop(listener);
    let _ = stop.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
    Ok(())
}

/// How long a connection must have waited for its client before it may be closed to make room.
/// Even on a loopback connection, a client writes its request a moment after connecting (under
/// a burst, many moments: a thousand concurrent requests from one thread), and that moment looks
/// exactly like a client that never sends; this is far longer than such a moment, and far
/// shorter than the header-read timeout, so stalled connections still make room quickly.
const WAITING_GRACE: Duration = Duration::from_millis(500);

/// Since when a connection's reads have found nothing (it waits for its client: headers left
/// unfinished, or idle between requests); never, while it has something to read.
struct WaitingSince(std::sync::Mutex<Option<std::time::Instant>>);

impl Default for WaitingSince {
    fn default() -> Self {
        Self(std::sync::Mutex::new(None))
    }
}

impl WaitingSince {
    fn set(&self, waiting: bool) {
        // A std mutex: held for a few instructions, never across an await.
        let mut since = self.0.lock().expect("no panic while held");
        match (waiting, *since) {
            (true, None) => *since = Some(std::time::Instant::now()),
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }

    fn longer_than(&self, grace: Duration) -> bool {
        self.0
            .lock()
            .expect("no panic while held")
            .is_some_and(|since| since.elapsed() >= grace)
    }
}

/// A connection's socket that records since when its reads have found nothing, for
/// [`serve_bounded`]'s choice of which connection to close.
struct Watched {
    stream: tokio::net::TcpStream,
    waiting: Arc<WaitingSince>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let read = std::pin::Pin::new(&mut this.stream).poll_read(cx, buf);
        this.waiting.set(read.is_pending());
        read
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The addresses the endpoint may listen on: the SDKs accept plain http only to loopback and
/// the container link-local addresses (ECS 169.254.170.2, EKS Pod Identity 169.254.170.23 and
/// fd00:ec2::23), and anything else would put the credentials on the network.
pub fn check_listen(addr: &SocketAddr) -> anyhow::Result<()> {
    let allowed = match addr.ip() {
        IpAddr::V4(ip) => {
            ip.is_loopback()
                || ip == Ipv4Addr::new(169, 254, 170, 2)
                || ip == Ipv4Addr::new(169, 254, 170, 23)
        }
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
        }
    };
    anyhow::ensure!(
        allowed,
        "--listen {addr}: the endpoint listens only on loopback (127.0.0.0/8, ::1) or 169.254.170.2, 169.254.170.23, fd00:ec2::23; the AWS SDKs refuse plain http anywhere else"
    );
    Ok(())
}

/// The `AWS_CONTAINER_CREDENTIALS_FULL_URI` for a bound address.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// A fresh token: 32 random bytes, base64url (43 characters no shell or header treats specially).
pub fn generate_token() -> anyhow::Result<SecretString> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the token: {e}"))?;
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

/// The shortest token `--token-file` may hold (issue #27, F6): guessing one costs
/// [`FAILED_ATTEMPT_DELAY`] per attempt and connection, which only a long token makes hopeless.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Checks a token read from `--token-file`. Both SDKs send the file's bytes as they are, so a
/// trailing newline (what `echo` and most editors write) would never match: refused, not trimmed.
/// Errors never quote the token.
pub fn check_token(text: &str) -> anyhow::Result<()> {
    anyhow::ensure!(!text.is_empty(), "--token-file is empty");
    anyhow::ensure!(
        !text.ends_with('\n') && !text.ends_with('\r'),
        "--token-file ends with a line break, which the AWS SDKs would send as part of the token: write it without one (printf '%s' \"$TOKEN\" > FILE)"
    );
    anyhow::ensure!(
        text.bytes().all(|b| (0x21..=0x7e).contains(&b) || b == b' ')
            && !text.starts_with(' ')
            && !text.ends_with(' '),
        "--token-file must hold printable ASCII only (an HTTP header value), without leading or trailing spaces"
    );
    anyhow::ensure!(
        text.len() >= MIN_TOKEN_CHARS,
        "--token-file holds a token of {} characters; it needs at least {MIN_TOKEN_CHARS} (without --token-file, serve-credentials generates one of 43; to make one: head -c 32 /dev/urandom | base64 | tr -d '\\n=')",
        text.len()
    );
    Ok(())
}

/// Warnings about who else can read or change a `--token-file` (issue #27, F6), from its mode,
/// its owner and this process's effective user (pure). Anyone who reads the token takes the
/// credentials; anyone who can write it (its owner, or a group- or world-writable mode) can set
/// a token they know. A file root owns is no warning: root reads every file anyway, and
/// Kubernetes and Container Apps mount secrets as root's.
pub fn token_file_warnings(path: &str, mode: u32, owner: u32, me: u32) -> Vec<String> {
    let mut warnings = vec![];
    if mode & 0o077 != 0 {
        let who = match (mode & 0o070 != 0, mode & 0o007 != 0) {
            (true, true) => "its group and every other user",
            (true, false) => "its group",
            _ => "every other user",
        };
        warnings.push(format!(
            "--token-file {path} is open to {who} (mode {:04o}): whoever reads it can take the credentials this endpoint serves; make it private (chmod 600 {path})",
            mode & 0o7777
        ));
    }
    if owner != me && owner != 0 {
        warnings.push(format!(
            "--token-file {path} belongs to another user (uid {owner}), who can read it and change the token; use a file of your own"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_900_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_minted_set_is_renewed_a_margin_before_it_expires_capped_at_half_its_life() {
        let m = chrono::Duration::minutes(20);
        // An hour-long set fetched at 0: renewed at 40 minutes.
        assert_eq!(
            next_wait(t(0), Some((t(3600), t(0))), m, None, 0),
            Duration::from_secs(2400)
        );
        // A 60 s set (the test bed's override): renewed at half-life.
        assert_eq!(
            next_wait(t(0), Some((t(60), t(0))), m, None, 0),
            Duration::from_secs(30)
        );
        // Already inside the margin: at once, but never a busy loop.
        assert_eq!(
            next_wait(t(50), Some((t(60), t(0))), m, None, 0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_polled_set_is_advertised_as_expiring_within_botocores_window_plus_two_polls() {
        let now = t(0);
        let poll = Some(Duration::from_secs(30));
        let two_hours = now + chrono::Duration::hours(2);
        assert_eq!(
            advertised_expiry(two_hours, now, poll),
            now + chrono::Duration::minutes(16)
        );
        let five_minutes = now + chrono::Duration::minutes(5);
        assert_eq!(advertised_expiry(five_minutes, now, poll), five_minutes);
        // A minted set (SSO, web identity) is not polled: told its real expiry.
        assert_eq!(advertised_expiry(two_hours, now, None), two_hours);
    }

    #[test]
    fn a_polled_source_is_polled_and_failures_back_off() {
        let m = chrono::Duration::minutes(20);
        let poll = Some(Duration::from_secs(30));
        assert_eq!(
            next_wait(t(0), Some((t(60), t(0))), m, poll, 0),
            Duration::from_secs(30)
        );
        assert_eq!(next_wait(t(0), None, m, None, 1), Duration::from_secs(1));
        assert_eq!(next_wait(t(0), None, m, None, 3), Duration::from_secs(4));
        assert_eq!(next_wait(t(0), None, m, None, 30), MAX_BACKOFF);
        assert_eq!(next_wait(t(0), None, m, poll, 30), Duration::from_secs(30));
    }

    #[test]
    fn the_token_must_match_exactly() {
        let token = SecretString::from("abc".to_string());
        assert_eq!(
            authorize(&token, None).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            authorize(&token, Some(b"abd")).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            authorize(&token, Some(b"abc\n")).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            authorize(&token, Some(b"")).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        assert!(authorize(&token, Some(b"abc")).is_ok());
    }

    #[test]
    fn only_loopback_and_the_container_addresses_are_listened_on() {
        for ok in [
            "127.0.0.1:0",
            "127.1.2.3:80",
            "[::1]:0",
            "169.254.170.2:80",
            "169.254.170.23:80",
            "[fd00:ec2::23]:80",
        ] {
            assert!(check_listen(&ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for no in ["0.0.0.0:0", "10.0.0.1:80", "[::]:0", "169.254.169.254:80"] {
            let e = check_listen(&no.parse().unwrap()).unwrap_err().to_string();
            assert!(e.contains("--listen"), "{e}");
        }
        assert_eq!(url("[::1]:8080".parse().unwrap()), "http://[::1]:8080/");
    }

    #[test]
    fn a_token_file_with_a_line_break_is_refused() {
        assert!(check_token("s3cr3t-token-of-sixteen").is_ok());
        assert!(check_token("Bearer abcdefghijklmnop").is_ok());
        assert!(check_token("s3cr3t-token-of-sixteen\n")
            .unwrap_err()
            .to_string()
            .contains("line break"));
        assert!(check_token("").is_err());
        assert!(check_token("a\tb").is_err());
        let generated = generate_token().unwrap();
        assert_eq!(generated.expose_secret().len(), 43);
        assert!(check_token(generated.expose_secret()).is_ok());
    }

    /// Issue #27, F6: a short token is refused, without being quoted.
    #[test]
    fn a_token_shorter_than_sixteen_characters_is_refused() {
        let e = check_token("s3cr3t-fifteen!").unwrap_err().to_string();
        assert!(e.contains("at least 16") && !e.contains("s3cr3t"), "{e}");
        assert!(check_token("x").is_err());
        assert!(check_token("s3cr3t-sixteen!!").is_ok());
    }

    /// Issue #27, F6: a token file others can read or change, or another user owns, is warned
    /// about; a private one of one's own (or root's, as Kubernetes mounts secrets) is not.
    #[test]
    fn a_token_file_open_to_others_or_owned_by_another_user_is_warned_about() {
        assert!(token_file_warnings("t", 0o100600, 1000, 1000).is_empty());
        assert!(token_file_warnings("t", 0o100400, 0, 1000).is_empty());
        let w = token_file_warnings("/tmp/t", 0o100644, 1000, 1000);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("its group and every other user") && w[0].contains("0644"),
            "{w:?}"
        );
        let w = token_file_warnings("t", 0o100640, 1000, 1000);
        assert!(w[0].contains("its group (mode 0640)"), "{w:?}");
        let w = token_file_warnings("t", 0o100602, 1000, 1000);
        assert!(w[0].contains("every other user"), "{w:?}");
        let w = token_file_warnings("t", 0o100600, 1001, 1000);
        assert!(w[0].contains("uid 1001"), "{w:?}");
        assert_eq!(token_file_warnings("t", 0o100644, 1001, 0).len(), 2);
    }

    #[test]
    fn the_json_names_the_token_token() {
        let fresh = Fresh {
            credentials: crate::secrets::SessionCredentials::new_at(
                "ASIAEXAMPLEEXAMPLE01",
                SecretString::from("s3cr3tValueOfFortyCharactersExample/+0=".to_string()),
                SecretString::from("FwoGZXIvYXdzEt0k3nValueExample+/=".to_string()),
                t(0),
                t(-3600),
            )
            .unwrap(),
            version: None,
            account_id: Some("123456789012".into()),
        };
        let v: serde_json::Value =
            serde_json::from_str(render(&fresh, fresh.credentials.expiration).expose_secret())
                .unwrap();
        assert_eq!(v["Token"], "FwoGZXIvYXdzEt0k3nValueExample+/=");
        assert!(v.get("SessionToken").is_none());
        assert_eq!(v["AccountId"], "123456789012");
        assert!(v["Expiration"].as_str().unwrap().ends_with('Z'));
    }

    /// A server with small bounds, and a way to tell whether a connection was closed.
    async fn bounded(
        header_read_timeout: Duration,
        max: usize,
    ) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = Router::new().fallback(|| async { "ok" });
        tokio::spawn(serve_bounded(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            header_read_timeout,
            max,
        ));
        (addr, stop)
    }

    /// Whether the server closed `stream` (EOF or reset within `within`).
    async fn closed(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    async fn stalled(addr: SocketAddr) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        s
    }

    #[tokio::test]
    async fn a_connection_that_never_finishes_its_headers_is_closed_after_the_timeout() {
        let (addr, _stop) = bounded(Duration::from_millis(300), 8).await;
        let mut s = stalled(addr).await;
        assert!(!closed(&mut s, Duration::from_millis(100)).await);
        assert!(closed(&mut s, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn at_the_bound_the_oldest_waiting_connection_makes_room_for_a_new_one() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (addr, _stop) = bounded(Duration::from_secs(30), 2).await;
        let mut first = stalled(addr).await;
        let mut second = stalled(addr).await;
        tokio::time::sleep(WAITING_GRACE + Duration::from_millis(200)).await;

        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();

        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            closed(&mut first, Duration::from_secs(1)).await,
            "the oldest made room"
        );
        assert!(!closed(&mut second, Duration::from_millis(200)).await);
    }
}
