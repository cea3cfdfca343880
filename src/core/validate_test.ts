import assert from "node:assert/strict";
import { checkNewQueueName, checkQueueName, compareBytes, utf8Length } from "./validate.ts";
import { InvalidArgumentError } from "./errors.ts";

function message(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError);
    return e.message;
  }
}

Deno.test("utf8Length() counts UTF-8 bytes", () => {
  for (const s of ["", "a", "é", "€", "😀", "a😀é", "x".repeat(300)]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, s);
  }
});

Deno.test("checkQueueName() applies the rules in spec order", () => {
  assert.equal(message(() => checkQueueName("")), "queue name must not be empty");
  assert.equal(
    message(() => checkQueueName("", "dlq_queue name")),
    "dlq_queue name must not be empty",
  );
  assert.equal(
    message(() => checkQueueName("é".repeat(128))),
    "queue name must not exceed 255 bytes",
  );
  assert.equal(message(() => checkQueueName("x".repeat(255))), undefined);
  for (const bad of ["a\tb", "a\nb", "a\u0085b", "\u007f", "\u0000"]) {
    assert.equal(
      message(() => checkQueueName(bad)),
      "queue name must not contain control characters",
    );
  }
  assert.equal(message(() => checkQueueName("a b/c:d")), undefined);
});

Deno.test("checkNewQueueName() leaves room for the DLQ suffix", () => {
  assert.equal(message(() => checkNewQueueName("x".repeat(251))), undefined);
  assert.equal(
    message(() => checkNewQueueName("x".repeat(252))),
    'queue name must not exceed 251 bytes (its dead-letter queue name adds ".dlq")',
  );
  assert.equal(message(() => checkNewQueueName("x".repeat(251) + ".dlq")), undefined);
});

Deno.test("compareBytes() orders like UTF-8 bytes", () => {
  const names = ["b", "a", "\uffff", "😀", "a.dlq", "A", ""];
  const byBytes = [...names].sort((x, y) => {
    const a = new TextEncoder().encode(x);
    const b = new TextEncoder().encode(y);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  });
  assert.deepEqual([...names].sort(compareBytes), byBytes);
});
