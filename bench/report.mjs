// Rendering of a benchmark run (the object bench/run.mjs writes as latest.json): the markdown table,
// the SVG chart of tokens/s and the lstmgen/peer ratios. Pure functions, no dependencies.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A number for a table: thousands separated, 3 significant digits below 100. */
export const fmt = (x) =>
  x === undefined || x === null || Number.isNaN(x)
    ? '-'
    : x >= 100
      ? Math.round(x).toLocaleString('en-US')
      : x >= 10
        ? x.toFixed(1)
        : x.toPrecision(3);

const ratio = (x) =>
  x >= 100 ? `${Math.round(x).toLocaleString('en-US')}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`;

export const LABELS = {
  lstmgen: 'lstmgen (CPU, f32)',
  'lstmgen-bf16': 'lstmgen (CPU, bf16 mixed)',
  'lstmgen-cuda': 'lstmgen (CUDA)',
  torch: 'PyTorch nn.LSTM (CPU)',
  'torch-bf16': 'PyTorch nn.LSTM (CPU, bf16 autocast)',
  keras: 'Keras / TensorFlow-CPU',
  tfjs: 'TensorFlow.js (cpu)',
  brainjs: 'brain.js recurrent.LSTM',
};
const COLORS = {
  lstmgen: '#d9480f',
  'lstmgen-bf16': '#e8590c99',
  'lstmgen-cuda': '#f08c00',
  torch: '#5c7cfa',
  'torch-bf16': '#91a7ff',
  keras: '#2f9e44',
  tfjs: '#868e96',
  brainjs: '#ae3ec9',
};
const label = (s) => LABELS[s] ?? s;

const ok = (r) => r && r.status === 'ok';
const byConfig = (report, key) => report.results.filter((r) => r.config === key);
const find = (report, key, system) => report.results.find((r) => r.config === key && r.system === system);

/** lstmgen's CPU variants: f32 (the default) and bf16 mixed precision (`precision: 'bf16'`, AMX). */
const VARIANTS = ['lstmgen', 'lstmgen-bf16'];

/** lstmgen's (CPU, f32) result for configuration `key`, if it ran: the reference of the "÷" columns. */
const ours = (report, key, system = 'lstmgen') => {
  const r = find(report, key, system);
  return ok(r) ? r : undefined;
};

/** Lines "(a) torch: train 2.31x, generation 12.0x, peak memory 0.61x" for every peer that ran. */
export function ratioLines(report) {
  const lines = [];
  for (const key of Object.keys(report.configs)) {
    const mine = VARIANTS.map((v) => ours(report, key, v)).filter(Boolean);
    if (mine.length === 0) {
      lines.push(`(${key}) lstmgen did not run: no ratios`);
      continue;
    }
    for (const me of mine) {
      for (const r of byConfig(report, key)) {
        if (r.system.startsWith('lstmgen')) continue;
        const who = `(${key}) ${me.system.padEnd(12)} / ${r.system.padEnd(8)}`;
        if (r.status === 'timeout') {
          lines.push(`${who} train > ${ratio(me.trainTokensPerSec / r.trainTokensPerSecBound)} (${r.reason})`);
          continue;
        }
        if (!ok(r)) {
          lines.push(`${who}: ${r.status} (${r.reason})`);
          continue;
        }
        const [sm, sr] = [me, r].map((x) => stepSpread(x, report.configs[key]));
        const med = sm && sr ? ` (per-step medians ${ratio(sm.median / sr.median)})` : '';
        lines.push(
          `${who} train ${ratio(me.trainTokensPerSec / r.trainTokensPerSec).padStart(7)}${med}   generation ${ratio(me.genTokensPerSec / r.genTokensPerSec).padStart(7)}   peak memory ${(me.peakRssMiB / r.peakRssMiB).toFixed(2)}x`,
        );
      }
    }
  }
  return lines;
}

/**
 * The speed targets (training at least 1.5x the fastest peer and 100x TF.js and brain.js, generation 10x
 * the fastest peer), each with the measured value and whether it is met.
 */
