// Generated from crates/mai-wire by `MAI_UPDATE_WIRE_TS=1 cargo test -p mai-wire --test typescript`.
// Do not edit: change the Rust types instead. Money is a decimal string; never parse it as a float.

export type TokenCounts = { prompt: number, completion: number, reasoning: number, cached: number, total: number, };
export type UserRef = { id: string | null, email: string | null, name: string | null, };
export type ChatContext = { 
/**
 * Open WebUI's chat id; `null` for requests outside a chat (or not told).
 */
chat_id: string | null, 
/**
 * [`TASK_CHAT`] for the user's own message (the task header present and empty),
 * else Open WebUI's task name (`title_generation`, `tags_generation`, ...);
 * `null` when the chat app did not send the task header at all (not configured,
 * or an event recorded before the header existed), so an unconfigured chat app
 * never passes its background calls off as the users' own messages.
 */
task: string | null, 
/**
 * The user's group names, trimmed, sorted, deduplicated, joined with ", ";
 * `null` when the user is in no group or the chat app did not say.
 */
groups: string | null, };
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
export type KeyState = "ok" | "limit_reached" | "account_out_of_credits" | "invalid" | "unknown" | "error";
export type KeyStatus = { 
/**
 * Masked (`sk-or-v1-…abcd`); the key itself never leaves the tracker.
 */
label: string, 
/**
 * OpenRouter's identifier of the key: SHA-256 hex of the key string (not secret,
 * it cannot give the key back); what `/keys/{hash}` and `/activity` take.
 */
hash: string, 
/**
 * The key's name on OpenRouter (what Broadcast spans carry as
 * `trace.metadata.openrouter.api_key_name`); `null` while unknown.
 */
name: string | null, state: KeyState, limit: string | null, limit_remaining: string | null, usage_daily: string | null, usage_monthly: string | null, checked_at: string | null, error: string | null, };
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
export type WebhookState = { 
/**
 * False without `MAI_WEBHOOK_SECRET`: the endpoint then answers 404.
 */
enabled: boolean, 
/**
 * The header the destination must send the secret in (its custom headers).
 */
secret_header: string | null, 
/**
 * Spans are recorded only when their key name is one of these: this client's
 * current key and the keys it used before a rotation. Empty = no span is recorded
 * (the key's name is not known yet).
 */
key_names: Array<string>, };
export type Status = { org_id: string, org_name: string | null, version: string, uptime_seconds: number, 
/**
 * The commercial terms the console last pushed; `null` until the first push (the
 * tracker then prices its own reports at the default 1.3 with no limit).
 */
terms: CommercialTerms | null, key: KeyStatus, sync: SyncState, proxy: ProxyState, 
/**
 * The Broadcast webhook; absent in replies of trackers older than it.
 */
webhook: WebhookState, };
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
export type KeyedUsage = { 
/**
 * The task kind ([`crate::usage::TASK_CHAT`], a task name or [`TASK_UNKNOWN`]), the
 * group set ([`NO_GROUP`]) or the chat id ([`NO_CHAT`]).
 */
key: string, requests: number, tokens: TokenCounts, raw_cost_usd: string, 
/**
 * Priced by markup segment (each day at its own rate), as `by-user`.
 */
client_cost_usd: string, };
export type ByTask = { org_id: string, from: string, to: string, tasks: Array<KeyedUsage>, };
export type ByGroup = { org_id: string, from: string, to: string, groups: Array<KeyedUsage>, };
export type ByChat = { org_id: string, from: string, to: string, chats: Array<KeyedUsage>, };
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
seq: number, generation_id: string, org_id: string, user: UserRef, model: string, provider: string | null, tokens: TokenCounts, cost_usd: string, source: Source, state: EventState, created_at: string, 
/**
 * Chat id, task and groups; left out when none is known, so events without them
 * read as before this field existed.
 */
