/**
 * Loads the wire contract from proto/ and exposes the protobufjs types the edge encodes and
 * decodes with. Only src/server and src/wire see these types.
 */
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";

/** Root directory of the .proto files. */
export const PROTO_DIR = fileURLToPath(new URL("../../proto/", import.meta.url));
export const PROTO_FILES = [
  "fila/v1/messages.proto",
  "fila/v1/service.proto",
  "fila/v1/admin.proto",
  "grpc/health/v1/health.proto",
];

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    // google/protobuf/* come from protobufjs's bundled common definitions.
    if (target.startsWith("google/protobuf/")) return target;
    return PROTO_DIR + target;
  };
  root.loadSync(PROTO_FILES);
  root.resolveAll();
  return root;
}

export const root: protobuf.Root = loadRoot();

export function type(name: string): protobuf.Type {
  return root.lookupType(name);
}

export function service(name: string): protobuf.Service {
  return root.lookupService(name);
}

/** protobufjs decodes 64-bit integers as Long objects (when long.js is present) or numbers. */
export function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v && typeof v === "object" && "toNumber" in v) {
    return (v as { toNumber(): number }).toNumber();
  }
  return Number(v ?? 0);
}
