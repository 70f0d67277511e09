// `npm run bench`: nuproxy against nginx (and itself) on loopback. Installs nothing; says what is missing.
// Scenarios: warm packages, herd, metadata, restore, memory, s3, s3-clients, agents (see bench/scenarios). Each has a hard time bound.
// References: nginx, and a bare node:http server (bench/bare-server.ts) for Node's ceiling.
// Output: tables on stdout, .bench/results.json, .bench/chart.svg. Knobs: bench/README.md.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Ctx, Scenario } from './lib/context.js';
import { closeHttp } from './lib/http.js';
import { busyFraction, OtherLoad, waitQuiet } from './lib/machine.js';
import { killAllNow, Scope } from './lib/proc.js';
import { chartSvg, renderTable, summaryTable, type Check, type ScenarioResult } from './lib/report.js';
import { loadSettings, type ScenarioName } from './lib/settings.js';
import { findTools } from './lib/tools.js';
import { agentsScenario } from './scenarios/agents.js';
import { herdScenario } from './scenarios/herd.js';
import { memoryScenario } from './scenarios/memory.js';
import { metadataScenario } from './scenarios/metadata.js';
import { restoreScenario } from './scenarios/restore.js';
import { s3Scenario } from './scenarios/s3.js';
import { s3ClientsScenario } from './scenarios/s3-clients.js';
import { warmScenario } from './scenarios/warm.js';

