import assert from "node:assert/strict";
import {
  AlreadyExistsError,
  errorFromStatus,
  FilaError,
  InvalidArgumentError,
  isRetryable,
  NotFoundError,
  StatusCode,
  statusName,
  toFilaError,
  UnauthenticatedError,
  UnavailableError,
  UnknownError,
} from "./errors.ts";

Deno.test("errorFromStatus maps every broker status code to its class", () => {
  const cases: [number, new (d: string) => FilaError][] = [
    [StatusCode.INVALID_ARGUMENT, InvalidArgumentError],
    [StatusCode.NOT_FOUND, NotFoundError],
    [StatusCode.ALREADY_EXISTS, AlreadyExistsError],
    [StatusCode.UNAVAILABLE, UnavailableError],
    [StatusCode.UNAUTHENTICATED, UnauthenticatedError],
  ];
  for (const [code, Cls] of cases) {
    const e = errorFromStatus(code, "why");
    assert.ok(e instanceof Cls, `${statusName(code)} -> ${e.constructor.name}`);
    assert.ok(e instanceof FilaError);
    assert.equal(e.code, code);
    assert.equal(e.details, "why");
    assert.equal(e.message, "why");
    assert.equal(e.name, Cls.name);
  }
  for (let code = 1; code <= 16; code++) {
    const e = errorFromStatus(code, "");
    assert.equal(e.code, code);
    assert.equal(e.codeName, statusName(code));
    assert.notEqual(e.constructor, FilaError, `code ${code} has its own class`);
  }
});

Deno.test("an unknown code keeps its number and an empty message shows the code name", () => {
  const e = errorFromStatus(42, "");
  assert.equal(e.constructor, FilaError);
  assert.equal(e.code, 42);
  assert.equal(e.message, "STATUS_42");
  assert.equal(errorFromStatus(5, "").message, "NOT_FOUND");
});

Deno.test("toFilaError converts grpc-js service errors and passes typed errors through", () => {
  const svc = Object.assign(new Error('5 NOT_FOUND: queue "x" not found'), {
    code: 5,
    details: 'queue "x" not found',
  });
  const e = toFilaError(svc);
  assert.ok(e instanceof NotFoundError);
  assert.equal(e.details, 'queue "x" not found');
  assert.equal(e.cause, svc);
  const typed = new InvalidArgumentError("bad");
  assert.equal(toFilaError(typed), typed);
  const plain = toFilaError(new TypeError("boom"));
  assert.ok(plain instanceof UnknownError);
  assert.equal(plain.message, "boom");
});

Deno.test("only transport-level codes make a consume stream reconnect", () => {
  for (const c of [0, 1, 2, 4, 8, 10, 13, 14, 15]) assert.ok(isRetryable(c), statusName(c));
  for (const c of [3, 5, 6, 7, 9, 11, 12, 16]) assert.ok(!isRetryable(c), statusName(c));
});
