//! The network as every remote call sees it: one tokio runtime per command, DNS through
//! hickory (no glibc name-service modules, so the same binary resolves names anywhere),
//! TLS with the bundled Mozilla roots (an old host or a bare job image needs none), and
//! gRPC channels and an HTTP client built on those.

use anyhow::{Context, Result};
use hickory_resolver::TokioResolver;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// A current-thread runtime for one command's remote work.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    install_crypto();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")
}

/// rustls needs one process-wide crypto provider; aws-lc-rs is the one reqwest uses.
fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Resolves host names with hickory, reading /etc/resolv.conf (or public resolvers when
/// there is none).
#[derive(Clone, Default)]
pub struct Resolver {
    inner: Arc<OnceLock<TokioResolver>>,
}

impl Resolver {
    fn get(&self) -> Result<&TokioResolver, std::io::Error> {
        if let Some(r) = self.inner.get() {
            return Ok(r);
        }
        let builder = TokioResolver::builder_tokio().or_else(|_| {
            Ok::<_, std::io::Error>(TokioResolver::builder_with_config(
                hickory_resolver::config::ResolverConfig::udp_and_tcp(
                    &hickory_resolver::config::GOOGLE,
                ),
                Default::default(),
            ))
        })?;
        let resolver = builder
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(self.inner.get_or_init(|| resolver))
    }
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let resolver = this.get()?;
            let found = resolver
                .lookup_ip(name.as_str())
                .await
                .map_err(|e| std::io::Error::other(format!("cannot resolve {name}: {e}")))?;
            let addrs: Vec<SocketAddr> = found.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(addrs.into_iter())
        })
    }
}

/// A gRPC channel to `url` (`https://host:443`, or `http://127.0.0.1:port` for tests);
/// it connects on first use.
pub fn channel(url: &str, timeout: Duration) -> Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("remote endpoint «{url}» is not a URL"))?
        .connect_timeout(timeout)
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .http2_keep_alive_interval(Duration::from_secs(30));
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .context("TLS for the remote endpoint")?;
    }
    let mut connector = HttpConnector::new_with_resolver(Resolver::default());
    connector.enforce_http(false);
    connector.set_nodelay(true);
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// The HTTP client for the IAM exchange and presigned transfers: hickory DNS, bundled
/// roots, `timeout` per request (transfers of big files get their own, longer one).
pub fn http(timeout: Duration) -> Result<reqwest::Client> {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .hickory_dns(true)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .build()
        .context("building the HTTP client")
}
