//! Correction invoices (KOR), pure: usage of a month whose invoice KSeF already accepted
//! changes that month's amounts, and art. 106j wants a correction invoice for it rather
//! than a line on some later invoice.
//!
//! A correction compares two complete statements of the same month: `before`, the latest
//! accepted state (the original invoice, or the "after" of the last accepted correction),
//! and `after`, the month priced again from the ledger with the original's exchange rate,
//! currency, VAT treatment and line mode (a correction keeps what the original fixed). Its
//! FA(3) amounts are the differences; its lines are the changed lines before (`StanPrzed`)
//! and after.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::compute::{month_name_pl, Amounts, InvoiceLine, Statement};

/// The invoice a correction corrects: always the month's original VAT invoice (a later
/// correction still names the original; its `before` is the latest accepted state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectedInvoice {
    pub number: String,
    pub issue_date: NaiveDate,
    /// `None` for an invoice issued before KSeF (FA(3) `NrKSeFN`).
    pub ksef_number: Option<String>,
}

/// FA(3) `TypKorekty`: in which period the correction counts for VAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionEffect {
    /// 1: usage that was there when the original was issued but reached the ledger late
    /// (an understatement from the start) counts in the original's period.
    OriginalPeriod,
    /// 2: a decrease counts when the correction is issued (art. 29a ust. 13).
    CorrectionDate,
    /// 3: lines going both ways.
    Other,
}

impl CorrectionEffect {
    pub fn code(self) -> u8 {
        match self {
            CorrectionEffect::OriginalPeriod => 1,
            CorrectionEffect::CorrectionDate => 2,
            CorrectionEffect::Other => 3,
        }
    }
}

/// What a correction invoice stores besides its own ("after") statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub corrected: CorrectedInvoice,
    /// Accepted corrections already folded into `before`, oldest first.
    pub earlier_corrections: Vec<String>,
    /// FA(3) `PrzyczynaKorekty`.
    pub reason: String,
    pub effect: CorrectionEffect,
    /// The latest accepted state of the month.
    pub before: Statement,
}

/// A line that changed: the same line before and after (`no` is its FA(3) line number,
/// shared by both rows), only before (gone) or only after (new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineChange<'a> {
    pub no: u32,
    pub before: Option<&'a InvoiceLine>,
    pub after: Option<&'a InvoiceLine>,
}

/// After minus before, field by field (same currency: a correction keeps the original's).
pub fn difference(before: &Amounts, after: &Amounts) -> Amounts {
    Amounts {
        currency: after.currency,
        net: after.net - before.net,
        vat: after.vat - before.vat,
        gross: after.gross - before.gross,
        net_pln: after.net_pln - before.net_pln,
        vat_pln: after.vat_pln - before.vat_pln,
        gross_pln: after.gross_pln - before.gross_pln,
    }
}

/// Lines are the same line when they bill the same month, period, model and text.
fn same_line(a: &InvoiceLine, b: &InvoiceLine) -> bool {
    a.usage_month == b.usage_month
        && a.period_from == b.period_from
        && a.period_to == b.period_to
        && a.model == b.model
        && a.description == b.description
}

/// The lines whose net changed, numbered by the after statement (gone lines after those).
pub fn line_changes<'a>(before: &'a Statement, after: &'a Statement) -> Vec<LineChange<'a>> {
    let mut out = Vec::new();
    for a in &after.lines {
        match before.lines.iter().find(|b| same_line(a, b)) {
            Some(b) if b.net == a.net => {}
            b => out.push(LineChange {
                no: a.no,
                before: b,
                after: Some(a),
            }),
        }
    }
    let mut next = after.lines.len() as u32;
    for b in &before.lines {
        if !after.lines.iter().any(|a| same_line(a, b)) && !b.net.is_zero() {
            next += 1;
            out.push(LineChange {
                no: next,
                before: Some(b),
                after: None,
            });
        }
    }
    out
}

