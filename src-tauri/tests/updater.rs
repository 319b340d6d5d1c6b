//! The updater against a local update server with a minisign-signed manifest, on tauri's
//! mock runtime: a newer version is found, its artifact downloads and verifies; a tampered
//! artifact is refused; an older manifest means "up to date". And what ships: the
//! updater endpoints of tauri.conf.json and of fleet.example.toml are https only.

use std::io::Cursor;

use axum::routing::get;
use axum::Router;
use base64::Engine;
use mai_console::{builder, Console};
use serde_json::json;
use tauri::test::{mock_builder, mock_context, noop_assets};
use tauri_plugin_updater::UpdaterExt;

struct Release {
    pubkey_b64: String,
    manifest: String,
}

fn sign(artifact: &[u8], version: &str, url: &str) -> Release {
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let pk_box = kp.pk.to_box().unwrap().to_string();
    let trusted = format!("timestamp:0\tfile:mai-console.AppImage\tversion:{version}");
    let sig = minisign::sign(
        None,
        &kp.sk,
        Cursor::new(artifact),
        Some(&trusted),
        Some("signature from tests"),
    )
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let manifest = json!({
        "version": version,
        "notes": "test release",
        "pub_date": "2026-11-23T10:00:00Z",
        "platforms": {"linux-x86_64": {"signature": b64.encode(sig.to_string()), "url": url}}
    });
    Release {
        pubkey_b64: b64.encode(pk_box),
        manifest: manifest.to_string(),
    }
}

async fn serve(manifest: String, artifact: Vec<u8>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let app = Router::new()
        .route(
            "/latest.json",
            get(move || async move { ([("content-type", "application/json")], manifest) }),
        )
        .route(
            "/mai-console.AppImage",
            get(move || async move { artifact }),
        );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    base
}

fn app() -> tauri::App<tauri::test::MockRuntime> {
    let mut ctx = mock_context(noop_assets());
    ctx.config_mut().plugins.0.insert(
        "updater".into(),
        json!({"pubkey": "unused", "endpoints": ["http://127.0.0.1:9/latest.json"], "dangerousInsecureTransportProtocol": true}),
    );
    ctx.config_mut().version = Some("0.1.0".into());
    builder(
        mock_builder(),
        Console::new(Err("no fleet in this test".into()), None),
    )
    .build(ctx)
    .unwrap()
}

#[test]
fn finds_downloads_and_verifies_a_signed_update() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let artifact = b"\x7fELF fake console build 0.2.0".repeat(100);
        // URL is only known after binding: sign with a placeholder host and patch it in.
        let placeholder = "http://HOST/mai-console.AppImage";
        let rel = sign(&artifact, "0.2.0", placeholder);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = l.local_addr().unwrap().to_string();
        drop(l);
        let manifest = rel.manifest.replace("HOST", &host);
        let art = artifact.clone();
        let l = tokio::net::TcpListener::bind(&host).await.unwrap();
        let app_r = Router::new()
            .route(
                "/latest.json",
                get(move || async move { ([("content-type", "application/json")], manifest) }),
            )
            .route("/mai-console.AppImage", get(move || async move { art }));
        tokio::spawn(async move { axum::serve(l, app_r).await.unwrap() });

        let app = app();
        let updater = app
            .updater_builder()
            .endpoints(vec![format!("http://{host}/latest.json").parse().unwrap()])
            .unwrap()
            .pubkey(rel.pubkey_b64.clone())
            .build()
            .unwrap();
        let update = updater
            .check()
            .await
            .unwrap()
            .expect("0.2.0 is newer than 0.1.0");
        assert_eq!(update.version, "0.2.0");
        assert_eq!(update.current_version, "0.1.0");
        let bytes = update
            .download(|_, _| {}, || {})
            .await
            .expect("signature verifies");
        assert_eq!(bytes, artifact);

        // Same manifest and signature, but a tampered artifact: refused.
        let mut bad = artifact.clone();
        bad[10] ^= 1;
        let base = serve(rel.manifest.replace("HOST", "PLACEHOLDER"), bad).await;
        let tampered_manifest = rel.manifest.replace("http://HOST", &base);
        let base2 = serve(tampered_manifest, vec![]).await;
        let updater = app
            .updater_builder()
            .endpoints(vec![format!("{base2}/latest.json").parse().unwrap()])
            .unwrap()
            .pubkey(rel.pubkey_b64)
            .build()
            .unwrap();
        let update = updater.check().await.unwrap().unwrap();
        let err = update
            .download(|_, _| {}, || {})
            .await
            .unwrap_err()
            .to_string();
        assert!(err.to_lowercase().contains("signature"), "{err}");
    });
}

#[test]
fn an_older_or_equal_release_means_up_to_date() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let rel = sign(b"x", "0.1.0", "http://127.0.0.1:9/none");
        let base = serve(rel.manifest, vec![]).await;
        let app = app();
        let updater = app
            .updater_builder()
            .endpoints(vec![format!("{base}/latest.json").parse().unwrap()])
            .unwrap()
            .pubkey(rel.pubkey_b64)
            .build()
            .unwrap();
        assert!(updater.check().await.unwrap().is_none());
    });
}

/// Every updater endpoint that ships is https: tauri.conf.json's (the default) and the
/// documented fleet-file override. The plugin itself refuses a non-https endpoint in
/// release builds only while `dangerousInsecureTransportProtocol` is off, so that flag
/// must not be in the shipped config either (tests set it on their own mock context).
#[test]
fn shipped_updater_endpoints_are_https_only() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tauri.conf.json")).unwrap())
            .unwrap();
    let updater = &conf["plugins"]["updater"];
    let endpoints = updater["endpoints"]
        .as_array()
        .expect("tauri.conf.json: plugins.updater.endpoints");
    assert!(!endpoints.is_empty());
    for e in endpoints {
        let url = e.as_str().expect("an endpoint is a string");
        assert!(
            url.starts_with("https://"),
            "tauri.conf.json ships updater endpoint {url}"
        );
    }
    assert!(
        updater.get("dangerousInsecureTransportProtocol").is_none(),
        "tauri.conf.json must not allow insecure updater transport"
    );
    assert!(
        updater["pubkey"].as_str().is_some_and(|k| !k.is_empty()),
        "the release signing public key"
    );

    let example = dir.join("../fleet.example.toml");
    let fleet = mai_ops::fleet::Fleet::parse(&std::fs::read_to_string(&example).unwrap(), &example)
        .unwrap();
    let u = fleet
        .updater
        .expect("fleet.example.toml documents [updater]");
    assert!(
        u.endpoint.starts_with("https://"),
        "fleet.example.toml's updater endpoint {}",
        u.endpoint
    );
}
