"""Run by tests under torchrun: train a config through the real Trainer, then dump this rank's weights.

usage: torchrun --nproc_per_node N tests/training/distributed_worker.py CONFIG.json OUT_DIR DATA_DIR
Writes OUT_DIR/rank{r}.safetensors (this rank's view of the parameters, full tensors under DDP, the local
shards under FSDP) next to the run's checkpoint, which rank 0 writes as in any run.
"""
import sys
from pathlib import Path

from safetensors.torch import save_file

from dbmtl.data.catalog import load_training_data
from dbmtl.training.distributed import destroy_process_group
from dbmtl.training import TrainConfig, Trainer

config, out, data_dir = sys.argv[1:4]
trainer = Trainer(TrainConfig.load(config), load_training_data(Path(data_dir)), out_dir=out, progress=False)
trainer.fit()
local = {k: (v.to_local() if hasattr(v, "to_local") else v).detach().clone().contiguous()
         for k, v in trainer.model.state_dict().items() if k != "head.weight"}
save_file(local, f"{out}/rank{trainer.group.rank}.safetensors")
trainer.group.barrier()
del trainer, local  # as `dbmtl train` does: nothing holds the process group when it is destroyed
destroy_process_group()
