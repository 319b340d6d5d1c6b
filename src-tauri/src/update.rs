//! "Check for updates": a clear result either way, never a panic.

use mai_wire::console::UpdateCheck;

pub async fn check(b: tauri_plugin_updater::UpdaterBuilder) -> UpdateCheck {
    let current = env!("CARGO_PKG_VERSION").to_string();
    let res = async {
        let u = b.build()?;
        u.check().await
    }
    .await;
    match res {
        Ok(Some(u)) => UpdateCheck {
            available: true,
            version: Some(u.version.clone()),
            notes: u.body.clone(),
            current,
            error: None,
        },
        Ok(None) => UpdateCheck {
            available: false,
            version: None,
            notes: None,
            current,
            error: None,
        },
        Err(e) => UpdateCheck {
            available: false,
            version: None,
            notes: None,
            current,
            error: Some(format!(
                "{e}; check the update endpoint and your network, then retry"
            )),
        },
    }
}
