/**
 * Training curves as SVG: training and validation loss (nats/token) and the learning rate against the step,
 * drawn by Vega-Lite (compiled to Vega and rendered headless by `view.toSVG()`: no browser, no native deps).
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite/build/index'; // the package's types (its exports map needs node16 resolution)
import { DataError } from '../errors';
import { type RunRecord, readRunLog } from './runlog';

/** Options of {@link plotRun}. */
export interface PlotOptions {
  /** Chart title; default the log file's name, or none. */
  title?: string;
  /** Width of each panel in pixels (default 640). */
  width?: number;
  /** Training-loss points drawn at most (default 2000): longer runs are averaged over equal runs of steps. */
  maxPoints?: number;
}

interface Point {
  step: number;
  value: number;
  series: string;
}

/**
 * Render the curves of a run log (a JSONL file written with `logFile`, or its records) as SVG text: a loss
 * panel (training loss per step, validation loss at each evaluation) above a learning-rate panel.
 * Records of a step logged twice (a run resumed from an earlier checkpoint) count once, the later one.
 * @throws DataError if the log cannot be read or has no training steps.
 */
export async function plotRun(run: string | RunRecord[], options: PlotOptions = {}): Promise<string> {
  const records = typeof run === 'string' ? readRunLog(run) : run;
  const steps = new Map<number, { loss: number; lr: number }>();
  const vals = new Map<number, number>();
  for (const r of records) {
    if (r.type === 'step') steps.set(r.step, { loss: r.loss, lr: r.lr });
    else if ((r.type === 'eval' || r.type === 'epoch') && typeof r.valLoss === 'number' && Number.isFinite(r.valLoss))
      vals.set(r.step, r.valLoss);
  }
  if (steps.size === 0)
    throw new DataError(`${typeof run === 'string' ? run : 'the run log'} has no training steps to plot`);
  const sorted = [...steps].sort((a, b) => a[0] - b[0]);
  const loss = downsample(
    sorted.map(([step, s]) => ({ step, value: s.loss, series: 'train loss' })),
    options.maxPoints ?? 2000,
  );
  const val = [...vals]
    .sort((a, b) => a[0] - b[0])
    .map(([step, value]) => ({ step, value, series: 'validation loss' }));
  const lr = downsample(
    sorted.map(([step, s]) => ({ step, value: s.lr, series: 'learning rate' })),
    options.maxPoints ?? 2000,
  );
  const width = options.width ?? 640;
  const title = options.title ?? (typeof run === 'string' ? path.basename(run) : undefined);
  const x = { field: 'step', type: 'quantitative', title: 'step' } as const;
  const spec: VegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(title ? { title } : {}),
    background: 'white',
    vconcat: [
      {
        width,
        height: 260,
        data: { values: [...loss, ...val] },
        mark: { type: 'line', point: false, strokeWidth: 1.5 },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'loss (nats/token)', scale: { zero: false } },
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            scale: { domain: ['train loss', 'validation loss'], range: ['#4c78a8', '#e45756'] },
          },
        },
      },
      {
        width,
        height: 120,
        data: { values: lr },
        mark: { type: 'line', color: '#54a24b' },
        encoding: { x, y: { field: 'value', type: 'quantitative', title: 'learning rate' } },
      },
    ],
    resolve: { scale: { x: 'shared' } },
  };
  const [vega, vl] = await Promise.all([importEsm<typeof Vega>('vega'), importEsm<typeof VegaLite>('vega-lite')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** At most `max` points: means over consecutive equal-size groups (the step of a group is its last step). */
function downsample(points: Point[], max: number): Point[] {
  if (points.length <= max) return points;
  const size = Math.ceil(points.length / max);
  const out: Point[] = [];
  for (let i = 0; i < points.length; i += size) {
    const group = points.slice(i, i + size);
    out.push({
      step: group[group.length - 1].step,
      value: group.reduce((s, p) => s + p.value, 0) / group.length,
      series: group[0].series,
    });
  }
  return out;
}

/**
 * `import()` an ESM-only package from this CommonJS build: TypeScript compiles `import()` to `require()`, which
 * cannot load vega's top-level-await graph, so the import is made by a function TypeScript does not see. The
 * package is resolved from here, so this works from any cwd. Code run inside a `vm` context without a dynamic
 * import hook (vitest runs the TypeScript sources that way) cannot do that; there the bundler-handled
 * `import()` below is used instead.
 */
async function importEsm<T>(name: string): Promise<T> {
  const nativeImport = new Function('url', 'return import(url)') as (url: string) => Promise<T>;
  try {
    return await nativeImport(pathToFileURL(require.resolve(name)).href);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING') throw err;
    return (await import(name)) as T;
  }
}