export function targets(report) {
  const out = [];
  const peers = (key, filter = () => true) =>
    byConfig(report, key).filter((r) => ok(r) && !r.system.startsWith('lstmgen') && filter(r));
  for (const key of Object.keys(report.configs)) {
    for (const me of VARIANTS.map((v) => ours(report, key, v)).filter(Boolean)) {
      // The peers run f32; PyTorch's bf16 autocast run is the like-for-like bar of lstmgen's bf16.
      const all = peers(key, (r) => r.system !== 'torch-bf16');
      if (all.length === 0) continue;
      const push = (t) => out.push({ ...t, system: me.system });
      const amp = find(report, key, 'torch-bf16');
      if (me.system === 'lstmgen-bf16' && ok(amp)) {
        const v = me.trainTokensPerSec / amp.trainTokensPerSec;
        push({
          config: key,
          target: 'like for like: training >= 1.5x PyTorch with bf16 autocast',
          value: ratio(v),
          met: v >= 1.5,
        });
        const g = me.genTokensPerSec / amp.genTokensPerSec;
        push({
          config: key,
          target: 'like for like: generation >= 10x PyTorch with bf16 autocast',
          value: ratio(g),
          met: g >= 10,
        });
      }
      if (key === 'a' || key === 'b') {
        const best = all.reduce((x, y) => (y.trainTokensPerSec > x.trainTokensPerSec ? y : x));
        const v = me.trainTokensPerSec / best.trainTokensPerSec;
        push({
          config: key,
          target: `training >= 1.5x the fastest peer (${best.system})`,
          value: ratio(v),
          met: v >= 1.5,
        });
      }
      for (const slow of byConfig(report, key).filter((r) => r.system === 'tfjs' || r.system === 'brainjs')) {
        if (ok(slow)) {
          const v = me.trainTokensPerSec / slow.trainTokensPerSec;
          push({ config: key, target: `training >= 100x ${slow.system}`, value: ratio(v), met: v >= 100 });
        } else if (slow.status === 'timeout') {
          const v = me.trainTokensPerSec / slow.trainTokensPerSecBound;
          push({
            config: key,
            target: `training >= 100x ${slow.system}`,
            value: `> ${ratio(v)} (${slow.system} timed out)`,
            met: v >= 100 ? true : undefined,
          });
        }
      }
      const bestGen = all.reduce((x, y) => (y.genTokensPerSec > x.genTokensPerSec ? y : x));
      const g = me.genTokensPerSec / bestGen.genTokensPerSec;
      push({
        config: key,
        target: `generation >= 10x the fastest peer (${bestGen.system})`,
        value: ratio(g),
        met: g >= 10,
      });
      const torch = find(report, key, 'torch');
      if (ok(torch)) {
        push({
          config: key,
          target: 'peak memory <= PyTorch',
          value: `${fmt(me.peakRssMiB)} vs ${fmt(torch.peakRssMiB)} MiB`,
          met: me.peakRssMiB <= torch.peakRssMiB,
        });
      }
    }
  }
  return out;
}

/**
 * The spread of a result's training speed over its timed steps: per-step tokens/s (tokens of one step /
 * that step's wall seconds, `stepSeconds`) as min, quartiles (linear interpolation) and max, with the
 * step count `n`; undefined for a result without per-step times.
 */
export function stepSpread(r, cfg) {
  const s = r?.stepSeconds;
  if (!Array.isArray(s) || s.length === 0 || !cfg) return undefined;
  const perStep = r.system === 'brainjs' ? cfg.seq : cfg.batch * cfg.seq;
  const v = s.map((x) => perStep / x).sort((x, y) => x - y);
  const q = (p) => {
    const i = p * (v.length - 1);
    const lo = Math.floor(i);
    return v[lo] + (v[Math.min(lo + 1, v.length - 1)] - v[lo]) * (i - lo);
  };
  return { n: v.length, min: v[0], q1: q(0.25), median: q(0.5), q3: q(0.75), max: v[v.length - 1] };
}

/** "median (p25-p75, min-max)" of a spread, or "-". */
const spreadCell = (sp) =>
  sp ? `${fmt(sp.median)} (${fmt(sp.q1)}-${fmt(sp.q3)}, ${fmt(sp.min)}-${fmt(sp.max)})` : '-';

