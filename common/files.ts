/*
 * Crash-safe file writes: a reader sees either the old file or the new one, never a torn one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

/** Whether process `pid` is alive (or not ours to signal, which also means alive). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the temp files of `path` that a killed writer left: their names carry the writer's
 * pid, and only those of processes that no longer exist are touched, so a concurrent writer's
 * file is never removed.
 */
function sweepStaleTemps(dir: string, name: string): void {
  const prefix = `.${name}.`;
  for (const entry of readdirSync(dir)) {
    if (!entry.startsWith(prefix) || !entry.endsWith('.tmp')) continue;
    const [pid, time, ...rest] = entry.slice(prefix.length, -'.tmp'.length).split('.');
    if (rest.length || !/^\d+$/.test(pid!) || !/^\d+$/.test(time ?? '')) continue;
    if (!processAlive(Number(pid))) rmSync(join(dir, entry), { force: true });
  }
}

/**
 * Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync dir;
 * then removes the temp files of writers killed before their rename.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(temp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  sweepStaleTemps(dir, basename(path));
}
