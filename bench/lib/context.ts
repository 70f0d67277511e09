import type { Scope } from './proc.js';
import type { ScenarioOutput } from './report.js';
import type { Settings } from './settings.js';
import type { Tools } from './tools.js';

export interface Ctx {
  s: Settings;
  tools: Partial<Tools>;
  scope: Scope;
  /** Progress line on stderr. */
  log(msg: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  run(ctx: Ctx): Promise<ScenarioOutput>;
}

export function need<K extends keyof Tools>(ctx: Ctx, key: K): string {
  const v = ctx.tools[key];
  if (!v) throw new Error(`tool ${key} is not available`);
  return v;
}
