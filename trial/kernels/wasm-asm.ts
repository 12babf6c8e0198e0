/*
 * A minimal WebAssembly assembler for the few SIMD loops that tfjs-backend-wasm cannot compose
 * from its own kernels at speed (max-pool and depthwise filter gradients: branchy or strided
 * scalar JS runs them 5–10× slower). Kernels are written as small statement/expression trees,
 * assembled into one module that imports the backend's own memory, so they read and write
 * tensors in place on the wasm heap. Only i32 pointers/indices, f32 and f32x4 are supported.
 */

/** Emits instructions into a function body. */
export type Code = (out: number[]) => void;

const enum Op {
  Block = 0x02,
  Loop = 0x03,
  If = 0x04,
  End = 0x0b,
  Br = 0x0c,
  BrIf = 0x0d,
  Select = 0x1b,
  LocalGet = 0x20,
  LocalSet = 0x21,
  F32Load = 0x2a,
  F32Store = 0x38,
  I32Const = 0x41,
  F32Const = 0x43,
  I32LtS = 0x48,
  I32GtS = 0x4a,
  I32GeS = 0x4e,
  F32Add = 0x92,
  I32Add = 0x6a,
  I32Sub = 0x6b,
  I32Mul = 0x6c,
  I32DivS = 0x6d,
  I32Shl = 0x74,
  SimdPrefix = 0xfd,
  Void = 0x40,
}

const enum SimdOp {
  Load = 0x00,
  Store = 0x0b,
  Const = 0x0c,
  Shuffle = 0x0d,
  I32x4Splat = 0x11,
  F32x4Splat = 0x13,
  I32x4ExtractLane = 0x1b,
  F32x4Gt = 0x44,
  Bitselect = 0x52,
  I32x4Add = 0xae,
  F32x4Add = 0xe4,
  F32x4Mul = 0xe6,
}

const enum ValueType {
  I32 = 0x7f,
  F32 = 0x7d,
  V128 = 0x7b,
}

function unsignedLeb(value: number, out: number[]): void {
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
}

