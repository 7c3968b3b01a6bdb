/** Waiting for a server a test or benchmark started to listen on its loopback port. */
import net from 'node:net';

/**
 * Resolves once a TCP connection to 127.0.0.1:port succeeds; rejects when `alive` says the server's process has
 * exited, or after timeoutMs.
 */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (!alive()) throw new Error(`process for port ${port} exited before it listened`);
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
