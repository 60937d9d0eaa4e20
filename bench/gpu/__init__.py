"""`python -m bench.gpu`: the GPU check in one run (__main__), what its steps share (bench), the steps (steps) and
the kernel-fusion steps (fusion)."""
