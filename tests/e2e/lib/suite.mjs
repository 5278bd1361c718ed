// The servers and sockets of one test file: started on demand, all closed after the file.
import { after } from 'node:test';
import { startServer } from './server.mjs';

export const NO_COOLDOWN = ['--ws-cooldown-ms', '0'];

// server(args) starts a throwaway server; track(client) closes the socket client afterwards.
export function useSuite() {
  const servers = [];
  const clients = [];
  after(async () => { await Promise.all(clients.map((c) => c.close().catch(() => {}))); });
  after(async () => { await Promise.all(servers.map((s) => s.close())); });
  return {
    async server(args) {
      const s = await startServer({ args });
      servers.push(s);
      return s;
    },
    track(c) { clients.push(c); return c; },
  };
}
