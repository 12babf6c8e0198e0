/*
 * How our cpu kernels talk to @tensorflow/tfjs-backend-cpu: tensors are plain typed arrays in
 * the backend's data store, and outputs are new arrays handed to it.
 */
import type { DataId, DataType, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-cpu's MathBackendCPU that these kernels use. */
interface CpuBackend {
  data: { get(dataId: DataId): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: DataType, values?: Float32Array | Int32Array): TensorInfo;
}

export class CpuAccess {
  constructor(private readonly backend: CpuBackend) {}

  f32(info: TensorInfo): Float32Array {
    const values = this.backend.data.get(info.dataId).values;
    if (!(values instanceof Float32Array)) throw new Error(`expected a float32 tensor, got ${info.dtype}`);
    return values;
  }

  i32(info: TensorInfo): Int32Array {
    const values = this.backend.data.get(info.dataId).values;
    if (!(values instanceof Int32Array)) throw new Error(`expected an int32 tensor, got ${info.dtype}`);
    return values;
  }

  output(shape: number[], values: Float32Array | Int32Array): TensorInfo {
    return this.backend.makeTensorInfo(shape, values instanceof Float32Array ? 'float32' : 'int32', values);
  }
}

export function cpuKernel<Attrs>(
  body: (inputs: NamedTensorInfoMap, attrs: Attrs, cpu: CpuAccess) => TensorInfo,
): KernelFunc {
  return ({ inputs, backend, attrs }) => body(inputs, attrs as unknown as Attrs, new CpuAccess(backend as CpuBackend));
}
