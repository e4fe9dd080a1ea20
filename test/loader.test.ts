// Selection between the CPU and CUDA builds of the addon (ts/native/loader.ts). The fake-dependency tests run
// anywhere; the others load the real CPU build (npm run build:native) and run on a machine without a GPU.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeviceError } from '../ts/errors';
import {
  BinaryLoader,
  engineInfo,
  type LoaderDeps,
  type NativeBinding,
  type NativeEngineInfo,
} from '../ts/native/loader';
import { train } from '../ts/train/loop';
import { TINY, tmpDir } from './helpers';

const ROOT = path.resolve(__dirname, '..');

function fakeBinding(info: Partial<NativeEngineInfo>): NativeBinding {
  return {
    NativeModel: {} as NativeBinding['NativeModel'],
    engineInfo: () => ({
      cudaCompiled: false,
      candleVersion: '0.11.1',
      threads: 2,
      cpuGemm: 'lstmgen blocked kernels (AVX2+FMA)',
      ...info,
    }),
  };
}

const CPU = fakeBinding({
  cudaUnavailableReason: 'this lstmgen binary was built without CUDA support (CPU build)',
});
const GPU = fakeBinding({ cudaCompiled: true, cudaDevice: 'cuda:0', cudaRecurrence: 'standard' });
const NO_GPU = fakeBinding({
  cudaCompiled: true,
  cudaUnavailableReason:
    'CUDA device 0 is not usable: DriverError(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")',
});

function deps(
  cuda: { missing: string } | { path: string; binding?: NativeBinding; error?: string },
): LoaderDeps & { loads: string[] } {
  const loads: string[] = [];
  return {
    loads,
    loadCpu: () => {
      loads.push('cpu');
      return { binding: CPU, path: '/pkg/lstmgen.linux-x64-gnu.node' };
    },
    findCuda: () => ('missing' in cuda ? { missing: cuda.missing } : { path: cuda.path }),
    load: (file) => {
      loads.push(file);
      if ('error' in cuda && cuda.error) throw new Error(cuda.error);
      return (cuda as { binding: NativeBinding }).binding;
    },
  };
}

