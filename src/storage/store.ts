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

export interface Store {
  load(): Promise<Snapshot>;
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
