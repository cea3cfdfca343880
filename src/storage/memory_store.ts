/** An in-memory `Store` for unit tests: same contract, no I/O, optional injected failures. */
import { StorageError } from "../core/errors.ts";
import type { MessageBody, MessageState, QueueDef } from "../core/types.ts";
import type { Mutation, Snapshot, Store, StoredMessage } from "./store.ts";

interface Row {
  qid: string;
  body: MessageBody;
  state?: MessageState;
}

export class MemoryStore implements Store {
  readonly queues = new Map<string, QueueDef>();
  /** Keyed by `${qid}/${id}`. */
  readonly rows = new Map<string, Row>();
  readonly config = new Map<string, string>();
  readonly tombstones = new Set<string>();
  /** When set, the next writes fail with this detail. */
  failWrites: string | undefined;
  commits = 0;

  load(): Promise<Snapshot> {
    const nameByQid = new Map([...this.queues.values()].map((d) => [d.qid, d.name]));
    const messages = new Map<string, StoredMessage[]>();
    const sorted = [...this.rows.values()].sort((a, b) => a.body.id < b.body.id ? -1 : 1);
    for (const r of sorted) {
      const name = nameByQid.get(r.qid);
      if (name === undefined) continue;
      let list = messages.get(name);
      if (!list) messages.set(name, list = []);
      list.push(r.state ? { body: r.body, state: { ...r.state } } : { body: r.body });
    }
    return Promise.resolve({
      queues: [...this.queues.values()].map((d) => ({ ...d })),
      messages,
      config: [...this.config.entries()].sort(([a], [b]) => a < b ? -1 : 1),
    });
  }

  write(mutations: Mutation[]): Promise<void> {
    if (this.failWrites !== undefined) {
      return Promise.reject(new StorageError(this.failWrites));
    }
    this.commits++;
    for (const m of mutations) this.#apply(m);
    return Promise.resolve();
  }

  #apply(m: Mutation): void {
    switch (m.op) {
      case "putQueue":
        this.queues.set(m.def.name, { ...m.def });
        return;
      case "deleteQueue":
        this.queues.delete(m.def.name);
        this.tombstones.add(m.def.qid);
        return;
      case "putMessage":
        this.rows.set(`${m.qid}/${m.body.id}`, {
          qid: m.qid,
          body: m.body,
          ...(m.state ? { state: { ...m.state } } : {}),
        });
        return;
      case "setState": {
        const row = this.rows.get(`${m.qid}/${m.id}`);
        if (!row) return;
        if (m.state) row.state = { ...m.state };
        else delete row.state;
        return;
      }
      case "deleteMessage":
        this.rows.delete(`${m.qid}/${m.body.id}`);
        return;
      case "moveMessage":
        this.rows.delete(`${m.fromQid}/${m.body.id}`);
        this.rows.set(`${m.toQid}/${m.body.id}`, {
          qid: m.toQid,
          body: m.body,
          ...(m.state ? { state: { ...m.state } } : {}),
        });
        return;
      case "putConfig":
        this.config.set(m.key, m.value);
        return;
      case "deleteConfig":
        this.config.delete(m.key);
        return;
    }
  }

  purgeDeleted(): Promise<number> {
    let n = 0;
    for (const [k, r] of this.rows) {
      if (this.tombstones.has(r.qid)) {
        this.rows.delete(k);
        n++;
      }
    }
    this.tombstones.clear();
    return Promise.resolve(n);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