const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(report) {
  const m = report.machine;
  const L = [];
  L.push('# lstmgen comparative benchmark', '');
  L.push(
    `Run ${report.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} with \`${report.command}\` (${(report.durationSeconds / 60).toFixed(1)} min).`,
    '',
  );
  L.push('| machine | |', '| --- | --- |');
  L.push(
    `| CPU | ${esc(m.cpu)} |`,
    `| cores | ${m.cores} (${m.simd || 'no AVX2'}) |`,
    `| memory | ${m.memoryGiB} GiB |`,
    `| OS | ${esc(m.os)} |`,
  );
  L.push(
    `| Node.js | ${m.node} |`,
    `| Python | ${esc(m.python)} |`,
    `| threads setting | ${m.threads} for every system that takes one |`,
  );
  if (m.loadAverage)
    L.push(
      `| load average (1/5/15 min) | ${m.loadAverage.join(' / ')} at the start, ${m.loadAverageAtEnd?.join(' / ') ?? '?'} at the end (other work on the machine skews the numbers) |`,
    );
  L.push('');
  L.push(
    `Data: ${report.corpus}, the last 10% held out; validation on the start of it (val tokens below). ` +
      "Every system trains on the same token ids (tokenized once by lstmgen's tokenizer and handed to the peers as a file), " +
      'with the same shapes and the standard LM batch layout (batch streams, state carried between batches), Adam lr 3e-3, ' +
      'gradient-norm clip 5, after untimed warm-up steps. Generation: a batch of 64 samples at temperature 1 after the prompt "ROMEO:". ' +
      'Each system runs in its own child process; peak memory is its peak resident set (VmHWM), runtime included.',
    '',
  );

  L.push('## Configurations', '');
  L.push(
    '| | what | tokens | vocab | embedding | hidden | layers | batch | seqLen | train / val tokens |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const [k, c] of Object.entries(report.configs)) {
    L.push(
      `| (${k}) | ${c.title} | ${c.tokenizer} | ${c.vocab} | ${c.embedding} | ${c.hidden} | ${c.layers} | ${c.batch} | ${c.seq} | ${c.trainTokens.toLocaleString('en-US')} / ${c.valTokens.toLocaleString('en-US')} |`,
    );
  }
  L.push('');

  L.push('## Results', '');
  L.push(
    'tokens/s is what is compared: the slow JavaScript peers run fewer steps (steps column). "÷" columns: lstmgen (CPU, f32) / that system, >1 means lstmgen is faster. ' +
      "lstmgen (CPU, bf16 mixed) is `precision: 'bf16'`: matrix-product inputs rounded to bfloat16 with f32 accumulation (PyTorch CPU autocast semantics) on Intel AMX tiles; " +
      "PyTorch (CPU, bf16 autocast) is the same model under `torch.autocast('cpu', dtype=torch.bfloat16)`, its like-for-like peer; the other peers run f32. " +
      "Validation loss (nats/token) is comparable between rows of equal step counts only; † marks a row whose steps differ from lstmgen's.",
    '',
  );
  for (const key of Object.keys(report.configs)) {
    const c = report.configs[key];
    const me = ours(report, key);
    L.push(
      `### (${key}) ${c.title}: hidden ${c.hidden}, ${c.layers} layer${c.layers > 1 ? 's' : ''}, batch ${c.batch}, seqLen ${c.seq}`,
      '',
    );
    L.push(
      '| system | steps (+warm-up) | train tok/s | per-step train tok/s: median (p25-p75, min-max) | ÷ | gen tok/s | ÷ | peak RSS MiB (runtime alone) | val loss | train loss first → last | threads |',
    );
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of byConfig(report, key)) {
      if (r.status === 'timeout') {
        const tr = me ? `> ${ratio(me.trainTokensPerSec / r.trainTokensPerSecBound)}` : '';
        L.push(
          `| ${label(r.system)} | **timed out**: ${esc(r.reason)} | < ${fmt(r.trainTokensPerSecBound)} | - | ${tr} | - | | | | | |`,
        );
        continue;
      }
      if (!ok(r)) {
        L.push(`| ${label(r.system)} | **${r.status}**: ${esc(r.reason)} | | | | | | | | | |`);
        continue;
      }
      const batch1 = r.system === 'brainjs' ? ' seqs, batch 1' : '';
      const tr = me && r !== me ? ratio(me.trainTokensPerSec / r.trainTokensPerSec) : '';
      const gr = me && r !== me ? ratio(me.genTokensPerSec / r.genTokensPerSec) : '';
      const dagger = me && r.trainSteps + r.warmupSteps !== me.trainSteps + me.warmupSteps ? ' †' : '';
      const val =
        r.valLoss === null || r.valLoss === undefined ? 'not run (too slow)' : `${r.valLoss.toFixed(3)}${dagger}`;
      const rss = `${fmt(r.peakRssMiB)}${r.baseRssMiB ? ` (${fmt(r.baseRssMiB)})` : ''}`;
      L.push(
        `| ${label(r.system)} | ${r.trainSteps} (+${r.warmupSteps})${batch1} | ${fmt(r.trainTokensPerSec)} | ${spreadCell(stepSpread(r, c))} | ${tr} | ${fmt(r.genTokensPerSec)} | ${gr} | ${rss} | ${val} | ${r.firstLoss?.toFixed(3)} → ${r.lastLoss?.toFixed(3)} | ${r.threads ?? '-'} |`,
      );
    }
    L.push('');
  }

  const t = targets(report);
  if (t.length) {
    L.push('## Speed targets', '', '| config | lstmgen | target | measured | met |', '| --- | --- | --- | --- | --- |');
    for (const x of t)
      L.push(
        `| (${x.config}) | ${label(x.system)} | ${x.target} | ${x.value} | ${x.met === undefined ? 'unknown' : x.met ? 'yes' : '**no**'} |`,
      );
    L.push('');
  }

  const libs = new Map();
  for (const r of report.results)
    if (ok(r) && r.matmulLibrary && !libs.has(r.system)) libs.set(r.system, r.matmulLibrary);
  if (libs.size) {
    L.push('## Matrix-product libraries', '', '| system | what computed its products |', '| --- | --- |');
    for (const [system, lib] of libs) L.push(`| ${label(system)} | ${esc(lib)} |`);
    L.push('');
  }

  L.push('## Notes per system', '');
  const seen = new Set();
  for (const r of report.results) {
    if (!ok(r) || seen.has(r.system)) continue;
    seen.add(r.system);
    const v = r.versions
      ? Object.entries(r.versions)
          .map(([k, x]) => `${k} ${x}`)
          .join(', ')
      : '';
    const notes = [
      ...new Set(report.results.filter((x) => x.system === r.system && ok(x)).flatMap((x) => x.notes ?? [])),
    ];
    L.push(`- **${label(r.system)}** (${v}): ${notes.map(esc).join('; ')}`);
  }
  for (const r of report.results) {
    if (ok(r) || seen.has(r.system)) continue;
    seen.add(r.system);
    L.push(`- **${label(r.system)}**: ${r.status}: ${esc(r.reason)}`);
  }
  L.push('', `Chart: [latest.svg](latest.svg); raw numbers: [latest.json](latest.json).`, '');
  return L.join('\n');
}

