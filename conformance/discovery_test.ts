// conformance.md §17 Discovery (DS-01 … DS-04): health and reflection.
import assert from "node:assert/strict";
import {
  assertStatus,
  decodeFileDescriptor,
  type FileDescriptor,
  grpc,
  type ReflectionResponse,
} from "./client.ts";
import { PROMPT_MS, scenario, sharedBroker, startBroker } from "./harness.ts";

scenario(
  "DS-01 health Check is SERVING for the broker's services and NOT_FOUND for others",
  async () => {
    const { client } = await sharedBroker();
    for (const svc of ["", "fila.v1.FilaService", "fila.v1.FilaAdmin"]) {
      assert.equal(await client.healthCheck(svc), "SERVING", `Check(${JSON.stringify(svc)})`);
    }
    await assertStatus(client.healthCheck("other"), grpc.status.NOT_FOUND);
  },
);

scenario("DS-02 health Watch sends SERVING, then NOT_SERVING or ends on SIGTERM", async () => {
  await using b = await startBroker();
  const client = b.client();
  const w = client.healthWatch("");
  const first = await w.expectNext(PROMPT_MS, "the first Watch item");
  assert.equal(first.status, "SERVING");
  const stopping = b.stop("SIGTERM");
  const next = await w.next(10_000);
  if (next !== null) {
    assert.equal(next.status, "NOT_SERVING", "the item sent on SIGTERM");
  } else {
    assert.ok(w.status, "the Watch stream ended");
  }
  assert.equal(await stopping, 0);
}, { needsProcess: true });

async function reflect(
  version: "v1" | "v1alpha",
  requests: object[],
): Promise<ReflectionResponse[]> {
  const { client } = await sharedBroker();
  const s = client.reflection(version);
  for (const r of requests) s.write(r);
  const out = await s.take(requests.length, PROMPT_MS + 2000);
  s.end();
  s.cancel();
  return out;
}

function findMessage(files: FileDescriptor[], pkg: string, name: string) {
  for (const f of files) {
    if (f.package !== pkg) continue;
    const m = f.message_type.find((m) => m.name === name);
    if (m) return m;
  }
  return undefined;
}

for (const version of ["v1", "v1alpha"] as const) {
  scenario(`DS-03 reflection ${version} lists the services and describes max_unacked`, async () => {
    const [list, file] = await reflect(version, [
      { list_services: "" },
      { file_containing_symbol: "fila.v1.ConsumeRequest" },
    ]);
    assert.ok(
      list.list_services_response,
      `list_services answered ${JSON.stringify(list.error_response ?? list.message_response)}`,
    );
    const names = list.list_services_response.service.map((s) => s.name);
    for (const want of ["fila.v1.FilaService", "fila.v1.FilaAdmin", "grpc.health.v1.Health"]) {
      assert.ok(names.includes(want), `${want} listed (got ${names.join(", ")})`);
    }
    assert.ok(
      file.file_descriptor_response,
      `file_containing_symbol answered ${JSON.stringify(file.error_response)}`,
    );
    const files = file.file_descriptor_response.file_descriptor_proto.map((b) =>
      decodeFileDescriptor(b)
    );
    const consume = findMessage(files, "fila.v1", "ConsumeRequest");
    assert.ok(consume, "ConsumeRequest is described");
    const f2 = consume.field.find((f) => f.number === 2);
    assert.ok(f2, "ConsumeRequest has field 2");
    assert.equal(f2.name, "max_unacked");
    assert.equal(f2.type, 13, "field 2 is uint32 (TYPE_UINT32 = 13)");
  });
}

function hasGrpcurl(): boolean {
  try {
    const out = new Deno.Command("grpcurl", { args: ["-version"], stdout: "null", stderr: "null" })
      .outputSync();
    return out.success;
  } catch {
    return false;
  }
}

const grpcurl = hasGrpcurl();

scenario("DS-04 grpcurl lists services and calls ListQueues without proto files", async () => {
  const { addr } = await sharedBroker();
  const list = await new Deno.Command("grpcurl", { args: ["-plaintext", addr, "list"] }).output();
  const listed = new TextDecoder().decode(list.stdout);
  assert.ok(list.success, new TextDecoder().decode(list.stderr));
  for (const want of ["fila.v1.FilaAdmin", "fila.v1.FilaService", "grpc.health.v1.Health"]) {
    assert.ok(listed.includes(want), `${want} in grpcurl list output:\n${listed}`);
  }
  const call = await new Deno.Command("grpcurl", {
    args: ["-plaintext", addr, "fila.v1.FilaAdmin/ListQueues"],
  }).output();
  assert.ok(call.success, new TextDecoder().decode(call.stderr));
}, grpcurl ? {} : { ignore: "grpcurl not found on PATH" });
