/*
 * The tuner's end of NNI's WebSocket command channel (NNI-PROTOCOL.md a.2, a.5): framing (one
 * text message = one JSON command), control frames (`_nop_`, `_bye_`), close codes, and
 * reconnection. It knows nothing of what commands mean: tuner/tuner.ts gets each frame's text
 * and parsed JSON and decides (with tuner/protocol.ts).
 *
 * Like NNI's own clients, only `_bye_` marks an intentional close; any other close is a lost
 * connection, and we reconnect to the same URL with backoff for as long as the manager keeps
 * its end waiting (30 s), resending what the old socket had not written out.
 *
 * tuner/main.ts connects before it loads anything heavy (NNI allows 10 s from spawn to
 * connection), so frames and the end that arrive before their listeners are attached are kept
 * and handed over, in order, once they are.
 */
import { WebSocket, type RawData } from 'ws';

/** Where every tuner module logs (implemented in tuner/main.ts; tests collect lines). */
export interface Logger {
  error(message: string): void;
  warning(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  trace(message: string): void;
}

export type ParsedFrame = { ok: true; value: unknown } | { ok: false; error: string };

export type TransportEnd =
  | { reason: 'bye'; detail: string }
  | { reason: 'failed'; error: Error };

export interface TransportOptions {
  log: Logger;
  /** How long to keep reconnecting after a loss; NNI's manager waits 30 s, then errors. */
  reconnectWindowMs?: number;
}

/** NNI's close codes (ts/nni_manager/common/command_channel/websocket/connection.ts). */
export const CLOSE_NORMAL = 4000;
export const CLOSE_TERMINATE = 4001;

// A resumed experiment re-sends every final metric in one FD frame; NNI's own client allows 1 GiB.
const MAX_PAYLOAD = 1024 * 1024 * 1024;
const BACKOFF_MS = [100, 200, 400, 800, 1600, 2000];
const CLOSE_WAIT_MS = 2000;

export class WsTransport {
  private readonly log: Logger;
  private readonly windowMs: number;
  private ws: WebSocket | null = null;
  /** Texts not yet handed to an open socket, in order. */
  private queue: string[] = [];
  /** Texts handed to the current socket whose write has not completed, in order. */
  private unwritten: string[] = [];
  private closing = false;
  private connectedOnce = false;
  private lostAt = 0;
  private attempt = 0;
  private lastError = '';
  private retryTimer: NodeJS.Timeout | null = null;
  private frameListener: ((text: string, parsed: ParsedFrame) => void) | null = null;
  /** Frames received while no frame listener was attached, in order. */
  private unheard: [string, ParsedFrame][] = [];
  private endListener: ((end: TransportEnd) => void) | null = null;
  private endResult: TransportEnd | null = null;
  private announceFirstOpen: () => void = () => {};
  /** Resolves once the first connection is open, or once the transport ended without one. */
  readonly firstOpen = new Promise<void>((resolve) => (this.announceFirstOpen = resolve));

  constructor(
    readonly url: string,
    options: TransportOptions,
  ) {
    this.log = options.log;
    this.windowMs = options.reconnectWindowMs ?? 30_000;
  }

  /** Every frame that is not a control frame, with its JSON (or why it is not JSON); first those that came before. */
  onFrame(listener: (text: string, parsed: ParsedFrame) => void): void {
    this.frameListener = listener;
    const unheard = this.unheard;
    this.unheard = [];
    for (const [text, parsed] of unheard) listener(text, parsed);
  }

  /** Called once: the manager said `_bye_` and closed, or the connection could not be kept (also if that happened before). */
  onEnd(listener: (end: TransportEnd) => void): void {
    this.endListener = listener;
    if (this.endResult) listener(this.endResult);
  }

  /** Connects; a failing first connection is retried within the same window as a lost one. */
  start(): void {
    this.lostAt = Date.now();
    this.open();
  }

  /** Sends a command now, or as soon as a connection is (re-)established. */
  send(command: object): void {
    const text = JSON.stringify(command);
    if (this.closing) {
      this.log.warning(`channel closing; not sent: ${text}`);
      return;
    }
    this.queue.push(text);
    this.flush();
  }

