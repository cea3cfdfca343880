/** The storage contract, in queue terms. The scheduler sees only this, never Deno.Kv. */
import type { MessageBody, MessageState, QueueDef } from "../core/types.ts";

export type Mutation =
  | { op: "putQueue"; def: QueueDef }
  /** Removes the queue record; its message rows are purged in the background. */
  | { op: "deleteQueue"; def: QueueDef }
  /** A new message: its body and, unless it is plain pending, its state. */
  | { op: "putMessage"; qid: string; body: MessageBody; state?: MessageState }
  /** `null` = pending with no failed attempt. */
  | { op: "setState"; qid: string; id: string; state: MessageState | null }
  | { op: "deleteMessage"; qid: string; body: MessageBody }
  | {
    op: "moveMessage";
    fromQid: string;
    toQid: string;
    body: MessageBody;
    state: MessageState | null;
  }
  | { op: "putConfig"; key: string; value: string }
  | { op: "deleteConfig"; key: string };

export interface StoredMessage {
  body: MessageBody;
  state?: MessageState;
}

/** Everything recovery needs, read at startup. */
export interface Snapshot {
  queues: QueueDef[];
  /** Per queue name, its messages in ascending id order. */
  messages: Map<string, StoredMessage[]>;
  config: Array<[string, string]>;
}

export interface LoadOptions {
  /**
   * Payload bytes to hold in memory, oldest messages first; the rest come back with their
   * length in place of their bytes (MessageBody.payload). Only a store with readPayloads
   * honours it. Default: all.
   */
  payloadBudgetBytes?: number;
}

export interface Store {
  load(options?: LoadOptions): Promise<Snapshot>;
  /**
   * The payloads of committed, live messages of queue `qid`, in the order of `ids`. Optional:
   * a store without it keeps every payload in memory, and the scheduler never drops one.
   * Rejects with StorageError if a message is no longer stored.
   */
  readPayloads?(qid: string, ids: readonly string[]): Promise<Uint8Array[]>;
  /**
   * Commits the mutations atomically. Writes issued while another commit is in flight are
   * grouped into the next commit (group commit). Resolves once durable; rejects with
   * StorageError, in which case none of these mutations took effect.
   */
  write(mutations: Mutation[]): Promise<void>;
  /** Deletes the rows of deleted queue incarnations; safe to call repeatedly. */
  purgeDeleted(): Promise<number>;
  /** Finishes pending commits, then closes. */
  close(): Promise<void>;
}
