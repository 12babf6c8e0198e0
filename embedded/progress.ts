/*
 * The progress line of long runs (search, retrain) on stderr: overall fraction done, ETA, and the
 * latest numbers (reward, entropy, loss). On a terminal it is one line redrawn in place, with log
 * lines printed above it; otherwise (a pipe, a log file, CI) a plain line every so often, so logs
 * stay readable and small.
 */

export interface ProgressView {
  /** Where the run is, e.g. "epoch 3/10 child 120/282". */
  label: string;
  /** Fraction of the whole run done, in [0, 1]. */
  fraction: number;
  /** Seconds still to go, or null while unknown. */
  etaSeconds: number | null;
  /** True when etaSeconds leaves out work of a kind not timed yet: a lower bound. */
  etaPartial?: boolean;
  /** The latest numbers, e.g. "reward 0.712 entropy 28.1 loss 0.83". */
  stats: string;
}

/** What progress goes to: stderr, or a stand-in in tests. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

/** "1 epoch", "3 epochs". */
export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

const BAR_WIDTH = 20;

export class ProgressLine {
  private readonly tty: boolean;
  private shown = false;
  private lastDraw = 0;
  private lastView: ProgressView | undefined;

  /** `plainEveryMs`: the interval of plain lines when not on a terminal. */
  constructor(
    private readonly stream: ProgressStream = process.stderr,
    private readonly plainEveryMs = 30_000,
  ) {
    this.tty = stream.isTTY === true;
  }

  /** Shows `view`: redrawn at most 5 times a second on a terminal, a plain line every plainEveryMs otherwise. */
  update(view: ProgressView, force = false): void {
    this.lastView = view;
    const now = Date.now();
    if (!force && now - this.lastDraw < (this.tty ? 200 : this.plainEveryMs)) return;
    this.lastDraw = now;
    if (this.tty) {
      const columns = this.stream.columns ?? 120;
      this.stream.write(`\r\x1b[2K${render(view, true).slice(0, columns - 1)}`);
      this.shown = true;
    } else this.stream.write(`${render(view, false)}\n`);
  }

  /** Prints a line of its own (to `out`, by default the progress stream), above the progress line on a terminal. */
  log(line: string, out: ProgressStream = this.stream): void {
    if (this.tty && this.shown) this.stream.write('\r\x1b[2K');
    out.write(`${line}\n`);
    if (this.tty && this.lastView) {
      const columns = this.stream.columns ?? 120;
      this.stream.write(render(this.lastView, true).slice(0, columns - 1));
    }
  }

  /** Removes the progress line (terminal) so what follows starts on a clean line. */
  close(): void {
    if (this.tty && this.shown) this.stream.write('\r\x1b[2K');
    this.shown = false;
    this.lastView = undefined;
  }
}

function render(view: ProgressView, bar: boolean): string {
  const fraction = Math.min(1, Math.max(0, view.fraction));
  const percent = `${(100 * fraction).toFixed(fraction < 0.1 ? 1 : 0)}%`;
  const filled = Math.round(fraction * BAR_WIDTH);
  const meter = bar ? `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` : '';
  const eta = view.etaSeconds === null ? 'ETA --' : `ETA ${view.etaPartial ? '>' : ''}${formatDuration(view.etaSeconds)}`;
  return `${view.label} ${meter}${percent} ${eta}${view.stats ? ` | ${view.stats}` : ''}`;
}

/**
 * Seconds per unit of work, per kind of unit (a training step, a reward sample, an evaluation),
 * learnt as the run goes; the ETA is the remaining units weighted by them. Kinds not timed yet
 * are left out, and the estimate says so (`partial`: a lower bound).
 */
export class EtaEstimator<K extends string> {
  private readonly seconds = new Map<K, { total: number; count: number }>();

  record(kind: K, seconds: number, units = 1): void {
    const entry = this.seconds.get(kind) ?? { total: 0, count: 0 };
    entry.total += seconds;
    entry.count += units;
    this.seconds.set(kind, entry);
  }

  /** Seconds for `remaining` units of each kind; null while no kind with units left has been timed. */
  eta(remaining: Partial<Record<K, number>>): { seconds: number; partial: boolean } | null {
    let seconds = 0;
    let untimed = 0;
    let left = 0;
    for (const [kind, units] of Object.entries(remaining) as [K, number][]) {
      if (units <= 0) continue;
      left++;
      const entry = this.seconds.get(kind);
      if (entry && entry.count > 0) seconds += (units * entry.total) / entry.count;
      else untimed++;
    }
    return left > 0 && untimed === left ? null : { seconds, partial: untimed > 0 };
  }
}
