//! The server: an accept loop of its own around hyper, so that a connection's life has
//! limits (a head within the header timeout, after it opens and between requests; at most
//! so many connections at once), and a graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;

use crate::error::ServeError;
use crate::service::Service;

/// The limits of the server's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// A connection must send a request's whole head within this time after it opens and
    /// after each answer, or it is closed: idle keep-alive connections and slowly trickled
    /// headers alike.
    pub header_timeout: Duration,
    /// A request's body must arrive whole within this time, or it is answered 408.
    pub body_timeout: Duration,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    /// 20 s for a head, 60 s for a body (16 MiB of `/predict` tasks over a slow link), 256
    /// connections.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// How long a stop waits for the requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// A server running on its own thread; [`stop`](Self::stop) (or dropping it) shuts it down
/// gracefully.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    /// Binds `addr` (port 0: any free port) and serves `service` with the default limits.
    ///
    /// # Errors
    /// The address cannot be bound, or the runtime cannot start.
    pub fn start(service: Arc<Service>, addr: SocketAddr) -> Result<Self, ServeError> {
        Self::start_with(service, addr, ServerConfig::default())
    }

    /// Binds `addr` and serves `service` under `config`, on a tokio runtime of its own.
    ///
    /// # Errors
    /// A limit of zero, the address cannot be bound, or the runtime cannot start.
    pub fn start_with(
        service: Arc<Service>,
        addr: SocketAddr,
        config: ServerConfig,
    ) -> Result<Self, ServeError> {
        if config.max_connections == 0
            || config.header_timeout.is_zero()
            || config.body_timeout.is_zero()
        {
            return Err(ServeError::Config(
                "the server's timeouts and connection cap must be above zero".into(),
            ));
        }
        let bind_error = |e| ServeError::Config(format!("cannot listen on {addr}: {e}"));
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("baal-serve")
            .build()
            .map_err(|e| ServeError::Config(format!("cannot start tokio: {e}")))?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = super::router_with(service, &config);
        let thread = std::thread::Builder::new()
            .name("baal-serve-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)
                        .map_err(|e| ServeError::Config(format!("cannot listen: {e}")))?;
                    serve(listener, app, config, stopped).await;
                    Ok(())
                })
            })
            .map_err(|e| ServeError::Config(format!("cannot start the server thread: {e}")))?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server ends (it runs until stopped).
    ///
    /// # Errors
    /// The server failed.
    pub fn wait(mut self) -> Result<(), ServeError> {
        self.join()
    }

    /// Stops accepting requests, finishes the ones in flight (for up to 10 s), and returns.
    ///
    /// # Errors
    /// The server failed.
    pub fn stop(mut self) -> Result<(), ServeError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.join()
    }

    fn join(&mut self) -> Result<(), ServeError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ServeError::Config("the server thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = self.join();
    }
}

/// Accepts connections until `stop`, each served by hyper under `config`'s limits; then lets
/// the requests in flight finish.
async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServerConfig,
    mut stop: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait a little, go on.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small answers go out at once, not after the client's delayed ACK.
                let _ = tcp.set_nodelay(true);
                match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        let app = app.clone();
                        let closed = closed.clone();
                        connections.spawn(async move {
                            serve_connection(tcp, app, config, closed).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, limit = config.max_connections, "too many connections: answered 503");
                        connections.spawn(refuse(tcp));
                    }
                }
            }
        }
    }
    let _ = closing.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still in flight after {DRAIN:?}: stopping anyway");
    }
}

/// One connection, until it ends or the server closes (then gracefully).
async fn serve_connection(
    tcp: TcpStream,
    app: Router,
    config: ServerConfig,
    mut closed: watch::Receiver<bool>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app));
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = closed.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended");
    }
}

/// Answers 503 to a connection over the cap and closes it.
async fn refuse(mut tcp: TcpStream) {
    let body = r#"{"error":"the server holds as many connections as it serves at once; try again shortly","code":"overloaded"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}
