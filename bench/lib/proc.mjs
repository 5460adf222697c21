/** CPU time and memory of another process, read from /proc (Linux). */
import { readFileSync } from 'node:fs';

// USER_HZ is 100 on every mainstream Linux build; `getconf CLK_TCK` confirms it on this machine.
const TICK_US = 10_000;

/** User + system CPU time of `pid` in microseconds (10 ms resolution). */
export function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields after its closing paren are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
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
