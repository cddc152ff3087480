# The starter model's GPU stage, run from the repository root on a GPU machine that has torch and
# transformers but neither this project's data nor its other dependencies (see the model card):
#   SOURCE=recognition/starter_model WORK=/root/work STEPS=3000 LR=3e-4 bash scripts/starter_gpu/run.sh
# Part 1 (.gpu1/data.zip) travels in an earlier call, which unpacks it into /root/gpu1.
# Prints the training log and leaves the best model, in fp16, in $OUT/model.tar.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .gpu2/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
python3 -m zipfile -e .gpu2/data.zip .gpu2/
[ -d .gpu1/htr ] || { [ -d /root/gpu1/htr ] && rm -rf .gpu1 && ln -s /root/gpu1 .gpu1; }
[ -d .gpu1/fonts ] || { echo "part 1 (.gpu1) is not on this machine"; exit 3; }
mkdir -p /usr/share/fonts/ocr && cp .gpu1/fonts/* /usr/share/fonts/ocr/
gunzip -f .gpu2/htr_lines/metadata.jsonl.gz
# DataLoader workers hand batches over in shared memory: about 200 MB each at batch 64.
mount -o remount,size=24G /dev/shm 2>/dev/null
WORKERS=$(( $(df -m --output=avail /dev/shm | tail -1) / 200 ))
[ "$WORKERS" -gt $(( $(nproc) - 1 )) ] && WORKERS=$(( $(nproc) - 1 ))
nvidia-smi -L; echo "workers: $WORKERS"
timeout "${TRAIN_S:-420}" python3 -m recognition.starter real --work "$WORK" --source "$SOURCE" \
  --steps "$STEPS" --batch-size 64 --lr "$LR" --seed 5 --workers "$WORKERS" --threads 4 \
  --context-layers 6 --htr .gpu2/htr_lines --lines .gpu2/lathrop --copies 8 --synthetic-mix 60000
cp "$WORK/real.log" "$OUT/real.log"
python3 - "$WORK/real/best" <<'PY'
import os, shutil, sys, tarfile, tempfile
from pathlib import Path
import recognition.line_encoder  # noqa: F401  (registers the encoder)
from transformers import VisionEncoderDecoderModel
best, half = Path(sys.argv[1]), Path(tempfile.mkdtemp()) / "model"
VisionEncoderDecoderModel.from_pretrained(best).half().save_pretrained(half)
for f in best.iterdir():
    if not (half / f.name).exists():
        shutil.copy(f, half / f.name)
with tarfile.open(Path(os.environ["OUT"]) / "model.tar", "w") as tar:
    tar.add(half, arcname="model")
PY
