/**
 * Who fsyncs before acknowledging? For each system: attaches `strace -f -c` (fsync, fdatasync,
 * sync_file_range, msync, sync, syncfs) to the server processes while N messages are sent one
 * at a time (each awaited: sent → confirmed → next), and reports sync calls per confirmed
 * message. ≥ 1 means the server syncs before each confirm; ≈ 0 means confirms precede syncs.
 * Installs strace with apt-get when missing (root).
 *
 *   deno task bench:fsync            # all systems; PEERS=fila,nats to choose
 */
import { PEERS } from "./peers/mod.ts";
import { sleep } from "./peer.ts";

const N = Number(Deno.env.get("N") ?? 200);
const SYSCALLS = "fsync,fdatasync,sync_file_range,msync,sync,syncfs";

async function ensureStrace(): Promise<void> {
  const ok = await new Deno.Command("sh", { args: ["-c", "command -v strace"], stdout: "null" })
    .output();
  if (ok.success) return;
  await new Deno.Command("apt-get", {
    args: ["install", "-y", "--no-install-recommends", "strace"],
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "null",
  }).output();
}

async function main() {
  await ensureStrace();
  const only = Deno.env.get("PEERS")?.split(",");
  console.log(`| system | sync calls while ${N} sequential sends were confirmed | per message |`);
  console.log("|---|---:|---:|");
  for (const [id, peer] of PEERS) {
    if (only && !only.includes(id)) continue;
    let running;
    try {
      running = await peer.start();
    } catch (e) {
      console.log(`| ${peer.name} | could not start: ${(e as Error).message.split("\n")[0]} | |`);
      continue;
    }
    try {
      for (const { label, adapter } of running.adapters) {
        const q = `fsync-${Date.now().toString(36)}`;
        await adapter.createQueue(q);
        const p = new Uint8Array(1024).fill(120);
        for (let i = 0; i < 20; i++) await adapter.sendOne(q, p); // warm-up
        const args = ["-f", "-c", "-e", `trace=${SYSCALLS}`];
        for (const pid of adapter.pids()) args.push("-p", String(pid));
        const st = new Deno.Command("strace", { args, stdout: "piped", stderr: "piped" }).spawn();
        await sleep(1000); // attach
        for (let i = 0; i < N; i++) await adapter.sendOne(q, p);
        await sleep(200);
        st.kill("SIGINT");
        const out = await st.output();
        const text = new TextDecoder().decode(out.stderr);
        let calls = 0;
        const kinds: string[] = [];
        for (const line of text.split("\n")) {
          const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
          if (m && m[2] !== "total") {
            calls += Number(m[1]);
            kinds.push(`${m[2]} ${m[1]}`);
          }
        }
        console.log(
          `| ${label} | ${calls}${kinds.length ? ` (${kinds.join(", ")})` : ""} | ${
            (calls / N).toFixed(2)
          } |`,
        );
        await adapter.deleteQueue(q).catch(() => {});
      }
    } finally {
      await running.stop();
    }
  }
}

if (import.meta.main) await main();
