//! One client's dashboard: a best-effort pull, then the console cache. The cache read is
//! one transaction ([`DashboardRows`]); turning its rows into what the console shows is
//! [`usage_view`], a plain function.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use mai_core::ledger::{ContextKey, KeyTotals, ModelTotals, Priced, UserTotals};
use mai_core::pricing::MarkupSchedule;
use mai_core::usage::Totals;
use rust_decimal::Decimal;

use super::{Ops, OpsError};

/// What the dashboard shows crosses the console's IPC as it is.
pub use mai_wire::console::{Breakdown, Dashboard, DayPoint, PlnRate, TOP_CHATS};

/// The cache rows one dashboard is built from.
#[derive(Debug, Clone)]
pub struct DashboardRows {
    /// The last 30 days up to today, oldest first, zeros included.
    pub daily: Vec<(NaiveDate, Totals)>,
    /// This month so far, priced by markup segment (`Ledger::by_user_priced`).
    pub users: Vec<Priced<UserTotals>>,
    pub models: Vec<Priced<ModelTotals>>,
    /// This month by task kind, group set and chat (`Ledger::by_context_priced`).
    pub tasks: Vec<Priced<KeyTotals>>,
    pub groups: Vec<Priced<KeyTotals>>,
    pub chats: Vec<Priced<KeyTotals>>,
    /// The fleet file's schedule.
    pub schedule: MarkupSchedule,
}

/// The usage part of the dashboard, priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageView {
    pub today: DayPoint,
    pub days: Vec<DayPoint>,
    pub by_user: Vec<Breakdown>,
    pub by_model: Vec<Breakdown>,
    pub by_task: Vec<Breakdown>,
    pub background_share: Option<Decimal>,
    pub by_group: Vec<Breakdown>,
    /// At most [`TOP_CHATS`], highest raw cost first.
    pub top_chats: Vec<Breakdown>,
    pub chat_count: u64,
}

/// A task kind, group set or chat row as the dashboard shows it.
fn keyed(p: Priced<KeyTotals>) -> Breakdown {
    let Priced {
        row,
        client_cost_usd,
    } = p;
    Breakdown {
        label: row.key.clone(),
        key: row.key,
        requests: row.totals.requests,
        tokens: row.totals.tokens.total(),
        prompt_tokens: row.totals.tokens.prompt,
        completion_tokens: row.totals.tokens.completion,
        raw_cost_usd: row.totals.cost_usd,
        client_cost_usd,
    }
}

/// Open WebUI's background tasks (title, tags, follow-ups, ...) as a share of the
/// client cost of the requests whose task is known: what "1 message = 4 requests"
/// costs. Requests of unknown task (the chat app did not send `X-Mai-Task`) are left
/// out rather than counted as the users' own. `None` when no task is known.
pub fn background_share(tasks: &[Breakdown]) -> Option<Decimal> {
    let mut known = Decimal::ZERO;
    let mut background = Decimal::ZERO;
    for t in tasks {
        if t.key == mai_wire::tracker::TASK_UNKNOWN {
            continue;
        }
        known = known.checked_add(t.client_cost_usd)?;
        if t.key != mai_core::usage::TASK_CHAT {
            background = background.checked_add(t.client_cost_usd)?;
        }
    }
    if known.is_zero() {
        return None;
    }
    Some(mai_core::money::round_half_up(background.checked_div(known)?, 4).normalize())
}

