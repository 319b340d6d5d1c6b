//! The real `maictl alerts` against in-process trackers and a local webhook receiver:
//! a limit warning raised and cleared with its cause, a tracker reported unreachable only
//! at the third failed run in a row (the debounce history lives in the console cache, so
//! runs from cron debounce), exit codes 0 / 1 / 2, ack and mute, and the webhook told once
//! per raise and clear (after retrying a 500), with no secret in what it got.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::{fake_tracker, fleet_text, read_token_of, serve};
use mai_wire::alerts::AlertsView;

const TOKEN: &str = "tok-alerts-secret";

fn maictl(fleet: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_maictl"))
        .arg("--fleet")
        .arg(fleet)
        .arg("--no-docker")
        .args(args)
        .env_remove("MAI_FLEET")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("FAKE_TRACKER_TOKEN", TOKEN)
        .env("FAKE_TRACKER_READ_TOKEN", read_token_of(TOKEN))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A Slack-style receiver: answers 500 to the first post (to be retried), then 200.
#[derive(Default)]
struct Hook {
    posts: u32,
    bodies: Vec<serde_json::Value>,
}

async fn receive(
    State(h): State<Arc<Mutex<Hook>>>,
    body: axum::Json<serde_json::Value>,
) -> StatusCode {
    let mut h = h.lock().unwrap();
    h.posts += 1;
    if h.posts == 1 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    h.bodies.push(body.0);
    StatusCode::OK
}

fn write_fleet(path: &Path, data: &Path, acme: SocketAddr, gone: SocketAddr, hook: SocketAddr) {
    let mut f = fleet_text(
        data,
        &[("acme".into(), acme, "1.3"), ("gone".into(), gone, "1.3")],
        None,
    );
    f = f.replace(
        "[nbp]",
        &format!("[alerts]\nwebhook_url = \"http://{hook}/services/T0/B0/secret-path\"\nlimit_warning_percent = \"80\"\n\n[nbp]"),
    );
    std::fs::write(path, f).unwrap();
}

fn view(o: &Output) -> AlertsView {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&o.stdout), text(&o.stderr)))
}

#[test]
fn maictl_alerts_debounces_across_runs_acks_mutes_and_tells_the_webhook() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (acme, acme_state) = rt.block_on(fake_tracker("acme", TOKEN, Duration::ZERO));
    let hook_state = Arc::new(Mutex::new(Hook::default()));
    let hook = rt.block_on(serve(
        Router::new()
            .route("/services/T0/B0/secret-path", post(receive))
            .with_state(hook_state.clone()),
    ));
    // $6.20 raw at markup 1.3 = $8.06 of a $10 limit: 80.6%.
    acme_state
        .lock()
        .unwrap()
        .add("g1", "anna", "openai/gpt-4o", "6.20", "confirmed");
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    // "gone" points at a port nobody listens on.
    let nobody: SocketAddr = "127.0.0.1:9".parse().unwrap();
    write_fleet(&fleet, &dir.path().join("data"), acme, nobody, hook);

    // Run 1: the limit warning at once; the tracker's first failure raises nothing.
    let o = maictl(&fleet, &["alerts"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("limit_warning:acme") && out.contains("80.60% of the monthly limit"),
        "{out}"
    );
    assert!(!out.contains("tracker_unreachable"), "{out}");
    // Run 2: still no tracker alert.
    let v = view(&maictl(&fleet, &["alerts", "--json"]));
    assert_eq!(
        v.active.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["limit_warning:acme"]
    );
    // Acknowledged: nothing needs attention, exit 0.
    let o = maictl(&fleet, &["alerts", "ack", "limit_warning:acme"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // Run 3: the third failure in a row raises it.
    let o = maictl(&fleet, &["alerts", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v = view(&o);
    let ids: Vec<&str> = v.active.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["tracker_unreachable:gone", "limit_warning:acme"]);
    assert_eq!(v.attention, 1);
    assert_eq!(v.attention_by_client.get("gone"), Some(&1));
    assert!(v.active[1].acked);
    let first_seen = v.active[0].first_seen;

    // Usage errors: exit 2 with what to do.
    let o = maictl(&fleet, &["alerts", "mute", "nope:acme", "--for", "2h"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no active alert \"nope:acme\"; list them with `maictl alerts`"),
        "{}",
        text(&o.stderr)
    );
    let o = maictl(
        &fleet,
        &[
            "alerts",
            "mute",
            "tracker_unreachable:gone",
            "--for",
            "2 weeks",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("30m, 2h or 1d"),
        "{}",
        text(&o.stderr)
    );

    // Muted for 2 h: still listed, exit 0, same first-seen time.
    let o = maictl(
        &fleet,
        &["alerts", "mute", "tracker_unreachable:gone", "--for", "2h"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("muted tracker_unreachable:gone until "));
    let o = maictl(&fleet, &["alerts"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("muted until"),
        "{}",
        text(&o.stdout)
    );
    let v = view(&maictl(&fleet, &["alerts", "--json"]));
    assert_eq!(v.active[0].first_seen, first_seen);

    // Causes gone: the usage is corrected away and the tracker is back. Both clear.
    acme_state.lock().unwrap().events.clear();
    let (gone, _) = rt.block_on(fake_tracker("gone", TOKEN, Duration::ZERO));
    write_fleet(&fleet, &dir.path().join("data"), acme, gone, hook);
    let o = maictl(&fleet, &["alerts", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = view(&o);
    assert!(v.active.is_empty(), "{:?}", v.active);
    let mut cleared: Vec<&str> = v.cleared.iter().map(|a| a.id.as_str()).collect();
    cleared.sort();
    assert_eq!(cleared, ["limit_warning:acme", "tracker_unreachable:gone"]);
    assert!(v.cleared.iter().all(|a| a.cleared_at.is_some()));
    let o = maictl(&fleet, &["alerts"]);
    assert_eq!(
        (o.status.code(), text(&o.stdout)),
        (Some(0), "no active alerts\n".into())
    );

    // The webhook: one post per raise and per clear (never per run), the first retried;
    // the muted tracker alert was raised before its mute, and its clear is quiet.
    let h = hook_state.lock().unwrap();
    let texts: Vec<&str> = h
        .bodies
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(h.posts, 4, "{texts:?}");
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts[0].contains("[warning] acme: 80.60% of the monthly limit used"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("[critical] gone: tracker unreachable for 3 refreshes"),
        "{}",
        texts[1]
    );
    assert!(
        texts[2].contains("[cleared] acme:") && !texts[2].contains("gone"),
        "{}",
        texts[2]
    );
    for t in &texts {
        assert!(!t.contains(TOKEN) && !t.contains("secret-path"), "{t}");
    }
}
