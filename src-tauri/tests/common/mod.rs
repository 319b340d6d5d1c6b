//! Shared helpers of the IPC tests on tauri's mock runtime.

use mai_console::{builder, Console};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindowBuilder;

/// The console's real command handlers on the mock runtime, with one `main` window.
pub fn app_with(console: Console) -> (tauri::App<MockRuntime>, tauri::WebviewWindow<MockRuntime>) {
    let mut ctx = mock_context(noop_assets());
    // The updater plugin refuses to start without its config section.
    ctx.config_mut().plugins.0.insert(
        "updater".into(),
        json!({"pubkey": "dGVzdA==", "endpoints": ["http://127.0.0.1:9/latest.json"], "dangerousInsecureTransportProtocol": true}),
    );
    let app = builder(mock_builder(), console).build(ctx).unwrap();
    let w = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    (app, w)
}

/// Invokes `cmd` as the UI would; `Err` holds the command's error value.
pub fn invoke(
    w: &tauri::WebviewWindow<MockRuntime>,
    cmd: &str,
    body: Value,
) -> Result<Value, Value> {
    get_ipc_response(
        w,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(body),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().unwrap())
}
