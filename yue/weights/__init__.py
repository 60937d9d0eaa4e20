"""Everything about weights: the checkpoints and their sizes (registry), the Hub (hub), strict loading at a precision
and device (loading, lm_loading, codec_loading, devices) and the tiny offline checkpoints (tiny). The only package that
imports huggingface_hub and bitsandbytes; hands on loaded modules (`Models`)."""