context?: ChatContext, };
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
export type PrivacySubject = { id: string | null, email: string | null, };
export type EraseRequest = { user: PrivacySubject, };
export type ErasureReport = { org_id: string, 
/**
 * SHA-256 hex of the subject (`mai_core::ledger::subject_hash`): how audit logs
 * name the person, never by e-mail or name.
 */
subject_hash: string, 
/**
 * `erased-<32 hex>`: the random user id the person's usage is now kept under, so
 * per-user totals stay whole. Not stored next to `subject_hash` anywhere.
 */
pseudonym: string, 
/**
 * Events whose user fields (and chat id) were replaced.
 */
events: number, 
/**
 * Per-user daily rollup rows merged into the pseudonym's.
 */
rollup_rows: number, 
/**
 * Crash-journal and quarantine lines of the person removed from the tracker's files.
 */
journal_lines: number, 
/**
 * The ledger file was rebuilt (`VACUUM`) and its WAL truncated, so no old copy of
 * the erased fields is left in free pages or the WAL.
 */
compacted: boolean, erased_at: string, };
export type PrivacyExport = { org_id: string, subject: PrivacySubject, generated_at: string, requests: number, tokens: TokenCounts, 
/**
 * What OpenRouter charged for the person's requests (USD).
 */
raw_cost_usd: string, 
/**
 * Oldest first.
 */
events: Array<Event>, };
export type ProbeRequest = { 
/**
 * Default [`DEFAULT_PROBE_MODEL`].
 */
model?: string, };
export type ProbeReport = { generation_id: string, 
/**
 * How long OpenRouter took to answer, in ms.
 */
upstream_ms: number, 
/**
 * The ledger's event (its `seq` finds it in `GET /api/v1/events?after=seq-1`).
 */
event: Event, };
export type RestoreReport = { org_id: string, 
/**
 * Events of the restored ledger.
 */
events: number, 
/**
 * SHA-256 of the received file, as verified.
 */
sha256: string, size_bytes: number, restored_at: string, };
export type ClientRef = { id: string, legal_name: string, };
export type AppInfo = { version: string, fleet_path: string | null, load_error: string | null, keychain_error: string | null, clients: Array<ClientRef>, update_endpoint: string | null, 
/**
 * The fleet file has a `[billing]` section (report and export available).
 */
billing_available: boolean, 
/**
 * The fleet file has a `[ksef]` section too (sending invoices to KSeF available).
 */
ksef_available: boolean, };
export type UpdateCheck = { available: boolean, version: string | null, notes: string | null, current: string, error: string | null, };
export type ContainerRole = "chat" | "tracker";
export type ContainerState = "created" | "running" | "paused" | "restarting" | "removing" | "stopping" | "exited" | "dead" | "unknown";
export type ContainerHealth = "starting" | "healthy" | "unhealthy";
export type ContainerInfo = { id: string, name: string, 
/**
 * The `mai.client` label.
 */
client: string, role: ContainerRole, image: string, 
/**
 * The `mai.version` label, else the image tag.
 */
version: string | null, state: ContainerState, health: ContainerHealth | null, started_at: string | null, restart_count: number | null, };
export type AlertLevel = "info" | "warning" | "critical";
export type Alert = { level: AlertLevel, message: string, };
export type SyncView = "ok" | "error" | "running" | "unknown";
export type HostMode = "plain" | "swarm";
export type FleetRow = { client_id: string, legal_name: string, host: string, 
/**
 * The host's mode (absent: plain); the table marks Swarm clients.
 */
host_mode?: HostMode, 
/**
 * Today's markup rate (the fleet file's schedule).
 */
markup: string, 
/**
 * The chat container (role `chat`), if Docker answered and one exists.
 */
container: ContainerInfo | null, tracker_container: ContainerInfo | null, docker_error: string | null, uptime_seconds: number | null, tracker_reachable: boolean, tracker_error: string | null, tracker_version: string | null, last_sync_state: SyncView, last_sync_at: string | null, last_sync_error: string | null, today_requests: number | null, today_tokens: number | null, today_raw_cost_usd: string | null, today_client_cost_usd: string | null, month_client_cost_usd: string | null, 
/**
 * The Warsaw month so far, raw (OpenRouter) cost.
 */
month_raw_cost_usd: string | null, 
/**
 * The month's client cost against the fleet file's monthly limit, if it has one.
 */
limit: LimitState | null, 
/**
 * Month-end client cost at the month's pace so far, against the limit.
 */
projection: Projection | null, key_state: KeyState | null, key_label: string | null, key_limit_remaining_usd: string | null, 
/**
 * Worst first.
 */
alerts: Array<Alert>, 
/**
 * When the numbers shown were fetched; older than this refresh when the tracker is down.
 */
data_fetched_at: string | null, data_age_seconds: number | null, refreshed_at: string, };
export type LogLine = { stream: number, line: string, };
export type SyncOutcomeStatus = "ok" | "partial" | "error" | "unreachable";
export type SyncOutcome = { client_id: string, 
/**
 * The sync ran and its events reached the console cache.
 */
ok: boolean, status: SyncOutcomeStatus, checked: number | null, confirmed: number | null, corrected: number | null, 
/**
 * Events pulled into the console cache.
 */
pulled: number | null, error: string | null, };
export type SyncProgress = { done: number, total: number, outcome: SyncOutcome, };
export type SecretKind = "open-router" | "tracker-token" | "tracker-read-token";
export type MaskedKey = { client: string, kind: SecretKind, 
/**
 * Absent (`null`) when nothing is stored.
 */
masked: string | null, error: string | null, };
export type Rotation = { client_id: string, at: string, new_label: string, new_hash: string, old_label: string | null, old_hash: string | null, 
/**
 * The old key was disabled on OpenRouter (else `warning` says what to do by hand).
 */
old_disabled: boolean, warning: string | null, 
/**
 * What the operator still has to re-point by hand after a good rotation (the
 * Broadcast destination's API-key filter); empty in records older than it.
 */
follow_up: Array<string>, };
export type PrivacyErasure = { client_id: string, 
/**
 * How the audit log names the person (SHA-256 hex of the id and e-mail asked for).
 */
subject_hash: string, 
/**
 * The random user id the person's usage is now listed under (`erased-…`).
 */
pseudonym: string, 
/**
 * Events changed on the tracker and in the console cache.
 */
tracker_events: number, cache_events: number, 
/**
 * Crash-journal lines of the person the tracker removed.
 */
journal_lines: number, 
/**
 * Both ledger files were rebuilt, so no old copy of the fields is left in them.
 */
compacted: boolean, at: string, 
/**
 * The audit log the action was written to.
 */
audit_log: string, };
export type PrivacyExportResult = { client_id: string, from_cache: boolean, warning: string | null, export: PrivacyExport, 
/**
 * The audit log the action was written to.
 */
audit_log: string, };
export type DayPoint = { date: string, requests: number, tokens: number, raw_cost_usd: string, client_cost_usd: string, };
export type Breakdown = { 
/**
 * The grouping key: user id (else e-mail, else "") or model name.
 */
key: string, label: string, requests: number, tokens: number, prompt_tokens: number, completion_tokens: number, raw_cost_usd: string, client_cost_usd: string, };
export type PlnRate = { available: boolean, rate: string | null, table_no: string | null, effective_date: string | null, 
/**
 * The last known rate, NBP being unreachable now.
 */
stale: boolean, error: string | null, 
/**
 * NBP has not answered yet (the fleet view shows its rows without waiting for it,
 * and asks again shortly); `available` is false.
 */
pending: boolean, };
export type Dashboard = { client_id: string, legal_name: string, 
/**
 * Today's markup rate; days and breakdowns are priced at their own days' rates.
 */
markup: string, 
/**
 * The pull from the tracker succeeded just now (numbers are live).
 */
live: boolean, pull_error: string | null, updated_at: string, today: DayPoint, month_requests: number, month_tokens: number, month_raw_cost_usd: string, month_client_cost_usd: string, daily_average_client_cost_usd: string, monthly_limit_usd: string | null, 
/**
 * The last 30 days, oldest first, zeros included.
 */
days: Array<DayPoint>, by_user: Array<Breakdown>, by_model: Array<Breakdown>, 
/**
 * The month by task kind: `chat` (the users' own messages), each Open WebUI
 * background task (`title_generation`, ...) and `(unknown)` (the chat app did not
 * send `X-Mai-Task`); sums to the month.
 */
by_task: Array<Breakdown>, 
/**
 * Background tasks' share of the client cost of the events whose task is known
 * (0.25 = a quarter), rounded half up to 4 decimals; `null` when no event of the
 * month has a known task.
 */
background_share: string | null, 
/**
 * The month by group set (department), `(no group)` included; sums to the month.
 */
by_group: Array<Breakdown>, 
/**
 * The month's most expensive chats (at most [`TOP_CHATS`]); `(no chat)` is a row
 * when requests came outside any chat.
 */
top_chats: Array<Breakdown>, 
/**
 * How many chats (and the `(no chat)` row) the month has in all.
 */
chat_count: number, pln: PlnRate, };
export type BillingStatus = "provisional" | "ready_to_issue" | "issued" | "missing_data" | "no_usage";
export type TableARate = { 
/**
 * PLN per 1 unit, at NBP's published scale (e.g. `3.9850`).
 */
mid: string, 
/**
 * e.g. `247/A/NBP/2025`.
 */
table_no: string, effective_date: string, };
export type BillingRow = { org_id: string, name: string | null, status: BillingStatus, invoice_number: string | null, 
/**
 * The month's usage as the ledger has it now.
 */
requests: number, raw_cost_usd: string, 
/**
 * Ledger now minus what the issued invoices billed for this month (USD, exact):
 * positive goes onto the next invoice, negative needs a correction invoice.
 */
late_usage_usd: string, 
/**
 * What an invoice still lacks.
 */
missing: Array<string>, 
/**
 * Fees, profit after fees and margins; `None` without an invoice statement (no NBP
 * rate).
 */
profit: BillingProfit | null, 
/**
 * The month's amounts round to 0.00 in the invoice currency: it is not invoiced
 * (status `no_usage`), its usage is carried or waived per the billing file.
 */
zero_amounts: boolean, };
export type BillingProfit = { 
/**
 * The invoice's net value in PLN.
 */
net_pln: string, 
/**
 * Net − OpenRouter cost − hosting, PLN: the profit before fees.
 */
profit_pln: string, 
/**
 * The client's usage goes through the operator's own provider keys (BYOK).
 */
byok: boolean, 
/**
 * All OpenRouter fees of the client's usage (credit purchase + BYOK), USD, exact.
 */
fees_usd: string, 
/**
 * The fees at the invoice's USD rate, rounded once.
 */
fees_pln: string, profit_after_fees_usd: string, 
/**
 * `profit_pln − fees_pln`: what reaches the bank.
 */
profit_after_fees_pln: string, 
/**
 * `profit_pln / net_pln × 100`, 0.01; `None` for a zero net.
 */
margin_before_fees_percent: string | null, 
/**
 * `profit_after_fees_pln / net_pln × 100`, 0.01; `None` for a zero net.
 */
effective_margin_percent: string | null, };
export type BillingTotals = { requests: number, raw_cost_usd: string, client_net_usd: string, profit_usd: string, net_pln: string, vat_pln: string, gross_pln: string, profit_pln: string, late_usage_usd: string, 
/**
 * OpenRouter's fees of the rows; `profit_usd` / `profit_pln` above are before them.
 */
fees_usd: string, fees_pln: string, profit_after_fees_usd: string, profit_after_fees_pln: string, 
/**
 * `profit_pln / net_pln × 100`, 0.01; `None` for a zero net.
 */
margin_before_fees_percent: string | null, 
/**
 * `profit_after_fees_pln / net_pln × 100`, 0.01; `None` for a zero net.
 */
effective_margin_percent: string | null, };
export type BillingReport = { 
/**
 * `YYYY-MM`.
 */
month: string, 
/**
 * The Warsaw day the report was made on.
 */
today: string, 
/**
 * The month has not ended (Warsaw): everything is provisional.
 */
provisional: boolean, 
/**
 * The USD rate rows that are not frozen are converted at.
 */
usd_rate: TableARate | null, 
/**
 * Why there are no PLN figures for rows that are not frozen.
 */
rate_error: string | null, clients: Array<BillingRow>, totals: BillingTotals, 
/**
 * How the month's OpenRouter fee rate was found (recorded purchases, a typical
 * top-up, or the percentage alone), in words.
 */
fees_basis: string, 
/**
 * The last day to issue the month's invoices (VAT Act art. 106i ust. 1).
 */
issue_deadline: string, 
/**
 * Set when invoices are still to be issued and the deadline is near or past.
 */
deadline_warning: string | null, };
export type ExportFormat = "csv" | "pdf" | "ksef";
export type CsvDialect = "polish" | "plain";
export type InvoiceExportRequest = { 
/**
 * `YYYY-MM`.
 */
month: string, format: ExportFormat, 
/**
 * One client (org id), or all when absent or empty.
 */
client?: string | null, 
/**
 * Default: `~/mai-invoices/YYYY-MM`.
 */
out_dir?: string | null, 
/**
 * Only CSV uses it.
 */
dialect: CsvDialect, 
/**
 * Issue date of invoices issued by this export. Default: today in Warsaw.
 */
issue_date?: string | null, 
/**
 * Issue even though the month has usage OpenRouter has not confirmed yet (the
 * invoice lists those events). Without it such an export is refused, naming them.
 */
allow_unconfirmed?: boolean, };
export type ClientExport = { org_id: string, invoice_number: string | null, 
/**
 * Issued by this export (false: issued earlier and rendered again).
 */
newly_issued: boolean, files: Array<string>, 
/**
 * Why the client was not exported (e.g. the missing invoice data).
 */
skipped: string | null, };
export type InvoiceExportResult = { out_dir: string, format: ExportFormat, 
/**
 * Every file written (a CSV export writes one file for all clients).
 */
files: Array<string>, clients: Array<ClientExport>, };
export type ExportProgress = { "event": "started", total: number, } | { "event": "issued", number: string, org_id: string, } | { "event": "wrote", path: string, done: number, total: number, } | { "event": "skipped", org_id: string, reason: string, };
export type KsefEnvironment = "test" | "demo" | "prd" | "custom";
export type KsefInvoiceKind = "VAT" | "KOR";
export type KsefState = { "kind": "not_issued", reason: string, } | { "kind": "prepared" } | { "kind": "sent" } | { "kind": "accepted" } | { "kind": "rejected" };
export type KsefRejection = { 
/**
 * KSeF's invoice status code (430 schema, 440 duplicate, 450 semantic error, ...)
 * or, for a refusal at send time, its `exceptionCode` (21405, ...).
 */
code: number, 
/**
 * KSeF's own description, in Polish as it sent it.
 */
description: string, 
/**
 * KSeF's details (which field, which original KSeF number of a duplicate, ...).
 */
details: Array<string>, 
/**
 * What the operator should do, in English ([`KsefRejection::fix_for`]).
 */
fix: string, };
export type KsefInvoiceRow = { org_id: string, 
/**
 * The buyer's name, as on the invoice.
 */
client_name: string, 
/**
 * The invoice number (`P_2`); `None` while none is issued.
 */
number: string | null, kind: KsefInvoiceKind, 
/**
 * What a correction (`KOR`) corrects: the KSeF number of the corrected invoice.
 */
corrects_ksef_number: string | null, 
/**
 * The corrected invoice's own number, for people (`FV/2026/10/0001`).
 */
corrects_number: string | null, state: KsefState, 
/**
 * Given by KSeF on acceptance (35 characters, `{NIP}-{YYYYMMDD}-{12 hex}-{2 hex}`).
 */
ksef_number: string | null, 
/**
 * When KSeF took the invoice: the legal moment of issue.
 */
acquisition_date: string | null, 
/**
 * Why KSeF refused it (state `rejected`).
 */
rejection: KsefRejection | null, 
/**
 * The last send failed before KSeF decided (network, authentication, KSeF down):
 * what failed and what to do. Sending again is safe.
 */
error: string | null, 
/**
 * The invoice's gross amount in its currency, exact.
 */
gross: string, 
/**
 * ISO 4217 code of the invoice currency (`PLN`, `USD`).
 */
currency: string, 
/**
 * KSeF's receipt (UPO) for this invoice can be downloaded (`ksef_upo`).
 */
upo_available: boolean, };
export type KsefSendPhase = "connecting" | "sending" | "processing" | "receipts" | "done";
export type KsefSendProgress = { 
/**
 * Invoices whose outcome is known (accepted, rejected or failed).
 */
done: number, 
/**
 * Invoices this send handles.
 */
total: number, 
/**
 * The invoice number being handled, if one is.
 */
current: string | null, phase: KsefSendPhase, };
export type KsefSendSummary = { 
/**
 * `YYYY-MM`.
 */
month: string, accepted: number, rejected: number, 
/**
 * The send did not reach KSeF's verdict (row `error` says why); sending again is safe.
 */
failed: number, 
/**
 * Sent, KSeF still processing when the send stopped waiting (or not sent at all);
 * `invoices status` later.
 */
pending: number, 
/**
 * Clients with no invoice to send (row state `not_issued`).
 */
skipped: number, rows: Array<KsefInvoiceRow>, };
export type KsefTokenStatus = { 
/**
 * The seller's NIP (the billing file's), the KSeF context the token is for.
 */
seller_nip: string, environment: KsefEnvironment, 
/**
 * Where invoices are sent (after `KSEF_BASE_URL`).
 */
base_url: string, present: boolean, 
/**
 * `…abcd` when present.
 */
masked: string | null, };
export type NewClient = { 
/**
 * Letters, digits, `-`, `_`; names the containers, keychain entries and invoices.
 */
id: string, legal_name: string, 
/**
 * Polish NIP (check digit verified); required when `country` is PL.
 */
nip: string | null, 
/**
 * A foreign client's VAT id (e.g. `DE123456789`).
 */
vat_id: string | null, 
/**
 * Street and number.
 */
address: string, 
/**
 * Postal code and city.
 */
address_line2: string | null, 
/**
 * Two letters; PL when empty.
 */
country: string | null, 
/**
 * `PLN` (default) or `USD`.
 */
invoice_currency: string | null, 
/**
 * `23` (default), `8`, `5` or `np` (reverse charge).
 */
vat: string | null, invoice_email: string | null, 
/**
 * Decimal text, e.g. `1.3` (the default).
 */
markup: string | null, 
/**
 * Decimal text in USD; none = no limit.
 */
monthly_limit_usd: string | null, };
export type Deployment = { 
/**
 * A `[[hosts]]` name of the fleet file.
 */
host: string, 
/**
 * Host port the tracker is published on (the console's way in).
 */
tracker_port: number, 
/**
 * Host port the chat app is published on (the users' way in, usually behind a
 * TLS reverse proxy).
 */
chat_port: number, 
/**
 * Host address both ports are published on; `127.0.0.1` when empty (required for
 * a host that is not the local engine). Off loopback the tracker serves HTTPS with
 * a pinned certificate.
 */
publish_address: string | null, 
/**
 * The chat app's image, already on the host; the Open WebUI image when empty.
 */
chat_image: string | null, 
/**
 * The tracker's image, already on the host (deploy/build-images.sh).
 */
tracker_image: string | null, 
/**
 * Open WebUI signs who asked (HS256 JWT) and the tracker refuses unsigned spending.
 */
signed_identity: boolean, 
/**
 * OpenRouter's API base as the tracker container reaches it; the fleet file's
 * `[openrouter] base_url` when empty.
 */
tracker_openrouter_url: string | null, 
/**
 * Swarm placement constraints of the client's services (`node.hostname==x`,
 * `node.labels.zone==a`); only on a `mode = "swarm"` host, empty: anywhere.
 */
placement: Array<string>, };
export type OnboardRequest = { client: NewClient, deploy: Deployment, };
export type FieldError = { field: string, message: string, };
export type LifecycleStep = "validate" | "preflight" | "create_key" | "store_secrets" | "create_network" | "create_volumes" | "start_tracker" | "start_chat" | "wait_healthy" | "probe" | "push_terms" | "write_fleet" | "undo_containers" | "undo_network" | "undo_volumes" | "undo_key" | "undo_secrets" | "final_sync" | "billing_check" | "disable_key" | "stop_containers" | "export_ledger" | "archive_volume" | "remove_containers" | "remove_network" | "remove_volumes" | "forget_secrets" | "mark_offboarded";
export type StepState = "started" | "done" | "warning" | "failed" | "skipped";
export type LifecycleProgress = { client_id: string, step: LifecycleStep, state: StepState, detail: string | null, 
/**
 * Milliseconds since the action started.
 */
elapsed_ms: number, };
export type OnboardResult = { client_id: string, host: string, tracker_url: string, 
/**
 * The chat app's published address (users reach it here or behind a proxy).
 */
chat_url: string, tracker_container: string, chat_container: string, network: string, volumes: Array<string>, 
/**
 * The new OpenRouter key, masked (`sk-or-v1-…abcd`), and its hash.
 */
key_label: string, key_hash: string, key_name: string, 
/**
 * The key's monthly cap in USD (the limit divided by today's markup), if any.
 */
key_limit_usd: string | null, signed_identity: boolean, 
/**
 * The probe request's generation, as the tracker metered it.
 */
probe_generation_id: string, fleet_path: string, audit_log: string, elapsed_ms: number, };
export type BillingMonthCheck = { 
/**
 * `YYYY-MM`.
 */
month: string, row: BillingRow | null, note: string | null, };
export type OffboardCheck = { client_id: string, legal_name: string, host: string, 
/**
 * Set when the client is already offboarded (nothing left to do).
 */
offboarded: string | null, 
/**
 * This month and the previous one.
 */
billing: Array<BillingMonthCheck>, containers: Array<string>, networks: Array<string>, volumes: Array<string>, 
/**
 * The OpenRouter key that will be disabled (masked), if the keychain holds one.
 */
key_label: string | null, 
/**
 * Where the ledger export and the volume archive will be written.
 */
archive_dir: string, warnings: Array<string>, };
export type OffboardResult = { client_id: string, offboarded_on: string, billing: Array<BillingMonthCheck>, key_disabled: boolean, removed_containers: Array<string>, removed_networks: Array<string>, removed_volumes: Array<string>, 
/**
 * The tracker's ledger, a consistent SQLite copy (`VACUUM INTO`).
 */
ledger_export: string | null, ledger_events: number, ledger_raw_cost_usd: string, 
/**
 * The tracker's whole data volume, tar.gz.
 */
archive: string | null, archive_bytes: number, warnings: Array<string>, audit_log: string, elapsed_ms: number, };
export type ClientField = "markup" | "markup_from" | "monthly_limit_usd" | "legal_name" | "nip" | "vat_id" | "address" | "address_line2" | "country" | "invoice_currency" | "vat" | "invoice_lines" | "hosting_eur" | "invoice_email" | "tracker_image" | "chat_image";
export type MarkupChange = { 
/**
 * Decimal text, e.g. `"1.4"` (+40%).
 */
rate: string, 
/**
 * `YYYY-MM-DD`: the first day priced at `rate`.
 */
from: string, };
export type FieldValue = { field: ClientField, value: string, };
export type ClientChange = { markup?: MarkupChange | null, 
/**
 * Decimal text in USD of client cost per month; `"none"` removes the limit.
 */
monthly_limit_usd?: string | null, invoice: Array<FieldValue>, };
export type ChangeFieldError = { field: ClientField, message: string, };
export type FieldChange = { field: ClientField, old: string | null, new: string | null, };
export type ApplyState = "done" | "not_needed" | "failed";
export type ChangeReport = { client_id: string, 
/**
 * Every fact changed, old → new (also in the audit log).
 */
changes: Array<FieldChange>, 
/**
 * The OpenRouter key's cap (PATCH /keys/{hash}), the limit's enforcer.
 */
openrouter_key: ApplyState, 
/**
 * The key's new cap in USD of OpenRouter cost (limit / today's markup), when set.
 */
key_limit_usd: string | null, 
/**
 * The fleet file, always written when anything changed.
 */
fleet_file: ApplyState, 
/**
 * The tracker's copy of the terms (markup and limit, `PUT /api/v1/admin/terms`).
 */
tracker: ApplyState, 
/**
 * What went wrong after the change was made, and what to do.
 */
warnings: Array<string>, 
/**
 * The audit log the change was written to.
 */
audit_log: string, };
export type ChangeCheck = { errors: Array<ChangeFieldError>, changes: Array<FieldChange>, 
/**
 * What applying it would also do or mean (a repriced open month, a key cap to
 * follow a future markup).
 */
warnings: Array<string>, };
export type ClientFacts = { client_id: string, terms: CommercialTerms, 
/**
 * Every invoice field, as the file writes it (empty when not set).
 */
invoice: Array<FieldValue>, 
/**
 * The latest month with an issued invoice (`YYYY-MM`): a markup change must start
 * after it.
 */
last_invoiced_month: string | null, };
export type AuditAction = "client_change" | "image_update" | "privacy_erase" | "privacy_export" | "backup" | "backup_restore" | "other";
export type AuditOutcome = "ok" | "partial" | "failed" | "started" | "rolled_back";
export type HistoryEntry = { at: string, 
/**
 * The OS user who did it.
 */
actor: string, action: AuditAction, outcome: AuditOutcome, 
/**
 * Facts changed, old → new (empty for actions that change none, e.g. an export).
 */
changes: Array<FieldChange>, error: string | null, };
export type UpdatePlan = { 
/**
 * The trackers' new image (`name:tag` or an image id) as the hosts have it; no
 * registry is asked. Absent: trackers are left as they are.
 */
tracker_image?: string | null, 
/**
 * The chat apps' new image. Absent: chat containers are left as they are.
 */
chat_image?: string | null, 
/**
 * Clients updated at once after the canary (1 to 32).
 */
parallelism: number, 
/**
 * Longest wait for one client's health gate, in ms.
 */
gate_timeout_ms: number, 
/**
 * Only these clients (ids); empty = every client of the fleet file.
 */
clients: Array<string>, 
/**
 * The client updated first, alone; default: the first one that needs the update.
 */
canary?: string | null, };
export type TargetState = "update" | "up_to_date" | "no_container" | "image_missing" | "host_error";
export type ImageTarget = { role: ContainerRole, container: string | null, 
/**
 * The image the container was created from, as named then (`name:tag`).
 */
current_image: string | null, 
/**
 * Its image id (`sha256:…`).
 */
current_id: string | null, target_image: string, target_id: string | null, state: TargetState, detail: string | null, };
export type ClientUpdatePreview = { client_id: string, host: string, targets: Array<ImageTarget>, };
export type UpdatePreview = { clients: Array<ClientUpdatePreview>, 
/**
 * The client that will be updated first.
 */
canary: string | null, };
export type GateCheck = "tracker_ready" | "probe_metered" | "chat_healthy";
export type GateResult = { check: GateCheck, passed: boolean, detail: string, elapsed_ms: number, };
export type UpdatePhase = "waiting" | "recreating" | "gating" | "rolling_back" | "done";
export type ClientOutcome = "updated" | "rolled_back" | "skipped" | "failed";
export type ClientUpdateResult = { client_id: string, outcome: ClientOutcome, canary: boolean, 
/**
 * The images before and after, per recreated container.
 */
changes: Array<FieldChange>, gate: Array<GateResult>, detail: string, elapsed_ms: number, };
export type UpdateSummary = { updated: number, rolled_back: number, skipped: number, failed: number, canary: string | null, 
/**
 * Why the rollout stopped before every client (a failed canary).
 */
stopped: string | null, clients: Array<ClientUpdateResult>, elapsed_ms: number, };
export type UpdateProgress = { "event": "planned", preview: UpdatePreview, } | { "event": "phase", client_id: string, phase: UpdatePhase, detail: string, } | { "event": "gate", client_id: string, result: GateResult, } | { "event": "finished", result: ClientUpdateResult, };
export type BackupKind = "tracker" | "rebuilt";
export type MonthTotals = { 
/**
 * `YYYY-MM`.
 */
month: string, events: number, cost_usd: string, };
export type BackupManifest = { client_id: string, 
/**
 * The org of the ledger's events (the tracker's `MAI_ORG_ID`).
 */
org_id: string, kind: BackupKind, 
/**
 * The backup's file name (in the same folder as this manifest).
 */
file: string, 
/**
 * Full path of the backup file (as found when listed).
 */
path: string, taken_at: string, 
/**
 * SHA-256, lower-case hex, of the file.
 */
sha256: string, size_bytes: number, events: number, cost_usd: string, 
/**
 * Per month, oldest first.
 */
months: Array<MonthTotals>, };
export type ClientBackups = { client_id: string, 
/**
 * `<dir>/<client>`, `None` when the fleet file has no `[backup]`.
 */
dir: string | null, 
/**
 * Newest first.
 */
backups: Array<BackupManifest>, 
/**
 * The schedule (`[backup] every`, seconds), `None`: on demand only.
 */
every_seconds: number | null, keep: number, 
/**
 * Files in the folder that are not usable backups (no or unreadable manifest).
 */
problems: Array<string>, 
/**
 * This month on the tracker against the console cache (the console asks; `maictl
 * backup list` does not): how a lost or replaced ledger shows before a restore.
 */
ledger: LedgerCheck | null, };
export type LedgerCheck = { 
/**
 * `YYYY-MM` (Warsaw).
 */
month: string, 
/**
 * `None` when the tracker did not answer (`tracker_error` says why).
 */
tracker_events: number | null, tracker_cost_usd: string | null, tracker_error: string | null, cache_events: number, cache_cost_usd: string, };
export type BackupOutcome = { client_id: string, manifest: BackupManifest | null, 
/**
 * What failed and what to do; `None` on success.
 */
error: string | null, 
/**
 * Older backups deleted by the retention (`keep`).
 */
pruned: Array<string>, };
export type RestoreResult = { client_id: string, file: string, sha256: string, 
/**
 * Events the tracker holds now.
 */
events: number, restored_at: string, 
/**
 * Events taken from the console cache because the backup lacks them (usage after
 * the backup was taken, pulled before the ledger was lost); 0 without `with_cache`.
 */
from_cache: number, };
export type DaySource = "cache" | "activity" | "cache_unverified" | "unrecoverable";
export type RebuildDay = { date: string, source: DaySource, 
/**
 * Events taken from the cache.
 */
cached_events: number, cached_usd: string, 
/**
 * Requests and cost added from `/activity` (as aggregate events).
 */
activity_requests: number, activity_usd: string, };
export type RebuildReport = { client_id: string, from: string, to: string, 
/**
 * Days, oldest first.
 */
days: Array<RebuildDay>, 
/**
 * The days that could not be recovered (a summary of `days`).
 */
unrecoverable: Array<string>, 
/**
 * Why `/activity` could not be asked, if it could not (then every day is cache-only).
 */
activity_error: string | null, manifest: BackupManifest, };
export type AlertKind = "limit_warning" | "limit_reached" | "key_limit" | "tracker_unreachable" | "chat_container" | "tracker_container" | "drift" | "reconciliation" | "nbp_stale" | "ksef_rejected";
export type ActiveAlert = { 
/**
 * Stable: `<kind>:<client>` (or `<kind>`); what ack and mute take.
 */
id: string, kind: AlertKind, severity: AlertLevel, 
/**
 * The client's id; `null` for a fleet-wide alert (the NBP rate).
 */
client: string | null, 
/**
 * What is wrong and what to do.
 */
message: string, 
/**
 * When this alert was first raised (since it last cleared).
 */
first_seen: string, 
/**
 * Seconds since `first_seen`, at the evaluation that produced this view.
 */
age_seconds: number, 
/**
 * Acknowledged by the operator; stays so until the alert clears.
 */
acked: boolean, 
/**
 * Muted until then (no notification, webhook or exit code while muted).
 */
muted_until: string | null, 
/**
 * When the cause went away (cleared alerts only).
 */
cleared_at: string | null, };
export type AlertsView = { 
/**
 * Worst first, then oldest first.
 */
active: Array<ActiveAlert>, 
/**
 * Recently cleared, newest first (at most 50).
 */
cleared: Array<ActiveAlert>, 
/**
 * Active alerts needing attention (not acknowledged, not muted) per client id: the
 * count a fleet row shows. Fleet-wide alerts are not in it.
 */
attention_by_client: { [key in string]: number }, 
/**
 * Active alerts needing attention, fleet-wide ones included: the nav badge.
 */
attention: number, 
/**
 * The evaluation this view comes from; `null` before the first refresh.
 */
evaluated_at: string | null, };
export type MuteRequest = { id: string, seconds: number, };
export type Projection = { 
/**
 * Client cost (USD) of the Warsaw month so far.
 */
month_to_date_usd: string, 
/**
 * Month-end client cost at the pace so far, USD rounded half up to 6 decimals;
 * `null` at the very first instant of the month (no pace yet).
 */
projected_usd: string | null, monthly_limit_usd: string | null, 
/**
 * `projected / limit × 100`, two decimals; `null` without a limit, a zero limit or a
 * projection.
 */
projected_percent_of_limit: string | null, 
/**
 * The limit is already used up (a zero limit with any spend included).
 */
limit_reached: boolean, 
/**
 * The Warsaw day the limit will be reached at the pace so far, when that falls in
 * this month and the limit is not reached yet.
 */
exceeds_on: string | null, };
export type UsdPln = { usd: string, pln: string | null, };
export type AccountCredits = { available: boolean, total_credits_usd: string | null, total_usage_usd: string | null, 
/**
 * `total_credits − total_usage` (OpenRouter has no balance field).
 */
remaining_usd: string | null, 
/**
 * Why there are no credits figures (no management key, OpenRouter's answer, ...).
 */
error: string | null, 
/**
 * OpenRouter has not answered yet (the fleet view shows its rows without waiting
 * for it, and asks again shortly); `available` is false.
 */
pending: boolean, };
export type FleetTotals = { 
/**
 * The Warsaw day "today" means.
 */
day: string, 
/**
 * `YYYY-MM`, the Warsaw month "month to date" means.
 */
month: string, clients: number, 
/**
 * Clients whose numbers are summed (the others have none yet or a pricing error).
 */
clients_counted: number, 
/**
 * Client ids left out of the sums.
 */
missing: Array<string>, today_client_cost: UsdPln, today_openrouter_cost: UsdPln, today_profit: UsdPln, month_client_cost: UsdPln, month_openrouter_cost: UsdPln, month_profit: UsdPln, 
/**
 * The display rate used for every `pln` above (NBP table C ask, date, stale flag).
 */
pln: PlnRate, credits: AccountCredits, 
/**
 * The fleet's month-end client cost at its pace so far; its limit is the sum of the
 * clients' limits when every counted client has one.
 */
projection: Projection, };
export type FleetOverview = { rows: Array<FleetRow>, totals: FleetTotals, };
export type UsageExportKind = "events" | "daily";
export type UsageExportFormat = "csv" | "json";
export type UsageExportRequest = { client: string, 
/**
 * `YYYY-MM` (Warsaw month).
 */
month: string, kind: UsageExportKind, format: UsageExportFormat, 
/**
 * The file to write (the user picked it). Default:
 * `~/mai-usage/<client>-<YYYY-MM>-<kind>.<csv|json>`.
 */
path?: string | null, };
export type UsageExportResult = { client: string, month: string, kind: UsageExportKind, format: UsageExportFormat, path: string | null, rows: number, 
/**
 * Sum of the rows' raw (OpenRouter) cost, exact.
 */
raw_cost_usd: string, 
/**
 * Sum of the rows' client cost, exact.
 */
client_cost_usd: string, 
/**
 * The tracker could not be asked for new events first: the export is what the
 * console cache held.
 */
pull_error: string | null, };
export type UsageExportProgress = { client: string, done: number, total: number, };
