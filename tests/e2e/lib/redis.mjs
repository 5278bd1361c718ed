// A throwaway redis-server for the end-to-end tests (no persistence, loopback only).
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { sleep } from './rest-helpers.mjs';

// The redis-server binary, or '' when it is not installed (the tests then skip).
export const REDIS = spawnSync('sh', ['-c', 'command -v redis-server']).stdout.toString().trim();

// Starts redis-server on `port` and waits until it accepts connections; stop() kills it
// (SIGKILL) and waits. freeze()/thaw() stop and continue the process (a silent Redis).
export async function startRedis(port) {
  const proc = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  // Not left behind if this test process ends without its after() hooks.
  const reap = () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } };
  process.once('exit', reap);
  proc.on('exit', () => process.removeListener('exit', reap));
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`redis-server did not start on ${port}`); }
    await sleep(20);
  }
  return {
    proc,
    freeze() { proc.kill('SIGSTOP'); },
    thaw() { proc.kill('SIGCONT'); },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
