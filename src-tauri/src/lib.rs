//! mAI Fleet console: a thin Tauri shell; all logic lives in mai-ops.

pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_updater::Builder::new().build())
        .run(tauri::generate_context!())
        .expect("error while running the console");
}
