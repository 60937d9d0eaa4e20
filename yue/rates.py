"""Rates and sizes of the codec side, named once. Torch-free, so audio I/O and mixing can use them cheaply.

The model sizes themselves come from the official config files (yue.codec.CodecConfig, yue.vocoder.VocoderConfig);
these are the facts the rest of the package relies on when it handles samples and codes.
"""

CODEC_RATE = 16000  # xcodec_mini's input and output sample rate (final_ckpt/config.yaml `sample_rate`)
CODEC_HOP = 320  # samples per codec frame at 16 kHz: the product of the strides 8 * 5 * 4 * 2
FRAME_RATE = 50  # codec frames per second: 16000 / 320
CODEBOOK_SIZE = 1024  # entries per RVQ codebook (`bins`); codes are 0..1023
CODEBOOKS = 12  # RVQ codebooks at the top bandwidth of 6 kbps (each codebook costs 0.5 kbps)
OUTPUT_RATE = 44100  # the Vocos upsamplers' output rate (the official code writes 44100, not the "48kHz" of comments)
OUTPUT_HOP = 882  # samples per codec frame at 44.1 kHz: the upsamplers' ISTFT hop, 44100 / 50
