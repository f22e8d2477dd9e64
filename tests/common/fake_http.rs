//! A small threaded HTTP/1.1 server on 127.0.0.1 for the online tests: routes by path prefix
//! to a handler, counts requests per route, and can answer the next requests of a route with
//! injected faults (an HTTP status with `Retry-After`, a slow answer, a body cut short).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the handlers see it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Fields of an `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> Vec<(String, String)> {
        parse_query(&String::from_utf8_lossy(&self.body))
    }
}

/// An answer.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn status(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// A fault injected in place of (or on top of) the handler's answer.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// This status, with `Retry-After: n` when given.
    Status(u16, Option<u64>),
    /// The handler's answer after this delay.
    Slow(Duration),
    /// The handler's answer with its full `Content-Length` but only half of its body.
    Truncated,
    /// HTTP 200 with this body instead of the handler's.
    Garbage(&'static str),
}

type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

#[derive(Default)]
struct State {
    routes: Vec<(String, Handler)>,
    counts: HashMap<String, usize>,
    faults: HashMap<String, VecDeque<Fault>>,
    log: Vec<Request>,
}

/// The server; it runs until the test process ends.
#[derive(Clone)]
pub struct FakeServer {
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state: Arc<Mutex<State>> = Arc::default();
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        });
        FakeServer { base, state }
    }

    /// Serves requests whose path starts with `prefix` (longest prefix wins).
    pub fn route(&self, prefix: &str, h: impl Fn(&Request) -> Response + Send + Sync + 'static) {
        let mut st = self.state.lock().unwrap();
        st.routes.push((prefix.to_string(), Arc::new(h)));
        st.routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
    }

    /// Answers the next requests of route `prefix` with `faults`, in order.
    pub fn inject(&self, prefix: &str, faults: &[Fault]) {
        let mut st = self.state.lock().unwrap();
        st.faults
            .entry(prefix.to_string())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// Requests received on route `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(prefix)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received on every route.
    pub fn total(&self) -> usize {
        self.state.lock().unwrap().counts.values().sum()
    }

    /// Every request received, in order.
    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn reset_counts(&self) {
        let mut st = self.state.lock().unwrap();
        st.counts.clear();
        st.log.clear();
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (target.clone(), Vec::new()),
    };
    let req = Request {
        method,
        path,
        query,
        headers,
        body,
    };
    let (route, handler, fault) = {
        let mut st = state.lock().unwrap();
        st.log.push(req.clone());
        let found = st
            .routes
            .iter()
            .find(|(p, _)| req.path.starts_with(p.as_str()))
            .map(|(p, h)| (p.clone(), h.clone()));
        match found {
            Some((p, h)) => {
                *st.counts.entry(p.clone()).or_default() += 1;
                let fault = st.faults.get_mut(&p).and_then(VecDeque::pop_front);
                (p, Some(h), fault)
            }
            None => (String::new(), None, None),
        }
    };
    let _ = route;
    let mut out = stream;
    let Some(handler) = handler else {
        return write_response(&mut out, &Response::status(404, "no such route"), None);
    };
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let mut r = Response::status(code, "injected fault");
            if let Some(s) = retry_after {
                r.headers.push(("Retry-After".into(), s.to_string()));
            }
            write_response(&mut out, &r, None)
        }
        Some(Fault::Slow(d)) => {
            std::thread::sleep(d);
            write_response(&mut out, &handler(&req), None)
        }
        Some(Fault::Truncated) => {
            let r = handler(&req);
            let cut = r.body.len() / 2;
            write_response(&mut out, &r, Some(cut))
        }
        Some(Fault::Garbage(text)) => {
            write_response(&mut out, &Response::ok("text/html", text), None)
        }
        None => write_response(&mut out, &handler(&req), None),
    }
}

fn write_response(out: &mut TcpStream, r: &Response, cut: Option<usize>) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&r.body[..cut.unwrap_or(r.body.len())])?;
    out.flush()?;
    let _ = out.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// `a=1&b=x+y%21` → pairs, decoded.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
