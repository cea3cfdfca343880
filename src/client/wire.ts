/**
 * The wire contract as the SDK uses it: method definitions loaded from proto/ next to this
 * package, and the decoded shapes (proto-loader with keepCase, longs as numbers, defaults).
 */
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

const PROTO_DIR = fileURLToPath(new URL("../../proto/", import.meta.url));

const definition = protoLoader.loadSync(["fila/v1/service.proto", "fila/v1/admin.proto"], {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

export type Method = protoLoader.MethodDefinition<object, object>;

export function method(service: "FilaService" | "FilaAdmin", name: string): Method {
  const svc = definition[`fila.v1.${service}`] as protoLoader.ServiceDefinition;
  const m = svc?.[name];
  if (!m) throw new Error(`fila.v1.${service}/${name} is not in the proto files`);
  return m as Method;
}

export interface WireMessage {
  id: string;
  headers: Record<string, string>;
  payload: Uint8Array;
  metadata: {
    fairness_key: string;
    weight: number;
    throttle_keys: string[];
    attempt_count: number;
    queue_id: string;
  } | null;
}

export interface WireConsumeResponse {
  message: WireMessage | null;
  messages: WireMessage[];
}

export interface WireItemError {
  code: number;
  message: string;
}

export interface WireEnqueueRequest {
  queue: string;
  headers: Record<string, string>;
  payload: Uint8Array;
}

export interface WireSettleRequest {
  queue: string;
  message_id: string;
  error?: string;
}

export interface WireStats {
  depth: number;
  in_flight: number;
  active_fairness_keys: number;
  active_consumers: number;
  quantum: number;
  per_key_stats: {
    key: string;
    pending_count: number;
    current_deficit: number;
    weight: number;
    delivered_count: number;
  }[];
  per_throttle_stats: { key: string; tokens: number; rate_per_second: number; burst: number }[];
  leader_node_id: number;
  replication_count: number;
  pending: number;
  delayed: number;
}
