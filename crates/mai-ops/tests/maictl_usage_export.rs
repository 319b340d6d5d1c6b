//! The real `maictl usage export` and `maictl fleet totals` on a fleet whose console
//! cache holds known usage: the CSV parsed back (RFC 4180) sums to the ledger's exact
//! month, to the last of its decimals; the JSON daily rollups likewise; the month is the
//! Warsaw month (an event at 23:30 UTC on the last day belongs to the next).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use mai_core::ledger::Ledger;
use mai_core::time::YearMonth;
use mai_core::usage::{ChatContext, EventState, Source, Tokens, UsageEvent, UserRef};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn event(id: &str, at: &str, cost: &str, name: &str) -> UsageEvent {
    UsageEvent {
        generation_id: id.to_string(),
        org_id: "acme".to_string(),
        user: UserRef {
            id: Some("u1".into()),
            email: Some("anna@acme.pl".into()),
            name: Some(name.into()),
        },
        model: "openai/gpt-4o".into(),
        provider: Some("OpenAI".into()),
        tokens: Tokens {
            prompt: 100,
            completion: 50,
            reasoning: 0,
            cached: 7,
        },
        cost_usd: dec(cost),
        source: Source::Proxy,
        state: EventState::Confirmed,
        created_at: DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc),
        context: ChatContext {
            chat_id: Some("chat-1".into()),
            task: Some("chat".into()),
            groups: Some("Legal, Sales".into()),
        },
    }
}

/// December 2025 in Warsaw runs from 2025-11-30T23:00Z to 2025-12-31T23:00Z.
fn events() -> Vec<UsageEvent> {
    vec![
        // 00:30 on 1 December in Warsaw, still November in UTC: December.
        event("g-early", "2025-11-30T23:30:00Z", "0.000000007", "Anna"),
        event(
            "g1",
            "2025-12-02T12:00:00Z",
            "12.345678901",
            "Nowak, \"Anna\"\nline 2",
        ),
        event("g2", "2025-12-20T08:15:30.250Z", "0.000123", "Jan"),
        event("g3", "2025-12-31T22:59:59Z", "3", "Jan"),
        // 00:30 on 1 January in Warsaw: not December.
        event("g-late", "2025-12-31T23:30:00Z", "100", "Jan"),
        // November in both.
        event("g-nov", "2025-11-15T12:00:00Z", "50", "Jan"),
    ]
}

fn fleet(dir: &Path) -> PathBuf {
    let data = dir.join("console");
    std::fs::create_dir_all(&data).unwrap();
    let mut l = Ledger::open(&data.join("console-cache.sqlite")).unwrap();
    l.record_batch(&events()).unwrap();
    drop(l);
    let text = format!(
        "[console]\ndata_dir = {data:?}\n\n\
         [[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"5261040828\"\naddress = \"ul. Testowa 1\"\n\
         host = \"h1\"\nmarkup = \"1.3\"\nmonthly_limit_usd = \"100\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED_TOKEN\"\n"
    );
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn maictl(cwd: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_maictl"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MAI_FLEET")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("UNUSED_TOKEN", "t")
        .output()
        .await
        .unwrap()
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes, CR and LF.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR must start CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            '\n' => panic!("bare LF outside quotes: lines end with CRLF"),
            _ => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the last record ends with CRLF"
    );
    rows
}

fn column_sum(rows: &[Vec<String>], name: &str) -> Decimal {
    let i = rows[0].iter().position(|h| h == name).unwrap();
    rows[1..].iter().map(|r| dec(&r[i])).sum()
}

/// The ledger's own figures for December: raw, and client at the fleet's 1.3.
fn ledger_december(dir: &Path) -> (Decimal, u64) {
    let l = Ledger::open(&dir.join("console/console-cache.sqlite")).unwrap();
    let ym = YearMonth::new(2025, 12).unwrap();
    let t = l.range("acme", ym.first_day(), ym.last_day()).unwrap();
    (t.cost_usd, t.requests)
}

