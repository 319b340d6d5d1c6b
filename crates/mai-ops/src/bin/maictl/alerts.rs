//! `maictl alerts`: one refresh of the fleet evaluated into alerts (with the debounce
//! history the console cache keeps, so runs from cron debounce like the console), printed
//! as a table or JSON; exit 0 when nothing needs attention, 1 when something does.
//! `alerts ack ID` and `alerts mute ID --for 2h` act on one alert.

use mai_ops::{Ops, OpsError};
use mai_wire::alerts::ActiveAlert;

use crate::{wire_name, EXIT_FAIL};

#[derive(clap::Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub cmd: Option<AlertsCmd>,
    /// The alerts view as JSON (active, recently cleared, counts).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand)]
pub enum AlertsCmd {
    /// Acknowledge an alert: it stays listed but needs no attention until it clears.
    Ack {
        /// The alert's id, e.g. tracker_unreachable:acme (see `maictl alerts`).
        id: String,
    },
    /// Mute an alert for a period: no notification, webhook or exit code meanwhile.
    Mute {
        id: String,
        /// How long: 90s, 30m, 2h, 1d.
        #[arg(long = "for", default_value = "1h")]
        period: String,
    },
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

fn state(a: &ActiveAlert, now: chrono::DateTime<chrono::Utc>) -> String {
    match (a.acked, a.muted_until.filter(|u| *u > now)) {
        (_, Some(u)) => format!("muted until {}", u.format("%Y-%m-%d %H:%M UTC")),
        (true, None) => "acked".into(),
        (false, None) => "new".into(),
    }
}

pub async fn alerts(ops: &Ops, args: AlertsArgs) -> Result<u8, OpsError> {
    let print_one = |a: &ActiveAlert| {
        if args.json {
            println!("{}", serde_json::to_string_pretty(a).expect("serialize"));
        }
    };
    match args.cmd {
        Some(AlertsCmd::Ack { id }) => {
            let a = ops.alert_ack(&id).await?;
            print_one(&a);
            if !args.json {
                println!("acknowledged {} (until it clears)", a.id);
            }
            Ok(0)
        }
        Some(AlertsCmd::Mute { id, period }) => {
            let p = mai_ops::alerts::parse_period(&period).map_err(OpsError::Alert)?;
            let a = ops.alert_mute(&id, p).await?;
            print_one(&a);
            if !args.json {
                let until = a.muted_until.expect("just muted");
                println!(
                    "muted {} until {}",
                    a.id,
                    until.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
            Ok(0)
        }
        None => {
            // The webhook's posts of this evaluation finish before the exit (main.rs).
            let v = ops.alerts_refreshed().await?;
            let now = chrono::Utc::now();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v).expect("serialize"));
            } else if v.active.is_empty() {
                println!("no active alerts");
            } else {
                println!(
                    "{:<32} {:<9} {:<14} {:<20} {:>8} {:<10} MESSAGE",
                    "ID", "SEVERITY", "CLIENT", "FIRST SEEN (UTC)", "AGE", "STATE"
                );
                for a in &v.active {
                    println!(
                        "{:<32} {:<9} {:<14} {:<20} {:>8} {:<10} {}",
                        a.id,
                        wire_name(a.severity),
                        a.client.as_deref().unwrap_or("(fleet)"),
                        a.first_seen.format("%Y-%m-%d %H:%M:%S"),
                        age(a.age_seconds),
                        state(a, now),
                        a.message
                    );
                }
            }
            Ok(if v.attention > 0 { EXIT_FAIL } else { 0 })
        }
    }
}
