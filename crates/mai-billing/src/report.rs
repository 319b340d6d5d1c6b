//! A month's billing across clients, and preparing its invoices for KSeF (sync: ledger +
//! store).
//!
//! Open month → provisional numbers. Closed month → a client whose invoice KSeF accepted
//! shows the month as it stands in law (the invoice, or its latest accepted correction);
//! usage that reached the ledger later is reported as `late_usage_usd` and becomes a
//! correction invoice (KOR) of that invoice, or, with `late_usage = "carry"`, a carry-over
//! line on the client's next invoice. [`prepare_month`] turns a closed month into what
//! must go to KSeF now.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use mai_core::ledger::Ledger;
use mai_core::money::Currency;
use mai_core::nbp::InvoiceRate;
use mai_core::pricing::MarkupSchedule;
use mai_core::time::YearMonth;
use mai_core::usage::Totals;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::compute::{
    price, CarryOver, LateUsage, ModelUsage, PriceInput, SegmentUsage, Statement, ZeroMonth,
};
use crate::config::{BillingConfig, ClientBilling};
use crate::correction::CorrectedInvoice;
use crate::fees::{byok_share, client_profit, margin_percent, ClientProfit};
use crate::numbering::NumberFormat;
use crate::schema::SchemaIssue;
use crate::store::{
    BillingStore, InvoiceKind, IssuedInvoice, KsefState, NewInvoice, ZeroMonthRecord,
};
use crate::BillingError;

/// The NBP rates a month is converted at (both of the invoice kind: table A).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRates {
    pub usd: InvoiceRate,
    pub eur: Option<InvoiceRate>,
}