/** Grouped bar chart (log scale) of training and generation tokens/s per configuration and system. */
export function renderSvg(report) {
  const keys = Object.keys(report.configs);
  const all = [...new Set(report.results.map((r) => r.system))];
  // a system that ran nowhere gets no bars, only a line under the legend
  const systems = all.filter((s) => report.results.some((r) => r.system === s && (ok(r) || r.status === 'timeout')));
  const absent = all.filter((s) => !systems.includes(s));
  const W = 960;
  const panelH = 300;
  const top = 58;
  const left = 70;
  const right = 20;
  const gap = 70;
  const legendH = 24 * Math.ceil(systems.length / 3) + 24;
  const H = top + 2 * panelH + gap + legendH + 34;
  const values = report.results
    .flatMap((r) => [r.trainTokensPerSec, r.genTokensPerSec, r.trainTokensPerSecBound])
    .filter((x) => x > 0);
  const lo = Math.floor(Math.log10(Math.min(...values, 10)));
  const hi = Math.ceil(Math.log10(Math.max(...values, 100)));
  const out = [];
  const text = (x, y, s, attrs = '') =>
    out.push(
      `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`,
    );
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  text(
    W / 2,
    24,
    'lstmgen vs peers: tokens/s (log scale, higher is better)',
    'text-anchor="middle" font-size="17" font-weight="bold"',
  );
  text(
    W / 2,
    42,
    `${report.machine.cpu}, ${report.machine.cores} cores; ${report.date.slice(0, 10)}`,
    'text-anchor="middle" fill="#555"',
  );
  const panel = (y0, metric, title) => {
    const plotW = W - left - right;
    const y = (v) => y0 + panelH - ((Math.log10(v) - lo) / (hi - lo)) * panelH;
    text(left, y0 - 8, title, 'font-weight="bold" font-size="14"');
    for (let e = lo; e <= hi; e++) {
      const yy = y(10 ** e);
      out.push(`<line x1="${left}" x2="${W - right}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}" stroke="#ddd"/>`);
      text(
        left - 6,
        yy + 4,
        e >= 0 ? (10 ** e).toLocaleString('en-US') : String(10 ** e),
        'text-anchor="end" fill="#555"',
      );
    }
    const groupW = plotW / keys.length;
    const barW = Math.min(44, (groupW - 30) / systems.length);
    keys.forEach((key, gi) => {
      const c = report.configs[key];
      const gx = left + gi * groupW + (groupW - barW * systems.length) / 2;
      text(
        left + gi * groupW + groupW / 2,
        y0 + panelH + 18,
        `(${key}) hidden ${c.hidden}, ${c.layers}L, batch ${c.batch}, seq ${c.seq}`,
        'text-anchor="middle"',
      );
      systems.forEach((s, si) => {
        const r = find(report, key, s);
        const x = gx + si * barW;
        if (r?.status === 'timeout' && metric === 'trainTokensPerSec') {
          const yy = y(r.trainTokensPerSecBound);
          out.push(
            `<rect x="${(x + 2).toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(y0 + panelH - yy).toFixed(1)}" fill="none" stroke="${COLORS[s] ?? '#333'}" stroke-dasharray="4 3"><title>${label(s)} (${key}): timed out, under ${fmt(r.trainTokensPerSecBound)} tokens/s</title></rect>`,
          );
          text(x + barW / 2, yy - 4, `< ${fmt(r.trainTokensPerSecBound)}`, 'text-anchor="middle" font-size="10"');
          return;
        }
        if (!ok(r) || !(r[metric] > 0)) {
          text(
            x + barW / 2,
            y0 + panelH - 6,
            r ? r.status : 'n/a',
            `text-anchor="start" fill="#999" font-size="10" transform="rotate(-90 ${(x + barW / 2).toFixed(1)} ${(y0 + panelH - 6).toFixed(1)})" dx="0" dy="3"`,
          );
          return;
        }
        const yy = y(r[metric]);
        out.push(
          `<rect x="${(x + 2).toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(y0 + panelH - yy).toFixed(1)}" fill="${COLORS[s] ?? '#333'}"><title>${label(s)} (${key}): ${fmt(r[metric])} tokens/s</title></rect>`,
        );
        text(x + barW / 2, yy - 4, fmt(r[metric]), 'text-anchor="middle" font-size="10"');
      });
    });
    out.push(`<line x1="${left}" x2="${W - right}" y1="${y0 + panelH}" y2="${y0 + panelH}" stroke="#333"/>`);
  };
  panel(top + 10, 'trainTokensPerSec', 'Training tokens/s');
  panel(top + panelH + gap, 'genTokensPerSec', 'Generation tokens/s (batch of 64 samples)');
  const ly = top + 2 * panelH + gap + 48;
  systems.forEach((s, i) => {
    const x = left + (i % 3) * 290;
    const yy = ly + Math.floor(i / 3) * 24;
    out.push(`<rect x="${x}" y="${yy - 11}" width="14" height="14" fill="${COLORS[s] ?? '#333'}"/>`);
    text(x + 20, yy + 1, label(s));
  });
  if (absent.length) {
    const why = absent
      .map((s) => `${label(s)}: ${report.results.find((r) => r.system === s)?.status ?? 'not run'}`)
      .join('; ');
    text(left, ly + Math.ceil(systems.length / 3) * 24 - 6, `not shown: ${why}`, 'fill="#555" font-size="11"');
  }
  if (report.results.some((r) => r.status === 'timeout')) {
    text(
      W - right,
      ly + Math.ceil(systems.length / 3) * 24 - 6,
      'dashed: stopped after its time budget, an upper bound',
      'text-anchor="end" fill="#555" font-size="11"',
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// `node bench/report.mjs [results/latest.json]`: render the markdown and SVG again from a JSON file.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = path.resolve(
    process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'latest.json'),
  );
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  const base = file.replace(/\.json$/, '');
  fs.writeFileSync(`${base}.md`, renderMarkdown(report));
  fs.writeFileSync(`${base}.svg`, renderSvg(report));
  for (const line of ratioLines(report)) console.log(line);
  console.log(`wrote ${base}.md and ${base}.svg`);
}
