// Process and temp-dir registry shared by the Node test suites (interop,
// hardening): every child a suite starts is killed by its PID, and every
// temp dir removed, on exit, on SIGINT/SIGTERM/SIGHUP, on an uncaught error,
// or when the watchdog fires.  Built-in modules only.

import fs from 'node:fs';
import os from 'node:os';

export const children = new Set(); // live ChildProcess objects
export const tempDirs = new Set(); // temp dirs to remove on exit

let tag = 'tests';
let keepDirs = false;

/** Names the suite in messages; keep = true leaves temp dirs for a look. */
export function setup(name, { keep = false } = {}) {
  tag = name;
  keepDirs = keep;
}

export function killAll() {
  for (const c of children) {
    // By PID only: each child is a process we spawned ourselves.
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  children.clear();
  if (!keepDirs) {
    for (const d of tempDirs) {
      try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ }
    }
  }
  tempDirs.clear();
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`${tag}: got ${sig}, killing child processes`);
    killAll();
    process.exit(128 + (os.constants.signals[sig] || 1));
  });
}
process.on('uncaughtException', (e) => {
  console.error(`${tag}: uncaught exception:`, e && e.stack ? e.stack : e);
  killAll();
  process.exit(1);
});
process.on('unhandledRejection', (e) => {
  console.error(`${tag}: unhandled rejection:`, e && e.stack ? e.stack : e);
  killAll();
  process.exit(1);
});

/** Exits with status 124 after `seconds`, killing every child first. */
export function watchdog(seconds, name) {
  const t = setTimeout(() => {
    console.error(`${name}: overall time limit of ${seconds}s reached, giving up`);
    killAll();
    process.exit(124);
  }, seconds * 1000);
  t.unref();
  return t;
}