describe('build selection (fake builds)', () => {
  it('auto without a CUDA build uses the CPU build and says why', () => {
    const loader = new BinaryLoader(
      deps({ missing: 'the CUDA build is not installed (npm package lstmgen-linux-x64-gnu-cuda)' }),
    );
    const { binary, device } = loader.forDevice('auto');
    expect(binary.kind).toBe('cpu');
    expect(device).toBe('cpu');
    const info = loader.engineInfo();
    expect(info).toMatchObject({
      binary: 'cpu',
      binaryPath: '/pkg/lstmgen.linux-x64-gnu.node',
      device: 'cpu',
      cudaCompiled: false,
      threads: 2,
      cudaRecurrence: null,
    });
    expect(info.fallbackReason).toMatch(/not installed.*lstmgen-linux-x64-gnu-cuda/);
  });

  it('auto with a CUDA build that fails to load falls back with the load error text', () => {
    const d = deps({
      path: '/pkg/cuda.node',
      error: 'libcublas.so.13: cannot open shared object file: No such file or directory\nmore',
    });
    const loader = new BinaryLoader(d);
    expect(loader.forDevice('auto').binary.kind).toBe('cpu');
    expect(loader.engineInfo().fallbackReason).toBe(
      'the CUDA build /pkg/cuda.node failed to load: ' +
        'libcublas.so.13: cannot open shared object file: No such file or directory',
    );
    loader.forDevice('auto');
    expect(d.loads.filter((l) => l === '/pkg/cuda.node')).toHaveLength(1); // tried once per process
  });

  it('auto with a CUDA build but no GPU falls back and reports the driver error', () => {
    const loader = new BinaryLoader(deps({ path: '/pkg/cuda.node', binding: NO_GPU }));
    expect(loader.forDevice('auto').binary.kind).toBe('cpu');
    expect(loader.engineInfo().fallbackReason).toMatch(
      /^the CUDA build loaded but sees no usable GPU: CUDA device 0 is not usable: .*CUDA_ERROR_NO_DEVICE/,
    );
  });

  it('auto with a CUDA build and a GPU uses CUDA and never loads the CPU build', () => {
    const d = deps({ path: '/pkg/cuda.node', binding: GPU });
    const loader = new BinaryLoader(d);
    expect(loader.forDevice('auto')).toMatchObject({
      binary: { kind: 'cuda', path: '/pkg/cuda.node' },
      device: 'cuda',
    });
    expect(loader.engineInfo()).toMatchObject({
      binary: 'cuda',
      device: 'cuda:0',
      cudaCompiled: true,
      cudaRecurrence: 'standard',
      fallbackReason: null,
    });
    expect(loader.forDevice('cuda').binary.kind).toBe('cuda');
    expect(d.loads).toEqual(['/pkg/cuda.node']);
    expect(loader.forDevice('cpu').binary.kind).toBe('cpu'); // explicit cpu uses the CPU build
  });

  it('a binary that is not a CUDA build is not used as one', () => {
    const loader = new BinaryLoader(deps({ path: '/pkg/other.node', binding: CPU }));
    expect(loader.engineInfo().fallbackReason).toBe('/pkg/other.node is not a CUDA build');
  });

  it.each([
    [{ missing: 'the CUDA build is not installed (npm package lstmgen-linux-x64-gnu-cuda)' }, /not installed/],
    [
      { path: '/pkg/cuda.node', error: 'libcuda.so.1: cannot open shared object file' },
      /failed to load: libcuda\.so\.1/,
    ],
    [{ path: '/pkg/cuda.node', binding: NO_GPU }, /no usable GPU.*CUDA_ERROR_NO_DEVICE/],
  ])('device "cuda" without a usable GPU throws DeviceError saying why (%#)', (cuda, why) => {
    const loader = new BinaryLoader(deps(cuda));
    let err: unknown;
    try {
      loader.forDevice('cuda');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('E_DEVICE');
    expect((err as DeviceError).message).toMatch(/^device "cuda" is not usable: /);
    expect((err as DeviceError).message).toMatch(why);
  });

  it('a CPU build that cannot load throws DeviceError with a hint', () => {
    const loader = new BinaryLoader({
      loadCpu: () => {
        throw new Error('Cannot find native binding. npm has a bug related to optional dependencies\nstack');
      },
      findCuda: () => ({ missing: 'none' }),
      load: () => CPU,
    });
    expect(() => loader.forDevice('auto')).toThrow(DeviceError);
    expect(() => loader.forDevice('cpu')).toThrow(
      /cannot load the lstmgen native addon .*Cannot find native binding.*\nhint: .*lstmgen-linux-x64-gnu/,
    );
    // build:native exists only in a source checkout: the hint says so, after the install advice
    expect(() => loader.forDevice('cpu')).toThrow(
      /hint: install .*lstmgen-linux-x64-gnu.*optionalDependency.*; in a source checkout.*`npm run build:native`/,
    );
  });
});

describe('build selection (real CPU build, no GPU)', () => {
  /** Run a snippet against dist/ in a child process with the given environment; returns its JSON output. */
  function child(code: string, env: Record<string, string>) {
    const r = spawnSync(process.execPath, ['-e', code], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }
  const INFO = `process.stdout.write(JSON.stringify(require('./dist/native/loader').engineInfo()))`;

  it('engineInfo() reports the CPU build, its path, candle version and threads', () => {
    const info = engineInfo();
    expect(info.binary).toBe('cpu');
    expect(info.device).toBe('cpu');
    expect(path.basename(info.binaryPath)).toMatch(/^lstmgen\.linux-x64-gnu\.node$/);
    expect(fs.existsSync(info.binaryPath)).toBe(true);
    expect(info.candleVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.threads).toBeGreaterThan(0);
    expect(info.cpuGemm).toMatch(/^(OpenBLAS \d+\.\d+|lstmgen blocked kernels \((AVX2\+FMA|portable)\))/);
    expect(info.fallbackReason).toBeTruthy();
  });

  it('a missing CUDA build (LSTMGEN_CUDA_BINARY) -> CPU, reason "not installed"', () => {
    const missing = '/nonexistent/lstmgen.linux-x64-gnu-cuda.node';
    const info = child(INFO, { LSTMGEN_CUDA_BINARY: missing });
    expect(info).toMatchObject({ binary: 'cpu', device: 'cpu', cudaCompiled: false });
    expect(info.fallbackReason).toBe(`the CUDA build is not installed: LSTMGEN_CUDA_BINARY=${missing} does not exist`);
  });

  it('a CUDA build that cannot load -> CPU, reason carries the dynamic linker message', () => {
    const bad = path.join(tmpDir(), 'lstmgen.linux-x64-gnu-cuda.node');
    fs.writeFileSync(bad, 'not an ELF file');
    const info = child(INFO, { LSTMGEN_CUDA_BINARY: bad });
    expect(info.binary).toBe('cpu');
    expect(info.fallbackReason).toMatch(
      new RegExp(`^the CUDA build ${bad.replace(/[.]/g, '\\.')} failed to load: .*(invalid ELF header|file too short)`),
    );
  });

  it('the CPU build used as a CUDA build -> CPU, "not a CUDA build"', () => {
    const cpu = path.join(ROOT, 'lstmgen.linux-x64-gnu.node');
    const info = child(INFO, { LSTMGEN_CUDA_BINARY: cpu });
    expect(info.fallbackReason).toBe(`${cpu} is not a CUDA build`);
  });

  it('train with device "cuda" on this machine throws DeviceError saying why', async () => {
    const err = await train({ ...TINY, device: 'cuda', maxSteps: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as Error).message).toMatch(
      /^device "cuda" is not usable: the CUDA build (is not installed|.* failed to load|loaded but sees no usable GPU)/,
    );
  });

  it('train with device "auto" runs on the CPU', async () => {
    const { model } = await train({ ...TINY, device: 'auto', maxSteps: 2 });
    expect(model.device).toBe('cpu');
  });
});
