"""Codes to sound and back: the xcodec RVQ codec on transformers' XcodecModel (xcodec), the Vocos upsamplers
(vocoder), band merge and resampling (mix), whole and chunked rendering (render) and section-by-section rendering
(incremental). Hands on 16 kHz reconstructions and 44.1 kHz stems; knows nothing of the language models or of files
on disk."""
