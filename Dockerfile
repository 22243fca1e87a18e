# syntax=docker/dockerfile:1
# Two images for docker-compose.yml:
#   worker: the moodpipe package (moodpipe worker, migrate, topics, sql, report, ...)
#   triton: NVIDIA's Triton image plus what the python-backend steps of the `emotion`
#           ensemble import (the tokenizer and the postprocess); the classifier runs on
#           Triton's native onnxruntime backend on the GPU (configs/gpu.pbtxt).

FROM python:3.11-slim AS worker
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY schemas ./schemas
COPY triton_models ./triton_models
COPY dashboards ./dashboards
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home moodpipe
USER moodpipe
ENV MOODPIPE_DATA_DIR=/tmp/moodpipe
ENTRYPOINT ["moodpipe"]
CMD ["worker"]

FROM nvcr.io/nvidia/tritonserver:25.01-py3 AS triton
RUN pip install --no-cache-dir "numpy<2" "tokenizers>=0.20,<0.24"
