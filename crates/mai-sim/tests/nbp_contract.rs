//! Contract tests of the NBP simulator against shared/specs/nbp-and-invoicing.md §1:
//! shapes byte for byte, error texts, the publication calendar, the clock cut-offs,
//! range limits and fault injection, all over real HTTP.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use mai_sim::nbp::{self, Cutoffs, Fault, Fixture, NbpConfig, NbpHandle, NbpSim};
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOT_FOUND: &str = "404 NotFound - Not Found - Brak danych";
const BAD_RANGE: &str = "400 BadRequest - Błędny zakres dat / Invalid date range";

fn date(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).unwrap()
}

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
}

const FIXTURE: &str = r#"
[levels]
USD = "3.9"

[[rate]]
table = "A"
code = "USD"
date = "2030-01-04"
mid = "3.9000"

[[rate]]
table = "C"
code = "USD"
date = "2030-01-04"
bid = "3.8610"
ask = "3.9390"

[[rate]]
table = "A"
code = "EUR"
date = "2025-03-14"
mid = "4.185"
"#;

async fn sim_at(now: &str) -> NbpHandle {
    NbpSim::spawn(NbpConfig {
        now: Some(at(now)),
        fixture: Fixture::from_toml_str(FIXTURE).unwrap(),
        ..NbpConfig::default()
    })
    .await
    .unwrap()
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get_with(sim: &NbpHandle, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::new();
    let mut req = client.get(format!("{}{}", sim.base_url(), path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

async fn get(sim: &NbpHandle, path: &str) -> Reply {
    get_with(sim, path, &[]).await
}

fn json(r: &Reply) -> serde_json::Value {
    assert_eq!(r.status, 200, "body: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// Raw HTTP/1.1 exchange, to see the status line's reason phrase.
async fn raw_status_line(sim: &NbpHandle, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let req = format!("GET /api{path} HTTP/1.1\r\nHost: nbp\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let line = text.lines().next().unwrap().to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (line, body)
}

#[tokio::test]
async fn series_a_and_c_match_the_spec_byte_for_byte() {
    let sim = sim_at("2030-02-01T12:00:00").await;
    let r = get(&sim, "/exchangerates/rates/a/usd/2030-01-04/?format=json").await;
    assert_eq!(r.status, 200);
    // 2030-01-04 is the third publication day of 2030 (1 Jan holiday, 2 and 3 Jan).
    assert_eq!(
        r.body,
        r#"{"table":"A","currency":"dolar amerykański","code":"USD","rates":[{"no":"003/A/NBP/2030","effectiveDate":"2030-01-04","mid":3.9000}]}"#
    );
    assert_eq!(r.headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(r.headers["cache-control"], "no-cache");
    assert!(r.headers.contains_key("etag"));

    let r = get(&sim, "/exchangerates/rates/c/usd/2030-01-04/").await;
    assert_eq!(
        r.body,
        r#"{"table":"C","currency":"dolar amerykański","code":"USD","rates":[{"no":"003/C/NBP/2030","effectiveDate":"2030-01-04","bid":3.8610,"ask":3.9390}]}"#
    );
    // A fixture value with fewer decimals is printed at the published scale.
    let r = get(&sim, "/exchangerates/rates/a/eur/2025-03-14/").await;
    assert!(
        r.body
            .ends_with(r#""effectiveDate":"2025-03-14","mid":4.1850}]}"#),
        "{}",
        r.body
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn whole_tables_have_the_spec_shape() {
    let sim = sim_at("2030-02-01T12:00:00").await;
    let r = get(&sim, "/exchangerates/tables/a/2030-01-04/").await;
    assert!(
        r.body.starts_with(r#"[{"table":"A","no":"003/A/NBP/2030","effectiveDate":"2030-01-04","rates":[{"currency":"bat (Tajlandia)","code":"THB","mid":"#),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains(r#"{"currency":"dolar amerykański","code":"USD","mid":3.9000}"#));
    let v = json(&r);
    let tables = v.as_array().expect("top level is an array");
    assert_eq!(tables.len(), 1);
    let t = tables[0].as_object().unwrap();
    assert!(!t.contains_key("tradingDate"));
    let rates = t["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 33);
    let names: Vec<&str> = rates
        .iter()
        .map(|r| r["currency"].as_str().unwrap())
        .collect();
    for expected in [
        "euro",
        "frank szwajcarski",
        "funt szterling",
        "jen (Japonia)",
        "SDR (MFW)",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
    // Scales: 4 decimals for most, 6 for JPY/HUF/KRW/CLP/ISK, 8 for IDR.
    for (code, scale) in [
        ("USD", 4),
        ("EUR", 4),
        ("JPY", 6),
        ("HUF", 6),
        ("KRW", 6),
        ("CLP", 6),
        ("ISK", 6),
        ("IDR", 8),
    ] {
        let needle = format!("\"code\":\"{code}\",\"mid\":");
        let at = r.body.find(&needle).unwrap() + needle.len();
        let num: String = r.body[at..].chars().take_while(|c| *c != '}').collect();
        let frac = num.split('.').nth(1).unwrap();
        assert_eq!(frac.len(), scale, "{code} printed as {num}");
    }

    let r = get(&sim, "/exchangerates/tables/c/2030-01-04/").await;
    assert!(
        r.body.starts_with(r#"[{"table":"C","no":"003/C/NBP/2030","tradingDate":"2030-01-03","effectiveDate":"2030-01-04","rates":[{"currency":"dolar amerykański","code":"USD","bid":3.8610,"ask":3.9390},{"currency":"dolar australijski","code":"AUD","bid":"#),
        "{}",
        r.body
    );
    let v = json(&r);
    let codes: Vec<&str> = v[0]["rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "USD", "AUD", "CAD", "EUR", "HUF", "CHF", "GBP", "JPY", "CZK", "DKK", "NOK", "SEK",
            "XDR"
        ]
    );
    // tradingDate only in whole C tables, never in the per-currency series.
    let r = get(&sim, "/exchangerates/rates/c/eur/last/3/").await;
    assert!(!r.body.contains("tradingDate"));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn table_c_bid_and_ask_come_from_one_hidden_mid() {
    let sim = sim_at("2026-11-23T12:00:00").await;
    let v = json(&get(&sim, "/exchangerates/tables/c/2026-11-02/2026-11-20/").await);
    for table in v.as_array().unwrap() {
        for r in table["rates"].as_array().unwrap() {
            let bid = Decimal::from_str(&r["bid"].to_string()).unwrap();
            let ask = Decimal::from_str(&r["ask"].to_string()).unwrap();
            // bid = round(m·0.99), ask = round(m·1.01) ⇒ ask/bid ≈ 1.01/0.99.
            let ratio = ask / bid;
            let expected = Decimal::new(101, 2) / Decimal::new(99, 2);
            assert!((ratio - expected).abs() < Decimal::new(2, 3), "{r}");
        }
    }
    // The hidden mid is not table A's mid of the same day.
    let d = date("2026-11-20");
    let (bid, ask) = sim.rate_c("USD", d).unwrap();
    let mid_a = sim.rate_a("USD", d).unwrap();
    let c_mid = (bid + ask) / Decimal::TWO;
    assert_ne!(c_mid.round_dp(4), mid_a);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn calendar_holidays_numbers_and_trading_dates() {
    let sim = sim_at("2026-11-23T12:00:00").await;
    for no_table in [
        "2025-12-24",
        "2025-01-06",
        "2025-04-21",
        "2025-04-20",
        "2025-06-08",
        "2025-06-19",
        "2025-01-04",
    ] {
        let r = get(&sim, &format!("/exchangerates/rates/a/usd/{no_table}/")).await;
        assert_eq!((r.status, r.body.as_str()), (404, NOT_FOUND), "{no_table}");
        let r = get(&sim, &format!("/exchangerates/tables/c/{no_table}/")).await;
        assert_eq!(r.status, 404, "{no_table}");
    }
    for table_day in ["2025-04-18", "2024-12-24", "2025-12-31"] {
        assert_eq!(
            get(&sim, &format!("/exchangerates/rates/a/usd/{table_day}/"))
                .await
                .status,
            200,
            "{table_day}"
        );
    }
    // Counts per year through the 367-day per-currency range.
    for (year, count) in [(2024, 252usize), (2025, 251)] {
        let v = json(
            &get(
                &sim,
                &format!("/exchangerates/rates/a/usd/{year}-01-01/{year}-12-31/"),
            )
            .await,
        );
        let rates = v["rates"].as_array().unwrap();
        assert_eq!(rates.len(), count);
        assert_eq!(rates[0]["no"], format!("001/A/NBP/{year}"));
        assert_eq!(rates[count - 1]["no"], format!("{count}/A/NBP/{year}"));
        assert_eq!(rates[count - 1]["effectiveDate"], format!("{year}-12-31"));
    }
    assert_eq!(
        nbp::table_number(nbp::Table::A, date("2025-12-23")).as_deref(),
        Some("248/A/NBP/2025")
    );
    assert_eq!(nbp::table_number(nbp::Table::C, date("2025-12-24")), None);
    assert!(!nbp::is_publication_day(date("2025-12-24")));
    assert!(nbp::is_publication_day(date("2024-12-24")));

    // A and C share the number; C's tradingDate on a Monday is the previous Friday,
    // and after a holiday Monday it skips back over it.
    let a = json(&get(&sim, "/exchangerates/tables/a/2025-01-13/").await);
    let c = json(&get(&sim, "/exchangerates/tables/c/2025-01-13/").await);
    assert_eq!(a[0]["no"], "007/A/NBP/2025");
    assert_eq!(c[0]["no"], "007/C/NBP/2025");
    assert_eq!(c[0]["tradingDate"], "2025-01-10");
    let c = json(&get(&sim, "/exchangerates/tables/c/2025-01-07/").await);
    assert_eq!(c[0]["tradingDate"], "2025-01-03");
    let c = json(&get(&sim, "/exchangerates/tables/c/2025-12-29/").await);
    assert_eq!(c[0]["tradingDate"], "2025-12-23");

    // History starts on 2002-01-02.
    let r = get(&sim, "/exchangerates/rates/a/usd/2002-01-02/").await;
    assert!(r.body.contains(r#""no":"001/A/NBP/2002""#), "{}", r.body);
    let r = get(&sim, "/exchangerates/rates/a/usd/2001-12-31/").await;
    assert_eq!((r.status, r.body.as_str()), (404, NOT_FOUND));
    let r = get(&sim, "/exchangerates/rates/a/usd/2001-12-01/2001-12-31/").await;
    assert_eq!((r.status, r.body.as_str()), (404, NOT_FOUND));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_injected_clock_and_cutoffs_decide_what_exists() {
    // Monday 2026-11-23, before both cut-offs.
    let sim = sim_at("2026-11-23T07:44:59").await;
    let today_a = "/exchangerates/rates/a/usd/today/";
    let today_c = "/exchangerates/tables/c/today/";
    assert_eq!(get(&sim, today_a).await.body, NOT_FOUND);
    assert_eq!(get(&sim, today_c).await.status, 404);
    assert_eq!(
        get(&sim, "/exchangerates/rates/a/usd/2026-11-23/")
            .await
            .status,
        404
    );
    let cur = json(&get(&sim, "/exchangerates/rates/a/usd/").await);
    assert_eq!(cur["rates"][0]["effectiveDate"], "2026-11-20");
    let cur = json(&get(&sim, "/exchangerates/tables/c/").await);
    assert_eq!(cur[0]["effectiveDate"], "2026-11-20");

    sim.set_now(at("2026-11-23T07:45:00"));
    assert_eq!(
        json(&get(&sim, today_c).await)[0]["effectiveDate"],
        "2026-11-23"
    );
    assert_eq!(
        json(&get(&sim, "/exchangerates/tables/c/").await)[0]["effectiveDate"],
        "2026-11-23"
    );
    assert_eq!(get(&sim, today_a).await.status, 404);

    sim.set_now(at("2026-11-23T11:44:59"));
    assert_eq!(get(&sim, today_a).await.status, 404);
    let last = json(&get(&sim, "/exchangerates/rates/a/usd/last/2/").await);
    assert_eq!(last["rates"][0]["effectiveDate"], "2026-11-19");
    assert_eq!(last["rates"][1]["effectiveDate"], "2026-11-20");

    sim.set_now(at("2026-11-23T11:45:00"));
    let today = json(&get(&sim, today_a).await);
    assert_eq!(today["rates"][0]["effectiveDate"], "2026-11-23");
    assert_eq!(
        today["rates"][0]["no"],
        nbp::table_number(nbp::Table::A, date("2026-11-23")).unwrap()
    );
    let cur = json(&get(&sim, "/exchangerates/rates/a/usd/").await);
    assert_eq!(cur["rates"][0]["effectiveDate"], "2026-11-23");

    // Saturday: today is 404 all day, current is Friday's table.
    sim.set_now(at("2026-11-28T15:00:00"));
    assert_eq!(get(&sim, today_a).await.status, 404);
    assert_eq!(
        json(&get(&sim, "/exchangerates/rates/a/usd/").await)["rates"][0]["effectiveDate"],
        "2026-11-27"
    );
    // Future dates have no table; a range reaching past today is refused.
    assert_eq!(
        get(&sim, "/exchangerates/rates/a/usd/2026-12-01/")
            .await
            .body,
        NOT_FOUND
    );
    let r = get(&sim, "/exchangerates/rates/a/usd/2026-11-20/2026-12-01/").await;
    assert_eq!((r.status, r.body.as_str()), (400, BAD_RANGE));
    sim.shutdown().await.unwrap();

    // Cut-offs are configurable.
    let sim = NbpSim::spawn(NbpConfig {
        now: Some(at("2026-11-23T09:00:00")),
        cutoffs: Cutoffs {
            a: chrono::NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
            c: chrono::NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
        },
        ..NbpConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(get(&sim, today_a).await.status, 200);
    assert_eq!(get(&sim, today_c).await.status, 404);
    assert_eq!(sim.now(), at("2026-11-23T09:00:00"));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_have_exact_bodies_statuses_and_reason_phrases() {
    let sim = sim_at("2026-11-23T12:00:00").await;
    let cases: &[(&str, u16, &str)] = &[
        ("/exchangerates/rates/a/usd/2025-12-24/", 404, NOT_FOUND),
        ("/exchangerates/rates/a/xxx/2025-12-23/", 404, NOT_FOUND),
        ("/exchangerates/rates/c/thb/", 404, NOT_FOUND),
        ("/exchangerates/rates/a/usd/2025-12-24/2025-12-26/", 404, NOT_FOUND),
        ("/exchangerates/rates/a/usd/2025-02-01/2025-01-01/", 400, BAD_RANGE),
        ("/exchangerates/tables/c/2025-02-01/2025-01-01/", 400, BAD_RANGE),
        (
            "/exchangerates/rates/a/usd/2024-12-31/2026-01-02/",
            400,
            "400 BadRequest - Przekroczony limit 367 dni / Limit of 367 days has been exceeded",
        ),
        (
            "/exchangerates/tables/a/2025-01-01/2025-04-04/",
            400,
            "400 BadRequest - Przekroczony limit 93 dni / Limit of 93 days has been exceeded",
        ),
        (
            "/exchangerates/rates/a/usd/last/256/",
            400,
            "400 BadRequest - Przekroczony limit 255 wyników / Maximum size of 255 data series has been exceeded",
        ),
        (
            "/exchangerates/tables/a/last/68",
            400,
            "400 BadRequest - Przekroczony limit 67 wyników / Maximum size of 67 data series has been exceeded",
        ),
        ("/exchangerates/rates/a/usd/2025-13-01/", 400, "400 BadRequest - Niewłaściwy format daty / Invalid date format"),
        ("/exchangerates/rates/a/usd/20250101/", 400, "400 BadRequest - Niewłaściwy format daty / Invalid date format"),
    ];
    for (path, status, body) in cases {
        let r = get(&sim, path).await;
        assert_eq!((r.status, r.body.as_str()), (*status, *body), "{path}");
        assert_eq!(
            r.headers["content-type"], "text/plain; charset=utf-8",
            "{path}"
        );
    }
    // The limits themselves are allowed: 367 and 93 inclusive days, 255 and 67 results.
    assert_eq!(
        get(&sim, "/exchangerates/rates/a/usd/2025-01-01/2026-01-02/")
            .await
            .status,
        200
    );
    assert_eq!(
        get(&sim, "/exchangerates/tables/a/2025-01-01/2025-04-03/")
            .await
            .status,
        200
    );
    assert_eq!(
        json(&get(&sim, "/exchangerates/rates/c/usd/last/255/").await)["rates"]
            .as_array()
            .unwrap()
            .len(),
        255
    );
    assert_eq!(
        json(&get(&sim, "/exchangerates/tables/a/last/67/").await)
            .as_array()
            .unwrap()
            .len(),
        67
    );

    // Reason phrase on the wire (UTF-8 bytes as obs-text).
    let (line, body) = raw_status_line(&sim, "/exchangerates/rates/a/usd/2025-12-24/").await;
    assert_eq!(line, "HTTP/1.1 404 Not Found - Brak danych");
    assert_eq!(body, NOT_FOUND);
    let (line, _) =
        raw_status_line(&sim, "/exchangerates/rates/a/usd/2024-12-31/2026-01-02/").await;
    assert_eq!(
        line,
        "HTTP/1.1 400 Przekroczony limit 367 dni / Limit of 367 days has been exceeded"
    );
    let (line, _) =
        raw_status_line(&sim, "/exchangerates/rates/a/usd/2025-02-01/2025-01-01/").await;
    assert_eq!(line, "HTTP/1.1 400 Błędny zakres dat / Invalid date range");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn case_trailing_slash_and_formats() {
    let sim = sim_at("2026-11-23T12:00:00").await;
    let reference = get(&sim, "/exchangerates/rates/a/usd/2026-11-20/")
        .await
        .body;
    for path in [
        "/exchangerates/rates/A/USD/2026-11-20",
        "/exchangerates/rates/a/Usd/2026-11-20/",
        "/exchangerates/rates/A/usd/2026-11-20/?format=json",
        "/exchangerates/rates/a/usd/2026-11-20?format=JSON",
    ] {
        assert_eq!(get(&sim, path).await.body, reference, "{path}");
    }
    let t1 = get(&sim, "/exchangerates/tables/C/last/2").await.body;
    assert_eq!(get(&sim, "/exchangerates/tables/c/last/2/").await.body, t1);

    // XML by query, by Accept; the query parameter wins over Accept.
    let xml = get(&sim, "/exchangerates/rates/a/usd/2026-11-20/?format=xml").await;
    assert_eq!(
        xml.headers["content-type"],
        "application/xml; charset=utf-8"
    );
    let mid = sim.rate_a("USD", date("2026-11-20")).unwrap();
    assert_eq!(
        xml.body,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><ExchangeRatesSeries xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><Table>A</Table><Currency>dolar amerykański</Currency><Code>USD</Code><Rates><Rate><No>{}</No><EffectiveDate>2026-11-20</EffectiveDate><Mid>{mid}</Mid></Rate></Rates></ExchangeRatesSeries>",
            nbp::table_number(nbp::Table::A, date("2026-11-20")).unwrap()
        )
    );
    let by_accept = get_with(
        &sim,
        "/exchangerates/rates/a/usd/2026-11-20/",
        &[("accept", "application/xml")],
    )
    .await;
    assert_eq!(by_accept.body, xml.body);
    let by_text_xml = get_with(
        &sim,
        "/exchangerates/rates/a/usd/2026-11-20/",
        &[("accept", "text/xml")],
    )
    .await;
    assert_eq!(by_text_xml.body, xml.body);
    let query_wins = get_with(
        &sim,
        "/exchangerates/rates/a/usd/2026-11-20/?format=json",
        &[("accept", "application/xml")],
    )
    .await;
    assert_eq!(query_wins.body, reference);
    let any = get_with(
        &sim,
        "/exchangerates/rates/a/usd/2026-11-20/",
        &[("accept", "*/*")],
    )
    .await;
    assert_eq!(any.body, reference);

    let xml = get(&sim, "/exchangerates/tables/c/2026-11-20/?format=xml")
        .await
        .body;
    assert!(xml.contains("<ArrayOfExchangeRatesTable "), "{xml}");
    assert!(
        xml.contains("<ExchangeRatesTable><Table>C</Table><No>"),
        "{xml}"
    );
    assert!(xml.contains("</No><TradingDate>2026-11-19</TradingDate><EffectiveDate>2026-11-20</EffectiveDate><Rates><Rate><Currency>dolar amerykański</Currency><Code>USD</Code><Bid>"), "{xml}");
    assert!(xml.contains("</Bid><Ask>"));
    let xml_a = get(&sim, "/exchangerates/tables/a/2026-11-20/?format=xml")
        .await
        .body;
    assert!(!xml_a.contains("TradingDate"));
    assert!(xml_a.contains("<Rate><Currency>bat (Tajlandia)</Currency><Code>THB</Code><Mid>"));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn rates_are_deterministic_and_match_the_exposed_truth() {
    let a = NbpSim::spawn(NbpConfig {
        now: Some(at("2026-11-23T12:00:00")),
        ..NbpConfig::default()
    })
    .await
    .unwrap();
    let b = NbpSim::spawn(NbpConfig {
        now: Some(at("2026-11-23T12:00:00")),
        ..NbpConfig::default()
    })
    .await
    .unwrap();
    let c = NbpSim::spawn(NbpConfig {
        now: Some(at("2026-11-23T12:00:00")),
        seed: 99,
        ..NbpConfig::default()
    })
    .await
    .unwrap();
    // Ask b in a different order first: the walk must not depend on query order.
    let _ = get(&b, "/exchangerates/rates/a/usd/2026-11-02/2026-11-20/").await;
    let path = "/exchangerates/tables/a/2010-03-01/2010-03-31/";
    let (ra, rb, rc) = (
        get(&a, path).await.body,
        get(&b, path).await.body,
        get(&c, path).await.body,
    );
    assert_eq!(ra, rb);
    assert_ne!(ra, rc);

    let v = json(&get(&a, "/exchangerates/rates/a/usd/2026-11-02/2026-11-20/").await);
    let rates = v["rates"].as_array().unwrap();
    // 2026-11-11 (Independence Day) is a Wednesday.
    assert_eq!(rates.len(), 14);
    for r in rates {
        let d = date(r["effectiveDate"].as_str().unwrap());
        let served = Decimal::from_str(&r["mid"].to_string()).unwrap();
        assert_eq!(Some(served), nbp::rate_a("USD", d));
        assert_eq!(Some(served), a.rate_a("USD", d));
        assert!(
            served > Decimal::new(2, 0) && served < Decimal::new(7, 0),
            "USD walk left its range: {served}"
        );
    }
    assert_eq!(nbp::rate_a("USD", date("2026-11-21")), None);
    assert_eq!(nbp::rate_a("XXX", date("2026-11-20")), None);
    for h in [a, b, c] {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn faults_by_header_and_by_control_endpoint() {
    let sim = sim_at("2026-11-23T12:00:00").await;
    let path = "/exchangerates/rates/a/usd/2026-11-20/";

    for code in ["500", "502", "503"] {
        let r = get_with(&sim, path, &[("x-sim-fault", &format!("status={code}"))]).await;
        assert_eq!(r.status.to_string(), code);
    }
    let r = get_with(&sim, path, &[("x-sim-fault", "status=429; retry_after=7")]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");

    let r = get_with(&sim, path, &[("x-sim-fault", "body=malformed")]).await;
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&r.body).is_err(),
        "{}",
        r.body
    );

    let r = get_with(&sim, path, &[("x-sim-fault", "body=empty_rates")]).await;
    assert_eq!(
        r.body,
        r#"{"table":"A","currency":"dolar amerykański","code":"USD","rates":[]}"#
    );

    let started = Instant::now();
    let r = get_with(&sim, path, &[("x-sim-fault", "latency_ms=300")]).await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(format!("{}{path}", sim.base_url()))
        .header("x-sim-fault", "timeout")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");

    let r = get_with(&sim, path, &[("x-sim-fault", "explode")]).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown directive"), "{}", r.body);

    // Control endpoint: next two requests fail, then normal service resumes.
    let http = reqwest::Client::new();
    let ctl = format!("http://{}/__sim/faults", sim.addr());
    let resp = http
        .post(&ctl)
        .body("status=503; times=2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(get(&sim, path).await.status, 503);
    assert_eq!(get(&sim, path).await.status, 503);
    assert_eq!(get(&sim, path).await.status, 200);
    http.post(&ctl)
        .body("body=empty_rates")
        .send()
        .await
        .unwrap();
    assert!(get(&sim, path).await.body.ends_with(r#""rates":[]}"#));
    assert!(get(&sim, "/exchangerates/tables/a/")
        .await
        .body
        .ends_with(r#""rates":[]}]"#));
    http.delete(&ctl).send().await.unwrap();
    assert_eq!(
        json(&get(&sim, path).await)["rates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        http.post(&ctl)
            .body("status=abc")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // Library API.
    sim.set_fault(Fault::too_many_requests(3).times(1));
    let r = get(&sim, path).await;
    assert_eq!(
        (r.status, r.headers["retry-after"].to_str().unwrap()),
        (429, "3")
    );
    assert_eq!(get(&sim, path).await.status, 200);
    sim.set_fault(Fault::status(502));
    assert_eq!(get(&sim, path).await.status, 502);
    sim.clear_faults();
    assert_eq!(get(&sim, path).await.status, 200);

    // A hung request does not block shutdown.
    sim.set_fault(Fault::timeout());
    let before = sim.requests_served();
    let url = format!("{}{path}", sim.base_url());
    let hung = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.requests_served() <= before {
        assert!(Instant::now() < deadline, "hung request never arrived");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("shutdown finished")
        .unwrap();
    let _ = hung.await;
}

#[tokio::test]
async fn requests_served_counts_api_requests_only() {
    let sim = sim_at("2026-11-23T12:00:00").await;
    assert_eq!(sim.requests_served(), 0);
    let _ = get(&sim, "/exchangerates/rates/a/usd/").await;
    let _ = get(&sim, "/exchangerates/rates/a/xxx/").await;
    let stats: serde_json::Value = reqwest::get(format!("http://{}/__sim/stats", sim.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests_served"], 2);
    assert_eq!(stats["now"], "2026-11-23T12:00:00");
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{}/__sim/now", sim.addr()))
        .body("2026-11-23T08:00:00")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(sim.now(), at("2026-11-23T08:00:00"));
    assert_eq!(sim.requests_served(), 2);
    assert_eq!(
        sim.requests(),
        [
            "/api/exchangerates/rates/a/usd/",
            "/api/exchangerates/rates/a/xxx/"
        ]
    );
    sim.shutdown().await.unwrap();
}

#[test]
fn cli_help_documents_every_flag_and_the_binary_serves() {
    let exe = env!("CARGO_BIN_EXE_mai-sim");
    let out = std::process::Command::new(exe)
        .args(["nbp", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--rates",
        "--now",
        "--a-cutoff",
        "--c-cutoff",
        "--seed",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }

    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("rates.toml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "nbp",
            "--listen",
            "127.0.0.1:0",
            "--now",
            "2030-02-01T12:00:00",
            "--seed",
            "5",
        ])
        .arg("--rates")
        .arg(&fixture)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("NBP simulator listening on ")
        .expect(&line)
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = rt.block_on(async {
        reqwest::get(format!("{base}/exchangerates/rates/a/usd/2030-01-04/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        body,
        r#"{"table":"A","currency":"dolar amerykański","code":"USD","rates":[{"no":"003/A/NBP/2030","effectiveDate":"2030-01-04","mid":3.9000}]}"#
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rate]]\ntable = \"A\"\ncode = \"USD\"\ndate = \"2025-12-24\"\nmid = \"4.0\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(exe)
        .args(["nbp", "--rates"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NBP publishes no table on that date"), "{err}");
}
