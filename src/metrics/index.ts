export {
  DROPPED_DEFAULT_METRICS,
  INSTANCE_LABEL,
  METRIC_DEFS,
  METRIC_PREFIX,
  VRRP_STATES,
  createMetricsRegistry,
  realServerId,
  virtualServerId,
  type CheckExtras,
  type MetricDef,
  type MetricsExtras,
  type MetricsRegistryOptions,
  type MetricsSnapshot,
  type MetricsSource,
  type ReloadExtras,
  type SyncExtras,
  type VrrpInstanceExtras,
} from './registry.js';
export { METRICS_PATH, STATUS_JSON_PATH, STATUS_PAGE_PATH, formatListen, startMetricsServer, type MetricsServer, type MetricsServerOptions } from './server.js';
export { STATUS_PAGE_REFRESH_S, statusPageHtml } from './status-page.js';
