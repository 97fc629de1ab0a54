//! The anchor: a bare hyper HTTP/1.1 hello server in this process, on its own loopback port and
//! its own two-worker tokio runtime (the shape of `gust up`'s), answering every request with a
//! small JSON body after reading the request body. It checks no signature and runs no function,
//! so Gust's latency minus this one is what Gust adds.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: &[u8] = br#"{"statusCode":200,"body":"hello from hyper"}"#;

/// A running baseline server. It lives until the process exits.
#[derive(Debug)]
pub struct Baseline {
    pub addr: SocketAddr,
}

pub fn start() -> Result<Baseline> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding the baseline server")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("baseline")
        .enable_all()
        .build()
        .context("baseline runtime")?;
    std::thread::Builder::new()
        .name("baseline-main".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("baseline server: {e}");
                        return;
                    }
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let service =
                            service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                                let _ = req.into_body().collect().await;
                                let mut resp =
                                    hyper::Response::new(Full::new(Bytes::from_static(BODY)));
                                resp.headers_mut().insert(
                                    http::header::CONTENT_TYPE,
                                    http::HeaderValue::from_static("application/json"),
                                );
                                Ok::<_, Infallible>(resp)
                            });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })?;
    Ok(Baseline { addr })
}
