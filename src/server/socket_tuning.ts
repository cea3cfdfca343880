/**
 * Tuning of the sockets the gRPC server accepts, which grpc-js offers no option for: no Nagle
 * delay, and one write per event-loop turn instead of one per HTTP/2 frame.
 */
import type * as grpc from "@grpc/grpc-js";
import type { EventEmitter } from "node:events";
import process from "node:process";
import tls from "node:tls";
import type { Logger } from "../core/log.ts";

/** The part of a node:net / node:tls socket that write coalescing uses. */
export interface CorkableSocket {
  write: (...args: never[]) => boolean;
  cork(): void;
  uncork(): void;
}

/**
 * Deno's node:http2 hands every frame to the socket as soon as nghttp2 produces it, so a unary
 * reply is three writes (headers, data, trailers): three syscalls and three TCP segments for the
 * peer to read. Corking the socket at its first write of a turn and uncorking it once the turn's
 * ticks have run sends them as one writev. Measured: 3.0 → 1.06 writes per unary call; unary
 * Enqueue at 64 in flight +10–15 %.
 */
export function coalesceWrites(socket: CorkableSocket): void {
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  // Deno's http2 flushes stream data in a tick it queues after the headers' write: the second
  // hop lets the ticks queued by the first run before the uncork.
  const flushAfterTicks = () => process.nextTick(flush);
  socket.write = function (this: unknown, ...args: never[]): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(flushAfterTicks);
    }
    return write.apply(this, args);
  };
}

/**
 * Applies both to every socket `server` accepts, through grpc-js's listening HTTP/2 servers.
 * TCP_NODELAY: grpc-js sets it on the sockets it connects, not on those its server accepts;
 * without it a small frame written while an earlier one is unacknowledged waits for the peer's
 * delayed ACK (tens of milliseconds). With TLS, HTTP/2 writes to the TLS socket, which is the
 * one to coalesce.
 */
export function tuneAcceptedSockets(server: grpc.Server, log: Logger): void {
  const listeners = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> })
    .http2Servers;
  if (!(listeners instanceof Map)) {
    log.warn("cannot tune accepted sockets: grpc-js internals changed; latency may suffer");
    return;
  }
  for (const listener of listeners.keys()) {
    const secure = listener instanceof tls.Server;
    listener.on("connection", (socket: CorkableSocket & { setNoDelay(on: boolean): void }) => {
      socket.setNoDelay(true);
      if (!secure) coalesceWrites(socket);
    });
    if (secure) listener.on("secureConnection", coalesceWrites);
  }
}
