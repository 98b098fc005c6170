"""Training: what a run is (:mod:`~stnlib.train.config`), its state and checkpoints
(:mod:`~stnlib.train.state`), evaluation (:mod:`~stnlib.train.evaluation`) and the loop
(:mod:`~stnlib.train.loop`). One call of :func:`train` trains one (experiment, model, profile, seed)
and writes its record; :func:`train_packed` trains several seeds of one model as one pack
(:mod:`~stnlib.train.packed`), with CUDA graphs on a GPU (:mod:`~stnlib.train.cuda`).
"""

from stnlib.train.config import PROTOCOL_VERSION, build_config, make_network, mix_seed, to_channels_last, valid_models
from stnlib.train.evaluation import evaluate, loss_and_errors
from stnlib.train.loop import TrainingDiverged, load_trained_model, train, train_step, training_batch
from stnlib.train.packed import PackedRun, train_packed
from stnlib.train.state import TrainState, checkpoint_path, final_weights_path, load_checkpoint, save_checkpoint

__all__ = [
    "PROTOCOL_VERSION", "build_config", "make_network", "mix_seed", "to_channels_last", "valid_models", "evaluate",
    "loss_and_errors", "TrainingDiverged", "load_trained_model", "train", "train_step", "training_batch",
    "PackedRun", "train_packed", "TrainState", "checkpoint_path", "final_weights_path", "load_checkpoint",
    "save_checkpoint",
]
