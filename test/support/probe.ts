// Health probes while something heavy runs: how long the event loop of a nuproxy process was held.
import { expect } from 'vitest';
import { get } from './http.js';

/**
 * Runs `request` while probing `<baseUrl>health/live` back to back; returns its answer, the slowest probe (ms)
 * and how many probes ran. The probe in flight when `request` ends is awaited and counted: it is the one a
 * blocked event loop holds up.
 */
export async function whileProbing<T>(baseUrl: string, request: () => Promise<T>): Promise<{ answer: T; slowest: number; probes: number }> {
  let running = true;
  const times: number[] = [];
  const prober = (async () => {
    while (running) {
      const t = performance.now();
      expect((await get(`${baseUrl}health/live`)).status).toBe(200);
      times.push(performance.now() - t);
    }
  })();
  let answer: T;
  try {
    answer = await request();
  } finally {
    running = false;
    await prober;
  }
  return { answer, slowest: Math.max(...times, 0), probes: times.length };
}
