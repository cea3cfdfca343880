/** The systems of the competitive benchmark, by id (PEERS=… selects among them). */
import type { Peer } from "../peer.ts";
import { fila } from "./fila.ts";
import { nats } from "./nats.ts";
import { rabbitmq } from "./rabbitmq.ts";
import { redisBullmq } from "./redis_bullmq.ts";

export const PEERS: Array<[string, Peer]> = [
  ["fila", fila],
  ["rabbitmq", rabbitmq],
  ["nats", nats],
  ["redis", redisBullmq],
];

export function peerById(id: string): Peer {
  const p = PEERS.find(([i]) => i === id);
  if (!p) throw new Error(`unknown peer ${id}`);
  return p[1];
}
