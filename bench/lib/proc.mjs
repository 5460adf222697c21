/** CPU time and memory of another process, read from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';

// USER_HZ is 100 on every mainstream Linux build; `getconf CLK_TCK` confirms it on this machine.
const TICK_US = 10_000;

/**
 * CPU time of every live thread of `pid` in microseconds, to the nanosecond (the sum of
 * /proc/<pid>/task/<tid>/schedstat). For redis-server: a first execution costs it ~30 µs, and one
 * 10 ms tick of /proc/<pid>/stat over a 1 s window at ~1 300 req/s was ~7 µs per request.
 */
export function threadsCpuMicros(pid) {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between readdir and read
    }
  }
  return ns / 1000;
}

/** Resident set size of `pid` in bytes. */
export function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Busy CPU time of the whole machine in microseconds (all cores; /proc/stat, idle and iowait excluded). */
export function machineBusyMicros() {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.map(Number);
  void idle;
  void iowait;
  return (user + nice + system + irq + softirq + (steal ?? 0)) * TICK_US;
}

/** CPU time of this process and of its children that have exited (servers, workers, redis-server), in microseconds. */
export function selfAndChildrenMicros() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_US;
}

/** The pids whose parent is `pid` (Linux: every /proc/<n>/stat read; processes gone meanwhile skipped). */
function childrenOf(pid) {
  const children = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // exited between readdir and read
    }
  }
  return children;
}

/** CPU time `pid`'s main thread ran, in microseconds, to the nanosecond (/proc/<pid>/schedstat). */
function scheduledMicros(pid) {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
}

/**
 * CPU time of a tree of single-threaded processes in microseconds: `pid`, its live children, and
 * its reaped children (cutime/cstime). For PostgreSQL's postmaster: every backend and background
 * process of the server. Live processes are read from schedstat, not from stat's 10 ms ticks: a
 * backend runs in bursts of tens of µs, and over a 1 s window its tick-sampled time was off by
 * half or more (FINDINGS.md, L).
 */
export function treeCpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let total = (Number(f[13]) + Number(f[14])) * TICK_US + scheduledMicros(pid);
  for (const child of childrenOf(pid)) {
    try {
      total += scheduledMicros(child);
    } catch {
      // exited just now: its time is in the parent's cutime/cstime once reaped
    }
  }
  return total;
}
