/** A minimal FilaAdmin client for the CLI (the CLI calls only FilaAdmin RPCs). */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

const PROTO_DIR = fileURLToPath(new URL("../proto/", import.meta.url));

export type AdminClient = {
  call<T = Record<string, unknown>>(method: string, request: object): Promise<T>;
  close(): void;
};

export interface ConnectOptions {
  addr: string;
  apiKey?: string;
}

/** Parses `http://host[:port]` (default port 5555) into a grpc target. */
export function parseAddr(addr: string): { target: string; tls: boolean } {
  let url: URL;
  try {
    url = new URL(addr.includes("://") ? addr : `http://${addr}`);
  } catch {
    throw new Error(`invalid broker address ${addr}: not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`invalid broker address ${addr}: scheme must be http or https`);
  }
  return { target: `${url.hostname}:${url.port || "5555"}`, tls: url.protocol === "https:" };
}

export async function connectAdmin(options: ConnectOptions): Promise<AdminClient> {
  const { target } = parseAddr(options.addr);
  const pkg = protoLoader.loadSync(["fila/v1/admin.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  // deno-lint-ignore no-explicit-any
  const Admin = (grpc.loadPackageDefinition(pkg) as any).fila.v1.FilaAdmin;
  const client = new Admin(target, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
  });
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (err?: Error) => err ? reject(err) : resolve())
  ).catch((e) => {
    client.close();
    throw new Error(`cannot connect to broker at ${options.addr}: ${(e as Error).message}`);
  });
  const metadata = new grpc.Metadata();
  if (options.apiKey) metadata.set("authorization", `Bearer ${options.apiKey}`);
  return {
    call: (method, request) =>
      new Promise((resolve, reject) =>
        client[method](
          request,
          metadata,
          (err: grpc.ServiceError | null, res: unknown) =>
            err ? reject(err) : resolve(res as never),
        )
      ),
    close: () => client.close(),
  };
}
