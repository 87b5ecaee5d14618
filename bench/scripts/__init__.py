"""The training entry points (`make train-toy`, `make train-proxy`): development tools that ComfyUI never loads."""
