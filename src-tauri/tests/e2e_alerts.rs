//! End to end, alerts (issue 14): the real console under Xvfb over WebDriver on the demo
//! fleet's real tracker containers. A tracker container is stopped: the Alerts view shows
//! "tracker unreachable" for it once the debounce (three failed refreshes in a row) has
//! passed, with the container alert first; started again, the alerts clear by themselves.
//! Screenshots at 1280x800 and in a narrow window. Run by tests/run-e2e.sh (E2E_STATE,
//! E2E_FLEET, E2E_APP, E2E_OUT); skipped, saying so, under a plain `cargo test`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::Locator;

mod e2e_support;
use e2e_support::{docker, env, shot, text_of, tracker_container, wait_on_page as wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn alerts_appear_and_clear_on_a_real_fleet() {
    if !e2e_support::enabled("alerts_appear_and_clear_on_a_real_fleet") {
        return;
    }
    let state = e2e_support::state();
    let out = PathBuf::from(env("E2E_OUT"));
    std::fs::create_dir_all(&out).unwrap();
    let id = state["clients"][0]["id"].as_str().unwrap().to_string();

    // The demo fleet with its own console data (a fresh alert history) and a 2 s
    // background refresh, so the debounce passes in seconds.
    let (fleet, _) = e2e_support::fleet_copy(
        "fleet-alerts.toml",
        "console-alerts",
        "[alerts]\nrefresh_seconds = 2\n",
    );

    let tracker = tracker_container(&id);

    let c = e2e_support::open_console(&fleet.to_string_lossy()).await;

    // Whatever happens below, the tracker runs again afterwards for the other tests.
    let _restart = StartOnDrop(tracker.clone());
    let unreachable = format!("[data-testid='alert-tracker_unreachable:{id}']");
    let container = format!("[data-testid='alert-tracker_container:{id}']");
    {
        wait_for(&c, "the Alerts entry", Duration::from_secs(60), || async {
            c.find(Locator::Css("[data-testid='nav-alerts']"))
                .await
                .ok()
        })
        .await
        .click()
        .await
        .unwrap();
        // The fleet is healthy at first: no tracker alert for the client.
        wait_for(
            &c,
            "the first evaluation",
            Duration::from_secs(60),
            || async {
                text_of(&c, "[data-testid='alerts-summary']")
                    .await
                    .filter(|t| t.contains("checked"))
            },
        )
        .await;
        assert!(text_of(&c, &unreachable).await.is_none());
        shot(&c, &out, "alerts-01-healthy").await;

        // Stop the tracker: the container alert at once, "unreachable" only after three
        // failed refreshes in a row.
        let stopped_at = Instant::now();
        docker(&["stop", "-t", "2", &tracker]);
        let msg = wait_for(
            &c,
            "the debounced tracker alert",
            Duration::from_secs(120),
            || text_of(&c, &unreachable),
        )
        .await;
        println!(
            "e2e-alerts: tracker_unreachable:{id} shown {:.1}s after the stop: {msg}",
            stopped_at.elapsed().as_secs_f64()
        );
        assert!(
            msg.contains("Tracker unreachable") && msg.contains("3 refreshes in a row"),
            "{msg}"
        );
        let ct = text_of(&c, &container).await.unwrap_or_default();
        assert!(
            ct.contains("Tracker container") && ct.contains("is exited"),
            "{ct}"
        );
        // A desktop notification went to the session's notification server (dunst),
        // recorded by dbus-monitor in tests/run-e2e.sh.
        if let Ok(log) = std::env::var("E2E_NOTIFY_LOG") {
            wait_for(
                &c,
                "the desktop notification",
                Duration::from_secs(30),
                || async {
                    let l = std::fs::read_to_string(&log).unwrap_or_default();
                    l.contains(&format!("mAI Fleet: {id}")).then_some(())
                },
            )
            .await;
            println!("e2e-alerts: notification of {id} seen on the session bus");
        }
        let badge = text_of(&c, "[data-testid='alerts-badge']")
            .await
            .unwrap_or_default();
        assert!(
            badge.parse::<u32>().is_ok_and(|n| n >= 2),
            "badge {badge:?}"
        );
        shot(&c, &out, "alerts-02-tracker-down").await;
        c.set_window_size(480, 800).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await; // let the narrow layout paint
        shot(&c, &out, "alerts-03-tracker-down-narrow").await;
        c.set_window_size(1280, 800).await.unwrap();

        // Start it again: both alerts clear themselves and are listed as cleared.
        docker(&["start", &tracker]);
        wait_for(
            &c,
            "the alerts to clear",
            Duration::from_secs(120),
            || async {
                let gone = text_of(&c, &unreachable).await.is_none()
                    && text_of(&c, &container).await.is_none();
                let cleared = text_of(
                    &c,
                    &format!("[data-testid='cleared-tracker_unreachable:{id}']"),
                )
                .await
                .is_some();
                (gone && cleared).then_some(())
            },
        )
        .await;
        shot(&c, &out, "alerts-04-cleared").await;
    }
    c.close().await.unwrap();
}

struct StartOnDrop(String);

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["start", &self.0]).output();
    }
}
