// A WebSocket client on a bare TCP socket, for tests that need a client Bun's WebSocket cannot be:
// one that sends as fast as the socket takes it and does not read at all (its TCP window fills, so
// the server's replies back up in the server), then reads everything at the end to see what the
// server sent and the close code it closed with.
import { connect, type Socket } from "node:net";
import { once } from "node:events";

/** One client frame; the mask key is zero (servers must accept any key), so the payload is sent as is. */
export function wsFrame(payload: string | Uint8Array, opcode = 1): Uint8Array {
  const p = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const n = p.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 255;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(p, head + 4);
  return out;
}

export type RawReplies = { texts: string[]; close?: { code: number; reason: string }; bytes: number };

export type RawWs = {
  socket: Socket;
  /** Write bytes; resolves once the socket took them (false: the server closed the connection). */
  write(data: Uint8Array): Promise<boolean>;
  /** Start reading: every text frame until the server's close frame, the end of the connection, or a text `until` accepts. */
  readAll(timeoutMs?: number, until?: (text: string) => boolean): Promise<RawReplies>;
  destroy(): void;
};

/** Open a WebSocket to `http://host:port` + `path` and stop reading right after the handshake. */
export async function rawWs(base: string, path = "/api/ws"): Promise<RawWs> {
  const u = new URL(base);
  const socket = connect({ host: u.hostname, port: Number(u.port) });
  await once(socket, "connect");
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buf: Buffer = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      socket.pause();
      const head = buf.subarray(0, end).toString();
      buf = buf.subarray(end + 4);
      if (!head.startsWith("HTTP/1.1 101")) reject(new Error(`no upgrade: ${head.split("\r\n")[0]}`));
      else resolve();
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
  let gone = false;
  socket.on("error", () => (gone = true));
  socket.on("close", () => (gone = true));
  return {
    socket,
    async write(data) {
      if (gone) return false;
      try {
        if (!socket.write(data))
          await new Promise<void>((resolve) => {
            const done = () => {
              socket.off("drain", done);
              socket.off("close", done);
              resolve();
            };
            socket.on("drain", done);
            socket.on("close", done);
          });
      } catch {
        return false;
      }
      return !gone;
    },
    readAll(timeoutMs = 30_000, until) {
      const out: RawReplies = { texts: [], bytes: 0 };
      const decoder = new TextDecoder();
      return new Promise<RawReplies>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no close frame within ${timeoutMs} ms (${out.texts.length} messages read)`)), timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          socket.removeAllListeners("data");
          resolve(out);
        };
        // Server frames are unmasked; lengths up to 2^53 are enough here.
        const parse = () => {
          while (buf.length >= 2) {
            const op = buf[0]! & 15;
            let n = buf[1]! & 127;
            let at = 2;
            if (n === 126) {
              if (buf.length < 4) return;
              n = buf.readUInt16BE(2);
              at = 4;
            } else if (n === 127) {
              if (buf.length < 10) return;
              n = Number(buf.readBigUInt64BE(2));
              at = 10;
            }
            if (buf.length < at + n) return;
            const payload = buf.subarray(at, at + n);
            buf = buf.subarray(at + n);
            if (op === 1) {
              const text = decoder.decode(payload);
              out.texts.push(text);
              if (until?.(text)) {
                socket.pause();
                return finish();
              }
            }
            if (op === 8) {
              out.close = { code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005, reason: decoder.decode(payload.subarray(2)) };
              socket.destroy();
              return finish();
            }
          }
        };
        socket.on("data", (d: Buffer) => {
          out.bytes += d.length;
          buf = buf.length ? Buffer.concat([buf, d]) : d;
          parse();
        });
        socket.on("close", finish);
        parse();
        socket.resume();
      });
    },
    destroy: () => socket.destroy(),
  };
}