/// A row's status is shown by the console as it is, so it is the IPC enum (defined once
/// in mai-wire as `BillingStatus`).
pub use mai_wire::console::BillingStatus as RowStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRow {
    pub org_id: String,
    pub name: Option<String>,
    pub configured: bool,
    pub currency: Currency,
    pub status: RowStatus,
    pub invoice_number: Option<String>,
    /// The month's usage as the ledger has it now.
    pub usage: Totals,
    /// The invoice (frozen if issued), or `None` when no NBP rate is available.
    pub statement: Option<Statement>,
    /// Ledger now minus what the issued invoices billed for this month (USD, exact).
    /// Positive: goes onto the next invoice. Negative: needs a correction invoice.
    #[serde(with = "rust_decimal::serde::str")]
    pub late_usage_usd: Decimal,
    /// What an invoice still lacks.
    pub missing: Vec<String>,
    /// Fees, profit after fees and margins (with the statement; `None` without one).
    #[serde(default)]
    pub profit: Option<ClientProfit>,
    /// Where the month's VAT invoice is in KSeF (`None`: no number reserved yet). The
    /// status is `Issued` only once KSeF accepted it (or for an invoice from before KSeF).
    #[serde(default)]
    pub ksef_state: Option<KsefState>,
    /// Correction invoices of this month, any state, oldest first.
    #[serde(default)]
    pub corrections: Vec<String>,
    /// The month's amounts round to 0.00: it is not invoiced (status `NoUsage`) and its
    /// usage is carried or waived per the billing file's `zero_month`.
    #[serde(default)]
    pub zero_amounts: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotals {
    pub currency: Option<Currency>,
    #[serde(with = "rust_decimal::serde::str")]
    pub net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub gross: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTotals {
    pub clients: usize,
    pub requests: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub client_net_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub net_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub gross_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub hosting_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub late_usage_usd: Decimal,
    pub by_currency: Vec<CurrencyTotals>,
    /// OpenRouter fees of the rows (see [`crate::fees`]); `profit_usd` / `profit_pln`
    /// above are before them.
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_after_fees_usd: Decimal,
    /// What the month earned once OpenRouter's fees are paid (what reaches the bank,
    /// bar the card's FX spread).
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_after_fees_pln: Decimal,
    /// profit_pln / net_pln × 100 (0.01); `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub margin_before_fees_percent: Option<Decimal>,
    /// profit_after_fees_pln / net_pln × 100 (0.01); `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub effective_margin_percent: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthReport {
    pub month: YearMonth,
    pub today: NaiveDate,
    /// The month has not ended (Warsaw): everything is provisional.
    pub provisional: bool,
    pub rates: Option<InvoiceRates>,
    /// Why there are no PLN figures for rows that are not frozen.
    pub rate_error: Option<String>,
    pub clients: Vec<ClientRow>,
    /// Sums over rows that have a statement.
    pub totals: ReportTotals,
    /// How the month's OpenRouter fees were computed (which purchases, which rate).
    pub fees_basis: String,
    /// The last day to issue this month's invoices (VAT Act art. 106i ust. 1).
    pub issue_deadline: NaiveDate,
    /// Set when invoices are still to be issued and the deadline is near or past.
    pub deadline_warning: Option<String>,
}

/// The console's view of the report (what its Billing view shows), made here so that a
/// change of the report meets its one IPC shape at compile time.
impl From<&MonthReport> for mai_wire::console::BillingReport {
    fn from(r: &MonthReport) -> Self {
        use mai_wire::console::{
            BillingProfit, BillingReport, BillingRow, BillingTotals, TableARate,
        };
        let t = &r.totals;
        BillingReport {
            month: r.month.to_string(),
            today: r.today,
            provisional: r.provisional,
            usd_rate: r.rates.as_ref().map(|rates| TableARate {
                mid: rates.usd.mid,
                table_no: rates.usd.table_no.clone(),
                effective_date: rates.usd.effective_date,
            }),
            rate_error: r.rate_error.clone(),
            clients: r
                .clients
                .iter()
                .map(|c| BillingRow {
                    org_id: c.org_id.clone(),
                    name: c.name.clone(),
                    status: c.status,
                    invoice_number: c.invoice_number.clone(),
                    requests: c.usage.requests,
                    raw_cost_usd: c.usage.cost_usd,
                    late_usage_usd: c.late_usage_usd,
                    missing: c.missing.clone(),
                    profit: c.profit.as_ref().zip(c.statement.as_ref()).map(|(p, s)| {
                        BillingProfit {
                            net_pln: s.amounts.net_pln,
                            profit_pln: s.profit_pln,
                            byok: p.fees.byok,
                            fees_usd: p.fees.total_usd,
                            fees_pln: p.fees_pln,
                            profit_after_fees_usd: p.profit_after_fees_usd,
                            profit_after_fees_pln: p.profit_after_fees_pln,
                            margin_before_fees_percent: p.margin_before_fees_percent,
                            effective_margin_percent: p.effective_margin_percent,
                        }
                    }),
                    zero_amounts: c.zero_amounts,
                })
                .collect(),
            totals: BillingTotals {
                requests: t.requests,
                raw_cost_usd: t.raw_cost_usd,
                client_net_usd: t.client_net_usd,
                profit_usd: t.profit_usd,
                net_pln: t.net_pln,
                vat_pln: t.vat_pln,
                gross_pln: t.gross_pln,
                profit_pln: t.profit_pln,
                late_usage_usd: t.late_usage_usd,
                fees_usd: t.fees_usd,
                fees_pln: t.fees_pln,
                profit_after_fees_usd: t.profit_after_fees_usd,
                profit_after_fees_pln: t.profit_after_fees_pln,
                margin_before_fees_percent: t.margin_before_fees_percent,
                effective_margin_percent: t.effective_margin_percent,
            },
            fees_basis: r.fees_basis.clone(),
            issue_deadline: r.issue_deadline,
            deadline_warning: r.deadline_warning.clone(),
        }
    }
}

/// The date the invoice rate is taken for when looking at `month` on `today`: the
/// month's last day, or today while the month is still running (provisional).
pub fn rate_reference_for_report(month: YearMonth, today: NaiveDate) -> NaiveDate {
    month.last_day().min(today)
}

/// Reads one org's month from the ledger, split by markup segment (of `schedule`, the
/// fleet file's) and model.
pub fn read_month(
    ledger: &Ledger,
    org: &str,
    month: YearMonth,
    schedule: &MarkupSchedule,
) -> Result<Vec<SegmentUsage>, BillingError> {
    let daily = ledger.daily(org, month.first_day(), month.last_day())?;
    let mut out = Vec::new();
    let segments = mai_core::pricing::price_days(schedule, &daily)
        .map_err(mai_core::ledger::LedgerError::from)?;
    for seg in segments {
        let models = ledger
            .by_model(org, seg.from, seg.to)?
            .into_iter()
            .map(|m| ModelUsage {
                model: m.model,
                totals: m.totals,
            })
            .collect();
        out.push(SegmentUsage {
            from: seg.from,
            to: seg.to,
            markup: seg.rate,
            models,
        });
    }
    Ok(out)
}

/// A client's invoices grouped for billing: VAT invoices (any state) and corrections.
pub struct OrgInvoices {
    pub vat: Vec<IssuedInvoice>,
    pub kor: Vec<IssuedInvoice>,
    pub zero: Vec<ZeroMonthRecord>,
}

impl OrgInvoices {
    pub fn load(store: &BillingStore, org: &str) -> Result<Self, BillingError> {
        let (kor, vat) = store
            .invoices_for_org(org)?
            .into_iter()
            .partition(|i| i.kind == InvoiceKind::Kor);
        Ok(Self {
            vat,
            kor,
            zero: store.zero_months(org)?,
        })
    }

    /// The month's VAT invoice, in whatever state.
    pub fn vat_for(&self, month: YearMonth) -> Option<&IssuedInvoice> {
        self.vat.iter().find(|i| i.statement.month == month)
    }

    /// Corrections of the month, oldest first.
    pub fn corrections_of(&self, month: YearMonth) -> impl Iterator<Item = &IssuedInvoice> {
        self.kor.iter().filter(move |k| k.statement.month == month)
    }

    /// The month as it stands in law: the "after" of its latest accepted correction, else
    /// the invoice itself; with the numbers of the accepted corrections folded in.
    pub fn latest_state<'a>(&'a self, vat: &'a IssuedInvoice) -> (&'a Statement, Vec<String>) {
        let accepted: Vec<&IssuedInvoice> = self
            .corrections_of(vat.statement.month)
            .filter(|k| k.state() == Some(KsefState::Accepted))
            .collect();
        let statement = accepted
            .last()
            .map(|k| &k.statement)
            .unwrap_or(&vat.statement);
        (
            statement,
            accepted.iter().map(|k| k.number.clone()).collect(),
        )
    }

    fn zero_month(&self, month: YearMonth) -> Option<&ZeroMonthRecord> {
        self.zero.iter().find(|z| z.month == month)
    }

    /// What the invoices billed per usage month: (raw USD, requests, invoice numbers).
    /// Each VAT invoice counts with its latest accepted state; `except` is left out (the
    /// invoice being rendered again). A zero month counts with what it waived.
    fn billed_by_month(
        &self,
        except: Option<&str>,
    ) -> BTreeMap<YearMonth, (Decimal, u64, Vec<String>)> {
        let mut out: BTreeMap<YearMonth, (Decimal, u64, Vec<String>)> = BTreeMap::new();
        for inv in self
            .vat
            .iter()
            .filter(|i| Some(i.number.as_str()) != except)
        {
            // A month is "invoiced" once its own invoice exists, even if it had no lines.
            out.entry(inv.statement.month)
                .or_insert_with(|| (Decimal::ZERO, 0, Vec::new()));
            let (statement, _) = self.latest_state(inv);
            for l in &statement.lines {
                let e = out
                    .entry(l.usage_month)
                    .or_insert_with(|| (Decimal::ZERO, 0, Vec::new()));
                e.0 += l.raw_cost_usd;
                e.1 += l.requests;
                if !e.2.contains(&inv.number) {
                    e.2.push(inv.number.clone());
                }
            }
        }
        for z in &self.zero {
            let e = out
                .entry(z.month)
                .or_insert_with(|| (Decimal::ZERO, 0, Vec::new()));
            if z.decision == ZeroMonth::Waive {
                e.0 += z.raw_cost_usd;
                e.1 += z.requests;
            }
        }
        out
    }
}

/// Usage of earlier months to bill on the invoice of `before`: the usage of zero months,
/// and, with `late_usage = "carry"`, what reached the ledger after a month's invoice.
/// `except`: an invoice being rendered again, whose own carry-over lines are recomputed.
pub fn carry_overs(
    ledger: &Ledger,
    org: &str,
    invoices: &OrgInvoices,
    before: YearMonth,
    schedule: &MarkupSchedule,
    late_usage: LateUsage,
    except: Option<&str>,
) -> Result<Vec<CarryOver>, BillingError> {
    let mut out = Vec::new();
    for (m, (billed, billed_req, numbers)) in invoices.billed_by_month(except) {
        if m >= before {
            continue;
        }
        let zero = invoices.vat_for(m).is_none() && invoices.zero_month(m).is_some();
        if !zero && late_usage == LateUsage::Correction {
            continue;
        }
        let now = ledger.range(org, m.first_day(), m.last_day())?;
        let delta = now.cost_usd - billed;
        if delta > Decimal::ZERO {
            out.push(CarryOver {
                month: m,
                raw_cost_usd: delta.normalize(),
                markup: schedule.rate_on(m.last_day()),
                requests: now.requests.saturating_sub(billed_req),
                after_invoices: numbers,
            });
        }
    }
    Ok(out)
}

/// The month of one client priced from the ledger now (zero months and carried usage of
/// earlier months included); `except` as for [`carry_overs`].
#[allow(clippy::too_many_arguments)]
fn fresh_statement(
    cfg: &BillingConfig,
    ledger: &Ledger,
    client: &ClientBilling,
    invoices: &OrgInvoices,
    month: YearMonth,
    rates: &InvoiceRates,
    except: Option<&str>,
) -> Result<Statement, BillingError> {
    let segments = read_month(ledger, &client.org_id, month, &client.markup)?;
    let carry = carry_overs(
        ledger,
        &client.org_id,
        invoices,
        month,
        &client.markup,
        cfg.late_usage,
        except,
    )?;
    Ok(price(&PriceInput {
        org_id: &client.org_id,
        month,
        segments,
        carry_over: carry,
        currency: client.currency,
        vat: client.vat,
        line_mode: client.lines,
        usd_rate: &rates.usd,
        hosting: hosting_for(cfg, client, rates),
    })?)
}

/// Amounts that round to 0.00 in the invoice currency: nothing to invoice.
pub fn is_zero(s: &Statement) -> bool {
    s.amounts.net.is_zero() && s.amounts.gross.is_zero()
}

fn hosting_for<'a>(
    cfg: &BillingConfig,
    client: &ClientBilling,
    rates: &'a InvoiceRates,
) -> Option<(Decimal, &'a InvoiceRate)> {
    let eur = client.hosting_eur.or(cfg.default_hosting_eur)?;
    rates.eur.as_ref().map(|r| (eur, r))
}

