//! An HTTP receiver of the tests' own: records the JSON body of every POST it gets and
//! answers 200, or 500 on paths that start with `/fail` (a webhook hook that fails), or
//! 503 to the first request of each path that starts with `/flaky` (a receiver down for
//! a moment: the sender must try again).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A running receiver; it stops with the test process.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let first = {
                    let mut got = g.lock().unwrap();
                    let first = !got.iter().any(|(p, _)| *p == path);
                    got.push((path.clone(), value));
                    first
                };
                let status = if path.starts_with("/fail") {
                    "500 Internal Server Error"
                } else if path.starts_with("/flaky") && first {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = conn.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        Receiver { url, got }
    }

    /// Every request so far: its path and JSON body, in order.
    pub fn received(&self) -> Vec<(String, Value)> {
        self.got.lock().unwrap().clone()
    }
}
