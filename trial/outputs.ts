/*
 * What a user looks at for one trial: architecture.json and architecture.svg in the trial's
 * output directory (NNI_OUTPUT_DIR; NNI's web UI links the trial directory), and a readable
 * summary on stdout, which NNI shows in the trial's log tab.
 */
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../common/files.js';
import { drawGenotype } from '../search-spaces/draw.js';
import { microLooseEnds, nb201ArchString, NB201_EDGES, rnnLooseEnds, type Genotype, type MicroNode } from '../search-spaces/genotype.js';
import { toTokens, type Params, type SpaceSpec } from '../search-spaces/spaces.js';
import type { ParameterRecord } from './channel/index.js';
import type { TrialMode } from './options.js';

/** A trial's architecture, validated: the received record and what it decodes to. */
export interface Architecture {
  record: ParameterRecord;
  spec: SpaceSpec;
  genotype: Genotype;
}

export const ARCHITECTURE_JSON = 'architecture.json';
export const ARCHITECTURE_SVG = 'architecture.svg';

/** --output, else NNI's per-trial directory, else runs/standalone under the working directory. */
export function outputDirectory(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  return resolve(cwd, explicit ?? env.NNI_OUTPUT_DIR ?? join('runs', 'standalone'));
}

/** Writes architecture.json (genotype, NNI parameters, tokens, space spec) and architecture.svg; returns their paths. */
export function writeArchitectureFiles(dir: string, architecture: Architecture, trialJobId: string, mode: TrialMode): string[] {
  const { record, spec, genotype } = architecture;
  const json = {
    trial_job_id: trialJobId,
    parameter_id: record.parameter_id,
    parameter_source: record.parameter_source,
    mode,
    spec,
    parameters: record.parameters as Params,
    tokens: toTokens(genotype, spec),
    genotype,
    ...(genotype.space === 'nb201' && { nb201_arch: nb201ArchString(genotype) }),
  };
  const paths = [join(dir, ARCHITECTURE_JSON), join(dir, ARCHITECTURE_SVG)];
  writeFileAtomic(paths[0]!, JSON.stringify(json, null, 2) + '\n');
  writeFileAtomic(paths[1]!, drawGenotype(genotype));
  return paths;
}

function microCellLine(name: string, nodes: readonly MicroNode[]): string {
  const computed = nodes.map((node, b) => `${b + 2} = ${node.ops[0]}(${node.inputs[0]}) + ${node.ops[1]}(${node.inputs[1]})`);
  return `${name} cell: ${computed.join(' | ')} | out = concat(${microLooseEnds(nodes).join(', ')})`;
}

/** The architecture in one line per layer (macro), cell (micro), node (rnn, nb201). */
export function architectureLines(genotype: Genotype): string[] {
  switch (genotype.space) {
    case 'macro':
      return genotype.layers.map((layer, i) => {
        // Skip bit j reads [stem, out_0, …, out_{i-2}][j] (ENAS.md §1a).
        const skips = layer.skips.flatMap((bit, j) => (bit ? [j === 0 ? 'stem' : `layer ${j - 1}`] : []));
        const input = i === 0 ? 'stem' : `layer ${i - 1}`;
        return `layer ${i}: ${layer.op}(${input})${skips.length ? ` + skips from ${skips.join(', ')}` : ''}`;
      });
    case 'micro':
      return [microCellLine('normal', genotype.normal), microCellLine('reduce', genotype.reduce), 'nodes 0, 1 are the cell inputs h[i-2], h[i-1]'];
    case 'rnn':
      return [
        ...genotype.nodes.map((node, j) => `node ${j} = ${node.act}(${j === 0 ? 'x[t], h[t-1]' : `node ${node.prev}`})`),
        `h[t] = mean of nodes ${rnnLooseEnds(genotype.nodes).join(', ')}`,
      ];
    case 'nb201':
      return [1, 2, 3].map((to) => {
        const terms = NB201_EDGES.flatMap(([edgeTo, from], e) => (edgeTo === to ? [`${genotype.edges[e]}(${from})`] : []));
        return `node ${to} = ${terms.join(' + ')}`;
      });
  }
}

/** Seconds with one decimal, for summaries. */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * Wall-clock phases of a trial, measured from process start (performance.now() counts from
 * there), so the first phase includes Node's own start-up.
 */
export class Phases {
  private readonly done: [string, number][] = [];
  private last = 0;

  /** Ends the current phase under `name`. */
  end(name: string): void {
    const now = performance.now();
    this.done.push([name, now - this.last]);
    this.last = now;
  }

  ms(name: string): number {
    return this.done.filter(([n]) => n === name).reduce((sum, [, ms]) => sum + ms, 0);
  }

  get totalMs(): number {
    return this.last;
  }

  /** "start-up 0.41 s, backend 0.23 s, … (total 12.3 s)": phases to 10 ms, since start-up phases are a few tenths (bench trial-start reads them). */
  line(): string {
    return `${this.done.map(([name, ms]) => `${name} ${(ms / 1000).toFixed(2)} s`).join(', ')} (total ${seconds(this.totalMs)})`;
  }
}