#[tokio::test]
async fn events_csv_sums_to_the_ledger_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let f = f.to_str().unwrap();
    let o = maictl(
        dir.path(),
        &[
            "--fleet", f, "usage", "export", "--client", "acme", "--month", "2025-12",
        ],
    )
    .await;
    let err = String::from_utf8_lossy(&o.stderr);
    // The tracker is not running: exported from the cache, said so, exit 3 (partial).
    assert_eq!(o.status.code(), Some(3), "stderr: {err}");
    assert!(err.contains("could not be pulled"), "{err}");
    assert!(
        err.contains("exporting: 4/4 rows"),
        "progress on stderr: {err}"
    );
    let rows = parse_csv(std::str::from_utf8(&o.stdout).unwrap());
    assert_eq!(rows[0], mai_ops::ops::usage_export::EVENT_COLUMNS);
    assert_eq!(rows.len(), 1 + 4, "header + December's four events");
    let ids: Vec<&str> = rows[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(ids, ["g-early", "g1", "g2", "g3"]);
    let (raw, requests) = ledger_december(dir.path());
    assert_eq!(requests, 4);
    assert_eq!(column_sum(&rows, "raw_cost_usd"), raw);
    assert_eq!(raw, dec("15.345801908"));
    assert_eq!(column_sum(&rows, "client_cost_usd"), raw * dec("1.3"));
    // Warsaw time with its offset and the Warsaw day; the quoted name survives.
    assert_eq!(rows[1][0], "2025-12-01T00:30:00+01:00");
    assert_eq!(rows[1][1], "2025-12-01");
    assert_eq!(rows[3][0], "2025-12-20T09:15:30.250+01:00");
    assert_eq!(rows[2][5], "Nowak, \"Anna\"\nline 2");
    assert_eq!(rows[2][12], "12.345678901");
    assert_eq!(rows[1][12], "0.000000007", "exact text, no float");
    assert_eq!(rows[2][19], "Legal, Sales");
}

#[tokio::test]
async fn daily_json_to_a_file_sums_to_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let f = f.to_str().unwrap();
    let out = dir.path().join("acme-dec.json");
    let o = maictl(
        dir.path(),
        &[
            "--fleet",
            f,
            "usage",
            "export",
            "--client",
            "acme",
            "--month",
            "2025-12",
            "--kind",
            "daily",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stdout.is_empty(), "the file, not stdout");
    assert!(!dir.path().join("acme-dec.json.part").exists());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["client"], "acme");
    assert_eq!(v["kind"], "daily");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 31, "every day of December, zeros included");
    let sum = |k: &str| -> Decimal { rows.iter().map(|r| dec(r[k].as_str().unwrap())).sum() };
    let (raw, requests) = ledger_december(dir.path());
    assert_eq!(sum("raw_cost_usd"), raw);
    assert_eq!(sum("client_cost_usd"), raw * dec("1.3"));
    let reqs: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(reqs, requests);
    assert_eq!(rows[0]["day"], "2025-12-01");
    assert_eq!(rows[0]["raw_cost_usd"], "0.000000007");
    assert_eq!(rows[30]["raw_cost_usd"], "3");
}

#[tokio::test]
async fn bad_input_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let f = f.to_str().unwrap();
    let o = maictl(
        dir.path(),
        &[
            "--fleet", f, "usage", "export", "--client", "acme", "--month", "2025-13",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("use YYYY-MM"));
    let o = maictl(
        dir.path(),
        &[
            "--fleet", f, "usage", "export", "--client", "nobody", "--month", "2025-12",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not in the fleet file"));
    // The dashboard form still works: `maictl usage CLIENT`.
    let o = maictl(dir.path(), &["--fleet", f, "usage", "acme", "--json"]).await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["client_id"], "acme");
}

#[tokio::test]
async fn fleet_totals_name_what_they_leave_out() {
    let dir = tempfile::tempdir().unwrap();
    let f = fleet(dir.path());
    let f = f.to_str().unwrap();
    let o = maictl(
        dir.path(),
        &["--fleet", f, "--no-docker", "fleet", "totals", "--json"],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &v["totals"];
    assert_eq!(t["clients"], 1);
    assert_eq!(t["clients_counted"], 0);
    assert_eq!(t["missing"], serde_json::json!(["acme"]));
    assert_eq!(t["month_client_cost"]["usd"], "0");
    assert_eq!(t["credits"]["available"], false);
    assert!(t["credits"]["error"].as_str().unwrap().len() > 10);
    let o = maictl(
        dir.path(),
        &["--fleet", f, "--no-docker", "fleet", "totals"],
    )
    .await;
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("fleet totals,") && s.contains("OpenRouter cost"),
        "{s}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not counted (no current numbers): acme"));
}