/// Prices the cache rows for display: each day at its own markup; the month's by-user
/// and by-model rows come priced by segment, so they sum to the month's client cost.
/// A price that does not fit exactly is an error, never a wrong number on screen.
pub fn usage_view(
    today: NaiveDate,
    rows: DashboardRows,
) -> Result<UsageView, mai_core::pricing::PricingError> {
    let DashboardRows {
        daily,
        users,
        models,
        tasks,
        groups,
        chats,
        schedule,
    } = rows;
    let price = |d: NaiveDate, raw: Decimal| mai_core::pricing::price(&schedule, d, raw);
    let days: Vec<DayPoint> = daily
        .iter()
        .map(|(d, t)| {
            Ok(DayPoint {
                date: *d,
                requests: t.requests,
                tokens: t.tokens.total(),
                raw_cost_usd: t.cost_usd,
                client_cost_usd: price(*d, t.cost_usd)?,
            })
        })
        .collect::<Result<_, mai_core::pricing::PricingError>>()?;
    let today_point = days.last().cloned().unwrap_or(DayPoint {
        date: today,
        requests: 0,
        tokens: 0,
        raw_cost_usd: Decimal::ZERO,
        client_cost_usd: Decimal::ZERO,
    });
    let by_user = users
        .into_iter()
        .map(
            |Priced {
                 row: u,
                 client_cost_usd,
             }| Breakdown {
                key: u.user.key().to_string(),
                label: u
                    .user
                    .label()
                    .map_or_else(|| "(unknown user)".to_string(), str::to_string),
                requests: u.totals.requests,
                tokens: u.totals.tokens.total(),
                prompt_tokens: u.totals.tokens.prompt,
                completion_tokens: u.totals.tokens.completion,
                raw_cost_usd: u.totals.cost_usd,
                client_cost_usd,
            },
        )
        .collect();
    let by_model = models
        .into_iter()
        .map(
            |Priced {
                 row: m,
                 client_cost_usd,
             }| Breakdown {
                key: m.model.clone(),
                label: m.model,
                requests: m.totals.requests,
                tokens: m.totals.tokens.total(),
                prompt_tokens: m.totals.tokens.prompt,
                completion_tokens: m.totals.tokens.completion,
                raw_cost_usd: m.totals.cost_usd,
                client_cost_usd,
            },
        )
        .collect();
    let by_task: Vec<Breakdown> = tasks.into_iter().map(keyed).collect();
    let chat_count = chats.len() as u64;
    Ok(UsageView {
        today: today_point,
        days,
        by_user,
        by_model,
        background_share: background_share(&by_task),
        by_task,
        by_group: groups.into_iter().map(keyed).collect(),
        top_chats: chats.into_iter().take(TOP_CHATS).map(keyed).collect(),
        chat_count,
    })
}

/// How long a fresh display rate is reused ([`Ops::pln_rate`]).
pub const PLN_RATE_REUSE: Duration = Duration::from_secs(10 * 60);
/// How long a stale or missing display rate is kept before NBP is asked again.
pub const PLN_RATE_RETRY: Duration = Duration::from_secs(60);

fn rate_reuse(rate: &PlnRate) -> Duration {
    if rate.available && !rate.stale {
        PLN_RATE_REUSE
    } else {
        PLN_RATE_RETRY
    }
}

async fn fetch_pln_rate(nbp: Option<mai_core::nbp::NbpClient>) -> PlnRate {
    let Some(nbp) = nbp else {
        return PlnRate::unavailable("NBP client not configured".into());
    };
    match tokio::time::timeout(Duration::from_secs(8), nbp.display_rate("USD")).await {
        Ok(Ok(r)) => PlnRate {
            available: true,
            rate: Some(r.ask),
            table_no: Some(r.table_no),
            effective_date: Some(r.effective_date),
            stale: r.stale,
            error: None,
            pending: false,
        },
        Ok(Err(e)) => PlnRate::unavailable(e.to_string()),
        Err(_) => PlnRate::unavailable("NBP did not answer within 8 s".into()),
    }
}

impl Ops {
    /// USD→PLN display rate (NBP table C ask), or why it is unavailable. Table C is
    /// published once a working day while the fleet view asks every 30 s, twice (its
    /// totals and the alerts): an answer is reused for [`PLN_RATE_REUSE`] (a stale or
    /// missing rate for [`PLN_RATE_RETRY`], so NBP's return is seen within a minute), and
    /// callers at the same moment wait for one request ([`super::memo`]).
    pub async fn pln_rate(&self) -> PlnRate {
        self.ask_pln_rate().answer().await
    }

    pub(crate) fn ask_pln_rate(&self) -> super::memo::Asked<PlnRate> {
        self.pln_memo
            .ask(rate_reuse, fetch_pln_rate(self.nbp.clone()), || {
                PlnRate::unavailable("asking NBP failed (a bug); try again".into())
            })
    }

