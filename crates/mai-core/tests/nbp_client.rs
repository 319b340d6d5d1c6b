//! The production NBP client against the NBP simulator: art. 31a date rules on real
//! calendar cases, caching, retries, faults, and the display/invoice split.

use std::time::Duration;

use chrono::NaiveDate;
use mai_core::nbp::{NbpClient, NbpConfig, NbpError};
use mai_sim::nbp::{self as sim, Fault, NbpSim};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn client_for(base: &str, cache: Option<std::path::PathBuf>) -> NbpClient {
    NbpClient::new(NbpConfig {
        base_url: Some(base.to_string()),
        cache_path: cache,
        timeout: Duration::from_millis(1500),
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(2),
    })
    .unwrap()
}

async fn spawn() -> sim::NbpHandle {
    NbpSim::spawn(sim::NbpConfig::default()).await.unwrap()
}

#[tokio::test]
async fn invoice_rate_is_last_table_a_strictly_before_the_reference_date() {
    let s = spawn().await;
    let c = client_for(&s.base_url(), None);
    // (reference date D, expected table date)
    let cases = [
        // a Monday → the preceding Friday
        ("2026-11-23", "2026-11-20"),
        // a Tuesday after a Monday holiday (6 January 2025) → the Friday before
        ("2025-01-07", "2025-01-03"),
        // a Saturday and a Sunday → Friday
        ("2026-11-21", "2026-11-20"),
        ("2026-11-22", "2026-11-20"),
        // a Wednesday → Tuesday (the same day's table never counts)
        ("2026-11-18", "2026-11-17"),
        // the Christmas run of 2025: 24, 25, 26 December are holidays, then a weekend
        ("2025-12-24", "2025-12-23"),
        ("2025-12-27", "2025-12-23"),
        ("2025-12-29", "2025-12-23"),
        // 24 December 2024 was still a working day with a table
        ("2024-12-25", "2024-12-24"),
        ("2024-12-27", "2024-12-24"),
        // 2024-12-24 vs 2025-12-24 as the reference itself
        ("2024-12-24", "2024-12-23"),
        // New Year: 1 January is a holiday; 31 December is a working day
        ("2026-01-02", "2025-12-31"),
    ];
    for (reference, expected) in cases {
        let r = c.invoice_rate("USD", d(reference)).await.unwrap();
        assert_eq!(
            r.effective_date,
            d(expected),
            "reference {reference}: got {} ({})",
            r.effective_date,
            r.table_no
        );
        assert_eq!(r.reference_date, d(reference));
        assert_eq!(r.code, "USD");
        assert_eq!(
            Some(r.mid),
            s.rate_a("USD", d(expected)),
            "mid for {expected}"
        );
        assert_eq!(
            Some(r.table_no.clone()),
            sim::table_number(sim::Table::A, d(expected)),
            "table number for {expected}"
        );
        assert_eq!(r.mid.scale(), 4, "USD mid keeps its published 4 decimals");
    }
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn past_invoice_rates_are_cached_persistently() {
    let s = spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nbp-cache.sqlite");
    let first = client_for(&s.base_url(), Some(path.clone()))
        .invoice_rate("EUR", d("2025-12-29"))
        .await
        .unwrap();
    let served = s.requests_served();
    assert_eq!(served, 1);
    // A new client on the same file: no request at all.
    let again = client_for(&s.base_url(), Some(path))
        .invoice_rate("eur", d("2025-12-29"))
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(s.requests_served(), served);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn future_reference_date_gives_no_rate() {
    let s = spawn().await;
    let c = client_for(&s.base_url(), None);
    let tomorrow = mai_core::time::warsaw_today().succ_opt().unwrap();
    let err = c.invoice_rate("USD", tomorrow).await.unwrap_err();
    assert!(matches!(err, NbpError::NotFinal { .. }), "{err}");
    assert!(err.to_string().contains(&tomorrow.to_string()));
    assert_eq!(s.requests_served(), 0);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn retries_5xx_429_timeouts_and_bad_bodies() {
    let s = spawn().await;
    let c = client_for(&s.base_url(), None);
    let want = s.rate_a("USD", d("2026-10-30")).unwrap();

    s.set_fault(Fault::status(503).times(2));
    let r = c.invoice_rate("USD", d("2026-11-02")).await.unwrap();
    assert_eq!(r.mid, want);
    assert_eq!(s.requests_served(), 3);

    s.set_fault(Fault::too_many_requests(1).times(1));
    let r = c.invoice_rate("USD", d("2026-11-01")).await.unwrap();
    assert_eq!(r.mid, want);
    assert_eq!(s.requests_served(), 5);

    s.set_fault(Fault::malformed_json().times(1));
    let r = c.invoice_rate("USD", d("2026-10-31")).await.unwrap();
    assert_eq!(r.mid, want);
    assert_eq!(s.requests_served(), 7);

    s.set_fault(Fault::empty_rates().times(1));
    let r = c.invoice_rate("USD", d("2026-11-03")).await.unwrap();
    assert_eq!(r.effective_date, d("2026-11-02"));
    assert_eq!(s.requests_served(), 9);

    s.set_fault(Fault::timeout().times(1));
    let r = c.invoice_rate("USD", d("2026-11-04")).await.unwrap();
    assert_eq!(r.effective_date, d("2026-11-03"));
    assert_eq!(s.requests_served(), 11);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn nbp_down_means_no_rate_and_the_error_names_date_and_table() {
    let s = spawn().await;
    let c = client_for(&s.base_url(), None);
    s.set_fault(Fault::status(500));
    let err = c.invoice_rate("USD", d("2025-12-29")).await.unwrap_err();
    assert!(
        matches!(err, NbpError::Unavailable { attempts: 4, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("table A"), "{msg}");
    assert!(msg.contains("2025-12-29"), "{msg}");
    assert!(msg.contains("2025-12-15..2025-12-28"), "{msg}");
    assert!(msg.contains("HTTP 500"), "{msg}");
    assert_eq!(s.requests_served(), 4);
    s.shutdown().await.unwrap();

    // Nothing listening at all.
    let c = client_for("http://127.0.0.1:9/api", None);
    let err = c.invoice_rate("USD", d("2025-12-29")).await.unwrap_err();
    assert!(matches!(err, NbpError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn no_table_in_the_window_is_a_no_rate_error() {
    let s = spawn().await;
    let c = client_for(&s.base_url(), None);
    // Before NBP's history (2002-01-02): 404 for the whole window.
    let err = c.invoice_rate("USD", d("2002-01-02")).await.unwrap_err();
    assert!(matches!(err, NbpError::NoRate { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("table A") && msg.contains("2002-01-02"),
        "{msg}"
    );
    // A currency table A does not carry.
    let err = c.invoice_rate("XYZ", d("2025-12-29")).await.unwrap_err();
    assert!(matches!(err, NbpError::NoRate { .. }), "{err:?}");
    assert!(matches!(
        c.invoice_rate("PLN", d("2025-12-29")).await.unwrap_err(),
        NbpError::InvalidCode(_)
    ));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn display_rate_is_table_c_ask_and_goes_stale_when_nbp_is_down() {
    let s = spawn().await;
    let c = client_for(&s.base_url(), None);
    let fresh = c.display_rate("USD").await.unwrap();
    assert!(!fresh.stale);
    let (bid, ask) = s.rate_c("USD", fresh.effective_date).unwrap();
    assert_eq!((fresh.bid, fresh.ask), (bid, ask));
    assert!(fresh.table_no.contains("/C/NBP/"));
    let today = mai_core::time::warsaw_today();
    assert!(fresh.effective_date <= today);
    assert!((today - fresh.effective_date).num_days() <= 7);

    s.set_fault(Fault::status(502));
    let stale = c.display_rate("USD").await.unwrap();
    assert!(stale.stale);
    assert_eq!(stale.ask, fresh.ask);
    assert_eq!(stale.table_no, fresh.table_no);

    // A fresh client has no last good value: the error, not a made-up rate.
    let c2 = client_for(&s.base_url(), None);
    let err = c2.display_rate("USD").await.unwrap_err();
    assert!(err.to_string().contains("table C"), "{err}");
    s.shutdown().await.unwrap();
}

#[test]
fn base_url_comes_from_config_then_env_then_default() {
    let cfg = NbpConfig {
        base_url: Some("http://127.0.0.1:1234/api/".into()),
        ..NbpConfig::default()
    };
    assert_eq!(
        cfg.resolved_base_url().unwrap(),
        "http://127.0.0.1:1234/api"
    );
    let bad = NbpConfig {
        base_url: Some("ftp://x".into()),
        ..NbpConfig::default()
    };
    assert!(matches!(
        bad.resolved_base_url(),
        Err(NbpError::BaseUrl { .. })
    ));
}