/// All orgs of the month: configured clients and orgs seen in the ledger.
fn all_orgs(cfg: &BillingConfig, ledger: &Ledger) -> Result<Vec<String>, BillingError> {
    let mut set: BTreeSet<String> = ledger.orgs()?.into_iter().collect();
    set.extend(cfg.clients.iter().map(|c| c.org_id.clone()));
    Ok(set.into_iter().collect())
}

/// Builds the month's report. `rates` may be `None` (NBP down): rows that are not
/// frozen then have no statement, and `rate_error` says why.
pub fn build_report(
    cfg: &BillingConfig,
    ledger: &Ledger,
    store: &BillingStore,
    month: YearMonth,
    today: NaiveDate,
    rates: Result<&InvoiceRates, String>,
    only: Option<&str>,
) -> Result<MonthReport, BillingError> {
    let provisional = today <= month.last_day();
    let mut rows = Vec::new();
    for org in all_orgs(cfg, ledger)? {
        if only.is_some_and(|o| o != org) {
            continue;
        }
        let client = cfg
            .client(&org)
            .cloned()
            .unwrap_or_else(|| ClientBilling::unconfigured(&org));
        let configured = cfg.client(&org).is_some();
        let mut missing = client.missing_invoice_data();
        if !configured {
            missing.insert(0, "an entry in the fleet file ([[clients]] id = …)".into());
        }
        let usage = ledger.range(&org, month.first_day(), month.last_day())?;
        let invoices = OrgInvoices::load(store, &org)?;
        let corrections: Vec<String> = invoices
            .corrections_of(month)
            .map(|k| k.number.clone())
            .collect();
        let vat = invoices.vat_for(month);
        let mut zero_amounts = false;
        let (statement, status, number, late, ksef_state) = if let Some(inv) = vat {
            let billed = invoices
                .billed_by_month(None)
                .get(&month)
                .map(|b| b.0)
                .unwrap_or_default();
            let late = (usage.cost_usd - billed).normalize();
            let state = inv.state();
            let (statement, status) = if inv.is_issued() {
                (invoices.latest_state(inv).0.clone(), RowStatus::Issued)
            } else {
                // Numbered, not an invoice until KSeF accepts it.
                (inv.statement.clone(), RowStatus::ReadyToIssue)
            };
            (
                Some(statement),
                status,
                Some(inv.number.clone()),
                late,
                state,
            )
        } else {
            let st = match &rates {
                Ok(r) => Some(fresh_statement(
                    cfg, ledger, &client, &invoices, month, r, None,
                )?),
                Err(_) => None,
            };
            zero_amounts = invoices.zero_month(month).is_some()
                || st
                    .as_ref()
                    .is_some_and(|s| !s.lines.is_empty() && is_zero(s));
            let nothing = zero_amounts
                || st
                    .as_ref()
                    .map(|s| s.lines.is_empty())
                    .unwrap_or(usage.requests == 0 && usage.cost_usd.is_zero());
            let status = if provisional {
                RowStatus::Provisional
            } else if nothing {
                RowStatus::NoUsage
            } else if !missing.is_empty() {
                RowStatus::MissingData
            } else {
                RowStatus::ReadyToIssue
            };
            (st, status, None, Decimal::ZERO, None)
        };
        // An org that is only in the ledger and idle this month is noise, not a client row.
        if !configured && usage.requests == 0 && usage.cost_usd.is_zero() && number.is_none() {
            continue;
        }
        rows.push(ClientRow {
            org_id: org.clone(),
            name: client.name.clone(),
            configured,
            currency: statement
                .as_ref()
                .map(|s| s.amounts.currency)
                .unwrap_or(client.currency),
            status,
            invoice_number: number,
            usage,
            statement,
            late_usage_usd: late,
            missing,
            profit: None,
            ksef_state,
            corrections,
            zero_amounts,
        });
    }
    let fees_basis = apply_fees(cfg, ledger, month, &mut rows)?;
    let totals = totals(&rows)?;
    let pending: Vec<&str> = rows
        .iter()
        // Orgs missing from the fleet file are never invoiced: not pending.
        .filter(|r| {
            r.configured && matches!(r.status, RowStatus::ReadyToIssue | RowStatus::MissingData)
        })
        .map(|r| r.org_id.as_str())
        .collect();
    let deadline_warning = crate::validate::deadline_warning(month, today, &pending);
    Ok(MonthReport {
        month,
        today,
        provisional,
        rates: rates.as_ref().ok().map(|r| (*r).clone()),
        rate_error: rates.err(),
        clients: rows,
        totals,
        fees_basis,
        issue_deadline: crate::validate::issue_deadline(month),
        deadline_warning,
    })
}

