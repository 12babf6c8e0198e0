/*
 * How our wasm kernels talk to @tensorflow/tfjs-backend-wasm: they call the backend's own (fast,
 * XNNPACK) forward kernels directly, as its kernels do among themselves, and read or write
 * tensors in place on the wasm heap. A WasmScope frees every intermediate when the kernel ends.
 */
import tf = require('@tensorflow/tfjs-core');
import type { backend_util } from '@tensorflow/tfjs-core';
import type { DataId, DataType, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

const { getKernel, util } = tf;

type Padding = 'same' | 'valid' | backend_util.ExplicitPadding;

/** The parts of tfjs-backend-wasm's BackendWasm that these kernels use. */
export interface WasmBackend {
  /** The Emscripten module; `asm` holds its exports, among them the heap's WebAssembly.Memory. */
  wasm: { asm?: { memory?: unknown } };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: DataId): boolean;
  /** A view of the tensor's bytes on the heap; it goes stale when the heap grows (any allocation). */
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** A tensor's data under another shape of the same size; it shares (does not own) the data. */
export function reshaped(info: TensorInfo, shape: number[]): TensorInfo {
  if (util.sizeFromShape(shape) !== util.sizeFromShape(info.shape))
    throw new Error(`cannot view shape [${info.shape}] as [${shape}]`);
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

export class WasmScope {
  private readonly owned: TensorInfo[] = [];

  constructor(readonly backend: WasmBackend) {}

  /** Runs the currently registered wasm kernel `kernelName`; its output belongs to this scope. */
  run(kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const config = getKernel(kernelName, 'wasm');
    if (!config) throw new Error(`kernel ${kernelName} is not registered for wasm`);
    return this.own(config.kernelFunc({ inputs, backend: this.backend, attrs }) as TensorInfo);
  }

  /** Runs a given kernel function (e.g. a stock kernel we replaced) on this backend. */
  runFunc(kernelFunc: KernelFunc, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    return this.own(kernelFunc({ inputs, backend: this.backend, attrs }) as TensorInfo);
  }

  /** A new uninitialised tensor on the heap. */
  empty(shape: number[], dtype: DataType = 'float32'): TensorInfo {
    return this.own(this.backend.makeOutput(shape, dtype));
  }

  /** A new tensor of zeros on the heap. */
  zeros(shape: number[], dtype: DataType = 'float32'): TensorInfo {
    const out = this.empty(shape, dtype);
    this.backend.typedArrayFromHeap(out).fill(0);
    return out;
  }

  /** Float32 view of a tensor; take views after the allocations of a step, never across one. */
  f32(info: TensorInfo): Float32Array {
    if (info.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${info.dtype}`);
    return this.backend.typedArrayFromHeap(info) as Float32Array;
  }

  /** Int32 view of a tensor, same caveat as f32. */
  i32(info: TensorInfo): Int32Array {
    if (info.dtype !== 'int32') throw new Error(`expected an int32 tensor, got ${info.dtype}`);
    return this.backend.typedArrayFromHeap(info) as Int32Array;
  }

  /** conv2d with stride 1 and explicit padding, NHWC. */
  conv2d(x: TensorInfo, filter: TensorInfo, padding: Padding, dilations: number | [number, number] = 1): TensorInfo {
    return this.run('Conv2D', { x, filter }, { strides: 1, pad: padding, dataFormat: 'NHWC', dilations });
  }

  /** depthwise conv2d with stride 1 and explicit padding, NHWC. */
  depthwiseConv2d(
    x: TensorInfo,
    filter: TensorInfo,
    padding: Padding,
    dilations: number | [number, number] = 1,
  ): TensorInfo {
    return this.run('DepthwiseConv2dNative', { x, filter }, { strides: 1, pad: padding, dilations });
  }

  /** Plain [m,k]×[k,n] matmul (untransposed: the fast layout on wasm). */
  matMul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /** Frees every intermediate except `result` (which the engine takes over) and returns it. */
  finish(result: TensorInfo): TensorInfo {
    for (const info of this.owned) if (info.dataId !== result.dataId) this.backend.disposeData(info.dataId);
    this.owned.length = 0;
    return result;
  }

  /** Frees every intermediate (the kernel failed). */
  abandon(): void {
    for (const info of this.owned) this.backend.disposeData(info.dataId);
    this.owned.length = 0;
  }

  private own(info: TensorInfo): TensorInfo {
    this.owned.push(info);
    return info;
  }
}

/** Wraps a kernel body so that its intermediates are freed on success and on failure. */
export function wasmKernel<Attrs>(
  body: (inputs: NamedTensorInfoMap, attrs: Attrs, scope: WasmScope) => TensorInfo,
): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const scope = new WasmScope(backend as WasmBackend);
    try {
      return scope.finish(body(inputs, attrs as unknown as Attrs, scope));
    } catch (error) {
      scope.abandon();
      throw error;
    }
  };
}
