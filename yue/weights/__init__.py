"""Everything about weights: the checkpoints and their sizes (registry), the Hub (hub), strict loading at a precision
and device (loading, lm_loading, codec_loading, devices), torchao int8/int4 weights (quantize), PyTorch's CPU threads
(threads) and the tiny offline checkpoints (tiny). The only package that imports huggingface_hub, bitsandbytes and
torchao's quantize API; hands on loaded modules (`Models`)."""
