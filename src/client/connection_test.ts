import assert from "node:assert/strict";
import { parseAddress } from "./connection.ts";
import { InvalidArgumentError } from "./errors.ts";

Deno.test("addresses: host:port, http:// and https://, default port 5555, IPv6", () => {
  assert.deepEqual(parseAddress("127.0.0.1:7000"), {
    host: "127.0.0.1",
    port: 7000,
    target: "127.0.0.1:7000",
    https: false,
  });
  assert.deepEqual(parseAddress("http://broker"), {
    host: "broker",
    port: 5555,
    target: "broker:5555",
    https: false,
  });
  assert.equal(parseAddress("https://broker:443").https, true);
  assert.equal(parseAddress("https://broker:443").port, 443);
  assert.deepEqual(parseAddress("[::1]:6000"), {
    host: "::1",
    port: 6000,
    target: "[::1]:6000",
    https: false,
  });
});

Deno.test("bad addresses are InvalidArgumentError", () => {
  assert.throws(() => parseAddress("ftp://x:1"), InvalidArgumentError);
  assert.throws(() => parseAddress("http://"), InvalidArgumentError);
});
