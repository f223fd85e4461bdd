"""What POST /predict accepts, and its limits: FASTA text (text/plain, or JSON {"fasta": "..."}) or JSON
{"sequences": {"id": "SEQ", ...}}. FASTA is read by the CLI's reader, so a bad record gets the CLI's
message; an oversized request gets 413, a malformed one 422. A sequence that looks like DNA or RNA is
refused unless the request allows it: `?allow_nucleotides=true`, or `"allow_nucleotides": true` in JSON."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

from ..inference.predictor import check_sequence
from ..readers.fasta import FastaFormatError, SequenceRecord, read_fasta

SOURCE_NAME = "<request>"  # where a FASTA error message says the record came from


class RequestProblem(Exception):
    """An answer other than 200: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 1_000_000       # request body
    max_sequences: int = 100         # proteins per request
    max_residues: int = 100_000      # residues per request, all proteins together


ONE_LINE_FASTA = ("the FASTA text has no line breaks, so a header swallows its sequence (`curl -d @file` strips "
                  "them: send the file with `curl --data-binary @file`)")


def read_request_fasta(text: str, allow_nucleotides: bool = False) -> list[SequenceRecord]:
    if text.lstrip().startswith(">") and not any(c in text for c in "\r\n"):
        raise RequestProblem(422, ONE_LINE_FASTA)  # a real FASTA record spans two lines at least
    source = io.StringIO(text)
    source.name = SOURCE_NAME  # read_fasta names the source in its messages
    try:
        return list(read_fasta(source, allow_nucleotides=allow_nucleotides))
    except FastaFormatError as exc:
        raise RequestProblem(422, str(exc)) from None


def query_flag(value: str | None, name: str) -> bool:
    """A yes/no query parameter (`?allow_nucleotides=true`); absent is no, a bare `?allow_nucleotides` yes."""
    if value is None:
        return False
    answer = {"": True, "1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(
        value.strip().lower())
    if answer is None:
        raise RequestProblem(422, f"query parameter {name}={value!r}: use true or false")
    return answer


def _from_mapping(sequences, allow_nucleotides: bool = False) -> list[SequenceRecord]:
    if isinstance(sequences, list):
        sequences = {f"seq{n}": s for n, s in enumerate(sequences, 1)}
    if not isinstance(sequences, dict):
        raise RequestProblem(422, '"sequences" must be an object {"id": "SEQUENCE", ...} or a list of sequences')
    records = []
    for rid, seq in sequences.items():
        if not isinstance(seq, str):
            raise RequestProblem(422, f"protein {rid!r}: the sequence must be a string")
        seq = "".join(seq.split()).upper()
        seq = seq[:-1] if seq.endswith("*") else seq  # as the FASTA reader does
        if not rid.strip():
            raise RequestProblem(422, "a protein id is empty")
        try:
            check_sequence(rid, seq, allow_nucleotides)
        except ValueError as exc:
            raise RequestProblem(422, str(exc)) from None
        records.append(SequenceRecord(rid, "", seq))
    return records


def parse_request(body: bytes, content_type: str | None, allow_nucleotides: bool = False) -> list[SequenceRecord]:
    """Records from a request body: JSON when the content type says so, else FASTA text. DNA- or
    RNA-looking sequences are refused unless allow_nucleotides or the JSON says `"allow_nucleotides": true`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestProblem(422, f"the request body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "json" not in (content_type or "").lower():
        records = read_request_fasta(text, allow_nucleotides)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RequestProblem(422, f"invalid JSON: {exc}") from None
        if isinstance(doc, dict):
            allowed = doc.get("allow_nucleotides", False)
            if not isinstance(allowed, bool):
                raise RequestProblem(422, f'"allow_nucleotides" must be true or false, not {allowed!r}')
            allow_nucleotides = allow_nucleotides or allowed
        if isinstance(doc, dict) and isinstance(doc.get("fasta"), str):
            records = read_request_fasta(doc["fasta"], allow_nucleotides)
        elif isinstance(doc, dict) and "sequences" in doc:
            records = _from_mapping(doc["sequences"], allow_nucleotides)
        else:
            raise RequestProblem(422, 'JSON must be {"fasta": "..."} or {"sequences": {"id": "SEQUENCE", ...}}')
    if not records:
        raise RequestProblem(422, "no sequences in the request")
    return records


def check_limits(records: list[SequenceRecord], limits: Limits) -> None:
    if len(records) > limits.max_sequences:
        raise RequestProblem(413, f"{len(records)} sequences in one request; the limit is {limits.max_sequences} "
                                  "(split the input, or start the server with a higher --max-sequences)")
    residues = sum(len(r.sequence) for r in records)
    if residues > limits.max_residues:
        raise RequestProblem(413, f"{residues} residues in one request; the limit is {limits.max_residues} "
                                  "(split the input, or start the server with a higher --max-residues)")


def too_large(size: int, limits: Limits) -> RequestProblem:
    return RequestProblem(413, f"request body over {limits.max_bytes} bytes (got {size}); split the input, "
                               "or start the server with a higher --max-request-bytes")