    /// Client dashboard: pull (best effort), then read the cache.
    pub async fn dashboard(&self, id: &str) -> Result<Dashboard, OpsError> {
        let c = self.client(id)?.clone();
        let (pull, pln) = tokio::join!(self.pull(id), self.pln_rate());
        let (live, pull_error) = match pull {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        let today = self.today();
        let from = today - chrono::Duration::days(29);
        let ym = mai_core::time::YearMonth::of(today);
        let org = c.id.clone();
        let schedule = c.terms.markup.clone();
        let (rows, month) = self
            .cache
            .with(move |l| {
                let month = l.month_summary(&org, ym, today, &schedule)?;
                Ok((
                    DashboardRows {
                        daily: l.daily(&org, from, today)?,
                        users: l.by_user_priced(&org, ym.first_day(), today, &schedule)?,
                        models: l.by_model_priced(&org, ym.first_day(), today, &schedule)?,
                        tasks: l.by_context_priced(
                            &org,
                            ym.first_day(),
                            today,
                            &schedule,
                            ContextKey::Task,
                        )?,
                        groups: l.by_context_priced(
                            &org,
                            ym.first_day(),
                            today,
                            &schedule,
                            ContextKey::Group,
                        )?,
                        chats: l.by_context_priced(
                            &org,
                            ym.first_day(),
                            today,
                            &schedule,
                            ContextKey::Chat,
                        )?,
                        schedule,
                    },
                    month,
                ))
            })
            .await?;
        let view = usage_view(today, rows)
            .map_err(|e| crate::cache::CacheError::from(mai_core::ledger::LedgerError::from(e)))?;
        Ok(Dashboard {
            client_id: c.id.clone(),
            legal_name: c.legal_name.clone(),
            markup: c.markup_on(today),
            live,
            pull_error,
            updated_at: Utc::now(),
            today: view.today,
            month_requests: month.totals.requests,
            month_tokens: month.totals.tokens.total(),
            month_raw_cost_usd: month.totals.cost_usd,
            month_client_cost_usd: month.client_cost_usd,
            daily_average_client_cost_usd: month.daily_average_client_cost_usd,
            monthly_limit_usd: c.monthly_limit_usd(),
            days: view.days,
            by_user: view.by_user,
            by_model: view.by_model,
            by_task: view.by_task,
            background_share: view.background_share,
            by_group: view.by_group,
            top_chats: view.top_chats,
            chat_count: view.chat_count,
            pln,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mai_core::usage::{Tokens, UserRef};
    use rust_decimal_macros::dec;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn totals(requests: u64, prompt: u64, completion: u64, cost: Decimal) -> Totals {
        Totals {
            requests,
            tokens: Tokens {
                prompt,
                completion,
                ..Tokens::default()
            },
            cost_usd: cost,
        }
    }

    fn priced<T>(row: T, client_cost_usd: Decimal) -> Priced<T> {
        Priced {
            row,
            client_cost_usd,
        }
    }

    fn user(id: Option<&str>, email: Option<&str>, name: Option<&str>) -> UserRef {
        UserRef {
            id: id.map(String::from),
            email: email.map(String::from),
            name: name.map(String::from),
        }
    }

    #[test]
    fn each_day_is_priced_at_its_own_markup_and_the_last_day_is_today() {
        let mut schedule = MarkupSchedule::flat(dec!(1.3));
        schedule.set(d("2026-11-10"), dec!(1.5));
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![
                    (d("2026-11-09"), totals(2, 100, 50, dec!(0.10))),
                    (d("2026-11-10"), totals(1, 10, 5, dec!(0.02))),
                ],
                users: vec![],
                models: vec![],
                tasks: vec![],
                groups: vec![],
                chats: vec![],
                schedule,
            },
        )
        .unwrap();
        assert_eq!(view.days.len(), 2);
        assert_eq!(view.days[0].client_cost_usd, dec!(0.13));
        assert_eq!(view.days[0].tokens, 150);
        assert_eq!(view.days[1].client_cost_usd, dec!(0.03));
        assert_eq!(view.today, view.days[1]);
    }

    #[test]
    fn no_days_reads_as_an_empty_today() {
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![],
                users: vec![],
                models: vec![],
                tasks: vec![],
                groups: vec![],
                chats: vec![],
                schedule: MarkupSchedule::flat(dec!(1.3)),
            },
        )
        .unwrap();
        assert_eq!(view.today.date, d("2026-11-10"));
        assert_eq!(view.today.requests, 0);
        assert_eq!(view.today.client_cost_usd, Decimal::ZERO);
    }

