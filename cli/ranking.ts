/*
 * `nni-enas bench ranking`: how well a search's shared weights rank random architectures against
 * training each alone (bench/ranking.ts).
 */
import { join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { BACKENDS, type BackendName } from '../trial/backend.js';
import { startBackend } from './search.js';

interface RankingArgs {
  run: string;
  archs: number;
  seed: number;
  cache: string;
  out?: string;
  backend?: BackendName;
}

export const rankingCommand: CommandModule<object, RankingArgs> = {
  command: 'ranking',
  describe: "does a search's supernet rank architectures as training them alone does? Kendall τ, Spearman ρ, top-5 overlap",
  builder: (y) =>
    y
      .option('run', { type: 'string', demandOption: true, describe: "the search's run directory (nni-enas search --out); its last checkpoint's shared weights are scored" })
      .option('archs', { type: 'number', default: 20, describe: 'architectures drawn uniformly at random (at least 3)' })
      .option('seed', { type: 'number', default: 0, describe: 'draws the architectures and seeds their stand-alone training: the same set for every run of the space' })
      .option('cache', { type: 'string', default: join('runs', 'ranking-cache'), describe: 'stand-alone results, a file per (space, architecture, budget, data, seed), reused by later benchmarks' })
      .option('out', { type: 'string', describe: 'where ranking.json and ranking.svg go (default: <run>/ranking)' })
      .option('backend', { choices: BACKENDS, describe: "TensorFlow.js backend (default: the search's)" })
      .example('$0 bench ranking --run runs/enas-micro-fashion-mnist-default', '20 architectures; about 20 minutes of one core for the first run, seconds once cached')
      .example('$0 bench ranking --run runs/a && $0 bench ranking --run runs/b', 'the second run scores the same architectures and reuses their stand-alone results'),
  handler: async (args) => {
    const [{ checkRankingInput, rankingLines, runRanking, RANKING_JSON, RANKING_SVG }, { catchInterrupts }, { ProgressLine, formatDuration }] = await Promise.all([
      import('../bench/ranking.js'),
      import('../embedded/interrupt.js'),
      import('../embedded/progress.js'),
    ]);
    const run = resolve(args.run);
    const options = { run, archs: args.archs, seed: args.seed, cache: resolve(args.cache), out: resolve(args.out ?? join(run, 'ranking')) };
    const settings = checkRankingInput(options);
    const progress = new ProgressLine();
    const print = (line: string) => progress.log(line, process.stdout);
    const backend = await startBackend(args.backend ?? settings.backend ?? undefined, print);
    print(`nni-enas bench ranking: ${options.archs} random ${settings.spec.space} architectures (seed ${options.seed}), run ${run}, backend ${backend.detail}`);
    const stop = catchInterrupts(print);
    const started = performance.now();
    try {
      const result = await runRanking({ ...options, backend: backend.name }, { print, progress, stop });
      if (!result) {
        print(`stopped; stand-alone results trained so far are in ${options.cache}: run the same command again to continue`);
        process.exitCode = 130;
        return;
      }
      for (const line of rankingLines(result)) print(line);
      print(`wrote ${join(options.out, RANKING_JSON)}, ${join(options.out, RANKING_SVG)} in ${formatDuration((performance.now() - started) / 1000)}`);
    } finally {
      stop.dispose();
    }
  },
};
