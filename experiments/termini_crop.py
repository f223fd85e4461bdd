"""How much of a protein does the location answer need? Validation data only.

Item 3 of issue 22 ("per-protein examples cropped to their termini"): predicts the localization
validation proteins (the hold-out of the model's own training data) with the model's own head, each
protein cut to its first and last `c / 2` residues (`dbmtl.data.rows.crop_ends`, the crop predict applies
to proteins longer than a row), for several `c`. If accuracy holds at a short crop, training the
per-protein tasks on cropped rows buys more proteins per token; the residues read are printed beside it.

usage: python experiments/termini_crop.py --model lineage/v5a [--crops 64,128,256,512,0] [--threads 1]
"""
import time

import numpy as np

from dbmtl.data.rows import crop_ends
from dbmtl.evaluation.metrics import confusion_matrix, multiclass_mcc
from dbmtl.tasks import TASKS

from validation_setup import model_and_data, model_options


def main() -> None:
    ap = model_options(__doc__, "lineage/v5a", 1)
    ap.add_argument("--crops", default="64,128,256,512,0", help="residues kept (both ends together); 0: as predict")
    args = ap.parse_args()
    predictor, data, _ = model_and_data(args)
    task = TASKS["loc"]
    records = [r for r in data.split("valid").protein if r.location]
    y = np.array([task.labels.index(r.location) for r in records])
    ms_records = [r for r in data.split("valid").protein if r.membrane]
    ms_y = np.array([TASKS["ms"].labels.index(r.membrane) for r in ms_records])
    print(f"{args.model}: {len(records)} validation proteins with one location, {len(ms_records)} with membrane")
    print("| residues kept | residues read | location accuracy | location MCC | membrane accuracy | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for crop in (int(c) for c in args.crops.split(",")):
        def cut(seq: str) -> str:
            return crop_ends(seq, crop) if crop else seq
        t0 = time.perf_counter()
        probs = np.stack(predictor.predict_proteins([cut(r.sequence) for r in records], task))
        ms = np.stack(predictor.predict_proteins([cut(r.sequence) for r in ms_records], TASKS["ms"]))
        seconds = time.perf_counter() - t0
        pred = probs.argmax(1)
        cm = confusion_matrix([task.labels[i] for i in pred], [task.labels[i] for i in y], task.labels)
        read = sum(min(len(cut(r.sequence)), predictor.layout.max_residue_length()) for r in records)
        print(f"| {crop or 'all (as predict)'} | {read:,} | {100 * (pred == y).mean():.1f} | {multiclass_mcc(cm):.3f} | "
              f"{100 * (ms.argmax(1) == ms_y).mean():.1f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
