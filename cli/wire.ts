/**
 * Shapes of the fila.v1 messages the CLI reads, as decoded by proto-loader with `keepCase`,
 * `longs: Number` and `defaults: true` (so every field is present).
 */

export interface QueueInfo {
  name: string;
  depth: number;
  in_flight: number;
  active_consumers: number;
}

export interface ListQueuesResponse {
  queues: QueueInfo[];
}

export interface PerFairnessKeyStats {
  key: string;
  pending_count: number;
  current_deficit: number;
  weight: number;
  delivered_count: number;
  /** Additions (docs/wire-additions.md); absent from older brokers. */
  recent_share?: number;
  fair_share?: number;
}

export interface PerThrottleKeyStats {
  key: string;
  tokens: number;
  rate_per_second: number;
  burst: number;
}

export interface GetStatsResponse {
  depth: number;
  in_flight: number;
  active_fairness_keys: number;
  active_consumers: number;
  quantum: number;
  pending: number;
  delayed: number;
  per_key_stats: PerFairnessKeyStats[];
  per_throttle_stats: PerThrottleKeyStats[];
}

export interface ConfigEntry {
  key: string;
  value: string;
}

export interface GetConfigResponse {
  value: string;
}

export interface ListConfigResponse {
  entries: ConfigEntry[];
}

export interface RedriveResponse {
  redriven: number;
}

export interface CreateApiKeyResponse {
  key_id: string;
  key: string;
  is_superadmin: boolean;
}

export interface ApiKeyInfo {
  key_id: string;
  name: string;
  created_at_ms: number;
  expires_at_ms: number;
  is_superadmin: boolean;
}

export interface ListApiKeysResponse {
  keys: ApiKeyInfo[];
}

export interface AclPermission {
  kind: string;
  pattern: string;
}

export interface GetAclResponse {
  key_id: string;
  permissions: AclPermission[];
  is_superadmin: boolean;
}

export interface QueueConfig {
  on_enqueue_script: string;
  on_failure_script: string;
  visibility_timeout_ms: number;
  fairness_key_header: string;
  weight_header: string;
  throttle_key_headers: string[];
}

export interface DeliveredMessage {
  id: string;
  metadata: { fairness_key: string } | null;
}

export interface ConsumeResponse {
  message: DeliveredMessage | null;
}
