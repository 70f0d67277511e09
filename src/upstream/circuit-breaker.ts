import { NuproxyError } from '../errors.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitOptions {
  failures: number; // consecutive failures that open the circuit
  cooldownMs: number; // how long an open circuit refuses before one probe goes through
  now?: () => number;
  onChange?: (state: CircuitState, detail: { failures: number; lastError?: string }) => void;
}

/**
 * Per-upstream circuit breaker: after `failures` consecutive failures the upstream is not asked for
 * `cooldownMs` (callers serve from the cache instead of waiting for timeouts); then one probe request is let
 * through, and its outcome closes or re-opens the circuit. State changes are reported once, not per request.
 */
export class CircuitBreaker {
  private state: CircuitState = 'closed';
  private consecutive = 0;
  private openedAt = 0;
  private probing = false;
  private lastError: string | undefined;
  private readonly now: () => number;

  constructor(
    private readonly name: string,
    private readonly opts: CircuitOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Throws when the upstream must not be asked now; returns a token to report the outcome with. */
  enter(): void {
    if (this.state === 'closed') return;
    if (this.state === 'open' && this.now() - this.openedAt >= this.opts.cooldownMs) this.set('half-open');
    if (this.state === 'half-open' && !this.probing) {
      this.probing = true;
      return;
    }
    const wait = Math.max(0, Math.ceil((this.openedAt + this.opts.cooldownMs - this.now()) / 1000));
    throw new NuproxyError('UPSTREAM_UNREACHABLE', `upstream ${this.name} is not asked for ${wait}s after ${this.consecutive} failures (circuit open)`, {
      upstream: this.name,
      circuit: 'open',
    });
  }

  success(): void {
    this.probing = false;
    this.consecutive = 0;
    if (this.state !== 'closed') this.set('closed');
  }

  /** The request was given up by the caller (not the upstream's doing): frees a probe without a verdict. */
  abandoned(): void {
    this.probing = false;
  }

  failure(err: unknown): void {
    this.probing = false;
    this.consecutive++;
    this.lastError = err instanceof Error ? err.message : String(err);
    if (this.state === 'half-open' || (this.state === 'closed' && this.consecutive >= this.opts.failures)) {
      this.openedAt = this.now();
      this.set('open');
    }
  }

  health(): { state: CircuitState; consecutiveFailures: number; lastError?: string } {
    if (this.state === 'open' && this.now() - this.openedAt >= this.opts.cooldownMs) {
      return { state: 'half-open', consecutiveFailures: this.consecutive, ...(this.lastError ? { lastError: this.lastError } : {}) };
    }
    return { state: this.state, consecutiveFailures: this.consecutive, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  private set(state: CircuitState): void {
    this.state = state;
    this.opts.onChange?.(state, { failures: this.consecutive, ...(this.lastError ? { lastError: this.lastError } : {}) });
  }
}
