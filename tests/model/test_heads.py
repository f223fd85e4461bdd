"""The shipped model's heads: SS3 is the SS8 mass of each class, in predict and in the loss alike."""
import numpy as np
import torch

from dbmtl.model.heads import OnePassHeads
from dbmtl.tasks import SS3_LABELS, SS8_LABELS, SS8_TO_SS3
from dbmtl.tokens import Alphabet


def test_probabilities_sum_ss8_into_its_ss3_classes():
    torch.manual_seed(0)
    alphabet = Alphabet()
    heads = OnePassHeads(alphabet)
    logits = torch.randn(3, 7, len(alphabet)) * 4
    p = heads.probabilities(logits)
    assert p["ss8"].shape == (3, 7, 8) and p["ss3"].shape == (3, 7, 3)
    assert p["loc"].shape == (3, 10) and p["ms"].shape == (3, 2)
    for name in p:
        torch.testing.assert_close(p[name].sum(-1), torch.ones(p[name].shape[:-1]))
    for c, s3 in enumerate(SS3_LABELS):
        members = [k for k, s8 in enumerate(SS8_LABELS) if SS8_TO_SS3[s8] == s3]
        torch.testing.assert_close(p["ss3"][..., c], p["ss8"][..., members].sum(-1))


def test_the_loss_reads_the_same_ss3_as_predict_and_stays_finite():
    alphabet = Alphabet()
    heads = OnePassHeads(alphabet)
    logits = torch.randn(2, 5, len(alphabet))
    logits[0, 0, heads.ss8[0]] = 300.0  # every other SS8 state underflows to probability 0
    ss8, ss3 = heads.ss8_ss3(logits)
    p = heads.probabilities(logits)
    torch.testing.assert_close(ss8.exp(), p["ss8"])
    finite = p["ss3"] > 0
    torch.testing.assert_close(ss3.exp()[finite], p["ss3"][finite])
    assert torch.isfinite(ss3).all()
    assert not bool(finite.all())  # the extreme column did underflow: the clamp is what kept it finite
    np.testing.assert_array_less(ss3[0, 0, 1:].numpy(), -80.0)
