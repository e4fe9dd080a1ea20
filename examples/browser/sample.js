/**
 * Samples text from a TF.js export of an lstmgen model (`lstmgen export --format tfjs DIR`), in the browser.
 *
 * The page loads `model.json` with `tf.loadLayersModel` (URL: the `model` query parameter, default `model/model.json`)
 * and `tokenizer.json` beside it. To sample one token at a time without re-reading the whole text, it runs the
 * loaded layers' weights through the LSTM cell itself, keeping h and c between tokens (Keras gate order i, f, c, o:
 * z = x kernel + h recurrent_kernel + bias; c' = sigmoid(f) c + sigmoid(i) tanh(c~); h' = sigmoid(o) tanh(c')).
 * After loading it checks that cell against `model.predict` on a test text (the largest logit difference is shown
 * and set as `data-check` on the body). Sampling: softmax of logits / temperature (0: the most likely token),
 * never `<unk>`, from a seeded generator (mulberry32) when a seed is given. The tokenizer follows lstmgen's: `char`
 * maps code points, `word` splits words and punctuation and writes line ends as `<eos>` (spacing as lstmgen decodes).
 * The body's `data-state` is `loading`, `ready`, `running`, `done` or `error`, for scripts that drive the page.
 */
/* global tf, mulberry32 */

const EOS = '<eos>';
const BOUNDARY = '<|endoftext|>';
const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}', '%', '-']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '$', '-']);
const WORD_TOKEN = /<unk>|<eos>|[\p{L}\p{M}\p{N}_]+(?:['’][\p{L}\p{M}\p{N}_]+)*|\r\n|\n|\r|[^\s\p{L}\p{M}\p{N}_]/gu;

const $ = (id) => document.getElementById(id);
const setState = (state) => {
  document.body.dataset.state = state;
};

/** The tokenizer of `tokenizer.json`: `encode(text)` -> ids, `decoder()` -> a function from one id to its text. */
function makeTokenizer(json) {
  if (json.type !== 'char' && json.type !== 'word')
    throw new Error(`this page samples char and word models; the export's tokenizer is "${json.type}"`);
  const ids = new Map(json.tokens.map((t, i) => [t, i]));
  const idOf = (t) => ids.get(t) ?? 0;
  if (json.type === 'char') {
    return {
      lineBreak: ids.get('\n') ?? ids.get(BOUNDARY),
      encode: (text) => Array.from(text, idOf),
      decoder: () => (id) => (id === 0 ? '\uFFFD' : json.tokens[id] === BOUNDARY ? '\n' : json.tokens[id]),
    };
  }
  return {
    lineBreak: ids.get(EOS),
    encode: (text) =>
      Array.from((json.lowercase ? text.toLowerCase() : text).matchAll(WORD_TOKEN), ([t]) =>
        /^[\r\n]/.test(t) ? idOf(EOS) : idOf(t),
      ),
    decoder: (prompt) => {
      let prev = prompt.length === 0 || /\n$/.test(prompt) ? EOS : undefined;
      return (id) => {
        const t = json.tokens[id];
        if (t === EOS || t === BOUNDARY) {
          prev = EOS;
          return '\n';
        }
        const space = prev === EOS || NO_SPACE_BEFORE.has(t) || NO_SPACE_AFTER.has(prev) ? '' : ' ';
        prev = t;
        return space + t;
      };
    },
  };
}

/** The network of a loaded LayersModel: embedding, LSTM layers, decoder, as tensors. */
function network(model) {
  const [embedding] = model.layers[0].getWeights();
  const lstms = model.layers.slice(1, -1).map((layer) => {
    const [kernel, recurrent, bias] = layer.getWeights();
    return { kernel, recurrent, bias, units: kernel.shape[1] / 4 };
  });
  const [kernel, bias] = model.layers[model.layers.length - 1].getWeights();
  return { embedding, lstms, decoder: { kernel, bias } };
}

/** Zero states, one `{ h, c }` of `[1, H]` per layer. */
const zeroState = (net) => net.lstms.map((l) => ({ h: tf.zeros([1, l.units]), c: tf.zeros([1, l.units]) }));

/** One token through the network: the logits `[1, V]` after token `id` and the new state (the old one is disposed). */
function step(net, state, id) {
  const out = tf.tidy(() => {
    let x = tf.gather(net.embedding, [id]);
    const next = net.lstms.map((l, k) => {
      const z = x.matMul(l.kernel).add(state[k].h.matMul(l.recurrent)).add(l.bias);
      const [i, f, g, o] = tf.split(z, 4, 1);
      const c = tf
        .sigmoid(f)
        .mul(state[k].c)
        .add(tf.sigmoid(i).mul(tf.tanh(g)));
      x = tf.sigmoid(o).mul(tf.tanh(c));
      return { h: x, c };
    });
    return { logits: x.matMul(net.decoder.kernel).add(net.decoder.bias), state: next };
  });
  tf.dispose(state);
  return out;
}

/** Largest |difference| between the stepped cell's logits and `model.predict`'s over the ids of `text`. */
function checkCell(model, net, ids) {
  let state = zeroState(net);
  let worst = 0;
  const predicted = tf.tidy(() => model.predict(tf.tensor2d([ids], [1, ids.length], 'int32')).arraySync()[0]);
  ids.forEach((id, t) => {
    const r = step(net, state, id);
    state = r.state;
    const mine = r.logits.dataSync();
    r.logits.dispose();
    predicted[t].forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - mine[j]));
    });
  });
  tf.dispose(state);
  return worst;
}

