// Typed IPC with the console's Rust side. Every type crossing it is generated from
// crates/mai-wire into ./wire.ts (a stale file fails `cargo test`), so the commands,
// their arguments and the events below can only be used as Rust defines them.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type {
  AppInfo, BillingReport, ContainerInfo, ContainerRole, Dashboard, ExportProgress, FleetRow, InvoiceExportRequest,
  InvoiceExportResult, KsefInvoiceRow, KsefSendProgress, KsefSendSummary, KsefTokenStatus, LogLine, MaskedKey,
  PrivacyErasure, PrivacyExportResult, Rotation, SecretKind, SyncOutcome, SyncProgress, UpdateCheck,
} from './wire';
import type {
  FieldError, LifecycleProgress, OffboardCheck, OffboardResult, OnboardRequest, OnboardResult,
} from './wire';
import type { AlertsView, MuteRequest } from './wire';
import type { BackupOutcome, ClientBackups, RebuildReport, RestoreResult } from './wire';
import type { FleetOverview, UsageExportProgress, UsageExportRequest, UsageExportResult } from './wire';
import type {
  ChangeCheck, ChangeReport, ClientChange, ClientFacts, HistoryEntry, UpdatePlan, UpdatePreview, UpdateProgress,
  UpdateSummary,
} from './wire';

export const api = {
  appInfo: () => invoke<AppInfo>('app_info'),
  fleetStatus: () => invoke<FleetRow[]>('fleet_status'),
  // The fleet table and its totals (today, month to date, PLN, credits, projections).
  fleetOverview: () => invoke<FleetOverview>('fleet_overview'),
  // One client's month of usage as CSV or JSON, to a file; progress events below.
  usageExport: (request: UsageExportRequest) => invoke<UsageExportResult>('usage_export', { request }),
  dashboard: (clientId: string) => invoke<Dashboard>('client_dashboard', { clientId }),
  sync: (clientIds: string[]) => invoke<SyncOutcome[]>('sync_clients', { clientIds }),
  restart: (clientId: string, role: ContainerRole = 'chat') => invoke<ContainerInfo>('restart_container', { clientId, role }),
  logsStart: (clientId: string, role: ContainerRole = 'chat') => invoke<number>('logs_start', { clientId, role }),
  logsStop: (stream: number) => invoke<void>('logs_stop', { stream }),
  keysList: () => invoke<MaskedKey[]>('keys_list'),
  keySet: (clientId: string, kind: SecretKind, secret: string) => invoke<string>('key_set', { clientId, kind, secret }),
  keyDelete: (clientId: string, kind: SecretKind) => invoke<void>('key_delete', { clientId, kind }),
  keyRotate: (clientId: string) => invoke<Rotation>('key_rotate', { clientId }),
  // GDPR: one person of one client, by Open WebUI user id and/or e-mail; audited.
  privacyExport: (clientId: string, userId: string | null, email: string | null) =>
    invoke<PrivacyExportResult>('privacy_export', { clientId, userId, email }),
  privacyErase: (clientId: string, userId: string | null, email: string | null) =>
    invoke<PrivacyErasure>('privacy_erase', { clientId, userId, email }),
  checkUpdate: () => invoke<UpdateCheck>('check_update'),
  firstPaint: (rows: number) => invoke<number>('first_paint', { rows }),
  billingReport: (month: string) => invoke<BillingReport>('billing_report', { month }),
  billingExport: (request: InvoiceExportRequest) => invoke<InvoiceExportResult>('billing_export', { request }),
  // KSeF: the month's invoices in KSeF, sending them, their receipts, and the seller's token
  // (it crosses once, to the keychain; only its mask comes back).
  ksefStatus: (month: string) => invoke<KsefInvoiceRow[]>('ksef_status', { month }),
  ksefSend: (month: string, clientId: string | null) => invoke<KsefSendSummary>('ksef_send', { month, clientId }),
  ksefUpo: (month: string, ksefNumber: string, outDir: string | null) =>
    invoke<string>('ksef_upo', { month, ksefNumber, outDir }),
  ksefTokenStatus: () => invoke<KsefTokenStatus>('ksef_token_status'),
  ksefTokenSet: (token: string) => invoke<KsefTokenStatus>('ksef_token_set', { token }),
  ksefTokenDelete: () => invoke<KsefTokenStatus>('ksef_token_delete'),
  // A client's life cycle (issue 13): onboarding and offboarding, with progress events.
  fleetHosts: () => invoke<string[]>('fleet_hosts'),
  onboardValidate: (request: OnboardRequest) => invoke<FieldError[]>('onboard_validate', { request }),
  onboardClient: (request: OnboardRequest) => invoke<OnboardResult>('onboard_client', { request }),
  offboardCheck: (clientId: string) => invoke<OffboardCheck>('offboard_check', { clientId }),
  offboardClient: (clientId: string) => invoke<OffboardResult>('offboard_client', { clientId }),
  // Changing a client (validated per field, audited) and its audit history.
  clientFacts: (clientId: string) => invoke<ClientFacts>('client_facts', { clientId }),
  clientChangeCheck: (clientId: string, change: ClientChange) => invoke<ChangeCheck>('client_change_check', { clientId, change }),
  clientChange: (clientId: string, change: ClientChange) => invoke<ChangeReport>('client_change', { clientId, change }),
  clientHistory: (clientId: string) => invoke<HistoryEntry[]>('client_history', { clientId }),
  // The fleet's images: preview, then the update with its progress events.
  fleetUpdatePreview: (plan: UpdatePlan) => invoke<UpdatePreview>('fleet_update_preview', { plan }),
  fleetUpdate: (plan: UpdatePlan) => invoke<UpdateSummary>('fleet_update', { plan }),
  // Alerts (issue 14): as the last refresh left them; ack until cleared, mute for a period.
  alertsList: () => invoke<AlertsView>('alerts_list'),
  alertAck: (id: string) => invoke<AlertsView>('alert_ack', { id }),
  alertMute: (request: MuteRequest) => invoke<AlertsView>('alert_mute', { request }),
  // Ledger backups (issue 14): list, back up now, restore onto a new tracker, rebuild.
  backupList: (clientId: string) => invoke<ClientBackups>('backup_list', { clientId }),
  backupNow: (clientId: string) => invoke<BackupOutcome>('backup_now', { clientId }),
  backupRestore: (clientId: string, file: string, withCache: boolean) =>
    invoke<RestoreResult>('backup_restore', { clientId, file, withCache }),
  backupRebuild: (clientId: string, month: string | null) => invoke<RebuildReport>('backup_rebuild', { clientId, month }),
};

