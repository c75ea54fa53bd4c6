//! Where resctl's metrics go: `--metrics-listen ADDR` serves `GET /metrics` (OpenMetrics
//! text) from a small HTTP server on its own thread, and `--metrics-textfile PATH` writes the
//! same text after every sample, replaced atomically (for node_exporter's textfile
//! collector, which reads `*.prom` files). Both are off unless asked for.
//!
//! The server answers one connection at a time, reads at most [`MAX_REQUEST_BYTES`] of a
//! request within [`REQUEST_TIMEOUT`], and answers only `GET`/`HEAD /metrics` — it is a
//! scrape endpoint, not a web server. What it shows (job names, memory figures) is readable
//! by whoever can reach the address: bind it to loopback unless the network is trusted.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;

use super::metrics::{render, Metrics};
use crate::safe_fs::OutputFile;

/// Longest request head read, bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What was asked on the command line.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// `--metrics-listen`: the address to serve `/metrics` on (`127.0.0.1:9101`).
    pub listen: Option<String>,
    /// `--metrics-textfile`: the file to write after every sample.
    pub textfile: Option<PathBuf>,
}

impl MetricsOptions {
    /// Whether any export was asked for.
    pub fn any(&self) -> bool {
        self.listen.is_some() || self.textfile.is_some()
    }
}

/// The metrics and their outputs.
#[derive(Debug)]
pub struct MetricsExport {
    metrics: Metrics,
    textfile: Option<OutputFile>,
    server: Option<MetricsServer>,
    /// The last textfile write failed (said once until a write succeeds).
    textfile_failing: bool,
}

impl MetricsExport {
    /// Opens what `options` asks for — binds the address, checks the textfile's folder —
    /// before anything is watched, so a mistake is an error at start; `None` when neither
    /// was asked.
    ///
    /// # Errors
    ///
    /// The address does not parse or cannot be bound, or the textfile's folder cannot be
    /// written; the message names the option and the value.
    pub fn open(options: &MetricsOptions) -> Result<Option<MetricsExport>, String> {
        if !options.any() {
            return Ok(None);
        }
        let metrics = Metrics::new();
        let textfile = OutputFile::prepare_for("--metrics-textfile", options.textfile.as_deref())?;
        let server = match &options.listen {
            Some(address) => {
                let server = MetricsServer::start(address, metrics.registry())
                    .map_err(|err| format!("--metrics-listen {address}: {err}"))?;
                tracing::info!("metrics: serving http://{}/metrics", server.local_addr());
                if !server.local_addr().ip().is_loopback() {
                    tracing::warn!(
                        "metrics: {} is not a loopback address; whoever can reach it reads \
                         the job names and figures",
                        server.local_addr()
                    );
                }
                Some(server)
            }
            None => None,
        };
        Ok(Some(MetricsExport {
            metrics,
            textfile,
            server,
            textfile_failing: false,
        }))
    }

    /// The figures, to update.
    pub fn metrics(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// The address served on, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::local_addr)
    }

    /// Writes the textfile, if asked (the server encodes at each request by itself). A
    /// failure is said once, and again after a write that succeeded.
    pub fn publish(&mut self) {
        let Some(textfile) = &self.textfile else {
            return;
        };
        match textfile.write(self.metrics.render().as_bytes()) {
            Ok(()) => self.textfile_failing = false,
            Err(err) => {
                if !std::mem::replace(&mut self.textfile_failing, true) {
                    tracing::warn!("metrics: cannot write {}: {err}", textfile.path().display());
                }
            }
        }
    }

    /// The textfile's path, if one is written.
    pub fn textfile(&self) -> Option<&Path> {
        self.textfile.as_ref().map(OutputFile::path)
    }
}

/// A thread serving `GET /metrics`, stopped when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `address` (`HOST:PORT`; port 0 picks a free one) and serves `registry`.
    ///
    /// # Errors
    ///
    /// The address does not resolve, or binding it failed (in use, not permitted).
    pub fn start(address: &str, registry: Arc<Registry>) -> io::Result<MetricsServer> {
        let candidates: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not an address as HOST:PORT ({err})"),
                )
            })?
            .collect();
        let listener = TcpListener::bind(&candidates[..])?;
        let bound = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("resctl-metrics".to_owned())
            .spawn(move || {
                for connection in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(stream) = connection {
                        if let Err(err) = answer(stream, &registry) {
                            tracing::debug!("metrics: a request failed: {err}");
                        }
                    }
                }
            })?;
        Ok(MetricsServer {
            address: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread waits in accept(): a connection of our own wakes it. When that fails
        // the thread is left to end with the process rather than waited for.
        let woken = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).is_ok();
        if let Some(thread) = self.thread.take() {
            if woken {
                let _ = thread.join();
            }
        }
    }
}

/// A response: status line and body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
    extra: &'static str,
}

