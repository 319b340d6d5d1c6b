//! Builds the Svelte UI (when its dist folder is missing) before tauri-build embeds it,
//! so a plain clone builds with `cargo build -p mai-console`.
use std::path::Path;
use std::process::Command;

fn main() {
    // Read at run time, not baked in with env!(): a build script compiled in one checkout
    // is reused by another sharing the target dir (CI clones into new folders).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let ui = Path::new(&manifest).join("../ui");
    let dist = ui.join("dist/index.html");
    println!("cargo:rerun-if-changed=../ui/dist");
    if !dist.exists() {
        let npm = |args: &[&str]| {
            let status = Command::new("npm").args(args).current_dir(&ui).status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => panic!("`npm {}` in {} failed ({s}); run it by hand to see why", args.join(" "), ui.display()),
                Err(e) => panic!("could not run npm to build the UI in {} ({e}); install Node.js 20+ and npm, or build ui/dist yourself", ui.display()),
            }
        };
        if !ui.join("node_modules").exists() {
            npm(&["install", "--no-audit", "--no-fund"]);
        }
        npm(&["run", "build"]);
    }
    tauri_build::build()
}
