// The suite's own rule for missing tools (test/support/need.ts): a loud skip on a developer's machine, a
// failure under CI, so that no CI run goes green with a suite silently skipped.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { needTool, underCi } from '../support/need.js';

describe('needTool', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('says nothing and returns undefined when the tool is there, CI or not', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(needTool('dotnet', true, 'the e2e tests', { CI: 'true' })).toBeUndefined();
    expect(needTool('dotnet', true, 'the e2e tests', {})).toBeUndefined();
    expect(warn).not.toHaveBeenCalled();
  });

  it('locally: prints a banner naming what did not run and how to fix it, and returns the skip reason', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const reason = needTool('redis-server', false, 'the Redis contract tests', {});
    expect(reason).toMatch(/^SKIPPED: redis-server is missing, so the Redis contract tests cannot run \(apt-get install redis-server\)$/);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toContain(reason!.slice('SKIPPED: '.length));
  });

  it('under CI: throws instead of skipping, for every tool', () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    for (const tool of ['dotnet', 'real-packages', 'redis-server', 'nginx', 'openssl', 'procfs'] as const) {
      expect(() => needTool(tool, false, 'some tests', { CI: 'true' })).toThrow(new RegExp(`CI=true and ${tool} is missing.*nothing may be skipped`));
    }
    expect(console.warn).not.toHaveBeenCalled();
  });

  it('reads CI as CI services set it', () => {
    for (const v of ['true', 'TRUE', '1', 'yes', 'github']) expect(underCi({ CI: v }), v).toBe(true);
    for (const v of [undefined, '', '0', 'false', 'False']) expect(underCi({ CI: v }), String(v)).toBe(false);
  });
});