/// Reads one request head and answers it.
fn answer(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (response, head_only) = respond(&head, registry);
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        response.extra
    );
    if !head_only {
        out.push_str(&response.body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()?;
    // A lingering close: what the client still sends is read and dropped for a moment, so
    // closing with unread input does not reset the connection under the reply.
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut drain = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut drain) {
            Ok(read) if read > 0 => left = left.saturating_sub(read),
            _ => break,
        }
    }
    Ok(())
}

/// What to answer to a request head (`None`: it never ended within the bounds); and
/// whether the body is left out (`HEAD`).
fn respond(head: &Option<Vec<u8>>, registry: &Registry) -> (Response, bool) {
    let text = |status, body: &str| Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_owned(),
        extra: "",
    };
    let Some(head) = head else {
        return (
            text("400 Bad Request", "request too long or too slow\n"),
            false,
        );
    };
    let request_line = head
        .split(|&byte| byte == b'\n')
        .next()
        .map(|line| String::from_utf8_lossy(line).trim_end().to_owned())
        .unwrap_or_default();
    let mut words = request_line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let mut response = text("405 Method Not Allowed", "only GET and HEAD\n");
        response.extra = "Allow: GET, HEAD\r\n";
        return (response, false);
    }
    if path != "/metrics" {
        return (text("404 Not Found", "resctl serves /metrics\n"), head_only);
    }
    (
        Response {
            status: "200 OK",
            content_type: CONTENT_TYPE,
            body: render(registry),
            extra: "",
        },
        head_only,
    )
}

/// Reads until the blank line that ends a request head; `None` when it does not come
/// within [`MAX_REQUEST_BYTES`] and [`REQUEST_TIMEOUT`].
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left))?;
        let read = match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(read) => read,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        head.extend_from_slice(&chunk[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Level;
    use crate::report::metrics::{Figures, Target};

    fn request(address: SocketAddr, text: &str) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(text.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    }

    #[test]
    fn get_metrics_serves_the_figures_as_they_are_at_the_request() {
        let mut export = MetricsExport::open(&MetricsOptions {
            listen: Some("127.0.0.1:0".to_owned()),
            textfile: None,
        })
        .unwrap()
        .unwrap();
        let address = export.local_addr().unwrap();
        let job = Target::job("etl");
        export.metrics().observe(
            &job,
            &Figures {
                memory: 42,
                level: Level::Moderate,
                threads: Some(3),
                ..Figures::default()
            },
        );
        let reply = request(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains(CONTENT_TYPE), "{reply}");
        assert!(
            reply.contains("resctl_threads{kind=\"job\",name=\"etl\"} 3"),
            "{reply}"
        );
        export.metrics().observe(
            &job,
            &Figures {
                threads: Some(1),
                ..Figures::default()
            },
        );
        let reply = request(address, "GET /metrics?x=1 HTTP/1.0\n\n");
        assert!(
            reply.contains("resctl_threads{kind=\"job\",name=\"etl\"} 1"),
            "{reply}"
        );
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
        let length: usize = reply
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap();
        assert_eq!(body.len(), length);
    }

    #[test]
    fn other_paths_methods_and_endless_requests_are_refused() {
        let server = MetricsServer::start("127.0.0.1:0", Metrics::new().registry()).unwrap();
        let address = server.local_addr();
        assert!(request(address, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = request(address, "POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert!(post.contains("Allow: GET, HEAD"), "{post}");
        let head = request(address, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head}");
        let endless = "GET /metrics HTTP/1.1\r\n".to_owned() + &"X: y\r\n".repeat(3000);
        let mut stream = TcpStream::connect(address).unwrap();
        let _ = stream.write_all(endless.as_bytes());
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        // A client that sends nothing is dropped after the timeout; the next is served.
        let _silent = TcpStream::connect(address).unwrap();
        assert!(request(address, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn a_bad_or_taken_address_is_an_error_naming_the_option() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let err = MetricsExport::open(&MetricsOptions {
            listen: Some(address.clone()),
            textfile: None,
        })
        .unwrap_err();
        assert!(
            err.starts_with(&format!("--metrics-listen {address}: ")),
            "{err}"
        );
        let err = MetricsExport::open(&MetricsOptions {
            listen: Some("no-port".to_owned()),
            textfile: None,
        })
        .unwrap_err();
        assert!(err.contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn the_textfile_is_replaced_whole_and_a_symlink_planted_there_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let path = dir.path().join("resctl.prom");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let mut export = MetricsExport::open(&MetricsOptions {
            listen: None,
            textfile: Some(path.clone()),
        })
        .unwrap()
        .unwrap();
        export
            .metrics()
            .observe(&Target::slice("a.slice"), &Figures::default());
        export.publish();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("resctl_level{kind=\"slice\",name=\"a.slice\"} 0"));
        assert!(text.ends_with("# EOF\n"));
        let missing = MetricsExport::open(&MetricsOptions {
            listen: None,
            textfile: Some(dir.path().join("no/such/folder/x.prom")),
        })
        .unwrap_err();
        assert!(missing.starts_with("--metrics-textfile: "), "{missing}");
    }
}
