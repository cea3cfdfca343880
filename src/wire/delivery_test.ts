import assert from "node:assert/strict";
import {
  deliveredSize,
  deliveryFrameSize,
  encodeConsumeBatch,
  encodeConsumeResponse,
} from "./delivery.ts";
import { type } from "./proto.ts";
import type { Delivery, MessageBody } from "../core/types.ts";

const ConsumeResponse = type("fila.v1.ConsumeResponse");
const Message = type("fila.v1.Message");

function body(o: Partial<MessageBody> = {}): MessageBody {
  return {
    id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    headers: { tenant: "acme", "é": "€😀", empty: "" },
    payload: new TextEncoder().encode("hello"),
    fairnessKey: "acme",
    weight: 3,
    throttleKeys: ["a", "b"],
    enqueuedAtMs: 0,
    ...o,
  };
}

Deno.test("encodeConsumeResponse() decodes with protobufjs to the same message", () => {
  for (
    const d of [
      { body: body(), attempts: 0, queue: "q" },
      { body: body(), attempts: 7, queue: "ünïcode.dlq" },
      {
        body: body({
          headers: {},
          payload: new Uint8Array(),
          fairnessKey: "",
          weight: 0,
          throttleKeys: [],
        }),
        attempts: 0,
        queue: "q",
      },
      { body: body({ payload: new Uint8Array(300_000).fill(1) }), attempts: 1, queue: "q" },
    ] satisfies Delivery[]
  ) {
    const bytes = encodeConsumeResponse(d);
    const decoded = ConsumeResponse.toObject(ConsumeResponse.decode(bytes), {
      defaults: true,
      bytes: Array,
    }) as { message: Record<string, unknown> };
    const m = decoded.message;
    assert.equal(m.id, d.body.id);
    assert.deepEqual(m.headers, d.body.headers);
    assert.deepEqual(m.payload, Array.from(d.body.payload as Uint8Array));
    assert.deepEqual(m.metadata, {
      fairnessKey: d.body.fairnessKey,
      weight: d.body.weight,
      throttleKeys: d.body.throttleKeys,
      attemptCount: d.attempts,
      queueId: d.queue,
    });
    assert.equal(m.timestamps, null);
  }
});

Deno.test("deliveredSize() equals the encoded Message size", () => {
  for (const b of [body(), body({ payload: new Uint8Array(4_000_000) }), body({ weight: 0 })]) {
    const encoded = Message.encode({
      id: b.id,
      headers: b.headers,
      payload: b.payload,
      // protobufjs writes every property present, even zero: leave zeros out as proto3 does.
      metadata: {
        fairnessKey: b.fairnessKey,
        ...(b.weight ? { weight: b.weight } : {}),
        throttleKeys: b.throttleKeys,
        queueId: "orders",
      },
    }).finish();
    assert.equal(deliveredSize(b, "orders"), encoded.length);
  }
});

Deno.test("encodeConsumeBatch() carries every delivery in field 2", () => {
  const ds: Delivery[] = [
    { body: body(), attempts: 0, queue: "q" },
    {
      body: body({ id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", payload: new Uint8Array(200) }),
      attempts: 2,
      queue: "q",
    },
  ];
  const bytes = encodeConsumeBatch(ds);
  assert.equal(bytes.length, ds.reduce((n, d) => n + deliveryFrameSize(d), 0));
  const decoded = ConsumeResponse.decode(bytes) as unknown as {
    message: unknown;
    messages: Array<{ id: string; metadata: { attemptCount: number } }>;
  };
  assert.equal(decoded.message, null);
  assert.deepEqual(decoded.messages.map((m) => [m.id, m.metadata.attemptCount]), [
    [ds[0].body.id, 0],
    [ds[1].body.id, 2],
  ]);
});
