// A local SMTP receiver for tests: speaks enough of RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA with
// dot-stuffing, RSET, NOOP, QUIT) for a real client to deliver to it, and keeps what it got.
export type ReceivedMail = { from: string; to: string[]; data: string };

export function startSmtp() {
  const mails: ReceivedMail[] = [];
  type Conn = { buf: string; from: string; to: string[]; inData: boolean; data: string[] };
  const server = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: "", from: "", to: [], inData: false, data: [] };
        s.write("220 ticksync-test ESMTP ready\r\n");
      },
      data(s, chunk) {
        const c = s.data;
        c.buf += new TextDecoder().decode(chunk);
        let i: number;
        while ((i = c.buf.indexOf("\r\n")) >= 0) {
          const line = c.buf.slice(0, i);
          c.buf = c.buf.slice(i + 2);
          if (c.inData) {
            if (line === ".") {
              mails.push({ from: c.from, to: c.to, data: c.data.join("\r\n") });
              c.inData = false;
              c.data = [];
              c.to = [];
              s.write("250 2.0.0 queued\r\n");
            } else c.data.push(line.startsWith("..") ? line.slice(1) : line);
            continue;
          }
          const cmd = line.slice(0, 4).toUpperCase();
          if (cmd === "EHLO") s.write("250-ticksync-test\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n");
          else if (cmd === "HELO") s.write("250 ticksync-test\r\n");
          else if (cmd === "MAIL") (c.from = /<([^>]*)>/.exec(line)?.[1] ?? ""), s.write("250 2.1.0 ok\r\n");
          else if (cmd === "RCPT") c.to.push(/<([^>]*)>/.exec(line)?.[1] ?? ""), s.write("250 2.1.5 ok\r\n");
          else if (cmd === "DATA") (c.inData = true), s.write("354 end with <CRLF>.<CRLF>\r\n");
          else if (cmd === "RSET") (c.to = []), s.write("250 ok\r\n");
          else if (cmd === "NOOP") s.write("250 ok\r\n");
          else if (cmd === "QUIT") s.write("221 bye\r\n"), s.end();
          else s.write("502 5.5.2 not implemented\r\n");
        }
      },
    },
  });
  return { port: server.port, mails, stop: () => server.stop(true) };
}
