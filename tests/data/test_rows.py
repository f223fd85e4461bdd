"""What every kind's rows are made of: a padded batch (right, or left for free-running decoding), the crop
that keeps both ends of a long protein, and BERT's masking of residues."""
import pytest
import torch

from dbmtl.data.layouts import masked_lm_example
from dbmtl.data.rows import Example, collate, crop_ends, mask_residues
from dbmtl.readers.fasta import read_fasta
from dbmtl.tasks import TASKS
from dbmtl.tokens import Alphabet


QUERY = "unlabeled/mmseqs2_examples/QUERY.fasta"


@pytest.fixture(scope="module")
def sequences(data_dir):
    """Real proteins (the MMseqs2 example queries)."""
    return [r.sequence for r in read_fasta(data_dir / QUERY, check_duplicates=False)]


def example(alphabet: Alphabet, sequence: str, causal: bool = True) -> Example:
    """A row reading `sequence` and scoring every residue (weight 1), positions 0, 1, ..."""
    ids = alphabet.encode_residues(sequence)
    n = len(ids)
    return Example("lm", ids, ids.clone(), torch.ones(n), torch.arange(n), torch.zeros(n, dtype=torch.long), causal)


@pytest.mark.parametrize("left", [False, True])
def test_collate_pads_every_row_to_the_longest_and_marks_the_padding(sequences, left):
    alphabet = Alphabet()
    rows = [example(alphabet, s) for s in sequences[:6]]
    batch = collate(rows, alphabet.pad_id, left=left)
    longest = max(len(r.inputs) for r in rows)
    assert batch.inputs.shape == (6, longest) and batch.causal
    for i, row in enumerate(rows):
        n = len(row.inputs)
        cols = slice(longest - n, longest) if left else slice(0, n)
        assert torch.equal(batch.inputs[i, cols], row.inputs) and torch.equal(batch.positions[i, cols], row.positions)
        assert batch.valid[i].sum() == n and batch.valid[i, cols].all()
        pad = ~batch.valid[i]
        assert (batch.inputs[i, pad] == alphabet.pad_id).all() and (batch.weights[i, pad] == 0).all()
    if left:  # every row's last token is the last column, where free-running decoding reads the next one
        assert torch.equal(batch.inputs[:, -1], torch.stack([r.inputs[-1] for r in rows]))


def test_a_batch_never_mixes_causal_and_bidirectional_rows(sequences):
    alphabet = Alphabet()
    with pytest.raises(ValueError, match="mixes causal and bidirectional"):
        collate([example(alphabet, sequences[0]), example(alphabet, sequences[1], causal=False)], alphabet.pad_id)
    assert not collate([example(alphabet, s, causal=False) for s in sequences[:2]], alphabet.pad_id).causal


def test_a_crop_keeps_both_ends_of_a_long_protein(sequences):
    long = max(sequences, key=len)
    for budget in (1, 2, 9, 10, 100):
        cropped = crop_ends(long, budget)
        head, tail = (budget + 1) // 2, budget // 2
        assert len(cropped) == budget
        assert cropped[:head] == long[:head] and cropped[head:] == long[len(long) - tail:]
    assert crop_ends(long, len(long)) == long and crop_ends("MKV", 10) == "MKV"


def test_masked_lm_hides_and_scores_only_chosen_residues(sequences):
    alphabet = Alphabet()
    seqs = sequences[:40]
    batch = collate([masked_lm_example(alphabet, TASKS["lm"], s, 1024) for s in seqs], alphabet.pad_id)
    assert not batch.causal and (batch.weights == 0).all()  # nothing is scored before masking
    read, weights = mask_residues(batch.inputs, batch.targets, alphabet, 0.15, torch.Generator().manual_seed(0))
    residues = batch.valid & (batch.targets != alphabet.pad_id)
    assert not residues[:, 0].any()  # the control token is never a target
    chosen = weights > 0
    assert not chosen[~residues].any()
    assert abs(chosen[residues].float().mean().item() - 0.15) < 0.01
    hidden = read[chosen] == alphabet.mask_id
    assert abs(hidden.float().mean().item() - 0.8) < 0.03
    assert torch.equal(read[~chosen], batch.inputs[~chosen])  # what is not scored is read as it is
    # the answer is never readable where it is hidden: a hidden residue's input is not its target
    assert (read[chosen][hidden] != batch.targets[chosen][hidden]).all()
