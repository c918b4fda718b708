//! A loopback OTLP/HTTP sink for the end-to-end peer bench: it decodes every request (gzip or
//! not) as an `ExportTraceServiceRequest` and counts spans, requests and bytes on the wire.
//! `GET /count` answers `<spans> <requests> <bytes> <undecodable>`.
//!
//! It runs as a process of its own, so the producer's CPU time does not include it. It prints
//! `listening <port>` once bound to 127.0.0.1, and exits when its standard input closes.

use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

#[derive(Debug, Default)]
struct Counts {
    spans: AtomicU64,
    requests: AtomicU64,
    bytes: AtomicU64,
    undecodable: AtomicU64,
}

/// Spans in one request body, or `None` if it is not a (gzipped) OTLP protobuf.
fn spans_in(body: &[u8], gzip: bool) -> Option<u64> {
    let mut plain = Vec::new();
    let body = if gzip {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut plain)
            .ok()?;
        &plain[..]
    } else {
        body
    };
    let request = ExportTraceServiceRequest::decode(body).ok()?;
    Some(
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum(),
    )
}

async fn serve(
    req: Request<Incoming>,
    counts: Arc<Counts>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET {
        let c = &counts;
        let text = format!(
            "{} {} {} {}",
            c.spans.load(Ordering::SeqCst),
            c.requests.load(Ordering::SeqCst),
            c.bytes.load(Ordering::SeqCst),
            c.undecodable.load(Ordering::SeqCst)
        );
        return Ok(Response::new(Full::new(Bytes::from(text))));
    }
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    counts.bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
    match spans_in(&body, gzip) {
        Some(n) => counts.spans.fetch_add(n, Ordering::SeqCst),
        None => counts.undecodable.fetch_add(1, Ordering::SeqCst),
    };
    counts.requests.fetch_add(1, Ordering::SeqCst);
    let mut response = Response::new(Full::new(Bytes::new()));
    response.headers_mut().insert(
        "content-type",
        "application/x-protobuf".parse().expect("a valid header"),
    );
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?.port());
        let counts = Arc::new(Counts::default());
        // Exits when the parent closes our standard input (or dies).
        std::thread::spawn(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            std::process::exit(0);
        });
        loop {
            let (stream, _) = listener.accept().await?;
            let counts = counts.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| serve(req, counts.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
