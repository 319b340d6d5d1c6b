//! Backup and restore of the ledger (docs/tracker-api.md, "Backup and restore").
//!
//! `GET /api/v1/admin/backup`: SQLite's online backup of the ledger (one consistent
//! snapshot while the writer keeps writing) into a temporary file beside it, checked
//! (`integrity_check`), hashed (SHA-256), then streamed as the body with its hash, size
//! and event count in headers; the file is unlinked once open, so nothing is left behind.
//!
//! `POST /api/v1/admin/restore`: the body is a backup; it goes only onto a tracker whose
//! ledger holds no event (409 otherwise). The upload is streamed to a staged file beside
//! the ledger, its SHA-256 compared with the header, checked (`integrity_check`, schema,
//! every event of this tracker's org), given this tracker's current key history and
//! terms, and then renamed over the empty ledger by the ledger writer (the one writer
//! checks for events again right before the rename, so no event is lost between).

// Handlers return a ready error `Response` from their helpers (as in `api`).
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use mai_core::ledger::{inspect_file, sha256_file, Ledger};
use mai_wire::tracker::{
    RestoreReport, BACKUP_EVENTS_HEADER, BACKUP_ORG_HEADER, BACKUP_SHA256_HEADER,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::error_response;
use crate::key_history::{KeyHistory, META_KEY as KEYS_META};
use crate::state::AppState;
use crate::writer::SwapError;

/// The largest backup a restore accepts (a year of a busy client is ~1 GB).
pub const MAX_RESTORE_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// A file beside the ledger, unique per call: same file system, so a rename is atomic.
fn side_file(db: &Path, what: &str) -> PathBuf {
    let mut name = db
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "ledger".into());
    name.push(format!(".{what}-{:016x}.tmp", rand::random::<u64>()));
    db.with_file_name(name)
}

fn internal(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what}");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("{what}: {e}; see the tracker's log"),
    )
}

/// `GET /api/v1/admin/backup` (admin).
pub async fn backup(State(st): State<Arc<AppState>>) -> Response {
    let _guard = st.backup_lock.lock().await;
    let db = st.cfg.db_path.clone();
    let org = st.cfg.org_id.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let tmp = side_file(&db, "backup");
        let result = (|| {
            let src = Ledger::open_read_only(&db).map_err(|e| e.to_string())?;
            src.backup_to(&tmp).map_err(|e| e.to_string())?;
            drop(src);
            let facts = inspect_file(&tmp).map_err(|e| e.to_string())?;
            let (sha, size) = sha256_file(&tmp).map_err(|e| e.to_string())?;
            let file = std::fs::File::open(&tmp).map_err(|e| e.to_string())?;
            Ok((file, sha, size, facts.events))
        })();
        // Unlinked at once: the open handle streams it, nothing stays on the volume.
        let _ = std::fs::remove_file(&tmp);
        result
    })
    .await
    .expect("backup task panicked");
    let (file, sha, size, events) = match made {
        Ok(v) => v,
        Err(e) => return internal("backing up the ledger failed", e),
    };
    tracing::info!(events, size, sha256 = %sha, "ledger backup streamed");
    let file = tokio::fs::File::from_std(file);
    let stream = futures::stream::unfold(Some(file), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)),
                    Some(f),
                ))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(
        BACKUP_SHA256_HEADER,
        HeaderValue::from_str(&sha).expect("hex"),
    );
    h.insert(BACKUP_EVENTS_HEADER, HeaderValue::from(events));
    if let Ok(v) = HeaderValue::from_str(&org) {
        h.insert(BACKUP_ORG_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{org}.db\"")) {
        h.insert(http::header::CONTENT_DISPOSITION, v);
    }
    r
}

/// The SHA-256 a restore's header announces: 64 hex digits.
fn announced_sha(headers: &HeaderMap) -> Result<String, Response> {
    let v = headers
        .get(BACKUP_SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                "a restore needs the header {BACKUP_SHA256_HEADER}: the SHA-256 (64 hex digits) \
                 of the body, as the backup's reply or manifest gives it"
            ),
        ))
    }
}

fn has_events(n: u64) -> Response {
    error_response(
        StatusCode::CONFLICT,
        &format!(
            "this tracker's ledger already holds {n} events; a restore never overwrites a \
             ledger in use: deploy a new tracker for this client (an empty data volume) and \
             restore onto it"
        ),
    )
}