/// Fills each row's [`ClientProfit`] from its statement; returns how the fees were found.
/// BYOK's free allowance is account-wide, so its request count is read for every BYOK
/// client, also when the report is for one client only.
fn apply_fees(
    cfg: &BillingConfig,
    ledger: &Ledger,
    month: YearMonth,
    rows: &mut [ClientRow],
) -> Result<String, BillingError> {
    let fees = &cfg.fees;
    let rate = fees
        .month_rate(month)
        .map_err(|e| BillingError::InvalidData(e.to_string()))?;
    let mut byok_requests: u64 = 0;
    for org in &fees.byok_clients {
        let t = ledger.range(org, month.first_day(), month.last_day())?;
        byok_requests = byok_requests
            .checked_add(t.requests)
            .ok_or(BillingError::Overflow(mai_core::usage::Overflow {
                what: "BYOK requests of the month",
            }))?;
    }
    let share = byok_share(byok_requests, fees.byok_free_requests_per_month);
    for row in rows.iter_mut() {
        let Some(s) = &row.statement else { continue };
        let f = fees
            .client_fees(&row.org_id, s.raw_cost_usd, &rate, share)
            .and_then(|f| client_profit(s, f))
            .map_err(|e| BillingError::InvalidData(e.to_string()))?;
        row.profit = Some(f);
    }
    Ok(rate.describe(fees))
}

