import math

import pytest
import torch

from mcdropout.predictions import (
    ClassificationPrediction,
    ClassificationStatistics,
    Moments,
    RegressionPrediction,
    RegressionStatistics,
    log_probs_from_logits,
)


def entropy(probs: list[float]) -> float:
    return -sum(p * math.log(p) for p in probs if p > 0)


def test_hand_worked_two_pass_prediction():
    # Pass 1 says (0.5, 0.5), pass 2 says (0.9, 0.1).
    probs = torch.tensor([[[0.5, 0.5]], [[0.9, 0.1]]], dtype=torch.float64)
    stats = ClassificationStatistics.of(probs.log())
    prediction = ClassificationPrediction.from_statistics(stats)

    assert prediction.probs[0].tolist() == pytest.approx([0.7, 0.3])
    assert prediction.variance[0].tolist() == pytest.approx([0.04, 0.04])
    assert prediction.predictive_entropy.item() == pytest.approx(entropy([0.7, 0.3]))
    expected = (math.log(2) + entropy([0.9, 0.1])) / 2
    assert prediction.expected_entropy.item() == pytest.approx(expected)
    mutual_information = entropy([0.7, 0.3]) - expected
    assert prediction.mutual_information.item() == pytest.approx(mutual_information)
    # argmax of (0.5, 0.5) is class 0, as is that of (0.9, 0.1): unanimous.
    assert prediction.variation_ratio.item() == 0.0
    assert prediction.confidence.item() == pytest.approx(0.7)
    assert prediction.predicted.item() == 0


def test_single_logit_column_is_a_sigmoid_binary_model():
    logits = torch.tensor([[0.0], [2.0]])
    probs = log_probs_from_logits(logits).exp()
    assert probs[:, 1].tolist() == pytest.approx(torch.sigmoid(logits[:, 0]).tolist())
    assert probs.sum(dim=-1).tolist() == pytest.approx([1.0, 1.0])


def test_extreme_logits_give_finite_entropies():
    log_probs = log_probs_from_logits(torch.tensor([[[1000.0, 0.0, -1000.0]]]))
    stats = ClassificationStatistics.of(log_probs)
    assert stats.entropy_sum.item() == 0.0


@pytest.mark.parametrize("split", [1, 3, 7])
def test_merging_chunks_equals_one_pass_over_everything(split):
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(10, 4, 5, generator=generator, dtype=torch.float64)
    log_probs = log_probs_from_logits(logits)
    whole = ClassificationStatistics.of(log_probs, keep_samples=True)
    merged = ClassificationStatistics.of(log_probs[:split], keep_samples=True).merge(
        ClassificationStatistics.of(log_probs[split:], keep_samples=True)
    )
    torch.testing.assert_close(merged.probs.mean, whole.probs.mean, rtol=0, atol=1e-14)
    torch.testing.assert_close(merged.probs.m2, whole.probs.m2, rtol=0, atol=1e-14)
    torch.testing.assert_close(merged.entropy_sum, whole.entropy_sum)
    assert torch.equal(merged.votes, whole.votes)
    assert torch.equal(merged.samples, whole.samples)


def test_concatenating_input_blocks_equals_the_whole():
    values = torch.randn(6, 8, 2, dtype=torch.float64)
    whole = RegressionStatistics.of(values, values.exp(), keep_samples=True)
    parts = [
        RegressionStatistics.of(values[:, s], values[:, s].exp(), True)
        for s in (slice(0, 3), slice(3, 8))
    ]
    joined = RegressionStatistics.cat(parts)
    torch.testing.assert_close(joined.means.mean, whole.means.mean)
    torch.testing.assert_close(joined.means.m2, whole.means.m2)
    torch.testing.assert_close(joined.variance_sum, whole.variance_sum)
    assert torch.equal(joined.samples, whole.samples)


def test_moments_are_stable_for_large_offsets():
    # Naive sum-of-squares loses every digit here; the pairwise update does not.
    values = 1e9 + torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    moments = Moments.of(values[:1])
    for row in values[1:]:
        moments = moments.merge(Moments.of(row[None]))
    assert moments.variance.item() == pytest.approx(1.25, rel=1e-9)


def test_regression_prediction_hand_worked():
    means = torch.tensor([[1.0], [3.0]], dtype=torch.float64)  # 2 passes, 1 input
    variances = torch.tensor([[0.5], [1.5]], dtype=torch.float64)
    stats = RegressionStatistics.of(means, variances)
    prediction = RegressionPrediction.from_statistics(stats, noise_precision=4.0)
    assert prediction.mean.tolist() == [2.0]
    assert prediction.epistemic_variance.tolist() == [1.0]
    assert prediction.aleatoric_variance.tolist() == [1.0 + 0.25]
    assert prediction.std.tolist() == pytest.approx([1.5])
    lower, upper = prediction.interval(0.95)
    assert lower.item() == pytest.approx(2.0 - 1.959964 * 1.5, rel=1e-6)
    assert upper.item() == pytest.approx(2.0 + 1.959964 * 1.5, rel=1e-6)
    frame = prediction.to_frame()
    assert list(frame.columns) == [
        "mean",
        "std",
        "epistemic_variance",
        "aleatoric_variance",
    ]


def test_single_output_frames_have_plain_columns_and_scalar_targets():
    means = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]], dtype=torch.float64)
    stats = RegressionStatistics.of(means)
    targets = torch.tensor([[0.5], [1.5]])
    frame = RegressionPrediction.from_statistics(stats, targets).to_frame()
    assert list(frame.columns) == [
        "target", "mean", "std", "epistemic_variance", "aleatoric_variance"
    ]  # fmt: skip
    assert frame["target"].tolist() == [0.5, 1.5]
    assert frame["mean"].tolist() == [2.0, 3.0]
    two_outputs = RegressionStatistics.of(torch.zeros(2, 3, 2, dtype=torch.float64))
    columns = RegressionPrediction.from_statistics(two_outputs).to_frame().columns
    assert list(columns[:2]) == ["mean_0", "mean_1"]
