/*
 * NNI's v3 HTTP trial command channel as the manager serves it (NNI-PROTOCOL.md b.3–b.4):
 * per trial, PUT {"type":"request_parameter"} queues a request, a GET long-polls for the next
 * queued parameter (408 after `pollMs`, 410 once closed), PUT {"type":"metric"} records the
 * metric string. Parameters are handed out from one FIFO to whichever trial asks first, as
 * NNI's V3asV1 does — the source of the parameter-swap gotcha.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedMetric {
  trialId: string;
  /** The record string exactly as the trial sent it. */
  metric: string;
}

export class FakeTrialChannelServer {
  readonly metrics: ReceivedMetric[] = [];
  /** Every request in arrival order, e.g. "PUT LJEWf {"type":"request_parameter"}". */
  readonly log: string[] = [];
  /** Parameters no trial has asked for yet, and trials that asked before one was there. */
  private readonly pending: string[] = [];
  private readonly requesters: string[] = [];
  /** Commands assigned to a trial and not yet fetched, and a trial's waiting long-poll GET. */
  private readonly queues = new Map<string, string[]>();
  private readonly waiting = new Map<string, ServerResponse>();
  private readonly closedTrials = new Set<string>();
  private server: Server | undefined;
  port = 0;

  constructor(private readonly pollMs = 1000) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** NNI_TRIAL_COMMAND_CHANNEL for a trial id (the manager uses localhost). */
  urlFor(trialId: string): string {
    return `http://127.0.0.1:${this.port}/env/local-env/${trialId}`;
  }

  /** Queues a TR content string for the next trial that asks. */
  enqueueParameter(trContent: string): void {
    this.pending.push(trContent);
    this.dispatch();
  }

  /** Shuts one trial's channel: its GETs get 410 from now on. */
  closeTrial(trialId: string): void {
    this.closedTrials.add(trialId);
    const res = this.waiting.get(trialId);
    if (res) {
      this.waiting.delete(trialId);
      res.writeHead(410).end();
    }
  }

  async stop(): Promise<void> {
    for (const res of this.waiting.values()) res.writeHead(410).end();
    this.waiting.clear();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private dispatch(): void {
    // The head of the FIFO goes to whichever trial asked first (V3asV1).
    while (this.pending.length && this.requesters.length) {
      const trialId = this.requesters.shift()!;
      const queue = this.queues.get(trialId) ?? [];
      queue.push(JSON.stringify({ type: 'parameter', parameter: this.pending.shift()! }));
      this.queues.set(trialId, queue);
    }
    for (const [trialId, res] of this.waiting) {
      const command = this.queues.get(trialId)?.shift();
      if (command === undefined) continue;
      this.waiting.delete(trialId);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(command);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = /^\/env\/local-env\/(\w+)$/.exec(req.url ?? '');
    if (!match) return void res.writeHead(404).end();
    const trialId = match[1]!;
    let body = '';
    for await (const chunk of req) body += chunk;
    this.log.push(`${req.method} ${trialId}${body ? ' ' + body : ''}`);
    if (this.closedTrials.has(trialId)) return void res.writeHead(410).end();
    if (req.method === 'PUT') {
      const command = JSON.parse(body) as { type: string; metric?: unknown };
      if (command.type === 'request_parameter') this.requesters.push(trialId);
      else if (command.type === 'metric') {
        if (typeof command.metric !== 'string') return void res.writeHead(400).end('metric must be a string');
        this.metrics.push({ trialId, metric: command.metric });
      } else return void res.writeHead(400).end(`unknown command ${command.type}`);
      res.writeHead(200).end();
      this.dispatch();
      return;
    }
    if (req.method === 'GET') {
      this.waiting.set(trialId, res);
      const timer = setTimeout(() => {
        if (this.waiting.get(trialId) === res) {
          this.waiting.delete(trialId);
          res.writeHead(408).end();
        }
      }, this.pollMs);
      res.on('close', () => clearTimeout(timer));
      this.dispatch();
      return;
    }
    res.writeHead(405).end();
  }
}
