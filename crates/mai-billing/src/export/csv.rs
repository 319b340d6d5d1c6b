//! CSV of a month's billing: one row per client plus a totals row.
//! Polish dialect: `;` separators, decimal commas, UTF-8 BOM (what Polish Excel expects).
//! Plain dialect: `,` separators, decimal dots, no BOM.

use rust_decimal::Decimal;

use crate::report::MonthReport;

/// The dialect is chosen in the console's export request, so it is the IPC type
/// (defined once in mai-wire); how each dialect writes is [`Write`], here.
pub use mai_wire::console::CsvDialect;

/// How a dialect writes separators and numbers.
trait Write {
    fn sep(self) -> char;
    fn num(self, d: Decimal) -> String;
    fn money(self, d: Decimal) -> String;
}

impl Write for CsvDialect {
    fn sep(self) -> char {
        match self {
            CsvDialect::Polish => ';',
            CsvDialect::Plain => ',',
        }
    }
    fn num(self, d: Decimal) -> String {
        let s = d.normalize().to_string();
        match self {
            CsvDialect::Polish => s.replace('.', ","),
            CsvDialect::Plain => s,
        }
    }
    fn money(self, d: Decimal) -> String {
        let s = super::fixed2(d);
        match self {
            CsvDialect::Polish => s.replace('.', ","),
            CsvDialect::Plain => s,
        }
    }
}

pub const COLUMNS: &[&str] = &[
    "month",
    "org_id",
    "client",
    "status",
    "invoice_number",
    "currency",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "raw_cost_usd",
    "markup",
    "client_net_usd",
    "net",
    "vat_rate",
    "vat",
    "gross",
    "nbp_table",
    "nbp_date",
    "nbp_usd_mid",
    "net_pln",
    "vat_pln",
    "gross_pln",
    "raw_cost_pln",
    "hosting_pln",
    "profit_pln",
    "late_usage_usd",
    "missing",
    // Appended (issue 15): OpenRouter fees and the margin they leave; `profit_pln` above
    // stays the profit before fees.
    "fees_usd",
    "fees_pln",
    "profit_after_fees_pln",
    "margin_before_fees_percent",
    "effective_margin_percent",
];

/// A margin (already rounded to 0.01), empty when there is none.
fn percent(dialect: CsvDialect, p: Option<Decimal>) -> String {
    p.map(|p| dialect.money(p)).unwrap_or_default()
}

/// Renders the report. Exact USD values are written unrounded so they sum to the
/// ledger; invoice amounts with two decimals.
pub fn render(report: &MonthReport, dialect: CsvDialect) -> String {
    let sep = dialect.sep();
    let mut out = String::new();
    if dialect == CsvDialect::Polish {
        out.push('\u{feff}');
    }
    let line = |cells: Vec<String>| -> String {
        let mut l = cells
            .iter()
            .map(|c| mai_core::csv::field(c, sep))
            .collect::<Vec<_>>()
            .join(&sep.to_string());
        l.push_str("\r\n");
        l
    };
    out.push_str(&line(COLUMNS.iter().map(|s| s.to_string()).collect()));
    let month = report.month.to_string();
    for r in &report.clients {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut cells = vec![
            month.clone(),
            r.org_id.clone(),
            // The buyer's name is text (numbers here are data and keep their minus).
            mai_core::csv::defuse(r.name.as_deref().unwrap_or_default()).into_owned(),
            status,
            r.invoice_number.clone().unwrap_or_default(),
            r.currency.to_string(),
        ];
        match &r.statement {
            Some(s) => {
                let markups: Vec<String> = {
                    let mut v: Vec<String> =
                        s.segments.iter().map(|g| dialect.num(g.markup)).collect();
                    v.dedup();
                    v
                };
                cells.extend([
                    s.usage.requests.to_string(),
                    s.usage.tokens.prompt.to_string(),
                    s.usage.tokens.completion.to_string(),
                    dialect.num(s.raw_cost_usd),
                    markups.join(" / "),
                    dialect.num(s.client_net_usd),
                    dialect.money(s.amounts.net),
                    String::from(s.vat),
                    dialect.money(s.amounts.vat),
                    dialect.money(s.amounts.gross),
                    s.usd_rate.table_no.clone(),
                    s.usd_rate.effective_date.to_string(),
                    dialect.num(s.usd_rate.mid).to_string(),
                    dialect.money(s.amounts.net_pln),
                    dialect.money(s.amounts.vat_pln),
                    dialect.money(s.amounts.gross_pln),
                    dialect.money(s.raw_cost_pln),
                    dialect.money(s.hosting_pln),
                    dialect.money(s.profit_pln),
                ]);
            }
            None => {
                cells.extend([
                    r.usage.requests.to_string(),
                    r.usage.tokens.prompt.to_string(),
                    r.usage.tokens.completion.to_string(),
                    dialect.num(r.usage.cost_usd),
                ]);
                cells.extend(std::iter::repeat_n(String::new(), 15));
            }
        }
        cells.push(dialect.num(r.late_usage_usd));
        cells.push(r.missing.join("; "));
        match &r.profit {
            Some(p) => cells.extend([
                dialect.num(p.fees.total_usd),
                dialect.money(p.fees_pln),
                dialect.money(p.profit_after_fees_pln),
                percent(dialect, p.margin_before_fees_percent),
                percent(dialect, p.effective_margin_percent),
            ]),
            None => cells.extend(std::iter::repeat_n(String::new(), 5)),
        }
        out.push_str(&line(cells));
    }
    let t = &report.totals;
    let mut cells = vec![
        month,
        "TOTAL".into(),
        String::new(),
        if report.provisional {
            "provisional".into()
        } else {
            String::new()
        },
        String::new(),
        String::new(),
        t.requests.to_string(),
        String::new(),
        String::new(),
        dialect.num(t.raw_cost_usd),
        String::new(),
        dialect.num(t.client_net_usd),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        dialect.money(t.net_pln),
        dialect.money(t.vat_pln),
        dialect.money(t.gross_pln),
        String::new(),
        dialect.money(t.hosting_pln),
        dialect.money(t.profit_pln),
        dialect.num(t.late_usage_usd),
        report.rate_error.clone().unwrap_or_default(),
        dialect.num(t.fees_usd),
        dialect.money(t.fees_pln),
        dialect.money(t.profit_after_fees_pln),
        percent(dialect, t.margin_before_fees_percent),
        percent(dialect, t.effective_margin_percent),
    ];
    cells.truncate(COLUMNS.len());
    out.push_str(&line(cells));
    out
}