const ALL: Record<ScenarioName, Scenario> = {
  warm: warmScenario,
  herd: herdScenario,
  metadata: metadataScenario,
  restore: restoreScenario,
  memory: memoryScenario,
  s3: s3Scenario,
  's3-clients': s3ClientsScenario,
  agents: agentsScenario,
};

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function versionOf(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }).trim().split('\n')[0]!;
  } catch (err) {
    const e = err as { stderr?: string };
    return (e.stderr ?? '').trim().split('\n')[0] ?? '';
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  const s = loadSettings();
  const { tools, problems } = findTools(s);
  if (problems.length) {
    process.stderr.write(`nuproxy bench: cannot run; nothing was started.\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return 3;
  }
  await mkdir(s.outDir, { recursive: true });

  let current: Scope | undefined;
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) {
      killAllNow();
      process.exit(130);
    }
    interrupted = true;
    log(`${sig}: stopping everything`);
    void (current?.close(sig) ?? Promise.resolve()).finally(() => {
      killAllNow();
      process.exit(130);
    });
    setTimeout(() => {
      killAllNow();
      process.exit(130);
    }, 8000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllNow);

  const env = {
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memoryGB: Math.round(totalmem() / 1e9),
    nginx: tools.nginx ? versionOf(tools.nginx, ['-v']) : undefined,
    wrk: tools.wrk ? versionOf(tools.wrk, ['-v']) : undefined,
    redis: tools.redisServer ? versionOf(tools.redisServer, ['--version']) : undefined,
    dotnet: tools.dotnet ? versionOf(tools.dotnet, ['--version']) : undefined,
    // what was measured: the commit, and whether src/ had uncommitted changes
    commit: versionOf('git', ['-C', s.root, 'rev-parse', '--short', 'HEAD']),
    srcDirty: versionOf('git', ['-C', s.root, 'status', '--porcelain', '--', 'src']) !== '',
  };
  log(`${s.quick ? 'QUICK' : 'full'} run: ${s.only.join(', ')}; runs=${s.runs}, wrk ${s.wrkSeconds}s × ${s.connections} connections; ${env.cpus}, node ${env.node}`);

  const results: ScenarioResult[] = [];
  for (const name of s.only) {
    const sc = ALL[name];
    const scope = new Scope(name, s.keepTemp);
    current = scope;
    const ctx: Ctx = { s, tools, scope, log };
    const busyBefore = s.waitQuietSeconds > 0 ? await waitQuiet(s.waitQuietSeconds * 1000, 0.15, log) : await busyFraction();
    if (busyBefore > 0.15) log(`warning: the machine was ${Math.round(busyBefore * 100)}% busy with other work before ${sc.title}; its figures may be off`);
    const t0 = performance.now();
    const other = new OtherLoad();
    other.start();
    const boundMs = s.timeouts[name] * 1000;
    log(`== ${sc.title} (bounded to ${s.timeouts[name]} s)`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), boundMs);
    });
    const work = sc.run(ctx);
    work.catch(() => undefined);
    let result: ScenarioResult;
    try {
      const out = await Promise.race([work, timeout]);
      if (out === 'timeout') {
        result = { name, title: sc.title, status: 'timeout', error: `stopped after its bound of ${s.timeouts[name]} s`, seconds: boundMs / 1000, tables: [], checks: [], notes: [], data: {} };
      } else {
        result = { name, title: sc.title, status: 'ok', seconds: (performance.now() - t0) / 1000, ...out };
      }
    } catch (err) {
      result = {
        name,
        title: sc.title,
        status: 'failed',
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        seconds: (performance.now() - t0) / 1000,
        tables: [],
        checks: [],
        notes: [],
        data: {},
      };
    } finally {
      clearTimeout(timer);
    }
    await scope.close(result.status);
    result.otherCpu = other.stop();
    result.busyBefore = busyBefore;
    result.busyAfter = await busyFraction();
    current = undefined;
    if (result.status !== 'ok') log(`${sc.title}: ${result.status.toUpperCase()}: ${result.error}`);
    log(`== ${sc.title}: ${result.status} in ${Math.round(result.seconds)} s`);
    results.push(result);
    if (interrupted) return 130;
  }
  await closeHttp();

  const checks: Check[] = results.flatMap((r) => r.checks);
  const out: string[] = [];
  out.push('', `nuproxy bench (${s.quick ? 'quick' : 'full'} run) of ${env.commit}${env.srcDirty ? ' + uncommitted src/ changes' : ''} on ${env.cpus}, ${env.memoryGB} GB, node ${env.node}`, '');
  for (const r of results) {
    if (r.status !== 'ok') {
      out.push(`${r.title}: ${r.status.toUpperCase()}: ${(r.error ?? '').split('\n')[0]}`, '');
      continue;
    }
    for (const t of r.tables) out.push(renderTable(t));
    for (const n of r.notes) out.push(`  note: ${n}`);
    const oc = r.otherCpu;
    if (oc && (oc.mean > 0.05 || oc.peak > 0.25)) {
      out.push(`  warning: other processes used ${Math.round(oc.mean * 100)}% of the CPUs on average while this ran (worst second ${Math.round(oc.peak * 100)}%): figures may be off`);
    }
    out.push('');
  }
  if (checks.length) out.push(renderTable(summaryTable(checks)), '');
  const totalSeconds = (performance.now() - started) / 1000;
  const jsonFile = join(s.outDir, 'results.json');
  const svgFile = join(s.outDir, 'chart.svg');
  await writeFile(
    jsonFile,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        quick: s.quick,
        settings: { ...s, root: undefined, outDir: undefined, distMain: undefined },
        environment: env,
        totalSeconds,
        scenarios: results,
        checks,
      },
      null,
      2,
    ) + '\n',
  );
  await writeFile(svgFile, chartSvg(checks, `nuproxy vs targets (${s.quick ? 'quick' : 'full'} run, ${env.cpus.split(' × ')[0]} cores)`));
  const passed = checks.filter((c) => c.pass).length;
  out.push(
    `${passed}/${checks.length} targets met; ${results.filter((r) => r.status !== 'ok').length} scenario(s) failed or timed out.`,
    `Results: ${jsonFile}`,
    `Chart:   ${svgFile}`,
    `Total time: ${Math.floor(totalSeconds / 60)} min ${Math.round(totalSeconds % 60)} s`,
    '',
  );
  process.stdout.write(out.join('\n'));
  return results.some((r) => r.status !== 'ok') ? 1 : 0;
}

main().then(
  (code) => {
    killAllNow();
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`nuproxy bench: ${err instanceof Error ? err.stack : String(err)}\n`);
    killAllNow();
    process.exit(1);
  },
);
