//! The Backups panel's commands over IPC on tauri's mock runtime: the real handlers and
//! serialization, a fleet file with `[backup]`, and a tracker standing in for the backup
//! and restore endpoints (serving a real ledger file with its SHA-256; the real tracker's
//! side is tested in crates/mai-tracker/tests/backup.rs).

mod common;
use common::{app_with, invoke};

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mai_console::Console;
use mai_core::ledger::{sha256_file, Ledger};
use mai_core::usage::{ChatContext, EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::{Fleet, Keychain, Ops};
use mai_wire::backup::{BackupOutcome, ClientBackups, RebuildReport, RestoreResult};
use mai_wire::tracker::{ErrorBody, RestoreReport, BACKUP_EVENTS_HEADER, BACKUP_SHA256_HEADER};
use serde_json::json;

fn ledger_file(dir: &std::path::Path) -> (Vec<u8>, String) {
    let p = dir.join("served.db");
    {
        let mut l = Ledger::open(&p).unwrap();
        for i in 0..3 {
            l.record(&UsageEvent {
                generation_id: format!("gen-{i}"),
                org_id: "acme".into(),
                user: UserRef {
                    id: Some("u1".into()),
                    email: None,
                    name: None,
                },
                model: "openai/gpt-4o-mini".into(),
                provider: None,
                tokens: Tokens {
                    prompt: 10,
                    completion: 5,
                    reasoning: 0,
                    cached: 0,
                },
                cost_usd: "0.000123".parse().unwrap(),
                source: Source::Proxy,
                state: EventState::Confirmed,
                created_at: "2026-12-01T10:00:00Z".parse().unwrap(),
                context: ChatContext::default(),
            })
            .unwrap();
        }
    }
    let (sha, _) = sha256_file(&p).unwrap();
    (std::fs::read(&p).unwrap(), sha)
}

/// Backup serves `file`; restore takes one upload, then answers 409 like a tracker in use.
async fn tracker(file: Vec<u8>, sha: String) -> std::net::SocketAddr {
    let restored: Arc<Mutex<bool>> = Arc::default();
    let app = Router::new()
        .route(
            "/api/v1/admin/backup",
            get(move || {
                let (file, sha) = (file.clone(), sha.clone());
                async move {
                    let mut r = Response::new(Body::from(file));
                    r.headers_mut()
                        .insert(BACKUP_SHA256_HEADER, sha.parse().unwrap());
                    r.headers_mut()
                        .insert(BACKUP_EVENTS_HEADER, "3".parse().unwrap());
                    r
                }
            }),
        )
        .route(
            "/api/v1/admin/restore",
            post(move |h: HeaderMap, body: axum::body::Bytes| {
                let restored = restored.clone();
                async move {
                    let mut done = restored.lock().unwrap();
                    if *done {
                        return (
                            StatusCode::CONFLICT,
                            Json(ErrorBody::new(
                                409,
                                "this tracker's ledger already holds 3 events",
                            )),
                        )
                            .into_response();
                    }
                    *done = true;
                    Json(RestoreReport {
                        org_id: "acme".into(),
                        events: 3,
                        sha256: h[BACKUP_SHA256_HEADER].to_str().unwrap().into(),
                        size_bytes: body.len() as u64,
                        restored_at: "2026-12-07T02:00:00Z".parse().unwrap(),
                    })
                    .into_response()
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_commands_back_up_list_restore_and_rebuild_over_ipc() {
    // SAFETY: set before any thread reads it; only this test uses this name.
    unsafe { std::env::set_var("BACKUP_IPC_TOKEN", "admin-token") };
    let dir = tempfile::tempdir().unwrap();
    let (file, sha) = ledger_file(dir.path());
    let addr = tracker(file, sha.clone()).await;
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            r#"[console]
data_dir = "console"

[backup]
dir = "backups"
every = "24h"
keep = 3

[[hosts]]
name = "h1"
docker = "unix:///nonexistent/docker.sock"

[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta 1"
host = "h1"
markup = "1.3"
tracker_url = "http://{addr}"
tracker_admin_token = "env:BACKUP_IPC_TOKEN"
tracker_read_token = "env:BACKUP_IPC_TOKEN"
"#
        ),
    )
    .unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut ops = Ops::new(Fleet::load(&fleet).unwrap(), Ok(kc)).unwrap();
    ops.docker_enabled = false;
    let (_app, w) = app_with(Console::new(Ok(ops), Some(fleet)));
    let w2 = w.clone();
    let call = move |cmd: &'static str, body: serde_json::Value| {
        let w = w2.clone();
        async move {
            tokio::task::spawn_blocking(move || invoke(&w, cmd, body))
                .await
                .unwrap()
        }
    };

    let empty: ClientBackups = serde_json::from_value(
        call("backup_list", json!({"clientId": "acme"}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(empty.backups.is_empty());
    assert_eq!(empty.every_seconds, Some(86_400));
    assert_eq!(empty.keep, 3);
    // The ledger check: an empty cache, and a tracker without the month endpoint said so.
    let lc = empty.ledger.unwrap();
    assert_eq!(lc.cache_events, 0);
    assert!(lc.tracker_error.is_some());

    let o: BackupOutcome = serde_json::from_value(
        call("backup_now", json!({"clientId": "acme"}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(o.error, None);
    let m = o.manifest.unwrap();
    assert_eq!((m.events, m.sha256.as_str()), (3, sha.as_str()));
    assert_eq!(m.cost_usd.to_string(), "0.000369");

    let l: ClientBackups = serde_json::from_value(
        call("backup_list", json!({"clientId": "acme"}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(l.backups.len(), 1);

    let r: RestoreResult = serde_json::from_value(
        call(
            "backup_restore",
            json!({"clientId": "acme", "file": l.backups[0].path, "withCache": false}),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(r.events, 3);
    // The tracker now holds events: the refusal reaches the UI as the tracker words it.
    let e = call(
        "backup_restore",
        json!({"clientId": "acme", "file": l.backups[0].path, "withCache": false}),
    )
    .await
    .unwrap_err();
    assert!(
        e.as_str().unwrap().contains("already holds 3 events"),
        "{e}"
    );
    // Backup and restores are in the audit log, the refused restore as failed.
    let audit = mai_ops::audit::AuditLog::in_dir(&dir.path().join("console"))
        .read()
        .unwrap();
    let seen: Vec<(&str, &str)> = audit
        .iter()
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("backup", "ok"),
            ("backup_restore", "started"),
            ("backup_restore", "ok"),
            ("backup_restore", "started"),
            ("backup_restore", "failed"),
        ]
    );

    // No OpenRouter management key in the keychain: the rebuild says so and is cache-only.
    let rep: RebuildReport = serde_json::from_value(
        call("backup_rebuild", json!({"clientId": "acme", "month": null}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(rep.activity_error.is_some());
    assert_eq!(rep.manifest.events, 0);
    let e = call(
        "backup_rebuild",
        json!({"clientId": "acme", "month": "12-2026"}),
    )
    .await
    .unwrap_err();
    assert!(e.as_str().unwrap().contains("YYYY-MM"), "{e}");
    drop(w);
}
