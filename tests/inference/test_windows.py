"""Long proteins in windows: every residue comes back from exactly one window, in place."""
import numpy as np
import pytest

from dbmtl.inference.windows import cut, residue_windows, stitch, stitch_windows, windowed


@pytest.mark.parametrize("length,window", [(10, 31), (31, 31), (32, 31), (157, 31), (1200, 511)])
def test_windows_cover_and_stitch_takes_most_central(length, window):
    wins = residue_windows(length, window)
    covered = np.zeros(length, int)
    for s, e in wins:
        assert 0 <= s < e <= length and e - s <= window
        covered[s:e] += 1
    assert covered.min() >= 1
    # each window predicts its own index: the stitched choice must be the most central covering window
    probs = [np.full((e - s, 1), k, dtype=np.float32) for k, (s, e) in enumerate(wins)]
    chosen = stitch_windows(length, wins, probs)[:, 0].astype(int)
    for pos in range(length):
        margins = [min(pos - s, e - 1 - pos) for s, e in wins if s <= pos < e]
        s, e = wins[chosen[pos]]
        assert min(pos - s, e - 1 - pos) == max(margins)


def test_windowed_puts_every_residue_back_in_place():
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    sequences = ["".join(rng.choice(letters, n)) for n in (5, 40, 41, 97, 300)]
    calls = []

    def per_letter(pieces):  # a piece's "prediction" is its letters' codes: misplaced pieces show
        calls.append(len(pieces))
        assert all(len(p) <= 40 for p in pieces)
        return [np.frombuffer(p.encode(), np.uint8)[:, None].astype(np.float32) for p in pieces]

    out = windowed(sequences, 40, per_letter)
    assert calls == [sum(len(w) for w in cut(sequences, 40))]  # all pieces in one call
    for seq, got in zip(sequences, out):
        assert got.shape == (len(seq), 1)
        assert got[:, 0].astype(np.uint8).tobytes().decode() == seq


def test_windowed_cuts_labels_with_their_residues():
    sequences, labels = ["ACDEFGHIKL" * 7], ["HHHEEECCCT" * 7]
    seen = []

    def check(pieces):
        for seq, lab in pieces:
            seen.append(lab)
            assert len(seq) == len(lab)
            assert lab == labels[0][sequences[0].index(seq) : sequences[0].index(seq) + len(seq)]
        return [np.zeros((len(s), 2), np.float32) for s, _ in pieces]

    assert windowed(sequences, 20, check, labels=labels)[0].shape == (70, 2)
    assert len(seen) == len(cut(sequences, 20)[0]) > 1


def test_stitch_reads_each_proteins_pieces_in_order():
    sequences = ["A" * 10, "C" * 25]
    spans = cut(sequences, 10)
    assert spans[0] == [(0, 10)] and len(spans[1]) > 1
    pieces = [np.full((e - s, 1), k, np.float32) for k, seq in enumerate(sequences) for s, e in spans[k]]
    out = stitch(sequences, spans, pieces)
    assert (out[0] == 0).all() and (out[1] == 1).all() and out[1].shape == (25, 1)
