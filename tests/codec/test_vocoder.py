"""yue.codec.vocoder: 882 samples per frame at 44.1 kHz; the ISTFT head inverts a 'same'-padded STFT."""
import torch

from yue.codec.vocoder import ISTFT, Vocoder, VocoderConfig


def test_vocoder_gives_882_samples_per_frame():
    """(B, C, T) embeddings give (B, 882·T) samples; the official sizes have the 81 state-dict entries."""
    vocoder = Vocoder(VocoderConfig(input_channels=48, dim=32, intermediate_dim=64, num_layers=2)).eval()
    with torch.inference_mode():
        for frames in (1, 25):
            assert vocoder(torch.randn(2, 48, frames)).shape == (2, 882 * frames)
    official = Vocoder()
    assert len(official.state_dict()) == 81  # the official decoder files have 81 entries
    assert "head.istft.window" in official.state_dict()  # a buffer, saved in the official files


def test_istft_inverts_a_same_padded_stft():
    """ISTFT(STFT(x)) = x when the STFT pads (n_fft - hop)/2 on both sides, as Vocos' 'same' padding assumes."""
    n_fft, hop, frames = 3528, 882, 20
    x = torch.randn(1, hop * frames, dtype=torch.float64)
    pad = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(x, (pad, pad))
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(padded, n_fft, hop, window=window, center=False, return_complex=True)
    istft = ISTFT(n_fft, hop).double()
    y = istft(spec[..., :frames])
    assert y.shape == x.shape
    torch.testing.assert_close(y[:, n_fft:-n_fft], x[:, n_fft:-n_fft], rtol=0, atol=1e-6)  # the window buffer is a float32 Hann


def test_head_splits_magnitude_then_phase_and_clips_magnitude_at_100():
    """The first n_fft/2+1 output channels are log-magnitudes (exp, clipped at 100), the rest phases."""
    config = VocoderConfig(input_channels=4, dim=8, intermediate_dim=16, num_layers=1)
    vocoder = Vocoder(config).eval()
    bins = config.n_fft // 2 + 1
    with torch.no_grad():
        vocoder.head.out.weight.zero_()
        bias = torch.zeros(config.n_fft + 2)
        bias[:bins] = 10.0  # exp(10) > 100: clipped to 100
        bias[bins:] = 0.5
        vocoder.head.out.bias.copy_(bias)
        features = torch.zeros(1, 6, config.dim)
        spectrum = torch.full((1, bins, 6), 100.0) * torch.exp(torch.tensor(0.5j))
        torch.testing.assert_close(vocoder.head(features), vocoder.head.istft(spectrum))
