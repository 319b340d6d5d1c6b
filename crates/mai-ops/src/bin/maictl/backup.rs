//! `maictl backup`: ledger backups (run, list), restore onto a new tracker, and a rebuild
//! without a backup. Each is one `Ops` call (`mai_ops::ops::backup`).

use std::io::Write;
use std::path::PathBuf;

use mai_core::time::YearMonth;
use mai_ops::ops::backup::{DaySource, RebuildReport};
use mai_ops::{Ops, OpsError};

use crate::{EXIT_FAIL, EXIT_PARTIAL};

#[derive(clap::Subcommand)]
pub enum BackupCmd {
    /// Back up one client's ledger, or every active client's, into the backup folder
    /// (`[backup] dir` of the fleet file, or --dir): streamed, checksummed, verified.
    Run {
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The backups of one client or of every client, newest first.
    List {
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup (--file, else the client's newest) onto the client's tracker.
    /// The tracker must be new: it refuses when its ledger already holds events.
    Restore {
        #[arg(long)]
        client: String,
        #[arg(long)]
        file: Option<PathBuf>,
        /// Add the console cache's events of the client that the backup lacks (the usage
        /// after it was taken, pulled before the ledger was lost).
        #[arg(long)]
        with_cache: bool,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a lost ledger without a backup, from the console cache and OpenRouter's
    /// /activity; writes a `rebuilt` backup (restore it with `backup restore --file`) and
    /// reports per day what it is made of and what could not be recovered.
    Rebuild {
        #[arg(long)]
        client: String,
        /// YYYY-MM; default: from the cache's first event (or 30 days back) to today.
        #[arg(long)]
        month: Option<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn json_out<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialize"));
}

pub async fn run(ops: &Ops, cmd: BackupCmd) -> Result<u8, OpsError> {
    match cmd {
        BackupCmd::Run { client, dir, json } => {
            let mut last = (String::new(), 0u64);
            let out = ops
                .backup_run(client.as_deref(), dir.as_deref(), |c, b, total| {
                    // Progress on stderr, at most every MiB and at the end.
                    if json || (last.0 == c && b < total && b - last.1 < 1 << 20) {
                        return;
                    }
                    last = (c.to_string(), b);
                    eprint!("\r{c}: {b} / {total} bytes");
                    if b >= total {
                        eprintln!();
                    }
                    let _ = std::io::stderr().flush();
                })
                .await?;
            if json {
                json_out(&out);
            }
            let mut failed = 0;
            for o in &out {
                match (&o.manifest, &o.error) {
                    (Some(m), _) if !json => {
                        println!(
                            "{}: {} ({} bytes, {} events, {} USD, sha256 {})",
                            o.client_id, m.path, m.size_bytes, m.events, m.cost_usd, m.sha256
                        );
                        for p in &o.pruned {
                            println!("{}: deleted old backup {p}", o.client_id);
                        }
                    }
                    (None, Some(e)) => {
                        failed += 1;
                        eprintln!("maictl: {}: {e}", o.client_id);
                    }
                    _ => {}
                }
            }
            Ok(match failed {
                0 => 0,
                n if n == out.len() => EXIT_FAIL,
                _ => EXIT_PARTIAL,
            })
        }
        BackupCmd::List { client, dir, json } => {
            let ids: Vec<String> = match client {
                Some(c) => vec![c],
                None => ops.fleet.clients.iter().map(|c| c.id.clone()).collect(),
            };
            let mut all = Vec::new();
            for id in ids {
                all.push(ops.backups(&id, dir.as_deref())?);
            }
            if json {
                json_out(&all);
                return Ok(0);
            }
            for c in &all {
                match &c.dir {
                    None => println!(
                        "{}: no backup folder ([backup] dir in the fleet file, or --dir)",
                        c.client_id
                    ),
                    Some(d) if c.backups.is_empty() => {
                        println!("{}: no backups in {d}", c.client_id)
                    }
                    Some(_) => {
                        for m in &c.backups {
                            println!(
                                "{}  {}  {:<8} {:>8} events  {:>14} USD  {}",
                                c.client_id,
                                m.taken_at.format("%Y-%m-%d %H:%M:%SZ"),
                                serde_json::to_value(m.kind)
                                    .ok()
                                    .and_then(|v| v.as_str().map(String::from))
                                    .unwrap_or_default(),
                                m.events,
                                m.cost_usd,
                                m.path
                            );
                        }
                    }
                }
                for p in &c.problems {
                    eprintln!("warning: {}: {p}", c.client_id);
                }
            }
            Ok(0)
        }
        BackupCmd::Restore {
            client,
            file,
            with_cache,
            dir,
            json,
        } => {
            eprintln!("restoring onto the tracker of {client} ...");
            let r = ops
                .backup_restore(&client, file.as_deref(), dir.as_deref(), with_cache)
                .await?;
            if json {
                json_out(&r);
            } else {
                println!(
                    "{}: restored {} ({} events, {} of them from the console cache, sha256 {})",
                    r.client_id, r.file, r.events, r.from_cache, r.sha256
                );
            }
            Ok(0)
        }
        BackupCmd::Rebuild {
            client,
            month,
            dir,
            json,
        } => {
            let month = match month {
                Some(m) => Some(m.parse::<YearMonth>().map_err(|_| OpsError::BadMonth(m))?),
                None => None,
            };
            eprintln!("rebuilding the ledger of {client} from the console cache and OpenRouter /activity ...");
            let r = ops.backup_rebuild(&client, month, dir.as_deref()).await?;
            if json {
                json_out(&r);
            } else {
                print_rebuild(&r);
            }
            Ok(
                if r.unrecoverable.is_empty() && r.activity_error.is_none() {
                    0
                } else {
                    EXIT_PARTIAL
                },
            )
        }
    }
}

fn print_rebuild(r: &RebuildReport) {
    println!(
        "{}: {} to {} (UTC days) -> {} ({} events, {} USD)",
        r.client_id, r.from, r.to, r.manifest.path, r.manifest.events, r.manifest.cost_usd
    );
    for d in &r.days {
        let what = match d.source {
            DaySource::Cache => "cache (exact, checked against /activity)".to_string(),
            DaySource::Activity => format!(
                "cache + /activity aggregate: {} requests, {} USD without users",
                d.activity_requests, d.activity_usd
            ),
            DaySource::CacheUnverified => {
                "cache only (outside /activity's window, not checked)".to_string()
            }
            DaySource::Unrecoverable => {
                "UNRECOVERABLE (not cached, outside /activity's window)".to_string()
            }
        };
        if d.cached_events == 0 && d.source == DaySource::Cache {
            continue;
        }
        println!(
            "  {}  {:>6} cached events {:>12} USD  {what}",
            d.date, d.cached_events, d.cached_usd
        );
    }
    if let Some(e) = &r.activity_error {
        eprintln!("warning: /activity could not be asked ({e}); every day is cache-only");
    }
    if !r.unrecoverable.is_empty() {
        eprintln!(
            "warning: {} day(s) could not be recovered: {}",
            r.unrecoverable.len(),
            r.unrecoverable
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "restore it onto the new tracker: maictl backup restore --client {} --file {}",
        r.client_id, r.manifest.path
    );
}
