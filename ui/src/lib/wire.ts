// Generated from crates/mai-wire by `MAI_UPDATE_WIRE_TS=1 cargo test -p mai-wire --test typescript`.
// Do not edit: change the Rust types instead. Money is a decimal string; never parse it as a float.

export type TokenCounts = { prompt: number, completion: number, reasoning: number, cached: number, total: number, };
export type UserRef = { id: string | null, email: string | null, name: string | null, };
export type Source = "proxy" | "webhook" | "manual" | "reconciliation";
export type EventState = "provisional" | "confirmed";
export type MarkupSchedule = { default_rate: string, 
/**
 * Sorted by day, at most one per day.
 */
entries: Array<MarkupEntry>, };
export type MarkupEntry = { effective_from: string, rate: string, };
export type MarkupSegment = { from: string, to: string, rate: string, raw_cost_usd: string, client_cost_usd: string, requests: number, };
export type CommercialTerms = { markup: MarkupSchedule, 
/**
 * Monthly limit on the client cost (USD), if any.
 */
monthly_limit_usd: string | null, };
export type LimitLevel = "ok" | "warning" | "reached";
export type LimitState = { monthly_limit_usd: string, used_usd: string, 
/**
 * Percent used, two decimal places (half-up).
 */
percent_used: string, level: LimitLevel, };
export type ErrorBody = { error: ErrorDetail, };
export type ErrorDetail = { code: number, message: string, };
export type KeyState = "ok" | "limit_reached" | "invalid" | "unknown" | "error";
export type KeyStatus = { 
/**
 * Masked (`sk-or-v1-…abcd`); the key itself never leaves the tracker.
 */
label: string, state: KeyState, limit: string | null, limit_remaining: string | null, usage_daily: string | null, usage_monthly: string | null, checked_at: string | null, error: string | null, };
export type Drift = { 
/**
 * `/key` usage minus the ledger, current UTC day.
 */
day_usd: string, 
/**
 * `/key` usage minus the ledger, current UTC month.
 */
month_usd: string, checked_at: string, 
/**
 * Completed UTC days × models that differ from `/activity` (management key only).
 */
activity?: Array<ActivityDrift>, };
export type ActivityDrift = { 
/**
 * A UTC day (OpenRouter's own calendar).
 */
date: string, model: string, openrouter_usd: string, ledger_usd: string, openrouter_requests: number, ledger_requests: number, };
export type SyncState = { 
/**
 * 0 when the background loop is off.
 */
interval_seconds: number, days_back: number, running: boolean, last_run: string | null, last_success: string | null, last_error: string | null, next_run: string | null, 
/**
 * `None` when the ledger could not be read just now.
 */
provisional_pending: number | null, drift: Drift | null, };
export type ProxyState = { 
/**
 * Proxied requests in flight right now.
 */
inflight: number, };
export type Status = { org_id: string, org_name: string | null, version: string, uptime_seconds: number, 
/**
 * The commercial terms the console last pushed; `null` until the first push (the
 * tracker then prices its own reports at the default 1.3 with no limit).
 */
terms: CommercialTerms | null, key: KeyStatus, sync: SyncState, proxy: ProxyState, };
export type Today = { org_id: string, date: string, requests: number, tokens: TokenCounts, raw_cost_usd: string, client_cost_usd: string, markup_rate: string, last_updated: string, };
export type DayUsage = { date: string, requests: number, tokens: TokenCounts, raw_cost_usd: string, client_cost_usd: string, };
export type Daily = { org_id: string, from: string, to: string, days: Array<DayUsage>, };
export type UserUsage = { user_id: string | null, email: string | null, name: string | null, requests: number, tokens: TokenCounts, raw_cost_usd: string, 
/**
 * Priced by markup segment (each day at its own rate).
 */
client_cost_usd: string, };
export type ByUser = { org_id: string, from: string, to: string, users: Array<UserUsage>, };
export type ModelUsage = { model: string, requests: number, tokens: TokenCounts, raw_cost_usd: string, client_cost_usd: string, };
export type ByModel = { org_id: string, from: string, to: string, models: Array<ModelUsage>, };
export type Month = { org_id: string, 
/**
 * `YYYY-MM`.
 */
month: string, 
/**
 * The month has not ended (Warsaw time): numbers still move.
 */
provisional: boolean, days_elapsed: number, requests: number, tokens: TokenCounts, raw_cost_usd: string, client_cost_usd: string, profit_usd: string, daily_average_client_cost_usd: string, markup_segments: Array<MarkupSegment>, 
/**
 * `null` when the terms set no monthly limit.
 */
limit: LimitState | null, };
export type Event = { 
/**
 * The ledger's change sequence: grows on every insert and correction.
 */
seq: number, generation_id: string, org_id: string, user: UserRef, model: string, provider: string | null, tokens: TokenCounts, cost_usd: string, source: Source, state: EventState, created_at: string, };
export type EventPage = { events: Array<Event>, next_cursor: number, has_more: boolean, };
export type SyncRequest = { 
/**
 * 1 to 30.
 */
days_back?: number, };
export type SyncStatus = "ok" | "partial" | "error";
export type SyncReport = { status: SyncStatus, checked: number, confirmed: number, 
/**
 * Ids OpenRouter does not know yet (404 right after a request) or that failed.
 */
still_provisional: number, corrected: number, errors: Array<string>, drift: Drift | null, };
export type KeyLabel = { label: string, };