/// `POST /api/v1/admin/restore` (admin): body = a backup file.
pub async fn restore(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let want = match announced_sha(&headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(_guard) = st.backup_lock.try_lock() else {
        return error_response(
            StatusCode::CONFLICT,
            "a backup or restore of this tracker is running; try again when it is done",
        );
    };
    // Refuse early, before reading a large body (the writer checks again at the swap).
    match st.read(|l| l.event_count(None)).await {
        Ok(0) => {}
        Ok(n) => return has_events(n),
        Err(e) => return internal("reading the ledger failed", e),
    }
    let staged = side_file(&st.cfg.db_path, "restore");
    let r = restore_staged(&st, &want, body, &staged).await;
    // Whatever happened, no staged file stays (after a swap it has been renamed).
    let _ = std::fs::remove_file(&staged);
    for side in ["-wal", "-shm", "-journal"] {
        let mut p = staged.clone().into_os_string();
        p.push(side);
        let _ = std::fs::remove_file(p);
    }
    r
}

async fn restore_staged(st: &Arc<AppState>, want: &str, body: Body, staged: &Path) -> Response {
    // 1. The upload, streamed to disk and hashed on the way.
    let mut file = match tokio::fs::File::create(staged).await {
        Ok(f) => f,
        Err(e) => return internal("cannot stage the restore beside the ledger", e),
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("the upload broke off after {size} bytes ({e}); send it again"),
                )
            }
        };
        size += chunk.len() as u64;
        if size > MAX_RESTORE_BYTES {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a backup larger than {MAX_RESTORE_BYTES} bytes is not accepted"),
            );
        }
        hasher.update(&chunk);
        if let Err(e) = file.write_all(&chunk).await {
            return internal("writing the staged restore failed", e);
        }
    }
    if let Err(e) = file.sync_all().await {
        return internal("syncing the staged restore failed", e);
    }
    drop(file);
    let got = hex::encode(hasher.finalize());
    if got != want {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                "the upload's SHA-256 is {got} ({size} bytes) but {BACKUP_SHA256_HEADER} says \
                 {want}: the file was damaged on the way or is not the backup meant; send it again"
            ),
        );
    }
    // 2. What the file is: checked, this org's, given this tracker's key and terms.
    let st2 = st.clone();
    let staged2 = staged.to_path_buf();
    let prepared = tokio::task::spawn_blocking(move || prepare(&st2, &staged2))
        .await
        .expect("restore check panicked");
    let (keys, restored_terms) = match prepared {
        Ok(v) => v,
        Err(r) => return r,
    };
    // 3. The swap, with the reader's connection closed meanwhile.
    let st2 = st.clone();
    let staged2 = staged.to_path_buf();
    let swapped = tokio::task::spawn_blocking(move || {
        let mut reader = st2.reader.lock().unwrap_or_else(|p| p.into_inner());
        let placeholder = Ledger::open_in_memory().map_err(|e| SwapError::Failed(e.to_string()))?;
        drop(std::mem::replace(&mut *reader, placeholder));
        let r = st2.writer.swap_in_blocking(staged2);
        match Ledger::open(&st2.cfg.db_path) {
            Ok(l) => *reader = l,
            Err(e) => {
                tracing::error!(error = %e, "reopening the reader after a restore failed; restart the tracker");
                return Err(SwapError::Failed(format!("reopening the ledger for reads: {e}")));
            }
        }
        r
    })
    .await
    .expect("restore swap panicked");
    let events = match swapped {
        Ok(n) => n,
        Err(SwapError::HasEvents(n)) => return has_events(n),
        Err(e @ SwapError::Busy) => {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Err(e) => return internal("restoring the ledger failed", e),
    };
    // 4. The running tracker takes the restored ledger's settings.
    *st.keys.lock().unwrap_or_else(|p| p.into_inner()) = keys;
    if st.terms().is_none() {
        if let Some(t) = restored_terms {
            st.set_terms(t);
        }
    }
    tracing::info!(events, size, sha256 = %want, "ledger restored");
    Json(RestoreReport {
        org_id: st.cfg.org_id.clone(),
        events,
        sha256: want.to_owned(),
        size_bytes: size,
        restored_at: chrono::Utc::now(),
    })
    .into_response()
}

type Prepared = (KeyHistory, Option<mai_core::pricing::CommercialTerms>);

/// Checks the staged file and writes into it this tracker's key history (the restored
/// history with the key in use now as current) and its pushed terms, if any.
fn prepare(st: &AppState, staged: &Path) -> Result<Prepared, Response> {
    let facts = inspect_file(staged).map_err(|e| {
        error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("the upload is not a usable ledger backup: {e}"),
        )
    })?;
    let org = &st.cfg.org_id;
    if let Some(other) = facts.orgs.iter().find(|o| *o != org) {
        return Err(error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "the backup holds events of org `{other}`, this tracker meters org `{org}`: \
                 restore it onto that client's tracker"
            ),
        ));
    }
    let unusable = |e: String| {
        error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("the backup's settings are unreadable: {e}"),
        )
    };
    // Opening migrates an older schema in the staged copy, never in the live ledger.
    let mut l = Ledger::open(staged).map_err(|e| unusable(e.to_string()))?;
    let mut keys = l
        .get_meta(KEYS_META)
        .map_err(|e| e.to_string())
        .and_then(|s| KeyHistory::parse(s.as_deref()).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the backup's key history is unreadable; starting a new one");
            KeyHistory::default()
        });
    let current = st.key_history();
    let now = chrono::Utc::now();
    keys.use_key(
        &st.key(),
        current.current().and_then(|k| k.name.clone()),
        None,
        now,
    );
    l.set_meta(KEYS_META, &keys.to_stored())
        .map_err(|e| unusable(e.to_string()))?;
    let restored_terms = crate::terms::load(&l).ok().flatten();
    if let Some(t) = st.terms() {
        l.set_meta(crate::terms::META_KEY, &crate::terms::to_stored(&t))
            .map_err(|e| unusable(e.to_string()))?;
    }
    l.checkpoint().map_err(|e| unusable(e.to_string()))?;
    drop(l);
    Ok((keys, restored_terms))
}