fn totals(rows: &[ClientRow]) -> Result<ReportTotals, BillingError> {
    let mut t = ReportTotals::default();
    let overflow = |what| BillingError::Overflow(mai_core::usage::Overflow { what });
    let mut by: BTreeMap<Currency, CurrencyTotals> = BTreeMap::new();
    for r in rows {
        t.late_usage_usd += r.late_usage_usd;
        let Some(s) = &r.statement else { continue };
        t.clients += 1;
        t.requests += s.usage.requests;
        t.raw_cost_usd += s.raw_cost_usd;
        t.client_net_usd += s.client_net_usd;
        t.profit_usd += s.profit_usd;
        t.net_pln += s.amounts.net_pln;
        t.vat_pln += s.amounts.vat_pln;
        t.gross_pln += s.amounts.gross_pln;
        t.hosting_pln += s.hosting_pln;
        t.profit_pln += s.profit_pln;
        let c = by
            .entry(s.amounts.currency)
            .or_insert_with(|| CurrencyTotals {
                currency: Some(s.amounts.currency),
                ..CurrencyTotals::default()
            });
        c.net += s.amounts.net;
        c.vat += s.amounts.vat;
        c.gross += s.amounts.gross;
        if let Some(p) = &r.profit {
            t.fees_usd = t
                .fees_usd
                .checked_add(p.fees.total_usd)
                .ok_or_else(|| overflow("the month's fees (USD)"))?;
            t.fees_pln = t
                .fees_pln
                .checked_add(p.fees_pln)
                .ok_or_else(|| overflow("the month's fees (PLN)"))?;
            t.profit_after_fees_usd = t
                .profit_after_fees_usd
                .checked_add(p.profit_after_fees_usd)
                .ok_or_else(|| overflow("the month's profit after fees (USD)"))?;
            t.profit_after_fees_pln = t
                .profit_after_fees_pln
                .checked_add(p.profit_after_fees_pln)
                .ok_or_else(|| overflow("the month's profit after fees (PLN)"))?;
        }
    }
    t.raw_cost_usd = t.raw_cost_usd.normalize();
    t.client_net_usd = t.client_net_usd.normalize();
    t.profit_usd = t.profit_usd.normalize();
    t.late_usage_usd = t.late_usage_usd.normalize();
    t.fees_usd = t.fees_usd.normalize();
    t.profit_after_fees_usd = t.profit_after_fees_usd.normalize();
    t.margin_before_fees_percent = margin_percent(t.profit_pln, t.net_pln);
    t.effective_margin_percent = margin_percent(t.profit_after_fees_pln, t.net_pln);
    t.by_currency = by.into_values().collect();
    Ok(t)
}

/// A client that was not invoiced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub org_id: String,
    pub reason: String,
}

/// The provisional events of `month` per client of `orgs` (clients without any left out).
pub fn unconfirmed_events(
    ledger: &Ledger,
    month: YearMonth,
    orgs: &[&str],
) -> Result<BTreeMap<String, Vec<crate::compute::UnconfirmedEvent>>, BillingError> {
    let mut out = BTreeMap::new();
    for org in orgs {
        let evs = ledger.provisional_between(org, month.first_day(), month.last_day())?;
        if evs.is_empty() {
            continue;
        }
        let list = evs
            .into_iter()
            .map(|s| crate::compute::UnconfirmedEvent {
                day: mai_core::time::warsaw_day(s.event.created_at),
                generation_id: s.event.generation_id,
                model: s.event.model,
                cost_usd: s.event.cost_usd.normalize(),
            })
            .collect();
        out.insert((*org).to_owned(), list);
    }
    Ok(out)
}

/// How many ids the refusal names per client (the rest are counted).
const IDS_SHOWN: usize = 10;

/// Refuses to invoice over unconfirmed events unless `allow`; the error lists them.
pub fn check_unconfirmed(
    month: YearMonth,
    unconfirmed: &BTreeMap<String, Vec<crate::compute::UnconfirmedEvent>>,
    allow: bool,
) -> Result<(), BillingError> {
    let count: usize = unconfirmed.values().map(Vec::len).sum();
    if allow || count == 0 {
        return Ok(());
    }
    let detail = unconfirmed
        .iter()
        .map(|(org, evs)| {
            let ids: Vec<&str> = evs
                .iter()
                .take(IDS_SHOWN)
                .map(|e| e.generation_id.as_str())
                .collect();
            let more = evs.len().saturating_sub(IDS_SHOWN);
            format!(
                "client {org}: {} event(s): {}{}",
                evs.len(),
                ids.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(BillingError::Unconfirmed {
        month,
        count,
        detail,
    })
}

/// Why an invoice is handed out to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyReason {
    /// Prepared by this call: its number was reserved now.
    New,
    /// Prepared earlier, no verdict recorded: the same bytes again. If KSeF got them the
    /// first time (a lost answer), it answers 440 → `BillingStore::record_duplicate`.
    Unsent,
    /// KSeF rejected it; rendered again from the fixed data under the same number.
    AfterRejection,
}

/// An invoice to send to KSeF: exactly `xml`, the bytes the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyInvoice {
    pub number: String,
    pub org_id: String,
    /// The month billed (a correction's: the corrected month).
    pub month: YearMonth,
    pub kind: InvoiceKind,
    pub issue_date: NaiveDate,
    pub why: ReadyReason,
    /// The invoice a correction corrects (its KSeF number: `hashOfCorrectedInvoice` and
    /// the like are the KSeF client's business).
    pub corrects: Option<CorrectedInvoice>,
    /// SHA-256 (hex) of `xml`.
    pub xml_sha256: String,
    pub xml: Vec<u8>,
}

/// A client with nothing to send, and why (no usage, amounts round to 0.00, month open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotIssued {
    pub org_id: String,
    pub reason: String,
    /// Set when the month was not invoiced because its amounts round to 0.00.
    pub zero_month: Option<ZeroMonthRecord>,
}

