/**
 * `mirrorgate monitor` in a real terminal: tmux gives it a 120x40 pty, the test sends traffic,
 * and the pane's text (escapes stripped by capture-pane) must be the dashboard.
 * The tmux server runs on its own socket (-L), so no user's tmux is touched.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Backend, CLI, PORTS, requireTool, ROOT, scenarioFrames, scratchDir, skipObserve, sleep, startTraffic, TestGateway } from './helpers.js';

const P = PORTS.tmux;
const SOCKET = `mirrorgate-observe-${process.pid}`;
const SESSION = 'mgmonitor';

const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', timeout: 5000 });
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('observe: mirrorgate monitor in a terminal (tmux)', { skip: skipObserve, timeout: 60_000 }, () => {
  test('the dashboard shows the title, received pps, backends and UP', async () => {
    requireTool('tmux', 'tmux');
    const scratch = scratchDir('tmux');
    const backend = await Backend.bind(P + 1);
    let gw: TestGateway | undefined;
    let traffic: ReturnType<typeof startTraffic> | undefined;
    let tmuxStarted = false;
    try {
      gw = await TestGateway.start(join(scratch.dir, 'gateway.yaml'), { listenPort: P, controlPort: P + 2, backendPorts: [P + 1] });
      const frames = scenarioFrames({ exporters: ['198.18.0.11', '198.18.0.12'], datagramsPerExporter: 10, seed: 41 }).map((f) => f.frame);
      traffic = startTraffic(P, frames, 500);
      // If monitor exits, its last words stay on screen for the capture.
      const command = `cd ${sh(ROOT)} && ${sh(process.execPath)} ${sh(CLI)} monitor --control 127.0.0.1:${P + 2} --interval 500; echo "monitor exited $?"; sleep 60`;
      tmux('new-session', '-d', '-s', SESSION, '-x', '120', '-y', '40', command);
      tmuxStarted = true;
      await sleep(2500);
      const screen = tmux('capture-pane', '-p', '-t', SESSION);
      console.log(`tmux capture-pane -p (120x40):\n${screen.trimEnd()}`);

      assert.doesNotMatch(screen, /monitor exited/, 'monitor still running');
      const lines = screen.split('\n');
      assert.match(lines[0], new RegExp(`^mirrorgate monitor — pid ${gw.pid}, generation 1, 1 workers, up \\d+ s +● OK$`));
      const received = /^  received +([\d,]+) pps  [█·|]{40}  target 85,000$/m.exec(screen);
      assert.ok(received, 'a "received ... pps" line with the bar');
      const pps = Number(received[1].replace(/,/g, ''));
      assert.ok(pps > 100 && pps < 5000, `received ${pps} pps while ~500 pps are sent`);
      assert.match(screen, /^  VXLAN\/GENEVE +[\d,]+ pps$/m);
      assert.match(screen, /^  NAT hit +100\.0 %$/m);
      assert.match(screen, /^  forwarded +[1-9][\d,]* pps$/m);
      assert.match(screen, /^  dropped +0 pps$/m);
      assert.match(screen, /^  backends$/m);
      assert.match(screen, new RegExp(`^    UP   fdi/127\\.0\\.0\\.1:${P + 1} +[1-9][\\d,]* pps$`, 'm'));
      assert.match(screen, /^  Ctrl-C to quit$/m);
      assert.ok(lines.every((l) => l.length <= 120), 'fits 120 columns');
    } finally {
      if (tmuxStarted) {
        try {
          tmux('kill-server');
        } catch {
          // already gone
        }
      }
      await traffic?.stop();
      await gw?.stop();
      backend.close();
      scratch.remove();
    }
  });
});
