//! A minimal HTTP/1.1 client for the load generator: one keep-alive TCP connection, one
//! request at a time, responses framed by `Content-Length` or chunked encoding.
//!
//! It exists so that the harness spends as little CPU as possible of the machine it
//! measures (the hub and the load share the cores). It must never be used for anything but
//! talking to the hub under test: no TLS, no redirects, no proxies, no pipelining.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What can go wrong with one request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the hub closed the connection")]
    Closed,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection to the hub; reconnects on the next request after a close.
pub struct HttpConn {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl HttpConn {
    /// A connection to `addr`, sending `host` as the `Host` header. Connects lazily.
    pub fn new(addr: SocketAddr, host: &str) -> HttpConn {
        HttpConn {
            addr,
            host: host.to_string(),
            stream: None,
            out: Vec::with_capacity(1024),
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads its response. `headers` are `(name, value)` pairs.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        self.out.clear();
        self.out.extend_from_slice(method.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.out.extend_from_slice(self.host.as_bytes());
        for (name, value) in headers {
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(value.as_bytes());
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            self.out.extend_from_slice(b"\r\nContent-Length: ");
            self.out
                .extend_from_slice(body.len().to_string().as_bytes());
        }
        self.out.extend_from_slice(b"\r\n\r\n");
        self.out.extend_from_slice(body);
        let result = self.exchange(method == "HEAD").await;
        if result.is_err() {
            // The connection is in an unknown state: start afresh next time.
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, head_only: bool) -> Result<Response, HttpError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(HttpError::Closed);
        };
        stream.write_all(&self.out).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::Malformed("response head too large"));
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = parse_head(&self.buf[..head_end])?;
        let no_body = head_only
            || head.status == 204
            || head.status == 304
            || (100..200).contains(&head.status);
        let body = if no_body {
            Vec::new()
        } else if let Some(length) = head.content_length {
            if length > MAX_BODY {
                return Err(HttpError::Malformed("response body too large"));
            }
            while self.buf.len() < head_end + length {
                read_more(stream, &mut self.buf).await?;
            }
            self.buf[head_end..head_end + length].to_vec()
        } else if head.chunked {
            read_chunked(stream, &mut self.buf, head_end).await?
        } else {
            // Delimited by the end of the connection.
            loop {
                match read_more(stream, &mut self.buf).await {
                    Ok(()) if self.buf.len() - head_end <= MAX_BODY => continue,
                    Ok(()) => return Err(HttpError::Malformed("response body too large")),
                    Err(HttpError::Closed) => break,
                    Err(err) => return Err(err),
                }
            }
            self.stream = None;
            return Ok(Response {
                status: head.status,
                body: self.buf[head_end..].to_vec(),
            });
        };
        if head.close {
            self.stream = None;
        }
        Ok(Response {
            status: head.status,
            body,
        })
    }
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(head)
        .map_err(|_| HttpError::Malformed("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or(HttpError::Malformed("no status line"))?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not an HTTP/1.x response"));
    }
    let status = parts
        .next()
        .and_then(|it| it.parse().ok())
        .ok_or(HttpError::Malformed("bad status code"))?;
    let mut out = Head {
        status,
        content_length: None,
        chunked: false,
        close: version == "HTTP/1.0",
    };
    for line in lines.filter(|it| !it.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("bad header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            out.content_length = Some(
                value
                    .parse()
                    .map_err(|_| HttpError::Malformed("bad content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            out.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            out.close = value.eq_ignore_ascii_case("close");
        }
    }
    if out.chunked {
        out.content_length = None;
    }
    Ok(out)
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), HttpError> {
    buf.reserve(16 * 1024);
    match stream.read_buf(buf).await? {
        0 => Err(HttpError::Closed),
        _ => Ok(()),
    }
}

async fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    start: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let mut at = start;
    loop {
        let line_end = loop {
            if let Some(it) = find(&buf[at..], b"\r\n") {
                break at + it;
            }
            read_more(stream, buf).await?;
        };
        let line = std::str::from_utf8(&buf[at..line_end])
            .map_err(|_| HttpError::Malformed("bad chunk size"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed("bad chunk size"))?;
        at = line_end + 2;
        if size == 0 {
            // Trailers (if any) end with an empty line.
            loop {
                if let Some(it) = find(&buf[at..], b"\r\n") {
                    if it == 0 {
                        return Ok(body);
                    }
                    at += it + 2;
                    continue;
                }
                read_more(stream, buf).await?;
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(HttpError::Malformed("response body too large"));
        }
        while buf.len() < at + size + 2 {
            read_more(stream, buf).await?;
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|it| it == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves `replies` one per request on one connection, and returns what it received.
    async fn serve(replies: Vec<&'static [u8]>) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for reply in replies {
                let mut chunk = [0u8; 4096];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap();
                    seen.extend_from_slice(&chunk[..n]);
                    if n == 0 || find(&seen, b"\r\n\r\n").is_some() {
                        break;
                    }
                }
                socket.write_all(reply).await.unwrap();
            }
            seen
        });
        (addr, task)
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_on_one_connection() {
        let (addr, server) = serve(vec![
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 7\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let mut conn = HttpConn::new(addr, "hub");
        let first = conn
            .request("POST", "/p", &[("X-API-Key", "k")], b"{}")
            .await
            .unwrap();
        assert_eq!(
            (first.status, first.body.as_slice()),
            (202, b"{\"a\":1}".as_slice())
        );
        let second = conn.request("GET", "/q", &[], b"").await.unwrap();
        assert_eq!(
            (second.status, second.body.as_slice()),
            (200, b"abcde".as_slice())
        );
        let third = conn.request("DELETE", "/r", &[], b"").await.unwrap();
        assert_eq!((third.status, third.body.len()), (204, 0));
        let seen = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(
            seen.starts_with(
                "POST /p HTTP/1.1\r\nHost: hub\r\nX-API-Key: k\r\nContent-Length: 2\r\n\r\n{}"
            ),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error_not_a_hang() {
        let (addr, _server) =
            serve(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"]).await;
        let mut conn = HttpConn::new(addr, "hub");
        let err = conn.request("GET", "/", &[], b"").await.unwrap_err();
        assert!(matches!(err, HttpError::Closed), "{err:?}");
    }

    #[test]
    fn heads_are_checked() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").is_ok());
        assert!(parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().close);
        assert!(parse_head(b"SPDY 200\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
