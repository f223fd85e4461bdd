"""The readouts: summaries and convolutions that padding never reaches, answers that are probabilities
or start as the head's, and readout files checked on load as the model's weights are."""
import pytest
import torch

from dbmtl.model.readout import (READOUT_FILE, RESIDUE_READOUT_FILE, SUMMARIES, ProteinReadout, ResidueReadout,
                                 load_readout, summaries)


def test_summaries_of_a_padded_batch_equal_those_of_each_row_alone():
    torch.manual_seed(0)
    lengths = [3, 7, 1]
    rows = [torch.randn(2 + n, 4) for n in lengths]
    batch = torch.full((3, 9, 4), 1e6)  # padding that would dominate any mean or max it entered
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    together = summaries(batch, lengths, termini=2)
    assert together.shape == (3, len(SUMMARIES) * 4)
    for i, (r, n) in enumerate(zip(rows, lengths)):
        torch.testing.assert_close(together[i], summaries(r[None], [n], termini=2)[0])
        res = r[2:]
        expected = torch.cat([r[0], r[1], res.mean(0), res.amax(0), res[: min(2, n)].mean(0), res[-min(2, n):].mean(0)])
        torch.testing.assert_close(together[i], expected)


def test_answers_are_the_mean_of_the_members_probabilities():
    torch.manual_seed(0)
    readout = ProteinReadout(4, {"loc": 10, "ms": 2}, hidden=8, members=3, termini=2).eval()
    x = torch.randn(5, len(SUMMARIES) * 4)
    out = readout(x)
    assert out["loc"].shape == (5, 10) and out["ms"].shape == (5, 2)
    torch.testing.assert_close(out["loc"].sum(1), torch.ones(5))
    members = [torch.softmax(readout.logits("loc", x, m), -1) for m in range(3)]
    torch.testing.assert_close(out["loc"], sum(members) / 3)


def test_a_saved_readout_loads_and_a_damaged_one_is_refused(tmp_path):
    torch.manual_seed(0)
    readout = ProteinReadout(4, {"loc": 10, "ms": 2}, hidden=8, members=2, termini=2)
    settings = readout.save(tmp_path)
    x = torch.randn(3, len(SUMMARIES) * 4)
    loaded = load_readout(tmp_path, settings)
    torch.testing.assert_close(loaded(x)["loc"], readout.eval()(x)["loc"])
    with pytest.raises(ValueError, match="do not match"):
        load_readout(tmp_path, {**settings, "hidden": 9})
    with pytest.raises(ValueError, match="'readout'"):
        load_readout(tmp_path, {**settings, "width": 3})
    (tmp_path / READOUT_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_readout(tmp_path, settings)
    (tmp_path / READOUT_FILE).unlink()
    with pytest.raises(ValueError, match="missing"):
        load_readout(tmp_path, settings)


def test_an_unfitted_residue_readout_answers_as_the_head():
    torch.manual_seed(0)
    readout = ResidueReadout(4, hidden=6, kernel=3).eval()
    states, own = torch.randn(2, 5, 4), torch.randn(2, 5, 8)
    torch.testing.assert_close(readout(states, own, [5, 3]), own)


def test_residue_logits_of_a_padded_batch_equal_those_of_each_row_alone():
    torch.manual_seed(0)
    readout = ResidueReadout(4, hidden=6, kernel=3)
    torch.nn.init.normal_(readout.last.weight)
    readout.eval()
    lengths = [5, 2]
    states, own = torch.randn(2, 5, 4), torch.randn(2, 5, 8)
    states[1, 2:] = 1e6  # padding that would reach the last residue through the convolution
    together = readout(states, own, lengths)
    for i, n in enumerate(lengths):
        alone = readout(states[i : i + 1, :n], own[i : i + 1, :n], [n])[0]
        torch.testing.assert_close(together[i, :n], alone)
    assert not torch.allclose(together, own)


def test_a_saved_residue_readout_loads_and_a_mismatched_one_is_refused(tmp_path):
    torch.manual_seed(0)
    readout = ResidueReadout(4, hidden=6, kernel=3)
    torch.nn.init.normal_(readout.last.weight)
    settings = readout.save(tmp_path)
    assert (tmp_path / RESIDUE_READOUT_FILE).is_file() and not (tmp_path / READOUT_FILE).exists()
    states, own = torch.randn(1, 5, 4), torch.randn(1, 5, 8)
    loaded = load_readout(tmp_path, settings, "residue_readout")
    torch.testing.assert_close(loaded(states, own, [5]), readout.eval()(states, own, [5]))
    with pytest.raises(ValueError, match="do not match the 'residue_readout'"):
        load_readout(tmp_path, {**settings, "kernel": 5}, "residue_readout")
    with pytest.raises(ValueError, match="'residue_readout'"):
        load_readout(tmp_path, {**settings, "width": 3}, "residue_readout")