/** A generator of uniform numbers in [0, 1): lstmgen's mulberry32 (random.js) from `seed`, or Math.random without one. */
function uniform(seed) {
  return seed === undefined ? Math.random : mulberry32(seed);
}

/** An id drawn from softmax(logits / temperature), `<unk>` (id 0) excluded; temperature 0 takes the largest. */
function pick(logits, temperature, random) {
  let best = 1;
  for (let j = 2; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
  if (temperature === 0) return best;
  const weights = Array.from(logits, (v, j) => (j === 0 ? 0 : Math.exp((v - logits[best]) / temperature)));
  let r = random() * weights.reduce((a, b) => a + b, 0);
  for (let j = 1; j < weights.length; j++) {
    r -= weights[j];
    if (r < 0) return j;
  }
  return best;
}

async function main() {
  const modelUrl = new URL(new URLSearchParams(location.search).get('model') ?? 'model/model.json', location.href);
  $('model-url').textContent = modelUrl.pathname;
  const [model, tokenizerJson] = await Promise.all([
    tf.loadLayersModel(modelUrl.href),
    fetch(new URL('tokenizer.json', modelUrl)).then((r) => {
      if (!r.ok) throw new Error(`tokenizer.json: HTTP ${r.status}`);
      return r.json();
    }),
  ]);
  const tokenizer = makeTokenizer(tokenizerJson);
  const net = network(model);
  const check = checkCell(
    model,
    net,
    tokenizer.encode(tokenizerJson.type === 'char' ? 'the cat sat' : 'the cat sat .'),
  );
  document.body.dataset.check = String(check);
  $('status').textContent =
    `ready: ${tokenizerJson.type} model, ${tokenizerJson.tokens.length} tokens, ${net.lstms.length} layer(s) of ` +
    `${net.lstms[0].units}; backend ${tf.getBackend()}; cell vs predict: max |logit difference| ${check.toExponential(1)}`;
  let stopped = false;
  $('stop').onclick = () => {
    stopped = true;
  };
  $('generate').onclick = async () => {
    const prompt = $('prompt').value;
    const temperature = Math.max(0, Number($('temperature').value) || 0);
    const maxTokens = Math.min(5000, Math.max(1, Math.floor(Number($('max-tokens').value) || 1)));
    const seedText = $('seed').value.trim();
    const random = uniform(seedText === '' ? undefined : Number(seedText));
    const ids = prompt.length > 0 ? tokenizer.encode(prompt) : [tokenizer.lineBreak];
    if (ids.length === 0 || ids[0] === undefined) {
      $('status').textContent = 'this model needs a prompt (its vocabulary has no line break)';
      return;
    }
    const decode = tokenizer.decoder(prompt);
    stopped = false;
    setState('running');
    $('generate').disabled = true;
    $('stop').disabled = false;
    $('output').textContent = prompt;
    let state = zeroState(net);
    let logits;
    for (const id of ids) {
      logits?.dispose();
      ({ logits, state } = step(net, state, id));
    }
    for (let n = 0; n < maxTokens && !stopped; n++) {
      const id = pick(await logits.data(), temperature, random);
      logits.dispose();
      $('output').textContent += decode(id);
      ({ logits, state } = step(net, state, id));
      if (n % 8 === 7) await tf.nextFrame(); // let the page draw
    }
    logits.dispose();
    tf.dispose(state);
    $('generate').disabled = false;
    $('stop').disabled = true;
    setState('done');
  };
  $('generate').disabled = false;
  setState('ready');
}

setState('loading');
main().catch((err) => {
  $('status').textContent = `error: ${err.message}`;
  setState('error');
});
