import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { Rate } from './format';

export interface ContainerInfo {
  id: string; name: string; client: string; role: string; image: string; version: string | null;
  state: string; health: string | null; started_at: string | null; restart_count: number | null;
}
export interface Alert { level: 'info' | 'warning' | 'critical'; message: string }
export interface LimitView { monthly_limit_usd: string; used_usd: string; percent_used: string; level: string }
export interface FleetRow {
  client_id: string; legal_name: string; host: string; markup: string;
  container: ContainerInfo | null; tracker_container: ContainerInfo | null; docker_error: string | null;
  uptime_seconds: number | null; tracker_reachable: boolean; tracker_error: string | null;
  tracker_version: string | null; last_sync_state: string; last_sync_at: string | null; last_sync_error: string | null;
  today_requests: number | null; today_tokens: number | null; today_raw_cost_usd: string | null;
  today_client_cost_usd: string | null; month_client_cost_usd: string | null; limit: LimitView | null;
  key_state: string | null; key_label: string | null; key_limit_remaining_usd: string | null;
  alerts: Alert[]; data_fetched_at: string | null; data_age_seconds: number | null; refreshed_at: string;
}
export interface DayPoint { date: string; requests: number; tokens: number; raw_cost_usd: string; client_cost_usd: string }
export interface Breakdown {
  key: string; label: string; requests: number; tokens: number; prompt_tokens: number; completion_tokens: number;
  raw_cost_usd: string; client_cost_usd: string;
}
export interface Dashboard {
  client_id: string; legal_name: string; markup: string; live: boolean; pull_error: string | null; updated_at: string;
  today: DayPoint; month_requests: number; month_tokens: number; month_raw_cost_usd: string; month_client_cost_usd: string;
  daily_average_client_cost_usd: string; monthly_limit_usd: string | null; days: DayPoint[];
  by_user: Breakdown[]; by_model: Breakdown[]; pln: Rate;
}
export interface SyncOutcome {
  client_id: string; ok: boolean; status: string; checked: number | null; confirmed: number | null;
  corrected: number | null; pulled: number | null; error: string | null;
}
export interface SyncProgress { done: number; total: number; outcome: SyncOutcome }
export interface MaskedKey { client: string; kind: 'open-router' | 'tracker-token'; masked: string | null; error: string | null }
export interface AppInfo {
  version: string; fleet_path: string | null; load_error: string | null; keychain_error: string | null;
  clients: { id: string; legal_name: string }[]; update_endpoint: string | null; billing_available: boolean;
}
export interface UpdateCheck { available: boolean; version: string | null; notes: string | null; current: string; error: string | null }
export interface BillingReport {
  month: string; today: string; provisional: boolean;
  rates: { usd: { mid: string; table_no: string; effective_date: string } | null } | null;
  rate_error: string | null;
  clients: { org_id: string; name: string | null; status: string; invoice_number: string | null;
    usage: { requests: number; cost_usd: string }; late_usage_usd: string; missing: string[] }[];
  totals: { requests: number; raw_cost_usd: string; client_net_usd: string; profit_usd: string; net_pln: string;
    vat_pln: string; gross_pln: string; profit_pln: string; late_usage_usd: string };
}
export type ExportFormat = 'csv' | 'pdf' | 'ksef';
export interface InvoiceExportRequest {
  month: string; format: ExportFormat; client: string | null; out_dir: string | null; dialect?: 'polish' | 'plain';
}
export interface ClientExport {
  org_id: string; invoice_number: string | null; newly_issued: boolean; files: string[]; skipped: string | null;
}
export interface InvoiceExportResult { out_dir: string; format: ExportFormat; files: string[]; clients: ClientExport[] }
/** mai-billing's ExportProgress. */
export type ExportProgress =
  | { event: 'started'; total: number }
  | { event: 'issued'; number: string; org_id: string }
  | { event: 'wrote'; path: string; done: number; total: number }
  | { event: 'skipped'; org_id: string; reason: string };
export interface Rotation { client_id: string; at: string; new_label: string; old_label: string | null; old_disabled: boolean; warning: string | null }

export const api = {
  appInfo: () => invoke<AppInfo>('app_info'),
  fleetStatus: () => invoke<FleetRow[]>('fleet_status'),
  dashboard: (clientId: string) => invoke<Dashboard>('client_dashboard', { clientId }),
  sync: (clientIds: string[]) => invoke<SyncOutcome[]>('sync_clients', { clientIds }),
  restart: (clientId: string, role = 'chat') => invoke<ContainerInfo>('restart_container', { clientId, role }),
  logsStart: (clientId: string, role = 'chat') => invoke<number>('logs_start', { clientId, role }),
  logsStop: (stream: number) => invoke<void>('logs_stop', { stream }),
  keysList: () => invoke<MaskedKey[]>('keys_list'),
  keySet: (clientId: string, kind: MaskedKey['kind'], secret: string) => invoke<string>('key_set', { clientId, kind, secret }),
  keyDelete: (clientId: string, kind: MaskedKey['kind']) => invoke<void>('key_delete', { clientId, kind }),
  keyRotate: (clientId: string) => invoke<Rotation>('key_rotate', { clientId }),
  checkUpdate: () => invoke<UpdateCheck>('check_update'),
  firstPaint: (rows: number) => invoke<number>('first_paint', { rows }),
  billingReport: (month: string) => invoke<BillingReport>('billing_report', { month }),
  billingExport: (request: InvoiceExportRequest) => invoke<InvoiceExportResult>('billing_export', { request }),
};

export function onSyncProgress(cb: (p: SyncProgress) => void): Promise<UnlistenFn> {
  return listen<SyncProgress>('sync-progress', (e) => cb(e.payload));
}
export function onExportProgress(cb: (p: ExportProgress) => void): Promise<UnlistenFn> {
  return listen<ExportProgress>('billing-export-progress', (e) => cb(e.payload));
}
export function onLogLine(cb: (p: { stream: number; line: string }) => void): Promise<UnlistenFn> {
  return listen<{ stream: number; line: string }>('log-line', (e) => cb(e.payload));
}

export function errorText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return JSON.stringify(e);
}