/// The correction `after` makes to `before`, or `None` when the invoice amounts are the
/// same (usage that changes no amount after rounding needs no correction).
pub fn plan(
    corrected: CorrectedInvoice,
    earlier_corrections: Vec<String>,
    before: &Statement,
    after: &Statement,
) -> Option<Correction> {
    if before.amounts == after.amounts {
        return None;
    }
    let diff = difference(&before.amounts, &after.amounts);
    let changes = line_changes(before, after);
    let up = changes
        .iter()
        .any(|c| line_net(c.after) > line_net(c.before));
    let down = changes
        .iter()
        .any(|c| line_net(c.after) < line_net(c.before));
    let effect = match (up, down) {
        (true, false) => CorrectionEffect::OriginalPeriod,
        (false, true) => CorrectionEffect::CorrectionDate,
        _ if diff.net > Decimal::ZERO => CorrectionEffect::OriginalPeriod,
        _ if diff.net < Decimal::ZERO => CorrectionEffect::CorrectionDate,
        _ => CorrectionEffect::Other,
    };
    let month = month_name_pl(after.month);
    let reason = if diff.net >= Decimal::ZERO {
        format!(
            "Zużycie usług AI za {month} zaksięgowane przez OpenRouter po wystawieniu faktury {}",
            corrected.number
        )
    } else {
        format!(
            "Obniżenie kosztu zużycia usług AI za {month} przez OpenRouter po wystawieniu faktury {}",
            corrected.number
        )
    };
    Some(Correction {
        corrected,
        earlier_corrections,
        reason,
        effect,
        before: before.clone(),
    })
}

fn line_net(l: Option<&InvoiceLine>) -> Decimal {
    l.map(|l| l.net).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::{price, ModelUsage, PriceInput, SegmentUsage};
    use crate::config::{LineMode, VatTreatment};
    use mai_core::money::Currency;
    use mai_core::nbp::InvoiceRate;
    use mai_core::time::YearMonth;
    use mai_core::usage::Totals;
    use rust_decimal_macros::dec;

    fn statement(models: &[(&str, Decimal)]) -> Statement {
        let month: YearMonth = "2026-04".parse().unwrap();
        let rate = InvoiceRate {
            code: "USD".into(),
            mid: dec!(4.0000),
            table_no: "062/A/NBP/2026".into(),
            effective_date: month.last_day().pred_opt().unwrap(),
            reference_date: month.last_day(),
        };
        price(&PriceInput {
            org_id: "acme",
            month,
            segments: vec![SegmentUsage {
                from: month.first_day(),
                to: month.last_day(),
                markup: dec!(1.5),
                models: models
                    .iter()
                    .map(|(m, c)| ModelUsage {
                        model: (*m).into(),
                        totals: Totals {
                            requests: 1,
                            cost_usd: *c,
                            ..Totals::default()
                        },
                    })
                    .collect(),
            }],
            carry_over: vec![],
            currency: Currency::Pln,
            vat: VatTreatment::Rate(23),
            line_mode: LineMode::ByModel,
            usd_rate: &rate,
            hosting: None,
        })
        .unwrap()
    }

    fn original() -> CorrectedInvoice {
        CorrectedInvoice {
            number: "FV/2026/05/0001".into(),
            issue_date: "2026-05-04".parse().unwrap(),
            ksef_number: Some("1234563218-20260504-0100001AF629-AF".into()),
        }
    }

    #[test]
    fn an_increase_counts_in_the_original_period_and_lists_only_changed_lines() {
        let before = statement(&[("a", dec!(10)), ("b", dec!(5))]);
        let after = statement(&[("a", dec!(12)), ("b", dec!(5)), ("c", dec!(1))]);
        let k = plan(original(), vec![], &before, &after).unwrap();
        assert_eq!(k.effect, CorrectionEffect::OriginalPeriod);
        assert!(k.reason.contains("FV/2026/05/0001") && k.reason.contains("kwiecień 2026"));
        let d = difference(&before.amounts, &after.amounts);
        // (2 + 1) × 1.5 × 4 = 18 net, VAT 23% of the totals' difference.
        assert_eq!(d.net, dec!(18.00));
        assert_eq!(d.vat, after.amounts.vat - before.amounts.vat);
        let ch = line_changes(&before, &after);
        assert_eq!(ch.len(), 2, "b is unchanged");
        assert_eq!(ch[0].before.unwrap().model.as_deref(), Some("a"));
        assert!(ch[1].before.is_none() && ch[1].after.unwrap().model.as_deref() == Some("c"));
    }

    #[test]
    fn a_decrease_counts_when_corrected_and_a_gone_line_keeps_a_number() {
        let before = statement(&[("a", dec!(10)), ("b", dec!(5))]);
        let after = statement(&[("a", dec!(10))]);
        let k = plan(original(), vec![], &before, &after).unwrap();
        assert_eq!(k.effect, CorrectionEffect::CorrectionDate);
        assert!(k.reason.starts_with("Obniżenie"));
        let ch = line_changes(&before, &after);
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].no, 2);
        assert!(ch[0].after.is_none());
        assert_eq!(
            difference(&before.amounts, &after.amounts).net,
            dec!(-30.00)
        );
    }

    #[test]
    fn nothing_to_correct_when_the_amounts_round_the_same() {
        let before = statement(&[("a", dec!(10))]);
        let after = statement(&[("a", dec!(10.000000001))]);
        assert!(plan(original(), vec![], &before, &after).is_none());
    }
}
