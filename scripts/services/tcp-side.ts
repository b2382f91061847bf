// One side of a TCP relay between two sockets on this machine: bytes keep their order, a write the
// socket cannot take at once waits in `pending` until `drain` calls flush, and bytes for a side
// not connected yet wait for it. Shared by the test Pocketbase's front relay and the bench's
// latency proxy.
import type { Socket } from "bun";

export type Side = { socket: Socket<any> | null; pending: Uint8Array[]; closed: boolean };

export const newSide = (socket: Socket<any> | null = null): Side => ({ socket, pending: [], closed: false });

/** Write `data` to the side (or queue it behind what waits); nothing once the side is closed. */
export function send(side: Side, data: Uint8Array) {
  if (side.closed) return;
  if (!side.socket || side.pending.length) return void side.pending.push(data);
  const n = side.socket.write(data);
  if (n < data.length) side.pending.push(data.subarray(n));
}

/** Write what waits, as far as the socket takes it (call on connect and on `drain`). */
export function flush(side: Side) {
  while (side.socket && side.pending.length) {
    const head = side.pending[0]!;
    const n = side.socket.write(head);
    if (n < head.length) return void (side.pending[0] = head.subarray(n));
    side.pending.shift();
  }
}
