/** The standard grpc.health.v1.Health service (decision k). */
import * as grpc from "@grpc/grpc-js";
import { type } from "../wire/proto.ts";

const Request = type("grpc.health.v1.HealthCheckRequest");
const Response = type("grpc.health.v1.HealthCheckResponse");

const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;
const KNOWN = new Set(["", "fila.v1.FilaService", "fila.v1.FilaAdmin"]);

type Watcher = grpc.ServerWritableStream<Buffer, Uint8Array>;

function encode(status: number): Uint8Array {
  return Response.encode({ status }).finish();
}

export class HealthService {
  #serving = false;
  readonly #watchers = new Map<Watcher, string>();

  setServing(serving: boolean): void {
    if (this.#serving === serving) return;
    this.#serving = serving;
    for (const [call, name] of this.#watchers) call.write(encode(this.#statusOf(name)));
  }

  #statusOf(name: string): number {
    if (!KNOWN.has(name)) return SERVICE_UNKNOWN;
    return this.#serving ? SERVING : NOT_SERVING;
  }

  /** Ends open Watch streams (at shutdown, after NOT_SERVING was sent). */
  endWatches(): void {
    for (const call of this.#watchers.keys()) call.end();
    this.#watchers.clear();
  }

  addTo(server: grpc.Server): void {
    const method = (name: string, responseStream: boolean) => ({
      path: `/grpc.health.v1.Health/${name}`,
      requestStream: false,
      responseStream,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      responseDeserialize: (b: Buffer) => b,
    });
    server.addService({ Check: method("Check", false), Watch: method("Watch", true) }, {
      Check: (
        call: grpc.ServerUnaryCall<Buffer, Uint8Array>,
        callback: grpc.sendUnaryData<Uint8Array>,
      ) => {
        const name = (Request.decode(call.request) as unknown as { service: string }).service;
        if (!KNOWN.has(name)) {
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${name}"` });
          return;
        }
        callback(null, encode(this.#statusOf(name)));
      },
      Watch: (call: Watcher) => {
        const name = (Request.decode(call.request) as unknown as { service: string }).service;
        this.#watchers.set(call, name);
        call.on("cancelled", () => this.#watchers.delete(call));
        call.write(encode(this.#statusOf(name)));
      },
    });
  }
}
