//! The accept loop every test-bed server shares: plain HTTP or TLS, on a listener the caller bound.
//!
//! It exists (instead of `axum::serve`) for two reasons: TLS for the Key Vault, and the ability to
//! drop a connection without answering, which real networks do and `axum::serve` cannot. A handler
//! asks for that by putting [`DropConnection`] in its response's extensions.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// Marker a handler puts in a response's extensions to have the connection closed unanswered.
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

/// A running server; dropping it stops the accept loop and every open connection.
pub struct Server {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `router` on `listener`, with TLS when `tls` is given.
    pub fn spawn(
        listener: TcpListener,
        router: Router,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(conn) => conn,
                        Err(_) => continue,
                    },
                    _ = stopped.changed() => return,
                };
                let router = router.clone();
                let acceptor = acceptor.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                            let router = router.clone();
                            async move {
                                let response = router.oneshot(req.map(axum::body::Body::new)).await;
                                let response: axum::response::Response = match response {
                                    Ok(r) => r,
                                    Err(never) => match never {},
                                };
                                if response.extensions().get::<DropConnection>().is_some() {
                                    return Err(std::io::Error::other(
                                        "connection dropped on purpose",
                                    ));
                                }
                                Ok::<_, std::io::Error>(response)
                            }
                        });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            tokio::select! { _ = conn => {}, _ = stopped.changed() => {} }
                        }
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(tcp), service);
                            tokio::select! { _ = conn => {}, _ = stopped.changed() => {} }
                        }
                    }
                });
            }
        });
        Ok(Self { addr, stop, task })
    }

    /// Binds 127.0.0.1 on a free port and serves there.
    pub async fn bind_and_spawn(
        router: Router,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::spawn(listener, router, tls)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}
