// A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time in each direction: a link with
// that round-trip time between a client and a server on this machine, so a bench can show what
// latency does to a chatty client and a batching one alike. Bytes keep their order; a write the
// socket cannot take at once waits for `drain`.
import { flush, newSide, send, type Side } from "../../services/tcp-side.ts";

export async function latencyProxy(targetPort: number, oneWayMs: number): Promise<{ port: number; stop(): void }> {
  const server = Bun.listen<{ client: Side; upstream: Side }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      async open(socket) {
        const client = newSide(socket);
        const upstream = newSide();
        socket.data = { client, upstream };
        upstream.socket = await Bun.connect({
          hostname: "127.0.0.1",
          port: targetPort,
          socket: {
            data(_s, chunk) {
              const copy = new Uint8Array(chunk);
              setTimeout(() => send(client, copy), oneWayMs);
            },
            drain: () => flush(upstream),
            close() {
              upstream.closed = true;
              setTimeout(() => client.socket?.end(), oneWayMs);
            },
            error() {
              upstream.closed = true;
              client.socket?.end();
            },
          },
        });
        flush(upstream);
      },
      data(socket, chunk) {
        const copy = new Uint8Array(chunk);
        setTimeout(() => send(socket.data.upstream, copy), oneWayMs);
      },
      drain: (socket) => flush(socket.data.client),
      close(socket) {
        socket.data.client.closed = true;
        setTimeout(() => socket.data.upstream.socket?.end(), oneWayMs);
      },
      error(socket) {
        socket.data.client.closed = true;
        socket.data.upstream.socket?.end();
      },
    },
  });
  return { port: server.port, stop: () => server.stop(true) };
}
