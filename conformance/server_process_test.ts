// conformance.md §20 Server process (SP-01 … SP-05). All need their own broker processes.
import assert from "node:assert/strict";
import {
  brokerStderr,
  freePort,
  LATE_TOL_MS,
  runBrokerExpectingExit,
  scenario,
  startBroker,
} from "./harness.ts";

const P = { needsProcess: true };

function startsWith(stderr: string, prefix: string) {
  const s = brokerStderr(stderr).trimStart();
  assert.ok(s.startsWith(prefix), `stderr should start with ${JSON.stringify(prefix)}:\n${stderr}`);
}

function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "0.0.0.0", port }).close();
    return true;
  } catch {
    return false;
  }
}

scenario(
  "SP-01 the broker binds listen_addr and is ready within 5 s on an empty data dir",
  async () => {
    const defaultFree = portFree(5555);
    await using b = await startBroker();
    assert.ok(b.readyMs <= 5000 + LATE_TOL_MS, `ready after ${b.readyMs.toFixed(0)} ms`);
    const st = await Deno.stat(`${b.dir}/data`);
    assert.ok(st.isDirectory, "FILA_DATA_DIR was created");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.port });
    conn.close();
    // Exactly listen_addr: the default 0.0.0.0:5555 is not bound as well (checkable only when
    // nothing else holds 5555).
    if (defaultFree) assert.ok(portFree(5555), "the broker also bound the default port 5555");
  },
  P,
);

scenario(
  "SP-02 invalid TOML exits 1 with 'error parsing'; unknown sections and keys are ignored",
  async () => {
    const port = freePort();
    const bad = await runBrokerExpectingExit({
      rawToml: `[server]\nlisten_addr = "127.0.0.1:${port}"\nthis is not toml\n`,
    });
    assert.equal(bad.code, 1, `exit status (stderr: ${bad.stderr})`);
    startsWith(bad.stderr, "error parsing");
    await using b = await startBroker({
      toml: '[whatever]\nfoo = 1\n\n[scheduler]\nno_such_key = "x"',
    });
    await b.client().listQueues();
  },
  P,
);

scenario("SP-02 unknown keys inside [server] are ignored", async () => {
  const port = freePort();
  await using b = await startBroker({
    port,
    rawToml: `[server]\nlisten_addr = "127.0.0.1:${port}"\nunknown_server_key = 42\n`,
  });
  await b.client().listQueues();
}, P);

scenario(
  "SP-03 a nested FILA_DATA_DIR is created, reused after restart, and separate per dir",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "fila-conformance-sp03-" });
    try {
      const dataDir = `${dir}/nested/deeper/data`;
      {
        await using b = await startBroker({ dir, env: { FILA_DATA_DIR: dataDir } });
        assert.ok((await Deno.stat(dataDir)).isDirectory, "nested data dir created");
        await b.client().createQueue("persisted");
        await b.restart();
        const names = (await b.client().listQueues()).queues.map((q) => q.name);
        assert.deepEqual(names, ["persisted", "persisted.dlq"], "data present after restart");
      }
      {
        await using b = await startBroker({ dir, env: { FILA_DATA_DIR: `${dir}/other` } });
        const names = (await b.client().listQueues()).queues.map((q) => q.name);
        assert.deepEqual(names, [], "a different data dir is empty");
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
  P,
);

scenario("SP-04 [cluster] enabled = true and quantum = 0 are startup errors", async () => {
  const cluster = await runBrokerExpectingExit({ toml: "[cluster]\nenabled = true" });
  assert.equal(cluster.code, 1, `exit status (stderr: ${cluster.stderr})`);
  assert.ok(
    cluster.stderr.includes("clustering is not supported"),
    `stderr mentions clustering:\n${cluster.stderr}`,
  );
  const q0 = await runBrokerExpectingExit({ toml: "[scheduler]\nquantum = 0" });
  assert.equal(q0.code, 1, `exit status (stderr: ${q0.stderr})`);
  startsWith(q0.stderr, "error parsing");
}, P);

scenario("SP-05 a listen_addr already in use exits 1 with 'error: cannot listen on'", async () => {
  const port = freePort();
  const blocker = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    const r = await runBrokerExpectingExit({ port });
    assert.equal(r.code, 1, `exit status (stderr: ${r.stderr})`);
    startsWith(r.stderr, "error: cannot listen on");
  } finally {
    blocker.close();
  }
}, P);