/// A client whose invoice cannot be prepared until its data is fixed; no number was taken
/// (or, for a rejected invoice, it keeps the one it has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProblem {
    pub org_id: String,
    pub kind: InvoiceKind,
    /// The invoice's number if it has one (rejected), else the number it would have had.
    pub number: Option<String>,
    /// One sentence per problem: what, where, how to fix.
    pub messages: Vec<String>,
    /// The schema's complaints, located (empty for missing data).
    pub issues: Vec<SchemaIssue>,
}

/// What a month needs from KSeF now ([`prepare_month`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareOutcome {
    pub month: Option<YearMonth>,
    /// To send: the month's invoices, corrections due (any month), re-sends.
    pub ready: Vec<ReadyInvoice>,
    /// Sent, waiting for KSeF's verdict (poll their status).
    pub awaiting: Vec<String>,
    /// The month's invoices KSeF accepted before (or issued before KSeF).
    pub issued: Vec<String>,
    pub not_issued: Vec<NotIssued>,
    pub problems: Vec<ClientProblem>,
}

/// Renders the FA(3) XML and checks it as KSeF would; any refusal is a client problem
/// ([`BillingError::InvoiceInvalid`]), raised before the store reserves the number.
fn render_checked(inv: &IssuedInvoice) -> Result<Vec<u8>, BillingError> {
    let invalid = |issues| BillingError::InvoiceInvalid {
        org_id: inv.statement.org_id.clone(),
        number: inv.number.clone(),
        issues,
    };
    let xml = match crate::export::ksef::render(inv) {
        Ok(x) => x,
        Err(BillingError::InvalidData(detail)) => {
            return Err(invalid(vec![SchemaIssue {
                line: None,
                element: None,
                message: detail,
                fix: "correct the client's entry in the fleet file or the billing file".into(),
            }]))
        }
        Err(e) => return Err(e),
    };
    let issues = crate::schema::validate(xml.as_bytes())?;
    if !issues.is_empty() {
        return Err(invalid(issues));
    }
    Ok(xml.into_bytes())
}

fn ready(
    store: &BillingStore,
    inv: &IssuedInvoice,
    why: ReadyReason,
) -> Result<ReadyInvoice, BillingError> {
    let xml = store
        .xml(&inv.number)?
        .ok_or_else(|| BillingError::KsefState {
            number: inv.number.clone(),
            detail: "no XML is stored for it".into(),
        })?;
    Ok(ReadyInvoice {
        number: inv.number.clone(),
        org_id: inv.statement.org_id.clone(),
        month: inv.statement.month,
        kind: inv.kind,
        issue_date: inv.issue_date,
        why,
        corrects: inv.correction.as_ref().map(|c| c.corrected.clone()),
        xml_sha256: crate::store::sha256_hex(&xml),
        xml,
    })
}

fn problem(kind: InvoiceKind, e: BillingError) -> Result<ClientProblem, BillingError> {
    match e {
        BillingError::InvoiceInvalid {
            org_id,
            number,
            issues,
        } => Ok(ClientProblem {
            messages: issues
                .iter()
                .map(|i| format!("client `{org_id}`, invoice {number}: {i}"))
                .collect(),
            org_id,
            kind,
            number: Some(number),
            issues,
        }),
        other => Err(other),
    }
}

impl PrepareOutcome {
    /// Files an invoice that already has a number under what it needs now.
    fn existing(&mut self, store: &BillingStore, inv: &IssuedInvoice) -> Result<(), BillingError> {
        match inv.state() {
            Some(KsefState::Prepared) => self.ready.push(ready(store, inv, ReadyReason::Unsent)?),
            Some(KsefState::Sent) => self.awaiting.push(inv.number.clone()),
            Some(KsefState::Accepted | KsefState::Legacy) => self.issued.push(inv.number.clone()),
            // Rendered again by the caller.
            Some(KsefState::Rejected) | None => {}
        }
        Ok(())
    }

    fn prepared(
        &mut self,
        store: &BillingStore,
        kind: InvoiceKind,
        result: Result<IssuedInvoice, BillingError>,
        why: ReadyReason,
    ) -> Result<(), BillingError> {
        match result {
            Ok(inv) => self.ready.push(ready(store, &inv, why)?),
            Err(BillingError::AlreadyIssued { number, .. }) => {
                // Another preparation numbered it meanwhile: take that one as it is.
                if let Some(inv) = store.get(&number)? {
                    self.existing(store, &inv)?;
                }
            }
            Err(e) => self.problems.push(problem(kind, e)?),
        }
        Ok(())
    }
}

