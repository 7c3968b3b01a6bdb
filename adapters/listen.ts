/**
 * Binding a listener: resolves with the port actually bound (port 0 asks the OS for a free one), rejects with the
 * bind error (address in use, permission) instead of leaving it to the server's error handler.
 */
import type net from 'node:net';

export async function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}
