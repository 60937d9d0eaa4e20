"""bench/gpu --smoke: every step of the GPU check runs at tiny sizes on the CPU, so a scarce GPU run never dies
on a typo, and its JSON holds every step's numbers."""
import json
import os
import subprocess
import sys

from tests import ROOT


def test_gpu_bench_smoke_runs_every_step(tmp_path):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    done = subprocess.run([sys.executable, "-m", "bench.gpu", "--smoke", "--json", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "gpu-smoke.json").read_text())
    steps = ("stage1", "agree", "stage2", "codec", "pipeline", "nan", "takes", "prefill", "quant", "quant_compiled",
             "fusion", "compile")
    assert all(step in results and "error" not in results[step] for step in steps)
    agree = results["agree"]
    assert agree["graphs_vs_eager_fast_fp32_2b"] == agree["graphs_vs_eager_plain_fp32_2b"] == -1  # no graphs on a CPU
    assert agree["stage2_fp32_graph_equals_eager"] is True
    assert results["stage2"]["bf16_codes_differing_official_vs_ours"] == 0  # fp32 on the CPU: the official codes
    assert results["nan"]["ours_logits_finite"] and results["nan"]["ours_cache_finite"]
    fusion, compiled = results["fusion"], results["compile"]  # fp32 on the CPU: fusing or compiling changes no token
    assert fusion["fp32_2b_first_differing_token"] == -1 and fusion["stage2_fp32_codes_differing"].startswith("0 of")
    assert compiled["graphs_compiled_in_all"] >= 2 and compiled["decoder_warnings"] == "none"
    quant = results["quant"]  # every precision measured against the CPU's fp32; quantizing int8 drifts least
    for precision in ("int8", "int4", "bnb-int8", "nf4"):
        assert quant[f"{precision}_mean_kl_vs_fp32@200"] > 0 and f"{precision}_first_differing_token@700" in quant
    assert quant["int8_mean_kl_vs_fp32@200"] < quant["int4_mean_kl_vs_fp32@200"]
    for precision in ("fp32", "int8", "int4", "bnb-int8", "nf4"):  # stage 2 of the song and its computed time
        stage2_s = quant[f"{precision}_stage2_3min_song_s"]
        assert 0 < stage2_s < quant[f"{precision}_3min_song_s_computed"]
    assert results["quant_compiled"]["packages_built"] == 1 and "int8_compiled_tok_s@200" in results["quant_compiled"]
    assert "| stage1 | ours_graphs_fast_tok_s@" in done.stdout  # the table is printed last
