//! `baal remote-serve`: lend one of this machine's devices to other processes through Burn's
//! remote backend, over WebSocket.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};

use baal::device::{REMOTE_TOKEN_VAR, parse_device};
use burn::server::{RemoteServer, TokenAuthorizer, WebSocketTransport};

use crate::score::ScoreError;

/// Options of `baal remote-serve`.
#[derive(Debug, clap::Args)]
pub struct RemoteServeArgs {
    /// Address to listen on. The default reaches this machine only; `0.0.0.0:PORT` lends the
    /// device to the network, unencrypted: set BAAL_REMOTE_TOKEN on both sides then. Port 0
    /// picks a free port.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Device to serve: cpu (flex), wgpu, vulkan, metal, cuda, tch-cpu, tch-cuda, with `:N`
    /// for an index.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Binds `args.addr`, prints the client's device name (`remote:ws://HOST:PORT`) as the first
/// line on standard output (Burn's server log follows it there), and serves until Ctrl+C or
/// SIGTERM. With BAAL_REMOTE_TOKEN set,
/// only clients that present that token get a session.
///
/// # Errors
/// An unknown or uncompiled device, an empty token (exit code 2), an address that cannot be
/// bound, or a server that fails (exit code 1).
pub fn run(args: &RemoteServeArgs) -> Result<(), ScoreError> {
    let device = parse_device(&args.device).map_err(|e| ScoreError::Input(e.to_string()))?;
    let mut server = RemoteServer::new([device]);
    if let Ok(token) = std::env::var(REMOTE_TOKEN_VAR) {
        let authorizer = TokenAuthorizer::new(token)
            .map_err(|e| ScoreError::Input(format!("{REMOTE_TOKEN_VAR}: {e}")))?;
        server = server.with_authorizer(authorizer);
    }
    let listener = TcpListener::bind(args.addr)
        .map_err(|e| ScoreError::Failed(format!("cannot listen on {}: {e}", args.addr)))?;
    let local = listener
        .local_addr()
        .map_err(|e| ScoreError::Failed(format!("cannot read the bound address: {e}")))?;
    // One line a client (or a test) can read the port from, even when `--addr` asked for 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "remote:ws://{local}")
        .and_then(|()| stdout.flush())
        .map_err(|e| ScoreError::Failed(format!("cannot write to standard output: {e}")))?;
    drop(stdout);
    eprintln!(
        "baal remote-serve: lending {} on ws://{local}; Ctrl+C stops",
        args.device
    );
    server
        .serve(WebSocketTransport::from_listener(listener))
        .map_err(|e| ScoreError::Failed(e.to_string()))
}
