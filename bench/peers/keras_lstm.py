"""Keras peer (Keras 3 on TensorFlow-CPU), the reference stack: Embedding -> stateful LSTM (return_sequences)
x layers -> Dense logits, sparse categorical cross-entropy from logits, Adam with global_clipnorm,
train_on_batch with the state carried between batches (truncated BPTT). Takes the common benchmark flags
(see common.py) and prints one JSON line."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import (  # noqa: E402
    batches,
    emit,
    eval_batch_size,
    log_softmax_nll,
    parse_args,
    peak_rss_mib,
    read_ids,
    sample_rows,
    skip,
    timed_generation,
    timed_training,
)

SYSTEM = "keras"


def main():
    a = parse_args()
    try:
        import numpy as np
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
        import keras
    except Exception as e:  # not installed: reported, not dropped
        skip(SYSTEM, f"cannot import tensorflow/keras: {e} (run bench/setup-python.sh)")
    base_rss = peak_rss_mib()

    keras.utils.set_random_seed(a.seed)
    train_ids = read_ids(a.train).astype(np.int32)
    val_ids = read_ids(a.val).astype(np.int32)

    def build(batch):
        inp = keras.Input(batch_shape=(batch, None), dtype="int32")
        h = keras.layers.Embedding(a.vocab, a.embedding)(inp)
        for _ in range(a.layers):
            h = keras.layers.LSTM(a.hidden, return_sequences=True, stateful=True)(h)
        return keras.Model(inp, keras.layers.Dense(a.vocab)(h))

    def reset(model):
        for layer in model.layers:
            if isinstance(layer, keras.layers.LSTM):
                layer.reset_state()

    model = build(a.batch)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=a.lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8, global_clipnorm=a.clip if a.clip > 0 else None),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def step(x, y, first):
        if first:
            reset(model)
        return model.train_on_batch(x, y)

    result = timed_training(train_ids, a, step)

    # validation: one pass with the carried state, last short batch included
    total, count, val_loss = 0.0, 0, None
    if not a.no_val:
        eb = eval_batch_size(len(val_ids), a.batch, a.seq)
        ev = build(eb)
        ev.set_weights(model.get_weights())
        reset(ev)
        for x, y, _ in batches(val_ids, eb, a.seq, False):
            total += log_softmax_nll(ev.predict_on_batch(x), y)
            count += y.size
        val_loss = total / count

    # generation: a stateful batch-of-samples model, the prompt fed once, then one token per step
    gen = build(a.gen_samples)
    gen.set_weights(model.get_weights())
    rng = np.random.default_rng(a.seed)

    def generate(n):
        reset(gen)
        prompt = np.tile(np.array(a.prompt or [0], dtype=np.int32), (a.gen_samples, 1))
        last = gen.predict_on_batch(prompt)[:, -1]
        for _ in range(n):
            nxt = sample_rows(last, a.temperature, rng).astype(np.int32)[:, None]
            last = gen.predict_on_batch(nxt)[:, -1]


    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    emit(
        dict(
            result,
            system=SYSTEM,
            status="ok",
            valLoss=val_loss,
            valTokens=count,
            **timed_generation(generate, a),
            threads=intra,
            baseRssMiB=base_rss,
            versions={"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
            matmulLibrary=tf_libraries(),
            notes=[f"intra_op {intra}, inter_op {inter} threads; jit_compile={model.jit_compile}"],
        )
    )


def tf_libraries():
    """TensorFlow's CPU products: Eigen's contractions, or oneDNN's where this build enables it (the
    default of x86 Linux builds since 2.9; TF_ENABLE_ONEDNN_OPTS=0 turns it off)."""
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        onednn = port.IsMklEnabled()
    except Exception:  # a build without the probe: say so rather than guess
        return "Eigen / oneDNN (unknown which)"
    return "oneDNN (TF_ENABLE_ONEDNN_OPTS), Eigen elsewhere" if onednn else "Eigen"


if __name__ == "__main__":
    main()
