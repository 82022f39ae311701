// The sender of the loopback TCP row (cluster_rows.ts), run as a child
// process: listens on 127.0.0.1 (any free port, sent to the parent over
// IPC); for each 8-byte request (a little-endian byte count) on a
// connection it writes that many bytes in 5 MiB writes, waiting for the
// socket to drain whenever a write is buffered.
import * as net from 'node:net';

const CHUNK = Buffer.alloc(5 * 1024 * 1024, 7);

async function send(sock: net.Socket, n: number): Promise<void> {
  let left = n;
  while (left > 0) {
    const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= piece.length;
    if (!sock.write(piece)) await new Promise<void>((resolve) => sock.once('drain', resolve));
  }
}

const server = net.createServer({ noDelay: true }, (sock) => {
  let pending = Buffer.alloc(0);
  let queue = Promise.resolve();
  sock.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 8) {
      const n = Number(pending.readBigUInt64LE(0));
      pending = pending.subarray(8);
      queue = queue.then(() => send(sock, n));
    }
  });
  sock.on('error', () => sock.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address() as net.AddressInfo;
  process.send?.({ port: addr.port });
});
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
