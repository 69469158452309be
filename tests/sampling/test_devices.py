"""Device handling, checked on the CPU with the meta device standing in."""

import torch
from torch import nn

from mcdropout.sampling import model_device
from mcdropout.sampling._batches import map_rows, repeat_rows, slice_rows, to_device


def test_model_device_is_that_of_the_first_parameter_or_buffer():
    assert model_device(nn.ReLU()) == torch.device("cpu")
    assert model_device(nn.Linear(2, 2, device="meta")) == torch.device("meta")
    buffers_only = nn.BatchNorm1d(3, affine=False, device="meta")
    assert model_device(buffers_only) == torch.device("meta")


def test_every_tensor_of_a_nested_batch_moves_and_the_rest_stays():
    batch = {"x": torch.ones(4, 2), "pair": (torch.zeros(4), 3), "name": "a"}
    moved = to_device(batch, torch.device("meta"))
    assert moved["x"].device.type == "meta"
    assert moved["pair"][0].device.type == "meta"
    assert moved["pair"][1] == 3 and moved["name"] == "a"


def test_only_per_input_tensors_are_repeated_and_sliced():
    per_input = torch.arange(6.0).view(3, 2)
    shared = torch.ones(5)  # not one row per input: passed through unchanged
    repeated = repeat_rows((per_input, shared), 3, 2)
    assert torch.equal(repeated[0], torch.cat([per_input, per_input]))
    assert repeated[1] is shared
    sliced = slice_rows({"a": per_input, "b": shared}, 3, 1, 3)
    assert torch.equal(sliced["a"], per_input[1:3])
    assert sliced["b"] is shared
    assert map_rows(7, 3, lambda t: t * 0) == 7