    #[test]
    fn users_are_labelled_by_name_then_email_then_id() {
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![],
                users: vec![
                    priced(
                        UserTotals {
                            user: user(Some("u1"), Some("anna@example.pl"), Some("Anna")),
                            totals: totals(3, 30, 20, dec!(1)),
                        },
                        dec!(1.25),
                    ),
                    priced(
                        UserTotals {
                            user: user(Some("u2"), Some("jan@example.pl"), None),
                            totals: totals(1, 1, 1, dec!(0.5)),
                        },
                        dec!(0.625),
                    ),
                    priced(
                        UserTotals {
                            user: user(Some("u3"), None, None),
                            totals: totals(1, 1, 1, dec!(0)),
                        },
                        dec!(0),
                    ),
                    priced(
                        UserTotals {
                            user: user(None, None, None),
                            totals: totals(1, 1, 1, dec!(0)),
                        },
                        dec!(0),
                    ),
                ],
                models: vec![],
                tasks: vec![],
                groups: vec![],
                chats: vec![],
                schedule: MarkupSchedule::flat(dec!(1.25)),
            },
        )
        .unwrap();
        let labels: Vec<_> = view.by_user.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["Anna", "jan@example.pl", "u3", "(unknown user)"]);
        assert_eq!(view.by_user[0].key, "u1");
        assert_eq!(view.by_user[0].tokens, 50);
        assert_eq!(view.by_user[0].prompt_tokens, 30);
        assert_eq!(view.by_user[0].completion_tokens, 20);
        assert_eq!(view.by_user[0].client_cost_usd, dec!(1.25));
        assert_eq!(view.by_user[1].client_cost_usd, dec!(0.625));
    }

    #[test]
    fn models_are_keyed_and_labelled_by_their_name() {
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![],
                users: vec![],
                models: vec![priced(
                    ModelTotals {
                        model: "openai/gpt-4o".into(),
                        totals: totals(4, 400, 100, dec!(2)),
                    },
                    dec!(2.6),
                )],
                tasks: vec![],
                groups: vec![],
                chats: vec![],
                schedule: MarkupSchedule::flat(dec!(1.3)),
            },
        )
        .unwrap();
        let m = &view.by_model[0];
        assert_eq!(
            (m.key.as_str(), m.label.as_str()),
            ("openai/gpt-4o", "openai/gpt-4o")
        );
        assert_eq!((m.requests, m.tokens), (4, 500));
        assert_eq!(m.raw_cost_usd, dec!(2));
        assert_eq!(m.client_cost_usd, dec!(2.6));
    }

    fn key_row(key: &str, requests: u64, cost: Decimal, client: Decimal) -> Priced<KeyTotals> {
        priced(
            KeyTotals {
                key: key.into(),
                totals: totals(requests, 10, 5, cost),
            },
            client,
        )
    }

    #[test]
    fn tasks_groups_and_chats_with_the_background_share() {
        let chats: Vec<_> = (0..15)
            .map(|i| key_row(&format!("chat-{i:02}"), 1, dec!(0.01), dec!(0.013)))
            .collect();
        let view = usage_view(
            d("2026-11-10"),
            DashboardRows {
                daily: vec![],
                users: vec![],
                models: vec![],
                tasks: vec![
                    key_row("chat", 4, dec!(0.6), dec!(0.78)),
                    key_row("title_generation", 4, dec!(0.1), dec!(0.13)),
                    key_row("(unknown)", 2, dec!(0.05), dec!(0.065)),
                    key_row("tags_generation", 4, dec!(0.1), dec!(0.13)),
                ],
                groups: vec![key_row("Księgowość, Zarząd", 3, dec!(1), dec!(1.3))],
                chats,
                schedule: MarkupSchedule::flat(dec!(1.3)),
            },
        )
        .unwrap();
        // (0.13 + 0.13) / (0.78 + 0.13 + 0.13) = 0.25; the unknown row is left out.
        assert_eq!(view.background_share, Some(dec!(0.25)));
        assert_eq!(view.by_task.len(), 4);
        assert_eq!(view.by_task[1].label, "title_generation");
        assert_eq!(view.by_group[0].label, "Księgowość, Zarząd");
        assert_eq!(view.by_group[0].tokens, 15);
        assert_eq!(view.top_chats.len(), TOP_CHATS);
        assert_eq!(view.chat_count, 15);
        assert_eq!(
            background_share(&view.by_task[2..3]),
            None,
            "only unknown tasks"
        );
    }
}