/// Prepares what `month` needs from KSeF: each client's VAT invoice (new: checked, then
/// numbered and stored; prepared earlier: handed out again as stored; rejected: rendered
/// again from the current data under its number), the corrections due for any month whose
/// invoice KSeF accepted (see [`crate::correction`]) and the re-sends of rejected
/// corrections. A month whose amounts round to 0.00 is recorded as a zero month and not
/// numbered. `rates` (table A for the month's invoices) is needed only when a VAT invoice
/// is rendered. Unconfirmed usage of a client to render refuses the whole call unless
/// `allow_unconfirmed` (see [`check_unconfirmed`]).
#[allow(clippy::too_many_arguments)]
pub fn prepare_month(
    cfg: &BillingConfig,
    ledger: &Ledger,
    store: &mut BillingStore,
    month: YearMonth,
    issue_date: NaiveDate,
    today: NaiveDate,
    rates: Option<&InvoiceRates>,
    only: Option<&str>,
    allow_unconfirmed: bool,
) -> Result<PrepareOutcome, BillingError> {
    if today <= month.last_day() {
        return Err(BillingError::MonthOpen {
            month,
            last_day: month.last_day(),
            today,
        });
    }
    if issue_date < month.last_day() || issue_date > today {
        return Err(BillingError::InvalidData(format!(
            "issue date {issue_date} for {month}: it must be between the month's last day ({}) and today ({today})",
            month.last_day()
        )));
    }
    if let Some(rates) = rates {
        let expected_ref = mai_core::nbp::invoice_reference_date(month.last_day(), issue_date);
        if rates.usd.reference_date != expected_ref || rates.usd.code != "USD" {
            return Err(BillingError::InvalidData(format!(
                "the USD rate given is for reference date {} but invoices for {month} issued on {issue_date} need {expected_ref}",
                rates.usd.reference_date
            )));
        }
    }
    let vat_format = NumberFormat::parse(&cfg.invoice_number_format)
        .map_err(|e| BillingError::InvalidData(format!("invoice_number_format: {e}")))?;
    let kor_format = NumberFormat::parse(&cfg.correction_number_format)
        .map_err(|e| BillingError::InvalidData(format!("correction_number_format: {e}")))?;
    let due_date = issue_date + Days::new(u64::from(cfg.payment_days));
    let report = build_report(
        cfg,
        ledger,
        store,
        month,
        today,
        rates.ok_or_else(|| "not fetched".to_string()),
        only,
    )?;
    let to_render: Vec<&str> = report
        .clients
        .iter()
        .filter(|r| {
            (r.ksef_state.is_none() && r.status == RowStatus::ReadyToIssue)
                || r.ksef_state == Some(KsefState::Rejected)
        })
        .map(|r| r.org_id.as_str())
        .collect();
    let needs_rates = || {
        BillingError::InvalidData(format!(
            "internal error: invoices of {month} must be rendered but no NBP rate was fetched"
        ))
    };
    if !to_render.is_empty() && rates.is_none() {
        return Err(needs_rates());
    }
    let mut unconfirmed = unconfirmed_events(ledger, month, &to_render)?;
    check_unconfirmed(month, &unconfirmed, allow_unconfirmed)?;

    let mut out = PrepareOutcome {
        month: Some(month),
        ..PrepareOutcome::default()
    };
    for row in &report.clients {
        let org = row.org_id.as_str();
        if let Some(number) = &row.invoice_number {
            let inv = store
                .get(number)?
                .ok_or_else(|| BillingError::UnknownInvoice {
                    number: number.clone(),
                })?;
            if inv.state() != Some(KsefState::Rejected) {
                out.existing(store, &inv)?;
                continue;
            }
            // Rejected: KSeF never registered it; the operator fixed the data.
            let Some(client) = cfg.client(org) else {
                out.problems.push(ClientProblem {
                    org_id: org.into(),
                    kind: InvoiceKind::Vat,
                    number: Some(number.clone()),
                    messages: vec![format!(
                        "invoice {number} was rejected by KSeF and client `{org}` is no longer in the fleet file: \
                         put its [[clients]] entry back to send the invoice again under its number"
                    )],
                    issues: vec![],
                });
                continue;
            };
            if !row.missing.is_empty() {
                out.problems
                    .push(missing_problem(org, Some(number.clone()), &row.missing));
                continue;
            }
            let invoices = OrgInvoices::load(store, org)?;
            let rates = rates.ok_or_else(needs_rates)?;
            let mut statement =
                fresh_statement(cfg, ledger, client, &invoices, month, rates, Some(number))?;
            statement.unconfirmed = unconfirmed.remove(org).unwrap_or_default();
            let result = store.reprepare(
                number,
                NewInvoice {
                    kind: InvoiceKind::Vat,
                    issue_date: inv.issue_date,
                    due_date: inv.due_date,
                    seller: cfg.seller.clone(),
                    buyer: client.clone(),
                    statement,
                    correction: None,
                },
                &mut render_checked,
            );
            out.prepared(store, InvoiceKind::Vat, result, ReadyReason::AfterRejection)?;
            continue;
        }
        match row.status {
            RowStatus::Provisional => out.not_issued.push(NotIssued {
                org_id: org.into(),
                reason: format!("{month} is still open"),
                zero_month: None,
            }),
            RowStatus::NoUsage if row.zero_amounts && row.configured => {
                let z = store.record_zero_month(
                    org,
                    month,
                    cfg.zero_month,
                    row.usage.cost_usd,
                    row.usage.requests,
                )?;
                let then = match z.decision {
                    ZeroMonth::Carry => "its usage goes onto the next invoice as a carry-over line",
                    ZeroMonth::Waive => "its usage is waived (zero_month = \"waive\")",
                };
                out.not_issued.push(NotIssued {
                    org_id: org.into(),
                    reason: format!(
                        "the amounts of {month} round to 0.00 (raw cost {} USD): not invoiced, no number taken; {then}",
                        z.raw_cost_usd
                    ),
                    zero_month: Some(z),
                });
            }
            RowStatus::NoUsage => out.not_issued.push(NotIssued {
                org_id: org.into(),
                reason: "no usage to bill this month".into(),
                zero_month: None,
            }),
            RowStatus::MissingData => out.problems.push(missing_problem(org, None, &row.missing)),
            RowStatus::ReadyToIssue => {
                let Some(mut statement) = row.statement.clone() else {
                    return Err(needs_rates());
                };
                statement.unconfirmed = unconfirmed.remove(org).unwrap_or_default();
                let buyer = cfg.client(org).cloned().ok_or_else(|| {
                    BillingError::InvalidData(format!("client {org} vanished from the config"))
                })?;
                let result = store.prepare(
                    &vat_format,
                    NewInvoice {
                        kind: InvoiceKind::Vat,
                        issue_date,
                        due_date,
                        seller: cfg.seller.clone(),
                        buyer,
                        statement,
                        correction: None,
                    },
                    &mut render_checked,
                );
                out.prepared(store, InvoiceKind::Vat, result, ReadyReason::New)?;
            }
            // Only rows with a number are issued (handled above).
            RowStatus::Issued => {}
        }
    }
    prepare_corrections(
        cfg,
        ledger,
        store,
        &kor_format,
        issue_date,
        due_date,
        only,
        &mut out,
    )?;
    Ok(out)
}

