/**
 * Ports for test servers on loopback. A port the kernel picks (listen on 0) comes from the ephemeral
 * range, where any process's outgoing connection may take it between our close and the server's bind
 * (CI saw EADDRINUSE so): ports here come from below that range, 10000-19999, which no connect() ever
 * takes, and are checked free by a bind. The swarm tests' fixed bases start at 20000.
 */
import { createServer } from 'node:net';

const LOW = 10_000;
const SPAN = 10_000;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const port = LOW + Math.floor(Math.random() * SPAN);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${LOW}-${LOW + SPAN - 1} after 100 tries`);
}
