//! A TCP forwarder of the tests' own with a switch: forward at once, with a delay per
//! chunk, or hold everything (a stalled network). Put between a server and its API server
//! (or store) to make it slow or cut it off.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `mode`: 0 forwards at once, `u64::MAX` holds everything, else a delay in ms per chunk.
pub const STALL: u64 = u64::MAX;
/// Set when the proxy is dropped: held data is thrown away, the connections closed.
const CLOSED: u64 = u64::MAX - 1;

/// A TCP forwarder from a local port to `upstream`, both directions switched by `mode`.
pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU64::new(0));
        let m = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if m.load(Ordering::Relaxed) == CLOSED {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let m = m.clone();
                    std::thread::spawn(move || forward(from, to, &m));
                }
            }
        });
        Proxy { port, mode }
    }

    pub fn set(&self, mode: u64) {
        self.mode.store(mode, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(CLOSED);
        // Wakes the accepting thread up so that it ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` chunk by chunk, each after the wait `mode` says; held data is
/// never sent once the proxy is closed.
fn forward(mut from: TcpStream, mut to: TcpStream, mode: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        loop {
            match mode.load(Ordering::Relaxed) {
                0 => break,
                CLOSED => {
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
                STALL => std::thread::sleep(Duration::from_millis(50)),
                ms => {
                    std::thread::sleep(Duration::from_millis(ms));
                    break;
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The `host:port` of the (https) API server of `kubeconfig`.
fn api_server_of(kubeconfig: &Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("an https API server in the kubeconfig")
        .to_string()
}

impl Proxy {
    /// A proxy to the API server of `kubeconfig`.
    pub fn to_api_server(kubeconfig: &Path) -> Proxy {
        Proxy::start(api_server_of(kubeconfig))
    }

    /// Writes `out`: `kubeconfig` with its API server reached through this proxy.
    pub fn kubeconfig(&self, kubeconfig: &Path, out: &Path) {
        let upstream = api_server_of(kubeconfig);
        let text = std::fs::read_to_string(kubeconfig).unwrap();
        std::fs::write(
            out,
            text.replace(
                &format!("server: https://{upstream}"),
                &format!("server: https://127.0.0.1:{}", self.port),
            ),
        )
        .unwrap();
    }
}
