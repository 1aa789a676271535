//! HTTP phase: one request that needs no credentials, over the verified TLS
//! connection, with the body read up to a cap. The target's service module
//! (`service::of`) says what to ask and which headers to keep; what the
//! answer means is judged there too, through the verdict layer.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, timeout_at};

use crate::observation::{HttpObservation, HttpOutcome, HttpResponse};
use crate::service::Service;

/// At most this many body bytes are read and kept.
pub const BODY_CAP: usize = 8 * 1024;
pub async fn request(
    stream: super::tls::Stream,
    fqdn: &str,
    port: u16,
    service: Service,
    limit: Duration,
) -> HttpObservation {
    let start = Instant::now();
    let deadline = start + limit;
    let outcome = exchange(stream, fqdn, port, service, deadline).await;
    HttpObservation {
        outcome,
        duration: start.elapsed(),
    }
}

async fn exchange(
    stream: super::tls::Stream,
    fqdn: &str,
    port: u16,
    service: Service,
    deadline: Instant,
) -> HttpOutcome {
    let handshake = hyper::client::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream));
    let (mut sender, conn) = match timeout_at(deadline, handshake).await {
        Err(_) => return HttpOutcome::Timeout,
        Ok(Err(e)) => return HttpOutcome::Failed(format!("HTTP handshake: {e}")),
        Ok(Ok(pair)) => pair,
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = if port == 443 {
        fqdn.to_string()
    } else {
        format!("{fqdn}:{port}")
    };
    let svc = crate::service::of(service);
    let ask = svc.request();
    let mut builder = Request::get(ask.path)
        .header(header::HOST, host)
        .header(header::USER_AGENT, concat!("netprobe/", env!("CARGO_PKG_VERSION")))
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close");
    for (name, value) in ask.headers {
        builder = builder.header(*name, *value);
    }
    let req = match builder.body(Empty::new()) {
        Ok(r) => r,
        Err(e) => return HttpOutcome::Failed(format!("cannot build request: {e}")),
    };
    let result = async {
        let resp = match timeout_at(deadline, sender.send_request(req)).await {
            Err(_) => return HttpOutcome::Timeout,
            Ok(Err(e)) => return HttpOutcome::Failed(format!("HTTP request: {e}")),
            Ok(Ok(r)) => r,
        };
        let headers = svc
            .headers()
            .iter()
            .filter_map(|name| {
                let value = resp.headers().get(*name)?;
                Some((name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            })
            .collect();
        let mut out = HttpResponse {
            status: resp.status().as_u16(),
            headers,
            body: String::new(),
        };
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        while bytes.len() < BODY_CAP {
            // A body that trickles or never ends is cut at the deadline; what
            // arrived so far is still judged.
            match timeout_at(deadline, body.frame()).await {
                Err(_) | Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let take = data.len().min(BODY_CAP - bytes.len());
                        bytes.extend_from_slice(&data[..take]);
                    }
                }
            }
        }
        out.body = String::from_utf8_lossy(&bytes).into_owned();
        HttpOutcome::Response(out)
    }
    .await;
    driver.abort();
    result
}
