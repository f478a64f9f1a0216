//! A loopback HTTPS proxy (HTTP `CONNECT`) that tunnels only the names it was given, so that
//! stsbridge reaches the test bed's vault as `https://kv.vault.test` — a host inside the
//! challenge resource's domain (`https://vault.test`), on the default port like a real vault —
//! with `KeyVaultVerifyChallengeResource` at its production default (on), and no resolver
//! override or `/etc/hosts` edit anywhere (issue #24).
//!
//! Clients find it through the standard variables reqwest (and so the Azure SDK), botocore and
//! most tools read: `HTTPS_PROXY=http://127.0.0.1:P` and `NO_PROXY=127.0.0.1,localhost,::1`.
//! The client never resolves the name itself: it asks the proxy to `CONNECT kv.vault.test:443`
//! and speaks TLS through the tunnel, checking the vault's certificate for that name. `.test`
//! never resolves publicly (RFC 2606), so a client that ignored the proxy fails closed. Every
//! other target is refused with `403`, and recorded, so a test can prove nothing else went
//! through it. The same path is what stsbridge takes behind a corporate proxy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The largest `CONNECT` request head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// A running proxy; dropping it stops accepting (open tunnels end with their connections).
pub struct Proxy {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, SocketAddr>>>,
    log: Arc<Mutex<Vec<Tunnel>>>,
    task: JoinHandle<()>,
}

/// One `CONNECT` the proxy answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// `host:port` as the client asked for it.
    pub target: String,
    /// Whether it was tunnelled (a known name) or refused.
    pub allowed: bool,
}

impl Proxy {
    /// Binds 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let routes: Arc<Mutex<HashMap<String, SocketAddr>>> = Arc::default();
        let log: Arc<Mutex<Vec<Tunnel>>> = Arc::default();
        let (r, l) = (routes.clone(), log.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                tokio::spawn(tunnel(client, r.clone(), l.clone()));
            }
        });
        Ok(Self {
            addr,
            routes,
            log,
            task,
        })
    }

    /// Tunnels `host:port` (compared case-insensitively) to `to`.
    pub fn route(&self, host_port: &str, to: SocketAddr) {
        self.routes
            .lock()
            .unwrap()
            .insert(host_port.to_ascii_lowercase(), to);
    }

    /// `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every `CONNECT` so far.
    pub fn tunnels(&self) -> Vec<Tunnel> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tunnel(
    mut client: TcpStream,
    routes: Arc<Mutex<HashMap<String, SocketAddr>>>,
    log: Arc<Mutex<Vec<Tunnel>>>,
) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let end = loop {
        let Ok(n) = client.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            let _ = client
                .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            return;
        }
    };
    let request_line = String::from_utf8_lossy(&head[..end]);
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if !method.eq_ignore_ascii_case("CONNECT") {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        log.lock().unwrap().push(Tunnel {
            target: format!("{method} {target}"),
            allowed: false,
        });
        return;
    }
    let to = routes
        .lock()
        .unwrap()
        .get(&target.to_ascii_lowercase())
        .copied();
    log.lock().unwrap().push(Tunnel {
        target: target.to_string(),
        allowed: to.is_some(),
    });
    let Some(to) = to else {
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(to).await else {
        let _ = client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    let _ = upstream.set_nodelay(true);
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    // Bytes the client sent right behind its head (a TLS ClientHello) belong to the tunnel.
    if end < head.len() && upstream.write_all(&head[end..]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connect(proxy: &Proxy, target: &str) -> String {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn only_a_routed_name_is_tunnelled() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let proxy = Proxy::start().await.unwrap();
        proxy.route("KV.vault.test:443", echo_addr);

        assert!(connect(&proxy, "evil.example:443")
            .await
            .starts_with("HTTP/1.1 403"));

        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(b"CONNECT kv.vault.test:443 HTTP/1.1\r\n\r\nhello")
            .await
            .unwrap();
        let mut got = vec![];
        let mut buf = [0u8; 64];
        while !got.ends_with(b"hello") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "tunnel closed: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"));
        assert_eq!(
            proxy.tunnels(),
            vec![
                Tunnel {
                    target: "evil.example:443".into(),
                    allowed: false
                },
                Tunnel {
                    target: "kv.vault.test:443".into(),
                    allowed: true
                }
            ]
        );
    }
}
