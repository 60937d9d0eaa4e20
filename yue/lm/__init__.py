"""The language models at work: the static-cache decoder (decoder, fusion) and its ahead-of-time compiled step
(compiled), codebook heads (lmhead), sampling and classifier-free guidance (sampling, guided), stage 1 (prompt ids ->
`Stage1Tokens`) and stage 2 (codebook 0 -> codes [2, 8, T]), a GPU call's deadline at which both stop with what they
made (deadline), and the official algorithms as oracles (official). Takes loaded modules and tensors; loads nothing."""
