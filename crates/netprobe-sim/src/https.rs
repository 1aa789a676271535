//! TLS endpoints for the simulated VNet and tests: a rustls server with a
//! certificate from the sim CA, answering every request with one canned reply.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::pki::Leaf;

/// The canned answer. Header values may contain `{peer}`, replaced by the
/// client's address (as Key Vault's `x-ms-keyvault-network-info` does).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Answer only after this long (a slow server).
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: None,
        }
    }

    /// The same answer, after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// ACR's `/v2/` challenge for an anonymous client.
    pub fn acr_challenge(registry_fqdn: &str) -> Reply {
        Reply::new(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
        )
        .header(
            "www-authenticate",
            &format!(r#"Bearer realm="https://{registry_fqdn}/oauth2/token",service="{registry_fqdn}""#),
        )
    }

    /// ACR refusing a client outside its allowed networks.
    pub fn acr_denied() -> Reply {
        Reply::new(
            403,
            r#"{"errors":[{"code":"DENIED","message":"client with IP '203.0.113.7' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}]}"#,
        )
    }

    /// Key Vault's anonymous `/healthstatus`.
    pub fn keyvault_health() -> Reply {
        Reply::new(200, "").header(
            "x-ms-keyvault-network-info",
            "conn_type=Ipv4;addr={peer};act_addr_fam=InterNetwork;",
        )
    }

    /// Storage's answer to an anonymous list call with a recent x-ms-version.
    pub fn storage_anonymous() -> Reply {
        Reply::new(
            401,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>NoAuthenticationInformation</Code><Message>Server failed to authenticate the request. Please refer to the information in the www-authenticate header.</Message></Error>",
        )
    }

    /// Storage's public endpoint under an enforced network security perimeter
    /// that has no inbound rule for the caller.
    pub fn storage_perimeter_denied() -> Reply {
        Reply::new(
            403,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationFailure</Code><Message>This request is not authorized by network security perimeter to perform this operation.\nRequestId:5c1f0a3e-701e-0042-0b8e-1f3b2a000000\nTime:2026-12-07T09:00:00.0000000Z</Message></Error>",
        )
    }

    /// Key Vault's public endpoint under an enforced network security
    /// perimeter that has no inbound rule for the caller.
    pub fn keyvault_perimeter_denied() -> Reply {
        Reply::new(
            403,
            r#"{"error":{"code":"Forbidden","message":"Request was not allowed by the network security perimeter: no access rule of the perimeter profile matches the client.
Client address: {peer}","innererror":{"code":"ForbiddenByNsp"}}}"#,
        )
    }

    /// An AML workspace API answering without a token.
    pub fn workspace_unauthorized() -> Reply {
        Reply::new(
            401,
            r#"{"error":{"code":"UserError","message":"Authentication required"}}"#,
        )
    }
}

/// A running endpoint; stops when dropped.
/// A request as a routed server sees it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub authorization: Option<String>,
    /// The `Accept` header (a Kubernetes client asking for a Table).
    pub accept: Option<String>,
}

/// How a routed server answers.
pub type Route = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct HttpsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    stats: Arc<Stats>,
}

/// What a server saw: requests, how many at once at most, body bytes sent.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub body_bytes: AtomicU64,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpsServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests, concurrency and bytes seen so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Serves `reply` over TLS with `leaf` on `listener`.
    pub fn serve(listener: TcpListener, leaf: &Leaf, reply: Reply) -> std::io::Result<HttpsServer> {
        let reply = Arc::new(reply);
        Self::serve_with(listener, leaf, Arc::new(move |_: &Seen| (*reply).clone()))
    }

    /// Serves over TLS with `leaf` on `listener`, answering each request with
    /// `route(request)`: a small fake API server, for instance.
    pub fn serve_with(listener: TcpListener, leaf: &Leaf, route: Route) -> std::io::Result<HttpsServer> {
        let addr = listener.local_addr()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(leaf.chain.clone(), leaf.clone_key())
            .map_err(std::io::Error::other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let stats = Arc::new(Stats::default());
        let counted = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let route = route.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = Seen {
                            method: req.method().to_string(),
                            path: req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                            authorization: req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string),
                            accept: req
                                .headers()
                                .get("accept")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string),
                        };
                        let reply = route(&seen);
                        let stats = counted.clone();
                        async move {
                            stats.requests.fetch_add(1, Ordering::Relaxed);
                            let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                            stats.max_in_flight.fetch_max(now, Ordering::Relaxed);
                            if let Some(d) = reply.delay {
                                tokio::time::sleep(d).await;
                            }
                            stats.body_bytes.fetch_add(reply.body.len() as u64, Ordering::Relaxed);
                            stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(build(&reply, peer.ip()))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(HttpsServer { addr, task, stats })
    }

    /// Binds `ip:port` (0 for a free port) and serves.
    pub async fn start(ip: IpAddr, port: u16, leaf: &Leaf, reply: Reply) -> std::io::Result<HttpsServer> {
        let listener = TcpListener::bind(SocketAddr::new(ip, port)).await?;
        Self::serve(listener, leaf, reply)
    }
}

fn build(reply: &Reply, peer: IpAddr) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(reply.body.clone())));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &reply.headers {
        let value = value.replace("{peer}", &peer.to_string());
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}
