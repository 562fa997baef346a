"""The default training recipe: what ``models train`` does when given only a manifest, a
task and an output folder, chosen by measurement for a CPU-only site (docs/MODELS.md gives
the runs behind each figure). torch-free, so the command line can show these defaults
without importing the training code. GPU sites raise the size and change the backbone.
"""

from __future__ import annotations

BACKBONE = "resnet18"
WORKING_SIZE = (256, 208)  # rows, columns: about 0.8 mm a pixel on a cropped breast
EPOCHS = 30  # most whole-image fine-tuning epochs
PATIENCE = 8  # epochs without a better validation AUC before stopping
FROZEN_EPOCHS = 3  # head-only epochs after a pretrained start (file or patch stage)
BATCH_SIZE = 16
LEARNING_RATE = 1e-3
# the lesion-vs-tissue patch stage, when the manifest has annotations (0: none)
PATCH_EPOCHS = 8
PATCH_SIZE = 48  # model-grid pixels: about 4 cm of breast at the working size