  /** Intentional close: `_bye_`, then close(4000) after what is queued; resolves once closed. */
  async close(reason: string): Promise<void> {
    if (this.closing) return;
    this.send({ type: '_bye_', reason });
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this.terminate(reason);
      return;
    }
    this.closing = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(CLOSE_NORMAL, reason);
    });
  }

  /**
   * Closes at once with code 4001 and no `_bye_`: on TE (the manager is already closing), or when
   * the tuner dies before IN (then the manager must see a lost tuner, not an intentional close).
   */
  terminate(reason: string): void {
    this.closing = true;
    this.stopRetry();
    const ws = this.ws;
    this.ws = null;
    if (ws?.readyState === WebSocket.OPEN) ws.close(CLOSE_TERMINATE, reason);
    else ws?.terminate();
  }

  private open(): void {
    this.attempt += 1;
    const ws = new WebSocket(this.url, { maxPayload: MAX_PAYLOAD });
    this.ws = ws;
    ws.on('open', () => {
      if (ws !== this.ws) return;
      this.log.info(`${this.connectedOnce ? 'reconnected' : 'connected'} to ${this.url}`);
      this.connectedOnce = true;
      this.attempt = 0;
      this.lastError = '';
      this.announceFirstOpen();
      this.flush();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (ws === this.ws) this.receive(isBinary ? data.toString() : String(data));
    });
    ws.on('ping', () => this.log.trace('ping'));
    ws.on('error', (error) => {
      if (ws === this.ws) this.lastError = error.message;
    });
    ws.on('close', (code, reason) => {
      if (ws === this.ws) this.lost(code, String(reason));
    });
  }

  private receive(text: string): void {
    if (this.closing) {
      this.log.debug(`frame after closing ignored: ${text}`);
      return;
    }
    let parsed: ParsedFrame;
    try {
      parsed = { ok: true, value: JSON.parse(text) };
    } catch (error) {
      parsed = { ok: false, error: (error as Error).message };
    }
    const type = parsed.ok && typeof parsed.value === 'object' && parsed.value ? (parsed.value as { type?: unknown }).type : undefined;
    if (type === '_nop_') return;
    if (type === '_bye_') {
      const reason = String((parsed.ok && (parsed.value as { reason?: unknown }).reason) ?? '');
      this.log.info(`manager closes the channel: ${reason}`);
      this.closing = true;
      this.stopRetry();
      const ws = this.ws!;
      // The manager closes right after `_bye_`; finish the handshake from our side too.
      ws.once('close', () => this.end({ reason: 'bye', detail: reason }));
      if (ws.readyState === WebSocket.OPEN) ws.close(CLOSE_NORMAL, 'bye received');
      return;
    }
    if (this.frameListener) this.frameListener(text, parsed);
    else this.unheard.push([text, parsed]);
  }

  private flush(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    while (this.queue.length > 0) {
      const text = this.queue.shift()!;
      this.unwritten.push(text);
      ws.send(text, (error) => {
        if (ws !== this.ws) return; // its texts were already requeued when it was lost
        if (error) this.log.debug(`send failed (${error.message}); resent after reconnecting`);
        else this.unwritten.splice(this.unwritten.indexOf(text), 1);
      });
    }
  }

  private lost(code: number, reason: string): void {
    this.ws = null;
    if (this.closing) return;
    // What the dead socket had not written out goes first on the next one, in order.
    this.queue = [...this.unwritten, ...this.queue];
    this.unwritten = [];
    if (this.attempt === 0) {
      this.log.warning(`connection to ${this.url} lost (close code ${code}${reason ? `, ${reason}` : ''}); reconnecting`);
      this.lostAt = Date.now();
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    if (Date.now() + delay - this.lostAt > this.windowMs) {
      const why = this.lastError || `close code ${code}`;
      this.closing = true;
      this.end({
        reason: 'failed',
        error: new Error(`could not (re)connect to the NNI manager at ${this.url} within ${this.windowMs / 1000} s (last: ${why})`),
      });
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  private stopRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private end(end: TransportEnd): void {
    if (this.endResult) return;
    this.endResult = end;
    this.announceFirstOpen();
    this.endListener?.(end);
  }
}
