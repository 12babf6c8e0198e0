/*
 * The embedded ENAS search: the whole method in one process, without NNI. Epoch after epoch it
 * runs the three phases of embedded/phases.ts on the NNI path's own task, supernet and
 * controller, checkpoints (embedded/checkpoint.ts) after every epoch and whenever a stop is
 * requested, keeps the run directory's files current, and closes with a derive.
 *
 * The run directory:
 *   settings.json                  what the search runs with (embedded/settings.ts)
 *   run.json, trials.jsonl         every controller reward sample, in common/results.ts format (`nni-enas compare` reads it)
 *   history.jsonl                  one line per controller update and per epoch (embedded/history.ts)
 *   reward.svg, entropy.svg, valid.svg
 *   best-architectures.json/.svg   the best architectures of the epochs' evaluations so far
 *   best.json, best.svg            the derived architecture (embedded/derive.ts)
 *   checkpoint/                    model state, controller, RNG states, counters (embedded/checkpoint.ts)
 */
import { join } from 'node:path';
import { RunWriter, TRIALS_FILE } from '../common/results.js';
import { writeBestSoFar } from './architectures.js';
import { CHECKPOINT_DIR, saveCheckpoint } from './checkpoint.js';
import { deriveArchitectures, derivedLines, writeDerived, type DeriveResult } from './derive.js';
import { HistoryLog, keepFirstLines, writeHistoryPlots } from './history.js';
import { childPhase, controllerPhase, reportPhase, type SearchContext, type SearchIo, type WorkKind } from './phases.js';
import { count, EtaEstimator } from './progress.js';
import { buildSearch, initialState, restoreSearch, workersOf, type SearchState } from './search-setup.js';
import { trialOptionsOf, writeSettings, type SearchSettings } from './settings.js';

export interface SearchOutcome {
  /** False when the search stopped on request before its last epoch (a checkpoint holds its place). */
  finished: boolean;
  /** Epochs completed. */
  epochs: number;
  derived: { result: DeriveResult; files: string[] } | null;
}

/**
 * Starts a search in `runDir` (which must not hold one) or resumes the one there; see the file
 * comment. `workers` > 1 trains the supernet data-parallel (search-setup.ts buildSearch).
 */
export async function runSearch(runDir: string, settings: SearchSettings, resume: boolean, io: SearchIo, workers = 1): Promise<SearchOutcome> {
  const parts = buildSearch(settings, workers);
  const { task, controller } = parts;
  let trials: RunWriter | undefined;
  try {
    let state: SearchState;
    let history: HistoryLog;
    if (resume) {
      ({ state } = restoreSearch(runDir, parts));
      // A longer --epochs on resume is recorded only now that the checkpoint has loaded.
      writeSettings(runDir, settings);
      history = HistoryLog.resume(runDir, state.historyLines);
      keepFirstLines(join(runDir, TRIALS_FILE), state.samples);
      trials = RunWriter.resume(runDir);
      const where = state.phaseDone > 0 ? `, ${state.phase} phase of epoch ${state.epoch + 1} at ${state.phaseDone}` : '';
      io.print(`resuming ${runDir}: ${count(state.epoch, 'epoch')} done${where}, ${count(state.samples, 'reward sample')}, ${count(state.updates, 'controller update')}`);
    } else {
      state = initialState();
      trials = RunWriter.create(runDir, {
        name: `${settings.experimentName}-embedded-seed${settings.controller.seed}`,
        tuner: settings.controller.policy === 'enas' ? 'enas' : 'random',
        mode: 'shared',
        space: settings.spec.space,
        seed: settings.controller.seed,
        optimize: 'maximize',
        meta: { runner: 'embedded', preset: settings.preset, spec: settings.spec, trialArgs: settings.trialArgs, schedule: settings.schedule, controller: settings.controller },
      });
      writeSettings(runDir, settings);
      history = HistoryLog.create(runDir);
    }
    const trialOptions = trialOptionsOf(settings);
    io.print(`data: ${task.dataSummary}`);
    const threads = workersOf(parts.model);
    const where = threads > 1 ? `, data-parallel over ${threads} worker threads` : '';
    io.print(`model: ${task.modelSummary('supernet')}${where}; controller ${settings.controller.policy}, ${settings.schedule.controllerSteps} updates × ${settings.controller.numAggregate} rewards per epoch`);
    io.print(`schedule: ${count(settings.schedule.epochs, 'epoch')} of ${count(task.batchesPerEpoch, 'child step')} (preset ${settings.preset}, seed ${trialOptions.seed}); results in ${runDir}`);

    const processStart = performance.now();
    const secondsBefore = state.seconds;
    const ctx: SearchContext = {
      settings,
      parts,
      trainer: task.trainer(parts.model, state.globalStep),
      state,
      history,
      trials,
      io,
      eta: new EtaEstimator<WorkKind>(),
      seconds: () => secondsBefore + (performance.now() - processStart) / 1000,
      latest: {},
    };
    const checkpoint = async () => {
      state.seconds = ctx.seconds();
      state.historyLines = history.lines;
      state.controller = controller.save();
      state.batchers = {
        train: { epoch: Math.floor(state.globalStep / task.batchesPerEpoch), position: state.globalStep % task.batchesPerEpoch },
        validBatchesUsed: state.validCursor,
      };
      await saveCheckpoint(join(runDir, CHECKPOINT_DIR), 'search', parts.description, parts.model, state);
    };
    // A checkpoint from the start, so a run killed in its first epoch can still be resumed.
    if (!resume) await checkpoint();

    const { epochs } = settings.schedule;
    while (state.epoch < epochs) {
      let completed = true;
      if (state.phase === 'child') {
        completed = await childPhase(ctx);
        if (completed) Object.assign(state, { phase: 'controller', phaseDone: 0 });
      }
      if (completed) completed = await controllerPhase(ctx);
      if (!completed) {
        await checkpoint();
        io.progress.close();
        return { finished: false, epochs: state.epoch, derived: null };
      }
      reportPhase(ctx);
      await checkpoint();
      writeHistoryPlots(runDir, history.records(), task.kind);
      writeBestSoFar(runDir, settings.spec, state.best);
    }
    io.progress.close();

    const { deriveSamples, deriveValidBatches } = settings.schedule;
    const result = await deriveArchitectures(parts, settings, { samples: deriveSamples, validBatches: deriveValidBatches }, io.stop, (done, total) =>
      io.progress.update({ label: `derive ${done}/${total}`, fraction: done / total, etaSeconds: null, stats: '' }),
    );
    io.progress.close();
    if (!result) return { finished: true, epochs: state.epoch, derived: null };
    const files = writeDerived(runDir, settings, parts, result, state.epoch);
    for (const line of derivedLines(settings, parts, result)) io.print(line);
    return { finished: true, epochs: state.epoch, derived: { result, files } };
  } finally {
    trials?.close();
    parts.model.dispose();
    controller.dispose();
  }
}
