"""yue.vocoder: 882 samples per frame at 44.1 kHz; the ISTFT head inverts a 'same'-padded STFT."""
import torch

from yue.vocoder import ISTFT, Vocoder, VocoderConfig


def test_vocoder_gives_882_samples_per_frame():
    vocoder = Vocoder(VocoderConfig(input_channels=48, dim=32, intermediate_dim=64, num_layers=2)).eval()
    with torch.inference_mode():
        assert vocoder(torch.randn(2, 48, 25)).shape == (2, 882 * 25)
    assert len(Vocoder().state_dict()) == 81  # the official decoder files have 81 entries


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
