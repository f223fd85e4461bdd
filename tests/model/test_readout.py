"""The per-protein readout: summaries that padding never reaches, answers that are probabilities, and
a readout file checked on load as the model's weights are."""
import pytest
import torch

from dbmtl.model.readout import READOUT_FILE, SUMMARIES, ProteinReadout, load_readout, summaries


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
