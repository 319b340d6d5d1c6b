//! A stand-in for the chat app (Open WebUI) in the Docker tests and benchmarks: a static
//! binary with only the standard library, so its image is built `FROM scratch` with no
//! registry. It answers `GET /health` like Open WebUI (`{"status":true}`), and every other
//! request with a short page; `chat-standin health` is the image's HEALTHCHECK (what
//! Open WebUI's image does with curl). `CHAT_STANDIN_BROKEN=1` makes `/health` answer 503,
//! for tests of a chat image that fails its health gate.
//!
//! Build: `rustc -O -C target-feature=+crt-static main.rs -o chat-standin` (see
//! deploy/build-update-test-images.sh).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080)
}

fn serve() -> ! {
    let listener = TcpListener::bind(("0.0.0.0", port())).unwrap_or_else(|e| {
        eprintln!("chat-standin: cannot listen on port {}: {e}", port());
        std::process::exit(1)
    });
    let broken = std::env::var("CHAT_STANDIN_BROKEN").is_ok_and(|v| v == "1");
    eprintln!(
        "chat-standin: listening on 0.0.0.0:{} (OpenAI base URL {})",
        port(),
        std::env::var("OPENAI_API_BASE_URL").unwrap_or_else(|_| "unset".into())
    );
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        std::thread::spawn(move || {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let health = req.starts_with("GET /health ");
            let (status, body) = match (health, broken) {
                (true, false) => ("200 OK", "{\"status\":true}"),
                (true, true) => ("503 Service Unavailable", "{\"status\":false}"),
                (false, _) => ("200 OK", "mAI chat stand-in\n"),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        });
    }
    unreachable!("incoming() never ends")
}

fn health() -> ! {
    let ok = (|| -> std::io::Result<bool> {
        let mut s = TcpStream::connect(("127.0.0.1", port()))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out.starts_with("HTTP/1.1 200") && out.contains("\"status\":true"))
    })()
    .unwrap_or(false);
    std::process::exit(if ok { 0 } else { 1 })
}

// As PID 1 of its container the process gets no default signal handling: without a
// handler `docker stop` would wait its whole grace period and then kill it.
extern "C" {
    fn signal(sig: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(code: i32) -> !;
}

extern "C" fn on_term(_: i32) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { _exit(0) }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("health") => health(),
        _ => {
            const SIGINT: i32 = 2;
            const SIGTERM: i32 = 15;
            // SAFETY: installs a handler that only calls _exit.
            unsafe {
                signal(SIGTERM, on_term);
                signal(SIGINT, on_term);
            }
            serve()
        }
    }
}
