/*
 * The pieces of an embedded search, built from its settings exactly as the NNI path builds them:
 * the task (data, supernet, reward: trial/task.ts, the trial program's own), the ENAS controller
 * (tuner/controller.ts, the tuner's own), and the loop state a checkpoint carries. `derive` and a
 * resumed search rebuild the same pieces from settings.json and the checkpoint.
 */
import { join } from 'node:path';
import { compileChecker } from '../common/validate.js';
import type { TrainableModel } from '../trial/model.js';
import { DataParallelModel, parallelize } from '../trial/parallel.js';
import { createTask, type Task } from '../trial/task.js';
import { createController, EnasController } from '../tuner/controller.js';
import type { ScoredArchitecture } from './architectures.js';
import { CHECKPOINT_DIR, readCheckpoint, restoreModel, type Checkpoint } from './checkpoint.js';
import { trialOptionsOf, type SearchSettings } from './settings.js';

/** Sums over the epoch in progress, so an interrupted epoch resumes with its statistics intact. */
export interface EpochSums {
  steps: number;
  trainLoss: number;
  trainAccuracy: number;
  samples: number;
  reward: number;
  entropy: number;
  childSeconds: number;
  controllerSeconds: number;
}

/** Sums over the controller update in progress (its numAggregate samples). */
export interface UpdateSums {
  samples: number;
  reward: number;
  entropy: number;
}

/** Where a search stands; saved with every checkpoint. */
export interface SearchState {
  /** Epochs completed. */
  epoch: number;
  /** The phase in progress within the next epoch (ENAS.md §3: child training, then the controller). */
  phase: 'child' | 'controller';
  /** Units of that phase done: training steps, or reward samples. */
  phaseDone: number;
  /** Child training steps since the start: the data position and the learning-rate clock. */
  globalStep: number;
  /** Validation minibatches drawn so far (rewards and reports each take the next one). */
  validCursor: number;
  updates: number;
  /** Reward samples so far: the count of trials.jsonl records. */
  samples: number;
  epochSums: EpochSums;
  updateSums: UpdateSums;
  /** The best architectures seen in the epochs' evaluations, best first. */
  best: ScoredArchitecture[];
  /** Seconds all the processes that ran this search have run, summed. */
  seconds: number;
  historyLines: number;
  /** The batcher positions the counters above imply, written out for a reader of the checkpoint. */
  batchers: { train: { epoch: number; position: number }; validBatchesUsed: number };
  /** The controller's own save() (tuner/controller.ts): parameters, Adam moments, baseline, pending rewards, RNG. */
  controller: unknown;
}

export const emptyEpochSums = (): EpochSums => ({
  steps: 0,
  trainLoss: 0,
  trainAccuracy: 0,
  samples: 0,
  reward: 0,
  entropy: 0,
  childSeconds: 0,
  controllerSeconds: 0,
});

export const emptyUpdateSums = (): UpdateSums => ({ samples: 0, reward: 0, entropy: 0 });

export function initialState(): SearchState {
  return {
    epoch: 0,
    phase: 'child',
    phaseDone: 0,
    globalStep: 0,
    validCursor: 0,
    updates: 0,
    samples: 0,
    epochSums: emptyEpochSums(),
    updateSums: emptyUpdateSums(),
    best: [],
    seconds: 0,
    historyLines: 0,
    batchers: { train: { epoch: 0, position: 0 }, validBatchesUsed: 0 },
    controller: null,
  };
}

const count = { type: 'integer', minimum: 0 };
const sums = (keys: string[]) => ({
  type: 'object',
  properties: Object.fromEntries(keys.map((k) => [k, { type: 'number' }])),
  required: keys,
  additionalProperties: false,
});

const checkState = compileChecker<SearchState>(
  {
    type: 'object',
    properties: {
      epoch: count,
      phase: { enum: ['child', 'controller'] },
      phaseDone: count,
      globalStep: count,
      validCursor: count,
      updates: count,
      samples: count,
      epochSums: sums(['steps', 'trainLoss', 'trainAccuracy', 'samples', 'reward', 'entropy', 'childSeconds', 'controllerSeconds']),
      updateSums: sums(['samples', 'reward', 'entropy']),
      best: {
        type: 'array',
        items: {
          type: 'object',
          properties: { tokens: { type: 'array', items: count }, score: { type: 'object' }, epoch: { type: 'integer', minimum: 1 } },
          required: ['tokens', 'score'],
          additionalProperties: false,
        },
      },
      seconds: { type: 'number', minimum: 0 },
      historyLines: count,
      batchers: { type: 'object' },
      controller: { type: 'object' },
    },
    required: [
      'epoch',
      'phase',
      'phaseDone',
      'globalStep',
      'validCursor',
      'updates',
      'samples',
      'epochSums',
      'updateSums',
      'best',
      'seconds',
      'historyLines',
      'batchers',
      'controller',
    ],
    additionalProperties: false,
  },
  'search checkpoint state',
);

/** Worker threads training the model, 1 when it runs in this thread. */
export const workersOf = (model: TrainableModel): number => (model instanceof DataParallelModel ? model.workers : 1);

/** A search's working parts. */
export interface SearchParts {
  task: Task;
  model: TrainableModel;
  controller: EnasController;
  /** What a checkpoint must match to be loaded into these parts. */
  description: Record<string, unknown>;
}

/**
 * `workers` > 1 trains the supernet data-parallel over that many threads (trial/parallel.ts:
 * wasm runs one thread, so this is how a search uses more than one core; per-shard batch norm and
 * dropout masks that a resume does not reproduce are the differences; the RNN's replicas each
 * carry the hidden state of their own rows).
 */
export function buildSearch(settings: SearchSettings, workers = 1): SearchParts {
  const task = createTask(trialOptionsOf(settings), settings.spec);
  const model = parallelize(task.createSupernet(), workers);
  const controller = createController(settings.spec, settings.controller);
  if (!(controller instanceof EnasController)) throw new Error('internal: createController did not return the ENAS controller');
  return {
    task,
    model,
    controller,
    description: { supernet: task.supernetDescription, controller: settings.controller, trialArgs: settings.trialArgs },
  };
}

/** Reads the search checkpoint in `runDir` and loads it into `parts`; returns the loop state. */
export function restoreSearch(runDir: string, parts: SearchParts): { state: SearchState; checkpoint: Checkpoint<SearchState> } {
  const checkpoint = readCheckpoint<SearchState>(join(runDir, CHECKPOINT_DIR), 'search', parts.description);
  const state = checkState(checkpoint.meta.state);
  restoreModel(parts.model, checkpoint);
  parts.controller.load(state.controller);
  return { state, checkpoint };
}
