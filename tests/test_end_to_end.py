"""End to end: a small minilib CNN learns a synthetic task with SGD + momentum.

Each 8x8 image holds one bright bar (random position and length, plus Gaussian noise);
the label says whether the bar is horizontal (0) or vertical (1). Telling the two apart
needs the convolution to pick up orientation, so this exercises every forward and
backward pass, the loss and the optimiser together. Everything is seeded; the test
asserts that the loss falls well below its starting value and that held-out accuracy
exceeds 90%. It runs in about a second.
"""
import numpy as np

import minilib as ml

SIZE = 8


def make_bars(n, rng, noise=0.3):
    """n images (n, 1, 8, 8) with a bar of length 4..8 and labels (n,): 0 horizontal, 1 vertical."""
    x = rng.normal(0.0, noise, size=(n, 1, SIZE, SIZE))
    labels = rng.integers(0, 2, size=n)
    for i, label in enumerate(labels):
        line, length = rng.integers(0, SIZE), rng.integers(4, SIZE + 1)
        start = rng.integers(0, SIZE - length + 1)
        if label == 0:
            x[i, 0, line, start:start + length] += 1.0
        else:
            x[i, 0, start:start + length, line] += 1.0
    return x, labels


def make_model(rng):
    return ml.Sequential(ml.Conv2d(1, 4, 3, padding=1, rng=rng), ml.ReLU(), ml.MaxPool2d(2),
                         ml.Flatten(), ml.Linear(4 * 4 * 4, 2, rng=rng))


def evaluate(model, x, labels):
    logits = model.forward(x)
    loss, _ = ml.softmax_cross_entropy(logits, labels)
    return loss, np.mean(logits.argmax(axis=1) == labels)


def test_small_cnn_learns_bar_orientation():
    rng = np.random.default_rng(0)
    x_train, y_train = make_bars(512, rng)
    x_test, y_test = make_bars(256, rng)
    model = make_model(rng)
    optimizer = ml.SGD(model, lr=0.05, momentum=0.9)

    initial_loss, initial_accuracy = evaluate(model, x_train, y_train)
    for step in range(80):
        batch = rng.choice(len(x_train), size=32, replace=False)
        loss, dlogits = ml.softmax_cross_entropy(model.forward(x_train[batch]), y_train[batch])
        assert np.isfinite(loss), f"loss diverged at step {step}"
        model.backward(dlogits)
        optimizer.step()
    final_loss, _ = evaluate(model, x_train, y_train)
    _, test_accuracy = evaluate(model, x_test, y_test)

    print(f"loss {initial_loss:.3f} -> {final_loss:.3f}, accuracy {initial_accuracy:.2f} -> test {test_accuracy:.2f}")
    assert final_loss < 0.3 * initial_loss
    assert test_accuracy > 0.9


def test_the_task_is_balanced_and_not_trivial():
    """Guard the premise: both classes occur, and the mean pixel intensity does not give the label away."""
    x, labels = make_bars(512, np.random.default_rng(1))
    assert 0.4 < labels.mean() < 0.6
    means = x.mean(axis=(1, 2, 3))
    threshold_accuracy = max(np.mean((means > t) == labels) for t in np.quantile(means, np.linspace(0, 1, 21)))
    assert threshold_accuracy < 0.65
