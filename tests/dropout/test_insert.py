import pickle

import pytest
import torch
from torch import nn

from mcdropout import add_dropout, dropout_modules
from mcdropout._exceptions import ArgumentTypeError, ArgumentValueError
from tests.conftest import assert_unchanged, snapshot


@pytest.fixture
def plain_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)
    )


def test_copy_of_an_eval_model_is_in_eval_mode_throughout(plain_mlp):
    with_dropout = add_dropout(plain_mlp.eval(), p=0.5, last_n=None)
    assert not any(module.training for module in with_dropout.modules())
    x = torch.randn(16, 5)
    # Called as it comes back, without .eval(): dropout is off.
    assert torch.equal(with_dropout(x), plain_mlp(x))
    train_copy = add_dropout(plain_mlp.train(), p=0.5)
    assert all(module.training for module in train_copy.modules())


def test_original_is_untouched_and_copy_matches_it_with_dropout_off(plain_mlp):
    before = snapshot(plain_mlp)
    with_dropout = add_dropout(plain_mlp, p=0.5, last_n=2)

    assert_unchanged(plain_mlp, before)
    assert dropout_modules(plain_mlp) == []
    assert [name for name, _ in dropout_modules(with_dropout)] == [
        "2.mcdropout_dropout",
        "4.mcdropout_dropout",
    ]
    assert with_dropout.state_dict().keys() == plain_mlp.state_dict().keys()
    x = torch.randn(16, 5)
    assert torch.equal(with_dropout.eval()(x), plain_mlp.eval()(x))


def test_inserted_dropout_drops_the_layer_input(plain_mlp):
    with_dropout = add_dropout(plain_mlp, p=0.5).train()
    seen = []
    with_dropout[4].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        hidden = with_dropout[:4](torch.randn(64, 5))
        with_dropout[4](hidden)
    # Every surviving activation is scaled by 1 / (1 - p); the rest are zero.
    kept = seen[0] != 0
    assert 0 < kept.float().mean() < 1
    assert torch.allclose(seen[0][kept], 2 * hidden[kept])


def test_channel_wise_dropout_in_front_of_convolutions():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv3d(2, 2, 1), nn.Conv1d(2, 2, 1))
    with_dropout = add_dropout(
        model, 0.2, before=(nn.Conv1d, nn.Conv2d, nn.Conv3d), last_n=None
    )
    types = [type(module) for _, module in dropout_modules(with_dropout)]
    assert types == [nn.Dropout2d, nn.Dropout3d, nn.Dropout1d]


def test_copy_can_be_pickled_and_keeps_working(plain_mlp):
    copy = pickle.loads(pickle.dumps(add_dropout(plain_mlp, p=0.5)))
    copy.train()
    outputs = torch.stack([copy(torch.ones(1, 5)) for _ in range(20)])
    assert outputs.std(dim=0).sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"last_n": 4}, ArgumentValueError, "at least 4 Linear.*found 3"),
        ({"last_n": 0}, ArgumentValueError, "`last_n` to be a positive integer, got 0"),
        ({"before": nn.Conv2d}, ArgumentValueError, "Conv2d.*found 0"),
        ({"before": "Linear"}, ArgumentTypeError, "`before`.*got 'Linear'"),
        ({"p": 1.5}, ArgumentValueError, r"`p`.*got 1.5"),
    ],
)
def test_bad_arguments_are_refused(plain_mlp, kwargs, error, match):
    with pytest.raises(error, match=match):
        add_dropout(plain_mlp, **kwargs)


def test_adding_twice_to_the_same_layer_is_refused(plain_mlp):
    once = add_dropout(plain_mlp)
    with pytest.raises(
        ArgumentValueError, match=r"already has dropout.*set_dropout_rate"
    ):
        add_dropout(once)
