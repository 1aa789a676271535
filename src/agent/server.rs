//! The agent's HTTP surface: `/metrics`, `/healthz`, `/readyz`, `/status` and
//! the status page at `/`. Connections are capped and headers must arrive
//! within a few seconds, so slow or numerous clients cannot delay rounds.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::State;
use crate::render;

/// Connections served at once; more are closed immediately (but see
/// [`HEALTH_RESERVE`]).
pub const MAX_CONNECTIONS: usize = 64;
/// Connections one source address may hold at once: one client (a
/// neighbouring pod that opens connections and sends nothing) cannot take
/// every slot from Prometheus and kubelet.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 8;
/// Connections beyond [`MAX_CONNECTIONS`] that answer `/healthz` and
/// `/readyz` only: kubelet's probes are answered even when many clients
/// hold every other slot, so a flood does not make kubelet restart the
/// agent it is flooding.
pub const HEALTH_RESERVE: usize = 8;
/// Time a client has to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The same on a reserve connection: a client that takes one and sends
/// nothing gives it back within a second, before kubelet's next try.
pub const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a single connection may live.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The connections each source address holds.
#[derive(Default)]
struct Clients(std::sync::Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its source address until dropped.
struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Clients {
    fn claim(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut held = self.0.lock().ok()?;
        let n = held.entry(ip).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.clients.0.lock()
            && let Some(n) = held.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

pub async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let general = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let reserve = Arc::new(Semaphore::new(HEALTH_RESERVE));
    let clients = Arc::new(Clients::default());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            // Out of file descriptors and the like: back off briefly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ip = peer.ip().to_canonical();
        let Some(slot) = clients.claim(ip) else {
            drop(stream);
            continue;
        };
        let (permit, health_only) = match general.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => {
                    drop(stream);
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
            let service = service_fn(move |req| {
                let state = state.clone();
                async move {
                    Ok::<_, Infallible>(if health_only {
                        route_health_only(&state, &req)
                    } else {
                        route(&state, &req)
                    })
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(if health_only {
                    RESERVE_HEADER_TIMEOUT
                } else {
                    HEADER_TIMEOUT
                })
                .max_buf_size(16 * 1024)
                .keep_alive(!health_only)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
    }
}

/// A connection from the reserve: the health checks, nothing else.
fn route_health_only(state: &State, req: &Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" | "/readyz" => route(state, req),
        _ => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "busy: every connection slot is taken; only /healthz and /readyz are answered\n",
        ),
    }
}

/// Every answer's body: one or more shared chunks.
pub type Body = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    chunks(status, content_type, vec![body.into()])
}

/// A body sent as `parts`, in order, without copying them together.
fn chunks(status: StatusCode, content_type: &'static str, parts: Vec<Bytes>) -> Response<Body> {
    let length = parts.iter().map(Bytes::len).sum::<usize>();
    let body = if parts.len() == 1 {
        Full::new(parts.into_iter().next().unwrap_or_default()).boxed()
    } else {
        StreamBody::new(futures_util::stream::iter(
            parts.into_iter().map(|b| Ok::<_, Infallible>(Frame::data(b))),
        ))
        .boxed()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// Answers one request (pure apart from reading the shared state).
pub fn route(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let all = req.uri().query() == Some("targets=all");
    route_query(state, req.method(), req.uri().path(), all)
}

pub fn route_parts(state: &State, method: &Method, path: &str) -> Response<Body> {
    route_query(state, method, path, false)
}

/// `route_parts`, with `?targets=all` given to `/status/summary`.
fn route_query(state: &State, method: &Method, path: &str, all_targets: bool) -> Response<Body> {
    let known = matches!(
        path,
        "/" | "/metrics" | "/healthz" | "/readyz" | "/status" | "/status/summary"
    );
    if !known {
        return text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut resp = match path {
        "/metrics" => chunks(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.exposition().to_vec(),
        ),
        "/healthz" if state.live() => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        "/healthz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "not live: no round has completed within the liveness window\n",
        ),
        "/readyz" if state.ready() => text(StatusCode::OK, "text/plain; charset=utf-8", "ready\n"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "not ready: no round has completed yet\n",
        ),
        "/status" | "/status/summary" => match state.published() {
            Some(p) if path == "/status" => text(StatusCode::OK, "application/json", p.json()),
            Some(p) => text(StatusCode::OK, "application/json", p.summary(all_targets)),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "application/json",
                "{\"ready\":false,\"message\":\"no round has completed yet\"}\n",
            ),
        },
        _ => {
            // The round's parts are shared; only the head and the age line
            // are made per request.
            let parts = render::html::parts(&state.page_context(), state.published().map(|p| p.page()));
            let mut r = chunks(StatusCode::OK, "text/html; charset=utf-8", parts);
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
                ),
            );
            r
        }
    };
    if method == Method::HEAD {
        *resp.body_mut() = Full::new(Bytes::new()).boxed();
    }
    resp
}
