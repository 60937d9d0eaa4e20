"""yue.lm.sampling: each function equals the transformers processor the official run used."""
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
    UnbatchedClassifierFreeGuidanceLogitsProcessor,
)

from yue.lm import sampling


def test_top_p_equals_transformers():
    scores = torch.randn(3, 200, generator=torch.Generator().manual_seed(0)) * 3
    expected = TopPLogitsWarper(0.93)(None, scores.clone())
    assert torch.equal(sampling.top_p_filter(scores, 0.93), expected)


def test_top_k_equals_transformers():
    scores = torch.randn(2, 300, generator=torch.Generator().manual_seed(1))
    assert torch.equal(sampling.top_k_filter(scores, 50), TopKLogitsWarper(50)(None, scores.clone()))


def test_repetition_penalty_equals_transformers():
    scores = torch.randn(1, 100, generator=torch.Generator().manual_seed(2))
    context = torch.tensor([[3, 5, 5, 90, 17]])
    seen = torch.zeros(100, dtype=torch.bool)
    seen[context[0]] = True
    expected = RepetitionPenaltyLogitsProcessor(1.1)(context, scores.clone())
    assert torch.equal(sampling.penalize_repeats(scores, seen, 1.1), expected)


def test_guidance_on_a_subset_equals_transformers_on_the_full_row():
    """CFG needs the full-row normaliser; on the subset it equals transformers' processor restricted to it."""
    generator = torch.Generator().manual_seed(3)
    cond, uncond = torch.randn(1, 500, generator=generator), torch.randn(1, 500, generator=generator)

    class Output(dict):
        logits = uncond[:, None, :]

    class FixedModel:  # stands in for the LM call inside the processor: returns the unconditional logits
        def __call__(self, input_ids, **kwargs):
            return Output()

    processor = UnbatchedClassifierFreeGuidanceLogitsProcessor(1.5, FixedModel())
    expected = processor(torch.tensor([[7]]), cond.clone())
    subset = torch.tensor([2, 40, 41, 499])
    ours = sampling.guided_scores(cond, uncond, 1.5, subset)
    torch.testing.assert_close(ours, expected[:, subset], rtol=0, atol=1e-5)


def test_pick_is_argmax_when_greedy_and_seeded_when_sampling():
    scores = torch.tensor([[0.0, 2.0, 1.0]])
    assert sampling.pick(scores, False, 1.0, 50, 0.93, None).item() == 1
    draw = lambda seed: [sampling.pick(torch.zeros(1, 50), True, 1.0, 0, 1.0, torch.Generator().manual_seed(seed)).item()
                         for _ in range(1)]
    assert draw(5) == draw(5)


def test_top_p_keeps_only_the_nucleus():
    """With probabilities 0.6, 0.3, 0.1 and top_p 0.8 the two best survive."""
    scores = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
    kept = torch.isfinite(sampling.top_p_filter(scores, 0.8))
    assert kept.tolist() == [[True, True, False]]
