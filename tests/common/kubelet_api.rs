//! The fake kubelet's HTTPS endpoint: what the API server proxies `pods/log` to.
//!
//! A real kubelet serves `GET /containerLogs/{namespace}/{pod}/{container}` on its port (the
//! Node's `status.daemonEndpoints.kubeletEndpoint`), over TLS with a certificate the API
//! server checks (`--kubelet-certificate-authority`), and accepts only clients with a
//! certificate of the cluster's CA (the API server's `--kubelet-client-certificate`). This
//! does the same for the containers [`FakeKubelet`](super::kubelet::FakeKubelet) runs, on
//! loopback, with the certificates the kube-apiserver fixture writes: their log is what the
//! process wrote to stderr and then to stdout. Query parameters (`tailLines`, `follow`...)
//! are ignored: the whole log is sent.

#![allow(dead_code)] // Each integration test uses a different part of the harness.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

/// The certificates the endpoint uses: the fixture's `kubelet.crt`/`kubelet.key` and the CA
/// that signed the API server's client certificate.
#[derive(Clone, Debug)]
pub struct KubeletTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

impl KubeletTls {
    /// The ones the kube-apiserver fixture in `dir` wrote.
    pub fn of_fixture(dir: &Path) -> KubeletTls {
        KubeletTls { cert: dir.join("kubelet.crt"), key: dir.join("kubelet.key"), client_ca: dir.join("ca.crt") }
    }
}

/// The log file of each container, by `(namespace, pod)` (probe pods have one container).
pub type ContainerLogs = Arc<Mutex<HashMap<(String, String), PathBuf>>>;

/// The endpoint, served from a thread of its own until dropped.
pub struct KubeletApi {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long a request may take to arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

impl KubeletApi {
    /// Serves `logs` on a free port of 127.0.0.1.
    pub fn start(tls: &KubeletTls, logs: ContainerLogs) -> KubeletApi {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(tls)));
        let std_listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the fake kubelet's endpoint");
        std_listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = std_listener.local_addr().expect("the endpoint's address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fake-kubelet-api".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the fake kubelet endpoint's runtime");
                runtime.block_on(serve(std_listener, acceptor, logs, thread_stop));
            })
            .expect("start the fake kubelet endpoint's thread");
        KubeletApi { port, stop, thread: Some(thread) }
    }

    /// The port, for the Node's `status.daemonEndpoints.kubeletEndpoint.Port`.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for KubeletApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn server_config(tls: &KubeletTls) -> ServerConfig {
    let read = |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&tls.cert))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", tls.cert.display()));
    let key = PrivateKeyDer::from_pem_slice(&read(&tls.key)).unwrap_or_else(|e| panic!("{}: {e}", tls.key.display()));
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read(&tls.client_ca)) {
        roots.add(ca.expect("a CA certificate")).expect("a usable CA certificate");
    }
    let provider = Arc::new(crypto::ring::default_provider());
    let clients = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .expect("a client certificate verifier");
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)
        .expect("the kubelet's serving certificate")
}

async fn serve(listener: std::net::TcpListener, acceptor: TlsAcceptor, logs: ContainerLogs, stop: Arc<AtomicBool>) {
    let listener = TcpListener::from_std(listener).expect("a tokio listener");
    while !stop.load(Ordering::Relaxed) {
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        let Ok(Ok((stream, peer))) = accepted else { continue };
        let (acceptor, logs) = (acceptor.clone(), Arc::clone(&logs));
        tokio::spawn(async move {
            let answered = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let mut tls = acceptor.accept(stream).await?;
                let response = match read_head(&mut tls).await? {
                    Some(head) => respond(&head, &logs),
                    None => response(400, "Bad Request", b"malformed request".to_vec()),
                };
                tls.write_all(&response).await?;
                tls.shutdown().await
            })
            .await;
            if let Ok(Err(error)) = answered {
                eprintln!("fake-kubelet-api: request from {peer}: {error}");
            }
        });
    }
}

/// The request head (request line and headers), or `None` when it is too long or cut.
async fn read_head(stream: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

/// The answer to one request head.
fn respond(head: &str, logs: &ContainerLogs) -> Vec<u8> {
    let request_line = head.lines().next().unwrap_or_default();
    let mut words = request_line.split(' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    if method != "GET" {
        return response(405, "Method Not Allowed", b"only GET is served".to_vec());
    }
    let path = target.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["containerLogs", namespace, pod, _container] = parts.as_slice() else {
        return response(404, "Not Found", format!("{path}: only /containerLogs/NS/POD/CONTAINER is served").into());
    };
    let file = logs.lock().unwrap_or_else(|e| e.into_inner()).get(&(namespace.to_string(), pod.to_string())).cloned();
    match file {
        // A container that runs has written nothing to its log yet: it is written at exit.
        Some(file) => response(200, "OK", std::fs::read(&file).unwrap_or_default()),
        None => response(404, "Not Found", format!("pod {namespace}/{pod} has no container here").into()),
    }
}

fn response(code: u16, reason: &str, body: Vec<u8>) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}