function signedLeb(value: number, out: number[]): void {
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

function simd(op: SimdOp, out: number[]): void {
  out.push(Op.SimdPrefix);
  unsignedLeb(op, out);
}

/** A local variable (parameters are locals too). */
export interface Local {
  readonly index: number;
  readonly type: 'i32' | 'v128';
}

const binary =
  (op: Op) =>
  (a: Code, b: Code): Code =>
  (out) => {
    a(out);
    b(out);
    out.push(op);
  };
const simdBinary =
  (op: SimdOp) =>
  (a: Code, b: Code): Code =>
  (out) => {
    a(out);
    b(out);
    simd(op, out);
  };

// ---- expressions ----
export const get =
  (local: Local): Code =>
  (out) => {
    out.push(Op.LocalGet);
    unsignedLeb(local.index, out);
  };
export const i32 =
  (value: number): Code =>
  (out) => {
    out.push(Op.I32Const);
    signedLeb(value | 0, out);
  };
export const add = binary(Op.I32Add);
export const sub = binary(Op.I32Sub);
export const mul = binary(Op.I32Mul);
export const div = binary(Op.I32DivS);
export const lt = binary(Op.I32LtS);
const gt = binary(Op.I32GtS);
export const ge = binary(Op.I32GeS);
/** Flat index of [n, h, w, c] in an NHWC array of the given height, width and channels. */
export const nhwc = (n: Code, h: Code, w: Code, c: Code, height: Code, width: Code, channels: Code): Code =>
  add(mul(add(mul(add(mul(n, height), h), width), w), channels), c);
/** Byte address of element `index` of an f32/i32 array starting at byte `base`. */
export const at = (base: Code, index: Code): Code => add(base, binary(Op.I32Shl)(index, i32(2)));
/** `ifTrue` if `condition` is non-zero, else `ifFalse` (both are evaluated). */
export const select =
  (ifTrue: Code, ifFalse: Code, condition: Code): Code =>
  (out) => {
    ifTrue(out);
    ifFalse(out);
    condition(out);
    out.push(Op.Select);
  };
/** max/min of two side-effect-free expressions (each is evaluated twice). */
export const max = (a: Code, b: Code): Code => select(a, b, gt(a, b));
export const min = (a: Code, b: Code): Code => select(a, b, lt(a, b));
export const loadF32 =
  (address: Code): Code =>
  (out) => {
    address(out);
    out.push(Op.F32Load, 2, 0);
  };
export const addF32 = binary(Op.F32Add);
/** v128 at byte `address` + `offset` (a constant folded into the instruction). */
export const loadV128 =
  (address: Code, offset = 0): Code =>
  (out) => {
    address(out);
    simd(SimdOp.Load, out);
    out.push(4);
    unsignedLeb(offset, out);
  };
/** f32x4 of a constant, or of an f32 expression. */
export const splatF32 =
  (value: number | Code): Code =>
  (out) => {
    if (typeof value === 'number') out.push(Op.F32Const, ...new Uint8Array(new Float32Array([value]).buffer));
    else value(out);
    simd(SimdOp.F32x4Splat, out);
  };
export const splatI32 =
  (value: Code): Code =>
  (out) => {
    value(out);
    simd(SimdOp.I32x4Splat, out);
  };
export const constI32x4 =
  (lanes: [number, number, number, number]): Code =>
  (out) => {
    simd(SimdOp.Const, out);
    out.push(...new Uint8Array(new Int32Array(lanes).buffer));
  };
/** Bytes of a and b (lanes 0–15 and 16–31) picked by `lanes`, as i8x16.shuffle. */
const shuffle =
  (a: Code, b: Code, lanes: number[]): Code =>
  (out) => {
    a(out);
    b(out);
    simd(SimdOp.Shuffle, out);
    out.push(...lanes);
  };
/** shuffle by f32 lanes (0–3 from a, 4–7 from b). */
export const shuffleF32 = (a: Code, b: Code, lanes: [number, number, number, number]): Code =>
  shuffle(a, b, lanes.flatMap((lane) => [4 * lane, 4 * lane + 1, 4 * lane + 2, 4 * lane + 3]));
export const addI32x4 = simdBinary(SimdOp.I32x4Add);
export const addF32x4 = simdBinary(SimdOp.F32x4Add);
export const mulF32x4 = simdBinary(SimdOp.F32x4Mul);
export const gtF32x4 = simdBinary(SimdOp.F32x4Gt);
/** Lanes of `ifSet` where `mask` is all ones, of `ifClear` elsewhere. */
export const bitselect =
  (ifSet: Code, ifClear: Code, mask: Code): Code =>
  (out) => {
    ifSet(out);
    ifClear(out);
    mask(out);
    simd(SimdOp.Bitselect, out);
  };
export const laneI32 =
  (vector: Code, lane: number): Code =>
  (out) => {
    vector(out);
    simd(SimdOp.I32x4ExtractLane, out);
    out.push(lane);
  };
// ---- statements ----
export const set =
  (local: Local, value: Code): Code =>
  (out) => {
    value(out);
    out.push(Op.LocalSet);
    unsignedLeb(local.index, out);
  };
export const storeF32 =
  (address: Code, value: Code): Code =>
  (out) => {
    address(out);
    value(out);
    out.push(Op.F32Store, 2, 0);
  };
export const storeV128 =
  (address: Code, value: Code, offset = 0): Code =>
  (out) => {
    address(out);
    value(out);
    simd(SimdOp.Store, out);
    out.push(4);
    unsignedLeb(offset, out);
  };
export const seq =
  (...statements: Code[]): Code =>
  (out) => {
    for (const statement of statements) statement(out);
  };
export const when =
  (condition: Code, ...body: Code[]): Code =>
  (out) => {
    condition(out);
    out.push(Op.If, Op.Void);
    seq(...body)(out);
    out.push(Op.End);
  };
/** for (counter = from; counter < to; counter += step) body — `to` is re-evaluated each time. */
export const loop =
  (counter: Local, from: Code, to: Code, step: number, ...body: Code[]): Code =>
  (out) => {
    set(counter, from)(out);
    out.push(Op.Block, Op.Void, Op.Loop, Op.Void);
    ge(get(counter), to)(out);
    out.push(Op.BrIf, 1);
    seq(...body)(out);
    set(counter, add(get(counter), i32(step)))(out);
    out.push(Op.Br, 0, Op.End, Op.End);
  };

/** Declares the parameters (all i32) and locals of one exported function. */
export class FunctionBuilder {
  private readonly i32Locals: Local[] = [];
  private readonly v128Locals: Local[] = [];
  readonly params: Record<string, Local> = {};

  constructor(
    readonly name: string,
    paramNames: readonly string[],
  ) {
    paramNames.forEach((param, index) => (this.params[param] = { index, type: 'i32' }));
  }

  private get paramCount(): number {
    return Object.keys(this.params).length;
  }

  i32(): Local {
    const local: Local = { index: -1, type: 'i32' };
    this.i32Locals.push(local);
    return local;
  }

  v128(): Local {
    const local: Local = { index: -1, type: 'v128' };
    this.v128Locals.push(local);
    return local;
  }

  /** The function's body bytes; local indices are fixed here (params, then i32s, then v128s). */
  assemble(body: Code): { params: number; code: number[] } {
    const base = this.paramCount;
    this.i32Locals.forEach((local, k) => ((local as { index: number }).index = base + k));
    this.v128Locals.forEach((local, k) => ((local as { index: number }).index = base + this.i32Locals.length + k));
    const code: number[] = [];
    const groups = [
      [this.i32Locals.length, ValueType.I32],
      [this.v128Locals.length, ValueType.V128],
    ].filter(([count]) => count > 0);
    unsignedLeb(groups.length, code);
    for (const [count, type] of groups) {
      unsignedLeb(count, code);
      code.push(type);
    }
    body(code);
    code.push(Op.End);
    return { params: base, code };
  }
}

function section(id: number, content: number[], out: number[]): void {
  out.push(id);
  unsignedLeb(content.length, out);
  out.push(...content);
}

function name(text: string, out: number[]): void {
  const bytes = new TextEncoder().encode(text);
  unsignedLeb(bytes.length, out);
  out.push(...bytes);
}

/**
 * A module importing `env.memory` and exporting `functions` (i32 params, no results). A shared
 * memory (the multithreaded backend's) must be imported as shared with a maximum; declaring the
 * wasm32 limit of 65536 pages accepts any.
 */
export function assembleModule(
  functions: { name: string; params: number; code: number[] }[],
  sharedMemory = false,
): Uint8Array<ArrayBuffer> {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [];
  unsignedLeb(functions.length, types);
  for (const fn of functions) {
    types.push(0x60);
    unsignedLeb(fn.params, types);
    for (let p = 0; p < fn.params; p++) types.push(ValueType.I32);
    types.push(0);
  }
  section(1, types, out);
  const imports = [1];
  name('env', imports);
  name('memory', imports);
  imports.push(0x02);
  if (sharedMemory) {
    imports.push(0x03, 0x00);
    unsignedLeb(65536, imports);
  } else {
    imports.push(0x00, 0x00);
  }
  section(2, imports, out);
  const declarations: number[] = [];
  unsignedLeb(functions.length, declarations);
  functions.forEach((_, index) => unsignedLeb(index, declarations));
  section(3, declarations, out);
  const exports: number[] = [];
  unsignedLeb(functions.length, exports);
  functions.forEach((fn, index) => {
    name(fn.name, exports);
    exports.push(0x00);
    unsignedLeb(index, exports);
  });
  section(7, exports, out);
  const bodies: number[] = [];
  unsignedLeb(functions.length, bodies);
  for (const fn of functions) {
    unsignedLeb(fn.code.length, bodies);
    bodies.push(...fn.code);
  }
  section(10, bodies, out);
  return new Uint8Array(out);
}
