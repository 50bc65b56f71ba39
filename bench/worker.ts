// One generator process: bench/run.ts forks it, hands it a task over IPC and collects its result.
import { performance } from 'node:perf_hooks';
import type { FromWorker, Progress, ToWorker, WorkerTask } from './lib/protocol.ts';
import { SCENARIO_RUNNERS, type WorkerContext } from './lib/scenarios.ts';
import { ownCpuSeconds } from './lib/stats.ts';

const send = (msg: FromWorker): void => {
  process.send?.(msg);
};

/** Sends the last message, then leaves: open sockets go with the process. */
function finish(msg: FromWorker, code: number): void {
  if (!process.send) process.exit(code);
  process.send(msg, undefined, {}, () => process.exit(code));
}

const releases = new Map<string, (data: Record<string, number>) => void>();
const released = new Map<string, Record<string, number>>();

function makeContext(task: WorkerTask): WorkerContext & { measured: { cpu: number; wall: number } } {
  const sources = task.options.sources;
  // Each worker starts its round robin at a different address, so K workers spread evenly too.
  let nextSource = task.index;
  let lastProgress = 0;
  let cpuStart = 0;
  let wallStart = 0;
  const measured = { cpu: 0, wall: 0 };
  return {
    task,
    opts: task.options,
    measured,
    barrier(name, data = {}) {
      return new Promise((resolve) => {
        const early = released.get(name);
        if (early) {
          released.delete(name);
          resolve(early);
          return;
        }
        releases.set(name, resolve);
        send({ type: 'barrier', barrier: name, data });
      });
    },
    progress(phase, done, total, failures = 0, count = done) {
      const t = performance.now();
      if (t - lastProgress < 250 && done < total) return;
      lastProgress = t;
      const progress: Progress = { phase, done, total, failures, count };
      send({ type: 'progress', progress });
    },
    measureStart() {
      cpuStart = ownCpuSeconds();
      wallStart = performance.now();
    },
    measureEnd() {
      measured.cpu = ownCpuSeconds() - cpuStart;
      measured.wall = (performance.now() - wallStart) / 1000;
    },
    clientOptions(username) {
      const o = task.options;
      const localAddress = sources.length === 0 ? undefined : sources[nextSource++ % sources.length];
      return {
        host: o.host, port: o.port, domain: o.domain, tls: o.tls, mech: o.mech, localAddress,
        username, password: o.password, sm: o.sm,
      };
    },
  };
}

async function run(task: WorkerTask): Promise<void> {
  const ctx = makeContext(task);
  const result = await SCENARIO_RUNNERS[task.options.scenario](ctx);
  finish({
    type: 'result',
    result: { ...result, cpuSeconds: ownCpuSeconds(), measuredCpuSeconds: ctx.measured.cpu, measuredWallSeconds: ctx.measured.wall },
  }, 0);
}

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'task') {
    run(msg.task).catch((err: unknown) => {
      finish({ type: 'failed', message: err instanceof Error ? err.message : String(err) }, 1);
    });
  } else if (msg.type === 'release') {
    const resolve = releases.get(msg.barrier);
    if (resolve) {
      releases.delete(msg.barrier);
      resolve(msg.data);
    } else {
      released.set(msg.barrier, msg.data);
    }
  }
});

// A stray rejection (a reply that lost its waiter when the run failed) must not hide the real failure.
process.on('unhandledRejection', (err: unknown) => {
  finish({ type: 'failed', message: err instanceof Error ? err.message : String(err) }, 1);
});

// Without the coordinator there is nobody to report to: stop at once rather than linger with open sockets.
process.on('disconnect', () => process.exit(1));