fn missing_problem(org: &str, number: Option<String>, missing: &[String]) -> ClientProblem {
    ClientProblem {
        org_id: org.into(),
        kind: InvoiceKind::Vat,
        messages: missing
            .iter()
            .map(|m| format!("client `{org}`: missing or invalid invoice data: {m} (fleet file, its [[clients]] entry)"))
            .collect(),
        number,
        issues: vec![],
    }
}

/// The corrected month priced again from the ledger, keeping what the original fixed:
/// exchange rate, currency, VAT treatment, line mode, hosting, carried lines.
fn correction_after(
    ledger: &Ledger,
    client: &ClientBilling,
    before: &Statement,
) -> Result<Statement, BillingError> {
    let segments = read_month(ledger, &client.org_id, before.month, &client.markup)?;
    let mut after = price(&PriceInput {
        org_id: &client.org_id,
        month: before.month,
        segments,
        carry_over: before.carry_over.clone(),
        currency: before.amounts.currency,
        vat: before.vat,
        line_mode: before.line_mode,
        usd_rate: &before.usd_rate,
        hosting: before.hosting_eur.zip(before.eur_rate.as_ref()),
    })?;
    after.unconfirmed = before.unconfirmed.clone();
    Ok(after)
}

/// Corrections: for every month whose invoice is issued, the open correction (handed out
/// again, awaited, or rendered again after a rejection), or a new one when the ledger
/// changed the month's amounts (`late_usage = "correction"`).
#[allow(clippy::too_many_arguments)]
fn prepare_corrections(
    cfg: &BillingConfig,
    ledger: &Ledger,
    store: &mut BillingStore,
    format: &NumberFormat,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    only: Option<&str>,
    out: &mut PrepareOutcome,
) -> Result<(), BillingError> {
    let seller_nip = crate::nip::normalise_nip(&cfg.seller.nip).ok();
    for client in cfg
        .clients
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.org_id))
    {
        let invoices = OrgInvoices::load(store, &client.org_id)?;
        for vat in invoices.vat.iter().filter(|v| v.is_issued()) {
            let month = vat.statement.month;
            let open = invoices
                .corrections_of(month)
                .find(|k| !k.state().is_some_and(KsefState::is_issued));
            if let Some(k) = open {
                if k.state() != Some(KsefState::Rejected) {
                    out.existing(store, k)?;
                    continue;
                }
            } else if cfg.late_usage == LateUsage::Carry {
                continue;
            }
            let (before, earlier) = invoices.latest_state(vat);
            let after = correction_after(ledger, client, before)?;
            let corrected = CorrectedInvoice {
                number: vat.number.clone(),
                issue_date: vat.issue_date,
                ksef_number: vat.ksef.as_ref().and_then(|k| k.ksef_number.clone()),
            };
            let Some(plan) = crate::correction::plan(corrected, earlier, before, &after) else {
                if let Some(k) = open {
                    out.problems.push(ClientProblem {
                        org_id: client.org_id.clone(),
                        kind: InvoiceKind::Kor,
                        number: Some(k.number.clone()),
                        messages: vec![format!(
                            "correction {} of invoice {} was rejected by KSeF and the ledger no longer differs from \
                             the accepted state: it has nothing left to correct, but keeps its number; ask your \
                             accountant how to close the numbering gap",
                            k.number, vat.number
                        )],
                        issues: vec![],
                    });
                }
                continue;
            };
            if crate::nip::normalise_nip(&vat.seller.nip).ok() != seller_nip {
                out.problems.push(ClientProblem {
                    org_id: client.org_id.clone(),
                    kind: InvoiceKind::Kor,
                    number: None,
                    messages: vec![format!(
                        "invoice {} was issued under seller NIP {}, the billing file now has {}: a correction must \
                         come from the same seller",
                        vat.number, vat.seller.nip, cfg.seller.nip
                    )],
                    issues: vec![],
                });
                continue;
            }
            let new = NewInvoice {
                kind: InvoiceKind::Kor,
                issue_date,
                due_date,
                seller: cfg.seller.clone(),
                // The buyer as invoiced: a correction does not change who bought.
                buyer: vat.buyer.clone(),
                statement: after,
                correction: Some(plan),
            };
            match open {
                Some(k) => {
                    let number = k.number.clone();
                    let result = store.reprepare(&number, new, &mut render_checked);
                    out.prepared(store, InvoiceKind::Kor, result, ReadyReason::AfterRejection)?;
                }
                None => {
                    let result = store.prepare(format, new, &mut render_checked);
                    out.prepared(store, InvoiceKind::Kor, result, ReadyReason::New)?;
                }
            }
        }
    }
    Ok(())
}