/** `backup-progress`: [client, bytes so far, total bytes] of a running backup. */
export function onBackupProgress(cb: (p: [string, number, number]) => void): Promise<UnlistenFn> {
  return listen<[string, number, number]>('backup-progress', (e) => cb(e.payload));
}

export function onSyncProgress(cb: (p: SyncProgress) => void): Promise<UnlistenFn> {
  return listen<SyncProgress>('sync-progress', (e) => cb(e.payload));
}
export function onExportProgress(cb: (p: ExportProgress) => void): Promise<UnlistenFn> {
  return listen<ExportProgress>('billing-export-progress', (e) => cb(e.payload));
}
export function onKsefSendProgress(cb: (p: KsefSendProgress) => void): Promise<UnlistenFn> {
  return listen<KsefSendProgress>('ksef-send-progress', (e) => cb(e.payload));
}
export function onOnboardProgress(cb: (p: LifecycleProgress) => void): Promise<UnlistenFn> {
  return listen<LifecycleProgress>('onboard-progress', (e) => cb(e.payload));
}
export function onOffboardProgress(cb: (p: LifecycleProgress) => void): Promise<UnlistenFn> {
  return listen<LifecycleProgress>('offboard-progress', (e) => cb(e.payload));
}
export function onUpdateProgress(cb: (p: UpdateProgress) => void): Promise<UnlistenFn> {
  return listen<UpdateProgress>('fleet-update-progress', (e) => cb(e.payload));
}
export function onAlertsChanged(cb: (v: AlertsView) => void): Promise<UnlistenFn> {
  return listen<AlertsView>('alerts-changed', (e) => cb(e.payload));
}
export function onUsageExportProgress(cb: (p: UsageExportProgress) => void): Promise<UnlistenFn> {
  return listen<UsageExportProgress>('usage-export-progress', (e) => cb(e.payload));
}
export function onLogLine(cb: (p: LogLine) => void): Promise<UnlistenFn> {
  return listen<LogLine>('log-line', (e) => cb(e.payload));
}

export function errorText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return JSON.stringify(e);
}
