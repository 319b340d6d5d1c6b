//! The console's IPC: what the Tauri commands return to the web view and what it sends.

/// Marker used by [`crate::ts`] until the IPC types move here.
pub const ALL: () = ();
